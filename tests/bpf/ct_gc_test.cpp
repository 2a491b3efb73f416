// The conntrack GC (bpf/ct_gc.h) on a real kernel hash map of the ct layout, and on the real
// tc programs' conntrack (flows made by crafted packets). Cilium's ctmap GC and Calico's
// conntrack cleaner are the models: expired flows go as pairs, live ones stay, closed TCP
// flows go after their short lifetime.
#include "bpf/ct_gc.h"

#include <bpf/bpf.h>

#include <thread>

#include "bpf/map_writer.h"
#include "bpf/migrate.h"
#include "tc_fixture.h"

namespace switchyard::bpftest {
namespace {

constexpr uint64_t kSec = 1000000000ull;

sy_addr addr(const char* a) { return bpf::toSyAddr(*lb::IpAddr::parse(a)); }

class CtGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF)";
    }
    fd_ = bpf_map_create(BPF_MAP_TYPE_HASH, "sy_ctgc_test", sizeof(sy_ct_key), sizeof(sy_ct_entry),
                         65536, nullptr);
    ASSERT_GE(fd_, 0) << strerror(errno);
    // The GC is given `now`; stamps are written relative to it. Two days ahead of the clock,
    // so a stamp 6 h back does not wrap below zero on a machine up for less than 6 h.
    now_ = bpf::monotonicNowNs() + 48 * 3600 * kSec;
  }
  void TearDown() override {
    if (fd_ >= 0) {
      close(fd_);
    }
  }

  struct Pair {
    sy_ct_key fk{}, rk{};
    sy_ct_entry fwd{}, rep{};
  };
  // A translated flow client:cport -> vip:vport on backend:bport (with snat: from
  // snatAddr:snatPort), as new_flow() and ct_reply_of() write it.
  Pair pair(const char* client, uint16_t cport, uint8_t proto, uint64_t stamp, uint8_t flags = 0,
            const char* snatAddr = nullptr, uint16_t snatPort = 0) {
    Pair p;
    p.fk.saddr = addr(client);
    p.fk.daddr = addr("198.19.0.10");
    p.fk.sport = htons(cport);
    p.fk.dport = htons(80);
    p.fk.proto = proto;
    p.fwd.last_seen_ns = stamp;
    p.fwd.nat_addr = addr("198.18.16.2");
    p.fwd.nat_port = htons(8080);
    p.fwd.backend_id = 1;
    p.fwd.rev_nat_id = 1;
    p.fwd.dir = SY_CT_FORWARD;
    p.fwd.flags = flags;
    if (snatAddr) {
      p.fwd.flags |= SY_CT_F_SNAT;
      p.fwd.nat2_addr = addr(snatAddr);
      p.fwd.nat2_port = htons(snatPort);
    }
    p.rk = bpf::ctPartnerKey(p.fk, p.fwd);
    p.rep = p.fwd;
    p.rep.dir = SY_CT_REPLY;
    p.rep.nat_addr = p.fk.daddr;
    p.rep.nat_port = p.fk.dport;
    if (snatAddr) {
      p.rep.nat2_addr = p.fk.saddr;
      p.rep.nat2_port = p.fk.sport;
    }
    return p;
  }
  void put(const sy_ct_key& k, const sy_ct_entry& e) {
    ASSERT_EQ(bpf_map_update_elem(fd_, &k, &e, BPF_ANY), 0) << strerror(errno);
  }
  void put(const Pair& p) {
    put(p.fk, p.fwd);
    put(p.rk, p.rep);
  }
  bool has(const sy_ct_key& k) {
    sy_ct_entry e{};
    return bpf_map_lookup_elem(fd_, &k, &e) == 0;
  }
  size_t count() {
    size_t n = 0;
    sy_ct_key k{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd_, prev, &next) == 0 && n < 1000000) {
      ++n;
      k = next;
      prev = &k;
    }
    return n;
  }
  bpf::CtGcPass gc(bpf::CtGc::Options o = {}) {
    bpf::CtGc g(fd_, o);
    return g.runPass(now_);
  }

  int fd_ = -1;
  uint64_t now_ = 0;
};

TEST_F(CtGcTest, PartnerKeysMatchTheDatapathsPairing) {
  for (const char* snat : {static_cast<const char*>(nullptr), "198.18.0.1"}) {
    Pair p = pair("198.18.1.2", 40000, IPPROTO_TCP, now_, 0, snat, 61000);
    sy_ct_key back = bpf::ctPartnerKey(p.rk, p.rep);
    EXPECT_EQ(std::memcmp(&back, &p.fk, sizeof(back)), 0) << "reply -> forward key, snat " << !!snat;
    EXPECT_EQ(p.rk.saddr.b[15], 2) << "the reply comes from the backend";
  }
}

TEST_F(CtGcTest, ExpiredPairsAreRemovedLiveOnesKept_CiliumCtGc) {
  Pair liveTcp = pair("198.18.1.2", 40000, IPPROTO_TCP, now_ - 3600 * kSec);  // 1 h idle of 6 h
  Pair liveUdp = pair("198.18.1.2", 40001, IPPROTO_UDP, now_ - 59 * kSec);
  Pair oldTcp = pair("198.18.1.2", 40002, IPPROTO_TCP, now_ - (SY_CT_LIFETIME_TCP + 1) * kSec);
  Pair oldUdp = pair("198.18.1.2", 40003, IPPROTO_UDP, now_ - 61 * kSec);
  Pair oldSnat = pair("198.18.1.2", 40004, IPPROTO_UDP, now_ - 61 * kSec, 0, "198.18.0.1", 61000);
  Pair future = pair("198.18.1.2", 40005, IPPROTO_UDP, now_ + kSec);  // stamped by a CPU after `now`
  for (const Pair* p : {&liveTcp, &liveUdp, &oldTcp, &oldUdp, &oldSnat, &future}) {
    put(*p);
  }
  bpf::CtGcPass r = gc();
  EXPECT_EQ(r.removed.expired, 6u);
  EXPECT_EQ(r.removed.orphan, 0u);
  EXPECT_EQ(r.kept, 6u);
  for (const Pair* p : {&liveTcp, &liveUdp, &future}) {
    EXPECT_TRUE(has(p->fk) && has(p->rk)) << "a live flow lost an entry";
  }
  for (const Pair* p : {&oldTcp, &oldUdp, &oldSnat}) {
    EXPECT_FALSE(has(p->fk) || has(p->rk)) << "an expired flow left an entry";
  }
  EXPECT_EQ(count(), 6u);
}

TEST_F(CtGcTest, AClosedTcpFlowGoesAfterItsShortLifetime_CiliumCloseTimeout) {
  Pair closedOld = pair("198.18.1.2", 41000, IPPROTO_TCP, now_ - (SY_CT_LIFETIME_TCP_CLOSING + 1) * kSec,
                        SY_CT_F_CLOSING);
  Pair closedRecent = pair("198.18.1.2", 41001, IPPROTO_TCP, now_ - (SY_CT_LIFETIME_TCP_CLOSING - 2) * kSec,
                           SY_CT_F_CLOSING);
  Pair openSameAge = pair("198.18.1.2", 41002, IPPROTO_TCP, now_ - (SY_CT_LIFETIME_TCP_CLOSING + 1) * kSec);
  // Only the reply entry saw the FIN (its forward entry's flag not written yet): the flow
  // is closing all the same.
  Pair halfMarked = pair("198.18.1.2", 41003, IPPROTO_TCP, now_ - (SY_CT_LIFETIME_TCP_CLOSING + 1) * kSec);
  halfMarked.rep.flags |= SY_CT_F_CLOSING;
  // The forward entry is read long after its stamp, the reply entry (closing) 20 s after
  // its own: the flow closed 20 s ago.
  Pair closedLate = pair("198.18.1.2", 41004, IPPROTO_TCP, now_ - (SY_CT_LIFETIME_TCP + 1) * kSec);
  closedLate.rep.last_seen_ns = now_ - 20 * kSec;
  closedLate.rep.flags |= SY_CT_F_CLOSING;
  for (const Pair* p : {&closedOld, &closedRecent, &openSameAge, &halfMarked, &closedLate}) {
    put(*p);
  }
  bpf::CtGcPass r = gc();
  EXPECT_EQ(r.removed.closed, 6u);
  EXPECT_FALSE(has(closedOld.fk) || has(closedOld.rk));
  EXPECT_FALSE(has(closedLate.fk) || has(closedLate.rk)) << "the pair's closing flag not applied";
  EXPECT_FALSE(has(halfMarked.fk) || has(halfMarked.rk)) << "a flag on one entry closes the flow";
  EXPECT_TRUE(has(closedRecent.fk) && has(closedRecent.rk)) << "closed 8 s ago: 10 s lifetime";
  EXPECT_TRUE(has(openSameAge.fk) && has(openSameAge.rk)) << "an open TCP flow lives 6 h";
}

TEST_F(CtGcTest, AHalfPairIsNeverLeft) {
  // The forward entry's own stamp is old, its reply's fresh (the replies stamp both, but
  // the forward stamp write may lag): the flow is alive, both stay.
  Pair lagging = pair("198.18.1.2", 42000, IPPROTO_UDP, now_ - 120 * kSec);
  lagging.rep.last_seen_ns = now_ - kSec;
  // Both expired, and the reply entry is read first or second: both go.
  Pair gone = pair("198.18.1.2", 42001, IPPROTO_UDP, now_ - 120 * kSec);
  gone.rep.last_seen_ns = now_ - 100 * kSec;
  for (const Pair* p : {&lagging, &gone}) {
    put(*p);
  }
  // An expired reply entry whose forward entry is gone: removed alone.
  Pair orphan = pair("198.18.1.3", 42002, IPPROTO_UDP, now_ - 120 * kSec);
  put(orphan.rk, orphan.rep);
  // An expired forward entry whose reply tuple now belongs to another, live flow (the
  // entry there names another forward key): the other flow keeps its entry.
  Pair stale = pair("198.18.1.4", 42003, IPPROTO_UDP, now_ - 120 * kSec);
  put(stale.fk, stale.fwd);
  sy_ct_entry other = stale.rep;
  other.last_seen_ns = now_;
  other.nat_port = htons(81);  // its forward key is client -> :81, not stale.fk
  put(stale.rk, other);

  bpf::CtGcPass r = gc();
  EXPECT_TRUE(has(lagging.fk) && has(lagging.rk)) << "a live flow's forward entry was removed alone";
  EXPECT_FALSE(has(gone.fk) || has(gone.rk));
  EXPECT_FALSE(has(orphan.rk));
  EXPECT_FALSE(has(stale.fk));
  EXPECT_TRUE(has(stale.rk)) << "another flow's entry removed as the partner of an expired one";
  EXPECT_EQ(r.removed.expired, 2u);
  EXPECT_EQ(r.removed.orphan, 2u);
  // No entry left whose flow's other entry is missing.
  sy_ct_key k{}, next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
    sy_ct_entry e{};
    ASSERT_EQ(bpf_map_lookup_elem(fd_, &next, &e), 0);
    if (std::memcmp(&next, &stale.rk, sizeof(next)) != 0) {
      sy_ct_key pk = bpf::ctPartnerKey(next, e);
      EXPECT_TRUE(has(pk)) << "half a pair left";
    }
    k = next;
    prev = &k;
  }
}

TEST_F(CtGcTest, APassIsCutIntoBoundedSlices) {
  constexpr int kPairs = 5000;
  for (int i = 0; i < kPairs; ++i) {
    Pair p = pair(i % 2 ? "198.18.1.2" : "198.18.1.3", static_cast<uint16_t>(20000 + i), IPPROTO_UDP,
                  i % 5 == 0 ? now_ : now_ - 61 * kSec);
    put(p);
  }
  bpf::CtGc::Options o;
  o.sliceEntries = 1024;
  o.batchEntries = 256;
  bpf::CtGc g(fd_, o);
  ASSERT_FALSE(g.slice(now_)) << "10000 entries done in one slice of 1024";
  EXPECT_LE(g.pass().scanned, 1024u + 64u) << "a slice read more than its budget (plus one bucket)";
  EXPECT_LE(g.pass().removed.total(), 2 * g.pass().scanned);
  EXPECT_GE(count(), 2u * kPairs - 2 * g.pass().scanned);
  int slices = 1;
  while (!g.slice(now_) && slices < 100) {
    ++slices;
  }
  EXPECT_GE(slices, 4) << "8000 expired entries of 10000 in fewer slices than the budget allows";
  EXPECT_LT(slices, 100);
  EXPECT_EQ(g.pass().removed.expired, 2u * (kPairs - kPairs / 5));
  EXPECT_EQ(count(), 2u * (kPairs / 5));
  EXPECT_EQ(g.pass().kept, 2u * (kPairs / 5));
  // The next pass starts over and finds nothing to remove.
  bpf::CtGcPass again = g.runPass(now_);
  EXPECT_EQ(again.removed.total(), 0u);
  EXPECT_EQ(again.scanned, 2u * (kPairs / 5));
}

TEST_F(CtGcTest, MapFillIsCountedForHashesAndTries) {
  for (int i = 0; i < 3000; ++i) {
    put(pair("198.18.1.2", static_cast<uint16_t>(10000 + i), IPPROTO_UDP, now_).fk, sy_ct_entry{});
  }
  EXPECT_EQ(bpf::countMapEntries(fd_), 3000u);
  LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
  int trie = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "sy_ctgc_lpm", 8, 4, 64, &lpm);
  ASSERT_GE(trie, 0) << strerror(errno);
  for (uint32_t i = 0; i < 5; ++i) {
    uint32_t key[2] = {32, htonl(0xc6120000 + i)};
    ASSERT_EQ(bpf_map_update_elem(trie, key, &i, BPF_ANY), 0);
  }
  EXPECT_EQ(bpf::countMapEntries(trie), 5u) << "an LPM trie (no batch lookups) counted wrong";
  close(trie);
}

TEST(CtGcInterval, ShrinksWhenAPassRemovedMuchOrTheTableIsFullGrowsWhenQuiet_CiliumDynamicInterval) {
  bpf::CtGcIntervals b;
  bpf::CtGcPass busy;
  busy.scanned = 1000;
  busy.kept = 500;
  busy.removed.expired = 500;
  EXPECT_EQ(bpf::nextCtGcInterval(std::chrono::milliseconds(10000), busy, 100000, b).count(), 5000);
  bpf::CtGcPass full;
  full.scanned = full.kept = 90000;
  EXPECT_EQ(bpf::nextCtGcInterval(std::chrono::milliseconds(10000), full, 100000, b).count(), 5000);
  bpf::CtGcPass quiet;
  quiet.scanned = quiet.kept = 1000;
  EXPECT_EQ(bpf::nextCtGcInterval(std::chrono::milliseconds(10000), quiet, 100000, b).count(), 15000);
  EXPECT_EQ(bpf::nextCtGcInterval(std::chrono::milliseconds(50000), quiet, 100000, b).count(), 60000);
  EXPECT_EQ(bpf::nextCtGcInterval(std::chrono::milliseconds(1500), busy, 100000, b).count(), 1000);
}

TEST_F(CtGcTest, TheRunnerRemovesExpiredFlowsOffTheCallersThread) {
  // The runner reads the clock itself: stamps relative to the real one (61 s back: the
  // machine is up for longer than that by the time tests run).
  uint64_t clock = bpf::monotonicNowNs();
  ASSERT_GT(clock, 61 * kSec);
  Pair old = pair("198.18.1.2", 43000, IPPROTO_UDP, clock - 61 * kSec);
  Pair live = pair("198.18.1.2", 43001, IPPROTO_UDP, clock);
  put(old);
  put(live);
  bpf::CtGcRunner::Options o;
  o.intervals.initial = std::chrono::milliseconds(50);
  bpf::CtGcRunner runner(fd_, o);
  for (int i = 0; i < 200 && runner.stats().passes == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto s = runner.stats();
  ASSERT_GE(s.passes, 1u) << "no pass within 2 s";
  EXPECT_EQ(s.removed.expired, 2u);
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.maxEntries, 65536u);
  EXPECT_FALSE(has(old.fk) || has(old.rk));
  EXPECT_TRUE(has(live.fk) && has(live.rk));
}

// The real programs' entries: a flow made by packets, idle past its lifetime, is removed by
// the GC as a pair; a live one keeps translating both ways after the pass.
TEST_F(TcProgramTest, TheGcRemovesTheProgramsExpiredFlowsAndKeepsLiveOnes) {
  Packet oldReq = makePacket(IPPROTO_UDP, "198.18.1.2", 44000, "198.19.0.53", 53);
  ASSERT_EQ(run(Program::TcFromPod, oldReq).out.dst(), "198.18.16.3:5353");
  ageConntrack(-61 * static_cast<int64_t>(kSec));
  Packet liveReq = makePacket(IPPROTO_TCP, "198.18.1.2", 44001, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcFromPod, liveReq).out.dst(), "198.18.16.2:8080");
  ASSERT_EQ(ctEntries().size(), 4u);

  bpf::CtGc g(dp_->maps().ct, {});
  bpf::CtGcPass r = g.runPass(bpf::monotonicNowNs());
  EXPECT_EQ(r.removed.expired, 2u);
  EXPECT_EQ(r.kept, 2u);
  auto left = ctEntries();
  ASSERT_EQ(left.size(), 2u);
  for (const auto& [k, e] : left) {
    EXPECT_EQ(k.proto, IPPROTO_TCP) << "the expired UDP flow left an entry";
  }
  Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 44001, "198.19.0.10", 80, 0x10);
  EXPECT_EQ(run(Program::TcFromPod, ack).out.dst(), "198.18.16.2:8080");
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 44001, 0x10, "reply");
  EXPECT_EQ(run(Program::TcToPod, reply).out.src(), "198.19.0.10:80");
}

// A full conntrack (a plain hash, ct_v3) refuses a new flow, counted (tc_ct_full) and
// without leaving half of it behind, while the flows it tracks keep translating both ways;
// once the GC removes an expired flow, new flows get in again. (An LRU table would evict a
// live flow's entry instead, Cilium's and the old ct_v2's behaviour.)
class CtFullTest : public TcProgramTest {
 protected:
  CtFullTest() { options_.sizes.conntrack = 5; }  // two flows, and one slot: a reply fits, its forward not
};

TEST_F(CtFullTest, AFullTableRefusesNewFlowsCountedWhileTrackedFlowsKeepTranslating_CalicoCtFull) {
  Packet synA = makePacket(IPPROTO_TCP, "198.18.1.2", 45000, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcFromPod, synA).out.dst(), "198.18.16.2:8080");
  Packet reqB = makePacket(IPPROTO_UDP, "198.18.1.2", 45001, "198.19.0.53", 53);
  ASSERT_EQ(run(Program::TcFromPod, reqB).out.dst(), "198.18.16.3:5353");
  ASSERT_EQ(ctEntries().size(), 4u);

  // Flow C: its reply entry takes the last slot, its forward entry finds none.
  uint64_t full = counter(SY_REASON_TC_CT_FULL), dnat = counter(SY_REASON_TC_DNAT_NEW);
  Packet synC = makePacket(IPPROTO_TCP, "198.18.1.3", 45002, "198.19.0.10", 80, 0x02);
  Result c = run(Program::TcFromPod, synC);
  EXPECT_EQ(c.verdict, TC_ACT_SHOT) << "a new flow the table has no room for was let through untracked";
  EXPECT_EQ(counter(SY_REASON_TC_CT_FULL), full + 1);
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_NEW), dnat);
  EXPECT_EQ(ctEntries().size(), 4u) << "the refused flow left its reply entry (half a pair)";
  // The same SYN again (a retransmission): refused again, counted again.
  EXPECT_EQ(run(Program::TcFromPod, synC).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter(SY_REASON_TC_CT_FULL), full + 2);

  // The tracked flows: both directions still translated, nothing of theirs evicted.
  Packet ackA = makePacket(IPPROTO_TCP, "198.18.1.2", 45000, "198.19.0.10", 80, 0x10);
  EXPECT_EQ(run(Program::TcFromPod, ackA).out.dst(), "198.18.16.2:8080");
  Packet replyA = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 45000, 0x12, "reply");
  EXPECT_EQ(run(Program::TcToPod, replyA).out.src(), "198.19.0.10:80");
  EXPECT_EQ(run(Program::TcFromPod, reqB).out.dst(), "198.18.16.3:5353");
  Packet replyB = makePacket(IPPROTO_UDP, "198.18.16.3", 5353, "198.18.1.2", 45001, 0, "reply");
  EXPECT_EQ(run(Program::TcToPod, replyB).out.src(), "198.19.0.53:53");

  // B goes idle past its lifetime (A stays fresh); the GC frees its pair, C gets in.
  ageConntrack(-61 * static_cast<int64_t>(kSec));
  ASSERT_EQ(run(Program::TcFromPod, ackA).out.dst(), "198.18.16.2:8080");  // restamps A
  bpf::CtGc g(dp_->maps().ct, {});
  bpf::CtGcPass r = g.runPass(bpf::monotonicNowNs());
  EXPECT_EQ(r.removed.expired, 2u);
  EXPECT_EQ(r.kept, 2u);
  Result again = run(Program::TcFromPod, synC);
  EXPECT_EQ(again.verdict, TC_ACT_OK);
  EXPECT_EQ(again.out.dst(), "198.18.16.2:8080");
  EXPECT_EQ(counter(SY_REASON_TC_CT_FULL), full + 2);
  EXPECT_EQ(ctEntries().size(), 4u);
}

// The table full before the reply entry: refused the same way, nothing written.
TEST_F(CtFullTest, ANewFlowFindingNoRoomForItsReplyEntryIsRefused) {
  for (uint16_t port = 46000; port < 46002; ++port) {
    Packet req = makePacket(IPPROTO_UDP, "198.18.1.2", port, "198.19.0.53", 53);
    ASSERT_EQ(run(Program::TcFromPod, req).verdict, TC_ACT_OK);
  }
  sy_ct_key filler{};
  filler.proto = IPPROTO_UDP;
  filler.sport = htons(1);
  sy_ct_entry fe{};
  fe.last_seen_ns = bpf::monotonicNowNs();
  fe.dir = SY_CT_REPLY;
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().ct, &filler, &fe, BPF_NOEXIST), 0);
  ASSERT_EQ(ctEntries().size(), 5u);
  uint64_t full = counter(SY_REASON_TC_CT_FULL);
  Packet req = makePacket(IPPROTO_UDP, "198.18.1.2", 46009, "198.19.0.53", 53);
  EXPECT_EQ(run(Program::TcFromPod, req).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter(SY_REASON_TC_CT_FULL), full + 1);
  EXPECT_EQ(ctEntries().size(), 5u);
}

// conntrack.udpTimeout (and the TCP ones) reach the programs and the GC: with 5 s, a UDP
// flow idle 6 s is over for both (the default 60 s would keep it).
class CtLifetimeTest : public TcProgramTest {
 protected:
  CtLifetimeTest() {
    options_.ctLifetimes.otherNs = 5 * kSec;
    options_.ctLifetimes.tcpClosingNs = 2 * kSec;
  }
};

TEST_F(CtLifetimeTest, ConfiguredLifetimesReachTheProgramsAndTheGc_KubeProxyConntrackUdpTimeout) {
  Packet req = makePacket(IPPROTO_UDP, "198.18.1.2", 48000, "198.19.0.53", 53);
  ASSERT_EQ(run(Program::TcFromPod, req).out.dst(), "198.18.16.3:5353");
  ageConntrack(-4 * static_cast<int64_t>(kSec));
  Packet reply = makePacket(IPPROTO_UDP, "198.18.16.3", 5353, "198.18.1.2", 48000, 0, "reply");
  EXPECT_EQ(run(Program::TcToPod, reply).out.src(), "198.19.0.53:53") << "alive at 4 s of 5";
  ageConntrack(-6 * static_cast<int64_t>(kSec));
  EXPECT_EQ(run(Program::TcToPod, reply).out.bytes, reply.bytes) << "the program kept a flow idle past udpTimeout";
  EXPECT_TRUE(ctEntries().empty());

  // The GC with the same lifetimes: a UDP pair idle 6 s goes, a TCP one closed 3 s ago too.
  ASSERT_EQ(run(Program::TcFromPod, req).out.dst(), "198.18.16.3:5353");
  Packet fin = makePacket(IPPROTO_TCP, "198.18.1.2", 48001, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcFromPod, fin).out.dst(), "198.18.16.2:8080");
  Packet rst = makePacket(IPPROTO_TCP, "198.18.1.2", 48001, "198.19.0.10", 80, 0x04);
  ASSERT_EQ(run(Program::TcFromPod, rst).out.dst(), "198.18.16.2:8080");
  ageConntrack(-6 * static_cast<int64_t>(kSec));
  bpf::CtGc::Options o;
  o.lifetimes = options_.ctLifetimes;
  bpf::CtGc g(dp_->maps().ct, o);
  bpf::CtGcPass r = g.runPass(bpf::monotonicNowNs());
  EXPECT_EQ(r.removed.expired, 2u);
  EXPECT_EQ(r.removed.closed, 2u);
  EXPECT_TRUE(ctEntries().empty());
}

// An upgrade from the LRU table of ABI 2 (ct_v2): its flows are taken over into the plain
// hash ct_v3 (bpf/migrate.cpp registers the step), and the old pin goes once done.
TEST(CtV2Takeover, AnLruCtV2IsTakenOverAsTheCtV3HashWithItsFlows) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root (BPF)";
  }
  std::string pinPath = "/sys/fs/bpf/sy-ctgc-v2-" + std::to_string(getpid());
  ASSERT_TRUE(std::filesystem::create_directories(pinPath));
  struct Cleanup {
    std::string path;
    ~Cleanup() { bpf::cleanupPinPath(path); }
  } cleanup{pinPath};
  {
    int old = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "ct_v2", sizeof(sy_ct_key), sizeof(sy_ct_entry), 4096, nullptr);
    ASSERT_GE(old, 0) << strerror(errno);
    sy_ct_key k{};
    k.saddr = addr("198.18.1.2");
    k.daddr = addr("198.19.0.10");
    k.sport = htons(47000);
    k.dport = htons(80);
    k.proto = IPPROTO_TCP;
    sy_ct_entry e{};
    e.last_seen_ns = bpf::monotonicNowNs();
    e.nat_addr = addr("198.18.16.2");
    e.nat_port = htons(8080);
    e.dir = SY_CT_FORWARD;
    ASSERT_EQ(bpf_map_update_elem(old, &k, &e, BPF_ANY), 0);
    ASSERT_EQ(bpf_obj_pin(old, (pinPath + "/ct_v2").c_str()), 0) << strerror(errno);
    close(old);
  }
  std::string error;
  auto dp = bpf::Datapath::load({pinPath, {}}, error);
  ASSERT_TRUE(dp) << error;
  ASSERT_TRUE(dp->takingOver());
  auto shape = bpf::shapeOf(dp->maps().ct);
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->type, static_cast<uint32_t>(BPF_MAP_TYPE_HASH));
  EXPECT_EQ(bpf::countMapEntries(dp->maps().ct), 1u) << "the ct_v2 flow was not copied into ct_v3";
  dp->finishTakeover();
  EXPECT_FALSE(std::filesystem::exists(pinPath + "/ct_v2")) << "the old pin stayed";
  EXPECT_TRUE(std::filesystem::exists(pinPath + "/" + bpf::kPinCt));
  dp.reset();
}

}  // namespace
}  // namespace switchyard::bpftest
