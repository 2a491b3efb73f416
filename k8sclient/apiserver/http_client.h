// One HTTP/1.1 connection to the API server (TLS with OpenSSL unless the server URL is
// http://), kept alive between requests, with the response body streamed to the caller as
// it arrives. A reflector owns one connection: its list pages and then its watch use it in
// turn, so every watch stream has a connection of its own.
//
// Boost.Beast and Asio's SSL live only in http_client.cpp (they compile slowly); this
// header exposes none of their types.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "k8sclient/apiserver/bearer_token.h"
#include "k8sclient/apiserver/connection_config.h"

namespace switchyard::k8s::apiserver {

struct HttpError {
  enum class Kind {
    None,
    Config,    // the TLS material in the connection config is unusable
    Resolve,   // host name did not resolve
    Connect,   // TCP connect failed
    Tls,       // handshake failed: certificate verification, protocol
    Timeout,   // no progress before the deadline
    Closed,    // the peer closed the connection (mid-body: an abrupt disconnect)
    Protocol,  // not HTTP/1.1 as expected
  };
  Kind kind = Kind::None;
  std::string message;

  explicit operator bool() const { return kind != Kind::None; }
};

const char* httpErrorKindName(HttpError::Kind k);

struct HttpRequest {
  std::string target;  // path and query, e.g. "/api/v1/services?limit=500"
  std::string accept = "application/json";
  std::chrono::milliseconds timeout{60000};  // the whole request, body included
};

class ApiConnection {
 public:
  struct Handlers {
    // The status line and headers have arrived.
    std::function<void(int status)> onHead;
    // A piece of the (de-chunked) body, as it arrives.
    std::function<void(std::string_view)> onBody;
    // The response ended: error.kind None when the body was complete.
    std::function<void(const HttpError&)> onDone;
  };

  ApiConnection(boost::asio::io_context& io, const ConnectionConfig& config, BearerToken& token);
  ~ApiConnection();
  ApiConnection(const ApiConnection&) = delete;
  ApiConnection& operator=(const ApiConnection&) = delete;

  // Sends a GET (connecting first if needed; a stale kept-alive connection is retried once
  // on a new one). One request at a time. Exactly one onDone follows unless close() is
  // called first.
  void get(const HttpRequest& request, Handlers handlers);

  // Aborts the request in flight (no handler runs afterwards) and drops the connection.
  void close();

  // How many TCP connections this object has opened (tests check keep-alive with it).
  size_t connectionsOpened() const;

  // The Retry-After header of the current (or last) response, in its delta-seconds form;
  // nothing when absent or an HTTP-date (the API server sends seconds). Set before onHead.
  std::optional<std::chrono::seconds> retryAfter() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace switchyard::k8s::apiserver
