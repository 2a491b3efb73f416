// The XDP fast path (bpf/xdp_lb.bpf.c, issue 11 item 4) on crafted frames with
// BPF_PROG_TEST_RUN, beside the host-facing tc program whose conntrack entries it follows:
// the deny list first, new flows and what XDP does not handle passed to tc untouched, and a
// tracked SNATed NodePort flow (both directions) rewritten to the same bytes tc writes, sent
// by XDP_TX with the FIB's MAC addresses. Topology of the test's own network namespace:
//
//   fab0 (a veth, "the network"): 198.18.0.11/24, 2001:db8:f::11/64; other node .12 / ::12,
//   the client .100 / ::100; remote pods 198.18.18.0/24, 2001:db8:1:2::/64 via the other node
#include <fcntl.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <sched.h>

#include "bpf/unique_fd.h"
#include "bpf/node_maps.h"
#include "bpf/xdp_links.h"
#include "shell.h"
#include "tc_fixture.h"

namespace switchyard::bpftest {
namespace {

constexpr int kXdpAborted = 0, kXdpDrop = 1, kXdpPass = 2, kXdpTx = 3;

class XdpTest : public TcProgramTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF, network namespaces)";
    }
    origNetns_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    inNetns_ = true;
    for (const char* cmd : {
             "ip link set lo up", "ip link add fab0 address 02:00:00:00:00:11 type veth peer name fab1",
             "ip link set fab1 up", "ip link set fab0 up", "ip addr add 198.18.0.11/24 dev fab0",
             "ip addr add 2001:db8:f::11/64 dev fab0 nodad", "ip route add 198.18.18.0/24 via 198.18.0.12",
             "ip route add 2001:db8:1:2::/64 via 2001:db8:f::12",
             "ip neigh add 198.18.0.12 lladdr 02:00:00:00:00:12 dev fab0",
             "ip neigh add 198.18.0.100 lladdr 02:00:00:00:01:00 dev fab0",
             "ip neigh add 2001:db8:f::12 lladdr 02:00:00:00:00:12 dev fab0",
             "ip neigh add 2001:db8:f::100 lladdr 02:00:00:00:01:00 dev fab0",
             "sysctl -qw net.ipv4.ip_forward=1", "sysctl -qw net.ipv6.conf.all.forwarding=1"}) {
      ASSERT_EQ(sh(cmd), "");
    }
    fab_ = static_cast<int>(if_nametoindex("fab0"));
    options_.ctLifetimes.tcpNs = 30'000'000'000ULL;  // short enough to age past on a fresh boot
    TcProgramTest::SetUp();
    bpf::NodeMaps node(dp_->maps());
    std::string error;
    ASSERT_TRUE(node.setNodeAddresses({{*lb::IpAddr::parse("198.18.0.11"), SY_NODE_ADDR_F_NODEPORT},
                                       {*lb::IpAddr::parse("2001:db8:f::11"), SY_NODE_ADDR_F_NODEPORT}},
                                      error))
        << error;
  }
  void TearDown() override {
    TcProgramTest::TearDown();
    if (inNetns_) {
      EXPECT_EQ(::setns(origNetns_.get(), CLONE_NEWNET), 0);
    }
  }

  static lb::Frontend nodePort(const char* node, uint16_t port, const char* backend, bool local, uint8_t proto) {
    lb::Frontend f;
    f.key = {lb::wildcardOf(*lb::IpAddr::parse(node)), port, proto};
    f.head.kind = lb::FrontendKind::NodePort;
    f.backends.push_back({{*lb::IpAddr::parse(backend), 8080, proto}, false, local});
    return f;
  }

  Result xdp(const Packet& in) {
    Result r;
    r.out.l3off = in.l3off;
    r.out.bytes.assign(in.bytes.size() + 256, 0);
    struct xdp_md ctx {};
    ctx.data_end = static_cast<__u32>(in.bytes.size());
    ctx.ingress_ifindex = static_cast<__u32>(fab_);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(), .data_out = r.out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(r.out.bytes.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    int err = bpf_prog_test_run_opts(dp_->programFd(Program::XdpFromNet), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN failed: " << strerror(-err);
    r.out.bytes.resize(opts.data_size_out);
    r.verdict = static_cast<int>(opts.retval);
    return r;
  }

  Result tcFromNet(const Packet& in) {
    Result r;
    r.out.l3off = in.l3off;
    r.out.bytes.assign(in.bytes.size() + 256, 0);
    struct __sk_buff ctx {};
    ctx.ifindex = static_cast<__u32>(fab_);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(), .data_out = r.out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(r.out.bytes.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    int err = bpf_prog_test_run_opts(dp_->programFd(Program::TcFromNet), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN failed: " << strerror(-err);
    r.out.bytes.resize(opts.data_size_out);
    r.verdict = static_cast<int>(opts.retval);
    return r;
  }

  static std::vector<uint8_t> fromL3(const Packet& p) {
    return std::vector<uint8_t>(p.bytes.begin() + p.l3off, p.bytes.end());
  }
  static std::string macs(const Packet& p) {
    char buf[64];
    const uint8_t* b = p.bytes.data();
    std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x<-%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2],
                  b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]);
    return buf;
  }

  bpf::UniqueFd origNetns_;
  bool inNetns_ = false;
  int fab_ = 0;
};

TEST_F(XdpTest, TheDenyListDropsFirstBothFamiliesAndCountsIt) {
  std::string error;
  ASSERT_TRUE(bpf::writeDenyCidrs(dp_->maps().xdpDeny,
                                  {*lb::Cidr::parse("198.18.0.96/29"), *lb::Cidr::parse("2001:db8:f::100/126")}, error))
      << error;
  EXPECT_EQ(bpf::readDenyCidrs(dp_->maps().xdpDeny).size(), 2u);
  sync("default/np", {nodePort("198.18.0.11", 30080, "198.18.18.2", false, lb::kProtoTCP)});
  uint64_t before = counter(SY_REASON_XDP_DENY);
  // Denied even where XDP would pass to tc (a fragment, an IPv4 option): the list comes first.
  PacketShape frag;
  frag.fragOff = 0x2000;
  for (const Packet& p : {makePacket(IPPROTO_TCP, "198.18.0.100", 40000, "198.18.0.11", 30080),
                          makePacket(IPPROTO_UDP, "198.18.0.97", 53, "198.18.0.11", 30080, 0, "x", frag),
                          makePacket(IPPROTO_TCP, "2001:db8:f::101", 40000, "2001:db8:f::11", 30080)}) {
    EXPECT_EQ(xdp(p).verdict, kXdpDrop) << p.src();
  }
  EXPECT_EQ(counter(SY_REASON_XDP_DENY), before + 3);
  // Just outside the prefixes: passed on, to tc.
  EXPECT_EQ(xdp(makePacket(IPPROTO_TCP, "198.18.0.104", 40000, "198.18.0.11", 30080)).verdict, kXdpPass);
  EXPECT_EQ(xdp(makePacket(IPPROTO_TCP, "2001:db8:f::104", 40000, "2001:db8:f::11", 30080)).verdict, kXdpPass);
  EXPECT_EQ(counter(SY_REASON_XDP_DENY), before + 3);
  // Rewriting the list replaces it: the old prefixes are gone.
  ASSERT_TRUE(bpf::writeDenyCidrs(dp_->maps().xdpDeny, {*lb::Cidr::parse("203.0.113.0/24")}, error)) << error;
  EXPECT_EQ(xdp(makePacket(IPPROTO_TCP, "198.18.0.100", 40000, "198.18.0.11", 30080)).verdict, kXdpPass);
  EXPECT_THAT(bpf::readDenyCidrs(dp_->maps().xdpDeny), ::testing::ElementsAre(*lb::Cidr::parse("203.0.113.0/24")));
}

TEST_F(XdpTest, ANewFlowAndWhatXdpDoesNotHandleGoToTcUntouched) {
  sync("default/np", {nodePort("198.18.0.11", 30080, "198.18.18.2", false, lb::kProtoTCP),
                      nodePort("198.18.0.11", 30053, "198.18.18.3", false, lb::kProtoUDP)});
  uint64_t fresh = counter(SY_REASON_XDP_PASS_NEW), other = counter(SY_REASON_XDP_PASS_OTHER);
  for (const Packet& p : {makePacket(IPPROTO_TCP, "198.18.0.100", 40000, "198.18.0.11", 30080),
                          makePacket(IPPROTO_UDP, "198.18.0.100", 40000, "198.18.0.11", 30053, 0),
                          makePacket(IPPROTO_TCP, "2001:db8:f::100", 40000, "2001:db8:f::11", 30080)}) {
    Result r = xdp(p);
    EXPECT_EQ(r.verdict, kXdpPass) << p.dst();
    EXPECT_EQ(r.out.bytes, p.bytes) << "a passed packet must reach tc as it came";
  }
  EXPECT_EQ(counter(SY_REASON_XDP_PASS_NEW), fresh + 3);
  EXPECT_TRUE(ctEntries().empty()) << "XDP must leave new flows to tc";
  PacketShape frag, opts;
  frag.fragOff = 0x2000;
  opts.ipv4Options = {1, 1, 1, 0};
  for (const Packet& p : {makePacket(IPPROTO_UDP, "198.18.0.100", 40000, "198.18.0.11", 30053, 0, "x", frag),
                          makePacket(IPPROTO_TCP, "198.18.0.100", 40000, "198.18.0.11", 30080, 0x10, "x", opts),
                          makePacket(kProtoSctp, "198.18.0.100", 40000, "198.18.0.11", 30080)}) {
    Result r = xdp(p);
    EXPECT_EQ(r.verdict, kXdpPass);
    EXPECT_EQ(r.out.bytes, p.bytes);
  }
  EXPECT_EQ(counter(SY_REASON_XDP_PASS_OTHER), other + 3);
}

// The point of it: once tc made a SNATed NodePort flow's entries, XDP rewrites its packets
// in both directions to exactly what tc writes (IP header on), with the MAC addresses of
// the FIB's neighbour, out of the device they came in on (XDP_TX).
TEST_F(XdpTest, AnEstablishedSnatFlowIsRewrittenAsTcWouldBothWaysAndSentByXdpTx) {
  for (uint8_t proto : {lb::kProtoTCP, lb::kProtoUDP}) {
    for (const char* family : {"v4", "v6"}) {
      SCOPED_TRACE(std::string(family) + (proto == lb::kProtoTCP ? " TCP" : " UDP"));
      bool v6 = std::string(family) == "v6";
      const char* client = v6 ? "2001:db8:f::100" : "198.18.0.100";
      const char* node = v6 ? "2001:db8:f::11" : "198.18.0.11";
      const char* backend = v6 ? "2001:db8:1:2::2" : "198.18.18.2";
      uint16_t port = static_cast<uint16_t>(30100 + proto + (v6 ? 1 : 0));
      sync(std::string("default/np-") + family + std::to_string(proto), {nodePort(node, port, backend, false, proto)});
      // tc makes the flow (the first packet: a SYN, or UDP's first datagram).
      Result first = tcFromNet(makePacket(proto, client, 40001, node, port, proto == lb::kProtoTCP ? 0x02 : 0));
      ASSERT_EQ(first.verdict, TC_ACT_REDIRECT);
      uint16_t snatPort = first.out.sport();
      // The next packet of the client: XDP's rewrite is tc's.
      Packet ack = makePacket(proto, client, 40001, node, port, 0x10, "the second segment");
      uint64_t fwd = counter(SY_REASON_XDP_FORWARD);
      Result x = xdp(ack);
      EXPECT_EQ(x.verdict, kXdpTx);
      EXPECT_EQ(counter(SY_REASON_XDP_FORWARD), fwd + 1);
      Result t = tcFromNet(ack);
      EXPECT_EQ(fromL3(x.out), fromL3(t.out)) << "XDP wrote other bytes than tc";
      EXPECT_EQ(x.out.dst(), std::string(v6 ? "[2001:db8:1:2::2]" : "198.18.18.2") + ":8080");
      EXPECT_EQ(x.out.sport(), snatPort);
      EXPECT_TRUE(x.out.ipChecksumOk());
      EXPECT_TRUE(x.out.l4ChecksumOk());
      EXPECT_EQ(macs(x.out), "02:00:00:00:00:12<-02:00:00:00:00:11") << "to the other node, from fab0";
      // The backend's reply to the SNAT address: back to the client from the node port.
      Packet reply = makePacket(proto, backend, 8080, node, snatPort, 0x10, "a reply");
      uint64_t rev = counter(SY_REASON_XDP_REVNAT);
      Result xr = xdp(reply);
      EXPECT_EQ(xr.verdict, kXdpTx);
      EXPECT_EQ(counter(SY_REASON_XDP_REVNAT), rev + 1);
      Result tr = tcFromNet(reply);
      EXPECT_EQ(fromL3(xr.out), fromL3(tr.out));
      EXPECT_EQ(xr.out.src(), std::string(v6 ? "[2001:db8:f::11]" : "198.18.0.11") + ":" + std::to_string(port));
      EXPECT_EQ(xr.out.dst(), std::string(v6 ? "[2001:db8:f::100]" : "198.18.0.100") + ":40001");
      EXPECT_TRUE(xr.out.l4ChecksumOk());
      EXPECT_EQ(macs(xr.out), "02:00:00:00:01:00<-02:00:00:00:00:11");
    }
  }
}

// DSR with the option dispatch: after the SYN (which tc sends with the option), a TCP flow's
// packets are DNATed only, and tc leaves them to the stack, which forwards them (TTL - 1).
// XDP writes that: tc's bytes with the TTL (hop limit) a router leaves. DSR over UDP (the
// option on every datagram) and DSR/ipip (encapsulation) stay tc's.
TEST_F(XdpTest, AnEstablishedDsrTcpFlowIsForwardedAsTcAndTheStackWould) {
  for (const char* family : {"v4", "v6"}) {
    SCOPED_TRACE(family);
    bool v6 = std::string(family) == "v6";
    const char* client = v6 ? "2001:db8:f::100" : "198.18.0.100";
    const char* node = v6 ? "2001:db8:f::11" : "198.18.0.11";
    const char* backend = v6 ? "2001:db8:1:2::2" : "198.18.18.2";
    auto dsr = [&](uint16_t port, uint8_t proto, uint16_t flags) {
      lb::Frontend f = nodePort(node, port, backend, false, proto);
      f.head.flags = flags;
      return f;
    };
    sync(std::string("default/dsr-") + family,
         {dsr(30200, lb::kProtoTCP, lb::kFrontendDsr), dsr(30201, lb::kProtoUDP, lb::kFrontendDsr),
          dsr(30202, lb::kProtoTCP, lb::kFrontendDsr | lb::kFrontendDsrIpip)});
    ASSERT_EQ(tcFromNet(makePacket(IPPROTO_TCP, client, 40010, node, 30200)).verdict, TC_ACT_OK);
    Packet ack = makePacket(IPPROTO_TCP, client, 40010, node, 30200, 0x10, "the request");
    uint64_t fwd = counter(SY_REASON_XDP_FORWARD);
    Result x = xdp(ack);
    EXPECT_EQ(x.verdict, kXdpTx);
    EXPECT_EQ(counter(SY_REASON_XDP_FORWARD), fwd + 1);
    Result t = tcFromNet(ack);
    ASSERT_EQ(t.verdict, TC_ACT_OK);
    if (v6) {
      reinterpret_cast<ipv6hdr*>(t.out.bytes.data() + t.out.l3off)->hop_limit--;
    } else {
      t.out.ip()->ttl--;
    }
    t.out.fixChecksums();
    EXPECT_EQ(fromL3(x.out), fromL3(t.out)) << "XDP wrote other bytes than tc and the stack's forwarding";
    EXPECT_EQ(x.out.src(), std::string(v6 ? "[2001:db8:f::100]" : "198.18.0.100") + ":40010") << "DSR keeps the client";
    EXPECT_EQ(x.out.dst(), std::string(v6 ? "[2001:db8:1:2::2]" : "198.18.18.2") + ":8080");
    EXPECT_TRUE(x.out.ipChecksumOk());
    EXPECT_TRUE(x.out.l4ChecksumOk());
    EXPECT_EQ(macs(x.out), "02:00:00:00:00:12<-02:00:00:00:00:11");
    // A TTL that forwarding would expire: the stack answers it.
    Packet last = ack;
    if (v6) {
      reinterpret_cast<ipv6hdr*>(last.bytes.data() + last.l3off)->hop_limit = 1;
    } else {
      last.ip()->ttl = 1;
    }
    last.fixChecksums();
    EXPECT_EQ(xdp(last).verdict, kXdpPass);
    // UDP by DSR, and DSR/ipip: tc's.
    ASSERT_EQ(tcFromNet(makePacket(IPPROTO_UDP, client, 40011, node, 30201, 0)).verdict, TC_ACT_OK);
    EXPECT_EQ(xdp(makePacket(IPPROTO_UDP, client, 40011, node, 30201, 0)).verdict, kXdpPass);
    tcFromNet(makePacket(IPPROTO_TCP, client, 40012, node, 30202));
    EXPECT_EQ(xdp(makePacket(IPPROTO_TCP, client, 40012, node, 30202, 0x10)).verdict, kXdpPass);
  }
}

// UDP over IPv4 without a checksum (0) keeps none, as tc's BPF_F_MARK_MANGLED_0 does.
TEST_F(XdpTest, AZeroUdpChecksumStaysZero) {
  sync("default/np", {nodePort("198.18.0.11", 30053, "198.18.18.3", false, lb::kProtoUDP)});
  ASSERT_EQ(tcFromNet(makePacket(IPPROTO_UDP, "198.18.0.100", 40002, "198.18.0.11", 30053, 0)).verdict,
            TC_ACT_REDIRECT);
  Packet p = makePacket(IPPROTO_UDP, "198.18.0.100", 40002, "198.18.0.11", 30053, 0, "no checksum");
  p.l4()[6] = p.l4()[7] = 0;
  Result x = xdp(p);
  ASSERT_EQ(x.verdict, kXdpTx);
  EXPECT_EQ(x.out.l4()[6] | x.out.l4()[7], 0);
  EXPECT_EQ(fromL3(x.out), fromL3(tcFromNet(p).out));
}

// Conntrack as tc keeps it: XDP stamps both entries (at most once a second), and leaves to
// tc a flow it must look at again: a FIN (closing state), an expired entry, a backend that
// changed, a lost reply entry; and a local backend's flow (the stack delivers it).
TEST_F(XdpTest, XdpStampsTheFlowLikeTcAndLeavesRevalidationToTc) {
  sync("default/np", {nodePort("198.18.0.11", 30080, "198.18.18.2", false, lb::kProtoTCP),
                      nodePort("198.18.0.11", 30090, "198.18.17.2", true, lb::kProtoTCP)});
  ASSERT_EQ(tcFromNet(makePacket(IPPROTO_TCP, "198.18.0.100", 40003, "198.18.0.11", 30080)).verdict,
            TC_ACT_REDIRECT);
  Packet ack = makePacket(IPPROTO_TCP, "198.18.0.100", 40003, "198.18.0.11", 30080, 0x10);
  ageConntrack(-5'000'000'000LL);
  uint64_t t0 = monotonicNs();
  ASSERT_EQ(xdp(ack).verdict, kXdpTx);
  auto entries = ctEntries();
  ASSERT_EQ(entries.size(), 2u);
  for (const auto& [k, e] : entries) {
    EXPECT_GE(e.last_seen_ns, t0) << "both entries are stamped, as tc stamps them (dir " << int(e.dir) << ")";
  }
  uint64_t other = counter(SY_REASON_XDP_PASS_OTHER);
  EXPECT_EQ(xdp(makePacket(IPPROTO_TCP, "198.18.0.100", 40003, "198.18.0.11", 30080, 0x11)).verdict, kXdpPass)
      << "FIN: tc marks the flow closing";
  // Expired: tc forgets the pair and balances again.
  ageConntrack(-40'000'000'000LL);
  EXPECT_EQ(xdp(ack).verdict, kXdpPass);
  ageConntrack(40'000'000'000LL - 2'000'000'000LL);
  // The reply entry lost: tc writes it again.
  for (const auto& [k, e] : ctEntries()) {
    if (e.dir == SY_CT_REPLY) {
      ASSERT_EQ(bpf_map_delete_elem(dp_->maps().ct, &k), 0);
    }
  }
  EXPECT_EQ(xdp(ack).verdict, kXdpPass);
  EXPECT_EQ(counter(SY_REASON_XDP_PASS_OTHER), other + 3);
  // A local backend: no SNAT, no redirect: the stack's.
  ASSERT_EQ(tcFromNet(makePacket(IPPROTO_TCP, "198.18.0.100", 40004, "198.18.0.11", 30090)).verdict, TC_ACT_OK);
  EXPECT_EQ(xdp(makePacket(IPPROTO_TCP, "198.18.0.100", 40004, "198.18.0.11", 30090, 0x10)).verdict, kXdpPass);
}

// A backend gone from the service (its ID released): the flow's next check goes to tc.
TEST_F(XdpTest, AFlowWhoseBackendWentIsLeftToTc) {
  sync("default/np", {nodePort("198.18.0.11", 30080, "198.18.18.2", false, lb::kProtoTCP)});
  ASSERT_EQ(tcFromNet(makePacket(IPPROTO_TCP, "198.18.0.100", 40005, "198.18.0.11", 30080)).verdict,
            TC_ACT_REDIRECT);
  sync("default/np", {nodePort("198.18.0.11", 30080, "198.18.18.9", false, lb::kProtoTCP)});
  ageConntrack(-2'000'000'000LL);
  Packet ack = makePacket(IPPROTO_TCP, "198.18.0.100", 40005, "198.18.0.11", 30080, 0x10);
  EXPECT_EQ(xdp(ack).verdict, kXdpPass);
  EXPECT_EQ(tcFromNet(ack).out.addr(false), "198.18.18.9") << "tc balanced it again";
  EXPECT_EQ(xdp(ack).verdict, kXdpTx) << "and XDP follows tc's new entry";
}

}  // namespace
}  // namespace switchyard::bpftest

namespace switchyard::bpftest {
namespace {

// Attaching: a pinned XDP link per device (PIN/links/xdp_DEV); native where the driver has
// XDP (veth), refused clearly in native mode where it has none (a bridge) and generic there in
// best-effort mode; replaced in place by a second attach; removed by detachXdpExcept and by
// `switchyard cleanup`.
class XdpAttachTest : public TcProgramTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF, network namespaces)";
    }
    origNetns_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    inNetns_ = true;
    for (const char* cmd : {"ip link add xv0 type veth peer name xv1", "ip link add xd0 type bridge",
                            "ip link set xv0 up", "ip link set xv1 up", "ip link set xd0 up"}) {
      ASSERT_EQ(sh(cmd), "");
    }
    TcProgramTest::SetUp();
  }
  void TearDown() override {
    TcProgramTest::TearDown();
    if (inNetns_) {
      EXPECT_EQ(::setns(origNetns_.get(), CLONE_NEWNET), 0);
    }
  }
  bpf::UniqueFd origNetns_;
  bool inNetns_ = false;
};

TEST_F(XdpAttachTest, NativeWhereTheDriverHasItGenericOnlyInBestEffortAndCleanupRemovesIt) {
  using Status = bpf::Datapath::XdpAttachResult::Status;
  auto veth = dp_->attachXdp("xv0", bpf::XdpMode::Native);
  ASSERT_EQ(veth.status, Status::Attached) << veth.error;
  EXPECT_EQ(veth.mode, "native");
  EXPECT_EQ(bpf::xdpAttachMode(if_nametoindex("xv0")), "native");
  auto native = dp_->attachXdp("xd0", bpf::XdpMode::Native);
  EXPECT_EQ(native.status, Status::Failed);
  EXPECT_THAT(native.error, ::testing::HasSubstr("loadBalancer.acceleration native: device xd0 cannot run XDP in its driver"));
  EXPECT_EQ(bpf::xdpAttachMode(if_nametoindex("xd0")), "none") << "a failed native attach left something";
  auto generic = dp_->attachXdp("xd0", bpf::XdpMode::BestEffort);
  ASSERT_EQ(generic.status, Status::Attached) << generic.error;
  EXPECT_EQ(generic.mode, "generic");
  EXPECT_EQ(bpf::xdpAttachMode(if_nametoindex("xd0")), "generic");
  EXPECT_EQ(dp_->attachXdp("nosuchdev", bpf::XdpMode::BestEffort).status, Status::Missing);
  // A second attach (a restarted daemon) swaps the program of the same link.
  auto links = bpf::listXdpLinks(pinPath_);
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0].device, "xd0");
  EXPECT_EQ(links[1].device, "xv0");
  auto again = dp_->attachXdp("xv0", bpf::XdpMode::BestEffort);
  EXPECT_EQ(again.status, Status::Attached);
  EXPECT_EQ(again.mode, "native");
  EXPECT_EQ(bpf::listXdpLinks(pinPath_).size(), 2u);
  // Devices no longer host-facing lose it.
  EXPECT_THAT(dp_->detachXdpExcept({"xv0"}), ::testing::ElementsAre("xd0"));
  EXPECT_EQ(bpf::xdpAttachMode(if_nametoindex("xd0")), "none");
  EXPECT_EQ(bpf::xdpAttachMode(if_nametoindex("xv0")), "native");
  // `switchyard cleanup` leaves nothing.
  dp_.reset();
  auto report = bpf::cleanupPinPath(pinPath_);
  EXPECT_TRUE(report.errors.empty()) << report.errors.front();
  EXPECT_GE(report.linksRemoved, 1);
  EXPECT_EQ(bpf::xdpAttachMode(if_nametoindex("xv0")), "none") << "cleanup left the XDP program on xv0";
  EXPECT_FALSE(std::filesystem::exists(pinPath_));
  pinPath_.clear();
}

}  // namespace
}  // namespace switchyard::bpftest
