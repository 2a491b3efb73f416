#include "k8sclient/apiserver/reflector.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "logging/log.h"

namespace switchyard::k8s::apiserver {
namespace {

using Clock = std::chrono::steady_clock;

// A failed request's body is read for its Status message only.
constexpr size_t kMaxFailureBody = 64u << 10;
constexpr size_t kMinListBytes = 256u << 20;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double unixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string formatSeconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3gs", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

const char* statusText(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
  }
}

}  // namespace

size_t maxListBytesFor(size_t maxEventBytes) {
  return std::max(kMinListBytes, maxEventBytes * 16);
}

Reflector::Reflector(ApiClient& client, ResourceSpec spec, ObjectSink& sink,
                     ReflectorOptions options, std::function<void()> onListed,
                     std::function<void(const RequestProblem&)> problems)
    : client_(client), spec_(std::move(spec)), sink_(sink), options_(std::move(options)),
      maxListBytes_(options_.maxListBytes ? options_.maxListBytes
                                          : maxListBytesFor(options_.maxEventBytes)),
      onListed_(std::move(onListed)), problems_(std::move(problems)), timer_(client.io()),
      backoff_(options_.backoff, options_.random01),
      relistBackoff_(options_.backoff, options_.random01), framer_(options_.maxEventBytes) {
  random_ = options_.random01;
  if (!random_) {
    random_ = [gen = std::mt19937_64(std::random_device{}())]() mutable {
      return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
    };
  }
}

Reflector::~Reflector() { stop(); }

void Reflector::start() {
  if (running_) {
    return;
  }
  running_ = true;
  alive_ = std::make_shared<bool>(true);
  conn_ = client_.newConnection();
  startList();
}

void Reflector::stop() {
  running_ = false;
  alive_.reset();
  timer_.cancel();
  if (conn_) {
    conn_->close();
  }
}

void Reflector::report(const std::string& message) {
  lastError_ = message;
  SY_LOG(Warning) << message;
  if (problems_) {
    problems_(RequestProblem{spec_.kind, message});
  }
}

void Reflector::post(void (Reflector::*next)()) {
  boost::asio::post(client_.io(), [alive = std::weak_ptr<bool>(alive_), this, next] {
    if (alive.lock()) {
      (this->*next)();
    }
  });
}

void Reflector::runLater(std::chrono::milliseconds wait, void (Reflector::*next)()) {
  timer_.expires_after(wait);
  timer_.async_wait(
      [alive = std::weak_ptr<bool>(alive_), this, next](const boost::system::error_code& ec) {
        if (!alive.lock() || ec) {
          return;
        }
        (this->*next)();
      });
}

void Reflector::retryLater(const std::string& what, void (Reflector::*next)()) {
  // The API server's priority and fairness answers 429 with how long to stay away; so do
  // some 5xx. Honour it (bounded) instead of the backoff, as client-go's checkWait does.
  auto serverWait = conn_->retryAfter();
  if (serverWait && (status_ == 429 || status_ >= 500)) {
    auto wait = std::min<std::chrono::milliseconds>(
        std::max<std::chrono::milliseconds>(*serverWait, std::chrono::seconds(1)),
        options_.maxRetryAfter);
    report(what + "; retrying in " + formatSeconds(wait) + " (Retry-After)");
    runLater(wait, next);
    return;
  }
  auto wait = backoff_.next();
  report(what + "; retrying in " + formatSeconds(wait));
  runLater(wait, next);
}

void Reflector::relistLater(const std::string& why) {
  client_.metrics().countRelist(spec_.kind);
  auto wait = relistBackoff_.next();
  report(why + "; relisting in " + formatSeconds(wait));
  runLater(wait, &Reflector::startList);
}

void Reflector::watchProgressed() {
  backoff_.reset();
  relistBackoff_.reset();
  undecodableWatches_ = 0;
}

void Reflector::keepFailureBody(std::string_view data) {
  body_.append(data.substr(0, kMaxFailureBody - std::min(kMaxFailureBody, body_.size())));
}

std::string Reflector::target(bool watch, std::chrono::seconds timeout) const {
  std::vector<std::string> params;
  if (watch) {
    params = {"allowWatchBookmarks=true", "watch=true",
              "resourceVersion=" + urlEncode(resourceVersion_),
              "timeoutSeconds=" + std::to_string(timeout.count())};
  } else if (!fullList_) {
    params.push_back("limit=" + std::to_string(options_.pageSize));
    if (!continue_.empty()) {
      params.push_back("continue=" + urlEncode(continue_));
    }
  }
  if (!spec_.labelSelector.empty()) {
    params.push_back("labelSelector=" + urlEncode(spec_.labelSelector));
  }
  if (!spec_.fieldSelector.empty()) {
    params.push_back("fieldSelector=" + urlEncode(spec_.fieldSelector));
  }
  std::string t = spec_.path;
  for (size_t i = 0; i < params.size(); ++i) {
    t += (i == 0 ? "?" : "&") + params[i];
  }
  return t;
}

std::string Reflector::describeFailure(int status) const {
  std::string s = "HTTP " + std::to_string(status);
  if (*statusText(status)) {
    s += std::string(" ") + statusText(status);
  }
  rapidjson::Document doc;
  parseJson(body_, doc);
  ApiStatus st;
  if (!doc.HasParseError() && parseStatus(doc, st) && !st.message.empty()) {
    s += ": " + st.message;
  }
  if (status == 401) {
    s += " (the API server rejected the credentials: check the bearer token or client "
         "certificate of " + client_.config().origin + ")";
  } else if (status == 403) {
    s += " (RBAC: switchyard needs get, list and watch on " + spec_.path + ")";
  }
  return s;
}

// ---- LIST ----

// Every attempt of a list, the first or a relist, starts here; relists are counted where
// they are decided (relistLater), not per attempt.
void Reflector::startList() {
  if (!running_) {
    return;
  }
  sink_.listBegin();
  continue_.clear();
  requestPage();
}

void Reflector::requestPage() {
  client_.whenAllowed([alive = std::weak_ptr<bool>(alive_), this] {
    if (!alive.lock()) {
      return;
    }
    status_ = 0;
    body_.clear();
    requestStart_ = Clock::now();
    HttpRequest req;
    req.target = target(false, std::chrono::seconds(0));
    req.timeout = options_.listTimeout;
    conn_->get(req, ApiConnection::Handlers{
                        [this](int status) { status_ = status; },
                        [this](std::string_view data) {
                          if (status_ != 200) {
                            keepFailureBody(data);
                          } else if (body_.size() + data.size() > maxListBytes_) {
                            endListNow("the response is larger than " +
                                       std::to_string(maxListBytes_) + " bytes");
                          } else {
                            body_.append(data);
                          }
                        },
                        [this](const HttpError& e) { onPageDone(e, secondsSince(requestStart_)); },
                    });
  });
}

void Reflector::onPageDone(const HttpError& error, double seconds) {
  client_.metrics().observeRequest("LIST", error ? "<error>" : std::to_string(status_), seconds);
  if (error) {
    sink_.listAbort();
    retryLater("LIST " + spec_.kind + ": " + error.message, &Reflector::startList);
    return;
  }
  if (status_ == 410 && !continue_.empty()) {
    // The continue token outlived the server's history (pages read too slowly for its
    // compaction). Paging again could expire again, forever; like client-go's pager, list
    // everything in one request instead, after the backoff.
    sink_.listAbort();
    fullList_ = true;
    retryLater("LIST " + spec_.kind + ": continue token expired (410 Gone); listing again "
                   "without pagination",
               &Reflector::startList);
    return;
  }
  if (status_ != 200) {
    sink_.listAbort();
    retryLater("LIST " + spec_.kind + ": " + describeFailure(status_), &Reflector::startList);
    return;
  }
  rapidjson::Document parsed;
  parseJson(body_, parsed);
  // Read through a const reference: RapidJSON's mutable iterators compare ambiguously
  // under C++20 (clang's -Wambiguous-reversed-operator).
  const rapidjson::Value& doc = parsed;
  const rapidjson::Value* items = nullptr;
  if (!parsed.HasParseError() && doc.IsObject()) {
    auto it = doc.FindMember("items");
    if (it != doc.MemberEnd() && (it->value.IsArray() || it->value.IsNull())) {
      items = &it->value;
    }
  }
  if (!items) {
    listUndecodable("the response is not a " + spec_.kind + "List");
    return;
  }
  if (items->IsArray()) {
    for (const auto& item : items->GetArray()) {
      sink_.listItem(item);
    }
  }
  std::string cont, rv;
  if (auto md = doc.FindMember("metadata"); md != doc.MemberEnd() && md->value.IsObject()) {
    if (auto c = md->value.FindMember("continue"); c != md->value.MemberEnd() && c->value.IsString()) {
      cont = c->value.GetString();
    }
    if (auto r = md->value.FindMember("resourceVersion");
        r != md->value.MemberEnd() && r->value.IsString()) {
      rv = r->value.GetString();
    }
  }
  if (!cont.empty()) {
    continue_ = cont;
    requestPage();
    return;
  }
  resourceVersion_ = rv;
  continue_.clear();
  fullList_ = false;
  sink_.listEnd();
  ++lists_;
  // Not the relist backoff: a list that succeeds only to have its watch refused (410) is
  // the loop that backoff is there to slow down.
  backoff_.reset();
  lastError_.clear();
  client_.metrics().setLastSync(spec_.kind, unixNow());
  SY_LOG(Debug) << "LIST " << spec_.kind << ": complete at resourceVersion " << rv;
  bool first = !synced_;
  synced_ = true;
  if (first && onListed_) {
    onListed_();
  }
  if (!running_) {
    return;
  }
  startWatch();
}

void Reflector::listUndecodable(const std::string& why) {
  sink_.listAbort();
  client_.metrics().countDecodeError(spec_.kind);
  retryLater("LIST " + spec_.kind + ": " + why, &Reflector::startList);
}

// The body is not read to its end: the connection goes, and with it the bytes in flight.
void Reflector::endListNow(const std::string& why) {
  conn_->close();
  std::string().swap(body_);
  boost::asio::post(client_.io(), [alive = std::weak_ptr<bool>(alive_), this, why] {
    if (alive.lock()) {
      client_.metrics().observeRequest("LIST", "<error>", secondsSince(requestStart_));
      listUndecodable(why);
    }
  });
}

// ---- WATCH ----

// Every attempt of a watch starts here; restarts are counted where they are decided
// (onWatchDone), not per attempt.
void Reflector::startWatch() {
  if (!running_) {
    return;
  }
  client_.whenAllowed([alive = std::weak_ptr<bool>(alive_), this] {
    if (!alive.lock()) {
      return;
    }
    auto min = options_.minWatchTimeout;
    auto timeout = min + std::chrono::seconds(static_cast<int64_t>(
                             static_cast<double>(min.count()) * random_()));
    status_ = 0;
    body_.clear();
    framer_.reset();
    watchEvents_ = 0;
    relistRequested_ = false;
    watchEnded_ = false;
    watchUndecodable_ = false;
    watchError_.clear();
    ++watches_;
    requestStart_ = Clock::now();
    HttpRequest req;
    req.target = target(true, timeout);
    req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout) +
                  options_.watchGrace;
    conn_->get(req, ApiConnection::Handlers{
                        [this](int status) {
                          status_ = status;
                          if (status == 200) {
                            client_.metrics().observeRequest("WATCH", "200",
                                                             secondsSince(requestStart_));
                          }
                        },
                        [this](std::string_view data) {
                          if (status_ != 200) {
                            keepFailureBody(data);
                            return;
                          }
                          if (!framer_.feed(data, [this](std::string_view f) { onWatchFrame(f); })) {
                            watchUndecodable();
                          }
                        },
                        [this](const HttpError& e) { onWatchDone(e, secondsSince(requestStart_)); },
                    });
  });
}

// Drops the watch connection and handles the end as if the server had closed it.
void Reflector::endWatchNow(const std::string& why) {
  if (watchEnded_) {
    return;
  }
  watchEnded_ = true;
  watchError_ = why;
  conn_->close();
  boost::asio::post(client_.io(), [alive = std::weak_ptr<bool>(alive_), this] {
    if (alive.lock()) {
      onWatchDone(HttpError{}, secondsSince(requestStart_));
    }
  });
}

void Reflector::watchUndecodable() {
  if (watchEnded_) {
    return;  // an ERROR event in the same read ended it first
  }
  client_.metrics().countDecodeError(spec_.kind);
  watchUndecodable_ = true;
  // client-go's StreamWatcher words it so.
  std::string why = "unable to decode an event from the watch stream: " + framer_.error();
  if (framer_.failure() == JsonFramer::Failure::TooLarge) {
    why += " (clientConnection.maxEventBytes)";
  }
  endWatchNow(why);
}

void Reflector::onWatchFrame(std::string_view frame) {
  if (watchEnded_ || !running_) {
    return;
  }
  WatchEvent ev;
  std::string error;
  if (!parseWatchEvent(frame, ev, error)) {
    client_.metrics().countDecodeError(spec_.kind);
    report("watch " + spec_.kind + ": skipped a malformed event: " + error);
    return;
  }
  client_.metrics().countEvent(spec_.kind, watchEventTypeName(ev.type));
  switch (ev.type) {
    case WatchEventType::Added:
    case WatchEventType::Modified:
    case WatchEventType::Deleted: {
      ++watchEvents_;
      std::string rv = resourceVersionOf(*ev.object);
      sink_.watchEvent(ev.type, *ev.object);
      if (!rv.empty()) {
        resourceVersion_ = rv;
      }
      watchProgressed();
      client_.metrics().setLastSync(spec_.kind, unixNow());
      break;
    }
    case WatchEventType::Bookmark: {
      ++watchEvents_;
      std::string rv = resourceVersionOf(*ev.object);
      if (!rv.empty()) {
        resourceVersion_ = rv;
      }
      watchProgressed();
      client_.metrics().setLastSync(spec_.kind, unixNow());
      break;
    }
    case WatchEventType::Error: {
      // Whatever the code (410 Expired, 500 InternalError, ...), the server has given up on
      // this watch and may have lost events for it: only a relist is sure to catch up, as in
      // client-go, where an ERROR event ends ListAndWatch.
      ApiStatus st;
      parseStatus(*ev.object, st);
      relistRequested_ = true;
      std::string why = "watch " + spec_.kind + ": ";
      if (st.code == 410 || st.reason == "Expired" || st.reason == "Gone") {
        why += "resourceVersion " + resourceVersion_ + " expired (410 Gone)";
      } else {
        why += "ERROR event " + std::to_string(st.code) + " " + st.reason + ": " + st.message;
      }
      endWatchNow(why);
      break;
    }
  }
}

void Reflector::onWatchDone(const HttpError& error, double seconds) {
  watchEnded_ = true;
  if (!running_) {
    return;
  }
  if (status_ == 0) {
    client_.metrics().observeRequest("WATCH", "<error>", seconds);
  } else if (status_ != 200) {
    client_.metrics().observeRequest("WATCH", std::to_string(status_), seconds);
  }
  if (relistRequested_) {
    relistLater(watchError_);
    return;
  }
  if (status_ == 410) {
    // Our resourceVersion is older than the server's history: only a relist can tell
    // what changed meanwhile. The relist is diffed, so handlers see just the changes.
    relistLater("WATCH " + spec_.kind + ": resourceVersion " + resourceVersion_ +
                " expired (410 Gone)");
    return;
  }
  if (status_ != 0 && status_ != 200) {
    retryLater("WATCH " + spec_.kind + ": " + describeFailure(status_), &Reflector::startWatch);
    return;
  }
  if (status_ == 0) {
    retryLater("WATCH " + spec_.kind + ": " + error.message, &Reflector::startWatch);
    return;
  }
  // The watch streamed and has ended: from here on it is one restart, however many
  // attempts the next WATCH takes.
  client_.metrics().countWatchRestart(spec_.kind);
  if (watchUndecodable_) {
    // Every event before the offending byte was decoded whole, so the resourceVersion of
    // the last one is sound: watching again from it makes the server send what was cut
    // off. Skipping to the next event boundary would lose that change, and relisting (what
    // client-go's reflector does unless given MaxInternalErrorRetryDuration) costs a full
    // LIST for a fault on the way; a version that expired meanwhile still gets its 410.
    // At once the first time; streams that keep breaking before an event is decoded (a
    // proxy mangling every watch) wait on the request backoff instead of spinning.
    ++undecodableWatches_;
    std::string why = "watch " + spec_.kind + ": " + watchError_;
    if (undecodableWatches_ == 1) {
      report(why + "; watching again from resourceVersion " + resourceVersion_);
      post(&Reflector::startWatch);
    } else {
      retryLater(why + " (" + std::to_string(undecodableWatches_) +
                     " watches in a row; resuming from resourceVersion " + resourceVersion_ + ")",
                 &Reflector::startWatch);
    }
    return;
  }
  if (!watchError_.empty() || error) {
    std::string why = !watchError_.empty() ? watchError_ : error.message;
    if (watchEvents_ > 0) {
      // The stream was healthy until it broke: resume at once from the last
      // resourceVersion; backoff is for failures that repeat.
      report("watch " + spec_.kind + ": " + why + "; resuming from resourceVersion " +
             resourceVersion_);
      post(&Reflector::startWatch);
    } else {
      retryLater("watch " + spec_.kind + ": " + why + " (resuming from resourceVersion " +
                     resourceVersion_ + ")",
                 &Reflector::startWatch);
    }
    return;
  }
  if (watchEvents_ == 0 &&
      seconds < std::chrono::duration<double>(options_.shortWatch).count()) {
    // Ended by the server at once, with nothing in it: watching again at once would spin
    // as fast as the server can answer.
    retryLater("watch " + spec_.kind + ": very short watch (" + formatSeconds(
                   std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000))) +
                   ", no events); watching again from resourceVersion " + resourceVersion_,
               &Reflector::startWatch);
    return;
  }
  // The server ended the watch at timeoutSeconds: the normal way a watch ends.
  SY_LOG(Debug) << "watch " << spec_.kind << ": ended by the server after " << watchEvents_
                << " events; watching again from resourceVersion " << resourceVersion_;
  watchProgressed();
  post(&Reflector::startWatch);
}

}  // namespace switchyard::k8s::apiserver
