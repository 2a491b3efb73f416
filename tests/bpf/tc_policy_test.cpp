// NetworkPolicy enforcement in the tc programs (bpf/tc_policy.bpf.h), on crafted packets:
// the real programs, the real maps, entries written by policy/'s compiler through
// bpf/policy_maps.h. What a new flow pays (one judgement), what an established packet pays
// (the conntrack entry it finds anyway, the verdict cached in it), what replies pass on, and
// where the verdict is taken for flows a service translates (after the DNAT, kube-proxy's and
// the NetworkPolicy API's order: policies name pods, not ClusterIPs).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>

#include <vector>

#include "bpf/policy_maps.h"
#include "bpf/unique_fd.h"
#include "policy/compiler.h"
#include "shell.h"
#include "tc_fixture.h"
#include "tests/policy/grid.h"

namespace switchyard::bpftest {
namespace {

using policy::testing::policyFrom;

// Pods of this node (n1) and one of another (n2). web is the backend of the fixture's
// ClusterIP 198.19.0.10:80 (-> 198.18.16.2:8080).
struct TestPod {
  const char* ns;
  const char* name;
  const char* node;
  const char* v4;
  const char* v6;
};
const TestPod kClient{"x", "client", "n1", "198.18.1.2", "2001:db8:1::2"};
const TestPod kServer{"x", "server", "n1", "198.18.1.3", "2001:db8:1::3"};
const TestPod kWeb{"x", "web", "n1", "198.18.16.2", "2001:db8:16::2"};
const TestPod kRemote{"y", "remote", "n2", "198.18.2.9", "2001:db8:2::9"};

k8s::Pod podOf(const TestPod& t) {
  k8s::Pod p;
  p.metadata.namespace_ = t.ns;
  p.metadata.name = t.name;
  p.metadata.labels = {{"app", t.name}};
  p.nodeName = t.node;
  p.phase = "Running";
  p.podIPs = {t.v4, t.v6};
  p.ports = {{"http", k8s::Protocol::TCP, 8080}};
  return p;
}

class TcPolicyTest : public TcProgramTest {
 protected:
  void SetUp() override {
    TcProgramTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    const auto& m = dp_->maps();
    fds_ = {m.polIpcache, m.polEndpoints, m.polRules};
    for (const char* ns : {"x", "y"}) {
      k8s::Namespace n;
      n.metadata.name = ns;
      n.metadata.labels = {{"kubernetes.io/metadata.name", ns}};
      compiler_.upsertNamespace(n);
    }
    for (const TestPod* t : {&kClient, &kServer, &kWeb, &kRemote}) {
      compiler_.upsertPod(podOf(*t));
    }
  }

  // Compiles, writes the difference, and moves the revision on (as the daemon does).
  void commit(uint32_t flags = SY_POL_STATE_ENABLED) {
    policy::State next = compiler_.compute();
    auto r = bpf::writePolicyDiff(fds_, policy::diff(written_, next));
    ASSERT_TRUE(r.ok()) << r.firstError;
    written_ = std::move(next);
    setState(flags);
  }
  void setState(uint32_t flags) {
    sy_pol_state st{};
    st.revision = ++revision_;
    st.flags = flags;
    uint32_t zero = 0;
    ASSERT_EQ(bpf_map_update_elem(dp_->maps().polState, &zero, &st, BPF_ANY), 0);
  }
  void apply(const std::string& yaml) {
    compiler_.upsertPolicy(policyFrom(yaml));
    commit();
  }

  size_t policyEntries() {
    size_t n = 0;
    for (const auto& [k, e] : ctEntries()) {
      n += (e.flags & SY_CT_F_POLICY) ? 1 : 0;
    }
    return n;
  }

  policy::Compiler compiler_{"n1"};
  policy::State written_;
  bpf::PolicyMapFds fds_;
  uint32_t revision_ = 0;
};

constexpr const char* kDenyIngressServer = R"(
metadata: {namespace: x, name: deny-server}
spec: {podSelector: {matchLabels: {app: server}}, policyTypes: [Ingress]}
)";
constexpr const char* kAllowClientToServer = R"(
metadata: {namespace: x, name: allow-client}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{protocol: TCP, port: 8080}]
)";
constexpr const char* kDenyEgressServer = R"(
metadata: {namespace: x, name: deny-server-egress}
spec: {podSelector: {matchLabels: {app: server}}, policyTypes: [Egress]}
)";

constexpr uint8_t kSyn = 0x02, kAck = 0x10;

TEST_F(TcPolicyTest, PolicyOffJudgesNothingAndTracksNoPodToPodFlow) {
  apply(kDenyIngressServer);
  setState(0);  // policy.enabled false: rules may be pinned, nothing reads them
  Packet req = makePacket(IPPROTO_TCP, kClient.v4, 40000, kServer.v4, 8080, kSyn);
  EXPECT_EQ(run(Program::TcToPod, req).verdict, TC_ACT_OK);
  EXPECT_EQ(run(Program::TcFromPod, req).verdict, TC_ACT_OK);
  EXPECT_TRUE(ctEntries().empty()) << "a flow tracked for policy while policy is off";
  EXPECT_EQ(counter(SY_REASON_POL_DENIED_DEFAULT), 0u);
}

// Kubernetes: a pod selected by a policy of type Ingress without rules accepts nothing.
TEST_F(TcPolicyTest, DefaultDenyIngressDropsANewFlowCountedAndLeavesNoEntry_NetpolDefaultDeny) {
  apply(kDenyIngressServer);
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    Packet req = makePacket(IPPROTO_TCP, v6 ? kRemote.v6 : kRemote.v4, 40000,
                            v6 ? kServer.v6 : kServer.v4, 8080, kSyn);
    uint64_t before = counter(SY_REASON_POL_DENIED_DEFAULT);
    EXPECT_EQ(run(Program::TcToPod, req).verdict, TC_ACT_SHOT);
    EXPECT_EQ(counter(SY_REASON_POL_DENIED_DEFAULT), before + 1);
    EXPECT_EQ(counter(SY_REASON_POL_DENIED), 0u) << "no rule exists: a default deny";
    EXPECT_TRUE(ctEntries().empty()) << "a denied flow left conntrack state";
  }
  // Pods no policy selects stay open, and their flows are tracked so replies pass.
  Packet open = makePacket(IPPROTO_UDP, kRemote.v4, 40001, kClient.v4, 53);
  EXPECT_EQ(run(Program::TcToPod, open).verdict, TC_ACT_OK);
  EXPECT_EQ(policyEntries(), 2u);
}

TEST_F(TcPolicyTest, AnAllowedFlowIsJudgedOnceAndItsRepliesPassOnTheirEntry_NetpolAllowFromPod) {
  apply(kDenyIngressServer);
  apply(kAllowClientToServer);
  apply(kDenyEgressServer);  // the server may start nothing: its replies must still pass
  Packet syn = makePacket(IPPROTO_TCP, kClient.v4, 40000, kServer.v4, 8080, kSyn);
  // Same node: the client's egress (open) on its device, the server's ingress on its own.
  ASSERT_EQ(run(Program::TcFromPod, syn).verdict, TC_ACT_OK);
  ASSERT_EQ(run(Program::TcToPod, syn).verdict, TC_ACT_OK);
  EXPECT_EQ(counter(SY_REASON_POL_ALLOWED), 1u);
  EXPECT_EQ(policyEntries(), 2u) << "one policy-only pair for the flow";
  bool cached = false;
  for (const auto& [k, e] : ctEntries()) {
    if (e.dir == SY_CT_FORWARD) {
      cached = (e.pol & SY_CT_POL_INGRESS_OK) && (e.pol & SY_CT_POL_EGRESS_OK) &&
               (e.pol >> SY_CT_POL_REV_SHIFT) == (revision_ & SY_POL_REV_MASK);
    }
  }
  EXPECT_TRUE(cached) << "the forward entry does not hold both verdicts of this revision";
  Packet ack = makePacket(IPPROTO_TCP, kClient.v4, 40000, kServer.v4, 8080, kAck);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run(Program::TcToPod, ack).verdict, TC_ACT_OK);
  }
  EXPECT_EQ(counter(SY_REASON_POL_ALLOWED), 1u) << "an established packet was judged again";
  Packet reply = makePacket(IPPROTO_TCP, kServer.v4, 8080, kClient.v4, 40000, kSyn | kAck);
  EXPECT_EQ(run(Program::TcFromPod, reply).verdict, TC_ACT_OK) << "egress deny-all dropped a reply";
  EXPECT_EQ(run(Program::TcToPod, reply).verdict, TC_ACT_OK);
  EXPECT_EQ(counter(SY_REASON_POL_DENIED_DEFAULT), 0u);
  // A flow the server starts itself is its egress: denied.
  Packet own = makePacket(IPPROTO_TCP, kServer.v4, 41000, kClient.v4, 8080, kSyn);
  EXPECT_EQ(run(Program::TcFromPod, own).verdict, TC_ACT_SHOT);
  // Another port of the server: a rule exists, none matches: denied by policy.
  Packet other = makePacket(IPPROTO_TCP, kClient.v4, 40002, kServer.v4, 9090, kSyn);
  EXPECT_EQ(run(Program::TcToPod, other).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter(SY_REASON_POL_DENIED), 1u);
}

// A policy change reaches established flows through the revision: no conntrack flush, no
// program reload; removing the allow stops the flow, adding it back resumes it.
TEST_F(TcPolicyTest, AnEstablishedFlowIsJudgedAgainAfterAPolicyChange) {
  apply(kDenyIngressServer);
  apply(kAllowClientToServer);
  Packet syn = makePacket(IPPROTO_TCP, kClient.v4, 40000, kServer.v4, 8080, kSyn);
  Packet ack = makePacket(IPPROTO_TCP, kClient.v4, 40000, kServer.v4, 8080, kAck);
  ASSERT_EQ(run(Program::TcToPod, syn).verdict, TC_ACT_OK);
  compiler_.deletePolicy("x/allow-client");
  commit();
  EXPECT_EQ(run(Program::TcToPod, ack).verdict, TC_ACT_SHOT);
  EXPECT_EQ(policyEntries(), 2u) << "the flow's entries stay: the policy may come back";
  apply(kAllowClientToServer);
  EXPECT_EQ(run(Program::TcToPod, ack).verdict, TC_ACT_OK);
  // An unrelated change re-judges too (the revision moved), with the same outcome.
  compiler_.deletePolicy("x/deny-server");
  commit();
  EXPECT_EQ(run(Program::TcToPod, ack).verdict, TC_ACT_OK);
}

// Egress rules name the backend pod and its port: the flow to the ClusterIP (tc DNAT here)
// is judged after translation, as the NetworkPolicy API and kube-proxy's order have it.
TEST_F(TcPolicyTest, EgressIsJudgedAgainstTheBackendAfterServiceDnat_NetpolServiceBackend) {
  apply(R"(
metadata: {namespace: x, name: client-to-web-8080}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{protocol: TCP, port: 8080}]
)");
  Packet viaVip = makePacket(IPPROTO_TCP, kClient.v4, 40000, "198.19.0.10", 80, kSyn);
  Result r = run(Program::TcFromPod, viaVip);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out.dst(), "198.18.16.2:8080");
  EXPECT_EQ(counter(SY_REASON_POL_ALLOWED), 1u);
  // The service port (80) is not what the rule names: a rule for port 80 does not allow it.
  compiler_.deletePolicy("x/client-to-web-8080");
  apply(R"(
metadata: {namespace: x, name: client-to-web-80}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{protocol: TCP, port: 80}]
)");
  Packet fresh = makePacket(IPPROTO_TCP, kClient.v4, 40001, "198.19.0.10", 80, kSyn);
  EXPECT_EQ(run(Program::TcFromPod, fresh).verdict, TC_ACT_SHOT);
  for (const auto& [k, e] : ctEntries()) {
    EXPECT_NE(k.sport, htons(40001)) << "a denied service flow left its NAT entries";
  }
  // The established flow of the first connection is judged again at this revision: denied.
  Packet ack = makePacket(IPPROTO_TCP, kClient.v4, 40000, "198.19.0.10", 80, kAck);
  EXPECT_EQ(run(Program::TcFromPod, ack).verdict, TC_ACT_SHOT);
}

// The backend's ingress, for a flow tc translated on this node: the packet reaching the
// backend's device has no entry of its own; the verdict goes into the flow's reply entry.
TEST_F(TcPolicyTest, IngressOfATranslatedFlowIsJudgedAtTheBackendsDevice) {
  apply(R"(
metadata: {namespace: x, name: web-from-remote-only}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
)");
  Packet viaVip = makePacket(IPPROTO_TCP, kClient.v4, 40000, "198.19.0.10", 80, kSyn);
  Result r = run(Program::TcFromPod, viaVip);
  ASSERT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(run(Program::TcToPod, r.out).verdict, TC_ACT_SHOT) << "x/client is not in namespace y";
  EXPECT_EQ(counter(SY_REASON_POL_DENIED), 1u);
  EXPECT_EQ(policyEntries(), 0u) << "the translated flow got a second, policy-only pair";
  compiler_.deletePolicy("x/web-from-remote-only");
  apply(R"(
metadata: {namespace: x, name: web-from-x}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}}]
)");
  EXPECT_EQ(run(Program::TcToPod, r.out).verdict, TC_ACT_OK);
  EXPECT_EQ(counter(SY_REASON_POL_ALLOWED), 1u);
  bool cachedInReply = false;
  for (const auto& [k, e] : ctEntries()) {
    cachedInReply |= e.dir == SY_CT_REPLY && (e.pol & SY_CT_POL_INGRESS_OK);
  }
  EXPECT_TRUE(cachedInReply);
  EXPECT_EQ(run(Program::TcToPod, r.out).verdict, TC_ACT_OK);
  EXPECT_EQ(counter(SY_REASON_POL_ALLOWED), 1u) << "judged twice";
}

// Kubernetes: a pod cannot block traffic from its own node (kubelet probes).
TEST_F(TcPolicyTest, IngressFromThisNodesAddressIsAlwaysAllowed_NetpolHostTraffic) {
  apply(kDenyIngressServer);
  sy_addr node = bpf::toSyAddr(*lb::IpAddr::parse("198.18.0.11"));
  sy_node_addr_value v{};
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().nodeAddrs, &node, &v, BPF_ANY), 0);
  Packet probe = makePacket(IPPROTO_TCP, "198.18.0.11", 40000, kServer.v4, 8080, kSyn);
  EXPECT_EQ(run(Program::TcToPod, probe).verdict, TC_ACT_OK);
  Packet other = makePacket(IPPROTO_TCP, "198.18.0.12", 40000, kServer.v4, 8080, kSyn);
  EXPECT_EQ(run(Program::TcToPod, other).verdict, TC_ACT_SHOT);
}

// A tracked service flow whose backend went away is balanced again (ct_forward), and the
// new backend is what egress policy judges: the old backend's address (no pod any more)
// must not drop the flow first. UDP keeps its tuple (a resolver's fixed source port).
TEST_F(TcPolicyTest, AFlowWhoseBackendWentAwayIsRebalancedNotJudgedAgainstTheOldBackend) {
  const TestPod dns1{"x", "dns1", "n1", "198.18.16.3", "2001:db8:16::3"};
  const TestPod dns2{"x", "dns2", "n1", "198.18.16.4", "2001:db8:16::4"};
  for (const TestPod* t : {&dns1, &dns2}) {
    k8s::Pod pod = podOf(*t);
    pod.metadata.labels = {{"app", "dns"}};
    compiler_.upsertPod(pod);
  }
  apply(R"(
metadata: {namespace: x, name: client-to-dns}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: dns}}}]
    ports: [{protocol: UDP, port: 5353}]
)");
  Packet q = makePacket(IPPROTO_UDP, kClient.v4, 40000, "198.19.0.53", 53);
  Result r = run(Program::TcFromPod, q);
  ASSERT_EQ(r.verdict, TC_ACT_OK);
  ASSERT_EQ(r.out.dst(), "198.18.16.3:5353");
  // dns1 is deleted: its endpoint leaves the Service, its address the ipcache.
  sync("default/dns", {frontend("198.19.0.53", 53, lb::kProtoUDP, {"198.18.16.4"}, 5353)});
  compiler_.deletePod("x/dns1");
  commit();
  ageConntrack(-static_cast<int64_t>(2 * SY_CT_REFRESH_NS));  // the next packet checks the backend
  r = run(Program::TcFromPod, q);
  EXPECT_EQ(r.verdict, TC_ACT_OK) << "the flow was dropped for its old, gone backend";
  EXPECT_EQ(r.out.dst(), "198.18.16.4:5353");
  EXPECT_EQ(counter(SY_REASON_POL_DENIED), 0u);
}

// Kubernetes: "a pod cannot block access to itself". A pod reaching itself through its
// Service (hairpin, SNATed to the node's address towards it) is its own peer on egress.
TEST_F(TcPolicyTest, APodReachingItselfThroughItsServiceIsNotBlockedByItsEgressPolicy) {
  // The hairpin SNAT asks the FIB for this node's source towards the pod: a netns of the
  // test's own with a route to it (left with the test: the netns goes with its last user).
  bpf::UniqueFd orig(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  ASSERT_GE(orig.get(), 0);
  ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
  struct Back {
    int fd;
    ~Back() { EXPECT_EQ(::setns(fd, CLONE_NEWNET), 0); }
  } back{orig.get()};
  for (const char* cmd : {"ip link set lo up", "ip link add pod0 type veth peer name pod1",
                          "ip link set pod0 up", "ip link set pod1 up",
                          "ip addr add 198.18.0.11/24 dev pod0", "ip route add 198.18.16.0/24 dev pod0",
                          "sysctl -qw net.ipv4.ip_forward=1"}) {
    ASSERT_EQ(sh(cmd), "");
  }
  sy_addr node = bpf::toSyAddr(*lb::IpAddr::parse("198.18.0.11"));
  sy_node_addr_value v{};
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().nodeAddrs, &node, &v, BPF_ANY), 0);
  apply(R"(
metadata: {namespace: x, name: web-deny-all}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress, Egress]}
)");
  Packet self = makePacket(IPPROTO_TCP, kWeb.v4, 40000, "198.19.0.10", 80, kSyn);
  // Run on pod0, the pod-facing device the route names (the skb's device is the FIB's).
  auto fromPod0 = [&](const Packet& in) {
    Result res;
    res.out.l3off = in.l3off;
    res.out.bytes.assign(in.bytes.size() + 256, 0);
    struct __sk_buff ctx {};
    ctx.ifindex = if_nametoindex("pod0");
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(), .data_out = res.out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(res.out.bytes.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(dp_->programFd(Program::TcFromPod), &opts), 0);
    res.out.bytes.resize(opts.data_size_out);
    res.verdict = static_cast<int>(opts.retval);
    return res;
  };
  Result r = fromPod0(self);
  EXPECT_EQ(r.verdict, TC_ACT_REDIRECT) << "a pod's egress policy blocked the pod itself";
  EXPECT_EQ(r.out.srcAddr(), "198.18.0.11") << "not the hairpin SNAT";
  EXPECT_EQ(r.out.dst(), "198.18.16.2:8080");
  EXPECT_EQ(counter(SY_REASON_POL_DENIED_DEFAULT), 0u);
  // A packet arriving with web's own address as its source is no flow of web to itself.
  Packet spoofed = makePacket(IPPROTO_TCP, kWeb.v4, 40002, kWeb.v4, 8080, kSyn);
  EXPECT_EQ(run(Program::TcToPod, spoofed).verdict, TC_ACT_SHOT);
  // Another pod's flow to the same Service stays subject to web's ingress isolation.
  Packet other = makePacket(IPPROTO_TCP, kClient.v4, 40001, "198.19.0.10", 80, kSyn);
  Result o = fromPod0(other);
  ASSERT_EQ(o.verdict, TC_ACT_OK);
  EXPECT_EQ(run(Program::TcToPod, o.out).verdict, TC_ACT_SHOT);
}

// A flow nothing translated got a policy-only pair; once its destination becomes a frontend
// (a Service created or given that port) the flow must be translated like any other, not
// passed untranslated for as long as its packets keep the pair alive (with policy on, and
// after policy is switched off).
TEST_F(TcPolicyTest, APolicyOnlyPairDoesNotKeepAFlowFromANewServiceFrontend) {
  for (bool policyOff : {false, true}) {
    SCOPED_TRACE(policyOff ? "policy switched off meanwhile" : "policy on");
    uint16_t sport = policyOff ? 40001 : 40000;
    apply(kDenyIngressServer);  // policy is on; the client is open
    Packet q = makePacket(IPPROTO_UDP, kClient.v4, sport, "198.19.0.54", 53);
    ASSERT_EQ(run(Program::TcFromPod, q).verdict, TC_ACT_OK);
    ASSERT_EQ(policyEntries(), 2u);
    sync("default/dns2", {frontend("198.19.0.54", 53, lb::kProtoUDP, {"198.18.16.3"}, 5353)});
    if (policyOff) {
      setState(0);
    }
    ageConntrack(-static_cast<int64_t>(2 * SY_CT_REFRESH_NS));
    Result r = run(Program::TcFromPod, q);
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(r.out.dst(), "198.18.16.3:5353") << "the new frontend's flow left untranslated";
    sync("default/dns2", {});
    for (const auto& [k, e] : ctEntries()) {
      ASSERT_EQ(bpf_map_delete_elem(dp_->maps().ct, &k), 0);
    }
  }
}

// A first fragment carries the ports: a flow the pod's policy denies must not reach it by
// fragmenting its packets (its stack reassembles them; a fragmented SYN would get an answer
// whose policy-only pair then lets the rest of the connection in). Fragments of an allowed
// flow still pass.
TEST_F(TcPolicyTest, AFirstFragmentIsJudgedLikeItsFlow) {
  apply(kDenyIngressServer);
  apply(kAllowClientToServer);
  PacketShape first;
  first.fragOff = 0x2000;  // MF, offset 0
  for (uint8_t proto : {uint8_t{IPPROTO_TCP}, uint8_t{IPPROTO_UDP}}) {
    SCOPED_TRACE(proto == IPPROTO_TCP ? "TCP" : "UDP");
    Packet denied = makePacket(proto, kRemote.v4, 40000, kServer.v4, 8080, kSyn, "frag", first);
    EXPECT_EQ(run(Program::TcToPod, denied).verdict, TC_ACT_SHOT) << "a denied flow's fragment passed";
  }
  // IPv6: a fragment header with offset 0 and M set.
  PacketShape first6;
  first6.v6Ext = {{44, {0, 1, 0, 0, 0x12, 0x34}}};
  Packet denied6 = makePacket(IPPROTO_UDP, kRemote.v6, 40000, kServer.v6, 8080, 0, "frag", first6);
  EXPECT_EQ(run(Program::TcToPod, denied6).verdict, TC_ACT_SHOT) << "a denied IPv6 flow's fragment passed";
  Packet allowed = makePacket(IPPROTO_TCP, kClient.v4, 40001, kServer.v4, 8080, kSyn, "frag", first);
  EXPECT_EQ(run(Program::TcFromPod, allowed).verdict, TC_ACT_OK);
  EXPECT_EQ(run(Program::TcToPod, allowed).verdict, TC_ACT_OK);
  // A fragment to a frontend is not translated (nor judged: its backend is unknown); it
  // leaves no policy-only pair that would keep the flow's next packets from translation.
  Packet toVip = makePacket(IPPROTO_UDP, kClient.v4, 40002, "198.19.0.53", 53, 0, "frag", first);
  EXPECT_EQ(run(Program::TcFromPod, toVip).verdict, TC_ACT_OK);
  Result whole = run(Program::TcFromPod, makePacket(IPPROTO_UDP, kClient.v4, 40002, "198.19.0.53", 53));
  EXPECT_EQ(whole.verdict, TC_ACT_OK);
  EXPECT_EQ(whole.out.dst(), "198.18.16.3:5353");
  // Later fragments carry no ports: they pass (without their first one they are never
  // reassembled).
  PacketShape later;
  later.fragOff = 0x0010;
  Packet rest = makePacket(IPPROTO_UDP, kRemote.v4, 40000, kServer.v4, 8080, 0, "frag", later);
  EXPECT_EQ(run(Program::TcToPod, rest).verdict, TC_ACT_OK);
}

// A verdict is cached under the revision read before it was taken: a policy change whose
// revision lands between the judgement (with the old maps) and the caching must not leave
// the old verdict marked as the new revision's, or the flow is never judged again.
TEST_F(TcPolicyTest, AVerdictIsCachedUnderTheRevisionItWasTakenAt) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pinPath_.c_str());
  struct Obj {
    bpf_object* o;
    ~Obj() { bpf_object__close(o); }
  } obj{bpf_object__open_file(SY_TC_RACE_OBJECT, &opts)};
  ASSERT_NE(obj.o, nullptr);
  ASSERT_EQ(bpf_object__load(obj.o), 0) << "load " SY_TC_RACE_OBJECT;
  int toPod = bpf_program__fd(bpf_object__find_program_by_name(obj.o, "sy_tc_to_pod"));
  int inject = bpf_map__fd(bpf_object__find_map_by_name(obj.o, "pol_race_revision"));
  ASSERT_GE(toPod, 0);
  ASSERT_GE(inject, 0);
  apply(kDenyIngressServer);
  apply(kAllowClientToServer);
  // The client's flow is judged with the maps that allow it; meanwhile the allow goes
  // (written to the maps with revision + 1, which the program sees before it caches).
  uint32_t zero = 0, next = revision_ + 1;
  ASSERT_EQ(bpf_map_update_elem(inject, &zero, &next, BPF_ANY), 0);
  Packet syn = makePacket(IPPROTO_TCP, kClient.v4, 40000, kServer.v4, 8080, kSyn);
  ASSERT_EQ(runFd(toPod, syn).verdict, TC_ACT_OK);
  compiler_.deletePolicy("x/allow-client");
  policy::State now = compiler_.compute();
  ASSERT_TRUE(bpf::writePolicyDiff(fds_, policy::diff(written_, now)).ok());
  written_ = std::move(now);
  revision_ = next;  // pol_state_v1 holds it already
  Packet ack = makePacket(IPPROTO_TCP, kClient.v4, 40000, kServer.v4, 8080, kAck);
  EXPECT_EQ(runFd(toPod, ack).verdict, TC_ACT_SHOT) << "the old verdict passed for the new revision's";
}

// A closed connection's policy-only pair does not let a new connection in the other
// direction on the same tuple pass as a reply: its SYN is a new flow, judged.
TEST_F(TcPolicyTest, ASynOnAClosedFlowsReplyEntryIsJudgedAsANewFlow) {
  apply(R"(
metadata: {namespace: x, name: client-no-ingress}
spec: {podSelector: {matchLabels: {app: client}}, policyTypes: [Ingress]}
)");
  Packet out = makePacket(IPPROTO_TCP, kClient.v4, 40000, kRemote.v4, 8080, kSyn);
  ASSERT_EQ(run(Program::TcFromPod, out).verdict, TC_ACT_OK);  // the client's egress: open
  Packet answer = makePacket(IPPROTO_TCP, kRemote.v4, 8080, kClient.v4, 40000, kSyn | kAck);
  EXPECT_EQ(run(Program::TcToPod, answer).verdict, TC_ACT_OK) << "a reply was judged";
  Packet fin = makePacket(IPPROTO_TCP, kClient.v4, 40000, kRemote.v4, 8080, 0x01 | kAck);
  ASSERT_EQ(run(Program::TcFromPod, fin).verdict, TC_ACT_OK);
  // The remote now opens a connection to the client from the same tuple.
  Packet in = makePacket(IPPROTO_TCP, kRemote.v4, 8080, kClient.v4, 40000, kSyn);
  EXPECT_EQ(run(Program::TcToPod, in).verdict, TC_ACT_SHOT) << "a new inbound connection passed as a reply";
  EXPECT_EQ(counter(SY_REASON_POL_DENIED_DEFAULT), 1u);
}

int onEvent(void* ctx, void* data, size_t size) {
  auto* out = static_cast<std::vector<sy_pol_event>*>(ctx);
  if (size >= sizeof(sy_pol_event)) {
    out->push_back(*static_cast<sy_pol_event*>(data));
  }
  return 0;
}

TEST_F(TcPolicyTest, ADeniedFlowIsLoggedWhenAskedAndRateLimited) {
  // One CPU, one rate window (the limit is per CPU).
  cpu_set_t one, saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  struct Restore {
    cpu_set_t* s;
    ~Restore() { sched_setaffinity(0, sizeof(*s), s); }
  } restore{&saved};
  apply(kDenyIngressServer);
  std::vector<sy_pol_event> events;
  ring_buffer* rb = ring_buffer__new(dp_->maps().polEvents, onEvent, &events, nullptr);
  ASSERT_NE(rb, nullptr);
  Packet req = makePacket(IPPROTO_TCP, kRemote.v4, 40000, kServer.v4, 8080, kSyn);
  EXPECT_EQ(run(Program::TcToPod, req).verdict, TC_ACT_SHOT);
  ring_buffer__consume(rb);
  EXPECT_TRUE(events.empty()) << "logged without policy.logDenied";
  setState(SY_POL_STATE_ENABLED | SY_POL_STATE_LOG_DENIED);
  for (int i = 0; i < SY_POL_LOG_PER_SEC + 10; ++i) {
    EXPECT_EQ(run(Program::TcToPod, req).verdict, TC_ACT_SHOT);
  }
  ring_buffer__consume(rb);
  ring_buffer__free(rb);
  // One window's worth, the rest counted as lost.
  ASSERT_GE(events.size(), 1u);
  EXPECT_LE(events.size(), static_cast<size_t>(SY_POL_LOG_PER_SEC));
  EXPECT_GE(counter(SY_REASON_POL_LOG_LOST), 10u);
  const sy_pol_event& e = events.front();
  sy_addr server = bpf::toSyAddr(*lb::IpAddr::parse(kServer.v4));
  sy_addr remote = bpf::toSyAddr(*lb::IpAddr::parse(kRemote.v4));
  EXPECT_EQ(std::memcmp(e.local, server.b, 16), 0);
  EXPECT_EQ(std::memcmp(e.peer, remote.b, 16), 0);
  EXPECT_EQ(e.port, 8080);
  EXPECT_EQ(e.proto, IPPROTO_TCP);
  EXPECT_EQ(e.dir, SY_POL_INGRESS);
  EXPECT_EQ(e.reason, static_cast<uint32_t>(SY_REASON_POL_DENIED_DEFAULT));
}

}  // namespace
}  // namespace switchyard::bpftest
