// The real tc programs on crafted packets (BPF_PROG_TEST_RUN). Maps are seeded through the
// daemon's own syncer and map writer; nothing of the program or its maps is replaced.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <memory>
#include <set>

#include "bpf/abi.h"
#include "bpf/cleanup.h"
#include "bpf/datapath.h"
#include "bpf/map_writer.h"
#include "lb/syncer.h"
#include "metrics/datapath_counters.h"
#include "packets.h"

namespace switchyard::bpftest {
namespace {

using bpf::Datapath;
using Program = Datapath::Program;

lb::Frontend frontend(const char* vip, uint16_t port, uint8_t proto,
                      const std::vector<std::string>& backends, uint16_t backendPort) {
  lb::Frontend f;
  f.key = {*lb::IpAddr::parse(vip), port, proto};
  f.flags = lb::kFrontendClusterIP;
  for (const auto& b : backends) {
    f.backends.push_back({{*lb::IpAddr::parse(b), backendPort, proto}, false});
  }
  std::sort(f.backends.begin(), f.backends.end());
  return f;
}

class TcProgramTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF)";
    }
    static std::atomic<int> seq{0};
    pinPath_ = "/sys/fs/bpf/sy-bpftest-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    std::string error;
    dp_ = Datapath::load({pinPath_, {}}, error);
    ASSERT_TRUE(dp_) << error;
    writer_ = std::make_unique<bpf::MapWriter>(dp_->maps());
    syncer_ = std::make_unique<lb::Syncer>(*writer_);
    auto r = syncer_->syncOwner("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.2"}, 8080)});
    r.errors += syncer_->syncOwner("default/multi", {frontend("198.19.0.11", 80, lb::kProtoTCP,
                                                               {"198.18.16.2", "198.18.16.3", "198.18.16.4"}, 8080)}).errors;
    r.errors += syncer_->syncOwner("default/dns", {frontend("198.19.0.53", 53, lb::kProtoUDP, {"198.18.16.3"}, 5353)}).errors;
    r.errors += syncer_->syncOwner("default/empty", {frontend("198.19.0.12", 80, lb::kProtoTCP, {}, 8080)}).errors;
    r.errors += syncer_->syncOwner("default/web6", {frontend("2001:db8:1::10", 80, lb::kProtoTCP, {"2001:db8:16::2"}, 8080)}).errors;
    r.errors += syncer_->syncOwner("default/dns6", {frontend("2001:db8:1::53", 53, lb::kProtoUDP, {"2001:db8:16::3"}, 5353)}).errors;
    ASSERT_EQ(r.errors, 0u);
  }

  void TearDown() override {
    syncer_.reset();
    writer_.reset();
    dp_.reset();
    if (!pinPath_.empty()) {
      auto report = bpf::cleanupPinPath(pinPath_);
      EXPECT_TRUE(report.errors.empty()) << report.errors.front();
      EXPECT_FALSE(std::filesystem::exists(pinPath_)) << "test pins left behind";
    }
  }

  struct Result {
    int verdict = -1;
    Packet out;
  };

  Result run(Program prog, const Packet& in) {
    Result r;
    r.out.bytes.assign(in.bytes.size() + 64, 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(),
                .data_out = r.out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(r.out.bytes.size()), .repeat = 1);
    int err = bpf_prog_test_run_opts(dp_->programFd(prog), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN failed: " << strerror(-err);
    r.out.bytes.resize(opts.data_size_out);
    r.verdict = static_cast<int>(opts.retval);
    return r;
  }

  uint64_t counter(enum sy_reason reason) {
    metrics::DatapathCounters::Totals t;
    EXPECT_TRUE(metrics::DatapathCounters::read(dp_->maps().counters, t));
    return t.packets.at(reason);
  }

  std::string pinPath_;
  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<bpf::MapWriter> writer_;
  std::unique_ptr<lb::Syncer> syncer_;
};

// One row per behaviour: a packet into ingress, the verdict and destination expected.
struct IngressCase {
  const char* name;
  const char* saddr;
  uint8_t proto;
  const char* daddr;
  uint16_t dport;
  int verdict;
  const char* expectDst;  // after the program; "" = packet must be byte-for-byte unchanged
  enum sy_reason counted;
};

class TcIngress : public TcProgramTest, public ::testing::WithParamInterface<IngressCase> {};

TEST_P(TcIngress, Packet) {
  const IngressCase& c = GetParam();
  Packet in = makePacket(c.proto, c.saddr, 40000, c.daddr, c.dport);
  uint64_t before = counter(c.counted);
  Result r = run(Program::TcIngress, in);
  EXPECT_EQ(r.verdict, c.verdict);
  EXPECT_EQ(counter(c.counted), before + 1) << "reason " << metrics::reasonNames()[c.counted] << " not counted";
  if (std::string(c.expectDst).empty()) {
    EXPECT_EQ(r.out.bytes, in.bytes) << "a packet that is not ours must pass untouched";
    return;
  }
  EXPECT_EQ(r.out.dst(), c.expectDst) << "destination hasn't been NATed to the backend";
  EXPECT_EQ(r.out.src(), in.src()) << "the source must stay the client's";
  EXPECT_TRUE(r.out.ipChecksumOk()) << "IPv4 header checksum broken by DNAT";
  EXPECT_TRUE(r.out.l4ChecksumOk()) << "L4 checksum broken by DNAT";
}

INSTANTIATE_TEST_SUITE_P(
    Table, TcIngress,
    ::testing::Values(
        IngressCase{"tcp_to_clusterip_is_dnated", "198.18.1.2", IPPROTO_TCP, "198.19.0.10", 80,
                    TC_ACT_OK, "198.18.16.2:8080", SY_REASON_TC_DNAT_NEW},
        IngressCase{"udp_to_clusterip_is_dnated", "198.18.1.2", IPPROTO_UDP, "198.19.0.53", 53,
                    TC_ACT_OK, "198.18.16.3:5353", SY_REASON_TC_DNAT_NEW},
        IngressCase{"vip_without_backends_is_dropped", "198.18.1.2", IPPROTO_TCP, "198.19.0.12", 80,
                    TC_ACT_SHOT, "", SY_REASON_TC_NO_BACKEND},
        IngressCase{"tcp6_to_clusterip_is_dnated", "2001:db8:1::2", IPPROTO_TCP, "2001:db8:1::10", 80,
                    TC_ACT_OK, "[2001:db8:16::2]:8080", SY_REASON_TC_DNAT_NEW},
        IngressCase{"udp6_to_clusterip_is_dnated", "2001:db8:1::2", IPPROTO_UDP, "2001:db8:1::53", 53,
                    TC_ACT_OK, "[2001:db8:16::3]:5353", SY_REASON_TC_DNAT_NEW}),
    [](const auto& info) { return std::string(info.param.name); });

// The no-backend row checks "unchanged" only because a dropped packet is not rewritten; the
// verdict is the point. An unknown address must pass and count nothing.
TEST_F(TcProgramTest, UnknownAddressOrPortPassesUntouchedAndUncounted) {
  for (auto [addr, port] : {std::pair{"198.18.16.9", 80}, std::pair{"198.19.0.10", 81}}) {
    Packet in = makePacket(IPPROTO_TCP, "198.18.1.2", 40000, addr, static_cast<uint16_t>(port));
    uint64_t dnat = counter(SY_REASON_TC_DNAT_NEW);
    Result r = run(Program::TcIngress, in);
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
    Result fwd = run(Program::TcIngress, req);
    ASSERT_EQ(fwd.verdict, TC_ACT_OK);
    std::string backend = fwd.out.dst();
    auto colon = backend.rfind(':');
    std::string backendAddr = backend.substr(0, colon);
    if (backendAddr.front() == '[') {
      backendAddr = backendAddr.substr(1, backendAddr.size() - 2);
    }
    Packet reply = makePacket(f.proto, backendAddr.c_str(),
                              static_cast<uint16_t>(std::stoi(backend.substr(colon + 1))), f.client,
                              40001, 0x12 /* SYN|ACK */, "reply");
    uint64_t before = counter(SY_REASON_TC_REVNAT);
    Result rev = run(Program::TcEgress, reply);
    EXPECT_EQ(rev.verdict, TC_ACT_OK);
    EXPECT_EQ(rev.out.src(), f.vipText) << "reply source hasn't been translated back to the ClusterIP";
    EXPECT_EQ(rev.out.dst(), reply.dst());
    EXPECT_TRUE(rev.out.ipChecksumOk());
    EXPECT_TRUE(rev.out.l4ChecksumOk());
    EXPECT_EQ(counter(SY_REASON_TC_REVNAT), before + 1);
  }
}

TEST_F(TcProgramTest, ADirectConnectionReusingAnOldTranslatedTupleIsNotRewritten) {
  // A client talks to the ClusterIP from port 40010 and closes; later it connects to the
  // backend's pod IP directly from the same port. The old reply entry must not turn the
  // direct connection's replies into ClusterIP packets (the client would reset them).
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40010, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcIngress, syn).out.dst(), "198.18.16.2:8080");
  Packet direct = makePacket(IPPROTO_TCP, "198.18.1.2", 40010, "198.18.16.2", 8080, 0x02);
  Result d = run(Program::TcIngress, direct);
  EXPECT_EQ(d.out.bytes, direct.bytes);
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 40010, 0x12, "reply");
  Result r = run(Program::TcEgress, reply);
  EXPECT_EQ(r.out.bytes, reply.bytes) << "a direct connection's reply was rewritten by a stale entry";
}

TEST_F(TcProgramTest, ReplyOfAnUntrackedFlowPassesUntouched) {
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 45000, 0x12);
  Result r = run(Program::TcEgress, reply);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out.bytes, reply.bytes);
}

TEST_F(TcProgramTest, AFlowStaysOnItsBackendThroughConntrack) {
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40002, "198.19.0.11", 80, 0x02);
  std::string first = run(Program::TcIngress, syn).out.dst();
  uint64_t ctHits = counter(SY_REASON_TC_DNAT_CT);
  for (int i = 0; i < 20; ++i) {
    Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 40002, "198.19.0.11", 80, 0x10);
    EXPECT_EQ(run(Program::TcIngress, ack).out.dst(), first) << "packet " << i << " of the flow changed backend";
  }
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_CT), ctHits + 20);
}

// Both directions of a flow run at once on different CPUs: the ingress of one may stamp
// an entry after the egress of the other read the clock. Such a stamp, later than the
// packet's own clock reading, is fresh: the reply is still translated, its entry kept, and
// the flow stays on its backend (not re-chosen, which with several backends would move it).
TEST_F(TcProgramTest, AnEntryStampedByAnotherCpuAfterThisPacketReadTheClockIsAlive) {
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 40020, "198.19.0.11", 80, 0x02);
  std::string backend = run(Program::TcIngress, syn).out.dst();
  ASSERT_FALSE(backend.empty());
  auto colon = backend.rfind(':');
  std::string backendAddr = backend.substr(0, colon);
  uint16_t backendPort = static_cast<uint16_t>(std::stoi(backend.substr(colon + 1)));

  // Move the flow's two entries one second into the future, as a concurrent CPU's later
  // clock reading would.
  timespec ts{};
  ASSERT_EQ(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
  uint64_t future = static_cast<uint64_t>(ts.tv_sec + 1) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  int ct = dp_->maps().ct;
  int entries = 0;
  sy_ct_key key{}, next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(ct, prev, &next) == 0) {
    sy_ct_entry e{};
    ASSERT_EQ(bpf_map_lookup_elem(ct, &next, &e), 0);
    e.last_seen_ns = future;
    ASSERT_EQ(bpf_map_update_elem(ct, &next, &e, BPF_EXIST), 0);
    ++entries;
    key = next;
    prev = &key;
  }
  ASSERT_EQ(entries, 2) << "a translated flow has a forward and a reply entry";

  Packet reply = makePacket(IPPROTO_TCP, backendAddr.c_str(), backendPort, "198.18.1.2", 40020, 0x12, "reply");
  Result rev = run(Program::TcEgress, reply);
  EXPECT_EQ(rev.out.src(), "198.19.0.11:80") << "the reply of a live flow reached the client untranslated";
  Result again = run(Program::TcEgress, reply);
  EXPECT_EQ(again.out.src(), "198.19.0.11:80") << "the first reply deleted the flow's reply entry";

  uint64_t ctHits = counter(SY_REASON_TC_DNAT_CT);
  uint64_t fresh = counter(SY_REASON_TC_DNAT_NEW);
  for (int i = 0; i < 20; ++i) {
    Packet ack = makePacket(IPPROTO_TCP, "198.18.1.2", 40020, "198.19.0.11", 80, 0x10);
    EXPECT_EQ(run(Program::TcIngress, ack).out.dst(), backend) << "packet " << i << " of the flow changed backend";
  }
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_CT), ctHits + 20) << "packets of a live flow missed its entry";
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_NEW), fresh) << "a live flow was balanced again";
}

TEST_F(TcProgramTest, NewFlowsSpreadOverEveryBackend) {
  std::set<std::string> seen;
  for (uint16_t sport = 41000; sport < 41200 && seen.size() < 3; ++sport) {
    Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", sport, "198.19.0.11", 80, 0x02);
    seen.insert(run(Program::TcIngress, syn).out.dst());
  }
  EXPECT_THAT(seen, ::testing::ElementsAre("198.18.16.2:8080", "198.18.16.3:8080", "198.18.16.4:8080"));
}

TEST_F(TcProgramTest, UdpWithoutChecksumKeepsNoChecksum) {
  Packet in = makePacket(IPPROTO_UDP, "198.18.1.2", 40003, "198.19.0.53", 53);
  std::memset(in.l4() + 6, 0, 2);  // UDP checksum 0: none
  Result r = run(Program::TcIngress, in);
  EXPECT_EQ(r.out.dst(), "198.18.16.3:5353");
  EXPECT_EQ(r.out.l4csum(), 0) << "a zero UDP checksum must stay zero";
  EXPECT_TRUE(r.out.ipChecksumOk());
}

TEST_F(TcProgramTest, ARemovedBackendGetsNoNewFlows) {
  auto r = syncer_->syncOwner("default/multi", {frontend("198.19.0.11", 80, lb::kProtoTCP, {"198.18.16.2", "198.18.16.4"}, 8080)});
  ASSERT_EQ(r.errors, 0u);
  for (uint16_t sport = 42000; sport < 42100; ++sport) {
    Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", sport, "198.19.0.11", 80, 0x02);
    EXPECT_NE(run(Program::TcIngress, syn).out.dst(), "198.18.16.3:8080") << "removed backend chosen";
  }
}

TEST_F(TcProgramTest, AFlowWhoseBackendWasDeletedMovesToALiveOne) {
  // 198.18.16.7 belongs to this service only, so removing it deletes the backend entry.
  // (A backend another service still uses lives on, and so do its flows, as with
  // kube-proxy, whose conntrack keeps established flows on a removed endpoint.)
  ASSERT_EQ(syncer_->syncOwner("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.7"}, 8080)}).errors, 0u);
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 43000, "198.19.0.10", 80, 0x02);
  ASSERT_EQ(run(Program::TcIngress, syn).out.dst(), "198.18.16.7:8080");
  auto r = syncer_->syncOwner("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.5"}, 8080)});
  ASSERT_EQ(r.errors, 0u);
  Packet next = makePacket(IPPROTO_TCP, "198.18.1.2", 43000, "198.19.0.10", 80, 0x10);
  EXPECT_EQ(run(Program::TcIngress, next).out.dst(), "198.18.16.5:8080");
}

TEST_F(TcProgramTest, FragmentsPassUntouched) {
  Packet in = makePacket(IPPROTO_UDP, "198.18.1.2", 40004, "198.19.0.53", 53);
  in.ip()->frag_off = htons(0x2000);  // MF, offset 0: first fragment
  in.fixChecksums();
  uint64_t before = counter(SY_REASON_TC_FRAGMENT);
  Result r = run(Program::TcIngress, in);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out.bytes, in.bytes);
  EXPECT_EQ(counter(SY_REASON_TC_FRAGMENT), before + 1);
}

}  // namespace
}  // namespace switchyard::bpftest
