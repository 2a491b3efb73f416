// kube-proxy semantics as pure functions: Service + its EndpointSlices -> frontends.
// No I/O and no BPF types.
#pragma once

#include <string>
#include <vector>

#include "k8sclient/objects.h"
#include "lb/types.h"

namespace switchyard::lb {

inline constexpr const char* kServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name";
inline constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";

// Why switchyard does not proxy this Service ("" when it does): the service-proxy-name
// label (another proxy owns it), headless (clusterIP None), or type ExternalName.
std::string skipReason(const k8s::Service& svc);

// The usable endpoints of one family, kube-proxy style: ready ones; if none is ready,
// the serving-and-terminating ones (KEP-1669). Condition nils: ready=nil means ready,
// serving=nil means "as ready", terminating=nil means not terminating.
bool endpointReady(const k8s::Endpoint& ep);
bool endpointServingTerminating(const k8s::Endpoint& ep);

// ClusterIP frontends of a Service: one per (clusterIP, port). Backends come from the
// slices' ports with the same name and protocol as the Service port (this is how named
// targetPorts resolve: the slice carries the resolved number). Problems that do not stop
// the rest (a bad address, SCTP) are appended to warnings, naming object and field.
std::vector<Frontend> translateClusterIP(const k8s::Service& svc,
                                         const std::vector<const k8s::EndpointSlice*>& slices,
                                         std::vector<std::string>& warnings);

}  // namespace switchyard::lb
