// kube-proxy semantics: Service + EndpointSlices -> ClusterIP frontends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "lb/translate.h"

namespace switchyard::lb {
namespace {

k8s::Service service(const std::string& name, const std::string& ip,
                     std::vector<k8s::ServicePort> ports) {
  k8s::Service s;
  s.metadata.namespace_ = "default";
  s.metadata.name = name;
  s.clusterIP = ip;
  s.clusterIPs = {ip};
  s.ports = std::move(ports);
  return s;
}

k8s::ServicePort port(const std::string& name, int32_t p, k8s::Protocol proto = k8s::Protocol::TCP) {
  k8s::ServicePort sp;
  sp.name = name;
  sp.port = p;
  sp.protocol = proto;
  return sp;
}

k8s::Endpoint ep(const std::string& addr, std::optional<bool> ready = true,
                 std::optional<bool> serving = std::nullopt,
                 std::optional<bool> terminating = std::nullopt) {
  k8s::Endpoint e;
  e.addresses = {addr};
  e.conditions = {ready, serving, terminating};
  return e;
}

k8s::EndpointSlice slice(const std::string& svc, std::vector<k8s::Endpoint> eps,
                         std::vector<k8s::EndpointPort> ports, const std::string& family = "IPv4") {
  k8s::EndpointSlice s;
  s.metadata.namespace_ = "default";
  s.metadata.name = svc + "-x";
  s.metadata.labels["kubernetes.io/service-name"] = svc;
  s.addressType = family;
  s.endpoints = std::move(eps);
  s.ports = std::move(ports);
  return s;
}

k8s::EndpointPort eport(const std::string& name, int32_t p, k8s::Protocol proto = k8s::Protocol::TCP) {
  return {name, proto, p};
}

// The ClusterIP-era helper: every frontend of a Service on a node with no name and zone.
std::vector<Frontend> translateClusterIP(const k8s::Service& svc, const std::vector<const k8s::EndpointSlice*>& slices,
                                         std::vector<std::string>& warnings) {
  return translateService(svc, slices, {}, warnings).frontends;
}

std::vector<std::string> backendStrings(const Frontend& f) {
  std::vector<std::string> out;
  for (const Backend& b : f.backends) {
    out.push_back(b.key.str() + (b.terminating ? " terminating" : ""));
  }
  return out;
}

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(Translate, OneFrontendPerPortWithTheSlicePortsResolvedNumber) {
  // targetPort "http-alt" is a name; the slice carries its number (8080) under the service
  // port's name, as the EndpointSlice controller writes it.
  auto svc = service("web", "198.19.0.10", {port("http", 80), port("dns", 53, k8s::Protocol::UDP)});
  svc.ports[0].targetPort.name = "http-alt";
  auto s = slice("web", {ep("198.18.16.2"), ep("198.18.16.3")},
                 {eport("http", 8080), eport("dns", 5353, k8s::Protocol::UDP)});
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&s}, warnings);
  ASSERT_EQ(fes.size(), 2u);
  EXPECT_EQ(fes[0].key.str(), "198.19.0.10:80/TCP");
  EXPECT_THAT(backendStrings(fes[0]), ElementsAre("198.18.16.2:8080/TCP", "198.18.16.3:8080/TCP"));
  EXPECT_EQ(fes[1].key.str(), "198.19.0.10:53/UDP");
  EXPECT_THAT(backendStrings(fes[1]), ElementsAre("198.18.16.2:5353/UDP", "198.18.16.3:5353/UDP"));
  EXPECT_EQ(fes[0].head.kind, FrontendKind::ClusterIP);
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(Translate, OnlyReadyEndpointsWhenAnyIsReady) {
  auto svc = service("web", "198.19.0.10", {port("http", 80)});
  auto s = slice("web",
                 {ep("198.18.16.2", true), ep("198.18.16.3", false),
                  ep("198.18.16.4", std::nullopt /* nil ready = ready */),
                  ep("198.18.16.5", false, true, true) /* serving+terminating: fallback only */},
                 {eport("http", 8080)});
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&s}, warnings);
  EXPECT_THAT(backendStrings(fes.at(0)), ElementsAre("198.18.16.2:8080/TCP", "198.18.16.4:8080/TCP"));
}

TEST(Translate, ServingTerminatingIsTheFallbackWhenNoneIsReady) {
  auto svc = service("web", "198.19.0.10", {port("http", 80)});
  auto s = slice("web",
                 {ep("198.18.16.3", false), ep("198.18.16.5", false, true, true),
                  ep("198.18.16.6", false, false, true) /* terminating, not serving: never */},
                 {eport("http", 8080)});
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&s}, warnings);
  EXPECT_THAT(backendStrings(fes.at(0)), ElementsAre("198.18.16.5:8080/TCP terminating"));
}

TEST(Translate, NoEndpointsStillMakesAFrontendSoTrafficIsRejected) {
  auto svc = service("web", "198.19.0.10", {port("http", 80)});
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {}, warnings);
  ASSERT_EQ(fes.size(), 1u);
  EXPECT_THAT(fes[0].backends, IsEmpty());
}

TEST(Translate, BackendsAreMergedAcrossSlicesWithoutDuplicates) {
  auto svc = service("web", "198.19.0.10", {port("http", 80)});
  auto a = slice("web", {ep("198.18.16.2"), ep("198.18.16.3")}, {eport("http", 8080)});
  auto b = slice("web", {ep("198.18.16.3"), ep("198.18.16.4")}, {eport("http", 8080)});
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&a, &b}, warnings);
  EXPECT_THAT(backendStrings(fes.at(0)),
              ElementsAre("198.18.16.2:8080/TCP", "198.18.16.3:8080/TCP", "198.18.16.4:8080/TCP"));
}

TEST(Translate, PortsMatchByNameAndProtocol) {
  auto svc = service("web", "198.19.0.10", {port("http", 80)});
  auto s = slice("web", {ep("198.18.16.2")},
                 {eport("metrics", 9090), eport("http", 8080, k8s::Protocol::UDP)});
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&s}, warnings);
  EXPECT_THAT(fes.at(0).backends, IsEmpty());
}

TEST(Translate, FamiliesDoNotMix) {
  auto svc = service("web", "198.19.0.10", {port("http", 80)});
  auto v6 = slice("web", {ep("2001:db8::2")}, {eport("http", 8080)}, "IPv6");
  auto fqdn = slice("web", {ep("web.example")}, {eport("http", 8080)}, "FQDN");
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&v6, &fqdn}, warnings);
  EXPECT_THAT(fes.at(0).backends, IsEmpty());
}

TEST(Translate, DualStackServiceGetsOneFrontendPerFamily) {
  auto svc = service("web", "198.19.0.10", {port("http", 80)});
  svc.clusterIPs = {"198.19.0.10", "2001:db8:1::10"};
  auto v4 = slice("web", {ep("198.18.16.2")}, {eport("http", 8080)});
  auto v6 = slice("web", {ep("2001:db8::2")}, {eport("http", 8080)}, "IPv6");
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&v4, &v6}, warnings);
  ASSERT_EQ(fes.size(), 2u);
  EXPECT_THAT(backendStrings(fes[0]), ElementsAre("198.18.16.2:8080/TCP"));
  EXPECT_EQ(fes[1].key.str(), "[2001:db8:1::10]:80/TCP");
  EXPECT_THAT(backendStrings(fes[1]), ElementsAre("[2001:db8::2]:8080/TCP"));
}

TEST(Translate, SkippedServices) {
  std::vector<std::string> warnings;
  auto proxied = service("a", "198.19.0.10", {port("http", 80)});
  proxied.metadata.labels["service.kubernetes.io/service-proxy-name"] = "other-proxy";
  EXPECT_THAT(translateClusterIP(proxied, {}, warnings), IsEmpty());
  EXPECT_THAT(skipReason(proxied), HasSubstr("service-proxy-name"));

  auto headless = service("b", "None", {port("http", 80)});
  EXPECT_THAT(translateClusterIP(headless, {}, warnings), IsEmpty());
  EXPECT_THAT(skipReason(headless), HasSubstr("headless"));

  auto external = service("c", "", {port("http", 80)});
  external.type = "ExternalName";
  EXPECT_THAT(translateClusterIP(external, {}, warnings), IsEmpty());
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(Translate, BadInputIsAWarningNamingObjectAndField) {
  auto svc = service("web", "198.19.0.999", {port("http", 80)});
  auto ok = service("ok", "198.19.0.12", {port("http", 80)});
  ok.externalIPs = {"198.19.200.1", "nope"};
  ok.loadBalancerSourceRanges = {"198.18.0.0/33"};
  ok.sessionAffinity = "Sticky";
  auto s = slice("ok", {ep("not-an-ip"), ep("198.18.16.2")}, {eport("http", 8080)});
  std::vector<std::string> warnings;
  EXPECT_THAT(translateClusterIP(svc, {}, warnings), IsEmpty());
  auto fes = translateClusterIP(ok, {&s}, warnings);
  EXPECT_THAT(backendStrings(fes.at(0)), ElementsAre("198.18.16.2:8080/TCP"));
  EXPECT_THAT(warnings,
              ElementsAre("Service default/web: spec.clusterIPs[0]: \"198.19.0.999\" is not an IP address",
                          "Service default/ok: spec.externalIPs[1]: \"nope\" is not an IP address",
                          "Service default/ok: spec.loadBalancerSourceRanges[0]: \"198.18.0.0/33\" is not a CIDR",
                          "Service default/ok: spec.sessionAffinity: \"Sticky\" is not None or ClientIP; None used",
                          "EndpointSlice default/ok-x: endpoints[0].addresses[0]: \"not-an-ip\" is not an IPv4 address"));
}

// -- Maglev (issue 11 item 3) --
// loadBalancer.algorithm is the default; the switchyard.dev/lb-algorithm annotation overrides
// it per Service. Only the frontends tc balances for outside clients (external IPs here) are
// flagged; ClusterIP stays random (the socket hooks), as Cilium's Maglev. A bad annotation is
// a warning naming the Service and annotation; the default is used. The weight annotation of
// an EndpointSlice weights its endpoints.
TEST(Translate, LbAlgorithmAnnotationFlagsExternalFrontendsMaglev_CiliumMaglev) {
  auto svc = service("mg", "198.19.0.30", {port("http", 80)});
  svc.externalIPs = {"198.19.200.30"};
  auto s = slice("mg", {ep("198.18.16.2")}, {eport("http", 8080)});
  s.metadata.annotations[kWeightAnnotation] = "3";
  auto flagged = [](const std::vector<Frontend>& fes, FrontendKind kind) {
    for (const Frontend& f : fes) {
      if (f.head.kind == kind) {
        return (f.head.flags & kFrontendMaglev) != 0;
      }
    }
    ADD_FAILURE() << "no frontend of kind " << kindName(kind);
    return false;
  };
  std::vector<std::string> warnings;
  auto byDefault = translateService(svc, {&s}, NodeContext{"", "", LbMode::Snat, false, Algorithm::Maglev}, warnings).frontends;
  EXPECT_TRUE(flagged(byDefault, FrontendKind::ExternalIP));
  EXPECT_FALSE(flagged(byDefault, FrontendKind::ClusterIP));
  for (const Frontend& f : byDefault) {
    EXPECT_EQ(f.backends.at(0).weight, 3) << "the slice's weight annotation";
  }
  auto random = translateService(svc, {&s}, {}, warnings).frontends;
  EXPECT_FALSE(flagged(random, FrontendKind::ExternalIP));
  svc.metadata.annotations[kLbAlgorithmAnnotation] = "maglev";
  EXPECT_TRUE(flagged(translateService(svc, {&s}, {}, warnings).frontends, FrontendKind::ExternalIP));
  svc.metadata.annotations[kLbAlgorithmAnnotation] = "random";
  EXPECT_FALSE(flagged(translateService(svc, {&s}, NodeContext{"", "", LbMode::Snat, false, Algorithm::Maglev}, warnings).frontends,
                       FrontendKind::ExternalIP));
  EXPECT_THAT(warnings, IsEmpty());
  svc.metadata.annotations[kLbAlgorithmAnnotation] = "ring-hash";
  EXPECT_TRUE(flagged(translateService(svc, {&s}, NodeContext{"", "", LbMode::Snat, false, Algorithm::Maglev}, warnings).frontends,
                      FrontendKind::ExternalIP))
      << "a bad annotation uses the default";
  EXPECT_THAT(warnings, ElementsAre("Service default/mg: metadata.annotations[switchyard.dev/lb-algorithm]: "
                                    "\"ring-hash\" is not random or maglev; the default (loadBalancer.algorithm) used"));
}

TEST(Translate, SctpPortsAreProxiedLikeTcpAndUdp) {
  auto svc = service("sig", "198.19.0.11", {port("sig", 3868, k8s::Protocol::SCTP)});
  auto s = slice("sig", {ep("198.18.16.2")}, {eport("sig", 3868, k8s::Protocol::SCTP)});
  std::vector<std::string> warnings;
  auto fes = translateClusterIP(svc, {&s}, warnings);
  ASSERT_EQ(fes.size(), 1u);
  EXPECT_EQ(fes[0].key.str(), "198.19.0.11:3868/SCTP");
  EXPECT_THAT(backendStrings(fes[0]), ElementsAre("198.18.16.2:3868/SCTP"));
  EXPECT_THAT(warnings, IsEmpty());
}

// loadBalancer.mode and the switchyard.dev/lb-mode annotation (issue 11): the mode goes to
// the external frontends (NodePort, LB IPs, external IPs), never to the ClusterIP; hybrid is
// DSR for TCP only (UDP and SCTP are SNATed: no connection start to carry the frontend once).
uint16_t modeFlags(const Frontend& f) { return f.head.flags & (kFrontendDsr | kFrontendModeHybrid); }

TEST(Translate, LbModeGoesToTheExternalFrontendsAndHybridIsDsrForTcpOnly) {
  k8s::Service svc = service("web", "198.19.0.10", {port("http", 80), port("dns", 53, k8s::Protocol::UDP)});
  svc.type = "NodePort";
  svc.ports[0].nodePort = 30080;
  svc.ports[1].nodePort = 30053;
  svc.externalIPs = {"198.19.100.1"};
  std::vector<std::string> warnings;
  auto flagsOf = [&](const NodeContext& node) {
    std::map<std::string, uint16_t> out;
    for (const Frontend& f : translateService(svc, {}, node, warnings).frontends) {
      out[std::string(f.head.kind == FrontendKind::ClusterIP ? "cip" : f.head.kind == FrontendKind::NodePort ? "np" : "eip") +
          (f.key.proto == kProtoTCP ? "/tcp" : "/udp")] = modeFlags(f);
    }
    return out;
  };
  NodeContext node;
  EXPECT_EQ(node.lbMode, LbMode::Snat) << "the default mode";
  for (auto& [k, v] : flagsOf(node)) EXPECT_EQ(v, 0) << k;
  node.lbMode = LbMode::Dsr;
  auto dsr = flagsOf(node);
  EXPECT_EQ(dsr["cip/tcp"], 0);
  EXPECT_EQ(dsr["cip/udp"], 0);
  for (const char* k : {"np/tcp", "np/udp", "eip/tcp", "eip/udp"}) EXPECT_EQ(dsr[k], kFrontendDsr) << k;
  node.lbMode = LbMode::Hybrid;
  auto hybrid = flagsOf(node);
  EXPECT_EQ(hybrid["cip/tcp"], 0);
  EXPECT_EQ(hybrid["np/tcp"], kFrontendDsr | kFrontendModeHybrid);
  EXPECT_EQ(hybrid["eip/tcp"], kFrontendDsr | kFrontendModeHybrid);
  EXPECT_EQ(hybrid["np/udp"], kFrontendModeHybrid) << "hybrid SNATs UDP";
  EXPECT_EQ(hybrid["eip/udp"], kFrontendModeHybrid);
  // loadBalancer.dsrDispatch ipip: every DSR frontend encapsulates, the others are unchanged.
  node.dsrIpip = true;
  auto ipip = [&] {
    std::map<std::string, uint16_t> out;
    for (const Frontend& f : translateService(svc, {}, node, warnings).frontends) {
      out[std::string(f.head.kind == FrontendKind::NodePort ? "np" : "other") + (f.key.proto == kProtoTCP ? "/tcp" : "/udp")] |=
          f.head.flags & kFrontendDsrIpip;
    }
    return out;
  }();
  EXPECT_EQ(ipip["np/tcp"], kFrontendDsrIpip) << "hybrid TCP is DSR: encapsulated";
  EXPECT_EQ(ipip["np/udp"], 0) << "hybrid UDP is SNATed: nothing to encapsulate";
  EXPECT_EQ(ipip["other/udp"], 0);
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(Translate, TheLbModeAnnotationOverridesTheClusterModeAndABadOneIsAWarning) {
  k8s::Service svc = service("web", "198.19.0.10", {port("http", 80)});
  svc.type = "NodePort";
  svc.ports[0].nodePort = 30080;
  NodeContext node;
  node.lbMode = LbMode::Dsr;
  auto nodePortFlags = [&](std::vector<std::string>& warnings) {
    for (const Frontend& f : translateService(svc, {}, node, warnings).frontends) {
      if (f.head.kind == FrontendKind::NodePort) return modeFlags(f);
    }
    ADD_FAILURE() << "no NodePort frontend";
    return uint16_t{0xffff};
  };
  std::vector<std::string> warnings;
  svc.metadata.annotations[kLbModeAnnotation] = "snat";
  EXPECT_EQ(nodePortFlags(warnings), 0) << "the annotation's snat beats the cluster's dsr";
  node.lbMode = LbMode::Snat;
  svc.metadata.annotations[kLbModeAnnotation] = "dsr";
  EXPECT_EQ(nodePortFlags(warnings), kFrontendDsr);
  EXPECT_THAT(warnings, IsEmpty());
  node.lbMode = LbMode::Hybrid;
  svc.metadata.annotations[kLbModeAnnotation] = "DSR";
  EXPECT_EQ(nodePortFlags(warnings), kFrontendDsr | kFrontendModeHybrid) << "a bad value: the cluster's mode";
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "Service default/web: metadata.annotations[switchyard.dev/lb-mode]: \"DSR\" is not snat, dsr "
                         "or hybrid; the cluster's loadBalancer.mode is used");
}

}  // namespace
}  // namespace switchyard::lb
