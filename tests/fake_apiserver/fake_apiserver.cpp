// The fake API server's network side; the only file of the fake that includes Beast.
#include "tests/fake_apiserver/fake_apiserver.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace switchyard::fake {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

// Real API servers end a watch without timeoutSeconds after a random 30-60 minutes.
constexpr int kDefaultWatchSeconds = 1800;

std::string chunk(const std::string& data) {
  char size[20];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return size + data + "\r\n";
}

const std::string kLastChunk = "0\r\n\r\n";

// An endless event: this head, then kEndlessFiller again and again, in chunks of it.
const std::string kEndlessHead =
    R"({"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":")";
const std::string kEndlessFiller(64 * 1024, 'x');

const std::string kWatchHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-cache, "
    "private\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string urlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct Target {
  std::vector<std::string> segments;
  std::map<std::string, std::string> query;
};

Target parseTarget(const std::string& target) {
  Target t;
  std::string path = target, q;
  if (auto p = target.find('?'); p != std::string::npos) {
    path = target.substr(0, p);
    q = target.substr(p + 1);
  }
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    std::string seg = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!seg.empty()) {
      t.segments.push_back(urlDecode(seg));
    }
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  start = 0;
  while (start < q.size()) {
    size_t amp = q.find('&', start);
    std::string kv = q.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      t.query[urlDecode(kv)] = "";
    } else {
      t.query[urlDecode(kv.substr(0, eq))] = urlDecode(kv.substr(eq + 1));
    }
    if (amp == std::string::npos) {
      break;
    }
    start = amp + 1;
  }
  return t;
}

std::string responseBytes(int status, const std::string& body, bool close,
                          const std::string& contentType = "application/json",
                          int retryAfterSeconds = 0) {
  std::string reason(http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status))));
  std::string s = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  s += "Content-Type: " + contentType + "\r\n";
  if (retryAfterSeconds > 0) {
    s += "Retry-After: " + std::to_string(retryAfterSeconds) + "\r\n";
  }
  s += "Cache-Control: no-cache, private\r\n";
  s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) {
    s += "Connection: close\r\n";
  }
  return s + "\r\n" + body;
}

}  // namespace

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void send(std::string bytes) = 0;
  // After what is queued, writes `filler` again and again, each write as the last one
  // completes (so no more than one is queued), until the connection closes. wrote() is
  // called with the bytes of each completed write, ended() once, when it closes.
  virtual void sendEndless(std::string filler, std::function<void(size_t)> wrote,
                           std::function<void()> ended) = 0;
  virtual void abort() = 0;
  virtual void watchEnded() = 0;
};

struct Watcher {
  std::weak_ptr<SessionBase> session;
  const Resource* resource = nullptr;
  std::string ns;
  LabelSelector labels;
  FieldSelector fields;
  bool bookmarks = false;
  std::unique_ptr<net::steady_timer> timer;
  std::string held;
  bool ended = false;
};

struct FakeApiServer::Impl {
  explicit Impl(FakeApiServerOptions o) : options(std::move(o)), token(options.token) {
    state.setListener([this](const Change& c) { onChange(c); });
  }

  FakeApiServerOptions options;
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<ssl::context> tls;
  std::thread thread;
  FakeState state;
  std::vector<std::shared_ptr<Watcher>> watchers;
  bool expiredAs410 = false;
  bool silenced = false;
  bool hold = false;
  WatchChunker chunker;
  size_t eventIndex = 0;
  std::map<std::string, size_t> truncateNext;  // kind -> bytes of its next event kept
  EndlessEventStats endless;
  std::string token;
  std::vector<InjectedFailure> failures;
  std::mutex logMutex;
  std::vector<LoggedRequest> log;

  template <typename F>
  auto runSync(F&& fn) -> decltype(fn()) {
    if (!thread.joinable() || std::this_thread::get_id() == thread.get_id()) {
      return fn();
    }
    std::packaged_task<decltype(fn())()> task(std::forward<F>(fn));
    auto future = task.get_future();
    net::post(io, [&task] { task(); });
    return future.get();
  }

  void record(std::chrono::steady_clock::time_point at, const std::string& line) {
    std::lock_guard<std::mutex> lock(logMutex);
    log.push_back({at, line});
  }

  void accept();

  // ---- watches ----

  void deliver(Watcher& w, const std::string& whole) {
    auto s = w.session.lock();
    if (!s || w.ended) {
      return;
    }
    std::string line = whole;
    if (auto t = truncateNext.find(w.resource->kind); t != truncateNext.end()) {
      // Never the whole line: at least its newline is lost.
      size_t keep = t->second == 0 ? line.size() / 2 : std::min(t->second, line.size() - 1);
      line.resize(keep);
      truncateNext.erase(t);
    }
    if (hold) {
      w.held += line;
      return;
    }
    std::vector<std::string> pieces = chunker ? chunker(line, ++eventIndex)
                                              : std::vector<std::string>{line};
    for (const std::string& p : pieces) {
      if (!p.empty()) {
        s->send(chunk(p));
      }
    }
  }

  void onChange(const Change& c) {
    if (silenced) {
      return;
    }
    for (auto& w : std::vector<std::shared_ptr<Watcher>>(watchers)) {
      if (w->resource != c.object->resource) {
        continue;
      }
      std::string line = watchLineFor(c, w->ns, w->labels, w->fields);
      if (!line.empty()) {
        deliver(*w, line);
      }
    }
  }

  void forget(const std::shared_ptr<Watcher>& w) {
    w->ended = true;
    if (w->timer) {
      w->timer->cancel();
    }
    std::erase(watchers, w);
  }

  // Ends a watch the normal way: the last chunk; the connection stays open.
  void endWatch(const std::shared_ptr<Watcher>& w) {
    if (w->ended) {
      return;
    }
    auto s = w->session.lock();
    if (s && !w->held.empty()) {
      s->send(chunk(w->held));
    }
    forget(w);
    if (s) {
      s->send(kLastChunk);
      s->watchEnded();
    }
  }

  void release() {
    for (auto& w : watchers) {
      auto s = w->session.lock();
      if (s && !w->held.empty()) {
        s->send(chunk(w->held));
      }
      w->held.clear();
    }
  }

  // ---- requests ----

  struct Reply {
    int status = 200;
    std::string body;
    std::string contentType = "application/json";
    bool watchStarted = false;  // the session is now streaming
    bool sent = false;          // the response was already written (an expired watch)
    int retryAfterSeconds = 0;  // > 0: a Retry-After header
  };

  // The injected failure that answers this request, if any (its count goes down).
  std::optional<InjectedFailure> takeFailure(const std::string& request) {
    for (auto it = failures.begin(); it != failures.end(); ++it) {
      if (request.rfind(it->prefix, 0) != 0) {
        continue;
      }
      InjectedFailure f = *it;
      if (it->times > 0 && --it->times == 0) {
        failures.erase(it);
      }
      return f;
    }
    return std::nullopt;
  }

  Reply injected(const std::shared_ptr<SessionBase>& session, const InjectedFailure& f) {
    std::string status = statusJson(f.code, f.reason, "injected by the test");
    if (f.kind == InjectedFailure::Kind::HttpStatus) {
      Reply r{f.code, status};
      r.retryAfterSeconds = f.retryAfterSeconds;
      return r;
    }
    session->send(kWatchHead);
    if (f.kind == InjectedFailure::Kind::WatchError) {
      session->send(chunk(watchEventJson("ERROR", status)));
    }
    if (f.kind == InjectedFailure::Kind::RawWatch && !f.body.empty()) {
      session->send(chunk(f.body));
    }
    session->send(kLastChunk);
    Reply sent{200, "", ""};
    sent.sent = true;
    return sent;
  }

  bool authorized(const http::request<http::string_body>& req, bool clientCertOk) const {
    if (token.empty() || clientCertOk) {
      return true;
    }
    auto it = req.find(http::field::authorization);
    return it != req.end() && std::string(it->value()) == "Bearer " + token;
  }

  Reply handle(const std::shared_ptr<SessionBase>& session,
               const http::request<http::string_body>& req, bool clientCertOk) {
    std::string target(req.target());
    Target t = parseTarget(target);
    const auto& seg = t.segments;
    std::string path = "/";
    for (size_t i = 0; i < seg.size(); ++i) {
      path += (i ? "/" : "") + seg[i];
    }
    if (path == "/healthz" || path == "/livez" || path == "/readyz") {
      return {200, "ok", "text/plain"};
    }
    if (!authorized(req, clientCertOk)) {
      return {401, statusJson(401, "Unauthorized", "Unauthorized")};
    }
    if (auto f = takeFailure(std::string(req.method_string()) + " " + target)) {
      return injected(session, *f);
    }
    if (req.method() == http::verb::get) {
      if (path == "/version") {
        return {200, versionDocument()};
      }
      if (path == "/api") {
        return {200, coreVersionsDocument()};
      }
      if (path == "/apis") {
        return {200, groupListDocument()};
      }
      if (path == "/openapi/v3") {
        return {200, openApiIndexDocument()};
      }
      if (path == "/openapi/v2") {
        // Older clients (Debian's kubectl 1.20) fetch the v2 schema, as protobuf, before
        // apply. An empty message is a valid, empty gnostic OpenAPI v2 Document: kubectl
        // then skips schema validation of types it has no schema for.
        Reply empty{200, ""};
        empty.contentType = "application/octet-stream";
        return empty;
      }
      if (seg.size() >= 3 && seg[0] == "openapi" && seg[1] == "v3") {
        std::string gv = seg[2] == "api" && seg.size() == 4 ? seg[3]
                         : seg.size() == 5                  ? seg[3] + "/" + seg[4]
                                                            : "";
        std::string doc = openApiGroupVersionDocument(gv);
        if (!doc.empty()) {
          return {200, doc};
        }
      }
      if (seg.size() == 2 && seg[0] == "api") {
        std::string doc = resourceListDocument(seg[1]);
        if (!doc.empty()) {
          return {200, doc};
        }
      }
      if (seg.size() == 2 && seg[0] == "apis") {
        std::string doc = groupDocument(seg[1]);
        if (!doc.empty()) {
          return {200, doc};
        }
      }
      if (seg.size() == 3 && seg[0] == "apis") {
        std::string doc = resourceListDocument(seg[1] + "/" + seg[2]);
        if (!doc.empty()) {
          return {200, doc};
        }
      }
    }
    if (seg.size() >= 2 && seg[0] == "fake" && req.method() == http::verb::post) {
      return control(seg[1], req.body(), t);
    }
    return resource(session, req, t);
  }

  Reply control(const std::string& what, const std::string& body, const Target& t) {
    auto q = [&](const char* k) {
      auto it = t.query.find(k);
      return it == t.query.end() ? std::string() : it->second;
    };
    if (what == "truncate") {
      const std::string keep = q("keep");
      if (keep.find_first_not_of("0123456789") != std::string::npos || keep.size() > 9) {
        return {400, statusJson(400, "BadRequest", "keep: must be a number of bytes")};
      }
      truncateNext[q("kind")] = keep.empty() ? 0 : std::stoul(keep);
    } else if (what == "raw") {
      return {200, R"({"watches":)" + std::to_string(rawBytes(q("kind"), body)) + "}"};
    } else if (what == "endless") {
      return {200, R"({"watches":)" + std::to_string(startEndless(q("kind"))) + "}"};
    } else if (what == "expire") {
      expire();
    } else if (what == "drop") {
      drop();
    } else if (what == "bookmark") {
      bookmarks();
    } else if (what == "compact") {
      state.compact();
    } else if (what == "apply") {
      std::vector<std::string> errors;
      size_t n = state.applyAll(body, errors);
      if (!errors.empty()) {
        return {400, statusJson(400, "BadRequest", errors.front())};
      }
      return {200, R"({"applied":)" + std::to_string(n) + "}"};
    } else {
      return {404, statusJson(404, "NotFound", "no such control: " + what)};
    }
    return {200, "{}"};
  }

  Reply resource(const std::shared_ptr<SessionBase>& session,
                 const http::request<http::string_body>& req, const Target& t) {
    const auto& seg = t.segments;
    std::string group, version;
    size_t i = 0;
    if (seg.size() >= 2 && seg[0] == "api") {
      version = seg[1];
      i = 2;
    } else if (seg.size() >= 3 && seg[0] == "apis") {
      group = seg[1];
      version = seg[2];
      i = 3;
    } else {
      return {404, statusJson(404, "NotFound", "the server could not find the requested resource")};
    }
    std::vector<std::string> rest(seg.begin() + static_cast<long>(i), seg.end());
    std::string ns, plural, name;
    if (rest.size() >= 3 && rest[0] == "namespaces") {
      ns = rest[1];
      plural = rest[2];
      name = rest.size() >= 4 ? rest[3] : "";
    } else if (!rest.empty()) {
      plural = rest[0];
      name = rest.size() >= 2 ? rest[1] : "";
    }
    const Resource* r = findResource(group, version, plural);
    if (!r || rest.size() > (ns.empty() ? 3u : 5u)) {
      return {404, statusJson(404, "NotFound", "the server could not find the requested resource")};
    }
    auto q = [&](const char* k) {
      auto it = t.query.find(k);
      return it == t.query.end() ? std::string() : it->second;
    };
    std::string contentType(req[http::field::content_type]);
    switch (req.method()) {
      case http::verb::get:
        if (!name.empty()) {
          Response res = state.get(*r, ns, name);
          return {res.status, res.body};
        }
        if (q("watch") == "true" || q("watch") == "1") {
          return watch(session, *r, ns, t);
        } else {
          ListOptions o;
          o.ns = ns;
          o.labelSelector = q("labelSelector");
          o.fieldSelector = q("fieldSelector");
          o.limit = q("limit").empty() ? 0 : std::stoul(q("limit"));
          o.continueToken = q("continue");
          Response res = state.list(*r, o);
          return {res.status, res.body};
        }
      case http::verb::post:
        if (name.empty()) {
          Response res = state.create(*r, ns, req.body());
          return {res.status, res.body};
        }
        break;
      case http::verb::put:
        if (!name.empty()) {
          Response res = state.replace(*r, ns, name, req.body());
          return {res.status, res.body};
        }
        break;
      case http::verb::patch:
        if (!name.empty()) {
          Response res = state.patch(*r, ns, name, req.body(), contentType);
          return {res.status, res.body};
        }
        break;
      case http::verb::delete_:
        if (!name.empty()) {
          Response res = state.remove(*r, ns, name);
          return {res.status, res.body};
        }
        break;
      default:
        break;
    }
    return {405, statusJson(405, "MethodNotAllowed", "the server does not allow this method")};
  }

  Reply watch(const std::shared_ptr<SessionBase>& session, const Resource& r,
              const std::string& ns, const Target& t) {
    auto q = [&](const char* k) {
      auto it = t.query.find(k);
      return it == t.query.end() ? std::string() : it->second;
    };
    auto w = std::make_shared<Watcher>();
    std::string error;
    if (!w->labels.parse(q("labelSelector"), error) || !w->fields.parse(q("fieldSelector"), error)) {
      return {400, statusJson(400, "BadRequest", error)};
    }
    std::string rv = q("resourceVersion");
    std::vector<Change> backlog;
    Response res = state.watchBacklog(r, rv, backlog);
    if (res.status == 410 && expiredAs410) {
      return {410, res.body};
    }
    if (res.status != 200 && res.status != 410) {
      return {res.status, res.body};
    }
    session->send(kWatchHead);
    if (res.status == 410) {
      session->send(chunk(expiredEventJson(rv, state.resourceVersion())));
      session->send(kLastChunk);
      Reply sent{200, "", ""};
      sent.sent = true;
      return sent;
    }
    w->session = session;
    w->resource = &r;
    w->ns = ns;
    w->bookmarks = q("allowWatchBookmarks") == "true";
    int seconds = q("timeoutSeconds").empty() ? kDefaultWatchSeconds : std::stoi(q("timeoutSeconds"));
    w->timer = std::make_unique<net::steady_timer>(io, std::chrono::seconds(seconds));
    w->timer->async_wait([this, weak = std::weak_ptr<Watcher>(w)](const beast::error_code& ec) {
      auto self = weak.lock();
      if (!ec && self) {
        endWatch(self);
      }
    });
    watchers.push_back(w);
    for (const Change& c : backlog) {
      std::string line = watchLineFor(c, w->ns, w->labels, w->fields);
      if (!line.empty()) {
        deliver(*w, line);
      }
    }
    return {200, "", "", true};
  }

  void bookmarks() {
    for (auto& w : watchers) {
      if (w->bookmarks) {
        deliver(*w, bookmarkJson(*w->resource, state.resourceVersion()));
      }
    }
  }

  void expire() {
    state.compact();
    for (auto& w : std::vector<std::shared_ptr<Watcher>>(watchers)) {
      if (auto s = w->session.lock()) {
        if (!w->held.empty()) {
          s->send(chunk(w->held));
          w->held.clear();
        }
        s->send(chunk(expiredEventJson("?", state.resourceVersion())));
      }
      endWatch(w);
    }
  }

  void watchError(int code, const std::string& reason, const std::string& message) {
    for (auto& w : std::vector<std::shared_ptr<Watcher>>(watchers)) {
      if (auto s = w->session.lock()) {
        if (!w->held.empty()) {
          s->send(chunk(w->held));
          w->held.clear();
        }
        s->send(chunk(watchEventJson("ERROR", statusJson(code, reason, message))));
      }
      endWatch(w);
    }
  }

  size_t rawBytes(const std::string& kind, const std::string& bytes) {
    size_t n = 0;
    for (auto& w : watchers) {
      auto s = w->session.lock();
      if (s && !w->ended && (kind.empty() || w->resource->kind == kind)) {
        s->send(chunk(bytes));
        ++n;
      }
    }
    return n;
  }

  size_t startEndless(const std::string& kind) {
    size_t n = 0;
    for (auto& w : std::vector<std::shared_ptr<Watcher>>(watchers)) {
      auto s = w->session.lock();
      if (!s || w->ended || (!kind.empty() && w->resource->kind != kind)) {
        continue;
      }
      forget(w);  // no other event, no timeout: the endless event is all it gets
      ++endless.streams;
      ++n;
      s->send(chunk(kEndlessHead));
      s->sendEndless(chunk(kEndlessFiller), [this](size_t bytes) { endless.bytes += bytes; },
                     [this] { ++endless.ended; });
    }
    return n;
  }

  void drop() {
    for (auto& w : std::vector<std::shared_ptr<Watcher>>(watchers)) {
      auto s = w->session.lock();
      forget(w);
      if (s) {
        s->abort();
      }
    }
  }

  void stopWatchOf(const std::shared_ptr<SessionBase>& s) {
    for (auto& w : std::vector<std::shared_ptr<Watcher>>(watchers)) {
      if (w->session.lock() == s) {
        forget(w);
      }
    }
  }
};

namespace {

template <typename Stream>
class Session : public SessionBase {
 public:
  Session(FakeApiServer::Impl& server, Stream stream)
      : server_(server), stream_(std::move(stream)) {}

  void run() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = shared()](const beast::error_code& ec) {
                                if (ec) {
                                  self->close();
                                  return;
                                }
                                SSL* ssl = self->stream_.native_handle();
                                X509* peer = SSL_get1_peer_certificate(ssl);
                                self->clientCertOk_ =
                                    peer && SSL_get_verify_result(ssl) == X509_V_OK;
                                X509_free(peer);
                                self->read();
                              });
    } else {
      read();
    }
  }

  void send(std::string bytes) override {
    if (closed_) {
      return;
    }
    outbox_.push_back(std::move(bytes));
    if (!writing_) {
      writeNext();
    }
  }

  void sendEndless(std::string filler, std::function<void(size_t)> wrote,
                   std::function<void()> ended) override {
    if (closed_) {
      ended();
      return;
    }
    endlessFiller_ = std::move(filler);
    endlessWrote_ = std::move(wrote);
    endlessEnded_ = std::move(ended);
    if (!writing_) {
      writeNext();
    }
  }

  void abort() override { close(); }

  void watchEnded() override { watching_ = false; }

 private:
  std::shared_ptr<Session> shared() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    server_.stopWatchOf(shared_from_this());
    if (endlessEnded_) {
      auto ended = std::move(endlessEnded_);
      endlessEnded_ = nullptr;
      ended();
    }
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(64u << 20);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared()](const beast::error_code& ec, size_t) { self->onRead(ec); });
  }

  void onRead(const beast::error_code& ec) {
    if (ec) {
      close();  // the client went away (also how a watch learns its client left)
      return;
    }
    if (watching_) {
      // A new request while streaming: the client gave up on the watch.
      server_.stopWatchOf(shared_from_this());
      watching_ = false;
      send(kLastChunk);
    }
    auto at = std::chrono::steady_clock::now();
    http::request<http::string_body> req = parser_->release();
    auto reply = server_.handle(shared_from_this(), req, clientCertOk_);
    server_.record(at, std::string(req.method_string()) + " " + std::string(req.target()) +
                           " -> " + std::to_string(reply.status));
    if (reply.watchStarted) {
      watching_ = true;
    } else if (!reply.sent) {
      bool closeAfter = !req.keep_alive();
      send(responseBytes(reply.status, reply.body, closeAfter, reply.contentType,
                         reply.retryAfterSeconds));
      if (closeAfter) {
        closeAfterWrite_ = true;
        return;
      }
    }
    read();
  }

  void writeNext() {
    if (outbox_.empty() && !endlessFiller_.empty() && !closed_) {
      outbox_.push_back(endlessFiller_);
    }
    if (outbox_.empty()) {
      writing_ = false;
      if (closeAfterWrite_) {
        close();
      }
      return;
    }
    writing_ = true;
    net::async_write(stream_, net::buffer(outbox_.front()),
                     [self = shared()](const beast::error_code& ec, size_t) {
                       if (ec) {
                         self->close();
                         return;
                       }
                       if (self->endlessWrote_) {
                         self->endlessWrote_(self->outbox_.front().size());
                       }
                       self->outbox_.pop_front();
                       self->writeNext();
                     });
  }

  FakeApiServer::Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool closeAfterWrite_ = false;
  bool closed_ = false;
  bool watching_ = false;
  bool clientCertOk_ = false;
  std::string endlessFiller_;  // non-empty: written again whenever the outbox is empty
  std::function<void(size_t)> endlessWrote_;
  std::function<void()> endlessEnded_;
};

}  // namespace

void FakeApiServer::Impl::accept() {
  acceptor.async_accept([this](const beast::error_code& ec, tcp::socket socket) {
    if (ec) {
      return;  // closed by stop()
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (tls) {
      auto s = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          *this, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls));
      s->run();
    } else {
      auto s = std::make_shared<Session<beast::tcp_stream>>(*this,
                                                            beast::tcp_stream(std::move(socket)));
      s->run();
    }
    accept();
  });
}

FakeApiServer::FakeApiServer(FakeApiServerOptions options)
    : impl_(std::make_shared<Impl>(options)), options_(std::move(options)) {}

FakeApiServer::~FakeApiServer() { stop(); }

bool FakeApiServer::start(std::string& error) {
  Impl& s = *impl_;
  if (options_.tls) {
    s.tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    beast::error_code ec;
    s.tls->use_certificate_chain(net::buffer(options_.certPem), ec);
    if (!ec) {
      s.tls->use_private_key(net::buffer(options_.keyPem), ssl::context::pem, ec);
    }
    if (ec) {
      error = "server certificate or key: " + ec.message();
      return false;
    }
    if (!options_.clientCaPem.empty()) {
      s.tls->add_certificate_authority(net::buffer(options_.clientCaPem), ec);
      if (ec) {
        error = "client CA: " + ec.message();
        return false;
      }
      s.tls->set_verify_mode(ssl::verify_peer);
    }
  }
  beast::error_code ec;
  auto address = net::ip::make_address(options_.bindAddress, ec);
  if (ec) {
    error = "bind address " + options_.bindAddress + ": " + ec.message();
    return false;
  }
  tcp::endpoint ep(address, options_.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) {
    s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
    s.acceptor.bind(ep, ec);
  }
  if (!ec) {
    s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    error = "listening on " + options_.bindAddress + ":" + std::to_string(options_.port) + ": " +
            ec.message();
    return false;
  }
  port_ = s.acceptor.local_endpoint().port();
  s.accept();
  s.thread = std::thread([&s] { s.io.run(); });
  return true;
}

void FakeApiServer::stop() {
  Impl& s = *impl_;
  if (s.thread.joinable()) {
    s.runSync([&s] {
      beast::error_code ignored;
      s.acceptor.close(ignored);
      s.drop();
    });
    s.io.stop();
    s.thread.join();
  }
}

std::string FakeApiServer::url() const {
  std::string host = options_.bindAddress.find(':') != std::string::npos
                         ? "[" + options_.bindAddress + "]"
                         : options_.bindAddress;
  return std::string(options_.tls ? "https://" : "http://") + host + ":" + std::to_string(port_);
}

Response FakeApiServer::apply(const std::string& json) {
  return impl_->runSync([&] { return impl_->state.apply(json); });
}

Response FakeApiServer::remove(const std::string& apiVersion, const std::string& kind,
                               const std::string& ns, const std::string& name) {
  return impl_->runSync([&] {
    const Resource* r = findKind(apiVersion, kind);
    if (!r) {
      return Response{400, statusJson(400, "BadRequest", "unknown kind " + kind)};
    }
    return impl_->state.remove(*r, r->namespaced ? ns : "", name);
  });
}

void FakeApiServer::withState(const std::function<void(FakeState&)>& fn) {
  impl_->runSync([&] { fn(impl_->state); });
}

uint64_t FakeApiServer::resourceVersion() {
  return impl_->runSync([&] { return impl_->state.resourceVersion(); });
}

void FakeApiServer::sendBookmarks() {
  impl_->runSync([&] { impl_->bookmarks(); });
}

void FakeApiServer::dropWatches() {
  impl_->runSync([&] { impl_->drop(); });
}

void FakeApiServer::expireWatches() {
  impl_->runSync([&] { impl_->expire(); });
}

void FakeApiServer::compact() {
  impl_->runSync([&] { impl_->state.compact(); });
}

void FakeApiServer::setExpiredWatchAsHttp410(bool http410) {
  impl_->runSync([&] { impl_->expiredAs410 = http410; });
}

void FakeApiServer::setWatchesSilenced(bool silenced) {
  impl_->runSync([&] { impl_->silenced = silenced; });
}

void FakeApiServer::holdWatchEvents(bool hold) {
  impl_->runSync([&] {
    impl_->hold = hold;
    if (!hold) {
      impl_->release();
    }
  });
}

void FakeApiServer::setWatchChunker(WatchChunker chunker) {
  impl_->runSync([&] { impl_->chunker = std::move(chunker); });
}

void FakeApiServer::setToken(const std::string& token) {
  impl_->runSync([&] { impl_->token = token; });
}

void FakeApiServer::sendWatchError(int code, const std::string& reason,
                                   const std::string& message) {
  impl_->runSync([&] { impl_->watchError(code, reason, message); });
}

void FakeApiServer::truncateNextWatchEvent(const std::string& kind, size_t keep) {
  impl_->runSync([&] { impl_->truncateNext[kind] = keep; });
}

size_t FakeApiServer::injectRawWatchBytes(const std::string& kind, const std::string& bytes) {
  return impl_->runSync([&] { return impl_->rawBytes(kind, bytes); });
}

size_t FakeApiServer::streamEndlessWatchEvent(const std::string& kind) {
  return impl_->runSync([&] { return impl_->startEndless(kind); });
}

EndlessEventStats FakeApiServer::endlessEventStats() {
  return impl_->runSync([&] { return impl_->endless; });
}

void FakeApiServer::injectFailure(InjectedFailure failure) {
  impl_->runSync([&] { impl_->failures.push_back(std::move(failure)); });
}

void FakeApiServer::clearInjectedFailures() {
  impl_->runSync([&] { impl_->failures.clear(); });
}

size_t FakeApiServer::activeWatches() {
  return impl_->runSync([&] { return impl_->watchers.size(); });
}

std::vector<std::string> FakeApiServer::requestLog() {
  std::lock_guard<std::mutex> lock(impl_->logMutex);
  std::vector<std::string> lines;
  for (const auto& l : impl_->log) {
    lines.push_back(l.line);
  }
  return lines;
}

std::vector<LoggedRequest> FakeApiServer::timedRequestLog() {
  std::lock_guard<std::mutex> lock(impl_->logMutex);
  return impl_->log;
}

void FakeApiServer::clearRequestLog() {
  std::lock_guard<std::mutex> lock(impl_->logMutex);
  impl_->log.clear();
}

size_t FakeApiServer::countRequests(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(impl_->logMutex);
  size_t n = 0;
  for (const auto& l : impl_->log) {
    n += l.line.rfind(prefix, 0) == 0 ? 1 : 0;
  }
  return n;
}

}  // namespace switchyard::fake
