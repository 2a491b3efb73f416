// kube-proxy semantics as pure functions: Service + its EndpointSlices -> frontends.
// No I/O and no BPF types.
//
// Objects are first reduced to what the semantics need (ServiceInfo, SliceInfo: addresses
// parsed, conditions resolved, problems noted once), which is also what the tracker keeps:
// at 100,000 services with 10 endpoints each, a million typed Endpoint objects with their
// strings would cost the daemon most of its memory.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "k8sclient/objects.h"
#include "lb/topology.h"
#include "lb/types.h"

namespace switchyard::lb {

inline constexpr const char* kServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name";
inline constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";
inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
inline constexpr const char* kZoneLabel = "topology.kubernetes.io/zone";
inline constexpr const char* kLbModeAnnotation = "switchyard.dev/lb-mode";

// How external clients reach backends on other nodes (loadBalancer.mode, issue 11).
// Default: the cluster's (NodeContext::lbMode).
enum class LbMode : uint8_t { Default, Snat, Dsr, Hybrid };
// "snat" | "dsr" | "hybrid" -> the mode; anything else: nullopt.
std::optional<LbMode> parseLbMode(const std::string& s);
// -- Maglev (issue 11 item 3) --
// A Service's load-balancing algorithm for the tc programs: random | maglev (default:
// loadBalancer.algorithm). Kubernetes has no endpoint weight: an EndpointSlice annotation
// gives every endpoint of the slice a Maglev weight (0..kMaglevWeightMax, default 1).
inline constexpr const char* kLbAlgorithmAnnotation = "switchyard.dev/lb-algorithm";
inline constexpr const char* kWeightAnnotation = "switchyard.dev/weight";
// -- end Maglev --

// Why switchyard does not proxy this Service ("" when it does): the service-proxy-name
// label (another proxy owns it), headless (clusterIP None), or type ExternalName.
std::string skipReason(const k8s::Service& svc);

// Endpoint conditions with kube-proxy's nil rules: ready=nil means ready, serving=nil
// means "as ready", terminating=nil means not terminating.
bool endpointReady(const k8s::Endpoint& ep);
bool endpointServingTerminating(const k8s::Endpoint& ep);

struct ServicePortInfo {
  std::string name;
  uint8_t proto = kProtoTCP;  // kProtoTCP, kProtoUDP or kProtoSCTP
  uint16_t port = 0;
  uint16_t nodePort = 0;      // 0 = none
  bool operator==(const ServicePortInfo&) const = default;
};

enum class ServiceType : uint8_t { ClusterIP, NodePort, LoadBalancer };

// A Service as the semantics see it (kube-proxy's BaseServicePortInfo, for all ports).
struct ServiceInfo {
  bool skipped = false;                // skipReason() is not empty: nothing to proxy
  ServiceType type = ServiceType::ClusterIP;
  std::vector<IpAddr> clusterIPs;      // the valid ones, in spec order
  std::vector<IpAddr> externalIPs;
  std::vector<IpAddr> loadBalancerIPs; // status ingress IPs in VIP mode (Proxy mode skipped)
  std::vector<Cidr> sourceRanges;      // loadBalancerSourceRanges, sorted
  std::vector<ServicePortInfo> ports;  // in spec order
  bool externalPolicyLocal = false;    // externalTrafficPolicy Local on an externally
                                       // accessible service (apiservice.ExternalPolicyLocal)
  bool internalPolicyLocal = false;    // internalTrafficPolicy Local
  uint32_t affinityTimeout = 0;        // sessionAffinity ClientIP: timeoutSeconds; 0 = None
  uint16_t healthCheckNodePort = 0;    // LoadBalancer with externalTrafficPolicy Local
  LbMode lbMode = LbMode::Default;     // the switchyard.dev/lb-mode annotation, when valid
  std::optional<Algorithm> algorithm;  // the lb-algorithm annotation; nullopt = the default
  bool operator==(const ServiceInfo&) const = default;
};

enum class AddressFamily : uint8_t { IPv4, IPv6, Other };

struct SlicePortInfo {
  std::string name;  // the Service port's name ("" when unnamed)
  uint8_t proto = kProtoTCP;
  uint16_t port = 0;  // the resolved target port; ports without a number are dropped
  bool operator==(const SlicePortInfo&) const = default;
};

struct EndpointInfo {
  IpAddr addr;            // addresses[0], as kube-proxy uses it
  uint8_t flags = 0;      // kEndpoint* (topology.h), nils resolved, locality known
  uint32_t zoneHints = 0; // hints.forZones, a ZoneSets ID
  bool operator==(const EndpointInfo&) const = default;
};

// An EndpointSlice as the semantics see it (its owning Service: owningService()).
struct SliceInfo {
  AddressFamily family = AddressFamily::Other;
  bool headless = false;  // carries the headless label (kube-proxy's informer filters these)
  std::vector<SlicePortInfo> ports;
  std::vector<EndpointInfo> endpoints;  // only for IPv4 and IPv6 slices
  uint16_t weight = 1;                  // the weight annotation: every endpoint's Maglev weight
  bool operator==(const SliceInfo&) const = default;
};

// Who this node is, for locality and topology, and the cluster's defaults.
struct NodeContext {
  std::string name;  // endpoints with this nodeName are local; hints.forNodes name it
  std::string zone;  // the Node's topology.kubernetes.io/zone label ("" = none)
  LbMode lbMode = LbMode::Snat;  // loadBalancer.mode: Services without the annotation
  bool dsrIpip = false;          // loadBalancer.dsrDispatch ipip (else opt)
  Algorithm defaultAlgorithm = Algorithm::Random;  // loadBalancer.algorithm
};

// Problems that do not stop the rest (a bad address, an unknown policy) are appended to
// warnings, naming object and field.
ServiceInfo toServiceInfo(const k8s::Service& svc, std::vector<std::string>& warnings);
SliceInfo toSliceInfo(const k8s::EndpointSlice& slice, const std::string& nodeName, ZoneSets& zones,
                      std::vector<std::string>& warnings);
// The namespace/name of the Service a slice belongs to (its kubernetes.io/service-name
// label); "" without the label.
std::string owningService(const k8s::EndpointSlice& slice);

// Everything a Service makes: its frontends, and what its health check server needs.
struct ServiceFrontends {
  std::vector<Frontend> frontends;
  uint16_t healthCheckNodePort = 0;  // 0 = none
  int localReadyEndpoints = 0;       // distinct local ready endpoint addresses, all ports
};

// The frontends of a Service, per family it has (spec.clusterIPs) and port:
//  - ClusterIP (one entry): internalTrafficPolicy's endpoints;
//  - NodePort (the family's wildcard address, found on every NodePort address), each LB IP
//    (with loadBalancerSourceRanges) and each external IP: externalTrafficPolicy's endpoints,
//    and with Local, an internal-scope entry with the Cluster endpoints for in-cluster
//    clients (kube-proxy's short-circuit of pod and node traffic to external addresses).
// With the Maglev algorithm (the Service's annotation, else the node's default), the
// external-scope NodePort, LB IP and external IP frontends are flagged kFrontendMaglev: the
// traffic from outside that every node must balance alike. ClusterIP frontends and internal
// scopes stay random (the socket hooks pick at random anyway), as Cilium's.
// Endpoints per CategorizeEndpoints (topology.h); a policy left without endpoints while the
// service has some elsewhere drops (kDropEmpty), a service without any rejects. Backends
// come from the slices' ports with the same name and protocol as the Service port (how
// named targetPorts resolve: the slice carries the number).
ServiceFrontends translateService(const ServiceInfo& svc, std::span<const SliceInfo* const> slices,
                                  const NodeContext& node, const ZoneSets& zones);

// The same from API objects (converts, with the conversion's warnings, then translates).
ServiceFrontends translateService(const k8s::Service& svc,
                                  const std::vector<const k8s::EndpointSlice*>& slices,
                                  const NodeContext& node, std::vector<std::string>& warnings);

}  // namespace switchyard::lb
