// kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go), row by row: the rows and
// their names follow kubernetes pkg/proxy/topology_test.go (TestCategorizeEndpoints) for
// the behaviour of current releases (hints always honoured; PreferSameTrafficDistribution
// GA in 1.35, node hints before zone hints).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "lb/topology.h"

namespace switchyard::lb {
namespace {

struct Ep {
  std::string name;                // "10.1.2.3:80" in kube-proxy's tests
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool local = false;
  std::vector<std::string> zones;  // hints.forZones
  std::vector<std::string> nodes;  // hints.forNodes
};

struct Row {
  std::string name;
  std::string zone;  // this node's topology.kubernetes.io/zone
  PortPolicy policy;
  std::vector<Ep> eps;
  std::set<std::string> cluster, local;
  bool hasAny = true;
};

constexpr const char* kNode = "node-a";

std::set<std::string> names(const std::vector<Ep>& eps, const std::vector<size_t>& idx) {
  std::set<std::string> out;
  for (size_t i : idx) out.insert(eps[i].name);
  return out;
}

class CategorizeEndpoints : public ::testing::TestWithParam<Row> {};

TEST_P(CategorizeEndpoints, KubeProxyCategorizeEndpoints) {
  const Row& r = GetParam();
  ZoneSets zones;
  std::vector<EndpointView> views;
  for (const Ep& e : r.eps) {
    EndpointView v;
    v.flags = (e.ready ? kEndpointReady : 0) | (e.serving ? kEndpointServing : 0) |
              (e.terminating ? kEndpointTerminating : 0) | (e.local ? kEndpointLocal : 0);
    if (!e.nodes.empty()) {
      v.flags |= kEndpointHasNodeHints;
      if (std::find(e.nodes.begin(), e.nodes.end(), kNode) != e.nodes.end()) v.flags |= kEndpointHintedHere;
    }
    v.zoneHints = zones.intern(e.zones);
    views.push_back(v);
  }
  Categorized c = categorizeEndpoints(views, r.policy, r.zone, zones);
  EXPECT_EQ(names(r.eps, c.cluster), r.cluster) << "Cluster-policy endpoints";
  EXPECT_EQ(names(r.eps, c.local), r.local) << "Local-policy endpoints";
  EXPECT_EQ(c.hasAny, r.hasAny) << "endpoints anywhere";
}

PortPolicy cluster() { return {}; }
PortPolicy etpLocal() { return {false, true, true}; }
PortPolicy itpLocal() { return {true, false, false}; }
PortPolicy itpLocalNodePort() { return {true, false, true}; }

Ep ready(std::string n, std::vector<std::string> zones = {}, bool local = false) {
  return {std::move(n), true, true, false, local, std::move(zones), {}};
}
Ep unready(std::string n, std::vector<std::string> zones = {}) {
  return {std::move(n), false, false, false, false, std::move(zones), {}};
}
Ep terminating(std::string n, bool local = false, bool serving = true) {
  return {std::move(n), false, serving, true, local, {}, {}};
}
Ep nodeHinted(std::string n, std::vector<std::string> nodes, std::vector<std::string> zones = {}) {
  return {std::move(n), true, true, false, false, std::move(zones), std::move(nodes)};
}

INSTANTIATE_TEST_SUITE_P(
    TopologyTest, CategorizeEndpoints,
    ::testing::Values(
        Row{"normal endpoint filtering", "zone-a", cluster(),
            {ready("10.1.2.3:80", {"zone-a"}), ready("10.1.2.4:80", {"zone-b"}), ready("10.1.2.5:80", {"zone-c"}),
             ready("10.1.2.6:80", {"zone-a"})},
            {"10.1.2.3:80", "10.1.2.6:80"}, {}},
        Row{"externalTrafficPolicy: Local, topology ignored for Local endpoints", "zone-a", etpLocal(),
            {ready("10.1.2.3:80", {"zone-a"}, true), ready("10.1.2.4:80", {"zone-b"}, true),
             ready("10.1.2.5:80", {"zone-c"}), ready("10.1.2.6:80", {"zone-a"})},
            {"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"}},
        Row{"internalTrafficPolicy: Local, topology ignored for Local endpoints", "zone-a", itpLocalNodePort(),
            {ready("10.1.2.3:80", {"zone-a"}, true), ready("10.1.2.4:80", {"zone-b"}, true),
             ready("10.1.2.5:80", {"zone-c"}), ready("10.1.2.6:80", {"zone-a"})},
            {"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"}},
        Row{"empty node labels", "", cluster(), {ready("10.1.2.3:80", {"zone-a"})}, {"10.1.2.3:80"}, {}},
        Row{"node in different zone, no endpoint filtering", "zone-b", cluster(),
            {ready("10.1.2.3:80", {"zone-a"})}, {"10.1.2.3:80"}, {}},
        Row{"unready endpoint", "zone-a", cluster(),
            {ready("10.1.2.3:80", {"zone-a"}), ready("10.1.2.4:80", {"zone-b"}), ready("10.1.2.5:80", {"zone-c"}),
             unready("10.1.2.6:80", {"zone-a"})},
            {"10.1.2.3:80"}, {}},
        Row{"only unready endpoints in same zone (should not filter)", "zone-a", cluster(),
            {unready("10.1.2.3:80", {"zone-a"}), ready("10.1.2.4:80", {"zone-b"}), ready("10.1.2.5:80", {"zone-c"}),
             unready("10.1.2.6:80", {"zone-a"})},
            {"10.1.2.4:80", "10.1.2.5:80"}, {}},
        Row{"missing hints, no filtering applied", "zone-a", cluster(),
            {ready("10.1.2.3:80", {"zone-a"}), ready("10.1.2.4:80", {"zone-b"}), ready("10.1.2.5:80"),
             ready("10.1.2.6:80", {"zone-a"})},
            {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"}, {}},
        Row{"multiple hints per endpoint, filtering includes any endpoint with zone included", "zone-c", cluster(),
            {ready("10.1.2.3:80", {"zone-a", "zone-b", "zone-c"}), ready("10.1.2.4:80", {"zone-b", "zone-c"}),
             ready("10.1.2.5:80", {"zone-b", "zone-d"}), ready("10.1.2.6:80", {"zone-c"})},
            {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"}, {}},
        Row{"conflicting topology and localness require merging allEndpoints", "zone-a", etpLocal(),
            {ready("10.0.0.0:80", {"zone-a"}, true), ready("10.0.0.1:80", {"zone-b"}, true),
             ready("10.0.0.2:80", {"zone-a"}), ready("10.0.0.3:80", {"zone-b"})},
            {"10.0.0.0:80", "10.0.0.2:80"}, {"10.0.0.0:80", "10.0.0.1:80"}},
        Row{"internalTrafficPolicy: Local, with empty endpoints", "", itpLocal(), {}, {}, {}, false},
        Row{"internalTrafficPolicy: Local, but all endpoints are remote", "", itpLocal(),
            {ready("10.0.0.0:80"), ready("10.0.0.1:80")}, {}, {}, true},
        Row{"internalTrafficPolicy: Local, all endpoints are local", "", itpLocal(),
            {ready("10.0.0.0:80", {}, true), ready("10.0.0.1:80", {}, true)}, {}, {"10.0.0.0:80", "10.0.0.1:80"}},
        Row{"internalTrafficPolicy: Local, some endpoints are local", "", itpLocal(),
            {ready("10.0.0.0:80", {}, true), ready("10.0.0.1:80")}, {}, {"10.0.0.0:80"}},
        Row{"Cluster traffic policy, endpoints not Ready", "", cluster(),
            {unready("10.0.0.0:80"), unready("10.0.0.1:80")}, {}, {}, false},
        Row{"Cluster traffic policy, some endpoints are Ready", "", cluster(),
            {unready("10.0.0.0:80"), ready("10.0.0.1:80")}, {"10.0.0.1:80"}, {}},
        Row{"Cluster traffic policy, all endpoints are terminating", "", cluster(),
            {terminating("10.0.0.0:80"), terminating("10.0.0.1:80", false, false)}, {"10.0.0.0:80"}, {}},
        Row{"iTP: Local, eTP: Cluster, some endpoints local", "", itpLocalNodePort(),
            {ready("10.0.0.0:80", {}, true), ready("10.0.0.1:80")}, {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80"}},
        Row{"iTP: Cluster, eTP: Local, some endpoints local", "", etpLocal(),
            {ready("10.0.0.0:80", {}, true), ready("10.0.0.1:80")}, {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80"}},
        Row{"iTP: Local, eTP: Local, some endpoints local", "", PortPolicy{true, true, true},
            {ready("10.0.0.0:80", {}, true), ready("10.0.0.1:80")}, {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80"}},
        Row{"iTP: Local, eTP: Local, all endpoints remote", "", PortPolicy{true, true, true},
            {ready("10.0.0.0:80"), ready("10.0.0.1:80")}, {"10.0.0.0:80", "10.0.0.1:80"}, {}},
        Row{"iTP: Local, eTP: Local, all endpoints remote and terminating", "", PortPolicy{true, true, true},
            {terminating("10.0.0.0:80"), terminating("10.0.0.1:80")}, {"10.0.0.0:80", "10.0.0.1:80"}, {}},
        Row{"iTP: Cluster, eTP: Local, with terminating endpoints", "", etpLocal(),
            {ready("10.0.0.0:80"), terminating("10.0.0.1:80", true), terminating("10.0.0.2:80", true, false),
             terminating("10.0.0.3:80")},
            {"10.0.0.0:80"}, {"10.0.0.1:80"}},
        Row{"externalTrafficPolicy ignored if not externally accessible", "", PortPolicy{false, true, false},
            {ready("10.0.0.0:80", {}, true), ready("10.0.0.1:80")}, {"10.0.0.0:80", "10.0.0.1:80"}, {}},
        Row{"no cluster endpoints for iTP:Local internal-only service", "", itpLocal(),
            {ready("10.0.0.0:80", {}, true), ready("10.0.0.1:80")}, {}, {"10.0.0.0:80"}},
        // PreferSameNode (hints.forNodes) before PreferSameZone.
        Row{"PreferSameNode: node hints win over zone hints", "zone-a", cluster(),
            {nodeHinted("10.0.0.0:80", {"node-a"}, {"zone-a"}), nodeHinted("10.0.0.1:80", {"node-b"}, {"zone-a"})},
            {"10.0.0.0:80"}, {}},
        Row{"PreferSameNode: no hint for this node falls back to zone hints", "zone-a", cluster(),
            {nodeHinted("10.0.0.0:80", {"node-b"}, {"zone-a"}), nodeHinted("10.0.0.1:80", {"node-c"}, {"zone-b"})},
            {"10.0.0.0:80"}, {}},
        Row{"PreferSameNode: an endpoint without node hint disables node hints", "", cluster(),
            {nodeHinted("10.0.0.0:80", {"node-a"}), ready("10.0.0.1:80")}, {"10.0.0.0:80", "10.0.0.1:80"}, {}}),
    [](const auto& info) {
      std::string n;
      for (char c : info.param.name) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

TEST(ZoneSets, InternsSortedSetsOnce) {
  ZoneSets z;
  uint32_t a = z.intern({"zone-b", "zone-a", "zone-a"});
  EXPECT_EQ(z.intern({"zone-a", "zone-b"}), a);
  EXPECT_EQ(z.intern({}), 0u);
  EXPECT_TRUE(z.contains(a, "zone-b"));
  EXPECT_FALSE(z.contains(a, "zone-c"));
  EXPECT_FALSE(z.contains(0, ""));
}

}  // namespace
}  // namespace switchyard::lb
