// The socket hooks on their own: each test runs in a network namespace and a cgroup of its
// own, with one hook (or a chosen few) attached to that cgroup, and real sockets: what the
// hook wrote is what the kernel did (the address a connect reached, where a datagram went,
// what getpeername and recvfrom show), plus the sock_rnat entries and counters. (This
// kernel runs no BPF_PROG_TEST_RUN for cgroup sock_addr programs.)
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bpf/abi.h"
#include "bpf/cleanup.h"
#include "bpf/datapath.h"
#include "bpf/map_writer.h"
#include "bpf/node_maps.h"
#include "bpf/sock_term.h"
#include "bpf/unique_fd.h"
#include "lb/syncer.h"
#include "metrics/datapath_counters.h"
#include "shell.h"

namespace switchyard::bpftest {
namespace {

using bpf::Datapath;
using bpf::UniqueFd;
using Program = Datapath::Program;

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

// A socket address of either family.
struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  static Addr of(const std::string& ip, uint16_t port) {
    Addr a;
    if (ip.find(':') == std::string::npos) {
      auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
      s->sin_family = AF_INET;
      s->sin_port = htons(port);
      inet_pton(AF_INET, ip.c_str(), &s->sin_addr);
      a.len = sizeof(*s);
    } else {
      auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
      s->sin6_family = AF_INET6;
      s->sin6_port = htons(port);
      inet_pton(AF_INET6, ip.c_str(), &s->sin6_addr);
      a.len = sizeof(*s);
    }
    return a;
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
  int family() const { return ss.ss_family; }
  std::string str() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
      auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
      return std::string(buf) + ":" + std::to_string(ntohs(s->sin_port));
    }
    auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(s->sin6_port));
  }
};

std::string cgroup2Root() {
  for (const char* dir : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs st {};
    if (statfs(dir, &st) == 0 && st.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */) {
      return dir;
    }
  }
  return "";
}

// This process's cgroup v2 path relative to the root ("0::/path").
std::string ownCgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) {
      return line.substr(3);
    }
  }
  return "/";
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

class SockLbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF, network namespaces, cgroups)";
    }
    static std::atomic<int> seq{0};
    std::string tag = std::to_string(getpid()) + "-" + std::to_string(seq++);
    // A network namespace of the test's own: the sockets and the addresses live there.
    origNetns_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(origNetns_.valid());
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    inNetns_ = true;
    for (const char* cmd : {"ip link set lo up", "ip addr add 198.18.16.2/32 dev lo",
                            "ip addr add 198.18.16.3/32 dev lo", "ip addr add 198.18.16.4/32 dev lo",
                            "ip addr add 2001:db8:16::2/128 dev lo", "ip addr add 2001:db8:16::3/128 dev lo"}) {
      ASSERT_EQ(sh(cmd), "");
    }
    // A cgroup of the test's own (never the root), with this process in it.
    std::string root = cgroup2Root();
    ASSERT_FALSE(root.empty()) << "no cgroup v2 hierarchy";
    origCgroup_ = root + ownCgroup();
    cgroup_ = root + "/sy-socktest-" + tag;
    ASSERT_EQ(::mkdir(cgroup_.c_str(), 0755), 0) << cgroup_ << ": " << strerror(errno);
    ASSERT_TRUE(writeFile(cgroup_ + "/cgroup.procs", std::to_string(getpid())));
    cgroupFd_.reset(::open(cgroup_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(cgroupFd_.valid());

    pinPath_ = "/sys/fs/bpf/sy-socktest-" + tag;
    std::string error;
    dp_ = Datapath::load({pinPath_, {}}, error);
    ASSERT_TRUE(dp_) << error;
    writer_ = std::make_unique<bpf::MapWriter>(dp_->maps());
    syncer_ = std::make_unique<lb::Syncer>(*writer_);
    sync("default/web", {fe("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.2"}, 8080),
                         fe("2001:db8:1::10", 80, lb::kProtoTCP, {"2001:db8:16::2"}, 8080)});
    sync("default/dns", {fe("198.19.0.53", 53, lb::kProtoUDP, {"198.18.16.3"}, 5353),
                         fe("2001:db8:1::53", 53, lb::kProtoUDP, {"2001:db8:16::3"}, 5353)});
    sync("default/empty", {fe("198.19.0.12", 80, lb::kProtoTCP, {}, 8080),
                           fe("198.19.0.12", 53, lb::kProtoUDP, {}, 5353)});
  }

  void TearDown() override {
    links_.clear();  // closing a link fd detaches its program
    syncer_.reset();
    writer_.reset();
    dp_.reset();
    if (!pinPath_.empty()) {
      auto report = bpf::cleanupPinPath(pinPath_);
      EXPECT_TRUE(report.errors.empty()) << report.errors.front();
    }
    if (!cgroup_.empty()) {
      writeFile(origCgroup_ + "/cgroup.procs", std::to_string(getpid()));
      cgroupFd_.reset();
      EXPECT_EQ(::rmdir(cgroup_.c_str()), 0) << cgroup_ << ": " << strerror(errno);
    }
    if (inNetns_) {
      EXPECT_EQ(::setns(origNetns_.get(), CLONE_NEWNET), 0);  // the namespace goes with its last user
    }
  }

  static lb::Frontend fe(const char* vip, uint16_t port, uint8_t proto, const std::vector<std::string>& backends,
                         uint16_t backendPort) {
    lb::Frontend f;
    f.key = {*lb::IpAddr::parse(vip), port, proto};
    for (const auto& b : backends) {
      f.backends.push_back({{*lb::IpAddr::parse(b), backendPort, proto}, false});
    }
    std::sort(f.backends.begin(), f.backends.end());
    return f;
  }

  void sync(const std::string& owner, const std::vector<lb::Frontend>& fes) {
    ASSERT_EQ(syncer_->syncOwner(owner, fes).errors, 0u) << owner;
  }

  // Attaches one program to the test cgroup until the test ends.
  void attach(Program p, enum bpf_attach_type type) {
    int link = bpf_link_create(dp_->programFd(p), cgroupFd_.get(), type, nullptr);
    ASSERT_GE(link, 0) << "attach: " << strerror(errno);
    links_.emplace_back(std::make_unique<UniqueFd>(link));
  }

  uint64_t counter(enum sy_reason reason) {
    metrics::DatapathCounters::Totals t;
    EXPECT_TRUE(metrics::DatapathCounters::read(dp_->maps().counters, t));
    return t.packets.at(reason);
  }

  static uint64_t cookieOf(int fd) {
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
    return cookie;
  }

  // The sock_rnat entry of (socket, backend): the frontend it shows, or "" when none.
  std::string rnatOf(int fd, const std::string& backend, uint16_t port) {
    sy_sock_revnat_key k{};
    k.cookie = cookieOf(fd);
    k.addr = bpf::toSyAddr(*lb::IpAddr::parse(backend));
    k.port = htons(port);
    sy_sock_revnat_value v{};
    if (bpf_map_lookup_elem(dp_->maps().sockRevNat, &k, &v) != 0) {
      return "";
    }
    return lb::FrontendKey{bpf::fromSyAddr(v.addr), ntohs(v.port), lb::kProtoTCP}.str();
  }

  // What connect4/sendmsg4 would have remembered, written by the test for the reverse hooks.
  void seedRnat(int fd, const std::string& backend, uint16_t bport, const std::string& frontend, uint16_t fport) {
    sy_sock_revnat_key k{};
    k.cookie = cookieOf(fd);
    k.addr = bpf::toSyAddr(*lb::IpAddr::parse(backend));
    k.port = htons(bport);
    sy_sock_revnat_value v{};
    v.addr = bpf::toSyAddr(*lb::IpAddr::parse(frontend));
    v.port = htons(fport);
    v.rev_nat_id = 1;
    ASSERT_EQ(bpf_map_update_elem(dp_->maps().sockRevNat, &k, &v, BPF_ANY), 0);
  }

  static UniqueFd listenTcp(const std::string& ip, uint16_t port) {
    Addr a = Addr::of(ip, port);
    UniqueFd s(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    EXPECT_EQ(::bind(s.get(), a.sa(), a.len), 0) << ip << ": " << strerror(errno);
    EXPECT_EQ(::listen(s.get(), 128), 0);
    return s;
  }

  static UniqueFd bindUdp(const std::string& ip, uint16_t port) {
    Addr a = Addr::of(ip, port);
    UniqueFd s(::socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::bind(s.get(), a.sa(), a.len), 0) << ip << ": " << strerror(errno);
    timeval tv{2, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return s;
  }

  static Addr peerOf(int fd) {
    Addr a;
    a.len = sizeof(a.ss);
    getpeername(fd, a.sa(), &a.len);
    return a;
  }

  // Connects a TCP socket to ip:port; returns the socket and, through accepted, the server
  // side of the connection. errno is in err on failure.
  static UniqueFd connectTcp(const std::string& ip, uint16_t port, int& err, int family = 0) {
    Addr a = Addr::of(ip, port);
    UniqueFd s(::socket(family ? family : a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    err = ::connect(s.get(), a.sa(), a.len) == 0 ? 0 : errno;
    return s;
  }

  UniqueFd origNetns_;
  bool inNetns_ = false;
  std::string origCgroup_, cgroup_;
  UniqueFd cgroupFd_;
  std::string pinPath_;
  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<bpf::MapWriter> writer_;
  std::unique_ptr<lb::Syncer> syncer_;
  std::vector<std::unique_ptr<UniqueFd>> links_;
};

// One family's addresses for the table of hooks.
struct Family {
  const char* name;
  Program connect, sendmsg, recvmsg, getpeername;
  enum bpf_attach_type connectType, sendmsgType, recvmsgType, getpeernameType;
  const char *vip, *backend, *dnsVip, *dnsBackend;
};

const Family kV4{"ipv4", Program::SockConnect4, Program::SockSendmsg4, Program::SockRecvmsg4,
                 Program::SockGetpeername4, BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
                 BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_INET4_GETPEERNAME, "198.19.0.10", "198.18.16.2",
                 "198.19.0.53", "198.18.16.3"};
const Family kV6{"ipv6", Program::SockConnect6, Program::SockSendmsg6, Program::SockRecvmsg6,
                 Program::SockGetpeername6, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP6_SENDMSG,
                 BPF_CGROUP_UDP6_RECVMSG, BPF_CGROUP_INET6_GETPEERNAME, "2001:db8:1::10", "2001:db8:16::2",
                 "2001:db8:1::53", "2001:db8:16::3"};

class SockHooks : public SockLbTest, public ::testing::WithParamInterface<Family> {};

std::string hp(const std::string& ip, uint16_t port) {
  return ip.find(':') == std::string::npos ? ip + ":" + std::to_string(port) : "[" + ip + "]:" + std::to_string(port);
}

TEST_P(SockHooks, ConnectAloneSendsTheConnectionToABackendAndRemembersTheFrontend) {
  const Family& f = GetParam();
  attach(f.connect, f.connectType);
  UniqueFd server = listenTcp(f.backend, 8080);
  uint64_t xlated = counter(SY_REASON_SOCK_XLATE);
  int err = 0;
  UniqueFd c = connectTcp(f.vip, 80, err);
  ASSERT_EQ(err, 0) << "connect to the ClusterIP: " << strerror(err);
  UniqueFd accepted(::accept(server.get(), nullptr, nullptr));
  EXPECT_TRUE(accepted.valid()) << "the backend got no connection";
  // Without the getpeername hook the socket shows where connect really went.
  EXPECT_EQ(peerOf(c.get()).str(), hp(f.backend, 8080)) << "connect was not rewritten to the backend";
  EXPECT_EQ(rnatOf(c.get(), f.backend, 8080), hp(f.vip, 80) + "/TCP") << "the frontend was not remembered";
  EXPECT_EQ(counter(SY_REASON_SOCK_XLATE), xlated + 1);
}

TEST_P(SockHooks, GetpeernameAloneShowsTheFrontend) {
  const Family& f = GetParam();
  attach(f.getpeername, f.getpeernameType);
  UniqueFd server = listenTcp(f.backend, 8080);
  int err = 0;
  UniqueFd c = connectTcp(f.backend, 8080, err);  // straight to the backend: no connect hook
  ASSERT_EQ(err, 0) << strerror(err);
  EXPECT_EQ(peerOf(c.get()).str(), hp(f.backend, 8080)) << "no entry yet: the real peer";
  seedRnat(c.get(), f.backend, 8080, f.vip, 80);
  uint64_t revnat = counter(SY_REASON_SOCK_REVNAT);
  EXPECT_EQ(peerOf(c.get()).str(), hp(f.vip, 80)) << "getpeername did not show the ClusterIP";
  EXPECT_EQ(counter(SY_REASON_SOCK_REVNAT), revnat + 1);
}

TEST_P(SockHooks, SendmsgAloneSendsADatagramToABackend) {
  const Family& f = GetParam();
  attach(f.sendmsg, f.sendmsgType);
  UniqueFd server = bindUdp(f.dnsBackend, 5353);
  Addr vip = Addr::of(f.dnsVip, 53);
  UniqueFd c(::socket(vip.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  timeval tv{2, 0};
  setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  uint64_t xlated = counter(SY_REASON_SOCK_XLATE);
  ASSERT_EQ(::sendto(c.get(), "q", 1, 0, vip.sa(), vip.len), 1) << strerror(errno);
  char buf[8];
  Addr from;
  from.len = sizeof(from.ss);
  ASSERT_EQ(::recvfrom(server.get(), buf, sizeof(buf), 0, from.sa(), &from.len), 1) << "the backend got nothing";
  EXPECT_EQ(counter(SY_REASON_SOCK_XLATE), xlated + 1);
  // The backend answers; without the recvmsg hook the client sees the backend.
  ASSERT_EQ(::sendto(server.get(), "a", 1, 0, from.sa(), from.len), 1);
  Addr src;
  src.len = sizeof(src.ss);
  ASSERT_EQ(::recvfrom(c.get(), buf, sizeof(buf), 0, src.sa(), &src.len), 1);
  EXPECT_EQ(src.str(), hp(f.dnsBackend, 5353));
  EXPECT_EQ(rnatOf(c.get(), f.dnsBackend, 5353), hp(f.dnsVip, 53) + "/TCP");
}

TEST_P(SockHooks, RecvmsgAloneShowsTheFrontendAsTheSource) {
  const Family& f = GetParam();
  attach(f.recvmsg, f.recvmsgType);
  UniqueFd server = bindUdp(f.dnsBackend, 5353);
  UniqueFd c = bindUdp(std::string(f.name) == "ipv4" ? "198.18.16.4" : "2001:db8:16::2", 0);
  Addr me;
  me.len = sizeof(me.ss);
  getsockname(c.get(), me.sa(), &me.len);
  seedRnat(c.get(), f.dnsBackend, 5353, f.dnsVip, 53);
  uint64_t revnat = counter(SY_REASON_SOCK_REVNAT);
  ASSERT_EQ(::sendto(server.get(), "a", 1, 0, me.sa(), me.len), 1) << strerror(errno);
  char buf[8];
  Addr src;
  src.len = sizeof(src.ss);
  ASSERT_EQ(::recvfrom(c.get(), buf, sizeof(buf), 0, src.sa(), &src.len), 1);
  EXPECT_EQ(src.str(), hp(f.dnsVip, 53)) << "recvmsg did not show the ClusterIP as the source";
  EXPECT_EQ(counter(SY_REASON_SOCK_REVNAT), revnat + 1);
}

INSTANTIATE_TEST_SUITE_P(Hooks, SockHooks, ::testing::Values(kV4, kV6),
                         [](const auto& info) { return std::string(info.param.name); });

// kube-proxy rejects traffic to a service without endpoints; a socket sees the refusal.
TEST_F(SockLbTest, ConnectAndSendToAServiceWithoutEndpointsAreRefused_KubeProxyRejectsNoEndpoints) {
  attach(Program::SockConnect4, BPF_CGROUP_INET4_CONNECT);
  attach(Program::SockSendmsg4, BPF_CGROUP_UDP4_SENDMSG);
  uint64_t refused = counter(SY_REASON_SOCK_NO_BACKEND);
  int err = 0;
  UniqueFd c = connectTcp("198.19.0.12", 80, err);
  EXPECT_EQ(err, ECONNREFUSED) << strerror(err);
  Addr vip = Addr::of("198.19.0.12", 53);
  UniqueFd u(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::sendto(u.get(), "q", 1, 0, vip.sa(), vip.len), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  EXPECT_EQ(counter(SY_REASON_SOCK_NO_BACKEND), refused + 2);
}

TEST_F(SockLbTest, ALocalPolicyWithoutLocalEndpointsIsUnreachable_KubeProxyDropsNoLocalEndpoints) {
  attach(Program::SockConnect4, BPF_CGROUP_INET4_CONNECT);
  lb::Frontend f = fe("198.19.0.30", 80, lb::kProtoTCP, {}, 8080);
  f.head.flags = lb::kFrontendDropEmpty;
  sync("default/local", {f});
  uint64_t dropped = counter(SY_REASON_SOCK_DROP_NO_LOCAL);
  int err = 0;
  UniqueFd c = connectTcp("198.19.0.30", 80, err);
  EXPECT_EQ(err, EHOSTUNREACH) << strerror(err);
  EXPECT_EQ(counter(SY_REASON_SOCK_DROP_NO_LOCAL), dropped + 1);
}

// bpf.socketLB.skipCgroups: sockets of a listed cgroup, and of its descendants, reach the
// ClusterIP untranslated (a mesh sidecar or an NFS mount that needs it; Cilium's socket-LB
// bypass), counted; other cgroups' sockets are translated; an empty list costs nothing.
TEST_F(SockLbTest, ASkippedCgroupAndItsDescendantsKeepTheClusterIP_SocketLBSkipCgroups) {
  attach(Program::SockConnect4, BPF_CGROUP_INET4_CONNECT);
  ASSERT_EQ(sh("ip addr add 198.19.0.10/32 dev lo"), "");  // untranslated, the VIP answers itself
  UniqueFd backend = listenTcp("198.18.16.2", 8080);
  UniqueFd vip = listenTcp("198.19.0.10", 80);
  std::string why;
  auto self = bpf::resolveCgroup(cgroup_, why);
  ASSERT_TRUE(self) << why;
  EXPECT_EQ(self->level, 1u) << "the test cgroup is a child of the root";
  const std::string child = cgroup_ + "/child";
  const std::string sibling = cgroup2Root() + "/sy-socktest-sibling-" + std::to_string(getpid());
  ASSERT_EQ(::mkdir(child.c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(::mkdir(sibling.c_str(), 0755), 0) << strerror(errno);
  struct Dirs {
    std::string parent, child, sibling;
    ~Dirs() {
      writeFile(parent + "/cgroup.procs", std::to_string(getpid()));
      ::rmdir(child.c_str());
      ::rmdir(sibling.c_str());
    }
  } dirs{cgroup_, child, sibling};
  auto childRef = bpf::resolveCgroup(child, why);
  ASSERT_TRUE(childRef) << why;
  EXPECT_EQ(childRef->level, 2u);
  auto siblingRef = bpf::resolveCgroup(sibling, why);
  ASSERT_TRUE(siblingRef) << why;

  auto peerOfConnect = [&]() {
    int err = 0;
    UniqueFd c = connectTcp("198.19.0.10", 80, err);
    EXPECT_EQ(err, 0) << strerror(err);
    return peerOf(c.get()).str();
  };
  bpf::NodeMaps maps(dp_->maps());
  std::string error;
  uint64_t skipped = counter(SY_REASON_SOCK_SKIPPED), xlated = counter(SY_REASON_SOCK_XLATE);

  // Only a sibling is skipped: this cgroup is translated.
  ASSERT_TRUE(maps.setSocketLBSkip({{siblingRef->id, siblingRef->level}}, error)) << error;
  EXPECT_EQ(peerOfConnect(), "198.18.16.2:8080");
  EXPECT_EQ(counter(SY_REASON_SOCK_XLATE), xlated + 1);

  // This cgroup is skipped: the connection goes to the ClusterIP itself, remembered nowhere.
  ASSERT_TRUE(maps.setSocketLBSkip({{self->id, self->level}, {siblingRef->id, siblingRef->level}}, error)) << error;
  EXPECT_EQ(peerOfConnect(), "198.19.0.10:80");
  EXPECT_EQ(counter(SY_REASON_SOCK_SKIPPED), skipped + 1);

  // Its child too (the ancestor at level 1 is listed).
  ASSERT_TRUE(writeFile(child + "/cgroup.procs", std::to_string(getpid())));
  EXPECT_EQ(peerOfConnect(), "198.19.0.10:80");
  EXPECT_EQ(counter(SY_REASON_SOCK_SKIPPED), skipped + 2);
  EXPECT_EQ(counter(SY_REASON_SOCK_XLATE), xlated + 1);

  // Listed at level 2 only, the child is skipped and its parent is not.
  ASSERT_TRUE(maps.setSocketLBSkip({{childRef->id, childRef->level}}, error)) << error;
  EXPECT_EQ(peerOfConnect(), "198.19.0.10:80");
  ASSERT_TRUE(writeFile(cgroup_ + "/cgroup.procs", std::to_string(getpid())));
  EXPECT_EQ(peerOfConnect(), "198.18.16.2:8080");

  // An empty list leaves nothing in the map, not even the levels in use.
  ASSERT_TRUE(maps.setSocketLBSkip({}, error)) << error;
  EXPECT_TRUE(maps.socketLBSkip().empty());
  uint64_t zero = 0;
  struct sy_sock_skip_value v {};
  EXPECT_NE(bpf_map_lookup_elem(dp_->maps().sockSkip, &zero, &v), 0) << "the levels entry was left behind";
  EXPECT_EQ(peerOfConnect(), "198.18.16.2:8080");
  EXPECT_EQ(counter(SY_REASON_SOCK_SKIPPED), skipped + 3);
  EXPECT_EQ(counter(SY_REASON_SOCK_XLATE), xlated + 3);
}

// kube-proxy clears the conntrack entries of a removed UDP endpoint so clients stop sending
// to it; a connected UDP socket that connect4 pointed at the backend is destroyed instead
// (its next call fails with ECONNABORTED and it is no longer connected). Only sockets socket
// LB sent through the frontend that lost the backend: not those through another frontend
// that keeps it, not those that connected to the pod's address themselves.
TEST_F(SockLbTest, ConnectedUdpSocketsToARemovedBackendAreDestroyed_KubeProxyDeletesUDPConntrackOfStaleEndpoints) {
  attach(Program::SockConnect4, BPF_CGROUP_INET4_CONNECT);
  sync("default/dns2", {fe("198.19.0.54", 53, lb::kProtoUDP, {"198.18.16.3"}, 5353)});
  UniqueFd server = bindUdp("198.18.16.3", 5353);
  auto connectUdp = [](const std::string& ip, uint16_t port) {
    Addr a = Addr::of(ip, port);
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(s.get(), a.sa(), a.len), 0) << ip << ": " << strerror(errno);
    return s;
  };
  UniqueFd viaDns = connectUdp("198.19.0.53", 53);
  UniqueFd viaDns2 = connectUdp("198.19.0.54", 53);
  UniqueFd direct = connectUdp("198.18.16.3", 5353);
  ASSERT_EQ(peerOf(viaDns.get()).str(), "198.18.16.3:5353") << "connect4 did not translate";
  ASSERT_EQ(peerOf(viaDns2.get()).str(), "198.18.16.3:5353");

  std::string error;
  auto terminator = bpf::SocketTerminator::load(dp_->maps().sockRevNat, error);
  ASSERT_TRUE(terminator) << error;
  auto r = syncer_->syncOwner("default/dns", {fe("198.19.0.53", 53, lb::kProtoUDP, {"198.18.16.4"}, 5353),
                                              fe("2001:db8:1::53", 53, lb::kProtoUDP, {"2001:db8:16::3"}, 5353)});
  ASSERT_EQ(r.staleUdp.size(), 1u);
  EXPECT_EQ(r.staleUdp[0].frontend.str() + " " + r.staleUdp[0].backend.str(), "198.19.0.53:53/UDP 198.18.16.3:5353/UDP");
  auto netns = bpf::podNetworkNamespaces(pinPath_ + "/no-such-dir");
  ASSERT_EQ(netns.size(), 1u) << "only this test's own network namespace";
  auto report = terminator->terminate(r.staleUdp, netns);
  EXPECT_TRUE(report.errors.empty()) << report.errors.front();
  EXPECT_EQ(report.namespaces, 1u);
  EXPECT_EQ(report.destroyed, 1u);

  int soError = 0;
  socklen_t len = sizeof(soError);
  ASSERT_EQ(getsockopt(viaDns.get(), SOL_SOCKET, SO_ERROR, &soError, &len), 0);
  EXPECT_EQ(soError, ECONNABORTED) << "the socket through the frontend that lost its backend was not destroyed";
  Addr peer;
  peer.len = sizeof(peer.ss);
  EXPECT_NE(getpeername(viaDns.get(), peer.sa(), &peer.len), 0) << "a destroyed socket is no longer connected";
  EXPECT_EQ(peerOf(viaDns2.get()).str(), "198.18.16.3:5353") << "another frontend keeps the backend";
  EXPECT_EQ(peerOf(direct.get()).str(), "198.18.16.3:5353") << "socket LB did not send this socket there";
  EXPECT_EQ(::send(viaDns2.get(), "q", 1, 0), 1);
  EXPECT_EQ(::send(direct.get(), "q", 1, 0), 1);

  // Nothing stale: nothing destroyed, and the stale list is not left in the map.
  report = terminator->terminate(r.staleUdp, netns);
  EXPECT_EQ(report.destroyed, 0u);
}

TEST(ResolveCgroup, RefusesTheRootPathsOutsideAndMissingDirectories) {
  std::string root = cgroup2Root();
  ASSERT_FALSE(root.empty()) << "no cgroup v2 hierarchy";
  std::string why;
  EXPECT_FALSE(bpf::resolveCgroup(root, why));
  EXPECT_NE(why.find("root itself"), std::string::npos) << why;
  EXPECT_FALSE(bpf::resolveCgroup("/tmp", why));
  EXPECT_NE(why.find("not a directory on a cgroup v2 filesystem"), std::string::npos) << why;
  EXPECT_FALSE(bpf::resolveCgroup(root + "/sy-no-such-cgroup", why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(bpf::resolveCgroup(root + "/cgroup.procs", why)) << "a file, not a cgroup";
}

// A dual-stack IPv6 socket reaching an IPv4 ClusterIP as ::ffff:a.b.c.d goes through
// connect6 and matches the IPv4 service as is (the maps key IPv4 as IPv4-mapped).
TEST_F(SockLbTest, AnIpv4MappedAddressOnAnIpv6SocketReachesTheIpv4Service) {
  attach(Program::SockConnect6, BPF_CGROUP_INET6_CONNECT);
  UniqueFd server = listenTcp("198.18.16.2", 8080);
  int err = 0;
  UniqueFd c = connectTcp("::ffff:198.19.0.10", 80, err, AF_INET6);
  ASSERT_EQ(err, 0) << strerror(err);
  EXPECT_EQ(peerOf(c.get()).str(), "[::ffff:198.18.16.2]:8080");
}

// NodePort frontends are keyed by the family's wildcard and found on every NodePort
// address of the node (nodeaddr map), from the node itself too.
TEST_F(SockLbTest, ANodePortIsReachedOnANodeAddress) {
  attach(Program::SockConnect4, BPF_CGROUP_INET4_CONNECT);
  lb::Frontend np = fe("198.18.0.0", 30080, lb::kProtoTCP, {"198.18.16.2"}, 8080);
  np.key.addr = lb::wildcardOf(np.key.addr);
  np.head.kind = lb::FrontendKind::NodePort;
  sync("default/np", {np});
  union sy_addr node = bpf::toSyAddr(*lb::IpAddr::parse("198.18.0.1"));
  sy_node_addr_value v{SY_NODE_ADDR_F_NODEPORT, 0};
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().nodeAddrs, &node, &v, BPF_ANY), 0);
  UniqueFd server = listenTcp("198.18.16.2", 8080);
  int err = 0;
  UniqueFd c = connectTcp("198.18.0.1", 30080, err);
  ASSERT_EQ(err, 0) << strerror(err);
  EXPECT_EQ(peerOf(c.get()).str(), "198.18.16.2:8080");
  EXPECT_EQ(rnatOf(c.get(), "198.18.16.2", 8080), "198.18.0.1:30080/TCP")
      << "the node address the application used is remembered, not the wildcard";
  // An address that is no NodePort address of the node does not match.
  UniqueFd d = connectTcp("198.18.0.9", 30080, err);
  EXPECT_NE(err, 0) << "198.18.0.9 is no node address: nothing listens there";
}

// sessionAffinity ClientIP: every connection of one pod (one network namespace) goes to
// the backend its first one got, while the affinity is fresh.
TEST_F(SockLbTest, SessionAffinityKeepsAPodOnOneBackend_KubeProxySessionAffinityClientIP) {
  attach(Program::SockConnect4, BPF_CGROUP_INET4_CONNECT);
  lb::Frontend f = fe("198.19.0.60", 80, lb::kProtoTCP, {"198.18.16.2", "198.18.16.3", "198.18.16.4"}, 8080);
  f.head.affinityTimeout = 60;
  sync("default/sticky", {f});
  std::vector<UniqueFd> servers;
  for (const char* b : {"198.18.16.2", "198.18.16.3", "198.18.16.4"}) {
    servers.push_back(listenTcp(b, 8080));
  }
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    int err = 0;
    UniqueFd c = connectTcp("198.19.0.60", 80, err);
    ASSERT_EQ(err, 0) << strerror(err);
    seen.insert(peerOf(c.get()).str());
  }
  EXPECT_EQ(seen.size(), 1u) << "connections of one client spread over backends despite affinity";
}

}  // namespace
}  // namespace switchyard::bpftest
