// The policy stage in the kernel: policy/'s entries written to real maps by
// bpf/policy_maps.cpp, bpf/policy.bpf.h's lookups run by BPF_PROG_RUN on crafted packets
// (tests/policy/policy_probe.bpf.c), one loaded object per node. The truth tables of
// policy_test.cpp run here too (TruthTable/Datapath.kernel).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include "bpf/policy_maps.h"
#include "policy_probe.skel.h"
#include "tests/bpf/packets.h"
#include "tests/policy/grid.h"

namespace switchyard::policy::testing {
namespace {

struct Node {
  policy_probe* skel = nullptr;
  ~Node() { policy_probe__destroy(skel); }
  bpf::PolicyMapFds fds() const {
    return {bpf_map__fd(skel->maps.pol_ipcache_v1), bpf_map__fd(skel->maps.pol_ep_v1),
            bpf_map__fd(skel->maps.pol_rules_v1)};
  }
};

int runProbe(int progFd, const IpAddr& src, const IpAddr& dst, uint8_t proto, uint16_t port) {
  auto pkt = bpftest::makePacket(proto, src.str().c_str(), 40000, dst.str().c_str(), port);
  std::vector<uint8_t> out(pkt.bytes.size() + 64);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.bytes.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(pkt.bytes.size()),
              .data_size_out = static_cast<uint32_t>(out.size()), .repeat = 1);
  int err = bpf_prog_test_run_opts(progFd, &opts);
  EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN: " << strerror(-err);
  return static_cast<int>(opts.retval);
}

class KernelDatapath : public Datapath {
 public:
  KernelDatapath() {
    for (auto* n : {&n1_, &n2_}) {
      n->skel = policy_probe__open_and_load();
      if (!n->skel) {
        ADD_FAILURE() << "loading the policy probe: " << strerror(errno);
      }
    }
  }
  void write(const std::string& node, const State& before, const State& after) override {
    auto r = bpf::writePolicyDiff(of(node).fds(), diff(before, after));
    EXPECT_TRUE(r.ok()) << r.firstError;
  }
  bool egress(const std::string& node, const State& st, const IpAddr& src, const IpAddr& dst,
              uint8_t proto, uint16_t port) override {
    int v = runProbe(bpf_program__fd(of(node).skel->progs.probe_egress), src, dst, proto, port);
    EXPECT_EQ(v == 3, !passes(st, src, dst, Direction::Egress, proto, port))
        << "kernel and reference disagree, egress " << src.str() << " -> " << dst.str();
    return v != 3;  // SY_POL_DENIED
  }
  bool ingress(const std::string& node, const State& st, const IpAddr& src, const IpAddr& dst,
               uint8_t proto, uint16_t port) override {
    int v = runProbe(bpf_program__fd(of(node).skel->progs.probe_ingress), src, dst, proto, port);
    EXPECT_EQ(v == 3, !passes(st, dst, src, Direction::Ingress, proto, port))
        << "kernel and reference disagree, ingress " << src.str() << " -> " << dst.str();
    return v != 3;
  }

 private:
  Node& of(const std::string& node) { return node == "n1" ? n1_ : n2_; }
  Node n1_, n2_;
};

}  // namespace

std::unique_ptr<Datapath> makeDatapath(const std::string& kind) {
  if (kind == "kernel") {
    if (geteuid() != 0) {
      return nullptr;
    }
    return std::make_unique<KernelDatapath>();
  }
  return std::make_unique<RefDatapath>();
}

namespace {

TEST(PolicyKernel, VerdictsNameWhyAFlowPasses) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  Node n;
  n.skel = policy_probe__open_and_load();
  ASSERT_NE(n.skel, nullptr);
  Compiler c("n1");
  for (const auto& g : kGrid) c.upsertPod(podOf(g));
  c.upsertPolicy(policyFrom(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 8000, endPort: 8100}]}]
)"));
  State st = c.compute();
  auto r = bpf::writePolicyDiff(n.fds(), diff(State{}, st));
  ASSERT_TRUE(r.ok()) << r.firstError;
  int in = bpf_program__fd(n.skel->progs.probe_ingress);
  int out = bpf_program__fd(n.skel->progs.probe_egress);
  // x/b -> x/a: allowed on 8000..8100 only; x/a's egress is open; y/a isolates nothing.
  EXPECT_EQ(runProbe(in, ip("198.18.1.2"), ip("198.18.1.1"), lb::kProtoTCP, 8050), 2);  // allowed
  EXPECT_EQ(runProbe(in, ip("198.18.1.2"), ip("198.18.1.1"), lb::kProtoTCP, 8101), 3);  // denied
  EXPECT_EQ(runProbe(in, ip("198.18.1.3"), ip("198.18.1.1"), lb::kProtoTCP, 8050), 3);  // x/c
  EXPECT_EQ(runProbe(in, ip("198.18.100.9"), ip("198.18.1.1"), lb::kProtoTCP, 8050), 3);  // world
  EXPECT_EQ(runProbe(out, ip("198.18.1.1"), ip("198.18.1.2"), lb::kProtoTCP, 8050), 1);  // open
  EXPECT_EQ(runProbe(in, ip("198.18.1.2"), ip("198.18.2.1"), lb::kProtoTCP, 8050), 1);   // y/a open
  EXPECT_EQ(runProbe(in, ip("198.18.1.2"), ip("198.18.100.9"), lb::kProtoTCP, 80), 0);   // no pod
}

TEST(PolicyKernel, AFullRulesMapKeepsThePreviousRulesAndSaysWhichEntryFailed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  Node n;
  n.skel = policy_probe__open();
  ASSERT_NE(n.skel, nullptr);
  ASSERT_EQ(bpf_map__set_max_entries(n.skel->maps.pol_rules_v1, 8), 0);
  ASSERT_EQ(policy_probe__load(n.skel), 0);
  Compiler c("n1");
  for (const auto& g : kGrid) c.upsertPod(podOf(g));
  const char* narrow = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80}]}]
)";
  c.upsertPolicy(policyFrom(narrow));
  State before = c.compute();
  ASSERT_TRUE(bpf::writePolicyDiff(n.fds(), diff(State{}, before)).ok());
  int in = bpf_program__fd(n.skel->progs.probe_ingress);
  ASSERT_EQ(runProbe(in, ip("198.18.1.2"), ip("198.18.1.1"), lb::kProtoTCP, 80), 2);
  // Every pod of the cluster as a peer, each with the port blocks of 81..40000: far more rules
  // than the map's 8 entries.
  c.upsertPolicy(policyFrom(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 81, endPort: 40000}]}]
)"));
  State after = c.compute();
  auto r = bpf::writePolicyDiff(n.fds(), diff(before, after));
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.failed, 0u);
  EXPECT_NE(r.firstError.find("pol_rules_v1: endpoint "), std::string::npos) << r.firstError;
  // The old rule still allows x/b on 80: nothing was removed.
  EXPECT_EQ(runProbe(in, ip("198.18.1.2"), ip("198.18.1.1"), lb::kProtoTCP, 80), 2);
}

}  // namespace
}  // namespace switchyard::policy::testing
