// The daemon's policy sync (cmd/policy_sync.h) on real BPF maps made here with the layouts of
// bpf/policy.bpf.h (needs root): what a sync writes, what a full map leaves (the previous
// rules, an error counted), what a restart adopts, what policy.enabled false clears.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <cstring>

#include <boost/asio/io_context.hpp>
#include <fstream>
#include <sstream>

#include "bpf/abi.h"
#include "bpf/policy_abi.h"
#include "bpf/policy_maps.h"
#include "bpf/unique_fd.h"
#include "cmd/policy_events.h"
#include "cmd/policy_sync.h"
#include "tests/policy/grid.h"

namespace switchyard::cmd {
namespace {

using policy::testing::policyFrom;

struct Maps {
  bpf::UniqueFd ipcache, endpoints, rules, state;
  PolicySyncMaps fds() const { return {{ipcache.get(), endpoints.get(), rules.get()}, state.get()}; }
};

// The four maps as the tc object declares them, with `ruleSlots` rules at most.
Maps makeMaps(uint32_t ruleSlots) {
  LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
  LIBBPF_OPTS(bpf_map_create_opts, hash, .map_flags = BPF_F_NO_PREALLOC);
  Maps m;
  m.ipcache = bpf::UniqueFd(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_pol_ipc", sizeof(sy_pol_ipcache_key),
                                           sizeof(sy_pol_peer), 64, &lpm));
  m.endpoints = bpf::UniqueFd(bpf_map_create(BPF_MAP_TYPE_HASH, "t_pol_ep", 16, sizeof(sy_pol_endpoint), 64, &hash));
  m.rules = bpf::UniqueFd(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_pol_rules", sizeof(sy_pol_rule_key),
                                         sizeof(sy_pol_rule_value), ruleSlots, &lpm));
  m.state = bpf::UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_pol_state", 4, sizeof(sy_pol_state), 1, nullptr));
  return m;
}

sy_pol_state stateOf(const Maps& m) {
  uint32_t key = 0;
  sy_pol_state v{};
  EXPECT_EQ(bpf_map_lookup_elem(m.state.get(), &key, &v), 0);
  return v;
}

policy::State held(const Maps& m) {
  policy::State st;
  std::string error;
  EXPECT_TRUE(bpf::readPolicyMaps(m.fds().maps, st, error)) << error;
  return st;
}

double metric(prometheus::Registry& r, const std::string& name, const std::string& label = "",
              const std::string& value = "") {
  for (const auto& fam : r.Collect()) {
    if (fam.name != name) continue;
    for (const auto& mm : fam.metric) {
      bool match = label.empty();
      for (const auto& l : mm.label) match = match || (l.name == label && l.value == value);
      if (match) return fam.type == prometheus::MetricType::Counter ? mm.counter.value : mm.gauge.value;
    }
  }
  ADD_FAILURE() << "no series " << name << "{" << label << "=" << value << "}";
  return -1;
}

k8s::Pod pod(const std::string& ns, const std::string& name, const std::string& app, const std::string& ip,
             const std::string& node = "node-1") {
  k8s::Pod p;
  p.metadata.namespace_ = ns;
  p.metadata.name = name;
  p.metadata.labels = {{"app", app}};
  p.nodeName = node;
  p.podIPs = {ip};
  p.phase = "Running";
  return p;
}

k8s::Namespace ns(const std::string& name) {
  k8s::Namespace n;
  n.metadata.name = name;
  n.metadata.labels = {{"kubernetes.io/metadata.name", name}};
  return n;
}

// x/a accepts TCP from x/b on `ports` (a YAML list of port entries).
k8s::NetworkPolicy allowFromB(const std::string& ports) {
  return policyFrom(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-b, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: b}}}]
    ports: )" + ports + "\n");
}

class PolicySyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF maps)";
  }
  PolicySyncOptions options(bool enabled = true) {
    PolicySyncOptions o;
    o.enabled = enabled;
    o.nodeName = "node-1";
    o.minSyncPeriod = std::chrono::milliseconds(0);
    return o;
  }
  void feed(PolicySync& s, const k8s::NetworkPolicy& pol) {
    s.onNamespaceUpsert(ns("x"));
    s.onPodUpsert(pod("x", "a", "a", "198.18.17.2"));
    s.onPodUpsert(pod("x", "b", "b", "198.18.18.2", "node-2"));
    s.onNetworkPolicyUpsert(pol);
  }
  boost::asio::io_context io_;
  prometheus::Registry registry_;
  metrics::PolicyMetrics metrics_{registry_};
};

TEST_F(PolicySyncTest, NothingIsWrittenBeforeTheSourceSyncedThenEverythingAndANewRevision) {
  Maps m = makeMaps(16);
  PolicySync s(io_, m.fds(), options(), metrics_);
  std::string error;
  ASSERT_TRUE(s.start(error)) << error;
  feed(s, allowFromB("[{port: 80}]"));
  EXPECT_FALSE(s.sync().ran) << "a partial picture (before onSynced) must not reach the maps";
  EXPECT_TRUE(held(m).rules.empty());

  s.onSynced();
  PolicySync::Result r = s.sync();
  ASSERT_TRUE(r.ran && r.ok) << r.error;
  policy::State st = held(m);
  EXPECT_EQ(st.rules, s.written().rules);
  EXPECT_EQ(st.rules.size(), 1u);
  EXPECT_EQ(st.ipcache, s.written().ipcache);
  ASSERT_EQ(st.endpoints.size(), 1u) << "only node-1's pod is an endpoint";
  EXPECT_TRUE(st.endpoints.begin()->second.ingressIsolated);
  sy_pol_state ps = stateOf(m);
  EXPECT_EQ(ps.flags, SY_POL_STATE_ENABLED);
  EXPECT_EQ(ps.revision, 1u);
  EXPECT_EQ(metric(registry_, "switchyard_policy_sync_total", "result", "success"), 1);
  EXPECT_EQ(metric(registry_, "switchyard_policy_rules"), 1);
  EXPECT_EQ(metric(registry_, "switchyard_policy_endpoints"), 1);
  EXPECT_EQ(metric(registry_, "switchyard_policy_identities", "kind", "pod"), 2);

  // Nothing changed: no write, no new revision.
  s.onPodUpsert(pod("x", "b", "b", "198.18.18.2", "node-2"));
  EXPECT_FALSE(s.sync().ran);
  EXPECT_EQ(stateOf(m).revision, 1u);
}

TEST_F(PolicySyncTest, AFullRulesMapKeepsThePreviousRulesAndCountsTheError) {
  // Room for 4 rules: port 80 (1 rule) fits, ports 80 and 1000-1999 (1 + 8 blocks) do not.
  Maps m = makeMaps(4);
  PolicySync s(io_, m.fds(), options(), metrics_);
  std::string error;
  ASSERT_TRUE(s.start(error)) << error;
  feed(s, allowFromB("[{port: 80}]"));
  s.onSynced();
  ASSERT_TRUE(s.sync().ok);
  const policy::State before = held(m);
  ASSERT_EQ(before.rules.size(), 1u);
  uint32_t revBefore = stateOf(m).revision;

  s.onNetworkPolicyUpsert(allowFromB("[{port: 80}, {port: 1000, endPort: 1999}]"));
  PolicySync::Result r = s.sync();
  EXPECT_TRUE(r.ran);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("pol_rules_v1: endpoint "), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("No space left on device"), std::string::npos) << r.error;
  // The rules added before the map filled were taken out again: the maps hold the old state.
  policy::State after = held(m);
  EXPECT_EQ(after.rules, before.rules);
  EXPECT_EQ(after.ipcache, before.ipcache);
  EXPECT_EQ(after.endpoints, before.endpoints);
  EXPECT_EQ(s.written().rules, before.rules);
  EXPECT_GE(metric(registry_, "switchyard_policy_map_errors_total", "map", "pol_rules"), 1);
  EXPECT_EQ(metric(registry_, "switchyard_policy_map_errors_total", "map", "pol_ipcache"), 0);
  EXPECT_EQ(metric(registry_, "switchyard_policy_sync_total", "result", "error"), 1);
  EXPECT_EQ(metric(registry_, "switchyard_policy_rules"), 1) << "the gauge shows what the map holds";
  // Verdicts taken while the extra rules were briefly in are taken again.
  EXPECT_NE(stateOf(m).revision, revBefore);
  EXPECT_TRUE(s.pending()) << "a retry is due";

  // A policy that fits goes in.
  s.onNetworkPolicyUpsert(allowFromB("[{port: 80}, {port: 443}]"));
  r = s.sync();
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(held(m).rules.size(), 2u);
}

TEST_F(PolicySyncTest, ARestartAdoptsThePinnedNumbersAndRewritesNothing) {
  Maps m = makeMaps(16);
  {
    PolicySync first(io_, m.fds(), options(), metrics_);
    std::string error;
    ASSERT_TRUE(first.start(error)) << error;
    feed(first, allowFromB("[{port: 80}]"));
    first.onSynced();
    ASSERT_TRUE(first.sync().ok);
  }
  const policy::State pinned = held(m);
  uint32_t rev = stateOf(m).revision;

  // The new daemon hears of a pod first that sorts before the others: numbered from scratch,
  // it would take x/a's identity and endpoint number.
  prometheus::Registry r2;
  metrics::PolicyMetrics m2(r2);
  PolicySync second(io_, m.fds(), options(), m2);
  std::string error;
  ASSERT_TRUE(second.start(error)) << error;
  second.onPodUpsert(pod("x", "0", "zero", "198.18.18.9", "node-2"));
  second.onPodUpsert(pod("x", "00", "a-too", "198.18.17.9"));
  feed(second, allowFromB("[{port: 80}]"));
  second.onSynced();
  PolicySync::Result r = second.sync();
  ASSERT_TRUE(r.ok) << r.error;
  policy::State now = held(m);
  for (const auto& rule : pinned.rules) {
    EXPECT_TRUE(now.rules.count(rule)) << "x/a's rule kept its numbers: " << rule.str();
  }
  for (const auto& [addr, ep] : pinned.endpoints) {
    ASSERT_TRUE(now.endpoints.count(addr));
    EXPECT_EQ(now.endpoints.at(addr).id, ep.id) << "x/a keeps its endpoint number";
    EXPECT_EQ(now.endpoints.at(addr).identity, ep.identity) << "x/a keeps its identity";
  }
  // Only the two new pods' entries were written (two ipcache entries, one endpoint).
  EXPECT_EQ(r.operations, 3u);
  EXPECT_NE(stateOf(m).revision, rev);

  // Restarted again with the same objects: nothing to write, the revision stays.
  PolicySync third(io_, m.fds(), options(), m2);
  ASSERT_TRUE(third.start(error)) << error;
  third.onPodUpsert(pod("x", "0", "zero", "198.18.18.9", "node-2"));
  third.onPodUpsert(pod("x", "00", "a-too", "198.18.17.9"));
  feed(third, allowFromB("[{port: 80}]"));
  third.onSynced();
  uint32_t rev2 = stateOf(m).revision;
  r = third.sync();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.operations, 0u);
  EXPECT_EQ(stateOf(m).revision, rev2);
}

TEST_F(PolicySyncTest, TheHourlyResyncRepairsEntriesSomeoneElseRemoved) {
  Maps m = makeMaps(16);
  PolicySync s(io_, m.fds(), options(), metrics_);
  std::string error;
  ASSERT_TRUE(s.start(error)) << error;
  feed(s, allowFromB("[{port: 80}]"));
  s.onSynced();
  ASSERT_TRUE(s.sync().ok);
  const policy::State want = held(m);
  ASSERT_EQ(want.rules.size(), 1u);
  // Drift: the rule removed behind the daemon's back (bpftool map delete).
  sy_pol_rule_key k{};
  ASSERT_EQ(bpf_map_get_next_key(m.rules.get(), nullptr, &k), 0);
  ASSERT_EQ(bpf_map_delete_elem(m.rules.get(), &k), 0);
  EXPECT_FALSE(s.sync().ran) << "a sync trusts what it wrote";
  s.resync();
  PolicySync::Result r = s.sync();
  EXPECT_TRUE(r.ran && r.ok) << r.error;
  EXPECT_EQ(r.operations, 1u);
  EXPECT_EQ(held(m).rules, want.rules);
}

TEST_F(PolicySyncTest, DisabledClearsTheFlagsAndEmptiesTheMaps) {
  Maps m = makeMaps(16);
  {
    PolicySyncOptions o = options();
    o.logDenied = true;
    PolicySync on(io_, m.fds(), o, metrics_);
    std::string error;
    ASSERT_TRUE(on.start(error)) << error;
    feed(on, allowFromB("[{port: 80}]"));
    on.onSynced();
    ASSERT_TRUE(on.sync().ok);
    EXPECT_EQ(stateOf(m).flags, SY_POL_STATE_ENABLED | SY_POL_STATE_LOG_DENIED);
  }
  PolicySync off(io_, m.fds(), options(false), metrics_);
  std::string error;
  ASSERT_TRUE(off.start(error)) << error;
  EXPECT_EQ(stateOf(m).flags, 0u);
  policy::State st = held(m);
  EXPECT_TRUE(st.rules.empty());
  EXPECT_TRUE(st.endpoints.empty());
  EXPECT_TRUE(st.ipcache.empty());
  feed(off, allowFromB("[{port: 80}]"));
  off.onSynced();
  EXPECT_FALSE(off.sync().ran);
  EXPECT_TRUE(held(m).rules.empty());
}

// Operators look the metrics up in docs/operations.md: every family has a row there.
TEST(PolicyMetricsDocs, EveryFamilyHasARowInOperationsMd) {
  prometheus::Registry r;
  metrics::PolicyMetrics m(r);
  std::ifstream in(SY_DOCS "/operations.md");
  ASSERT_TRUE(in) << SY_DOCS "/operations.md";
  std::stringstream text;
  text << in.rdbuf();
  auto families = r.Collect();
  EXPECT_EQ(families.size(), 6u);
  for (const auto& f : families) {
    EXPECT_NE(text.str().find("| `" + f.name), std::string::npos) << "docs/operations.md has no row for " << f.name;
  }
}

sy_pol_event event(const char* local, const char* peer, uint8_t dir, uint16_t port, uint32_t reason) {
  sy_pol_event ev{};
  std::memcpy(ev.local, lb::IpAddr::parse(local)->bytes.data(), 16);
  std::memcpy(ev.peer, lb::IpAddr::parse(peer)->bytes.data(), 16);
  ev.ifindex = 1;  // lo
  ev.port = port;
  ev.proto = lb::kProtoTCP;
  ev.dir = dir;
  ev.reason = reason;
  return ev;
}

TEST(DeniedFlowLog, ALineNamesThePodsFromSourceToDestinationAndTheReason) {
  PodNamer name = [](const lb::IpAddr& a) { return a.str() == "198.18.17.2" ? std::string("x/a") : std::string(); };
  EXPECT_EQ(describeDeniedFlow(event("198.18.17.2", "198.18.18.2", SY_POL_INGRESS, 8080, SY_REASON_POL_DENIED), name),
            "denied ingress TCP (no pod) (198.18.18.2) -> x/a (198.18.17.2) port 8080 on lo: no rule of the "
            "policies selecting the pod allows it");
  EXPECT_EQ(describeDeniedFlow(event("198.18.17.2", "2001:db8:1:2::2", SY_POL_EGRESS, 53, SY_REASON_POL_DENIED_DEFAULT),
                               name),
            "denied egress TCP x/a (198.18.17.2) -> (no pod) (2001:db8:1:2::2) port 53 on lo: only policies "
            "without rules for this direction select the pod (default deny)");
}

TEST(DeniedFlowLog, AtMostSoManyLinesASecondAndTheRestSummedOnce) {
  LineBudget b(2);
  LineBudget::Clock::time_point t0{std::chrono::seconds(100)};
  uint64_t held = 0;
  EXPECT_TRUE(b.take(t0, held));
  EXPECT_TRUE(b.take(t0 + std::chrono::milliseconds(10), held));
  EXPECT_FALSE(b.take(t0 + std::chrono::milliseconds(20), held));
  EXPECT_FALSE(b.take(t0 + std::chrono::milliseconds(30), held));
  EXPECT_EQ(held, 0u);
  EXPECT_TRUE(b.take(t0 + std::chrono::milliseconds(1000), held));
  EXPECT_EQ(held, 2u) << "the two held back are reported when the next second opens";
  EXPECT_TRUE(b.take(t0 + std::chrono::milliseconds(1001), held));
  EXPECT_EQ(held, 0u) << "and only once";
}

TEST_F(PolicySyncTest, PodAtNamesTheCurrentHolderOfAnAddress) {
  Maps m = makeMaps(16);
  PolicySync s(io_, m.fds(), options(), metrics_);
  s.onPodUpsert(pod("x", "a", "a", "198.18.17.2"));
  EXPECT_EQ(s.podAt(*lb::IpAddr::parse("198.18.17.2")), "x/a");
  s.onPodUpsert(pod("x", "a", "a", "198.18.17.3"));  // a new address
  EXPECT_EQ(s.podAt(*lb::IpAddr::parse("198.18.17.2")), "");
  EXPECT_EQ(s.podAt(*lb::IpAddr::parse("198.18.17.3")), "x/a");
  s.onPodDelete(pod("x", "a", "a", "198.18.17.3"));
  EXPECT_EQ(s.podAt(*lb::IpAddr::parse("198.18.17.3")), "");
}

TEST(PolicyNamesPath, MirrorsThePinPathUnderRun) {
  EXPECT_EQ(policyNamesPath("/sys/fs/bpf/switchyard"), "/run/switchyard/state/sys/fs/bpf/switchyard/policy-names.json");
  EXPECT_EQ(policyNamesPath("/sys/fs/bpf/x/"), "/run/switchyard/state/sys/fs/bpf/x/policy-names.json");
}

}  // namespace
}  // namespace switchyard::cmd
