// Service -> frontends for every kind and traffic policy, as kube-proxy serves them
// (pkg/proxy/serviceport.go, nftables/proxier.go: which endpoints each address and client
// gets, when it drops and when it rejects). Each frontend is printed as one line:
//   "ADDR:PORT/PROTO[ (internal)] KIND [flags] -> backends"
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lb/translate.h"

namespace switchyard::lb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr const char* kNode = "node-1";

k8s::Service service(const std::string& type = "ClusterIP") {
  k8s::Service s;
  s.metadata.namespace_ = "default";
  s.metadata.name = "web";
  s.type = type;
  s.clusterIP = "198.19.0.10";
  s.clusterIPs = {"198.19.0.10"};
  k8s::ServicePort p;
  p.name = "http";
  p.port = 80;
  p.nodePort = type == "ClusterIP" ? 0 : 30080;
  s.ports = {p};
  return s;
}

k8s::Endpoint ep(const std::string& addr, const std::string& node, bool ready = true, bool terminating = false) {
  k8s::Endpoint e;
  e.addresses = {addr};
  e.conditions.ready = ready;
  e.conditions.serving = ready || terminating;
  e.conditions.terminating = terminating;
  e.nodeName = node;
  return e;
}

k8s::EndpointSlice slice(std::vector<k8s::Endpoint> eps, const std::string& family = "IPv4") {
  k8s::EndpointSlice s;
  s.metadata.namespace_ = "default";
  s.metadata.name = "web-" + family;
  s.metadata.labels["kubernetes.io/service-name"] = "web";
  s.addressType = family;
  s.endpoints = std::move(eps);
  s.ports = {{"http", k8s::Protocol::TCP, 8080}};
  return s;
}

std::string line(const Frontend& f) {
  std::string s = f.key.str() + " " + kindName(f.head.kind);
  if (f.head.flags & kFrontendTwoScopes) s += " two-scopes";
  if (f.head.flags & kFrontendDropEmpty) s += " drop";
  if (f.head.flags & kFrontendSourceRanges) {
    s += " ranges";
    for (const Cidr& c : f.sourceRanges) s += " " + c.str();
  }
  if (f.head.affinityTimeout) s += " affinity " + std::to_string(f.head.affinityTimeout) + "s";
  s += " ->";
  if (f.backends.empty()) s += " (none)";
  for (const Backend& b : f.backends) {
    s += " " + b.key.addr.str();
    if (b.local) s += "*";
    if (b.terminating) s += "(t)";
  }
  return s;
}

std::vector<std::string> lines(const k8s::Service& svc, const std::vector<const k8s::EndpointSlice*>& slices,
                               std::vector<std::string>* warningsOut = nullptr, NodeContext node = {kNode, ""}) {
  std::vector<std::string> warnings;
  std::vector<std::string> out;
  for (const Frontend& f : translateService(svc, slices, node, warnings).frontends) out.push_back(line(f));
  if (warningsOut) *warningsOut = warnings;
  return out;
}

// One local (.17.x, node-1) and one remote (.18.x, node-2) endpoint.
const k8s::EndpointSlice kMixed = slice({ep("198.18.17.2", "node-1"), ep("198.18.18.2", "node-2")});
const k8s::EndpointSlice kRemoteOnly = slice({ep("198.18.18.2", "node-2"), ep("198.18.18.3", "node-2")});

TEST(ServiceFrontends, ClusterIPOnlyForTypeClusterIP) {
  EXPECT_THAT(lines(service(), {&kMixed}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2"));
}

TEST(ServiceFrontends, NodePortIsTheWildcardOfTheFamily_KubeProxyNodePortOnEveryNodeAddress) {
  EXPECT_THAT(lines(service("NodePort"), {&kMixed}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2",
                          "*:30080/TCP NodePort -> 198.18.17.2* 198.18.18.2"));
}

TEST(ServiceFrontends, LoadBalancerIngressIPsInVipModeOnly_KubeProxySkipsIpModeProxy) {
  auto svc = service("LoadBalancer");
  svc.loadBalancerIngress = {{"198.19.100.1", ""}, {"198.19.100.2", "VIP"}, {"198.19.100.3", "Proxy"}};
  EXPECT_THAT(lines(svc, {&kMixed}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2",
                          "*:30080/TCP NodePort -> 198.18.17.2* 198.18.18.2",
                          "198.19.100.1:80/TCP LoadBalancer -> 198.18.17.2* 198.18.18.2",
                          "198.19.100.2:80/TCP LoadBalancer -> 198.18.17.2* 198.18.18.2"));
}

TEST(ServiceFrontends, ExternalIPsOnAnyType) {
  auto svc = service();
  svc.externalIPs = {"198.19.200.1"};
  EXPECT_THAT(lines(svc, {&kMixed}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2",
                          "198.19.200.1:80/TCP ExternalIP -> 198.18.17.2* 198.18.18.2"));
}

TEST(ServiceFrontends, ExternalTrafficPolicyLocalGivesExternalClientsLocalEndpointsAndShortCircuitsInClusterOnes_KubeProxyShortCircuit) {
  auto svc = service("NodePort");
  svc.externalTrafficPolicy = "Local";
  svc.externalIPs = {"198.19.200.1"};
  EXPECT_THAT(lines(svc, {&kMixed}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2",
                          "*:30080/TCP (internal) NodePort -> 198.18.17.2* 198.18.18.2",
                          "*:30080/TCP NodePort two-scopes -> 198.18.17.2*",
                          "198.19.200.1:80/TCP (internal) ExternalIP -> 198.18.17.2* 198.18.18.2",
                          "198.19.200.1:80/TCP ExternalIP two-scopes -> 198.18.17.2*"));
}

TEST(ServiceFrontends, ExternalTrafficPolicyLocalWithoutLocalEndpointsDropsExternalTraffic_KubeProxyDropsNoLocalEndpoints) {
  auto svc = service("NodePort");
  svc.externalTrafficPolicy = "Local";
  EXPECT_THAT(lines(svc, {&kRemoteOnly}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.18.2 198.18.18.3",
                          "*:30080/TCP (internal) NodePort -> 198.18.18.2 198.18.18.3",
                          "*:30080/TCP NodePort two-scopes drop -> (none)"));
}

TEST(ServiceFrontends, InternalTrafficPolicyLocalAppliesToTheClusterIPOnly_KubeProxyInternalPolicyLocal) {
  auto svc = service("NodePort");
  svc.internalTrafficPolicy = "Local";
  EXPECT_THAT(lines(svc, {&kMixed}), ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2*",
                                                 "*:30080/TCP NodePort -> 198.18.17.2* 198.18.18.2"));
  EXPECT_THAT(lines(svc, {&kRemoteOnly}), ElementsAre("198.19.0.10:80/TCP ClusterIP drop -> (none)",
                                                      "*:30080/TCP NodePort -> 198.18.18.2 198.18.18.3"));
}

TEST(ServiceFrontends, NoEndpointsAnywhereRejectsEvenWithLocalPolicies_KubeProxyRejectsNoEndpoints) {
  auto svc = service("NodePort");
  svc.externalTrafficPolicy = "Local";
  svc.internalTrafficPolicy = "Local";
  auto none = slice({ep("198.18.18.2", "node-2", false)});
  EXPECT_THAT(lines(svc, {&none}), ElementsAre("198.19.0.10:80/TCP ClusterIP -> (none)",
                                               "*:30080/TCP (internal) NodePort -> (none)",
                                               "*:30080/TCP NodePort two-scopes -> (none)"));
}

TEST(ServiceFrontends, TerminatingEndpointsAreTheFallbackPerPolicy_KubeProxyTerminatingEndpoints) {
  auto svc = service("NodePort");
  svc.externalTrafficPolicy = "Local";
  // A ready remote endpoint; the local one is terminating (and still serving).
  auto s = slice({ep("198.18.17.2", "node-1", false, true), ep("198.18.18.2", "node-2")});
  EXPECT_THAT(lines(svc, {&s}), ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.18.2",
                                            "*:30080/TCP (internal) NodePort -> 198.18.18.2",
                                            "*:30080/TCP NodePort two-scopes -> 198.18.17.2*(t)"));
}

TEST(ServiceFrontends, SourceRangesApplyToLoadBalancerIPsOnlyPerFamily_KubeProxyLoadBalancerSourceRanges) {
  auto svc = service("LoadBalancer");
  svc.loadBalancerIngress = {{"198.19.100.1", ""}};
  svc.externalIPs = {"198.19.200.1"};
  svc.loadBalancerSourceRanges = {" 198.18.0.100/32", "2001:db8:f::/64", "198.18.0.0/24 "};
  EXPECT_THAT(lines(svc, {&kMixed}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2",
                          "*:30080/TCP NodePort -> 198.18.17.2* 198.18.18.2",
                          "198.19.100.1:80/TCP LoadBalancer ranges 198.18.0.0/24 198.18.0.100/32 -> 198.18.17.2* 198.18.18.2",
                          "198.19.200.1:80/TCP ExternalIP -> 198.18.17.2* 198.18.18.2"));
}

TEST(ServiceFrontends, SessionAffinityClientIPOnEveryFrontend_KubeProxySessionAffinity) {
  auto svc = service("NodePort");
  svc.sessionAffinity = "ClientIP";
  svc.sessionAffinityTimeoutSeconds = 600;
  EXPECT_THAT(lines(svc, {&kMixed}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP affinity 600s -> 198.18.17.2* 198.18.18.2",
                          "*:30080/TCP NodePort affinity 600s -> 198.18.17.2* 198.18.18.2"));
}

TEST(ServiceFrontends, DualStackGetsFrontendsPerFamilyWithItsOwnEndpoints) {
  auto svc = service("NodePort");
  svc.clusterIPs = {"198.19.0.10", "2001:db8:c::10"};
  svc.externalIPs = {"2001:db8:e::1", "198.19.200.1"};
  auto v6 = slice({ep("2001:db8:1:1::2", "node-1")}, "IPv6");
  EXPECT_THAT(lines(svc, {&kMixed, &v6}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2",
                          "*:30080/TCP NodePort -> 198.18.17.2* 198.18.18.2",
                          "198.19.200.1:80/TCP ExternalIP -> 198.18.17.2* 198.18.18.2",
                          "[2001:db8:c::10]:80/TCP ClusterIP -> 2001:db8:1:1::2*",
                          "[*]:30080/TCP NodePort -> 2001:db8:1:1::2*",
                          "[2001:db8:e::1]:80/TCP ExternalIP -> 2001:db8:1:1::2*"));
}

TEST(ServiceFrontends, SamePortOnTcpAndUdpAndNamedPorts) {
  auto svc = service("NodePort");
  k8s::ServicePort dns;
  dns.name = "dns";
  dns.port = 53;
  dns.protocol = k8s::Protocol::UDP;
  dns.nodePort = 30053;
  k8s::ServicePort dnsTcp = dns;
  dnsTcp.name = "dns-tcp";
  dnsTcp.protocol = k8s::Protocol::TCP;
  svc.ports = {dns, dnsTcp};
  auto s = slice({ep("198.18.17.2", "node-1")});
  s.ports = {{"dns", k8s::Protocol::UDP, 5353}, {"dns-tcp", k8s::Protocol::TCP, 5354}};
  std::vector<std::string> warnings;
  auto fes = translateService(svc, {&s}, {kNode, ""}, warnings).frontends;
  std::vector<std::string> got;
  for (const auto& f : fes) got.push_back(f.key.str() + " -> " + f.backends.at(0).key.str());
  EXPECT_THAT(got, ElementsAre("198.19.0.10:53/UDP -> 198.18.17.2:5353/UDP", "*:30053/UDP -> 198.18.17.2:5353/UDP",
                               "198.19.0.10:53/TCP -> 198.18.17.2:5354/TCP", "*:30053/TCP -> 198.18.17.2:5354/TCP"));
}

TEST(ServiceFrontends, ZoneHintsSelectThisNodesZone_KubeProxyTopologyHints) {
  auto svc = service();
  auto a = ep("198.18.17.2", "node-1"), b = ep("198.18.18.2", "node-2");
  a.hintsForZones = {"zone-a"};
  b.hintsForZones = {"zone-b"};
  auto s = slice({a, b});
  EXPECT_THAT(lines(svc, {&s}, nullptr, {kNode, "zone-b"}), ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.18.2"));
  EXPECT_THAT(lines(svc, {&s}, nullptr, {kNode, "zone-c"}),
              ElementsAre("198.19.0.10:80/TCP ClusterIP -> 198.18.17.2* 198.18.18.2"))
      << "no hint for this zone: all endpoints";
}

TEST(ServiceFrontends, HealthCheckNodePortAndLocalReadyEndpoints_KubeProxyServiceHealthServer) {
  auto svc = service("LoadBalancer");
  svc.externalTrafficPolicy = "Local";
  svc.healthCheckNodePort = 32000;
  auto s = slice({ep("198.18.17.2", "node-1"), ep("198.18.17.3", "node-1", false, true), ep("198.18.18.2", "node-2")});
  std::vector<std::string> warnings;
  auto out = translateService(svc, {&s}, {kNode, ""}, warnings);
  EXPECT_EQ(out.healthCheckNodePort, 32000);
  EXPECT_EQ(out.localReadyEndpoints, 1) << "local and ready only (terminating ones fail the check)";
  svc.externalTrafficPolicy = "Cluster";
  EXPECT_EQ(translateService(svc, {&s}, {kNode, ""}, warnings).healthCheckNodePort, 0)
      << "only LoadBalancers with externalTrafficPolicy Local need a health check";
}

TEST(ServiceFrontends, ATypeChangeChangesTheServiceInfo) {
  std::vector<std::string> warnings;
  auto a = toServiceInfo(service("ClusterIP"), warnings);
  auto b = toServiceInfo(service("NodePort"), warnings);
  auto lbSvc = service("LoadBalancer");
  auto c = toServiceInfo(lbSvc, warnings);
  lbSvc.loadBalancerIngress = {{"198.19.100.1", ""}};
  auto d = toServiceInfo(lbSvc, warnings);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(c, d) << "an LB IP arriving in status is a change";
}

}  // namespace
}  // namespace switchyard::lb
