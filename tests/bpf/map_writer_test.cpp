// The map writer against real maps: runs of one kind go to the kernel in batch system
// calls, and each operation still gets its own result when the kernel stops a batch at a
// failing element (a full map) or at an absent key (a delete of what is already gone).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "bpf/cleanup.h"
#include "bpf/datapath.h"
#include "bpf/map_writer.h"

namespace switchyard {
namespace {

lb::Backend backend(int i) {
  lb::IpAddr a = *lb::IpAddr::parse("198.18.16.0");
  a.bytes[15] = static_cast<uint8_t>(i);
  return {{a, 8080, lb::kProtoTCP}, false};
}

class MapWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF)";
    }
    static std::atomic<int> seq{0};
    pinPath_ = "/sys/fs/bpf/sy-mwtest-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    bpf::DatapathOptions opts{pinPath_, {}};
    opts.sizes.backends = 8;  // small, so the test can fill it
    std::string error;
    dp_ = bpf::Datapath::load(opts, error);
    ASSERT_TRUE(dp_) << error;
  }
  void TearDown() override {
    dp_.reset();
    if (!pinPath_.empty()) {
      auto report = bpf::cleanupPinPath(pinPath_);
      EXPECT_TRUE(report.errors.empty()) << report.errors.front();
      EXPECT_FALSE(std::filesystem::exists(pinPath_)) << "test pins left behind";
    }
  }
  std::string pinPath_;
  std::unique_ptr<bpf::Datapath> dp_;
};

TEST_F(MapWriterTest, ABatchStopsAtAFullMapAndEveryOperationGetsItsResult) {
  bpf::MapWriter w(dp_->maps());
  std::vector<lb::MapOp> ops;
  for (int i = 1; i <= 10; ++i) {
    ops.push_back(lb::MapOp::putBackend(static_cast<uint32_t>(i), backend(i)));
  }
  w.apply(ops);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(ops[i].result, 0) << "backend " << i + 1 << " fits";
  }
  EXPECT_EQ(ops[8].result, -E2BIG) << "the map holds 8";
  EXPECT_EQ(ops[9].result, -E2BIG);
  EXPECT_EQ(w.read().backends.size(), 8u);
  // One batch for the first 8 and the failure, then one call for the last.
  EXPECT_LE(w.syscalls(), 3u);

  // Deletes: absent keys (9, 10, 42) are not errors, and the batch goes on past them.
  std::vector<lb::MapOp> dels;
  for (uint32_t id : {1u, 9u, 2u, 42u, 3u, 10u}) {
    dels.push_back(lb::MapOp::deleteBackend(id));
  }
  w.apply(dels);
  for (const lb::MapOp& op : dels) {
    EXPECT_EQ(op.result, 0) << "delete of backend " << op.id;
  }
  auto st = w.read();
  EXPECT_EQ(st.backends.size(), 5u);
  EXPECT_EQ(st.backends.count(1), 0u);
  EXPECT_EQ(st.backends.count(4), 1u);
}

TEST_F(MapWriterTest, RunsOfOneKindAreOneSystemCallAndOrderIsKept) {
  bpf::MapWriter batched(dp_->maps());
  lb::FrontendKey fe{*lb::IpAddr::parse("198.19.0.10"), 80, lb::kProtoTCP};
  std::vector<lb::MapOp> ops;
  for (uint16_t s = 1; s <= 50; ++s) {
    ops.push_back(lb::MapOp::putSlot(fe, s, {7, 0, 0, {}}));
  }
  ops.push_back(lb::MapOp::putRevNat(3, fe));
  ops.push_back(lb::MapOp::putSlot(fe, 0, {0, 3, 50, {}}));
  batched.apply(ops);
  for (const lb::MapOp& op : ops) {
    ASSERT_EQ(op.result, 0);
  }
  EXPECT_EQ(batched.syscalls(), 3u) << "50 slots, a rev NAT entry, a head: three runs";
  auto st = batched.read();
  ASSERT_EQ(st.frontends.size(), 1u);
  EXPECT_EQ(st.frontends[0].backendIds.size(), 50u);
  EXPECT_EQ(st.frontends[0].revNatId, 3u);

  // The same writes one entry per call (the baseline the benchmarks compare with).
  bpf::MapWriter single(dp_->maps());
  single.setBatching(false);
  single.apply(ops);
  EXPECT_EQ(single.syscalls(), ops.size());
}

}  // namespace
}  // namespace switchyard
