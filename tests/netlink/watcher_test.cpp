// NodeNetworkWatcher against the real kernel: each test runs in a network namespace of its
// own (the links it makes go with the namespace, even when the test fails), changes links
// and addresses there with `ip`, and runs the io_context until the watcher reports the
// change (at most a few seconds). Links are veth pairs and bridges: this kernel has no
// dummy devices, and a veth is what a pod's host side is.
#include "netlink/watcher.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf/unique_fd.h"
#include "netlink/device_match.h"
#include "netlink/nodeport_addresses.h"

namespace switchyard::netlink {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Puts the calling thread into a new network namespace, and back into the one it came from
// on destruction; the new namespace, and every link in it, goes with its last user.
class ScopedNewNetns {
 public:
  static std::unique_ptr<ScopedNewNetns> enter(std::string& error) {
    bpf::UniqueFd orig(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!orig.valid()) {
      error = std::string("open /proc/thread-self/ns/net: ") + strerror(errno);
      return nullptr;
    }
    if (::unshare(CLONE_NEWNET) != 0) {
      error = std::string("unshare(CLONE_NEWNET): ") + strerror(errno);
      return nullptr;
    }
    return std::unique_ptr<ScopedNewNetns>(new ScopedNewNetns(std::move(orig)));
  }
  ~ScopedNewNetns() {
    if (::setns(orig_.get(), CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "setns back to the original network namespace: " << strerror(errno);
    }
  }
  ScopedNewNetns(const ScopedNewNetns&) = delete;
  ScopedNewNetns& operator=(const ScopedNewNetns&) = delete;

 private:
  explicit ScopedNewNetns(bpf::UniqueFd orig) : orig_(std::move(orig)) {}
  bpf::UniqueFd orig_;
};

// Runs a shell command (in this thread's namespace); "" on success, else the command and
// its output.
std::string sh(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) {
    return "popen failed: " + cmd;
  }
  char buf[256];
  while (fgets(buf, sizeof(buf), f)) {
    out += buf;
  }
  return pclose(f) == 0 ? "" : cmd + ": " + out;
}

std::vector<std::string> addressesOf(const NodeNetwork& n, const std::string& link) {
  std::vector<std::string> out;
  const Link* l = n.findLink(link);
  for (const Address& a : n.addresses) {
    if (l && a.ifindex == l->ifindex) {
      out.push_back(a.str());
    }
  }
  return out;
}

const Address* findAddress(const NodeNetwork& n, const std::string& text) {
  for (const Address& a : n.addresses) {
    if (a.str() == text) {
      return &a;
    }
  }
  return nullptr;
}

std::vector<std::string> nodePortAddresses(const std::vector<std::string>& entries, const NodeNetwork& n) {
  std::vector<std::string> errors;
  auto npa = NodePortAddresses::parse(entries, errors);
  EXPECT_TRUE(npa) << ::testing::PrintToString(errors);
  std::vector<std::string> out;
  if (npa) {
    for (const IpBytes& ip : npa->select(n.addresses)) {
      out.push_back(ipString(ip));
    }
  }
  return out;
}

std::string describe(const NodeNetwork& n) {
  std::string s = "links:";
  for (const Link& l : n.links) {
    s += " " + std::to_string(l.ifindex) + ":" + l.name + (l.up ? "(up)" : "");
  }
  s += "; addresses:";
  for (const Address& a : n.addresses) {
    s += " " + std::to_string(a.ifindex) + ":" + a.str();
  }
  return s;
}

// The kernel adds a link-local address once it sees the carrier, which its linkwatch
// reports up to a second late, or later when it has just reported another change.
constexpr std::chrono::milliseconds kLinkLocalWait = 6s;

// A veth pair, both ends down: sy-veth0 and its peer sy-peer0.
const std::string kVeth0 = "ip link add sy-veth0 type veth peer name sy-peer0";

WatcherOptions fastOptions() {
  WatcherOptions o;
  o.debounce = 10ms;
  return o;
}

class NodeNetworkWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (network namespaces, links, addresses)";
    }
    std::string error;
    netns_ = ScopedNewNetns::enter(error);
    ASSERT_TRUE(netns_) << error;
  }

  void TearDown() override {
    watcher_.reset();
    netns_.reset();
  }

  void startWatcher(const WatcherOptions& options = fastOptions()) {
    std::string error;
    watcher_ = NodeNetworkWatcher::start(io_, options, error);
    ASSERT_TRUE(watcher_) << error;
    watcher_->onChange([this](const NodeNetwork& n) {
      ++calls_;
      last_ = n;
    });
  }

  // Runs the io_context until `done` holds for the picture last delivered, at most `limit`.
  bool waitFor(const std::function<bool(const NodeNetwork&)>& done, std::chrono::milliseconds limit = 3s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done(watcher_->current())) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return false;
      }
      io_.restart();
      io_.run_for(20ms);
    }
    return true;
  }

  void runFor(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }

  boost::asio::io_context io_;
  std::optional<NodeNetworkWatcher> watcher_;
  std::unique_ptr<ScopedNewNetns> netns_;
  int calls_ = 0;
  NodeNetwork last_;
};

// A new namespace has lo and nothing else: nothing of the root namespace leaks in.
TEST_F(NodeNetworkWatcherTest, SeesOnlyItsOwnNamespaceAtStart) {
  startWatcher();
  const NodeNetwork& n = watcher_->current();
  ASSERT_EQ(n.links.size(), 1u) << describe(n);
  EXPECT_EQ(n.links[0].name, "lo");
  EXPECT_TRUE(n.links[0].loopback);
  EXPECT_FALSE(n.links[0].hasL2) << "lo has no Ethernet header";
  EXPECT_THAT(n.addresses, IsEmpty()) << describe(n);
}

// What exists before start() is in the first picture.
TEST_F(NodeNetworkWatcherTest, ReportsWhatExistedBeforeStart) {
  ASSERT_EQ(sh(kVeth0 + " && ip link set sy-veth0 up && ip addr add 198.18.0.1/24 dev sy-veth0 && "
                        "ip addr add 2001:db8::1/64 dev sy-veth0 nodad"),
            "");
  startWatcher();
  const NodeNetwork& n = watcher_->current();
  const Link* l = n.findLink("sy-veth0");
  ASSERT_NE(l, nullptr) << describe(n);
  ASSERT_NE(n.findLink("sy-peer0"), nullptr) << describe(n);
  EXPECT_EQ(l->kind, "veth");
  EXPECT_TRUE(l->up);
  EXPECT_FALSE(l->running) << "no carrier while the peer is down";
  EXPECT_TRUE(l->hasL2);
  EXPECT_FALSE(l->loopback);
  EXPECT_EQ(n.findLink(l->ifindex), l);
  const Address* v4 = findAddress(n, "198.18.0.1/24");
  ASSERT_NE(v4, nullptr) << describe(n);
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->scope, AddressScope::Universe);
  EXPECT_EQ(v4->ifindex, l->ifindex);
  ASSERT_NE(findAddress(n, "2001:db8::1/64"), nullptr) << describe(n);
}

TEST_F(NodeNetworkWatcherTest, ReportsALinkCreatedBroughtUpAndDeleted) {
  startWatcher();
  ASSERT_EQ(sh(kVeth0), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return n.findLink("sy-veth0") && n.findLink("sy-peer0"); }))
      << describe(watcher_->current());
  EXPECT_FALSE(watcher_->current().findLink("sy-veth0")->up);
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(last_, watcher_->current()) << "the callback receives the picture current() then returns";

  ASSERT_EQ(sh("ip link set sy-veth0 up"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return n.findLink("sy-veth0")->up; }))
      << describe(watcher_->current());
  EXPECT_FALSE(watcher_->current().findLink("sy-veth0")->running) << "no carrier while the peer is down";
  ASSERT_EQ(sh("ip link set sy-peer0 up"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return n.findLink("sy-veth0")->running; }))
      << describe(watcher_->current());

  ASSERT_EQ(sh("ip link del sy-veth0"), "");  // takes its peer with it
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return !n.findLink("sy-veth0") && !n.findLink("sy-peer0"); }))
      << describe(watcher_->current());
}

TEST_F(NodeNetworkWatcherTest, ReportsIpv4AddressesAddedAndRemoved) {
  ASSERT_EQ(sh(kVeth0), "");
  startWatcher();
  ASSERT_EQ(sh("ip addr add 198.18.1.1/24 dev sy-veth0 && ip addr add 198.19.1.1/32 dev sy-veth0"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return addressesOf(n, "sy-veth0").size() == 2; }))
      << describe(watcher_->current());
  EXPECT_THAT(addressesOf(watcher_->current(), "sy-veth0"), ElementsAre("198.18.1.1/24", "198.19.1.1/32"));

  ASSERT_EQ(sh("ip addr del 198.18.1.1/24 dev sy-veth0"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return addressesOf(n, "sy-veth0").size() == 1; }))
      << describe(watcher_->current());
  EXPECT_THAT(addressesOf(watcher_->current(), "sy-veth0"), ElementsAre("198.19.1.1/32"));
}

TEST_F(NodeNetworkWatcherTest, ReportsIpv6AddressesAddedAndRemoved) {
  ASSERT_EQ(sh(kVeth0 + " && ip link set sy-veth0 up && ip link set sy-peer0 up"), "");
  startWatcher();
  ASSERT_EQ(sh("ip addr add 2001:db8:1::1/64 dev sy-veth0 nodad"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return findAddress(n, "2001:db8:1::1/64"); }))
      << describe(watcher_->current());
  const Address* a = findAddress(watcher_->current(), "2001:db8:1::1/64");
  EXPECT_EQ(a->family, AF_INET6);
  EXPECT_EQ(a->scope, AddressScope::Universe);
  EXPECT_FALSE(a->tentative) << "nodad: no duplicate address detection";
  // The kernel's own link-local address of an Ethernet link with carrier.
  ASSERT_TRUE(waitFor(
      [](const NodeNetwork& n) {
        const Link* l = n.findLink("sy-veth0");
        return std::any_of(n.addresses.begin(), n.addresses.end(), [&](const Address& x) {
          return x.ifindex == l->ifindex && x.scope == AddressScope::Link && x.family == AF_INET6;
        });
      },
      kLinkLocalWait))
      << describe(watcher_->current());

  ASSERT_EQ(sh("ip addr del 2001:db8:1::1/64 dev sy-veth0"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return !findAddress(n, "2001:db8:1::1/64"); }))
      << describe(watcher_->current());
}

// An IPv6 address on a link without carrier waits for duplicate address detection, which
// starts once the peer of the veth comes up.
TEST_F(NodeNetworkWatcherTest, ReportsATentativeIpv6AddressUntilDadIsDone) {
  ASSERT_EQ(sh(kVeth0 + " && ip link set sy-veth0 up"), "");
  startWatcher();
  ASSERT_EQ(sh("ip addr add 2001:db8:5::1/64 dev sy-veth0"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return findAddress(n, "2001:db8:5::1/64"); }))
      << describe(watcher_->current());
  EXPECT_TRUE(findAddress(watcher_->current(), "2001:db8:5::1/64")->tentative);

  ASSERT_EQ(sh("ip link set sy-peer0 up"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return !findAddress(n, "2001:db8:5::1/64")->tentative; }, 6s))
      << "duplicate address detection takes a second or two";
}

TEST_F(NodeNetworkWatcherTest, TheAddressesOfADeletedLinkGoWithIt) {
  ASSERT_EQ(sh(kVeth0 + " && ip link set sy-veth0 up && ip addr add 198.18.2.1/24 dev sy-veth0 && "
                        "ip addr add 2001:db8:2::1/64 dev sy-veth0 nodad"),
            "");
  startWatcher();
  int ifindex = watcher_->current().findLink("sy-veth0")->ifindex;
  ASSERT_EQ(addressesOf(watcher_->current(), "sy-veth0").size(), 2u) << describe(watcher_->current());
  ASSERT_EQ(sh("ip link del sy-veth0"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return !n.findLink("sy-veth0"); }));
  for (const Address& a : watcher_->current().addresses) {
    EXPECT_NE(a.ifindex, ifindex) << a.str() << " outlived its link";
  }
}

// The host sides of pods' veths, found by a glob as bpf.devices gives them.
TEST_F(NodeNetworkWatcherTest, VethsAreFoundByAGlob) {
  startWatcher();
  ASSERT_EQ(sh("ip link add sy-veth1a type veth peer name sy-veth1b && ip link add sy-br0 type bridge"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return matchDevices({"sy-veth*"}, n.links).size() == 2; }))
      << describe(watcher_->current());
  std::vector<std::string> names;
  for (const Link& l : matchDevices({"sy-veth*"}, watcher_->current().links)) {
    names.push_back(l.name);
    EXPECT_EQ(l.kind, "veth") << l.name;
    EXPECT_TRUE(l.hasL2) << l.name;
  }
  EXPECT_THAT(names, UnorderedElementsAre("sy-veth1a", "sy-veth1b"));
  EXPECT_EQ(matchDevices({"sy-br0"}, watcher_->current().links).size(), 1u);

  ASSERT_EQ(sh("ip link del sy-veth1a"), "");  // takes its peer with it
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return matchDevices({"sy-veth*"}, n.links).empty(); }))
      << describe(watcher_->current());
}

// The cache also holds a bridge port's AF_BRIDGE view; the picture lists each link once.
TEST_F(NodeNetworkWatcherTest, ABridgePortIsListedOnceWithItsMaster) {
  startWatcher();
  ASSERT_EQ(sh("ip link add sy-br0 type bridge && " + kVeth0 +
               " && ip link set sy-veth0 master sy-br0 && ip link set sy-veth0 up && ip link set sy-br0 up"),
            "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) {
    const Link* port = n.findLink("sy-veth0");
    const Link* br = n.findLink("sy-br0");
    return port && br && port->masterIfindex == br->ifindex && port->up && br->up;
  })) << describe(watcher_->current());
  const auto& links = watcher_->current().links;
  EXPECT_EQ(std::count_if(links.begin(), links.end(), [](const Link& l) { return l.name == "sy-veth0"; }), 1);
  EXPECT_EQ(watcher_->current().findLink("sy-br0")->kind, "bridge");
}

// NodePort addresses as the daemon derives them on each change: by default every address
// but loopback and link-local.
TEST_F(NodeNetworkWatcherTest, NodePortAddressesFollowTheNodesAddresses) {
  startWatcher();
  ASSERT_EQ(sh("ip link set lo up && " + kVeth0 +
               " && ip link set sy-veth0 up && ip link set sy-peer0 up && ip addr add 198.18.4.1/24 dev sy-veth0 && "
               "ip addr add 2001:db8:4::1/64 dev sy-veth0 nodad"),
            "");
  ASSERT_TRUE(waitFor(
      [](const NodeNetwork& n) {
        // ... and the link-locals of both veth ends, which serve no NodePorts.
        auto linkLocals = std::count_if(n.addresses.begin(), n.addresses.end(),
                                        [](const Address& a) { return a.scope == AddressScope::Link; });
        return findAddress(n, "2001:db8:4::1/64") && findAddress(n, "127.0.0.1/8") && findAddress(n, "::1/128") &&
               linkLocals == 2;
      },
      kLinkLocalWait))
      << describe(watcher_->current());
  EXPECT_THAT(nodePortAddresses({}, watcher_->current()), ElementsAre("198.18.4.1", "2001:db8:4::1"));
  EXPECT_THAT(nodePortAddresses({"198.18.0.0/15", "2001:db8:99::/48"}, watcher_->current()), ElementsAre("198.18.4.1"));

  ASSERT_EQ(sh("ip addr del 198.18.4.1/24 dev sy-veth0"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return !findAddress(n, "198.18.4.1/24"); }));
  EXPECT_THAT(nodePortAddresses({}, watcher_->current()), ElementsAre("2001:db8:4::1"));
}

// Changes the kernel announces all at once (the io_context is not run meanwhile) are one call.
TEST_F(NodeNetworkWatcherTest, ABurstOfChangesIsOneCall) {
  ASSERT_EQ(sh(kVeth0), "");
  WatcherOptions o;
  o.debounce = 100ms;
  startWatcher(o);
  ASSERT_EQ(sh("for i in $(seq 1 20); do echo \"addr add 198.18.3.$i/32 dev sy-veth0\"; done | ip -batch -"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return addressesOf(n, "sy-veth0").size() == 20; }))
      << describe(watcher_->current());
  EXPECT_EQ(calls_, 1);
}

// A change the picture does not show (a link's alias) calls nothing.
TEST_F(NodeNetworkWatcherTest, AChangeOutsideThePictureCallsNothing) {
  ASSERT_EQ(sh(kVeth0), "");
  startWatcher();
  ASSERT_EQ(sh("ip link set sy-veth0 alias pod-a"), "");
  runFor(200ms);
  EXPECT_EQ(calls_, 0);
  ASSERT_EQ(sh("ip link set sy-veth0 up"), "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return n.findLink("sy-veth0")->up; }));
  EXPECT_EQ(calls_, 1);
}

// With a receive buffer far too small for 200 new links (100 veth pairs), the kernel drops
// notifications (ENOBUFS); the watcher refills its caches and still reports every link, then
// keeps following changes.
TEST_F(NodeNetworkWatcherTest, AnOverrunIsRepairedByARefill) {
  WatcherOptions o = fastOptions();
  o.receiveBufferBytes = 1;  // the kernel raises it to its minimum
  startWatcher(o);
  ASSERT_EQ(sh("for i in $(seq 1 100); do echo \"link add sy-ovr$i type veth peer name sy-ovp$i\"; done | "
               "ip -batch -"),
            "");
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) { return n.links.size() == 201; }))
      << watcher_->current().links.size() << " links";
  EXPECT_GE(watcher_->overruns(), 1u) << "the buffer was expected to overrun";

  ASSERT_EQ(sh("ip link del sy-ovr7 && ip addr add 198.18.5.1/24 dev sy-ovr8"), "");  // sy-ovp7 goes too
  ASSERT_TRUE(waitFor([](const NodeNetwork& n) {
    return n.links.size() == 199 && !n.findLink("sy-ovp7") && findAddress(n, "198.18.5.1/24");
  })) << describe(watcher_->current());
}

// A moved watcher keeps following (its state does not move in memory).
TEST_F(NodeNetworkWatcherTest, AMovedWatcherKeepsReporting) {
  startWatcher();
  std::optional<NodeNetworkWatcher> moved(std::move(*watcher_));
  watcher_.reset();
  ASSERT_EQ(sh(kVeth0), "");
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!moved->current().findLink("sy-veth0") && std::chrono::steady_clock::now() < deadline) {
    runFor(20ms);
  }
  EXPECT_NE(moved->current().findLink("sy-veth0"), nullptr) << describe(moved->current());
  EXPECT_EQ(calls_, 1);
}

// Destroying the watcher while a delivery is pending on the io_context calls nothing and
// touches nothing freed (run under ASan to see the latter).
TEST_F(NodeNetworkWatcherTest, DestroyingTheWatcherWithADeliveryPendingIsSafe) {
  WatcherOptions o;
  o.debounce = 300ms;
  startWatcher(o);
  ASSERT_EQ(sh(kVeth0), "");
  runFor(100ms);  // the notification is read; the delivery waits for the debounce
  watcher_.reset();
  runFor(500ms);
  EXPECT_EQ(calls_, 0);
}

}  // namespace
}  // namespace switchyard::netlink
