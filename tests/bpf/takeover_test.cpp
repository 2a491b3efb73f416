// Taking pinned maps over when their size or layout changed (bpf/migrate.h): the copy itself
// on maps of every kind the datapath uses, and a daemon's takeover of a resized conntrack map
// under traffic, with the packets of flows that began after the copy handed to the programs
// it replaced. Cilium and Calico recreate a resized conntrack map and drop its flows; this is
// the behaviour without that outage.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "bpf/migrate.h"
#include "bpf/unique_fd.h"
#include "tc_fixture.h"
#include "shell.h"

namespace switchyard::bpftest {
namespace {

using bpf::CopyMode;
using bpf::CopyStats;
using bpf::UniqueFd;

UniqueFd makeMap(bpf_map_type type, uint32_t key, uint32_t value, uint32_t entries, uint32_t flags = 0,
                 int innerFd = -1) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  if (innerFd >= 0) {
    opts.inner_map_fd = static_cast<uint32_t>(innerFd);
  }
  return UniqueFd(bpf_map_create(type, "sy_copy_test", key, value, entries, &opts));
}

class MapCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF)";
    }
  }
};

TEST_F(MapCopyTest, AHashIsCopiedIntoALargerOneEntryByEntry) {
  UniqueFd from = makeMap(BPF_MAP_TYPE_HASH, 4, 8, 4);
  UniqueFd to = makeMap(BPF_MAP_TYPE_HASH, 4, 8, 16);
  ASSERT_TRUE(from.valid() && to.valid()) << strerror(errno);
  for (uint32_t k = 1; k <= 4; ++k) {
    uint64_t v = k * 100;
    ASSERT_EQ(bpf_map_update_elem(from.get(), &k, &v, BPF_ANY), 0);
  }
  CopyStats st;
  std::string error;
  ASSERT_TRUE(bpf::copyEntries(from.get(), to.get(), nullptr, CopyMode::Overwrite, st, error)) << error;
  EXPECT_EQ(st.copied, 4u);
  for (uint32_t k = 1; k <= 4; ++k) {
    uint64_t v = 0;
    ASSERT_EQ(bpf_map_lookup_elem(to.get(), &k, &v), 0) << k;
    EXPECT_EQ(v, k * 100);
  }
}

TEST_F(MapCopyTest, ACopyIntoASmallerMapCountsWhatDidNotFit) {
  UniqueFd from = makeMap(BPF_MAP_TYPE_HASH, 4, 8, 8);
  UniqueFd to = makeMap(BPF_MAP_TYPE_HASH, 4, 8, 3);
  for (uint32_t k = 1; k <= 5; ++k) {
    uint64_t v = k;
    ASSERT_EQ(bpf_map_update_elem(from.get(), &k, &v, BPF_ANY), 0);
  }
  CopyStats st;
  std::string error;
  ASSERT_TRUE(bpf::copyEntries(from.get(), to.get(), nullptr, CopyMode::Overwrite, st, error)) << error;
  EXPECT_EQ(st.copied, 3u);
  EXPECT_EQ(st.failed, 2u);
  EXPECT_EQ(st.firstErrno, E2BIG);
}

TEST_F(MapCopyTest, KeepExistingLeavesTheNewMapsOwnEntries) {
  UniqueFd from = makeMap(BPF_MAP_TYPE_LRU_HASH, 4, 8, 16);
  UniqueFd to = makeMap(BPF_MAP_TYPE_LRU_HASH, 4, 8, 32);
  uint32_t k1 = 1, k2 = 2;
  uint64_t oldV = 1, newV = 2;
  ASSERT_EQ(bpf_map_update_elem(from.get(), &k1, &oldV, BPF_ANY), 0);
  ASSERT_EQ(bpf_map_update_elem(from.get(), &k2, &oldV, BPF_ANY), 0);
  ASSERT_EQ(bpf_map_update_elem(to.get(), &k1, &newV, BPF_ANY), 0);  // the new programs' own
  CopyStats st;
  std::string error;
  ASSERT_TRUE(bpf::copyEntries(from.get(), to.get(), nullptr, CopyMode::KeepExisting, st, error)) << error;
  uint64_t v = 0;
  ASSERT_EQ(bpf_map_lookup_elem(to.get(), &k1, &v), 0);
  EXPECT_EQ(v, newV) << "a later copy must not overwrite what the new programs wrote";
  ASSERT_EQ(bpf_map_lookup_elem(to.get(), &k2, &v), 0);
  EXPECT_EQ(v, oldV);
  EXPECT_EQ(st.copied, 1u);
  EXPECT_EQ(st.skipped, 1u);
}

TEST_F(MapCopyTest, PerCpuCountersAreAddedToTheNewOnes) {
  int cpus = libbpf_num_possible_cpus();
  ASSERT_GT(cpus, 0);
  UniqueFd from = makeMap(BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(sy_counter), 4);
  UniqueFd to = makeMap(BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(sy_counter), 8);
  std::vector<sy_counter> a(cpus), b(cpus);
  for (int c = 0; c < cpus; ++c) {
    a[c] = {static_cast<uint64_t>(10 + c), 1000};
    b[c] = {1, 1};
  }
  uint32_t idx = 2;
  ASSERT_EQ(bpf_map_update_elem(from.get(), &idx, a.data(), BPF_ANY), 0);
  ASSERT_EQ(bpf_map_update_elem(to.get(), &idx, b.data(), BPF_ANY), 0);
  CopyStats st;
  std::string error;
  ASSERT_TRUE(bpf::copyEntries(from.get(), to.get(), nullptr, CopyMode::AddCounters, st, error)) << error;
  std::vector<sy_counter> got(cpus);
  ASSERT_EQ(bpf_map_lookup_elem(to.get(), &idx, got.data()), 0);
  for (int c = 0; c < cpus; ++c) {
    EXPECT_EQ(got[c].packets, 11u + c) << "cpu " << c;
    EXPECT_EQ(got[c].bytes, 1001u) << "cpu " << c;
  }
}

TEST_F(MapCopyTest, LpmTriePrefixesAreCopied) {
  struct Key {
    uint32_t prefixlen;
    uint8_t addr[4];
  };
  UniqueFd from = makeMap(BPF_MAP_TYPE_LPM_TRIE, sizeof(Key), 4, 8, BPF_F_NO_PREALLOC);
  UniqueFd to = makeMap(BPF_MAP_TYPE_LPM_TRIE, sizeof(Key), 4, 16, BPF_F_NO_PREALLOC);
  ASSERT_TRUE(from.valid() && to.valid()) << strerror(errno);
  Key k16{16, {198, 18, 0, 0}}, k24{24, {198, 18, 7, 0}};
  uint32_t v16 = 16, v24 = 24;
  ASSERT_EQ(bpf_map_update_elem(from.get(), &k16, &v16, BPF_ANY), 0);
  ASSERT_EQ(bpf_map_update_elem(from.get(), &k24, &v24, BPF_ANY), 0);
  CopyStats st;
  std::string error;
  ASSERT_TRUE(bpf::copyEntries(from.get(), to.get(), nullptr, CopyMode::Overwrite, st, error)) << error;
  EXPECT_EQ(st.copied, 2u);
  Key probe{32, {198, 18, 7, 9}};
  uint32_t v = 0;
  ASSERT_EQ(bpf_map_lookup_elem(to.get(), &probe, &v), 0);
  EXPECT_EQ(v, 24u) << "the longest prefix matches in the copy too";
}

TEST_F(MapCopyTest, AMapOfMapsKeepsTheSameInnerMaps) {
  UniqueFd inner = makeMap(BPF_MAP_TYPE_ARRAY, 4, 4, 4);
  ASSERT_TRUE(inner.valid());
  UniqueFd from = makeMap(BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 4, 0, inner.get());
  UniqueFd to = makeMap(BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 8, 0, inner.get());
  ASSERT_TRUE(from.valid() && to.valid()) << strerror(errno);
  uint32_t k = 7, fd = static_cast<uint32_t>(inner.get());
  ASSERT_EQ(bpf_map_update_elem(from.get(), &k, &fd, BPF_ANY), 0);
  CopyStats st;
  std::string error;
  ASSERT_TRUE(bpf::copyEntries(from.get(), to.get(), nullptr, CopyMode::Overwrite, st, error)) << error;
  uint32_t idFrom = 0, idTo = 0;
  ASSERT_EQ(bpf_map_lookup_elem(from.get(), &k, &idFrom), 0);
  ASSERT_EQ(bpf_map_lookup_elem(to.get(), &k, &idTo), 0);
  EXPECT_EQ(idTo, idFrom) << "the copy must point at the same inner map";
}

TEST_F(MapCopyTest, ALayoutChangeWithoutAConversionIsRefused) {
  UniqueFd from = makeMap(BPF_MAP_TYPE_HASH, 4, 8, 4);
  UniqueFd to = makeMap(BPF_MAP_TYPE_HASH, 4, 16, 4);
  CopyStats st;
  std::string error;
  EXPECT_FALSE(bpf::copyEntries(from.get(), to.get(), nullptr, CopyMode::Overwrite, st, error));
  EXPECT_NE(error.find("no conversion"), std::string::npos) << error;
}

TEST_F(MapCopyTest, AppendedFieldsAreZeroAfterTheConversion) {
  UniqueFd from = makeMap(BPF_MAP_TYPE_HASH, 4, 8, 4);
  UniqueFd to = makeMap(BPF_MAP_TYPE_HASH, 4, 16, 4);
  uint32_t k = 3;
  uint64_t v = 0x1122334455667788ull;
  ASSERT_EQ(bpf_map_update_elem(from.get(), &k, &v, BPF_ANY), 0);
  CopyStats st;
  std::string error;
  ASSERT_TRUE(bpf::copyEntries(from.get(), to.get(), bpf::convertAppendedFields, CopyMode::Overwrite, st, error))
      << error;
  uint64_t got[2] = {1, 1};
  ASSERT_EQ(bpf_map_lookup_elem(to.get(), &k, got), 0);
  EXPECT_EQ(got[0], v);
  EXPECT_EQ(got[1], 0u);
}

// A daemon (dp1) serving a pod-facing device, then a new daemon (dp2) started with a larger
// conntrack map on the same pin path, in a network namespace of the test's own.
class TakeoverTest : public ::testing::Test {
 protected:
  using Program = bpf::Datapath::Program;

  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF, network namespaces)";
    }
    origNetns_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    inNetns_ = true;
    ASSERT_EQ(sh("ip link add sytk0 type veth peer name sytk1 && ip link set sytk0 up"), "");
    static std::atomic<int> seq{0};
    pinPath_ = "/sys/fs/bpf/sy-takeover-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    std::string error;
    bpf::DatapathOptions o{pinPath_, {}};
    o.sizes.conntrack = 4096;
    dp1_ = bpf::Datapath::load(o, error);
    ASSERT_TRUE(dp1_) << error;
    EXPECT_FALSE(dp1_->takingOver());
    writer1_ = std::make_unique<bpf::MapWriter>(dp1_->maps());
    syncer1_ = std::make_unique<lb::Syncer>(*writer1_);
    ASSERT_EQ(syncer1_->syncOwner("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.2"}, 8080)})
                  .errors,
              0u);
    auto res = dp1_->attachTc("sytk0", bpf::TcRole::Pod);
    ASSERT_EQ(res.status, bpf::Datapath::TcAttachResult::Status::Attached) << res.error;
  }

  void TearDown() override {
    syncer2_.reset();
    writer2_.reset();
    syncer1_.reset();
    writer1_.reset();
    dp2_.reset();
    dp1_.reset();
    if (!pinPath_.empty()) {
      auto report = bpf::cleanupPinPath(pinPath_);
      EXPECT_TRUE(report.errors.empty()) << report.errors.front();
      EXPECT_FALSE(std::filesystem::exists(pinPath_)) << "test pins left behind";
    }
    if (inNetns_) {
      EXPECT_EQ(::setns(origNetns_.get(), CLONE_NEWNET), 0);  // the namespace goes with its last user
    }
  }

  void loadSecond(uint32_t conntrack) {
    std::string error;
    bpf::DatapathOptions o{pinPath_, {}};
    o.sizes.conntrack = conntrack;
    dp2_ = bpf::Datapath::load(o, error);
    ASSERT_TRUE(dp2_) << error;
    writer2_ = std::make_unique<bpf::MapWriter>(dp2_->maps());
    syncer2_ = std::make_unique<lb::Syncer>(*writer2_);
    syncer2_->adopt(writer2_->read());
  }

  Packet runFd(int fd, const Packet& in, int* verdict = nullptr) {
    Packet out;
    out.l3off = in.l3off;
    out.bytes.assign(in.bytes.size() + 256, 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(), .data_out = out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(out.bytes.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(fd, &opts), 0);
    out.bytes.resize(opts.data_size_out);
    if (verdict) *verdict = static_cast<int>(opts.retval);
    return out;
  }

  static uint32_t maxEntries(int fd) { return bpf::shapeOf(fd)->maxEntries; }
  static uint32_t pinnedMaxEntries(const std::string& path) {
    UniqueFd fd(bpf_obj_get(path.c_str()));
    return fd.valid() ? maxEntries(fd.get()) : 0;
  }
  static bool hasKey(int ct, const Packet& p) {
    sy_ct_key k{};
    k.saddr = bpf::toSyAddr(*lb::IpAddr::parse(splitHostPort(p.src()).first));
    k.daddr = bpf::toSyAddr(*lb::IpAddr::parse(splitHostPort(p.dst()).first));
    k.sport = htons(p.sport());
    k.dport = htons(p.dport());
    k.proto = p.proto();
    sy_ct_entry e{};
    return bpf_map_lookup_elem(ct, &k, &e) == 0;
  }
  uint64_t counter(enum sy_reason r) {
    metrics::DatapathCounters::Totals t;
    EXPECT_TRUE(metrics::DatapathCounters::read(dp2_->maps().counters, t));
    return t.packets.at(r);
  }

  UniqueFd origNetns_;
  bool inNetns_ = false;
  std::string pinPath_;
  std::unique_ptr<bpf::Datapath> dp1_, dp2_;
  std::unique_ptr<bpf::MapWriter> writer1_, writer2_;
  std::unique_ptr<lb::Syncer> syncer1_, syncer2_;
};

TEST_F(TakeoverTest, ALargerConntrackIsTakenOverWithItsFlowsAndPinnedInPlace) {
  Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", 41000, "198.19.0.10", 80);
  ASSERT_EQ(runFd(dp1_->programFd(Program::TcFromPod), syn).dst(), "198.18.16.2:8080");
  int oldCt = dp1_->maps().ct;
  ASSERT_TRUE(hasKey(oldCt, syn));

  loadSecond(8192);
  ASSERT_TRUE(dp2_->takingOver());
  EXPECT_EQ(maxEntries(dp2_->maps().ct), 8192u);
  EXPECT_EQ(pinnedMaxEntries(pinPath_ + "/" + bpf::kPinCt), 8192u) << "the new map is pinned in the old one's place";
  EXPECT_TRUE(hasKey(dp2_->maps().ct, syn)) << "the flow was copied into the new map at load";
  // Maps of the same size are shared, not copied: the service the first daemon wrote is there.
  auto state = writer2_->read();
  EXPECT_EQ(state.frontends.size(), 1u);

  // The reply of the copied flow is translated by the new programs on their own.
  Packet reply = makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 41000, 0x12, "reply");
  EXPECT_EQ(runFd(dp2_->programFd(Program::TcToPod), reply).src(), "198.19.0.10:80");

  dp2_->finishTakeover();
  EXPECT_FALSE(dp2_->takingOver());
  EXPECT_EQ(pinnedMaxEntries(pinPath_ + "/" + bpf::kPinCt), 8192u);
}

TEST_F(TakeoverTest, FlowsBegunAfterTheCopyAreHandedToTheReplacedProgramsUntilTheLastCopy) {
  loadSecond(8192);
  ASSERT_TRUE(dp2_->takingOver());
  // The window: dp1's programs still serve the device while dp2 has copied the old map.
  // Flows begun now are in the old conntrack only, on the one backend web had then.
  int oldFromPod = dp1_->programFd(Program::TcFromPod);
  std::vector<Packet> acks;
  for (uint16_t i = 0; i < 32; ++i) {
    uint16_t port = static_cast<uint16_t>(42000 + i);
    Packet syn = makePacket(IPPROTO_TCP, "198.18.1.2", port, "198.19.0.10", 80);
    ASSERT_EQ(runFd(oldFromPod, syn).dst(), "198.18.16.2:8080");
    ASSERT_FALSE(hasKey(dp2_->maps().ct, syn));
    acks.push_back(makePacket(IPPROTO_TCP, "198.18.1.2", port, "198.19.0.10", 80, 0x10 /* ACK */));
  }
  // Web grows to four backends: a flow chosen afresh would land on any of them.
  ASSERT_EQ(syncer2_
                ->syncOwner("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP,
                                                     {"198.18.16.2", "198.18.16.3", "198.18.16.4", "198.18.16.5"},
                                                     8080)})
                .errors,
            0u);
  // The new daemon attaches: it replaces dp1's programs, and learns them as the previous ones.
  auto res = dp2_->attachTc("sytk0", bpf::TcRole::Pod);
  ASSERT_EQ(res.status, bpf::Datapath::TcAttachResult::Status::Attached) << res.error;

  uint64_t handed = counter(SY_REASON_TC_UPGRADE_HANDOFF);
  int newFromPod = dp2_->programFd(Program::TcFromPod);
  for (const Packet& ack : acks) {
    EXPECT_EQ(runFd(newFromPod, ack).dst(), "198.18.16.2:8080")
        << "a flow the old conntrack tracks keeps its backend (port " << ack.sport() << ")";
  }
  EXPECT_EQ(counter(SY_REASON_TC_UPGRADE_HANDOFF), handed + acks.size());
  // A new connection is the new programs' own: not handed off, tracked in the new map.
  Packet fresh = makePacket(IPPROTO_TCP, "198.18.1.2", 43000, "198.19.0.10", 80);
  runFd(newFromPod, fresh);
  EXPECT_TRUE(hasKey(dp2_->maps().ct, fresh));
  EXPECT_FALSE(hasKey(dp1_->maps().ct, fresh));
  EXPECT_EQ(counter(SY_REASON_TC_UPGRADE_HANDOFF), handed + acks.size());

  dp2_->finishTakeover();
  for (const Packet& ack : acks) {
    EXPECT_TRUE(hasKey(dp2_->maps().ct, ack)) << "the last copies bring the window's flows over";
    EXPECT_EQ(runFd(newFromPod, ack).dst(), "198.18.16.2:8080");
  }
  EXPECT_EQ(counter(SY_REASON_TC_UPGRADE_HANDOFF), handed + acks.size())
      << "after the takeover nothing is handed off";
}

TEST_F(TakeoverTest, MapsOfANewerLayoutAreRefusedAndLeftAsTheyAre) {
  // A downgrade: the pinned maps say a newer daemon made them.
  uint32_t zero = 0;
  sy_meta meta{};
  meta.abi_version = SY_ABI_VERSION + 1;
  ASSERT_EQ(bpf_map_update_elem(dp1_->maps().meta, &zero, &meta, BPF_ANY), 0);
  std::string error;
  bpf::DatapathOptions o{pinPath_, {}};
  o.sizes.conntrack = 8192;
  EXPECT_FALSE(bpf::Datapath::load(o, error));
  EXPECT_NE(error.find("newer than this daemon's"), std::string::npos) << error;
  EXPECT_EQ(pinnedMaxEntries(pinPath_ + "/" + bpf::kPinCt), 4096u) << "nothing was replaced";
}

}  // namespace
}  // namespace switchyard::bpftest
