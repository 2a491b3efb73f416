// NetworkPolicy semantics in the control plane: Pods, Namespaces and NetworkPolicies in,
// the entries of the policy maps out (identities, ipcache, local endpoints, rules), so the
// datapath only looks values up. Nothing here touches BPF: bpf/ writes a State, and diff()
// says which entries a change rewrites.
//
// The model (docs/policy.md):
// - identity: each distinct (namespace, namespace labels, pod labels) of a pod with an address
//   gets a number >= kFirstPodIdentity. Identities are node-local (peers are recognised by
//   their address through this node's ipcache), so nodes need not agree on them.
// - ipBlock: every cidr and except of every policy is a prefix in the ipcache with its own
//   CIDR identity (>= kFirstCidrIdentity); the two world prefixes (IPv4 /0, IPv6 /0) are
//   prefixes too. An address's longest-matching prefix P is inside cidr C and outside each
//   except E exactly when the address is (prefixes nest), so a rule with ipBlock(C, except)
//   allows every prefix identity P with P in C and P in no E.
// - a pod address is an ipcache entry carrying both its pod identity and the CIDR identity of
//   its longest ipBlock prefix: ipBlock peers match pod addresses too, as the upstream netpol
//   e2e suite expects (Cilium differs here).
// - rule: (endpoint, direction, peer identity or kIdentityAny, protocol or 0 = any, port prefix)
//   -> allow, for an LPM map whose key ends in the port: a port range is split into
//   prefix-aligned blocks (at most 30), "any port" is a shorter prefix.
// - an endpoint is isolated in a direction iff some policy of its namespace selects it with
//   that policy type; a non-isolated direction allows everything.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "k8sclient/objects.h"
#include "lb/types.h"
#include "policy/selector.h"

namespace switchyard::policy {

inline constexpr uint32_t kIdentityAny = 0;    // in rule keys only: every peer
inline constexpr uint32_t kIdentityWorld = 1;  // the pod identity of an address no pod has
inline constexpr uint32_t kFirstPodIdentity = 256;
inline constexpr uint32_t kFirstCidrIdentity = 1u << 24;

enum class Direction : uint8_t { Ingress = 0, Egress = 1 };
const char* directionName(Direction d);

// ipcache value: who an address is. For a prefix entry podIdentity is kIdentityWorld.
struct Peer {
  uint32_t podIdentity = kIdentityWorld;
  uint32_t cidrIdentity = 0;
  auto operator<=>(const Peer&) const = default;
};

struct RuleKey {
  uint32_t endpoint = 0;
  Direction dir = Direction::Ingress;
  uint32_t identity = kIdentityAny;
  uint8_t proto = 0;          // 0: any protocol (and then any port)
  uint16_t port = 0;          // the block's first port
  uint8_t portPrefixLen = 0;  // 16: one port; 0: any port
  auto operator<=>(const RuleKey&) const = default;
  std::string str() const;
};

struct Endpoint {
  uint32_t id = 0;
  std::string pod;  // namespace/name
  uint32_t identity = 0;
  bool ingressIsolated = false;
  bool egressIsolated = false;
  // Some policy selecting it has a rule in that direction: a denial is "by policy", not
  // "by default" (counters only).
  bool ingressRules = false;
  bool egressRules = false;
  auto operator<=>(const Endpoint&) const = default;
};

struct IdentityInfo {
  std::string namespace_;
  Labels namespaceLabels;
  Labels podLabels;
  auto operator<=>(const IdentityInfo&) const = default;
};

// The desired content of the policy maps.
struct State {
  std::map<lb::Cidr, Peer> ipcache;             // pod addresses (/32, /128) and ipBlock prefixes
  std::map<lb::IpAddr, Endpoint> endpoints;     // this node's pods, by address
  std::set<RuleKey> rules;
  std::map<uint32_t, IdentityInfo> identities;  // for status
  std::map<uint32_t, lb::Cidr> cidrIdentities;  // for status
};

// Which entries of each map a change adds, rewrites or removes.
struct Diff {
  std::map<lb::Cidr, Peer> ipcacheUpsert;
  std::vector<lb::Cidr> ipcacheDelete;
  std::map<lb::IpAddr, Endpoint> endpointUpsert;
  std::vector<lb::IpAddr> endpointDelete;
  std::vector<RuleKey> ruleAdd;
  std::vector<RuleKey> ruleDelete;
  size_t size() const;
};
Diff diff(const State& before, const State& after);

// Splits [lo, hi] into the fewest prefix-aligned blocks (port, prefix length of 16 bits).
std::vector<std::pair<uint16_t, uint8_t>> portBlocks(uint16_t lo, uint16_t hi);

class Compiler {
 public:
  explicit Compiler(std::string nodeName) : node_(std::move(nodeName)) {}

  void upsertPod(const k8s::Pod& pod) { pods_[pod.metadata.key()] = pod; }
  void deletePod(const std::string& key) { pods_.erase(key); }
  void upsertNamespace(const k8s::Namespace& ns) { namespaces_[ns.metadata.name] = ns.metadata.labels; }
  void deleteNamespace(const std::string& name) { namespaces_.erase(name); }
  void upsertPolicy(const k8s::NetworkPolicy& p) { policies_[p.metadata.key()] = p; }
  void deletePolicy(const std::string& key) { policies_.erase(key); }

  // The state for everything known now. Identity and endpoint numbers stay the same from one
  // call to the next for what did not change, so diff() of two states is small.
  State compute();

  // After a restart: the numbers the pinned maps hold (a pod identity by the pod's address, a
  // CIDR identity by its prefix, an endpoint number by the pod's address), so the next
  // compute() gives what did not change while no daemon ran its old number and its diff
  // against the pinned entries is only what changed. A number goes to the first object that
  // claims it (objects in key order); every new number is above every adopted one, so no
  // new number means another object's entries still in the maps. Call before that compute().
  void adoptNumbers(const State& pinned);

 private:
  using IdentityKey = IdentityInfo;
  uint32_t identityOf(const IdentityKey& k, const std::vector<lb::IpAddr>& ips, std::set<uint32_t>& used);
  uint32_t cidrIdentityOf(const lb::Cidr& c, std::set<uint32_t>& used);
  uint32_t endpointOf(const std::string& pod, const std::vector<lb::IpAddr>& ips, std::set<uint32_t>& used);

  // adoptNumbers()'s hints, for one compute().
  struct Adopted {
    std::map<lb::IpAddr, uint32_t> identityAt, endpointAt;
    std::map<lb::Cidr, uint32_t> cidr;
    std::set<uint32_t> identities, cidrs, endpoints;  // the numbers given out again
    static uint32_t claim(const std::map<lb::IpAddr, uint32_t>& at, const std::vector<lb::IpAddr>& ips,
                          std::set<uint32_t>& claimed);
  };
  std::optional<Adopted> adopted_;

  std::string node_;
  std::map<std::string, k8s::Pod> pods_;
  std::map<std::string, Labels> namespaces_;
  std::map<std::string, k8s::NetworkPolicy> policies_;

  std::map<IdentityKey, uint32_t> identities_;
  uint32_t nextIdentity_ = kFirstPodIdentity;
  std::map<lb::Cidr, uint32_t> cidrIdentities_;
  uint32_t nextCidrIdentity_ = kFirstCidrIdentity;
  std::map<std::string, uint32_t> endpointIds_;
  uint32_t nextEndpoint_ = 1;
};

}  // namespace switchyard::policy
