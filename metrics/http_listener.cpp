#include "metrics/http_listener.h"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>

namespace switchyard::metrics {

namespace http = boost::beast::http;
using boost::asio::ip::tcp;

// Shared with the pending accept, so that a completion queued before close() (or the
// listener's destruction) finds a live socket and the `closed` flag rather than freed memory.
struct HttpListener::Acceptor {
  explicit Acceptor(boost::asio::io_context& io) : socket(io), backoff(io) {}
  tcp::acceptor socket;
  boost::asio::steady_timer backoff;  // after a failed accept (EMFILE): no busy loop
  bool closed = false;
};

namespace {

// A health checker that connects and sends nothing must not hold a connection forever.
constexpr auto kRequestTimeout = std::chrono::seconds(10);
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const HttpHandler> handler)
      : stream_(std::move(socket)), handler_(std::move(handler)) {}

  void start() {
    stream_.expires_after(kRequestTimeout);
    auto self = shared_from_this();
    http::async_read(stream_, buffer_, request_, [self](boost::beast::error_code ec, size_t) {
      if (!ec) {
        self->respond();
      }
    });
  }

 private:
  void respond() {
    std::string target(request_.target());
    std::optional<HttpReply> reply = (*handler_)(target.substr(0, target.find('?')));
    if (!reply) {
      boost::beast::error_code ignored;
      stream_.socket().close(ignored);
      return;
    }
    response_.version(request_.version());
    response_.keep_alive(false);
    response_.result(static_cast<http::status>(reply->status));
    response_.set(http::field::content_type, reply->contentType);
    for (const auto& [name, value] : reply->headers) {
      response_.set(name, value);
    }
    response_.body() = std::move(reply->body);
    response_.prepare_payload();
    serializer_.emplace(response_);
    auto self = shared_from_this();
    auto done = [self](boost::beast::error_code, size_t) {
      boost::beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    };
    // HEAD gets the headers (Content-Length included) and no body, as Go's net/http does.
    if (request_.method() == http::verb::head) {
      http::async_write_header(stream_, *serializer_, done);
    } else {
      http::async_write(stream_, *serializer_, done);
    }
  }

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::shared_ptr<const HttpHandler> handler_;
};

}  // namespace

HttpListener::HttpListener(boost::asio::io_context& io, HttpHandler handler)
    : io_(io), handler_(std::make_shared<const HttpHandler>(std::move(handler))),
      acceptor_(std::make_shared<Acceptor>(io)) {}

HttpListener::~HttpListener() { close(); }

bool HttpListener::listen(const tcp::endpoint& endpoint, bool v6Only, boost::system::error_code& ec) {
  close();
  acceptor_ = std::make_shared<Acceptor>(io_);
  tcp::acceptor& a = acceptor_->socket;
  a.open(endpoint.protocol(), ec);
  if (!ec && endpoint.address().is_v6() && v6Only) {
    a.set_option(boost::asio::ip::v6_only(true), ec);
  }
  if (!ec) {
    a.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    a.bind(endpoint, ec);
  }
  if (!ec) {
    a.listen(boost::asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    close();
    return false;
  }
  acceptNext(io_, acceptor_, handler_);
  return true;
}

tcp::endpoint HttpListener::localEndpoint() const {
  boost::system::error_code ec;
  tcp::endpoint ep = acceptor_->socket.local_endpoint(ec);
  return ec ? tcp::endpoint() : ep;
}

void HttpListener::close() {
  acceptor_->closed = true;
  acceptor_->backoff.cancel();
  boost::system::error_code ignored;
  acceptor_->socket.close(ignored);
}

void HttpListener::acceptNext(boost::asio::io_context& io, std::shared_ptr<Acceptor> acceptor,
                              std::shared_ptr<const HttpHandler> handler) {
  tcp::acceptor& socket = acceptor->socket;
  socket.async_accept(io, [&io, acceptor = std::move(acceptor), handler = std::move(handler)](
                              boost::system::error_code ec, tcp::socket peer) mutable {
    if (acceptor->closed || ec == boost::asio::error::operation_aborted) {
      return;
    }
    if (!ec) {
      std::make_shared<Session>(std::move(peer), handler)->start();
      acceptNext(io, std::move(acceptor), std::move(handler));
      return;
    }
    // Out of file descriptors (or memory): accepting again at once would spin the daemon's
    // only thread. The pending connection waits in the backlog.
    Acceptor& a = *acceptor;
    a.backoff.expires_after(kAcceptRetry);
    a.backoff.async_wait([&io, acceptor = std::move(acceptor), handler = std::move(handler)](
                             boost::system::error_code ec) mutable {
      if (!ec && !acceptor->closed) {
        acceptNext(io, std::move(acceptor), std::move(handler));
      }
    });
  });
}

}  // namespace switchyard::metrics
