// A reflector keeps one kind's store in step with the API server, as client-go's does:
//   LIST (paginated: limit/continue) -> the store, diffed
//     a continue token that expired (410) -> the list starts over, after the request
//       backoff, in one unpaginated request (client-go's pager does the same)
//   WATCH from the list's resourceVersion, allowWatchBookmarks=true, streamed
//     ADDED/MODIFIED/DELETED -> the store; BOOKMARK -> resourceVersion only
//     server timeout (timeoutSeconds) or dropped connection -> WATCH again from the last
//       resourceVersion, no relist
//     HTTP 410, or any ERROR event (410 Expired, 500, ...) -> LIST again (a relist)
//     a stream that cannot be decoded (an event cut off mid-object, bytes that are not
//       JSON, an event over maxEventBytes) -> a decode error, logged with the offset of the
//       offending byte; the watch is dropped and WATCH again from the last event decoded,
//       so the server sends the lost one again: at once, then, while streams keep breaking
//       with no event decoded in between, after the request backoff
//   a LIST response over maxListBytes -> a decode error, the LIST retried after the backoff
//   request errors (refused, TLS, 401/403, 5xx) -> retry after exponential backoff with
//     jitter; 429 (or 5xx) with Retry-After -> retry after what the server asked, bounded
//
// Two backoffs, both BackoffPolicy (exponential, jittered):
//   request backoff: a LIST or WATCH that failed, a watch that broke or that the server
//     ended within shortWatch without delivering anything ("very short watch", as
//     client-go), a second undecodable stream in a row. Reset by a completed list and by a
//     watch that made progress.
//   relist backoff: every relist waits on it, so a server answering 410 or ERROR again and
//     again gets fewer and fewer LISTs instead of a tight LIST->WATCH->410 loop. Reset only
//     by a watch that made progress (an event, or a normal end after shortWatch or more).
// It knows nothing of the kind's type: objects go to an ObjectSink as JSON.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "k8sclient/apiserver/api_client.h"
#include "k8sclient/apiserver/store.h"
#include "k8sclient/apiserver/watch_stream.h"

namespace switchyard::k8s::apiserver {

struct ResourceSpec {
  std::string kind;           // "Service": logs and metric labels
  std::string path;           // the collection: "/api/v1/services"
  std::string labelSelector;  // "" = none
  std::string fieldSelector;  // "" = none
};

// The bound of a LIST response when ReflectorOptions::maxListBytes is 0: 256 MiB, or 16
// events of the largest size when maxEventBytes is raised past 16 MiB. A bound against a
// body that never ends rather than a memory budget: pages of 500 objects are a few MiB,
// and it leaves room for the one unpaginated list that follows an expired continue token
// (every Service or EndpointSlice of a large cluster).
size_t maxListBytesFor(size_t maxEventBytes);

struct ReflectorOptions {
  size_t pageSize = 500;  // LIST limit, as client-go's pager
  // The largest watch event (clientConnection.maxEventBytes): a larger one is a decode
  // error that ends the watch, never unbounded buffering. client-go's streaming decoder
  // has the same default.
  size_t maxEventBytes = JsonFramer::kDefaultMaxFrame;
  // The largest LIST response body; 0 = maxListBytesFor(maxEventBytes). A larger one is a
  // decode error, retried after the request backoff.
  size_t maxListBytes = 0;
  // Each watch asks the server to end it after a random time in [min, 2*min), as client-go
  // does, so that many clients do not all reconnect at once.
  std::chrono::seconds minWatchTimeout{300};
  std::chrono::milliseconds listTimeout{60000};
  // A watch that delivers nothing for this long past its timeoutSeconds is dead.
  std::chrono::milliseconds watchGrace{30000};
  // A watch the server ends sooner than this without one event is a failure, not a
  // normal end: it is retried after the request backoff (client-go: "very short watch").
  std::chrono::milliseconds shortWatch{1000};
  // The longest Retry-After honoured; a longer one waits this long.
  std::chrono::milliseconds maxRetryAfter{60000};
  BackoffPolicy backoff;  // both backoffs use it
  std::function<double()> random01;  // jitter source; "" = a real random generator
};

// A request-level problem: a failed request, a rejected token, a stream that broke.
struct RequestProblem {
  std::string kind;
  std::string message;  // "LIST Service: 401 Unauthorized: ...; retrying in 1.2s"
};

class Reflector {
 public:
  Reflector(ApiClient& client, ResourceSpec spec, ObjectSink& sink, ReflectorOptions options,
            std::function<void()> onListed, std::function<void(const RequestProblem&)> problems);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void start();
  void stop();

  // The first list has completed.
  bool synced() const { return synced_; }
  const std::string& resourceVersion() const { return resourceVersion_; }
  const ResourceSpec& spec() const { return spec_; }
  size_t lists() const { return lists_; }
  size_t watches() const { return watches_; }
  const std::string& lastError() const { return lastError_; }

 private:
  void startList();
  void requestPage();
  void onPageDone(const HttpError& error, double seconds);
  void startWatch();
  void onWatchFrame(std::string_view frame);
  void onWatchDone(const HttpError& error, double seconds);
  void endWatchNow(const std::string& why);
  // The framer refused the stream: counted, and the watch ends at once.
  void watchUndecodable();
  // Drops a list whose body grew past maxListBytes and fails it as undecodable.
  void endListNow(const std::string& why);
  void listUndecodable(const std::string& why);
  // A failed request's body, kept for describeFailure() up to a bound.
  void keepFailureBody(std::string_view data);
  // A relist is decided: counted once, then LIST after the relist backoff.
  void relistLater(const std::string& why);
  // Another attempt of a failed request after the request backoff, or after the
  // server's Retry-After when the failed response carried one.
  void retryLater(const std::string& what, void (Reflector::*next)());
  void runLater(std::chrono::milliseconds wait, void (Reflector::*next)());
  void post(void (Reflector::*next)());
  // The watch did its job: backoffs start over.
  void watchProgressed();
  std::string target(bool watch, std::chrono::seconds timeout) const;
  std::string describeFailure(int status) const;
  void report(const std::string& message);

  ApiClient& client_;
  ResourceSpec spec_;
  ObjectSink& sink_;
  ReflectorOptions options_;
  size_t maxListBytes_;
  std::function<void()> onListed_;
  std::function<void(const RequestProblem&)> problems_;
  std::unique_ptr<ApiConnection> conn_;
  boost::asio::steady_timer timer_;
  Backoff backoff_;         // request failures
  Backoff relistBackoff_;   // relists
  std::function<double()> random_;
  std::shared_ptr<bool> alive_;  // reset by stop(): queued callbacks see it and do nothing

  bool running_ = false;
  bool synced_ = false;
  std::string resourceVersion_;
  std::string continue_;
  int status_ = 0;
  std::string body_;  // a list page, or the body of a failed request
  JsonFramer framer_;
  size_t watchEvents_ = 0;
  bool fullList_ = false;  // this list goes unpaginated (its continue token expired)
  bool relistRequested_ = false;
  bool watchEnded_ = false;
  bool watchUndecodable_ = false;  // this watch ended on bytes the framer refused
  // Watches in a row that ended undecodable with no event decoded since: the first is
  // resumed at once, the next ones after the request backoff. Reset by progress.
  size_t undecodableWatches_ = 0;
  std::string watchError_;
  std::chrono::steady_clock::time_point requestStart_;
  size_t lists_ = 0;
  size_t watches_ = 0;
  std::string lastError_;
};

}  // namespace switchyard::k8s::apiserver
