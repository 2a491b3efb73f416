// /healthz and /livez with kube-proxy's semantics and JSON body:
//   {"lastUpdated": "...","currentTime": "...", "nodeEligible": true}
// 200 when the dataplane is fresh, 503 when stale: before the first complete sync, or
// when a change has waited longer than the health timeout (2 x syncPeriod, as kube-proxy).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace switchyard::metrics {

class HealthState {
 public:
  using Clock = std::chrono::system_clock;

  explicit HealthState(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  void queued(Clock::time_point t) {
    if (!oldestPending_) {
      oldestPending_ = t;
    }
  }
  void updated(Clock::time_point t) {
    lastUpdated_ = t;
    oldestPending_.reset();
    synced_ = true;
  }
  void setNodeEligible(bool e) { nodeEligible_ = e; }

  bool healthy(Clock::time_point now) const;
  bool nodeEligible() const { return nodeEligible_; }
  std::string body(Clock::time_point now, bool forHealthz) const;

 private:
  std::chrono::milliseconds timeout_;
  std::optional<Clock::time_point> oldestPending_;
  Clock::time_point lastUpdated_{};
  bool synced_ = false;
  bool nodeEligible_ = true;
};

// Formats a time as Go's time.Time.String() does: "2006-01-02 15:04:05.999999999 +0000 UTC".
std::string goTimeString(HealthState::Clock::time_point t);

// A small HTTP/1.1 server (Boost.Beast) on the daemon's io_context.
class HealthServer {
 public:
  // onRequest(path, code) lets the caller count requests.
  using Observer = std::function<void(const std::string& path, int code)>;

  HealthServer(boost::asio::io_context& io, const HealthState& state, Observer observer);
  // Binds host:port; false with a message when it cannot.
  bool listen(const std::string& host, uint16_t port, std::string& error);
  uint16_t port() const;

 private:
  void accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const HealthState& state_;
  Observer observer_;
};

}  // namespace switchyard::metrics
