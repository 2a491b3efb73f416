// The pin path: created on a bpffs, or nothing left behind; one daemon per pin path.
// Unprivileged: the mount is a stand-in where it would have to succeed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "bpf/bpffs.h"

namespace switchyard::bpf {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class PinPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sy-bpffs-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A mount(2) that records its target and fails like an unprivileged one.
  MountFn failingMount() {
    return [this](const char*, const char* target, const char* fstype, unsigned long, const void*) {
      targets_.push_back(target);
      EXPECT_STREQ(fstype, "bpf");
      errno = EPERM;
      return -1;
    };
  }

  fs::path dir_;
  std::vector<std::string> targets_;
};

TEST_F(PinPathTest, OutsideSysFsBpfBpffsIsMountedAtThePinPathAndAFailureLeavesNoDirectory) {
  fs::path pin = dir_ / "a" / "b" / "pins";
  std::string error;
  EXPECT_FALSE(ensurePinPath(pin.string(), error, failingMount()));
  EXPECT_THAT(targets_, ::testing::ElementsAre(pin.string()));
  EXPECT_THAT(error, HasSubstr("mount bpffs at pin path " + pin.string() + ": Operation not permitted"));
  EXPECT_FALSE(fs::exists(dir_ / "a")) << "the directories made for the pin path must be removed again";
  EXPECT_TRUE(fs::is_directory(dir_)) << "a directory that existed before stays";
}

TEST_F(PinPathTest, AMountThatDoesNotBringBpffsIsUndone) {
  fs::path pin = dir_ / "pins";
  std::string error;
  // "Succeeds" without mounting anything: the path is still not on a bpffs.
  MountFn fakeOk = [this](const char*, const char* target, const char*, unsigned long, const void*) {
    targets_.push_back(target);
    return 0;
  };
  EXPECT_FALSE(ensurePinPath(pin.string(), error, fakeOk));
  EXPECT_THAT(error, HasSubstr("is not on a BPF filesystem after mounting one there"));
  EXPECT_FALSE(fs::exists(pin));
}

TEST_F(PinPathTest, ANonEmptyDirectoryIsNeverMountedOver) {
  fs::path pin = dir_ / "pins";
  fs::create_directories(pin);
  std::ofstream(pin / "keep.txt") << "data";
  std::string error;
  EXPECT_FALSE(ensurePinPath(pin.string(), error, failingMount()));
  EXPECT_TRUE(targets_.empty()) << "mount must not be tried over " << pin;
  EXPECT_THAT(error, HasSubstr("not on a BPF filesystem and not empty"));
  EXPECT_TRUE(fs::exists(pin / "keep.txt"));
}

TEST_F(PinPathTest, APathThroughAFileFailsWithoutCreatingAnything) {
  std::ofstream(dir_ / "file") << "x";
  std::string error;
  EXPECT_FALSE(ensurePinPath((dir_ / "file" / "pins").string(), error, failingMount()));
  EXPECT_THAT(error, HasSubstr("exists and is not a directory"));
  EXPECT_TRUE(targets_.empty());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(PinPathTest, OneDaemonPerPinPathAndTheMessageNamesTheHolder) {
  PinPathLock first;
  std::string error;
  ASSERT_TRUE(first.acquire(dir_.string(), error)) << error;
  EXPECT_EQ(flockHolder(dir_.string()), ::getpid());

  PinPathLock second;  // another open file description: conflicts even in one process
  EXPECT_FALSE(second.acquire(dir_.string(), error));
  EXPECT_THAT(error, HasSubstr("pin path " + dir_.string() + " is in use by another switchyard daemon (pid " +
                               std::to_string(::getpid()) + ")"));

  first = PinPathLock();  // released
  EXPECT_EQ(flockHolder(dir_.string()), 0);
  EXPECT_TRUE(second.acquire(dir_.string(), error)) << error;
}

// What `switchyard cleanup` asks before touching a pin path: who holds it, and the question
// itself must not leave a lock behind that would keep a daemon from starting.
TEST_F(PinPathTest, CleanupSeesTheDaemonHoldingThePinPath) {
  EXPECT_EQ(pinPathHolder(dir_.string()), 0);
  EXPECT_EQ(pinPathHolder((dir_ / "missing").string()), 0);
  PinPathLock daemon;
  std::string error;
  ASSERT_TRUE(daemon.acquire(dir_.string(), error)) << error;
  EXPECT_EQ(pinPathHolder(dir_.string()), ::getpid());
  daemon = PinPathLock();
  EXPECT_EQ(pinPathHolder(dir_.string()), 0);
  EXPECT_TRUE(daemon.acquire(dir_.string(), error)) << error;  // the check held nothing
}

}  // namespace
}  // namespace switchyard::bpf
