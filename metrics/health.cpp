#include "metrics/health.h"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <ctime>
#include <memory>

#include "k8sclient/objects.h"

namespace switchyard::metrics {

namespace http = boost::beast::http;
using boost::asio::ip::tcp;

std::string goTimeString(HealthState::Clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ns / 1000000000);
  long frac = static_cast<long>(ns % 1000000000);
  if (ns <= 0) {
    return "0001-01-01 00:00:00 +0000 UTC";  // Go's zero time
  }
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &utc);
  std::string out = buf;
  if (frac != 0) {
    char f[16];
    std::snprintf(f, sizeof(f), ".%09ld", frac);
    std::string fs = f;
    while (fs.back() == '0') {
      fs.pop_back();
    }
    out += fs;
  }
  return out + " +0000 UTC";
}

bool nodeEligible(const k8s::Node* node) {
  if (!node || node->metadata.deleting) {
    return false;
  }
  for (const k8s::Node::Taint& t : node->taints) {
    if (t.key == kToBeDeletedTaint) {
      return false;
    }
  }
  return true;
}

bool HealthState::live(Clock::time_point now) const {
  // As kube-proxy: healthy while starting up or fully synced, and while the oldest
  // unapplied change is younger than the timeout.
  return !oldestPending_ || now - *oldestPending_ < timeout_;
}

bool HealthState::healthy(Clock::time_point now) const {
  if (!synced_ && !adoptedProgrammed_) {
    return false;  // a fresh node forwards nothing before its first complete sync
  }
  return live(now);
}

int HealthState::code(Clock::time_point now, bool forHealthz) const {
  bool ok = forHealthz ? healthy(now) && nodeEligible_ : live(now);
  return ok ? 200 : 503;
}

std::string HealthState::body(Clock::time_point now, bool forHealthz) const {
  bool ok = code(now, forHealthz) == 200;
  // As kube-proxy: a healthy server reports lastUpdated = now, for older clients.
  std::string last = goTimeString(ok ? now : (synced_ ? lastUpdated_ : Clock::time_point{}));
  std::string s = "{\"lastUpdated\": \"" + last + "\",\"currentTime\": \"" + goTimeString(now) + "\"";
  if (forHealthz) {
    s += std::string(", \"nodeEligible\": ") + (nodeEligible_ ? "true" : "false");
  }
  return s + "}";
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HealthState& state, const HealthServer::Observer& observer)
      : stream_(std::move(socket)), state_(state), observer_(observer) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    auto self = shared_from_this();
    http::async_read(stream_, buffer_, request_,
                     [self](boost::beast::error_code ec, size_t) {
                       if (!ec) {
                         self->respond();
                       }
                     });
  }

 private:
  void respond() {
    std::string target(request_.target());
    std::string path = target.substr(0, target.find('?'));
    auto now = HealthState::Clock::now();
    response_.version(request_.version());
    response_.keep_alive(false);
    int code = 404;
    if (path == "/healthz" || path == "/livez") {
      bool forHealthz = path == "/healthz";
      code = state_.code(now, forHealthz);
      response_.set(http::field::content_type, "application/json");
      response_.set("X-Content-Type-Options", "nosniff");
      response_.body() = state_.body(now, forHealthz);
    } else {
      response_.set(http::field::content_type, "text/plain; charset=utf-8");
      response_.body() = "404 page not found\n";
    }
    response_.result(static_cast<http::status>(code));
    response_.prepare_payload();
    if (observer_) {
      observer_(path, code);
    }
    auto self = shared_from_this();
    http::async_write(stream_, response_, [self](boost::beast::error_code, size_t) {
      boost::beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  const HealthState& state_;
  const HealthServer::Observer& observer_;
};

}  // namespace

HealthServer::HealthServer(boost::asio::io_context& io, const HealthState& state, Observer observer)
    : io_(io), acceptor_(io), state_(state), observer_(std::move(observer)) {}

bool HealthServer::listen(const std::string& host, uint16_t port, std::string& error) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) {
    error = "healthz address " + host + ": " + ec.message();
    return false;
  }
  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) {
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor_.bind(ep, ec);
  }
  if (!ec) {
    acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    error = "healthz listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
    return false;
  }
  accept();
  return true;
}

uint16_t HealthServer::port() const { return acceptor_.local_endpoint().port(); }

void HealthServer::accept() {
  acceptor_.async_accept(io_, [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted) {
      return;
    }
    if (!ec) {
      std::make_shared<Session>(std::move(socket), state_, observer_)->start();
    }
    accept();
  });
}

}  // namespace switchyard::metrics
