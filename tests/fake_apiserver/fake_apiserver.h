// A fake Kubernetes API server for tests, speaking the real HTTP protocol (HTTPS with a
// test CA, or plain HTTP) on its own thread:
//   discovery   /version /api /apis /api/v1 /apis/discovery.k8s.io[/v1] /openapi/v3[/...]
//   objects     GET (get, list with limit/continue, watch), POST, PUT, PATCH, DELETE on
//               services, endpointslices, nodes and namespaces
//   watch       ?watch=true: chunked body, one JSON event per line, bookmarks when asked
//               (allowWatchBookmarks), ends at timeoutSeconds, 410 for compacted versions
//   auth        Authorization: Bearer <token>, or a client certificate from clientCaPem;
//               401 otherwise
// and a control API for tests: change objects while watches run, expire or drop watches,
// send bookmarks or ERROR events, cut events into chunks at chosen places, cut an event off
// mid-object, write raw bytes or an endless event into open watches, answer chosen
// requests with a failure, and a request log with the time of each request. The same
// control exists over HTTP under /fake/ for scripts (POST /fake/expire, /fake/drop,
// /fake/bookmark, /fake/compact, /fake/apply with a JSON object or List as the body,
// /fake/truncate?kind=K[&keep=N], /fake/raw?kind=K with the bytes as the body,
// /fake/endless?kind=K).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/fake_apiserver/fake_state.h"

namespace switchyard::fake {

struct FakeApiServerOptions {
  std::string bindAddress = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port
  bool tls = true;
  std::string certPem, keyPem;  // the server's certificate (tls)
  std::string clientCaPem;      // "" = client certificates are not asked for
  std::string token;            // "" = no authentication
};

// Cuts one event line into the pieces written as separate HTTP chunks. index counts the
// events a server has written (from 1), so a test can cut each one at a different place.
using WatchChunker = std::function<std::vector<std::string>(const std::string& line, size_t index)>;

// A scripted failure: the next `times` requests whose "METHOD target" starts with prefix
// get it instead of their real answer (the request log records them with their code).
struct InjectedFailure {
  enum class Kind {
    HttpStatus,  // an HTTP response with this code and a Status body
    WatchError,  // a 200 watch stream with one ERROR event carrying this code, then its end
    EmptyWatch,  // a 200 watch stream that ends at once, without a single event
    RawWatch,    // a 200 watch stream carrying `body` as it is, then its end
  };
  std::string prefix;  // e.g. "GET /api/v1/services?allowWatchBookmarks"
  Kind kind = Kind::HttpStatus;
  int code = 500;
  std::string reason = "InternalError";
  int times = 1;              // -1: every matching request until clearInjectedFailures()
  int retryAfterSeconds = 0;  // HttpStatus: send Retry-After when > 0
  std::string body;           // RawWatch: the bytes of the stream
};

// The endless events written so far (streamEndlessWatchEvent).
struct EndlessEventStats {
  size_t streams = 0;  // started
  size_t ended = 0;    // ended: the client closed the connection, or the server stopped
  uint64_t bytes = 0;  // written to the sockets, chunk framing included
};

// One line of the request log and when the server read the request.
struct LoggedRequest {
  std::chrono::steady_clock::time_point at;
  std::string line;  // "GET /api/v1/services?limit=500 -> 200"
};

class FakeApiServer {
 public:
  explicit FakeApiServer(FakeApiServerOptions options);
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Binds and starts serving on a thread of its own; false with a reason if it cannot.
  bool start(std::string& error);
  void stop();
  uint16_t port() const { return port_; }
  std::string url() const;  // "https://127.0.0.1:PORT"

  // ---- control; every call runs on the server's thread and waits for it ----
  // Creates or replaces the object (any served kind; JSON with kind and apiVersion).
  Response apply(const std::string& json);
  Response remove(const std::string& apiVersion, const std::string& kind, const std::string& ns,
                  const std::string& name);
  // Runs fn on the state atomically with respect to requests (several changes at once).
  void withState(const std::function<void(FakeState&)>& fn);
  uint64_t resourceVersion();

  // Sends a BOOKMARK at the current resourceVersion to every watch that allowed them.
  void sendBookmarks();
  // Closes every watch connection abruptly, mid-body (no last chunk, no TLS close).
  void dropWatches();
  // Compacts the history and sends every watch an ERROR event (410 Expired), then ends
  // it. Watches from older versions are then refused too.
  void expireWatches();
  // Compacts the history only: the next watch from an older version gets 410.
  void compact();
  // How a watch from a compacted version is refused: an ERROR event in a 200 stream (the
  // real API server's way, default) or an HTTP 410 response.
  void setExpiredWatchAsHttp410(bool http410);
  // While silenced, changes are stored but not sent to the watches already open, as if
  // they lagged behind; a later relist must find them.
  void setWatchesSilenced(bool silenced);
  // While held, events are collected per watch; release sends each watch's in one chunk.
  void holdWatchEvents(bool hold);
  void setWatchChunker(WatchChunker chunker);
  void setToken(const std::string& token);
  // Sends every open watch an ERROR event with this Status, then ends it, as the API
  // server does when a watch fails on its side (code 500, or 410 without compaction).
  void sendWatchError(int code, const std::string& reason, const std::string& message);
  // The next watch event of this kind ("Service"), on whichever watch it goes to first, is
  // cut off after `keep` bytes (0: half of it), as by a faulty proxy: the rest, its newline
  // included, is never sent, and the events after it follow as usual.
  void truncateNextWatchEvent(const std::string& kind, size_t keep = 0);
  // Writes bytes, as one chunk, into every open watch of this kind ("" = every watch).
  // Returns how many watches got them.
  size_t injectRawWatchBytes(const std::string& kind, const std::string& bytes);
  // Starts in every open watch of this kind an event that never ends: an object whose
  // string value goes on and on, written as fast as the client reads, until the client
  // closes the connection. The watch gets nothing else. Returns how many watches.
  size_t streamEndlessWatchEvent(const std::string& kind);
  EndlessEventStats endlessEventStats();
  // Failures are checked in the order injected; the first that matches answers.
  void injectFailure(InjectedFailure failure);
  void clearInjectedFailures();

  size_t activeWatches();
  // Requests served, as "GET /api/v1/services?limit=500 -> 200" (watches: on start).
  std::vector<std::string> requestLog();
  std::vector<LoggedRequest> timedRequestLog();
  void clearRequestLog();
  // How many requests in the log start with prefix (e.g. "GET /api/v1/services?limit").
  size_t countRequests(const std::string& prefix);

  struct Impl;  // fake_apiserver.cpp; public so that its sessions can name it

 private:
  std::shared_ptr<Impl> impl_;
  uint16_t port_ = 0;
  FakeApiServerOptions options_;
};

}  // namespace switchyard::fake
