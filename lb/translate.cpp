#include "lb/translate.h"

#include <algorithm>

namespace switchyard::lb {
namespace {

uint8_t protoNumber(k8s::Protocol p) {
  return p == k8s::Protocol::UDP ? kProtoUDP : kProtoTCP;
}

// Backends of one service port from one family's slices, ready first, then
// serving+terminating as the fallback.
std::vector<Backend> backendsFor(const ServicePortInfo& port, bool wantV4,
                                 std::span<const SliceInfo* const> slices) {
  std::vector<Backend> ready, fallback;
  const AddressFamily family = wantV4 ? AddressFamily::IPv4 : AddressFamily::IPv6;
  for (const SliceInfo* slice : slices) {
    if (slice->family != family) {
      continue;  // FQDN slices are not proxied; the other family has its own frontends
    }
    for (const SlicePortInfo& sp : slice->ports) {
      if (sp.name != port.name || sp.proto != port.proto) {
        continue;
      }
      for (const EndpointInfo& ep : slice->endpoints) {
        bool isReady = ep.flags & kEndpointReady;
        bool servingTerminating = (ep.flags & kEndpointServing) && (ep.flags & kEndpointTerminating);
        if (!isReady && !servingTerminating) {
          continue;
        }
        Backend b{{ep.addr, sp.port, port.proto}, (ep.flags & kEndpointTerminating) != 0};
        (isReady ? ready : fallback).push_back(b);
      }
    }
  }
  std::vector<Backend>& chosen = ready.empty() ? fallback : ready;
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end(),
                           [](const Backend& a, const Backend& b) { return a.key == b.key; }),
               chosen.end());
  return chosen;
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

ServiceInfo toServiceInfo(const k8s::Service& svc, std::vector<std::string>& warnings) {
  ServiceInfo out;
  out.skipped = !skipReason(svc).empty();
  if (out.skipped) {
    return out;  // nothing else matters for a skipped service
  }
  const std::string ref = "Service " + svc.metadata.key();
  for (size_t i = 0; i < svc.clusterIPs.size(); ++i) {
    auto vip = IpAddr::parse(svc.clusterIPs[i]);
    if (!vip) {
      warnings.push_back(ref + ": spec.clusterIPs[" + std::to_string(i) + "]: \"" +
                             svc.clusterIPs[i] + "\" is not an IP address");
      continue;
    }
    out.clusterIPs.push_back(*vip);
  }
  for (size_t p = 0; p < svc.ports.size(); ++p) {
    const k8s::ServicePort& port = svc.ports[p];
    if (port.protocol == k8s::Protocol::SCTP) {
      warnings.push_back(ref + ": spec.ports[" + std::to_string(p) +
                             "].protocol: SCTP is not supported by switchyard; port skipped");
      continue;
    }
    out.ports.push_back({port.name, protoNumber(port.protocol), static_cast<uint16_t>(port.port)});
  }
  return out;
}

std::string owningService(const k8s::EndpointSlice& slice) {
  std::string name = slice.serviceName();
  return name.empty() ? std::string() : slice.metadata.namespace_ + "/" + name;
}

SliceInfo toSliceInfo(const k8s::EndpointSlice& slice, std::vector<std::string>& warnings) {
  SliceInfo out;
  out.headless = slice.metadata.labels.count(kHeadlessLabel) > 0;
  if (slice.addressType == "IPv4") {
    out.family = AddressFamily::IPv4;
  } else if (slice.addressType == "IPv6") {
    out.family = AddressFamily::IPv6;
  } else {
    return out;  // FQDN slices are not proxied
  }
  for (const k8s::EndpointPort& sp : slice.ports) {
    if (sp.protocol == k8s::Protocol::SCTP || !sp.port) {
      continue;  // no SCTP frontends; a nil port means "all ports", which is not proxied
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
    out.endpoints.push_back({*addr, flags});
  }
  return out;
}

std::vector<Frontend> translateClusterIP(const ServiceInfo& svc,
                                         std::span<const SliceInfo* const> slices) {
  std::vector<Frontend> out;
  if (svc.skipped) {
    return out;
  }
  for (const IpAddr& vip : svc.clusterIPs) {
    for (const ServicePortInfo& port : svc.ports) {
      Frontend fe;
      fe.key = {vip, port.port, port.proto};
      fe.head.kind = FrontendKind::ClusterIP;
      fe.portName = port.name;
      fe.backends = backendsFor(port, vip.isV4(), slices);
      out.push_back(std::move(fe));
    }
  }
  return out;
}

std::vector<Frontend> translateClusterIP(const k8s::Service& svc,
                                         const std::vector<const k8s::EndpointSlice*>& slices,
                                         std::vector<std::string>& warnings) {
  ServiceInfo info = toServiceInfo(svc, warnings);
  if (info.skipped) {
    return {};
  }
  std::vector<SliceInfo> infos;
  infos.reserve(slices.size());
  for (const k8s::EndpointSlice* s : slices) {
    infos.push_back(toSliceInfo(*s, warnings));
  }
  std::vector<const SliceInfo*> ptrs;
  for (const SliceInfo& s : infos) {
    ptrs.push_back(&s);
  }
  return translateClusterIP(info, ptrs);
}

}  // namespace switchyard::lb
