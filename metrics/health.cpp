#include "metrics/health.h"

#include <boost/asio/ip/address.hpp>

#include <cstdio>
#include <ctime>

#include "k8sclient/objects.h"

namespace switchyard::metrics {

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

HealthServer::HealthServer(boost::asio::io_context& io, const HealthState& state, Observer observer)
    : state_(state), observer_(std::move(observer)),
      listener_(io, [this](const std::string& path) { return std::optional<HttpReply>(answer(path)); }) {}

HttpReply HealthServer::answer(const std::string& path) const {
  HttpReply reply;
  if (path == "/healthz" || path == "/livez") {
    auto now = HealthState::Clock::now();
    bool forHealthz = path == "/healthz";
    reply.status = state_.code(now, forHealthz);
    reply.headers = {{"X-Content-Type-Options", "nosniff"}};
    reply.body = state_.body(now, forHealthz);
  } else {
    reply.status = 404;
    reply.contentType = "text/plain; charset=utf-8";
    reply.body = "404 page not found\n";
  }
  if (observer_) {
    observer_(path, reply.status);
  }
  return reply;
}

bool HealthServer::listen(const std::string& host, uint16_t port, std::string& error) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) {
    error = "healthz address " + host + ": " + ec.message();
    return false;
  }
  // The kernel's default for [::] (dual-stack), as before and as Go's listeners.
  if (!listener_.listen(tcp::endpoint(addr, port), false, ec)) {
    error = "healthz listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
    return false;
  }
  return true;
}

uint16_t HealthServer::port() const { return listener_.localEndpoint().port(); }

}  // namespace switchyard::metrics
