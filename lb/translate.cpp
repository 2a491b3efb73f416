#include "lb/translate.h"

#include <algorithm>

namespace switchyard::lb {
namespace {

uint8_t protoNumber(k8s::Protocol p) {
  return p == k8s::Protocol::UDP ? kProtoUDP : kProtoTCP;
}

// Backends of one service port from one family's slices, ready first, then
// serving+terminating as the fallback.
std::vector<Backend> backendsFor(const k8s::Service& svc, const k8s::ServicePort& port,
                                 bool wantV4,
                                 const std::vector<const k8s::EndpointSlice*>& slices,
                                 std::vector<std::string>& warnings) {
  std::vector<Backend> ready, fallback;
  for (const k8s::EndpointSlice* slice : slices) {
    if (slice->addressType != (wantV4 ? "IPv4" : "IPv6")) {
      continue;  // FQDN slices are not proxied; the other family has its own frontends
    }
    for (const k8s::EndpointPort& sp : slice->ports) {
      if (sp.name != port.name || sp.protocol != port.protocol || !sp.port) {
        continue;
      }
      for (size_t i = 0; i < slice->endpoints.size(); ++i) {
        const k8s::Endpoint& ep = slice->endpoints[i];
        bool isReady = endpointReady(ep);
        if (!isReady && !endpointServingTerminating(ep)) {
          continue;
        }
        for (size_t j = 0; j < ep.addresses.size(); ++j) {
          auto addr = IpAddr::parse(ep.addresses[j]);
          if (!addr || addr->isV4() != wantV4) {
            warnings.push_back("EndpointSlice " + slice->metadata.key() + ": endpoints[" +
                               std::to_string(i) + "].addresses[" + std::to_string(j) + "]: \"" +
                               ep.addresses[j] + "\" is not an " +
                               (wantV4 ? "IPv4" : "IPv6") + " address");
            continue;
          }
          Backend b{{*addr, static_cast<uint16_t>(*sp.port), protoNumber(port.protocol)},
                    ep.conditions.terminating.value_or(false)};
          (isReady ? ready : fallback).push_back(b);
        }
      }
    }
  }
  (void)svc;
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

std::vector<Frontend> translateClusterIP(const k8s::Service& svc,
                                         const std::vector<const k8s::EndpointSlice*>& slices,
                                         std::vector<std::string>& warnings) {
  std::vector<Frontend> out;
  if (!skipReason(svc).empty()) {
    return out;
  }
  const std::string ref = "Service " + svc.metadata.key();
  for (size_t i = 0; i < svc.clusterIPs.size(); ++i) {
    auto vip = IpAddr::parse(svc.clusterIPs[i]);
    if (!vip) {
      warnings.push_back(ref + ": spec.clusterIPs[" + std::to_string(i) + "]: \"" +
                         svc.clusterIPs[i] + "\" is not an IP address");
      continue;
    }
    for (size_t p = 0; p < svc.ports.size(); ++p) {
      const k8s::ServicePort& port = svc.ports[p];
      if (port.protocol == k8s::Protocol::SCTP) {
        warnings.push_back(ref + ": spec.ports[" + std::to_string(p) +
                           "].protocol: SCTP is not supported by switchyard; port skipped");
        continue;
      }
      Frontend fe;
      fe.key = {*vip, static_cast<uint16_t>(port.port), protoNumber(port.protocol)};
      fe.flags = kFrontendClusterIP;
      fe.portName = port.name;
      fe.backends = backendsFor(svc, port, vip->isV4(), slices, warnings);
      out.push_back(std::move(fe));
    }
  }
  return out;
}

}  // namespace switchyard::lb
