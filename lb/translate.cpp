#include "lb/translate.h"

#include <algorithm>
#include <set>

#include "lb/maglev.h"

namespace switchyard::lb {
namespace {

uint8_t protoNumber(k8s::Protocol p) {
  switch (p) {
    case k8s::Protocol::UDP: return kProtoUDP;
    case k8s::Protocol::SCTP: return kProtoSCTP;
    default: return kProtoTCP;
  }
}

// Addresses of one list field, the invalid ones reported.
std::vector<IpAddr> parseAddresses(const std::vector<std::string>& in, const std::string& ref,
                                   const std::string& field, std::vector<std::string>& warnings) {
  std::vector<IpAddr> out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (auto a = IpAddr::parse(in[i])) {
      out.push_back(*a);
    } else {
      warnings.push_back(ref + ": " + field + "[" + std::to_string(i) + "]: \"" + in[i] +
                         "\" is not an IP address");
    }
  }
  return out;
}

// One endpoint of a service port: where it is and what topology sees of it.
struct PortEndpoint {
  Backend backend;
  EndpointView view;
};

std::vector<PortEndpoint> endpointsFor(const ServicePortInfo& port, AddressFamily family,
                                       std::span<const SliceInfo* const> slices) {
  std::vector<PortEndpoint> out;
  std::set<BackendKey> seen;  // an endpoint listed by two slices counts once
  for (const SliceInfo* slice : slices) {
    if (slice->family != family) {
      continue;  // FQDN slices are not proxied; the other family has its own frontends
    }
    for (const SlicePortInfo& sp : slice->ports) {
      if (sp.name != port.name || sp.proto != port.proto) {
        continue;
      }
      for (const EndpointInfo& ep : slice->endpoints) {
        BackendKey key{ep.addr, sp.port, port.proto};
        if (!seen.insert(key).second) {
          continue;
        }
        Backend b{key, (ep.flags & kEndpointTerminating) != 0, (ep.flags & kEndpointLocal) != 0, slice->weight};
        out.push_back({b, {ep.flags, ep.zoneHints}});
      }
    }
  }
  return out;
}

std::vector<Backend> pick(const std::vector<PortEndpoint>& eps, const std::vector<size_t>& idx) {
  std::vector<Backend> out;
  out.reserve(idx.size());
  for (size_t i : idx) {
    out.push_back(eps[i].backend);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string skipReason(const k8s::Service& svc) {
  if (svc.metadata.labels.count(kServiceProxyNameLabel)) {
    return "label " + std::string(kServiceProxyNameLabel) + " names another proxy";
  }
  if (svc.type == "ExternalName") {
    return "type ExternalName";
  }
  if (svc.clusterIP == "None" || svc.clusterIP.empty()) {
    return "headless (no clusterIP)";
  }
  return "";
}

bool endpointReady(const k8s::Endpoint& ep) { return ep.conditions.ready.value_or(true); }

bool endpointServingTerminating(const k8s::Endpoint& ep) {
  bool serving = ep.conditions.serving.value_or(endpointReady(ep));
  return serving && ep.conditions.terminating.value_or(false);
}

std::optional<LbMode> parseLbMode(const std::string& s) {
  if (s == "snat") return LbMode::Snat;
  if (s == "dsr") return LbMode::Dsr;
  if (s == "hybrid") return LbMode::Hybrid;
  return std::nullopt;
}

ServiceInfo toServiceInfo(const k8s::Service& svc, std::vector<std::string>& warnings) {
  ServiceInfo out;
  out.skipped = !skipReason(svc).empty();
  if (out.skipped) {
    return out;  // nothing else matters for a skipped service
  }
  const std::string ref = "Service " + svc.metadata.key();
  out.type = svc.type == "LoadBalancer" ? ServiceType::LoadBalancer
             : svc.type == "NodePort"   ? ServiceType::NodePort
                                        : ServiceType::ClusterIP;
  out.clusterIPs = parseAddresses(svc.clusterIPs, ref, "spec.clusterIPs", warnings);
  out.externalIPs = parseAddresses(svc.externalIPs, ref, "spec.externalIPs", warnings);
  for (size_t i = 0; i < svc.loadBalancerIngress.size(); ++i) {
    const auto& in = svc.loadBalancerIngress[i];
    if (in.ipMode == "Proxy") {
      continue;  // the LB proxies to the nodes: kube-proxy installs nothing for its IP
    }
    if (auto a = IpAddr::parse(in.ip)) {
      out.loadBalancerIPs.push_back(*a);
    } else {
      warnings.push_back(ref + ": status.loadBalancer.ingress[" + std::to_string(i) + "].ip: \"" + in.ip +
                         "\" is not an IP address");
    }
  }
  for (size_t i = 0; i < svc.loadBalancerSourceRanges.size(); ++i) {
    // The API's validation lets whitespace through; kube-proxy trims it too.
    std::string text = svc.loadBalancerSourceRanges[i];
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t") + 1);
    if (auto c = Cidr::parse(text)) {
      out.sourceRanges.push_back(*c);
    } else {
      warnings.push_back(ref + ": spec.loadBalancerSourceRanges[" + std::to_string(i) + "]: \"" +
                         svc.loadBalancerSourceRanges[i] + "\" is not a CIDR");
    }
  }
  std::sort(out.sourceRanges.begin(), out.sourceRanges.end());
  out.sourceRanges.erase(std::unique(out.sourceRanges.begin(), out.sourceRanges.end()), out.sourceRanges.end());
  for (size_t p = 0; p < svc.ports.size(); ++p) {
    const k8s::ServicePort& port = svc.ports[p];
    out.ports.push_back({port.name, protoNumber(port.protocol), static_cast<uint16_t>(port.port),
                         static_cast<uint16_t>(out.type == ServiceType::ClusterIP ? 0 : port.nodePort)});
  }
  // apiservice.ExternallyAccessible / ExternalPolicyLocal / InternalPolicyLocal.
  bool externallyAccessible = out.type != ServiceType::ClusterIP || !out.externalIPs.empty();
  if (svc.externalTrafficPolicy != "" && svc.externalTrafficPolicy != "Cluster" &&
      svc.externalTrafficPolicy != "Local") {
    warnings.push_back(ref + ": spec.externalTrafficPolicy: \"" + svc.externalTrafficPolicy +
                       "\" is not Cluster or Local; Cluster used");
  }
  if (svc.internalTrafficPolicy != "" && svc.internalTrafficPolicy != "Cluster" &&
      svc.internalTrafficPolicy != "Local") {
    warnings.push_back(ref + ": spec.internalTrafficPolicy: \"" + svc.internalTrafficPolicy +
                       "\" is not Cluster or Local; Cluster used");
  }
  out.externalPolicyLocal = externallyAccessible && svc.externalTrafficPolicy == "Local";
  out.internalPolicyLocal = svc.internalTrafficPolicy == "Local";
  if (auto it = svc.metadata.annotations.find(kLbModeAnnotation); it != svc.metadata.annotations.end()) {
    if (auto m = parseLbMode(it->second)) {
      out.lbMode = *m;
    } else {
      warnings.push_back(ref + ": metadata.annotations[" + kLbModeAnnotation + "]: \"" + it->second +
                         "\" is not snat, dsr or hybrid; the cluster's loadBalancer.mode is used");
    }
  }
  if (svc.sessionAffinity == "ClientIP") {
    int32_t t = svc.sessionAffinityTimeoutSeconds;
    if (t <= 0 || t > 86400) {
      warnings.push_back(ref + ": spec.sessionAffinityConfig.clientIP.timeoutSeconds: " + std::to_string(t) +
                         " is not in 1..86400; 10800 used");
      t = 10800;
    }
    out.affinityTimeout = static_cast<uint32_t>(t);
  } else if (svc.sessionAffinity != "None" && !svc.sessionAffinity.empty()) {
    warnings.push_back(ref + ": spec.sessionAffinity: \"" + svc.sessionAffinity +
                       "\" is not None or ClientIP; None used");
  }
  // -- Maglev (issue 11 item 3) --
  if (auto a = svc.metadata.annotations.find(kLbAlgorithmAnnotation); a != svc.metadata.annotations.end()) {
    out.algorithm = parseAlgorithm(a->second);
    if (!out.algorithm) {
      warnings.push_back(ref + ": metadata.annotations[" + kLbAlgorithmAnnotation + "]: \"" + a->second +
                         "\" is not random or maglev; the default (loadBalancer.algorithm) used");
    }
  }
  // -- end Maglev --
  // apiservice.NeedsHealthCheck: a LoadBalancer with externalTrafficPolicy Local.
  if (out.type == ServiceType::LoadBalancer && out.externalPolicyLocal) {
    if (svc.healthCheckNodePort > 0 && svc.healthCheckNodePort <= 65535) {
      out.healthCheckNodePort = static_cast<uint16_t>(svc.healthCheckNodePort);
    } else {
      warnings.push_back(ref + ": spec.healthCheckNodePort: a LoadBalancer with externalTrafficPolicy "
                               "Local needs one; no health check served");
    }
  }
  return out;
}

std::string owningService(const k8s::EndpointSlice& slice) {
  std::string name = slice.serviceName();
  return name.empty() ? std::string() : slice.metadata.namespace_ + "/" + name;
}

SliceInfo toSliceInfo(const k8s::EndpointSlice& slice, const std::string& nodeName, ZoneSets& zones,
                      std::vector<std::string>& warnings) {
  SliceInfo out;
  out.headless = slice.metadata.labels.count(kHeadlessLabel) > 0;
  if (slice.addressType == "IPv4") {
    out.family = AddressFamily::IPv4;
  } else if (slice.addressType == "IPv6") {
    out.family = AddressFamily::IPv6;
  } else {
    return out;  // FQDN slices are not proxied
  }
  // -- Maglev (issue 11 item 3) --
  if (auto w = slice.metadata.annotations.find(kWeightAnnotation); w != slice.metadata.annotations.end()) {
    const std::string& text = w->second;
    unsigned long v = 0;
    bool ok = !text.empty() && text.size() <= 4 && text.find_first_not_of("0123456789") == std::string::npos &&
              (v = std::stoul(text)) <= kMaglevWeightMax;
    if (ok) {
      out.weight = static_cast<uint16_t>(v);
    } else {
      warnings.push_back("EndpointSlice " + slice.metadata.key() + ": metadata.annotations[" + kWeightAnnotation +
                         "]: \"" + text + "\" is not an integer from 0 to " + std::to_string(kMaglevWeightMax) +
                         "; 1 used");
    }
  }
  // -- end Maglev --
  for (const k8s::EndpointPort& sp : slice.ports) {
    if (!sp.port) {
      continue;  // a nil port means "all ports", which is not proxied
    }
    out.ports.push_back({sp.name, protoNumber(sp.protocol), static_cast<uint16_t>(*sp.port)});
  }
  const bool wantV4 = out.family == AddressFamily::IPv4;
  out.endpoints.reserve(slice.endpoints.size());
  for (size_t i = 0; i < slice.endpoints.size(); ++i) {
    const k8s::Endpoint& ep = slice.endpoints[i];
    if (ep.addresses.empty()) {
      continue;
    }
    // kube-proxy uses the first address only (the others are reserved; KEP-752).
    auto addr = IpAddr::parse(ep.addresses[0]);
    if (!addr || addr->isV4() != wantV4) {
      warnings.push_back("EndpointSlice " + slice.metadata.key() + ": endpoints[" +
                         std::to_string(i) + "].addresses[0]: \"" + ep.addresses[0] +
                         "\" is not an " + (wantV4 ? "IPv4" : "IPv6") + " address");
      continue;
    }
    uint8_t flags = 0;
    bool ready = endpointReady(ep);
    flags |= ready ? kEndpointReady : 0;
    flags |= ep.conditions.serving.value_or(ready) ? kEndpointServing : 0;
    flags |= ep.conditions.terminating.value_or(false) ? kEndpointTerminating : 0;
    flags |= !nodeName.empty() && ep.nodeName == nodeName ? kEndpointLocal : 0;
    if (!ep.hintsForNodes.empty()) {
      flags |= kEndpointHasNodeHints;
      if (std::find(ep.hintsForNodes.begin(), ep.hintsForNodes.end(), nodeName) != ep.hintsForNodes.end()) {
        flags |= kEndpointHintedHere;
      }
    }
    out.endpoints.push_back({*addr, flags, zones.intern(ep.hintsForZones)});
  }
  return out;
}

ServiceFrontends translateService(const ServiceInfo& svc, std::span<const SliceInfo* const> slices,
                                  const NodeContext& node, const ZoneSets& zones) {
  ServiceFrontends out;
  if (svc.skipped) {
    return out;
  }
  out.healthCheckNodePort = svc.healthCheckNodePort;
  const LbMode mode = svc.lbMode == LbMode::Default ? node.lbMode : svc.lbMode;
  const bool maglev = svc.algorithm.value_or(node.defaultAlgorithm) == Algorithm::Maglev;
  std::set<IpAddr> localReady;
  // One set of frontends per family the service has (kube-proxy runs one proxier per
  // family, each using the service's first clusterIP of its family).
  for (size_t f = 0; f < svc.clusterIPs.size(); ++f) {
    const IpAddr& vip = svc.clusterIPs[f];
    const bool v4 = vip.isV4();
    const AddressFamily family = v4 ? AddressFamily::IPv4 : AddressFamily::IPv6;
    if (std::any_of(svc.clusterIPs.begin(), svc.clusterIPs.begin() + static_cast<long>(f),
                    [&](const IpAddr& earlier) { return earlier.isV4() == v4; })) {
      continue;
    }
    for (const ServicePortInfo& port : svc.ports) {
      std::vector<PortEndpoint> eps = endpointsFor(port, family, slices);
      std::vector<EndpointView> views;
      views.reserve(eps.size());
      for (const PortEndpoint& e : eps) {
        views.push_back(e.view);
        if (e.view.local() && e.view.ready()) {
          localReady.insert(e.backend.key.addr);
        }
      }
      PortPolicy policy;
      policy.internalLocal = svc.internalPolicyLocal;
      policy.externalLocal = svc.externalPolicyLocal;
      std::vector<IpAddr> externalIPs, lbIPs;
      for (const IpAddr& a : svc.externalIPs) {
        if (a.isV4() == v4) externalIPs.push_back(a);
      }
      for (const IpAddr& a : svc.loadBalancerIPs) {
        if (a.isV4() == v4) lbIPs.push_back(a);
      }
      policy.externallyAccessible = port.nodePort != 0 || !externalIPs.empty() || !lbIPs.empty();
      Categorized cat = categorizeEndpoints(views, policy, node.zone, zones);
      std::vector<Backend> cluster = pick(eps, cat.cluster);
      std::vector<Backend> local = pick(eps, cat.local);

      auto make = [&](const IpAddr& addr, uint16_t portNum, FrontendKind kind, Scope scope,
                      const std::vector<Backend>& backends, bool localPolicy) {
        Frontend fe;
        fe.key = {addr, portNum, port.proto, scope};
        fe.head.kind = kind;
        fe.head.affinityTimeout = svc.affinityTimeout;
        fe.backends = backends;
        fe.portName = port.name;
        // A Local policy without local endpoints while others exist: kube-proxy drops.
        if (backends.empty() && localPolicy && cat.hasAny) {
          fe.head.flags |= kFrontendDropEmpty;
        }
        return fe;
      };
      // ClusterIP: internal traffic, internalTrafficPolicy.
      out.frontends.push_back(make(vip, port.port, FrontendKind::ClusterIP, Scope::External,
                                   svc.internalPolicyLocal ? local : cluster, svc.internalPolicyLocal));
      // External addresses: externalTrafficPolicy; with Local, in-cluster clients get the
      // Cluster endpoints (an internal-scope entry).
      auto external = [&](const IpAddr& addr, uint16_t portNum, FrontendKind kind, bool ranges) {
        Frontend fe = make(addr, portNum, kind, Scope::External, svc.externalPolicyLocal ? local : cluster,
                           svc.externalPolicyLocal);
        // External clients to other nodes' backends (the datapath decides per flow; with
        // externalTrafficPolicy Local there are none: local backends only, never DSR).
        if (mode == LbMode::Dsr || (mode == LbMode::Hybrid && port.proto == kProtoTCP)) {
          fe.head.flags |= kFrontendDsr | (node.dsrIpip ? kFrontendDsrIpip : 0);
        }
        if (mode == LbMode::Hybrid) {
          fe.head.flags |= kFrontendModeHybrid;
        }
        if (maglev) {
          fe.head.flags |= kFrontendMaglev;
        }
        if (ranges) {
          for (const Cidr& c : svc.sourceRanges) {
            if (c.addr.isV4() == v4) fe.sourceRanges.push_back(c);
          }
          if (!fe.sourceRanges.empty()) fe.head.flags |= kFrontendSourceRanges;
        }
        if (svc.externalPolicyLocal) {
          Frontend in = make(addr, portNum, kind, Scope::Internal, cluster, false);
          in.sourceRanges = fe.sourceRanges;
          in.head.flags |= fe.head.flags & kFrontendSourceRanges;
          fe.head.flags |= kFrontendTwoScopes;
          out.frontends.push_back(std::move(in));
        }
        out.frontends.push_back(std::move(fe));
      };
      if (port.nodePort != 0) {
        external(wildcardOf(vip), port.nodePort, FrontendKind::NodePort, false);
      }
      for (const IpAddr& ip : lbIPs) {
        external(ip, port.port, FrontendKind::LoadBalancer, true);
      }
      for (const IpAddr& ip : externalIPs) {
        external(ip, port.port, FrontendKind::ExternalIP, false);
      }
    }
  }
  out.localReadyEndpoints = static_cast<int>(localReady.size());
  return out;
}

ServiceFrontends translateService(const k8s::Service& svc,
                                  const std::vector<const k8s::EndpointSlice*>& slices,
                                  const NodeContext& node, std::vector<std::string>& warnings) {
  ServiceInfo info = toServiceInfo(svc, warnings);
  if (info.skipped) {
    return {};
  }
  ZoneSets zones;
  std::vector<SliceInfo> infos;
  infos.reserve(slices.size());
  for (const k8s::EndpointSlice* s : slices) {
    infos.push_back(toSliceInfo(*s, node.name, zones, warnings));
  }
  std::vector<const SliceInfo*> ptrs;
  for (const SliceInfo& s : infos) {
    ptrs.push_back(&s);
  }
  return translateService(info, ptrs, node, zones);
}

}  // namespace switchyard::lb
