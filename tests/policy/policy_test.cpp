// NetworkPolicy semantics: the policy/ compiler's entries, read back the way the datapath's
// policy stage reads them (RefDatapath below, docs/policy.md "Lookups"), give the verdict
// the Kubernetes API defines. Truth tables in the style of the upstream netpol e2e suite
// (test/e2e/network/netpol) and Cyclonus: a grid of pods in namespaces x and y on two nodes,
// every pod probing every other, the observed matrix compared with the expected one cell by
// cell and printed on a mismatch.
#include <gtest/gtest.h>

#include "policy/selector.h"
#include "tests/policy/grid.h"

namespace switchyard::policy {
namespace {

using namespace switchyard::policy::testing;

// --- selectors ---

TEST(Selector, EmptyMatchesEverythingAndEachOperatorAsLabelSelectorAsSelector) {
  Labels l{{"app", "web"}, {"tier", "front"}};
  EXPECT_TRUE(matches({}, l));
  EXPECT_TRUE(matches({}, {}));
  k8s::LabelSelector s;
  s.matchLabels = {{"app", "web"}};
  EXPECT_TRUE(matches(s, l));
  s.matchLabels = {{"app", "db"}};
  EXPECT_FALSE(matches(s, l));
  s.matchLabels.clear();
  s.matchExpressions = {{"tier", "In", {"back", "front"}}};
  EXPECT_TRUE(matches(s, l));
  s.matchExpressions = {{"tier", "NotIn", {"front"}}};
  EXPECT_FALSE(matches(s, l));
  s.matchExpressions = {{"zone", "NotIn", {"a"}}};  // NotIn matches a missing key
  EXPECT_TRUE(matches(s, l));
  s.matchExpressions = {{"zone", "Exists", {}}};
  EXPECT_FALSE(matches(s, l));
  s.matchExpressions = {{"zone", "DoesNotExist", {}}};
  EXPECT_TRUE(matches(s, l));
  s.matchExpressions = {{"app", "Exists", {}}, {"tier", "In", {"back"}}};  // AND
  EXPECT_FALSE(matches(s, l));
}

// --- the decoders ---

TEST(Decode, PolicyTypesDefaultAsTheApiServerDoes) {
  auto ingressOnly = policyFrom(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}}
)");
  EXPECT_TRUE(ingressOnly.ingress);
  EXPECT_FALSE(ingressOnly.egress);
  auto withEgress = policyFrom(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  egress: [{to: [{podSelector: {}}]}]
)");
  EXPECT_TRUE(withEgress.ingress);
  EXPECT_TRUE(withEgress.egress);
  auto egressOnly = policyFrom(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec: {podSelector: {}, policyTypes: [Egress], ingress: [{}]}
)");
  EXPECT_FALSE(egressOnly.ingress);
  EXPECT_TRUE(egressOnly.egress);
}

TEST(Decode, BadFieldsAreNamedByTheirPath) {
  auto errs = policyErrors(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: app, operator: Equals, values: [a]}]}
  policyTypes: [Ingress, Sideways]
  ingress:
  - ports: [{protocol: TCP, endPort: 90}, {port: 8080, endPort: 80}, {protocol: ICMP}]
    from: [{ipBlock: {cidr: 198.18.0.0/16}, podSelector: {}}, {}]
)");
  std::set<std::string> fields;
  for (const auto& e : errs) fields.insert(e.field);
  EXPECT_TRUE(fields.count("spec.podSelector.matchExpressions[0].operator"));
  EXPECT_TRUE(fields.count("spec.policyTypes[1]"));
  EXPECT_TRUE(fields.count("spec.ingress[0].ports[0].endPort"));  // endPort needs a port
  EXPECT_TRUE(fields.count("spec.ingress[0].ports[1].endPort"));  // below port
  EXPECT_TRUE(fields.count("spec.ingress[0].ports[2].protocol"));
  EXPECT_TRUE(fields.count("spec.ingress[0].from[0]"));  // ipBlock with a selector
  EXPECT_TRUE(fields.count("spec.ingress[0].from[1]"));  // an empty peer
  EXPECT_EQ(errs.size(), 7u);
}

TEST(Decode, PodKeepsAddressesNodeAndNamedPorts) {
  auto doc = json(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: x, labels: {app: web}}
spec:
  nodeName: n1
  containers:
  - {name: c1, ports: [{name: http, containerPort: 8080}]}
  - {name: c2, ports: [{name: dns, containerPort: 53, protocol: UDP}, {containerPort: 9000}]}
status:
  phase: Running
  podIP: 198.18.1.9
  podIPs: [{ip: 198.18.1.9}, {ip: "2001:db8:1::9"}]
)");
  k8s::Pod p;
  std::vector<k8s::FieldError> errs;
  ASSERT_TRUE(k8s::decodePod(doc, p, errs));
  EXPECT_EQ(p.nodeName, "n1");
  EXPECT_EQ(p.podIPs, (std::vector<std::string>{"198.18.1.9", "2001:db8:1::9"}));
  ASSERT_EQ(p.ports.size(), 3u);
  EXPECT_EQ(p.ports[1].name, "dns");
  EXPECT_EQ(p.ports[1].protocol, k8s::Protocol::UDP);
  EXPECT_EQ(p.ports[2].containerPort, 9000);
  auto nsDoc = json("{apiVersion: v1, kind: Namespace, metadata: {name: x}}");
  k8s::Namespace ns;
  ASSERT_TRUE(k8s::decodeNamespace(nsDoc, ns, errs));
  EXPECT_EQ(ns.metadata.labels.at("kubernetes.io/metadata.name"), "x");
}

// --- port blocks ---

TEST(PortBlocks, ARangeIsCoveredExactlyByFewAlignedBlocks) {
  EXPECT_EQ(portBlocks(80, 80), (std::vector<std::pair<uint16_t, uint8_t>>{{80, 16}}));
  EXPECT_EQ(portBlocks(0, 65535), (std::vector<std::pair<uint16_t, uint8_t>>{{0, 0}}));
  EXPECT_EQ(portBlocks(1024, 2047), (std::vector<std::pair<uint16_t, uint8_t>>{{1024, 6}}));
  uint32_t seed = 12345;
  for (int i = 0; i < 2000; ++i) {
    seed = seed * 1103515245 + 12345;
    auto lo = static_cast<uint16_t>(seed >> 16);
    seed = seed * 1103515245 + 12345;
    auto hi = static_cast<uint16_t>(lo + ((seed >> 16) % (65536 - lo)));
    auto blocks = portBlocks(lo, hi);
    ASSERT_LE(blocks.size(), 30u) << lo << "-" << hi;
    uint32_t next = lo;
    for (auto [start, len] : blocks) {
      ASSERT_EQ(start, next) << lo << "-" << hi;  // contiguous, in order, no overlap
      uint32_t size = 1u << (16 - len);
      ASSERT_EQ(start % size, 0u) << "block not aligned";
      next = start + size;
    }
    ASSERT_EQ(next, uint32_t{hi} + 1) << lo << "-" << hi;
  }
}

// --- truth tables: each on the reference lookups and on the kernel's ---

class TruthTable : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!makeDatapath(GetParam())) GTEST_SKIP() << "the kernel datapath needs root (BPF)";
  }
  std::unique_ptr<Datapath> datapath() { return makeDatapath(GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(Datapath, TruthTable, ::testing::Values("reference", "kernel"),
                         [](const auto& info) { return info.param; });

TEST_P(TruthTable, NoPolicyAllowsEverything) {
  Grid g(datapath());
  EXPECT_EQ(g.check({}, [](auto&, auto&) { return true; }), "");
  EXPECT_EQ(g.check({lb::kProtoUDP, 53}, [](auto&, auto&) { return true; }), "");
}

TEST_P(TruthTable, DefaultDenyIngress_UpstreamShouldSupportADefaultDenyIngressPolicy) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}}
)");
  for (bool v6 : {false, true}) {
    EXPECT_EQ(g.check({lb::kProtoTCP, 0, v6}, [](auto&, auto& d) { return d.ns != "x"; }), "");
    EXPECT_EQ(g.check({lb::kProtoUDP, 53, v6}, [](auto&, auto& d) { return d.ns != "x"; }), "");
  }
}

TEST_P(TruthTable, DefaultDenyEgress_UpstreamShouldSupportADefaultDenyEgressPolicy) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: y}
spec: {podSelector: {}, policyTypes: [Egress]}
)");
  EXPECT_EQ(g.check({}, [](auto& s, auto&) { return s.ns != "y"; }), "");
  EXPECT_EQ(g.check({.v6 = true}, [](auto& s, auto&) { return s.ns != "y"; }), "");
}

TEST_P(TruthTable, AllowFromPodSelector_UpstreamShouldEnforcePolicyBasedOnPodSelector) {
  Grid g(datapath());
  // Only x/b may reach x/a; the rest of x stays open.
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
)");
  auto expect = [](const GridPod& s, const GridPod& d) {
    return d.key() != "x/a" || s.key() == "x/b";
  };
  EXPECT_EQ(g.check({}, expect), "");
  EXPECT_EQ(g.check({lb::kProtoUDP, 53, true}, expect), "");
}

TEST_P(TruthTable, AllowFromNamespaceSelector_UpstreamShouldEnforcePolicyBasedOnNamespaceSelector) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
)");
  EXPECT_EQ(g.check({}, [](auto& s, auto& d) { return d.ns != "x" || s.ns == "y"; }), "");
}

TEST_P(TruthTable, PodAndNamespaceSelectorInOnePeerAreAnded_UpstreamShouldEnforcePolicyBasedOnPodSelectorAndNamespaceSelector) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and, namespace: x}
spec:
  podSelector: {matchLabels: {pod: c}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]
)");
  EXPECT_EQ(g.check({}, [](auto& s, auto& d) { return d.key() != "x/c" || s.key() == "y/b"; }), "");
}

TEST_P(TruthTable, TwoPeersAreOred_UpstreamShouldEnforcePolicyBasedOnAnyPodSelectorOrNamespaceSelector) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: or, namespace: x}
spec:
  podSelector: {matchLabels: {pod: c}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: b}}}]
)");
  EXPECT_EQ(g.check({}, [](auto& s, auto& d) {
              return d.key() != "x/c" || s.ns == "y" || s.key() == "x/b";
            }),
            "");
}

TEST_P(TruthTable, IpBlockWithExcept_UpstreamShouldEnforceExceptClauseWhileEgressAccessToServerInCidrBlock) {
  Grid g(datapath());
  // x/a may send only to 198.18.2.0/24 minus y/b's address (and the matching IPv6 block).
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cidr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 198.18.2.0/24, except: [198.18.2.2/32]}
    - ipBlock: {cidr: "2001:db8:2::/64", except: ["2001:db8:2::2/128"]}
)");
  auto expect = [](const GridPod& s, const GridPod& d) {
    return s.key() != "x/a" || (d.ns == "y" && d.name != "b");
  };
  EXPECT_EQ(g.check({}, expect), "");
  EXPECT_EQ(g.check({.v6 = true}, expect), "");
  // An address outside every pod: inside the block it passes, in the except it does not.
  g.compute();
  EXPECT_TRUE(g.egress("n1", "198.18.1.1", "198.18.2.77", lb::kProtoTCP, 80));
  EXPECT_FALSE(g.egress("n1", "198.18.1.1", "198.18.3.1", lb::kProtoTCP, 80));
  EXPECT_FALSE(g.egress("n1", "198.18.1.1", "2001:db8:3::1", lb::kProtoTCP, 80));
}

TEST_P(TruthTable, AnIpv4BlockDoesNotOpenIpv6OrTheOtherWay) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: v4-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]
)");
  EXPECT_EQ(g.check({}, [](auto&, auto&) { return true; }), "");
  EXPECT_EQ(g.check({.v6 = true}, [](auto& s, auto&) { return s.ns != "x"; }), "");
  // ::/0 holds ::ffff:0:0/96 as bits, but an IPv6 block never opens IPv4.
  g.remove("x/v4-all");
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: v6-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: "::/0"}}]}]
)");
  EXPECT_EQ(g.check({.v6 = true}, [](auto&, auto&) { return true; }), "");
  EXPECT_EQ(g.check({}, [](auto& s, auto&) { return s.ns != "x"; }), "");
}

TEST_P(TruthTable, EndPortAllowsTheWholeRangeOnly_UpstreamShouldAllowIngressAccessOnARangeOfPorts) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range, namespace: y}
spec:
  podSelector: {}
  ingress: [{ports: [{protocol: TCP, port: 81, endPort: 1000}]}]
)");
  auto yClosedOn = [](bool open) {
    return [open](const GridPod&, const GridPod& d) { return d.ns != "y" || open; };
  };
  EXPECT_EQ(g.check({lb::kProtoTCP, 80}, yClosedOn(false)), "");
  EXPECT_EQ(g.check({lb::kProtoTCP, 81}, yClosedOn(true)), "");
  EXPECT_EQ(g.check({lb::kProtoTCP, 999}, yClosedOn(true)), "");
  EXPECT_EQ(g.check({lb::kProtoTCP, 1000}, yClosedOn(true)), "");
  EXPECT_EQ(g.check({lb::kProtoTCP, 1001}, yClosedOn(false)), "");
  EXPECT_EQ(g.check({lb::kProtoUDP, 81}, yClosedOn(false)), "");  // the range is TCP's
}

TEST_P(TruthTable, NamedPortResolvesOnEachPodOwnPort_UpstreamShouldAllowIngressAccessOnOneNamedPort) {
  Grid g(datapath());
  // "serve" is 80 on a, 81 on b, 82 on c: each pod opens its own number only.
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve}]}]
)");
  EXPECT_EQ(g.check({}, [](auto&, auto&) { return true; }), "");  // each to its serve port
  EXPECT_EQ(g.check({lb::kProtoTCP, 81}, [](auto&, auto& d) { return d.ns != "x" || d.name == "b"; }), "");
  EXPECT_EQ(g.check({lb::kProtoTCP, 82}, [](auto&, auto& d) { return d.ns != "x" || d.name == "c"; }), "");
  // "serve" is a TCP port: UDP on the same number stays closed.
  EXPECT_EQ(g.check({lb::kProtoUDP, 80}, [](auto&, auto& d) { return d.ns != "x"; }), "");
}

TEST_P(TruthTable, EgressNamedPortResolvesOnTheDestinationPod_UpstreamShouldAllowEgressAccessOnOneNamedPort) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-egress, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {}}], ports: [{port: serve}]}]
)");
  EXPECT_EQ(g.check({}, [](auto&, auto&) { return true; }), "");
  // Port 80 is "serve" on the a pods only: x/a reaches the a pods on 80, nobody else.
  EXPECT_EQ(g.check({lb::kProtoTCP, 80},
                    [](auto& s, auto& d) { return s.key() != "x/a" || d.name == "a"; }),
            "");
}

// Without `to` (every destination) a named port still means each destination pod's own number:
// 81 is "serve" on the b pods only, so x/a reaches the b pods on 81 and nobody else; a number
// beside it opens on every destination.
TEST_P(TruthTable, EgressNamedPortWithoutPeersResolvesOnEachDestination_UpstreamEgressOnOneNamedPort) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-egress-anywhere, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{ports: [{port: serve}, {port: 9000}]}]
)");
  EXPECT_EQ(g.check({}, [](auto&, auto&) { return true; }), "");
  EXPECT_EQ(g.check({lb::kProtoTCP, 81}, [](auto& s, auto& d) { return s.key() != "x/a" || d.name == "b"; }), "");
  EXPECT_EQ(g.check({lb::kProtoTCP, 9000}, [](auto&, auto&) { return true; }), "");
  EXPECT_EQ(g.check({lb::kProtoUDP, 81}, [](auto& s, auto&) { return s.key() != "x/a"; }), "");
}

TEST_P(TruthTable, PolicyTypesEgressIgnoresIngressRules) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  ingress: [{from: [{podSelector: {matchLabels: {pod: none}}}]}]
  egress: [{}]
)");
  EXPECT_EQ(g.check({}, [](auto&, auto&) { return true; }), "");
}

TEST_P(TruthTable, IngressAndEgressBothApply_UpstreamShouldEnforceIngressAndEgressPoliciesOnTheSamePod) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: both, namespace: y}
spec:
  podSelector: {matchLabels: {pod: c}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}]}]
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: x}}}]}]
)");
  EXPECT_EQ(g.check({}, [](const GridPod& s, const GridPod& d) {
              bool in = d.key() != "y/c" || s.key() == "y/a";
              bool out = s.key() != "y/c" || d.ns == "x";
              return in && out;
            }),
            "");
}

TEST_P(TruthTable, LabelChangeMovesAPodInAndOutOfASelector_UpstreamShouldAllowIngressAccessFromUpdatedPod) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-blue, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {color: blue}}}]}]
)");
  EXPECT_EQ(g.check({}, [](auto&, auto& d) { return d.key() != "x/a"; }), "");
  g.setPod(pod("x/b"), {{"color", "blue"}});
  EXPECT_EQ(g.check({}, [](auto& s, auto& d) { return d.key() != "x/a" || s.key() == "x/b"; }), "");
  g.setPod(pod("x/b"));
  EXPECT_EQ(g.check({}, [](auto&, auto& d) { return d.key() != "x/a"; }), "");
}

TEST_P(TruthTable, NamespaceLabelChangeMovesItsPods_UpstreamShouldAllowIngressAccessFromUpdatedNamespace) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-trusted, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {trusted: "yes"}}}]}]
)");
  EXPECT_EQ(g.check({}, [](auto&, auto& d) { return d.ns != "x"; }), "");
  k8s::Namespace y;
  y.metadata.name = "y";
  y.metadata.labels = {{"ns", "y"}, {"trusted", "yes"}, {"kubernetes.io/metadata.name", "y"}};
  for (const char* n : {"n1", "n2"}) g.compilerOf(n).upsertNamespace(y);
  EXPECT_EQ(g.check({}, [](auto& s, auto& d) { return d.ns != "x" || s.ns == "y"; }), "");
}

TEST_P(TruthTable, RemovingThePolicyOpensEverythingAgain) {
  Grid g(datapath());
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
)");
  EXPECT_EQ(g.check({}, [](auto& s, auto& d) { return s.ns != "x" && d.ns != "x"; }), "");
  g.remove("x/deny");
  EXPECT_EQ(g.check({}, [](auto&, auto&) { return true; }), "");
  g.compute();
  EXPECT_TRUE(g.stateOf("n1").rules.empty());
  for (const auto& [addr, ep] : g.stateOf("n1").endpoints) {
    EXPECT_FALSE(ep.ingressIsolated || ep.egressIsolated) << ep.pod;
  }
}

// --- entries, identities, incremental updates ---

TEST(Entries, EachNodeHoldsItsOwnPodsAsEndpointsAndEveryPodInTheIpcache) {
  Grid g;
  g.compute();
  const State& n1 = g.stateOf("n1");
  std::set<std::string> local;
  for (const auto& [addr, ep] : n1.endpoints) local.insert(ep.pod);
  EXPECT_EQ(local, (std::set<std::string>{"x/a", "x/b", "y/a"}));
  EXPECT_EQ(n1.endpoints.size(), 6u);  // two addresses each
  for (const auto& p : kGrid) {
    for (const auto& a : {p.v4, p.v6}) {
      auto it = n1.ipcache.find(Cidr{ip(a.c_str()), 128});
      ASSERT_NE(it, n1.ipcache.end()) << a;
      EXPECT_GE(it->second.podIdentity, kFirstPodIdentity);
    }
  }
  // Six pods with distinct labels: six identities; the same labels share one.
  EXPECT_EQ(n1.identities.size(), 6u);
  auto id = [&](const char* a) { return n1.ipcache.at(Cidr{ip(a), 128}).podIdentity; };
  EXPECT_EQ(id("198.18.1.1"), id("2001:db8:1::1"));
  EXPECT_NE(id("198.18.1.1"), id("198.18.2.1"));  // same pod labels, other namespace
}

TEST(Entries, AHostNetworkOrFinishedPodIsNoEndpointAndNoPeer) {
  Compiler c("n1");
  auto p = podOf(kGrid[0]);
  p.hostNetwork = true;
  c.upsertPod(p);
  auto q = podOf(kGrid[1]);
  q.phase = "Succeeded";
  c.upsertPod(q);
  State s = c.compute();
  EXPECT_TRUE(s.endpoints.empty());
  EXPECT_TRUE(s.identities.empty());
  EXPECT_EQ(s.ipcache.size(), 2u);  // the two worlds
}

TEST(Incremental, NothingChangedMeansNothingToWrite) {
  Grid g;
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 1000, endPort: 2000}]}]
)");
  Compiler& c = g.compilerOf("n1");
  State a = c.compute();
  State b = c.compute();
  EXPECT_EQ(diff(a, b).size(), 0u);
  EXPECT_FALSE(a.rules.empty());
}

TEST(Incremental, APolicyChangeRewritesOnlyItsRules) {
  Grid g;
  Compiler& c = g.compilerOf("n1");
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80}]}]
)");
  State before = c.compute();
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 443}]}]
)");
  State after = c.compute();
  Diff d = diff(before, after);
  // x/b has one identity for both families: one rule in, one out.
  EXPECT_EQ(d.ruleAdd.size(), 1u);
  EXPECT_EQ(d.ruleDelete.size(), 1u);
  EXPECT_TRUE(d.ipcacheUpsert.empty() && d.ipcacheDelete.empty());
  EXPECT_TRUE(d.endpointUpsert.empty() && d.endpointDelete.empty());
  ASSERT_EQ(d.ruleAdd.size(), 1u);
  EXPECT_EQ(d.ruleAdd[0].port, 443);
  EXPECT_EQ(d.ruleAdd[0].portPrefixLen, 16);
}

TEST(Incremental, ALabelChangeRewritesThatPodsIpcacheEntriesAndTheRulesThatNameIt) {
  Grid g;
  Compiler& c = g.compilerOf("n1");
  g.apply(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-blue, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {color: blue}}}]}]
)");
  State before = c.compute();
  g.setPod(pod("y/c"), {{"color", "blue"}});  // other namespace: not selected by the rule
  State after = c.compute();
  Diff d = diff(before, after);
  EXPECT_EQ(d.ipcacheUpsert.size(), 2u);  // y/c's two addresses get a new identity
  EXPECT_TRUE(d.ruleAdd.empty() && d.ruleDelete.empty());
  EXPECT_TRUE(d.endpointUpsert.empty());  // y/c runs on n2
  g.setPod(pod("x/c"), {{"color", "blue"}});
  State third = c.compute();
  Diff d2 = diff(after, third);
  EXPECT_EQ(d2.ipcacheUpsert.size(), 2u);
  EXPECT_EQ(d2.ruleAdd.size(), 1u);  // x/a's ingress now names x/c's new identity
  EXPECT_TRUE(d2.ruleDelete.empty());
}

}  // namespace
}  // namespace switchyard::policy
