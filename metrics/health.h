// /healthz and /livez with kube-proxy's semantics and JSON body
// (pkg/proxy/healthcheck/proxy_health.go):
//   {"lastUpdated": "...","currentTime": "...", "nodeEligible": true}
// /livez: 200 unless a change has waited longer than the health timeout (2 x syncPeriod,
// as kube-proxy), including while starting up, so a liveness probe does not restart a
// daemon that is waiting for the API server.
// /healthz: the same, and 503 while the Node is not eligible (deleted, being deleted, or
// tainted by the cluster autoscaler). One difference from kube-proxy: before the first
// complete sync, 200 only if the daemon adopted a programmed dataplane from the pinned
// maps (a restart: the programs keep forwarding), 503 on a fresh node whose maps are
// empty (it forwards nothing yet). docs/operations.md, "Health checks", says why.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "metrics/http_listener.h"

namespace switchyard::k8s {
struct Node;
}

namespace switchyard::metrics {

// The taint the cluster autoscaler puts on a node it is about to remove (kube-proxy's
// ToBeDeletedTaint).
inline constexpr const char* kToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler";

// Whether /healthz may say 200 on this node, as kube-proxy's NodeEligible: not when the
// Node has metadata.deletionTimestamp or the ToBeDeletedByClusterAutoscaler taint, nor
// when it is gone (nullptr: deleted, or absent from a complete list). A delete is
// stricter than kube-proxy, whose older releases re-check the deleted object's fields: a
// Node without finalizers is deleted at once, so the object its delete event carries has
// no deletionTimestamp and usually no taint, and the node that no longer exists would be
// reported eligible.
bool nodeEligible(const k8s::Node* node);

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
  // At startup, after adopting the pinned maps: how many frontends they hold. Non-zero
  // means the dataplane forwards already, so /healthz is 200 before the first sync (until
  // a change is late, as kube-proxy while starting up); zero, or never called, means a
  // fresh node: 503 until the first complete sync.
  void adoptedFrontends(size_t frontends) { adoptedProgrammed_ = frontends > 0; }
  // This node's Node object changed (nullptr: deleted or absent). Until the first call
  // the node is eligible, as kube-proxy's while it starts up.
  void syncNode(const k8s::Node* node) { nodeEligible_ = metrics::nodeEligible(node); }
  void setNodeEligible(bool e) { nodeEligible_ = e; }

  // kube-proxy's proxier health (/livez): no change has waited for the health timeout.
  bool live(Clock::time_point now) const;
  // The dataplane's health, the node ignored (/healthz without the node, and the
  // per-Service health checks' serviceProxyHealthy): live, and programmed (synced once,
  // or adopted from a programmed dataplane).
  bool healthy(Clock::time_point now) const;
  bool nodeEligible() const { return nodeEligible_; }
  // What /healthz (forHealthz) or /livez answers at `now`: 200 or 503.
  int code(Clock::time_point now, bool forHealthz) const;
  std::string body(Clock::time_point now, bool forHealthz) const;

 private:
  std::chrono::milliseconds timeout_;
  std::optional<Clock::time_point> oldestPending_;
  Clock::time_point lastUpdated_{};
  bool synced_ = false;
  bool adoptedProgrammed_ = false;
  bool nodeEligible_ = true;
};

// Formats a time as Go's time.Time.String() does: "2006-01-02 15:04:05.999999999 +0000 UTC".
std::string goTimeString(HealthState::Clock::time_point t);

// /healthz and /livez on the daemon's io_context; any other path is 404, as Go's mux.
class HealthServer {
 public:
  // onRequest(path, code) lets the caller count requests.
  using Observer = std::function<void(const std::string& path, int code)>;

  HealthServer(boost::asio::io_context& io, const HealthState& state, Observer observer);
  // Binds host:port; false with a message when it cannot.
  bool listen(const std::string& host, uint16_t port, std::string& error);
  uint16_t port() const;

 private:
  HttpReply answer(const std::string& path) const;

  const HealthState& state_;
  Observer observer_;
  HttpListener listener_;
};

}  // namespace switchyard::metrics
