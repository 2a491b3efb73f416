// A device without a link-layer header (a tun device, as wireguard or ipip are): the daemon
// attaches the L3 variants of the tc programs, which find IP at offset 0. Real packets: the
// test writes IP packets into the tun device (the kernel receives them on it, tc ingress
// runs), the kernel routes the translated packet back out of the same device (tc egress
// runs), and the test reads what left. All inside a network namespace of the test's own.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>

#include "bpf/unique_fd.h"
#include "tc_fixture.h"
#include "shell.h"

namespace switchyard::bpftest {
namespace {

class L3DeviceTest : public TcProgramTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF, network namespaces, tun)";
    }
    origNetns_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    inNetns_ = true;
    tun_.reset(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    ASSERT_TRUE(tun_.valid()) << "/dev/net/tun: " << strerror(errno);
    struct ifreq ifr {};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, "sytun0", IFNAMSIZ - 1);
    ASSERT_EQ(::ioctl(tun_.get(), TUNSETIFF, &ifr), 0) << "TUNSETIFF: " << strerror(errno);
    for (const char* cmd : {"ip link set lo up", "ip link set sytun0 up", "ip addr add 198.18.0.1/32 dev sytun0",
                            "ip route add 198.18.1.0/24 dev sytun0", "ip route add 198.18.16.0/24 dev sytun0",
                            "sysctl -qw net.ipv4.ip_forward=1", "sysctl -qw net.ipv4.conf.all.send_redirects=0",
                            "sysctl -qw net.ipv4.conf.sytun0.send_redirects=0"}) {
      ASSERT_EQ(sh(cmd), "");
    }
    TcProgramTest::SetUp();
    auto res = dp_->attachTc("sytun0", bpf::TcRole::Pod);
    ASSERT_EQ(res.status, bpf::Datapath::TcAttachResult::Status::Attached) << res.error;
  }
  void TearDown() override {
    TcProgramTest::TearDown();  // cleanup detaches the filters it recorded
    tun_.reset();
    if (inNetns_) {
      EXPECT_EQ(::setns(origNetns_.get(), CLONE_NEWNET), 0);
    }
  }

  // Writes an IP packet into the tun device; returns the next IPv4 TCP packet that leaves
  // it within 2 s (the kernel may also send other things: skipped), or an empty one.
  Packet roundTrip(const Packet& l2) {
    Packet in;
    in.l3off = 0;
    in.bytes.assign(l2.bytes.begin() + static_cast<long>(l2.l3off), l2.bytes.end());
    EXPECT_EQ(::write(tun_.get(), in.bytes.data(), in.bytes.size()), static_cast<ssize_t>(in.bytes.size()));
    Packet out;
    out.l3off = 0;
    for (int i = 0; i < 20; ++i) {
      pollfd p{tun_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) {
        continue;
      }
      uint8_t buf[2048];
      ssize_t n = ::read(tun_.get(), buf, sizeof(buf));
      if (n >= 40 && (buf[0] >> 4) == 4 && buf[9] == IPPROTO_TCP) {
        out.bytes.assign(buf, buf + n);
        return out;
      }
    }
    return out;
  }

  bpf::UniqueFd origNetns_, tun_;
  bool inNetns_ = false;
};

TEST_F(L3DeviceTest, ADeviceWithoutLinkLayerHeaderIsTranslatedBothWays) {
  uint64_t fresh = counter(SY_REASON_TC_DNAT_NEW);
  Packet out = roundTrip(makePacket(IPPROTO_TCP, "198.18.1.2", 40700, "198.19.0.10", 80));
  ASSERT_FALSE(out.bytes.empty()) << "the translated SYN never left the device";
  EXPECT_EQ(counter(SY_REASON_TC_DNAT_NEW), fresh + 1);
  EXPECT_EQ(out.dst(), "198.18.16.2:8080") << "the L3 program did not find IP at offset 0";
  EXPECT_EQ(out.src(), "198.18.1.2:40700");
  EXPECT_TRUE(out.ipChecksumOk());
  EXPECT_TRUE(out.l4ChecksumOk());
  Packet back = roundTrip(makePacket(IPPROTO_TCP, "198.18.16.2", 8080, "198.18.1.2", 40700, 0x12, "r"));
  ASSERT_FALSE(back.bytes.empty()) << "the reply never left the device";
  EXPECT_EQ(back.src(), "198.19.0.10:80") << "the reply was not translated back";
  EXPECT_TRUE(back.l4ChecksumOk());
}

}  // namespace
}  // namespace switchyard::bpftest
