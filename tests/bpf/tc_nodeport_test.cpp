// The host-facing tc programs on crafted packets: NodePort on a node address (local backend:
// client address kept; remote backend: SNAT to this node), LB IPs with source ranges,
// externalTrafficPolicy's two scopes, session affinity, ICMP errors about translated flows.
// The FIB lookups the programs make run against a network namespace of the test's own
// (devices, addresses, routes and neighbours below): the only host state they read.
//
//   fab0 (a veth, "the network"): 198.18.0.11/24, 2001:db8:f::11/64; other node 198.18.0.12
//   pod0 (a veth, "the pods"):   198.18.17.0/24, 2001:db8:1:1::/64 local pods
//   remote pods 198.18.18.0/24, 2001:db8:1:2::/64 via the other node
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>

#include <set>

#include "bpf/node_maps.h"
#include "bpf/unique_fd.h"
#include "tc_fixture.h"
#include "shell.h"

namespace switchyard::bpftest {
namespace {

class NodePortTest : public TcProgramTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF, network namespaces)";
    }
    origNetns_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    inNetns_ = true;
    for (const char* cmd : {
             "ip link set lo up", "ip link add fab0 type veth peer name fab1", "ip link add pod0 type veth peer name pod1",
             "ip link set fab1 up", "ip link set pod1 up",
             "ip link set fab0 up", "ip link set pod0 up", "ip addr add 198.18.0.11/24 dev fab0",
             "ip addr add 2001:db8:f::11/64 dev fab0 nodad", "ip route add 198.18.17.0/24 dev pod0",
             "ip route add 2001:db8:1:1::/64 dev pod0", "ip route add 198.18.18.0/24 via 198.18.0.12",
             "ip route add 2001:db8:1:2::/64 via 2001:db8:f::12",
             "ip neigh add 198.18.0.12 lladdr 02:00:00:00:00:12 dev fab0",
             "ip neigh add 198.18.0.100 lladdr 02:00:00:00:01:00 dev fab0",
             "ip neigh add 2001:db8:f::12 lladdr 02:00:00:00:00:12 dev fab0",
             "sysctl -qw net.ipv4.ip_forward=1", "sysctl -qw net.ipv6.conf.all.forwarding=1"}) {
      ASSERT_EQ(sh(cmd), "");
    }
    fab_ = static_cast<int>(if_nametoindex("fab0"));
    pod_ = static_cast<int>(if_nametoindex("pod0"));
    TcProgramTest::SetUp();
    bpf::NodeMaps node(dp_->maps());
    std::string error;
    ASSERT_TRUE(node.setNodeAddresses({{*lb::IpAddr::parse("198.18.0.11"), SY_NODE_ADDR_F_NODEPORT},
                                       {*lb::IpAddr::parse("2001:db8:f::11"), SY_NODE_ADDR_F_NODEPORT}},
                                      error))
        << error;
    ASSERT_TRUE(node.setLocalNets({*lb::Cidr::parse("198.18.16.0/20"), *lb::Cidr::parse("2001:db8:1::/48")}, error))
        << error;
  }
  void TearDown() override {
    TcProgramTest::TearDown();
    if (inNetns_) {
      EXPECT_EQ(::setns(origNetns_.get(), CLONE_NEWNET), 0);
    }
  }

  // A frontend of service `owner` (all frontends of it in one call, as the proxier does).
  static lb::Frontend fe(const char* addr, uint16_t port, lb::FrontendKind kind,
                         std::vector<std::pair<std::string, bool>> backends, lb::Scope scope = lb::Scope::External) {
    lb::Frontend f;
    f.key = {*lb::IpAddr::parse(addr), port, lb::kProtoTCP, scope};
    if (kind == lb::FrontendKind::NodePort) {
      f.key.addr = lb::wildcardOf(f.key.addr);
    }
    f.head.kind = kind;
    for (const auto& [b, local] : backends) {
      f.backends.push_back({{*lb::IpAddr::parse(b), 8080, lb::kProtoTCP}, false, local});
    }
    std::sort(f.backends.begin(), f.backends.end());
    return f;
  }

  Result runOn(Program prog, const Packet& in, int ifindex) {
    Result r;
    r.out.l3off = in.l3off;
    r.out.bytes.assign(in.bytes.size() + 256, 0);
    struct __sk_buff ctx {};
    ctx.ifindex = static_cast<__u32>(ifindex);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(), .data_out = r.out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(r.out.bytes.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    int err = bpf_prog_test_run_opts(dp_->programFd(prog), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN failed: " << strerror(-err);
    r.out.bytes.resize(opts.data_size_out);
    r.verdict = static_cast<int>(opts.retval);
    return r;
  }
  Result fromNet(const Packet& p) { return runOn(Program::TcFromNet, p, fab_); }
  Result fromPod(const Packet& p) { return runOn(Program::TcFromPod, p, pod_); }

  bpf::UniqueFd origNetns_;
  bool inNetns_ = false;
  int fab_ = 0, pod_ = 0;
};

// The external client (198.18.0.100) to a NodePort on this node's address, the backend on
// this node: DNAT only, the client's address reaches the pod; the pod's reply gets the node
// address and node port back, and leaves by a FIB redirect (its new source is this node's).
TEST_F(NodePortTest, NodePortToALocalBackendKeepsTheClientAddress) {
  sync("default/np", {fe("198.18.0.0", 30080, lb::FrontendKind::NodePort, {{"198.18.17.2", true}})});
  Packet syn = makePacket(IPPROTO_TCP, "198.18.0.100", 40000, "198.18.0.11", 30080);
  Result in = fromNet(syn);
  EXPECT_EQ(in.verdict, TC_ACT_OK) << "to a local pod: the stack routes it";
  EXPECT_EQ(in.out.dst(), "198.18.17.2:8080");
  EXPECT_EQ(in.out.src(), "198.18.0.100:40000") << "the client's address must reach the pod";
  EXPECT_TRUE(in.out.l4ChecksumOk());
  Packet reply = makePacket(IPPROTO_TCP, "198.18.17.2", 8080, "198.18.0.100", 40000, 0x12, "r");
  Result out = fromPod(reply);
  EXPECT_EQ(out.out.src(), "198.18.0.11:30080");
  EXPECT_EQ(out.verdict, TC_ACT_REDIRECT) << "a packet from this node's address must not re-enter the stack";
  EXPECT_TRUE(out.out.ipChecksumOk());
  EXPECT_TRUE(out.out.l4ChecksumOk());
}

// To a backend on another node: SNAT to this node's address (the route's source towards
// the backend) and a port of the SNAT range, so that the reply comes back here, where the
// client's address and the node port are restored. Both directions leave by FIB redirect.
TEST_F(NodePortTest, NodePortToARemoteBackendIsSnatedToThisNode_KubeProxyMasquerade) {
  for (const char* family : {"v4", "v6"}) {
    SCOPED_TRACE(family);
    bool v6 = std::string(family) == "v6";
    const char* client = v6 ? "2001:db8:f::100" : "198.18.0.100";
    const char* node = v6 ? "2001:db8:f::11" : "198.18.0.11";
    const char* backend = v6 ? "2001:db8:1:2::2" : "198.18.18.2";
    sync(std::string("default/np-") + family, {fe(node, 30081, lb::FrontendKind::NodePort, {{backend, false}})});
    Packet syn = makePacket(IPPROTO_TCP, client, 40001, node, 30081);
    uint64_t fresh = counter(SY_REASON_TC_DNAT_NEW);
    Result in = fromNet(syn);
    EXPECT_EQ(in.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(counter(SY_REASON_TC_DNAT_NEW), fresh + 1);
    EXPECT_EQ(in.out.addr(false), v6 ? "[2001:db8:1:2::2]" : "198.18.18.2");
    EXPECT_EQ(in.out.srcAddr(), v6 ? "[2001:db8:f::11]" : "198.18.0.11") << "not SNATed to this node";
    EXPECT_GE(in.out.sport(), 20000);
    EXPECT_LE(in.out.sport(), 29999);
    EXPECT_TRUE(in.out.ipChecksumOk());
    EXPECT_TRUE(in.out.l4ChecksumOk());
    Packet reply = makePacket(IPPROTO_TCP, backend, 8080, node, in.out.sport(), 0x12, "r");
    Result out = fromNet(reply);
    EXPECT_EQ(out.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(out.out.src(), std::string(v6 ? "[2001:db8:f::11]" : "198.18.0.11") + ":30081");
    EXPECT_EQ(out.out.dst(), std::string(v6 ? "[2001:db8:f::100]" : "198.18.0.100") + ":40001");
    EXPECT_TRUE(out.out.l4ChecksumOk());
  }
}

TEST_F(NodePortTest, APortOnAnAddressThatIsNoNodePortAddressIsNotANodePort) {
  sync("default/np", {fe("198.18.0.0", 30080, lb::FrontendKind::NodePort, {{"198.18.17.2", true}})});
  Packet syn = makePacket(IPPROTO_TCP, "198.18.0.100", 40000, "198.18.0.99", 30080);
  Result r = fromNet(syn);
  EXPECT_EQ(r.out.bytes, syn.bytes);
}

// externalTrafficPolicy Local: external clients get the local endpoints (client address
// kept, no SNAT); in-cluster clients (pods of any node, by clusterCIDR) the Cluster ones.
TEST_F(NodePortTest, ExternalTrafficPolicyLocalGivesClusterSourcesTheClusterEndpoints_KubeProxyShortCircuit) {
  lb::Frontend ext = fe("198.18.0.0", 30082, lb::FrontendKind::NodePort, {{"198.18.17.2", true}});
  ext.head.flags |= lb::kFrontendTwoScopes;
  lb::Frontend in = fe("198.18.0.0", 30082, lb::FrontendKind::NodePort,
                       {{"198.18.17.2", true}, {"198.18.18.2", false}}, lb::Scope::Internal);
  sync("default/local", {ext, in});
  std::set<std::string> external, cluster;
  for (uint16_t sport = 41000; sport < 41060; ++sport) {
    external.insert(fromNet(makePacket(IPPROTO_TCP, "198.18.0.100", sport, "198.18.0.11", 30082)).out.addr(false));
    cluster.insert(fromNet(makePacket(IPPROTO_TCP, "198.18.18.7", sport, "198.18.0.11", 30082)).out.addr(false));
  }
  EXPECT_EQ(external, (std::set<std::string>{"198.18.17.2"})) << "an external client reached a remote endpoint";
  EXPECT_EQ(cluster, (std::set<std::string>{"198.18.17.2", "198.18.18.2"})) << "a pod was not short-circuited";
}

TEST_F(NodePortTest, LoadBalancerSourceRangesAllowAndDeny_KubeProxyLoadBalancerSourceRanges) {
  lb::Frontend f = fe("198.19.100.1", 80, lb::FrontendKind::LoadBalancer, {{"198.18.17.2", true}});
  f.sourceRanges = {*lb::Cidr::parse("198.18.0.100/32")};
  f.head.flags |= lb::kFrontendSourceRanges;
  sync("default/lb", {f});
  EXPECT_EQ(fromNet(makePacket(IPPROTO_TCP, "198.18.0.100", 40000, "198.19.100.1", 80)).out.dst(), "198.18.17.2:8080");
  uint64_t denied = counter(SY_REASON_TC_SRC_RANGE_DENIED);
  EXPECT_EQ(fromNet(makePacket(IPPROTO_TCP, "198.18.0.101", 40000, "198.19.100.1", 80)).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter(SY_REASON_TC_SRC_RANGE_DENIED), denied + 1);
}

TEST_F(NodePortTest, SessionAffinitySticksAClientToOneBackendUntilItsTimeout_KubeProxySessionAffinityClientIP) {
  lb::Frontend f = fe("198.19.0.60", 80, lb::FrontendKind::ClusterIP,
                      {{"198.18.17.2", true}, {"198.18.17.3", true}, {"198.18.17.4", true}});
  f.head.affinityTimeout = 30;
  sync("default/sticky", {f});
  std::set<std::string> seen;
  for (uint16_t sport = 42000; sport < 42030; ++sport) {
    seen.insert(fromPod(makePacket(IPPROTO_TCP, "198.18.17.9", sport, "198.19.0.60", 80)).out.dst());
  }
  ASSERT_EQ(seen.size(), 1u) << "new connections of one client spread despite sessionAffinity";
  // Past the timeout (the entry aged by hand) the client is balanced again.
  int fd = dp_->maps().affinity;
  sy_affinity_key k{}, next{};
  ASSERT_EQ(bpf_map_get_next_key(fd, nullptr, &next), 0);
  sy_affinity_value v{};
  ASSERT_EQ(bpf_map_lookup_elem(fd, &next, &v), 0);
  v.last_used_ns -= 31ull * 1000000000ull;
  ASSERT_EQ(bpf_map_update_elem(fd, &next, &v, BPF_EXIST), 0);
  (void)k;
  std::set<std::string> after;
  for (uint16_t sport = 43000; sport < 43060 && after.size() < 2; ++sport) {
    after.insert(fromPod(makePacket(IPPROTO_TCP, "198.18.17.9", sport, "198.19.0.60", 80)).out.dst());
    // Each new flow refreshes the affinity: age it again so the next flow may move.
    ASSERT_EQ(bpf_map_lookup_elem(fd, &next, &v), 0);
    v.last_used_ns -= 31ull * 1000000000ull;
    ASSERT_EQ(bpf_map_update_elem(fd, &next, &v, BPF_EXIST), 0);
  }
  EXPECT_EQ(after.size(), 2u) << "an expired affinity still held the client";
}

// Affinity survives churn of the other backends: when a backend is removed the syncer
// moves the last slot into its hole, and the affinity entries of the moved backend follow it
// (the datapath only honours an entry while its slot holds its backend).
TEST_F(NodePortTest, SessionAffinitySurvivesChurnOfTheOtherBackends_KubeProxySessionAffinityClientIP) {
  auto sticky = [&](std::vector<std::pair<std::string, bool>> backends) {
    lb::Frontend f = fe("198.19.0.61", 80, lb::FrontendKind::ClusterIP, std::move(backends));
    f.head.affinityTimeout = 600;
    return f;
  };
  sync("default/churn", {sticky({{"198.18.17.2", true}, {"198.18.17.3", true}, {"198.18.17.4", true}})});
  // Find a client whose backend sits in the last slot (the one compaction moves).
  std::string last;
  for (const auto& f : writer_->read().frontends) {
    if (f.key.addr == *lb::IpAddr::parse("198.19.0.61")) {
      for (const auto& [id, b] : writer_->read().backends) {
        if (id == f.backendIds.back()) last = b.key.addr.str() + ":8080";
      }
    }
  }
  ASSERT_FALSE(last.empty());
  std::string client;
  for (int c = 10; c < 200 && client.empty(); ++c) {
    std::string ip = "198.18.17." + std::to_string(c);
    if (fromPod(makePacket(IPPROTO_TCP, ip.c_str(), 44000, "198.19.0.61", 80)).out.dst() == last) client = ip;
  }
  ASSERT_FALSE(client.empty()) << "no client landed on the last slot's backend";
  // Remove a backend that is not the client's: the last one moves into its hole.
  std::vector<std::pair<std::string, bool>> keep;
  for (const char* b : {"198.18.17.2", "198.18.17.3", "198.18.17.4"}) {
    if (std::string(b) + ":8080" == last) keep.push_back({b, true});
  }
  for (const char* b : {"198.18.17.2", "198.18.17.3", "198.18.17.4"}) {
    if (std::string(b) + ":8080" != last && keep.size() < 2) keep.push_back({b, true});
  }
  sync("default/churn", {sticky(keep)});
  // The client's entry now names the slot its backend moved to (deterministic; the traffic
  // below could pass by chance after a re-balance).
  int fd = dp_->maps().affinity;
  sy_affinity_key key{}, next{};
  void* prev = nullptr;
  bool found = false;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    sy_affinity_value v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0 && next.client.w[3] == ip4(client.c_str())) {
      found = true;
      EXPECT_LE(v.slot, 2) << "the affinity entry still names the slot its backend left";
    }
    key = next;
    prev = &key;
  }
  EXPECT_TRUE(found);
  for (uint16_t sport = 44001; sport < 44021; ++sport) {
    EXPECT_EQ(fromPod(makePacket(IPPROTO_TCP, client.c_str(), sport, "198.19.0.61", 80)).out.dst(), last)
        << "the client lost its backend when another one left";
  }
}

// The backend's port is closed: it answers the DNATed datagram with ICMP port unreachable.
// The client must see that error about its datagram to the ClusterIP, from the ClusterIP.
TEST_F(NodePortTest, AnIcmpErrorAboutATranslatedFlowIsTranslatedForTheClient) {
  for (const char* family : {"v4", "v6"}) {
    SCOPED_TRACE(family);
    bool v6 = std::string(family) == "v6";
    const char* client = v6 ? "2001:db8:1:1::9" : "198.18.17.9";
    const char* vip = v6 ? "2001:db8:1::53" : "198.19.0.53";
    const char* backend = v6 ? "2001:db8:16::3" : "198.18.16.3";
    Packet q = makePacket(IPPROTO_UDP, client, 40600, vip, 53, 0, "query");
    Result fwd = fromPod(q);
    ASSERT_EQ(fwd.out.addr(false), v6 ? "[2001:db8:16::3]" : "198.18.16.3");
    // The backend's ICMP error, quoting the DNATed datagram (its IP header + 8 bytes).
    size_t hlen = v6 ? 40 : 20;
    std::string quoted(reinterpret_cast<const char*>(fwd.out.bytes.data() + fwd.out.l3off), hlen + 8);
    std::string icmp = std::string(v6 ? "\x01\x04" : "\x03\x03", 2) + std::string(6, '\0') + quoted;
    Packet err = makePacket(IPPROTO_UDP, backend, 1, client, 1, 0, "");  // header shell, replaced below
    size_t l4 = err.l3off + hlen;
    err.bytes.resize(l4);
    err.bytes.insert(err.bytes.end(), icmp.begin(), icmp.end());
    if (v6) {
      auto* ip6 = reinterpret_cast<ipv6hdr*>(err.bytes.data() + err.l3off);
      ip6->nexthdr = kProtoIcmp6;
      ip6->payload_len = htons(static_cast<uint16_t>(icmp.size()));
      err.bytes[l4 + 2] = err.bytes[l4 + 3] = 0;
      uint16_t c = htons(static_cast<uint16_t>(~foldSum(err.l4Sum())));
      std::memcpy(err.bytes.data() + l4 + 2, &c, 2);
    } else {
      err.ip()->protocol = kProtoIcmp;
      err.ip()->tot_len = htons(static_cast<uint16_t>(hlen + icmp.size()));
      err.fixChecksums();
    }
    uint64_t translated = counter(SY_REASON_TC_ICMP_REVNAT);
    Result r = runOn(Program::TcToPod, err, pod_);
    EXPECT_EQ(counter(SY_REASON_TC_ICMP_REVNAT), translated + 1);
    EXPECT_EQ(r.out.srcAddr(), v6 ? "[2001:db8:1::53]" : "198.19.0.53") << "the error's source is the backend";
    const uint8_t* in = r.out.l4() + 8;  // the quoted packet
    Packet inner;
    inner.l3off = 0;
    inner.bytes.assign(in, static_cast<const uint8_t*>(r.out.bytes.data() + r.out.bytes.size()));
    EXPECT_EQ(inner.addr(false), v6 ? "[2001:db8:1::53]" : "198.19.0.53") << "the quoted destination";
    uint16_t qdport;
    std::memcpy(&qdport, in + hlen + 2, 2);
    EXPECT_EQ(ntohs(qdport), 53) << "the quoted destination port";
    EXPECT_TRUE(r.out.ipChecksumOk());
    if (v6) {
      EXPECT_EQ(foldSum(r.out.l4Sum()), 0xffff) << "ICMPv6 checksum";
    } else {
      EXPECT_TRUE(r.out.l4ChecksumOk()) << "ICMP checksum";
      EXPECT_EQ(foldSum(addBytes(0, in, hlen)), 0xffff) << "the quoted IPv4 header's checksum";
    }
  }
}

}  // namespace
}  // namespace switchyard::bpftest
