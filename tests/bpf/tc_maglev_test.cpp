// Maglev frontends in the tc programs, on crafted packets (Cilium's and Katran's Maglev: the
// backend of a new flow is table[hash(tuple) % M], the same on every node with the same
// table): the program picks the entry the test computes from the table read back from the
// maps and the same hash (bpf/jhash.h); conntrack keeps an established flow on its backend
// when the table changes; session affinity hashes the client without its port; a table swap
// never shows a packet an empty or half-built table; a restarted syncer adopts the pinned
// tables and rebuilds only what differs.
//
//   fab0 (a veth, "the network"): 198.18.0.11/24; the client 198.18.0.100
//   pod0 (a veth, "the pods"):   198.18.17.0/24 local pods (the backends: DNAT only)
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>

#include <map>
#include <set>
#include <thread>

#include "bpf/jhash.h"
#include "bpf/unique_fd.h"
#include "bpf/node_maps.h"
#include "lb/maglev.h"
#include "shell.h"
#include "tc_fixture.h"

namespace switchyard::bpftest {
namespace {

constexpr const char* kClient = "198.18.0.100";

class MaglevTest : public TcProgramTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF, network namespaces)";
    }
    origNetns_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    inNetns_ = true;
    for (const char* cmd : {"ip link set lo up", "ip link add fab0 type veth peer name fab1",
                            "ip link add pod0 type veth peer name pod1", "ip link set fab1 up", "ip link set pod1 up",
                            "ip link set fab0 up", "ip link set pod0 up", "ip addr add 198.18.0.11/24 dev fab0",
                            "ip route add 198.18.17.0/24 dev pod0",
                            "ip neigh add 198.18.0.100 lladdr 02:00:00:00:01:00 dev fab0",
                            "sysctl -qw net.ipv4.ip_forward=1"}) {
      ASSERT_EQ(sh(cmd), "");
    }
    fab_ = static_cast<int>(if_nametoindex("fab0"));
    TcProgramTest::SetUp();
    bpf::NodeMaps node(dp_->maps());
    std::string error;
    ASSERT_TRUE(node.setNodeAddresses({{*lb::IpAddr::parse("198.18.0.11"), SY_NODE_ADDR_F_NODEPORT}}, error))
        << error;
    ASSERT_TRUE(node.setLocalNets({*lb::Cidr::parse("198.18.16.0/20")}, error)) << error;
  }
  void TearDown() override {
    TcProgramTest::TearDown();
    if (inNetns_) {
      EXPECT_EQ(::setns(origNetns_.get(), CLONE_NEWNET), 0);
    }
  }

  // A Maglev frontend with local backends 198.18.17.<first>.. (n of them) on port 8080.
  static lb::Frontend maglevFe(const char* addr, uint16_t port, lb::FrontendKind kind, int first, int n,
                               uint32_t affinity = 0) {
    lb::Frontend f;
    f.key = {*lb::IpAddr::parse(addr), port, lb::kProtoTCP, lb::Scope::External};
    if (kind == lb::FrontendKind::NodePort) {
      f.key.addr = lb::wildcardOf(f.key.addr);
    }
    f.head.kind = kind;
    f.head.flags = lb::kFrontendMaglev;
    f.head.affinityTimeout = affinity;
    for (int i = first; i < first + n; ++i) {
      f.backends.push_back({{*lb::IpAddr::parse("198.18.17." + std::to_string(i)), 8080, lb::kProtoTCP}, false, true});
    }
    std::sort(f.backends.begin(), f.backends.end());
    return f;
  }

  Result fromNet(const Packet& in) {
    Result r;
    r.out.l3off = in.l3off;
    r.out.bytes.assign(in.bytes.size() + 256, 0);
    struct __sk_buff ctx {};
    ctx.ifindex = static_cast<__u32>(fab_);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(), .data_out = r.out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(r.out.bytes.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    r.verdict = bpf_prog_test_run_opts(dp_->programFd(Program::TcFromNet), &opts) == 0
                    ? static_cast<int>(opts.retval)
                    : -1;
    r.out.bytes.resize(opts.data_size_out);
    return r;
  }

  uint32_t revNatOf(const lb::FrontendKey& k) {
    for (const lb::ProgrammedFrontend& f : writer_->read().frontends) {
      if (f.key == k) {
        return f.revNatId;
      }
    }
    return 0;
  }

  // The inner map ID the outer maglev map holds for a frontend (0: none).
  uint32_t innerId(uint32_t revNat) {
    __u32 id = 0;
    return bpf_map_lookup_elem(dp_->maps().maglev, &revNat, &id) == 0 ? id : 0;
  }

  // A frontend's table and the backends map, read once for many expected() calls.
  struct Snapshot {
    std::vector<uint32_t> table;
    std::map<uint32_t, lb::Backend> backends;
  };
  Snapshot snapshot(const lb::Frontend& fe) {
    Snapshot s;
    uint32_t rev = revNatOf(fe.key);
    EXPECT_TRUE(writer_->readMaglevTable(rev, s.table)) << "no table for rev NAT " << rev;
    s.backends = writer_->read().backends;
    return s;
  }

  // The backend ("addr:port") the table gives a new flow from kClient:sport, computed here
  // from the table in the maps and bpf/jhash.h's hash over the documented tuple.
  std::string expected(const lb::Frontend& fe, uint16_t sport, const Snapshot& s) {
    if (s.table.empty()) {
      return "";
    }
    struct sy_maglev_tuple t {};
    t.client = bpf::toSyAddr(*lb::IpAddr::parse(kClient));
    t.frontend = bpf::toSyAddr(fe.key.addr);
    t.sport = fe.head.affinityTimeout ? 0 : htons(sport);
    t.dport = htons(fe.key.port);
    t.proto = IPPROTO_TCP;
    uint32_t pos = 1 + sy_maglev_hash(&t, SY_MAGLEV_SEED_DEFAULT) % static_cast<uint32_t>(s.table.size());
    auto it = s.backends.find(s.table[pos - 1]);
    return it == s.backends.end() ? "missing backend " + std::to_string(s.table[pos - 1])
                                  : it->second.key.addr.str() + ":" + std::to_string(it->second.key.port);
  }
  std::string expected(const lb::Frontend& fe, uint16_t sport) { return expected(fe, sport, snapshot(fe)); }

  bpf::UniqueFd origNetns_;
  bool inNetns_ = false;
  int fab_ = 0;
};

// The table in the maps is the builder's (lb/maglev.h), in backend IDs; every new flow goes
// where table[1 + hash % M] says, for an external IP (keyed by its address) and a NodePort
// (keyed by the family wildcard, so every node address of every node agrees).
TEST_F(MaglevTest, NewFlowsTakeTheBackendOfTheirTableEntry_CiliumMaglev) {
  lb::Frontend ext = maglevFe("198.19.0.20", 80, lb::FrontendKind::ExternalIP, 2, 5);
  lb::Frontend np = maglevFe("198.18.0.0", 30090, lb::FrontendKind::NodePort, 2, 5);
  sync("default/mg", {ext, np});

  std::vector<uint32_t> table;
  ASSERT_TRUE(writer_->readMaglevTable(revNatOf(ext.key), table));
  ASSERT_EQ(table.size(), 16381u) << "the default M";
  std::vector<uint32_t> built = lb::buildMaglevTable(ext.backends, {});
  std::vector<uint32_t> ids;
  for (const lb::Backend& b : ext.backends) {
    ids.push_back(backendId(b.key.addr.str(), 8080));
  }
  for (uint32_t& e : built) {
    e = ids[e];
  }
  EXPECT_EQ(table, built) << "the maps hold another table than the builder's";

  uint64_t maglev = counter(SY_REASON_TC_MAGLEV), fallback = counter(SY_REASON_TC_MAGLEV_FALLBACK);
  std::set<std::string> used;
  int runs = 0;
  const Snapshot extTable = snapshot(ext), npTable = snapshot(np);
  for (uint16_t sport = 42000; sport < 42064; ++sport) {
    Result e = fromNet(makePacket(IPPROTO_TCP, kClient, sport, "198.19.0.20", 80));
    EXPECT_EQ(e.verdict, TC_ACT_OK);
    EXPECT_EQ(e.out.dst(), expected(ext, sport, extTable)) << "external IP, source port " << sport;
    Result n = fromNet(makePacket(IPPROTO_TCP, kClient, sport, "198.18.0.11", 30090));
    EXPECT_EQ(n.verdict, TC_ACT_OK);
    EXPECT_EQ(n.out.dst(), expected(np, sport, npTable)) << "NodePort, source port " << sport;
    used.insert(e.out.dst());
    runs += 2;
  }
  EXPECT_EQ(used.size(), 5u) << "64 flows over 5 equal backends should reach all of them";
  EXPECT_EQ(counter(SY_REASON_TC_MAGLEV), maglev + runs);
  EXPECT_EQ(counter(SY_REASON_TC_MAGLEV_FALLBACK), fallback);
}

// A random frontend beside it is not affected and does not count as Maglev.
TEST_F(MaglevTest, RandomFrontendsDoNotUseTables) {
  lb::Frontend r = maglevFe("198.19.0.21", 80, lb::FrontendKind::ExternalIP, 2, 3);
  r.head.flags = 0;
  sync("default/random", {r});
  EXPECT_EQ(innerId(revNatOf(r.key)), 0u) << "a random frontend got a table";
  uint64_t maglev = counter(SY_REASON_TC_MAGLEV);
  EXPECT_EQ(fromNet(makePacket(IPPROTO_TCP, kClient, 42000, "198.19.0.21", 80)).verdict, TC_ACT_OK);
  EXPECT_EQ(counter(SY_REASON_TC_MAGLEV), maglev);
}

// Conntrack before the table: a flow whose entry moved to a new backend stays where it began.
TEST_F(MaglevTest, ConntrackKeepsAnEstablishedFlowWhenItsEntryMoves_KatranMaglev) {
  lb::Frontend fe = maglevFe("198.19.0.22", 80, lb::FrontendKind::ExternalIP, 2, 4);
  sync("default/mg", {fe});
  std::map<uint16_t, std::string> first;
  for (uint16_t sport = 43000; sport < 43100; ++sport) {
    first[sport] = fromNet(makePacket(IPPROTO_TCP, kClient, sport, "198.19.0.22", 80)).out.dst();
  }
  lb::Frontend more = maglevFe("198.19.0.22", 80, lb::FrontendKind::ExternalIP, 2, 5);
  sync("default/mg", {more});
  int moved = 0;
  const Snapshot moreTable = snapshot(more);
  for (const auto& [sport, dst] : first) {
    std::string now = expected(more, sport, moreTable);
    if (now == dst) {
      continue;
    }
    ++moved;
    Packet ack = makePacket(IPPROTO_TCP, kClient, sport, "198.19.0.22", 80, 0x10 /* ACK */);
    EXPECT_EQ(fromNet(ack).out.dst(), dst) << "source port " << sport << ": an established flow changed backend";
  }
  EXPECT_GT(moved, 5) << "a fifth backend must take some of 100 flows' entries (else nothing was tested)";
  // A new flow takes the new table's entry.
  EXPECT_EQ(fromNet(makePacket(IPPROTO_TCP, kClient, 43100, "198.19.0.22", 80)).out.dst(), expected(more, 43100));
}

// Session affinity with Maglev: the client, not the connection, picks the entry, so every
// node sends one client to one backend; the client's later connections follow it.
TEST_F(MaglevTest, SessionAffinityHashesTheClientWithoutItsPort_KubeProxySessionAffinityClientIP) {
  lb::Frontend fe = maglevFe("198.19.0.23", 80, lb::FrontendKind::ExternalIP, 2, 5, 60);
  sync("default/aff", {fe});
  std::string want = expected(fe, 0);
  ASSERT_FALSE(want.empty());
  for (uint16_t sport = 44000; sport < 44020; ++sport) {
    EXPECT_EQ(fromNet(makePacket(IPPROTO_TCP, kClient, sport, "198.19.0.23", 80)).out.dst(), want)
        << "source port " << sport;
  }
}

// The writer builds a whole new inner map and swaps the outer entry in one update: a packet
// in flight sees the old table or the new one, never an empty or partial one. A reader runs
// new flows while the syncer swaps tables 30 times; no packet may fall back or go astray.
TEST_F(MaglevTest, TableSwapsAreAtomicForPacketsInFlight_CiliumMaglevMapInMap) {
  lb::Frontend a = maglevFe("198.19.0.24", 80, lb::FrontendKind::ExternalIP, 2, 5);
  lb::Frontend b = maglevFe("198.19.0.24", 80, lb::FrontendKind::ExternalIP, 3, 5);  // .2 out, .7 in
  sync("default/swap", {a});
  uint32_t rev = revNatOf(a.key);
  uint32_t firstInner = innerId(rev);
  ASSERT_NE(firstInner, 0u);
  uint64_t fallback = counter(SY_REASON_TC_MAGLEV_FALLBACK), maglev = counter(SY_REASON_TC_MAGLEV);
  std::atomic<bool> done{false};
  std::atomic<int> runs{0}, bad{0};
  std::string firstBad;
  std::thread reader([&] {
    uint32_t n = 0;
    // Bounded: at most 40,000 packets (new flows, each its own source port), ending when
    // the writer is done.
    while (!done.load() && n < 40000) {
      uint16_t sport = static_cast<uint16_t>(10000 + n);
      Result r = fromNet(makePacket(IPPROTO_TCP, kClient, sport, "198.19.0.24", 80));
      std::string host = r.out.addr(false);
      bool ok = r.verdict == TC_ACT_OK && host.rfind("198.18.17.", 0) == 0;
      if (!ok && bad++ == 0) {
        firstBad = "verdict " + std::to_string(r.verdict) + " to " + r.out.dst();
      }
      ++runs;
      ++n;
    }
  });
  for (int i = 0; i < 30; ++i) {
    sync("default/swap", {i % 2 ? a : b});
  }
  done = true;
  reader.join();
  EXPECT_GT(runs.load(), 30) << "the reader must overlap the swaps";
  EXPECT_EQ(bad.load(), 0) << firstBad;
  EXPECT_EQ(counter(SY_REASON_TC_MAGLEV_FALLBACK), fallback) << "a packet found no usable table";
  EXPECT_EQ(counter(SY_REASON_TC_MAGLEV), maglev + static_cast<uint64_t>(runs.load()));
  EXPECT_NE(innerId(rev), firstInner) << "each change swaps in a new inner map";
}

// A restarted daemon (a new syncer over the pinned maps) adopts the tables: the same
// backends write nothing and keep the very inner map; a changed set or M rebuilds it.
TEST_F(MaglevTest, RestartAdoptsPinnedTablesAndRebuildsOnlyWhatDiffers) {
  lb::Frontend keep = maglevFe("198.19.0.25", 80, lb::FrontendKind::ExternalIP, 2, 4);
  lb::Frontend change = maglevFe("198.19.0.26", 80, lb::FrontendKind::ExternalIP, 2, 4);
  sync("default/keep", {keep});
  sync("default/change", {change});
  uint32_t keepRev = revNatOf(keep.key), changeRev = revNatOf(change.key);
  uint32_t keepInner = innerId(keepRev), changeInner = innerId(changeRev);
  ASSERT_NE(keepInner, 0u);

  syncer_ = std::make_unique<lb::Syncer>(*writer_);
  syncer_->adopt(writer_->read());
  EXPECT_EQ(syncer_->maglevTableCount(), 2u);
  auto r = syncer_->syncOwner("default/keep", {keep});
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(r.maglevTablesWritten, 0u) << "an adopted table equal to the wanted one was rebuilt";
  EXPECT_EQ(innerId(keepRev), keepInner);
  lb::Frontend changed = maglevFe("198.19.0.26", 80, lb::FrontendKind::ExternalIP, 2, 3);
  r = syncer_->syncOwner("default/change", {changed});
  EXPECT_EQ(r.maglevTablesWritten, 1u);
  EXPECT_NE(innerId(changeRev), changeInner);
  EXPECT_EQ(fromNet(makePacket(IPPROTO_TCP, kClient, 45000, "198.19.0.26", 80)).out.dst(),
            expected(changed, 45000));

  // Another M in the configuration: the adopted tables are rebuilt at the new size.
  syncer_ = std::make_unique<lb::Syncer>(*writer_, nullptr, lb::MaglevConfig{251, SY_MAGLEV_SEED_DEFAULT});
  syncer_->adopt(writer_->read());
  r = syncer_->syncOwner("default/keep", {keep});
  EXPECT_EQ(r.maglevTablesWritten, 1u);
  std::vector<uint32_t> table;
  ASSERT_TRUE(writer_->readMaglevTable(keepRev, table));
  EXPECT_EQ(table.size(), 251u);
  EXPECT_EQ(fromNet(makePacket(IPPROTO_TCP, kClient, 45001, "198.19.0.25", 80)).out.dst(), expected(keep, 45001));

  // Removing the frontends removes their tables.
  EXPECT_EQ(syncer_->syncOwner("default/keep", {}).errors, 0u);
  EXPECT_EQ(innerId(keepRev), 0u);
}

}  // namespace
}  // namespace switchyard::bpftest
