// One HTTP/1.1 listening socket on the daemon's io_context (Boost.Beast). Each connection
// carries one request; the handler's reply is written and the connection closed, as the
// load balancers' and kubelet's health checkers expect. Shared by /healthz and /livez
// (health.h) and the per-Service health checks (service_health.h).
//
// All calls on the io_context's thread. A listener closed (or destroyed) while requests
// are in flight is safe: each connection holds the handler, and pending accepts hold the
// socket, until they complete.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace switchyard::metrics {

struct HttpReply {
  int status = 200;
  std::string contentType = "application/json";
  // More headers, in order (X-Content-Type-Options, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Called with the request's path (its target without the query). std::nullopt closes the
// connection without an answer: what a client of a server that just closed sees.
using HttpHandler = std::function<std::optional<HttpReply>(const std::string& path)>;

class HttpListener {
 public:
  HttpListener(boost::asio::io_context& io, HttpHandler handler);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Opens, binds (SO_REUSEADDR, as Go's listeners) and listens on `endpoint`, then accepts.
  // v6Only: an IPv6 wildcard that leaves IPv4 to a listener of its own on 0.0.0.0; false
  // keeps the kernel's default (net.ipv6.bindv6only, dual-stack on most hosts).
  bool listen(const boost::asio::ip::tcp::endpoint& endpoint, bool v6Only, boost::system::error_code& ec);
  // The bound address and port (the port the kernel chose when asked for 0).
  boost::asio::ip::tcp::endpoint localEndpoint() const;
  // Stops accepting; connections already accepted finish (the handler may answer nullopt).
  void close();

 private:
  struct Acceptor;
  static void acceptNext(boost::asio::io_context& io, std::shared_ptr<Acceptor> acceptor,
                         std::shared_ptr<const HttpHandler> handler);

  boost::asio::io_context& io_;
  std::shared_ptr<const HttpHandler> handler_;
  std::shared_ptr<Acceptor> acceptor_;
};

}  // namespace switchyard::metrics
