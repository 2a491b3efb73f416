// kube-proxy's endpoint selection (pkg/proxy/topology.go, CategorizeEndpoints) as a pure
// function: which endpoints "Cluster" and "Local" traffic policy use on this node, with
// the serving-and-terminating fallback decided separately for each, and topology hints
// (hints.forNodes, then hints.forZones) applied to Cluster endpoints only, all or nothing.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace switchyard::lb {

// Endpoint conditions and locality, nils resolved (kube-proxy's BaseEndpointInfo).
inline constexpr uint8_t kEndpointReady = 1u << 0;
inline constexpr uint8_t kEndpointServing = 1u << 1;
inline constexpr uint8_t kEndpointTerminating = 1u << 2;
inline constexpr uint8_t kEndpointLocal = 1u << 3;          // nodeName is this node
inline constexpr uint8_t kEndpointHasNodeHints = 1u << 4;   // hints.forNodes is not empty
inline constexpr uint8_t kEndpointHintedHere = 1u << 5;     // hints.forNodes names this node

// Interned sets of zone names (hints.forZones): an endpoint keeps a 4-byte ID instead of a
// vector of strings (a million endpoints are kept at 100,000 services). ID 0 = no hints.
class ZoneSets {
 public:
  uint32_t intern(std::vector<std::string> zones);  // sorted and deduplicated first
  bool contains(uint32_t id, const std::string& zone) const;
  size_t size() const { return sets_.size(); }

 private:
  std::map<std::vector<std::string>, uint32_t> ids_;
  std::vector<std::vector<std::string>> sets_{{}};
};

struct EndpointView {
  uint8_t flags = 0;     // kEndpoint*
  uint32_t zoneHints = 0;  // ZoneSets ID
  bool ready() const { return flags & kEndpointReady; }
  bool servingTerminating() const { return (flags & kEndpointServing) && (flags & kEndpointTerminating); }
  bool local() const { return flags & kEndpointLocal; }
};

// What a service port's policies need (kube-proxy's ServicePort methods).
struct PortPolicy {
  bool internalLocal = false;         // internalTrafficPolicy Local
  bool externalLocal = false;         // externalTrafficPolicy Local (and externally accessible)
  bool externallyAccessible = false;  // a NodePort, LB IP or external IP
  // Cluster endpoints are used for internal traffic with policy Cluster, and for all
  // external traffic: even with externalTrafficPolicy Local, in-cluster clients of an
  // external address are short-circuited to them.
  bool usesCluster() const { return !internalLocal || externallyAccessible; }
  bool usesLocal() const { return internalLocal || (externalLocal && externallyAccessible); }
};

enum class TopologyMode { None, PreferSameZone, PreferSameNode };

struct Categorized {
  std::vector<size_t> cluster;  // indexes into the endpoints given
  std::vector<size_t> local;
  bool hasAny = false;          // usable endpoints exist anywhere in the cluster
  TopologyMode mode = TopologyMode::None;
};

// The node hints win when every ready endpoint has one and one names this node; else the
// zone hints, when every ready endpoint has one and one names this node's zone.
TopologyMode topologyModeFromHints(std::span<const EndpointView> eps, const std::string& zone,
                                   const ZoneSets& zones);

Categorized categorizeEndpoints(std::span<const EndpointView> eps, const PortPolicy& policy,
                                const std::string& zone, const ZoneSets& zones);

}  // namespace switchyard::lb
