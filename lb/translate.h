// kube-proxy semantics as pure functions: Service + its EndpointSlices -> frontends.
// No I/O and no BPF types.
//
// Objects are first reduced to what the semantics need (ServiceInfo, SliceInfo: addresses
// parsed, conditions resolved, problems noted once), which is also what the tracker keeps:
// at 100,000 services with 10 endpoints each, a million typed Endpoint objects with their
// strings would cost the daemon most of its memory.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "k8sclient/objects.h"
#include "lb/types.h"

namespace switchyard::lb {

inline constexpr const char* kServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name";
inline constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";
inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";

// Why switchyard does not proxy this Service ("" when it does): the service-proxy-name
// label (another proxy owns it), headless (clusterIP None), or type ExternalName.
std::string skipReason(const k8s::Service& svc);

// The usable endpoints of one family, kube-proxy style: ready ones; if none is ready,
// the serving-and-terminating ones (KEP-1669). Condition nils: ready=nil means ready,
// serving=nil means "as ready", terminating=nil means not terminating.
bool endpointReady(const k8s::Endpoint& ep);
bool endpointServingTerminating(const k8s::Endpoint& ep);

struct ServicePortInfo {
  std::string name;
  uint8_t proto = kProtoTCP;  // kProtoTCP or kProtoUDP (SCTP ports are dropped, with a warning)
  uint16_t port = 0;
  bool operator==(const ServicePortInfo&) const = default;
};

// A Service as the semantics see it.
struct ServiceInfo {
  bool skipped = false;                // skipReason() is not empty: nothing to proxy
  std::vector<IpAddr> clusterIPs;      // the valid ones, in spec order
  std::vector<ServicePortInfo> ports;  // TCP and UDP ports, in spec order
  bool operator==(const ServiceInfo&) const = default;
};

enum class AddressFamily : uint8_t { IPv4, IPv6, Other };

struct SlicePortInfo {
  std::string name;  // the Service port's name ("" when unnamed)
  uint8_t proto = kProtoTCP;
  uint16_t port = 0;  // the resolved target port; ports without a number are dropped
  bool operator==(const SlicePortInfo&) const = default;
};

inline constexpr uint8_t kEndpointReady = 1u << 0;
inline constexpr uint8_t kEndpointServing = 1u << 1;
inline constexpr uint8_t kEndpointTerminating = 1u << 2;

struct EndpointInfo {
  IpAddr addr;        // addresses[0], as kube-proxy uses it
  uint8_t flags = 0;  // kEndpoint*, nils resolved
  bool operator==(const EndpointInfo&) const = default;
};

// An EndpointSlice as the semantics see it (its owning Service: owningService()).
struct SliceInfo {
  AddressFamily family = AddressFamily::Other;
  bool headless = false;  // carries the headless label (kube-proxy's informer filters these)
  std::vector<SlicePortInfo> ports;
  std::vector<EndpointInfo> endpoints;  // only for IPv4 and IPv6 slices
  bool operator==(const SliceInfo&) const = default;
};

// Problems that do not stop the rest (a bad address, SCTP) are appended to warnings, naming
// object and field.
ServiceInfo toServiceInfo(const k8s::Service& svc, std::vector<std::string>& warnings);
SliceInfo toSliceInfo(const k8s::EndpointSlice& slice, std::vector<std::string>& warnings);
// The namespace/name of the Service a slice belongs to (its kubernetes.io/service-name
// label); "" without the label.
std::string owningService(const k8s::EndpointSlice& slice);

// ClusterIP frontends of a Service: one per (clusterIP, port). Backends come from the
// slices' ports with the same name and protocol as the Service port (this is how named
// targetPorts resolve: the slice carries the resolved number).
std::vector<Frontend> translateClusterIP(const ServiceInfo& svc,
                                         std::span<const SliceInfo* const> slices);

// The same from API objects (converts, with the conversion's warnings, then translates).
std::vector<Frontend> translateClusterIP(const k8s::Service& svc,
                                         const std::vector<const k8s::EndpointSlice*>& slices,
                                         std::vector<std::string>& warnings);

}  // namespace switchyard::lb
