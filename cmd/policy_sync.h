// policy.enabled: Pods, Namespaces and NetworkPolicies from the source into policy/'s
// Compiler, its State into the policy maps (bpf/policy_maps.h), coalesced like the service
// sync, and pol_state_v1 (revision, flags) after each write. The daemon forwards the source's
// events here; nothing here parses objects or knows a map's layout.
//
// What a sync does: compute the State for everything known, diff it against the State last
// written, write the diff, and only when every operation succeeded adopt the new State and
// bump pol_state_v1.revision (so established flows are judged again). When a map refuses an
// entry (full): an error naming the map and the entry, counted, the entries already added are
// taken out again, so the previous rules stay in force, and a retry after a backoff.
//
// Restart: the pinned maps are read back and the Compiler adopts their numbers (identities,
// endpoints), so the first sync diffs against what is in force and rewrites only what
// changed while no daemon ran; no flow ever sees an empty map.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <vector>
#include <optional>
#include <string>

#include "bpf/policy_maps.h"
#include "k8sclient/objects.h"
#include "metrics/policy_metrics.h"
#include "policy/compiler.h"

namespace switchyard::cmd {

struct PolicySyncOptions {
  bool enabled = false;    // policy.enabled
  bool logDenied = false;  // policy.logDenied
  std::string nodeName;    // whose pods are endpoints
  std::string namesFile;   // "" = none: where `switchyard status policy` finds pod names
  std::chrono::milliseconds minSyncPeriod{100};
};

// The file a daemon on pinPath writes the names of what its policy maps hold to (bpffs holds
// no regular files): /run/switchyard/state<pinPath>/policy-names.json.
std::string policyNamesPath(const std::string& pinPath);

// The policy maps and pol_state_v1 as a sync writes them.
struct PolicySyncMaps {
  bpf::PolicyMapFds maps;
  int state = -1;  // pol_state_v1
};

class PolicySync {
 public:
  using Clock = std::chrono::steady_clock;

  PolicySync(boost::asio::io_context& io, PolicySyncMaps fds, PolicySyncOptions options,
             metrics::PolicyMetrics& metrics);

  // Takes over what the maps hold. Enabled: reads them back (the first sync diffs against
  // them, with their numbers); pol_state_v1 keeps its flags until that sync. Disabled: clears
  // pol_state_v1's flags (the programs judge nothing) and empties the maps. False with a
  // message naming the map when one cannot be read or written.
  bool start(std::string& error);

  // Source events; each asks for a sync (at most one per minSyncPeriod).
  void onPodUpsert(const k8s::Pod& p);
  void onPodDelete(const k8s::Pod& last);
  void onNamespaceUpsert(const k8s::Namespace& n);
  void onNamespaceDelete(const k8s::Namespace& last);
  void onNetworkPolicyUpsert(const k8s::NetworkPolicy& p);
  void onNetworkPolicyDelete(const k8s::NetworkPolicy& last);
  // The source's first complete picture: no sync runs before it, since a partial one (Pods
  // without their policies) would lift isolation the maps hold.
  void onSynced();

  struct Result {
    bool ran = false;      // false: disabled, not synced yet, or nothing changed
    bool ok = true;        // every map operation succeeded
    size_t operations = 0; // map entries written or removed (the rollback included)
    std::string error;     // the first failed operation: "pol_rules_v1: endpoint 1 ingress ...: errno"
  };
  // One sync now (the timer's; public for tests).
  Result sync();
  // The periodic repair (the daemon's hourly full resync): takes what the maps hold as
  // written, so the next sync rewrites whatever drifted (someone else writing them), and
  // asks for that sync.
  void resync();

  const policy::State& written() const { return written_; }
  // The pod ("namespace/name") holding `a` now, "" if none (for the denied-flow log).
  std::string podAt(const lb::IpAddr& a) const;
  uint32_t revision() const { return revision_; }
  bool pending() const { return dirty_; }

 private:
  void changed();
  void setPodAddresses(const std::string& pod, const std::vector<std::string>& ips);
  void schedule();
  void rollback(const policy::State& attempted);
  bool readBack();
  bool writeState(uint32_t flags);
  uint32_t flags() const;
  void publish();
  void writeNames() const;

  boost::asio::io_context& io_;
  PolicySyncMaps fds_;
  PolicySyncOptions options_;
  metrics::PolicyMetrics& metrics_;
  policy::Compiler compiler_;
  std::map<std::string, std::vector<lb::IpAddr>> podIps_;  // pod -> its addresses
  std::map<lb::IpAddr, std::string> podAt_;                 // address -> pod
  policy::State written_;  // what the maps hold
  uint32_t revision_ = 0;
  bool stateWritten_ = false;  // pol_state_v1 holds revision_ and flags()
  bool synced_ = false;
  bool dirty_ = false;
  std::optional<Clock::time_point> oldestChange_;  // the first change not yet in the maps
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  Clock::time_point lastSync_{};
  std::chrono::milliseconds backoff_{0};
  Clock::time_point notBefore_{};
};

}  // namespace switchyard::cmd
