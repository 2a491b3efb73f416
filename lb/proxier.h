// Joins the event stream to the syncer: events mark services dirty; sync() turns the
// dirty set (or everything, when a full sync is due) into map writes.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "k8sclient/events.h"
#include "lb/service_tracker.h"
#include "lb/syncer.h"

namespace switchyard::lb {

struct SyncReport {
  bool ran = false;   // false: nothing to do, or the source has not synced yet
  bool full = false;  // every service was synced (first sync, repair, periodic reconcile)
  size_t servicesSynced = 0;
  SyncResult result;
  // Problems in the objects received since the last sync (each reported once, when the
  // object arrives or changes), naming object and field.
  std::vector<std::string> warnings;
  // When the oldest change this sync applied was received (for programming latency).
  std::optional<std::chrono::steady_clock::time_point> oldestChange;
  // The last-change-trigger-time of every EndpointSlice change this sync applied, for
  // kube-proxy's network programming latency.
  std::vector<std::chrono::system_clock::time_point> triggerTimes;
  // The health check inputs (healthCheckPorts(), localEndpoints()) changed in this sync.
  bool healthChanged = false;
};

class Proxier : public k8s::ServiceEventHandler {
 public:
  // node: this node's name (endpoint locality, node hints); its zone comes with the Node.
  // lb: the default algorithm and the Maglev tables' parameters (loadBalancer.*).
  explicit Proxier(DataplaneWriter& writer, std::string nodeName = "",
                   IdAllocator::Now now = nullptr, const LbConfig& lb = {})
      : tracker_(NodeContext{std::move(nodeName), "", LbMode::Snat, false, lb.algorithm}),
        syncer_(writer, std::move(now), lb.maglev) {}

  // Before the first event: loadBalancer.mode (for Services without the annotation) and
  // loadBalancer.dsrDispatch.
  void setLbMode(LbMode mode, bool dsrIpip) { tracker_.setLbMode(mode, dsrIpip); }

  // Before the first event: take over what the pinned maps hold.
  void adopt(const DataplaneState& state) { syncer_.adopt(state); }

  void onServiceUpsert(const k8s::Service& svc) override;
  void onServiceDelete(const k8s::Service& last) override;
  void onEndpointSliceUpsert(const k8s::EndpointSlice& slice) override;
  void onEndpointSliceDelete(const k8s::EndpointSlice& last) override;
  void onSynced() override { sourceSynced_ = true; }
  // This node's Node object: its zone label selects topology hints (a change resyncs every
  // service). A deleted Node keeps the last zone: the endpoints did not move.
  void onNodeUpsert(const k8s::Node& node) override;

  bool sourceSynced() const { return sourceSynced_; }
  bool initialSyncDone() const { return initialSyncDone_; }
  // Changes received and not yet applied (or a repair is due).
  bool pending() const { return tracker_.hasDirty() || needFullSync_ || !initialSyncDone_; }
  std::optional<std::chrono::steady_clock::time_point> oldestPending() const {
    return oldestPending_;
  }

  // Applies what changed; a full (forced) sync when forceFull, after failed writes, and the
  // first time (which also removes what the maps held for services that no longer exist).
  SyncReport sync(bool forceFull = false);

  size_t frontendCount() const { return syncer_.frontendCount(); }
  size_t backendCount() const { return syncer_.backendCount(); }
  size_t maglevTableCount() const { return syncer_.maglevTableCount(); }
  const ServiceTracker& tracker() const { return tracker_; }

  // What kube-proxy's service health server is fed (healthcheck.SyncServices and
  // SyncEndpoints): namespace/name -> healthCheckNodePort, of the LoadBalancer services
  // with externalTrafficPolicy Local; namespace/name -> distinct local ready endpoints.
  const std::map<std::string, uint16_t>& healthCheckPorts() const { return healthPorts_; }
  const std::map<std::string, int>& localEndpoints() const { return localEndpoints_; }

 private:
  void noteChange();
  // Records a synced service's health check inputs; true if they changed.
  bool noteHealth(const std::string& key, const ServiceFrontends& f);

  ServiceTracker tracker_;
  Syncer syncer_;
  bool sourceSynced_ = false;
  bool initialSyncDone_ = false;
  bool needFullSync_ = false;
  std::optional<std::chrono::steady_clock::time_point> oldestPending_;
  std::vector<std::chrono::system_clock::time_point> pendingTriggers_;
  std::vector<std::string> pendingWarnings_;
  std::map<std::string, uint16_t> healthPorts_;
  std::map<std::string, int> localEndpoints_;
};

}  // namespace switchyard::lb
