// The real tc programs on crafted packets (BPF_PROG_TEST_RUN): DNAT and reverse NAT,
// conntrack consistency, reject, SCTP. Maps are seeded through the daemon's own syncer and
// map writer; nothing of the program or its maps is replaced.
#include <linux/icmp.h>
#include <linux/icmpv6.h>

#include <set>

#include "tc_fixture.h"

namespace switchyard::bpftest {
namespace {

constexpr int64_t kSecond = 1000000000;

// One row per behaviour: a packet into a pod-facing device's ingress, the verdict and
// destination expected.
struct IngressCase {
  const char* name;
  const char* saddr;
  uint8_t proto;
  const char* daddr;
  uint16_t dport;
  const char* expectDst;
};

class TcIngress : public TcProgramTest, public ::testing::WithParamInterface<IngressCase> {};

TEST_P(TcIngress, Packet) {
  const IngressCase& c = GetParam();
  Packet in = makePacket(c.proto, c.saddr, 40000, c.daddr, c.dport);
  uint64_t before = counter(SY_REASON_TC_DNAT_NEW);
  Result r = run(Program::TcFromPod, in);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_NEW), before + 1) << "a new flow's DNAT not counted";
  EXPECT_EQ(r.out.dst(), c.expectDst) << "destination hasn't been NATed to the backend";
  EXPECT_EQ(r.out.src(), in.src()) << "the source must stay the client's";
  EXPECT_TRUE(r.out.ipChecksumOk()) << "IPv4 header checksum broken by DNAT";
  EXPECT_TRUE(r.out.l4ChecksumOk()) << "L4 checksum broken by DNAT";
}

INSTANTIATE_TEST_SUITE_P(
    Table, TcIngress,
    ::testing::Values(
        IngressCase{"tcp_to_clusterip_is_dnated", "198.18.1.2", IPPROTO_TCP, "198.19.0.10", 80, "198.18.16.2:8080"},
        IngressCase{"udp_to_clusterip_is_dnated", "198.18.1.2", IPPROTO_UDP, "198.19.0.53", 53, "198.18.16.3:5353"},
        IngressCase{"tcp6_to_clusterip_is_dnated", "2001:db8:1::2", IPPROTO_TCP, "2001:db8:1::10", 80,
                    "[2001:db8:16::2]:8080"},
        IngressCase{"udp6_to_clusterip_is_dnated", "2001:db8:1::2", IPPROTO_UDP, "2001:db8:1::53", 53,
                    "[2001:db8:16::3]:5353"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(TcProgramTest, UnknownAddressOrPortPassesUntouchedAndUncounted) {
  for (auto [addr, port] : {std::pair{"198.18.16.9", 80}, std::pair{"198.19.0.10", 81}}) {
    Packet in = makePacket(IPPROTO_TCP, "198.18.1.2", 40000, addr, static_cast<uint16_t>(port));
    uint64_t dnat = counter(SY_REASON_TC_DNAT_NEW);
    Result r = run(Program::TcFromPod, in);
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(r.out.bytes, in.bytes) << addr << ":" << port << " was modified";
    EXPECT_EQ(counter(SY_REASON_TC_DNAT_NEW), dnat);
  }
}

TEST_F(TcProgramTest, ReplyIsReverseNatedWithValidChecksums) {
  struct Flow {
    uint8_t proto;
    const char* client;
    const char* vip;
    uint16_t vport;
    const char* vipText;  // as Packet::src() prints it
  } flows[] = {
      {IPPROTO_TCP, "198.18.1.2", "198.19.0.10", 80, "198.19.0.10:80"},
      {IPPROTO_UDP, "198.18.1.2", "198.19.0.53", 53, "198.19.0.53:53"},
      {IPPROTO_TCP, "2001:db8:1::2", "2001:db8:1::10", 80, "[2001:db8:1::10]:80"},
      {IPPROTO_UDP, "2001:db8:1::2", "2001:db8:1::53", 53, "[2001:db8:1::53]:53"},
  };
  for (const Flow& f : flows) {
    SCOPED_TRACE(f.vipText);
    Packet req = makePacket(f.proto, f.client, 40001, f.vip, f.vport);
    Result fwd = run(Program::TcFromPod, req);
    ASSERT_EQ(fwd.verdict, TC_ACT_OK);
    auto [backend, bport] = splitHostPort(fwd.out.dst());
    Packet reply = makePacket(f.proto, backend.c_str(), bport, f.client, 40001, 0x12 /* SYN|ACK */, "reply");
    uint64_t before = counter(SY_REASON_TC_REVNAT);
    Result rev = run(Program::TcToPod, reply);
    EXPECT_EQ(rev.verdict, TC_ACT_OK);
    EXPECT_EQ(rev.out.src(), f.vipText) << "reply source hasn't been translated back to the ClusterIP";
    EXPECT_EQ(rev.out.dst(), reply.dst());
    EXPECT_TRUE(rev.out.ipChecksumOk());
    EXPECT_TRUE(rev.out.l4ChecksumOk());
    EXPECT_EQ(counter(SY_REASON_TC_REVNAT), before + 1);
  }
}

// A local backend's reply leaves through its own pod device's ingress: translated there.
TEST_F(TcProgramTest, ALocalBackendsReplyIsTranslatedAtItsOwnDevice) {
  Packet req = makePacket(IPPROTO_TCP, "198.18.1.2", 40031, "198.19.0.10", 80);
  ASSERT_EQ(run(Program::TcFromPod, req).out.dst(), "198.18.16.2:8080");
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 40031, 0x12, "reply");
  Result rev = run(Program::TcFromPod, reply);
  EXPECT_EQ(rev.verdict, TC_ACT_OK);
  EXPECT_EQ(rev.out.src(), "198.19.0.10:80");
  // Translated once: the same packet, now from the ClusterIP, matches nothing at egress.
  Result again = run(Program::TcToPod, rev.out);
  EXPECT_EQ(again.out.bytes, rev.out.bytes) << "a translated reply was translated twice";
}

TEST_F(TcProgramTest, ADirectConnectionReusingAnOldTranslatedTupleIsNotRewritten) {
  // A client talks to the ClusterIP from port 40010 and closes; later it connects to the
  // backend's pod IP directly from the same port. The old reply entry must not turn the
  // direct connection's replies into ClusterIP packets (the client would reset them).
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40010, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcFromPod, syn).out.dst(), "198.18.16.2:8080");
  Packet direct = makePacket(IPPROTO_TCP, "198.18.1.2", 40010, "198.18.16.2", 8080, 0x02);
  Result d = run(Program::TcFromPod, direct);
  EXPECT_EQ(d.out.bytes, direct.bytes);
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 40010, 0x12, "reply");
  Result r = run(Program::TcToPod, reply);
  EXPECT_EQ(r.out.bytes, reply.bytes) << "a direct connection's reply was rewritten by a stale entry";
}

TEST_F(TcProgramTest, ReplyOfAnUntrackedFlowPassesUntouched) {
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 45000, 0x12);
  Result r = run(Program::TcToPod, reply);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out.bytes, reply.bytes);
}

TEST_F(TcProgramTest, AFlowStaysOnItsBackendThroughConntrack) {
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40002, "198.19.0.11", 80, 0x02);
  std::string first = run(Program::TcFromPod, syn).out.dst();
  uint64_t ctHits = counter(SY_REASON_TC_DNAT_CT);
  for (int i = 0; i < 20; ++i) {
    Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 40002, "198.19.0.11", 80, 0x10);
    EXPECT_EQ(run(Program::TcFromPod, ack).out.dst(), first) << "packet " << i << " of the flow changed backend";
    if (i == 10) {
      ageConntrack(-2 * kSecond);  // a check of the flow (at most once a second) keeps it too
    }
  }
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_CT), ctHits + 20);
}

// Both directions of a flow run at once on different CPUs: the ingress of one may stamp
// an entry after the egress of the other read the clock. Such a stamp, later than the
// packet's own clock reading, is fresh: the reply is still translated, its entry kept, and
// the flow stays on its backend (not re-chosen, which with several backends would move it).
TEST_F(TcProgramTest, AnEntryStampedByAnotherCpuAfterThisPacketReadTheClockIsAlive) {
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40020, "198.19.0.11", 80, 0x02);
  std::string backend = run(Program::TcFromPod, syn).out.dst();
  ASSERT_FALSE(backend.empty());
  auto [backendAddr, backendPort] = splitHostPort(backend);
  ASSERT_EQ(ctEntries().size(), 2u) << "a translated flow has a forward and a reply entry";
  ageConntrack(kSecond);  // one second into the future, as a concurrent CPU's later reading

  Packet reply = makePacket(IPPROTO_TCP, backendAddr.c_str(), backendPort, "198.18.1.2", 40020, 0x12, "reply");
  Result rev = run(Program::TcToPod, reply);
  EXPECT_EQ(rev.out.src(), "198.19.0.11:80") << "the reply of a live flow reached the client untranslated";
  Result again = run(Program::TcToPod, reply);
  EXPECT_EQ(again.out.src(), "198.19.0.11:80") << "the first reply deleted the flow's reply entry";

  uint64_t ctHits = counter(SY_REASON_TC_DNAT_CT);
  uint64_t fresh = counter(SY_REASON_TC_DNAT_NEW);
  for (int i = 0; i < 20; ++i) {
    Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 40020, "198.19.0.11", 80, 0x10);
    EXPECT_EQ(run(Program::TcFromPod, ack).out.dst(), backend) << "packet " << i << " of the flow changed backend";
  }
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_CT), ctHits + 20) << "packets of a live flow missed its entry";
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_NEW), fresh) << "a live flow was balanced again";
}

TEST_F(TcProgramTest, NewFlowsSpreadOverEveryBackend) {
  std::set<std::string> seen;
  for (uint16_t sport = 41000; sport < 41200 && seen.size() < 3; ++sport) {
    Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", sport, "198.19.0.11", 80, 0x02);
    seen.insert(run(Program::TcFromPod, syn).out.dst());
  }
  EXPECT_THAT(seen, ::testing::ElementsAre("198.18.16.2:8080", "198.18.16.3:8080", "198.18.16.4:8080"));
}

TEST_F(TcProgramTest, UdpWithoutChecksumKeepsNoChecksum) {
  Packet in = makePacket(IPPROTO_UDP, "198.18.1.2", 40003, "198.19.0.53", 53);
  std::memset(in.l4() + 6, 0, 2);  // UDP checksum 0: none
  Result r = run(Program::TcFromPod, in);
  EXPECT_EQ(r.out.dst(), "198.18.16.3:5353");
  EXPECT_EQ(r.out.l4csum(), 0) << "a zero UDP checksum must stay zero";
  EXPECT_TRUE(r.out.ipChecksumOk());
}

TEST_F(TcProgramTest, ARemovedBackendGetsNoNewFlows) {
  sync("default/multi", {frontend("198.19.0.11", 80, lb::kProtoTCP, {"198.18.16.2", "198.18.16.4"}, 8080)});
  for (uint16_t sport = 42000; sport < 42100; ++sport) {
    Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", sport, "198.19.0.11", 80, 0x02);
    EXPECT_NE(run(Program::TcFromPod, syn).out.dst(), "198.18.16.3:8080") << "removed backend chosen";
  }
}

// A flow's backend is checked at most once a second (and on SYN, FIN, RST), so that an
// established packet costs one conntrack lookup: within a second of its backend's deletion
// the flow moves to a live backend.
TEST_F(TcProgramTest, AFlowWhoseBackendWasDeletedMovesToALiveOneWithinASecond) {
  // 198.18.16.7 belongs to this service only, so removing it deletes the backend entry.
  // (A backend another service still uses lives on, and so do its flows, as with
  // kube-proxy, whose conntrack keeps established flows on a removed endpoint.)
  sync("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.7"}, 8080)});
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 43000, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcFromPod, syn).out.dst(), "198.18.16.7:8080");
  sync("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.5"}, 8080)});
  ageConntrack(-kSecond - 1);
  uint64_t stale = counter(SY_REASON_TC_CT_STALE_BACKEND);
  Packet next = makePacket(IPPROTO_TCP, "198.18.1.2", 43000, "198.19.0.10", 80, 0x10);
  EXPECT_EQ(run(Program::TcFromPod, next).out.dst(), "198.18.16.5:8080");
  EXPECT_EQ(counter(SY_REASON_TC_CT_STALE_BACKEND), stale + 1);
}

// ---- conntrack consistency (the forward and reply entries of one flow) ----

// LRU may evict the reply entry alone; replies would then leave untranslated for the rest
// of the flow. A forward packet that finds it gone writes it again.
TEST_F(TcProgramTest, AForwardPacketRestoresAReplyEntryTheLruEvicted) {
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40100, "198.19.0.11", 80, 0x02);
  std::string backend = run(Program::TcFromPod, syn).out.dst();
  auto [baddr, bport] = splitHostPort(backend);
  Packet reply = makePacket(IPPROTO_TCP, baddr.c_str(), bport, "198.18.1.2", 40100, 0x12, "reply");
  sy_ct_key rk = ctKey(reply);
  ASSERT_EQ(bpf_map_delete_elem(dp_->maps().ct, &rk), 0) << "the flow's reply entry is missing";
  ageConntrack(-kSecond - 1);

  uint64_t restored = counter(SY_REASON_TC_CT_REPLY_RESTORED);
  Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 40100, "198.19.0.11", 80, 0x10);
  EXPECT_EQ(run(Program::TcFromPod, ack).out.dst(), backend);
  EXPECT_EQ(counter(SY_REASON_TC_CT_REPLY_RESTORED), restored + 1);
  Result rev = run(Program::TcToPod, reply);
  EXPECT_EQ(rev.out.src(), "198.19.0.11:80") << "the reply entry was not restored";
}

// A one-way flow (only the client sends) keeps its reply entry alive: both entries live
// and die together, whichever direction the packets go.
TEST_F(TcProgramTest, BothEntriesOfAFlowLiveAndDieTogether) {
  Packet req = makePacket(IPPROTO_UDP, "198.18.1.2", 40101, "198.19.0.53", 53);
  ASSERT_EQ(run(Program::TcFromPod, req).out.dst(), "198.18.16.3:5353");
  // 50 s later (UDP lives 60 s): the client sends again, nothing came back so far.
  ageConntrack(-50 * kSecond);
  ASSERT_EQ(run(Program::TcFromPod, req).out.dst(), "198.18.16.3:5353");
  // Another 50 s: 100 s after the reply entry was written, 50 after the flow was last seen.
  ageConntrack(-50 * kSecond);
  Packet reply = makePacket(IPPROTO_UDP, "198.18.16.3", 5353, "198.18.1.2", 40101, 0, "reply");
  Result rev = run(Program::TcToPod, reply);
  EXPECT_EQ(rev.out.src(), "198.19.0.53:53") << "the reply entry expired while its flow was alive";
  // And once the whole flow is idle past its lifetime, both go.
  ageConntrack(-61 * kSecond);
  EXPECT_EQ(run(Program::TcToPod, reply).out.bytes, reply.bytes);
  EXPECT_TRUE(ctEntries().empty()) << "an expired flow left an entry behind";
}

// A backend ID that conntrack names may, in a corner case, be handed out again (the
// quarantine cap). The flow checks that its ID still names the backend it uses.
TEST_F(TcProgramTest, AFlowWhoseBackendIdNowNamesAnotherBackendIsBalancedAgain) {
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40102, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcFromPod, syn).out.dst(), "198.18.16.2:8080");
  uint32_t id = backendId("198.18.16.2", 8080);
  ASSERT_NE(id, 0u);
  sy_backend other{};
  other.addr = bpf::toSyAddr(*lb::IpAddr::parse("198.18.16.99"));
  other.port = htons(9999);
  other.proto = IPPROTO_TCP;
  sy_backend saved{};
  ASSERT_EQ(bpf_map_lookup_elem(dp_->maps().backends, &id, &saved), 0);
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().backends, &id, &other, BPF_EXIST), 0);
  ageConntrack(-kSecond - 1);
  uint64_t stale = counter(SY_REASON_TC_CT_STALE_BACKEND);
  Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 40102, "198.19.0.10", 80, 0x10);
  Result r = run(Program::TcFromPod, ack);
  EXPECT_EQ(counter(SY_REASON_TC_CT_STALE_BACKEND), stale + 1) << "a reused backend ID was followed";
  EXPECT_NE(r.out.dst(), "198.18.16.2:8080") << "the flow kept a backend its entry no longer names";
  EXPECT_EQ(r.out.dst(), "198.18.16.99:9999") << "balanced again over the service's slots";
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().backends, &id, &saved, BPF_EXIST), 0);
}

// Two CPUs run the first packets of one flow at once: both miss conntrack, both choose a
// backend, one creates the forward entry first. The other must follow the winner's choice
// (BPF_NOEXIST), undo the reply entry it reserved, and count it. The race is staged by a
// test build of the same program (SY_TEST_RACE) that writes the winner's entry between the
// lookup and the insert; everything else is the real program and maps.
class RaceVariant {
 public:
  explicit RaceVariant(const std::string& pinPath) {
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pinPath.c_str());
    obj_ = bpf_object__open_file(SY_TC_RACE_OBJECT, &opts);
    if (!obj_ || bpf_object__load(obj_) != 0) {
      error_ = "load " SY_TC_RACE_OBJECT ": " + std::string(strerror(errno));
      return;
    }
    // Test code only: the production loader reaches maps and programs through the skeleton.
    prog_ = bpf_program__fd(bpf_object__find_program_by_name(obj_, "sy_tc_from_pod"));
    inject_ = bpf_map__fd(bpf_object__find_map_by_name(obj_, "race_inject"));
  }
  ~RaceVariant() { bpf_object__close(obj_); }
  const std::string& error() const { return error_; }
  int prog() const { return prog_; }
  int inject() const { return inject_; }

 private:
  struct bpf_object* obj_ = nullptr;
  int prog_ = -1, inject_ = -1;
  std::string error_;
};

TEST_F(TcProgramTest, TheFirstPacketsOfOneFlowOnTwoCpusFollowTheWinnersBackend) {
  RaceVariant v(pinPath_);
  ASSERT_TRUE(v.error().empty()) << v.error();
  // Service web has one backend, .2: this packet alone would go there. The winner chose
  // .4 (a backend of another service; any live backend will do) and wrote both entries.
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40103, "198.19.0.10", 80, 0x02);
  sy_ct_entry won{};
  won.last_seen_ns = monotonicNs();
  won.nat_addr = bpf::toSyAddr(*lb::IpAddr::parse("198.18.16.4"));
  won.nat_port = htons(8080);
  won.backend_id = backendId("198.18.16.4", 8080);
  won.rev_nat_id = 1;
  won.dir = SY_CT_FORWARD;
  ASSERT_NE(won.backend_id, 0u);
  sy_ct_entry wonReply = won;
  wonReply.dir = SY_CT_REPLY;
  wonReply.nat_addr = bpf::toSyAddr(*lb::IpAddr::parse("198.19.0.10"));
  wonReply.nat_port = htons(80);
  Packet winnersReply = makePacket(IPPROTO_TCP, "198.18.16.4", 8080, "198.18.1.2", 40103, 0x12, "r");
  sy_ct_key wrk = ctKey(winnersReply);
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().ct, &wrk, &wonReply, BPF_NOEXIST), 0);
  uint32_t zero = 0;
  ASSERT_EQ(bpf_map_update_elem(v.inject(), &zero, &won, BPF_ANY), 0);

  uint64_t races = counter(SY_REASON_TC_CT_RACE);
  Result r = runFd(v.prog(), syn);
  EXPECT_EQ(r.out.dst(), "198.18.16.4:8080") << "the loser went its own way: one flow, two backends";
  EXPECT_EQ(counter(SY_REASON_TC_CT_RACE), races + 1);
  Packet oursReply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 40103, 0x12, "r");
  sy_ct_key ork = ctKey(oursReply);
  sy_ct_entry e{};
  EXPECT_NE(bpf_map_lookup_elem(dp_->maps().ct, &ork, &e), 0) << "the loser's reserved reply entry stayed";
  EXPECT_EQ(bpf_map_lookup_elem(dp_->maps().ct, &wrk, &e), 0) << "the winner's reply entry was removed";
  EXPECT_EQ(run(Program::TcToPod, winnersReply).out.src(), "198.19.0.10:80");
}

// A client reaching one backend through two frontends from one source port would give both
// flows one reply tuple (cilium#11810): the second keeps its address and gets a free source
// port of the SNAT range, and each reply goes back to the right frontend and port.
TEST_F(TcProgramTest, TwoFlowsWithOneReplyTupleGetDistinctSourcePorts) {
  sync("default/alias", {frontend("198.19.0.20", 80, lb::kProtoTCP, {"198.18.16.2"}, 8080)});
  Packet a = makePacket(IPPROTO_TCP, "198.18.1.2", 40104, "198.19.0.10", 80, 0x02);
  Packet b = makePacket(IPPROTO_TCP, "198.18.1.2", 40104, "198.19.0.20", 80, 0x02);
  Result ra = run(Program::TcFromPod, a);
  Result rb = run(Program::TcFromPod, b);
  EXPECT_EQ(ra.out.src(), "198.18.1.2:40104") << "the first flow keeps its tuple";
  EXPECT_EQ(rb.out.srcAddr(), "198.18.1.2") << "port SNAT keeps the client's address";
  EXPECT_GE(rb.out.sport(), 20000);
  EXPECT_LE(rb.out.sport(), 29999);
  EXPECT_TRUE(rb.out.l4ChecksumOk());
  Packet replyA = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 40104, 0x12, "r");
  Packet replyB = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", rb.out.sport(), 0x12, "r");
  Result ba = run(Program::TcToPod, replyA);
  Result bb = run(Program::TcToPod, replyB);
  EXPECT_EQ(ba.out.src(), "198.19.0.10:80");
  EXPECT_EQ(ba.out.dst(), "198.18.1.2:40104");
  EXPECT_EQ(bb.out.src(), "198.19.0.20:80");
  EXPECT_EQ(bb.out.dst(), "198.18.1.2:40104") << "the client's own port restored";
  EXPECT_TRUE(bb.out.l4ChecksumOk());
}

// Short connections at a high rate: every SNAT port of a client and backend pair is held by
// a flow that has closed, yet still tracked for its closing lifetime. A new connection's SYN
// then takes the port of a closed flow, as Linux NAT evicts a closing connection on a
// reply-tuple clash, instead of being dropped (found by bench/run.sh: through tc, 1 in 40
// SYNs dropped and retransmitted a second later at 15,000 connections/s).
TEST_F(TcProgramTest, ANewFlowTakesTheReplyTupleOfAClosedOneWhenNoPortIsFree_LinuxNatEvictsClosingOnClash) {
  sync("default/alias", {frontend("198.19.0.20", 80, lb::kProtoTCP, {"198.18.16.2"}, 8080)});
  // Flows client:P -> web -> 198.18.16.2:8080 for every port of the SNAT range (20000-29999):
  // their reply tuples hold every port a flow to the alias could be SNATed to.
  for (uint16_t port = 20000; port <= 29999; ++port) {
    Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", port, "198.19.0.10", 80, 0x02);
    ASSERT_EQ(run(Program::TcFromPod, syn).out.src(), "198.18.1.2:" + std::to_string(port));
  }
  Packet alias = makePacket(IPPROTO_TCP, "198.18.1.2", 20000, "198.19.0.20", 80, 0x02);
  uint64_t noPort = counter(SY_REASON_TC_SNAT_NO_PORT);
  EXPECT_EQ(run(Program::TcFromPod, alias).verdict, TC_ACT_SHOT) << "live flows keep their ports";
  EXPECT_EQ(counter(SY_REASON_TC_SNAT_NO_PORT), noPort + 1);

  for (uint16_t port = 20000; port <= 29999; ++port) {  // each one closes (FIN)
    Packet fin = makePacket(IPPROTO_TCP, "198.18.1.2", port, "198.19.0.10", 80, 0x11);
    ASSERT_EQ(run(Program::TcFromPod, fin).out.dst(), "198.18.16.2:8080");
  }
  uint64_t reclaimed = counter(SY_REASON_TC_CT_RECLAIMED);
  Result r = run(Program::TcFromPod, alias);
  ASSERT_EQ(r.out.dst(), "198.18.16.2:8080") << "the SYN was dropped, verdict " << r.verdict;
  EXPECT_EQ(counter(SY_REASON_TC_CT_RECLAIMED), reclaimed + 1);
  EXPECT_EQ(counter(SY_REASON_TC_SNAT_NO_PORT), noPort + 1);
  uint16_t q = r.out.sport();
  ASSERT_GE(q, 20000);
  ASSERT_LE(q, 29999);
  EXPECT_TRUE(r.out.l4ChecksumOk());
  // The closed flow that held port q is forgotten whole; the new one's replies are its own.
  Packet oldFwd = makePacket(IPPROTO_TCP, "198.18.1.2", q, "198.19.0.10", 80, 0x10);
  sy_ct_key fk = ctKey(oldFwd);
  sy_ct_entry e{};
  EXPECT_NE(bpf_map_lookup_elem(dp_->maps().ct, &fk, &e), 0) << "the evicted flow's forward entry is left";
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", q, 0x12, "r");
  Result rev = run(Program::TcToPod, reply);
  EXPECT_EQ(rev.out.src(), "198.19.0.20:80");
  EXPECT_EQ(rev.out.dst(), "198.18.1.2:20000") << "the client's own port restored";
  // Another closed flow's port is not taken for a packet that is no SYN.
  Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 20001, "198.19.0.20", 80, 0x10);
  EXPECT_EQ(run(Program::TcFromPod, ack).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter(SY_REASON_TC_CT_RECLAIMED), reclaimed + 1);
}

// ---- reject, as kube-proxy: a service without endpoints answers TCP with a reset and UDP
// with ICMP port unreachable; a Local policy without local endpoints drops ----

TEST_F(TcProgramTest, TcpToAServiceWithoutEndpointsIsRejectedWithAReset_KubeProxyRejectsNoEndpoints) {
  for (const char* client : {"198.18.1.2", "2001:db8:1::2"}) {
    bool v6 = std::strchr(client, ':');
    const char* vip = v6 ? "2001:db8:1::12" : "198.19.0.12";
    for (uint8_t flags : {uint8_t{0x02}, uint8_t{0x10}}) {  // SYN; an ACK of a stale connection
      SCOPED_TRACE(std::string(client) + (flags == 0x02 ? " SYN" : " ACK"));
      Packet in = makePacket(IPPROTO_TCP, client, 40000, vip, 80, flags, "data!");
      uint64_t rejected = counter(SY_REASON_TC_NO_BACKEND);
      Result r = run(Program::TcFromPod, in);
      EXPECT_EQ(r.verdict, TC_ACT_REDIRECT) << "the reset goes back out of the device";
      EXPECT_EQ(counter(SY_REASON_TC_NO_BACKEND), rejected + 1);
      EXPECT_EQ(r.out.src(), std::string(v6 ? "[2001:db8:1::12]" : "198.19.0.12") + ":80");
      EXPECT_EQ(r.out.dst(), in.src());
      ASSERT_EQ(r.out.proto(), IPPROTO_TCP);
      EXPECT_EQ(r.out.l4len(), sizeof(tcphdr)) << "a reset carries no payload";
      const auto* th = reinterpret_cast<const tcphdr*>(r.out.l4());
      EXPECT_TRUE(th->rst);
      if (flags == 0x02) {
        EXPECT_TRUE(th->ack);
        EXPECT_EQ(ntohl(th->ack_seq), 1000u + 5 + 1) << "ack = seq + payload + SYN";
      } else {
        EXPECT_FALSE(th->ack);
        EXPECT_EQ(ntohl(th->seq), 5000u) << "seq = the segment's ack";
      }
      EXPECT_TRUE(r.out.ipChecksumOk());
      EXPECT_TRUE(r.out.l4ChecksumOk()) << "the reset's checksum";
      EXPECT_EQ(0, std::memcmp(r.out.bytes.data(), in.bytes.data() + 6, 6)) << "MACs swapped";
    }
  }
}

TEST_F(TcProgramTest, UdpToAServiceWithoutEndpointsGetsPortUnreachable_KubeProxyRejectsNoEndpoints) {
  for (const char* client : {"198.18.1.2", "2001:db8:1::2"}) {
    SCOPED_TRACE(client);
    bool v6 = std::strchr(client, ':');
    Packet in = makePacket(IPPROTO_UDP, client, 40000, v6 ? "2001:db8:1::12" : "198.19.0.12", 53, 0, "query");
    Result r = run(Program::TcFromPod, in);
    EXPECT_EQ(r.verdict, TC_ACT_REDIRECT);
    ASSERT_EQ(r.out.proto(), v6 ? kProtoIcmp6 : kProtoIcmp);
    EXPECT_EQ(r.out.srcAddr(), v6 ? "[2001:db8:1::12]" : "198.19.0.12") << "from the service address";
    EXPECT_EQ(r.out.addr(false), in.srcAddr());
    const uint8_t* icmp = r.out.l4();
    EXPECT_EQ(icmp[0], v6 ? ICMPV6_DEST_UNREACH : ICMP_DEST_UNREACH);
    EXPECT_EQ(icmp[1], v6 ? ICMPV6_PORT_UNREACH : ICMP_PORT_UNREACH);
    size_t quoted = (v6 ? sizeof(ipv6hdr) : sizeof(iphdr)) + 8;
    ASSERT_EQ(r.out.l4len(), 8 + quoted);
    EXPECT_EQ(0, std::memcmp(icmp + 8, in.bytes.data() + in.l3off, quoted))
        << "the ICMP message quotes the datagram's header and first 8 bytes";
    EXPECT_TRUE(r.out.ipChecksumOk());
    if (v6) {
      EXPECT_EQ(foldSum(r.out.l4Sum()), 0xffff) << "ICMPv6 checksum (with pseudo-header)";
    } else {
      EXPECT_TRUE(r.out.l4ChecksumOk()) << "ICMP checksum";
    }
  }
}

TEST_F(TcProgramTest, ALocalPolicyWithoutLocalEndpointsDrops_KubeProxyDropsNoLocalEndpoints) {
  lb::Frontend f = frontend("198.19.0.30", 80, lb::kProtoTCP, {}, 8080);
  f.head.flags = lb::kFrontendDropEmpty;
  sync("default/local", {f});
  Packet in = makePacket(IPPROTO_TCP, "198.18.1.2", 40000, "198.19.0.30", 80);
  uint64_t dropped = counter(SY_REASON_TC_DROP_NO_LOCAL);
  uint64_t rejected = counter(SY_REASON_TC_NO_BACKEND);
  EXPECT_EQ(run(Program::TcFromPod, in).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter(SY_REASON_TC_DROP_NO_LOCAL), dropped + 1);
  EXPECT_EQ(counter(SY_REASON_TC_NO_BACKEND), rejected) << "dropped, not rejected";
}

TEST_F(TcProgramTest, ResetsAreNeverAnsweredWithResets) {
  Packet in = makePacket(IPPROTO_TCP, "198.18.1.2", 40000, "198.19.0.12", 80, 0x04 /* RST */);
  uint64_t failed = counter(SY_REASON_TC_REJECT_FAILED);
  EXPECT_EQ(run(Program::TcFromPod, in).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter(SY_REASON_TC_REJECT_FAILED), failed + 1);
}

// ---- SCTP: no sockets on this kernel, so the programs are proven on crafted packets ----

TEST_F(TcProgramTest, SctpIsDnatedAndReverseNatedWithAValidCrc32c) {
  sync("default/sctp", {frontend("198.19.0.40", 3868, lb::kProtoSCTP, {"198.18.16.5"}, 3869),
                        frontend("198.19.0.41", 3868, lb::kProtoSCTP, {"198.18.16.5"}, 3868),
                        frontend("2001:db8:1::40", 3868, lb::kProtoSCTP, {"2001:db8:16::5"}, 3869)});
  struct Case {
    const char *client, *vip, *backend;
  } cases[] = {{"198.18.1.2", "198.19.0.40", "198.18.16.5:3869"},
               {"198.18.1.2", "198.19.0.41", "198.18.16.5:3868"},  // port kept: CRC unchanged
               {"2001:db8:1::2", "2001:db8:1::40", "[2001:db8:16::5]:3869"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.vip);
    Packet init = makePacket(kProtoSctp, c.client, 5000, c.vip, 3868, 0,
                             std::string("\x01\x00\x00\x14", 4) + std::string(16, 'i'));  // INIT chunk
    ASSERT_TRUE(init.l4ChecksumOk());
    Result fwd = run(Program::TcFromPod, init);
    EXPECT_EQ(fwd.verdict, TC_ACT_OK);
    EXPECT_EQ(fwd.out.dst(), c.backend);
    EXPECT_TRUE(fwd.out.ipChecksumOk());
    EXPECT_TRUE(fwd.out.l4ChecksumOk()) << "CRC32c after DNAT: " << std::hex << fwd.out.sctpField()
                                        << " computed " << fwd.out.sctpCrc();
    auto [baddr, bport] = splitHostPort(c.backend);
    Packet ack = makePacket(kProtoSctp, baddr.c_str(), bport, c.client, 5000, 0,
                            std::string("\x02\x00\x00\x14", 4) + std::string(16, 'a'));  // INIT ACK
    Result rev = run(Program::TcToPod, ack);
    EXPECT_EQ(rev.out.src(), std::string(std::strchr(c.vip, ':') ? "[" + std::string(c.vip) + "]" : c.vip) + ":3868");
    EXPECT_TRUE(rev.out.l4ChecksumOk()) << "CRC32c after reverse NAT";
  }
}

}  // namespace
}  // namespace switchyard::bpftest
