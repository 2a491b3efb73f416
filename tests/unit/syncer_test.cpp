// The syncer: incremental, ordered so no packet sees a half-made service, O(changes) per
// update, and adoption of pinned state after a restart without rewriting it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_maps.h"
#include "lb/syncer.h"

#include <set>

namespace switchyard::lb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::FakeMaps;

FrontendKey fe(const std::string& ip, uint16_t port, uint8_t proto = kProtoTCP) {
  return {*IpAddr::parse(ip), port, proto};
}

Frontend frontend(const std::string& ip, uint16_t port, const std::vector<std::string>& backendIps,
                  uint16_t backendPort = 8080) {
  Frontend f;
  f.key = fe(ip, port);
  for (const auto& b : backendIps) {
    f.backends.push_back({{*IpAddr::parse(b), backendPort, kProtoTCP}, false});
  }
  std::sort(f.backends.begin(), f.backends.end());
  return f;
}

std::vector<std::string> pods(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) {
    out.push_back("198.18." + std::to_string(16 + i / 250) + "." + std::to_string(2 + i % 250));
  }
  return out;
}

TEST(Syncer, CreateUpdateDeleteKeepsEveryIntermediateStateServable) {
  FakeMaps maps;
  Syncer s(maps);
  auto r = s.syncOwner("default/web", {frontend("198.19.0.10", 80, {"198.18.16.2", "198.18.16.3", "198.18.16.4"})});
  EXPECT_EQ(r.errors, 0u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.10", 80)),
              ElementsAre("198.18.16.2:8080/TCP", "198.18.16.3:8080/TCP", "198.18.16.4:8080/TCP"));

  // Shrink from the middle, then grow, then replace everything.
  s.syncOwner("default/web", {frontend("198.19.0.10", 80, {"198.18.16.2", "198.18.16.4"})});
  EXPECT_THAT(maps.reachable(fe("198.19.0.10", 80)), ElementsAre("198.18.16.2:8080/TCP", "198.18.16.4:8080/TCP"));
  EXPECT_EQ(maps.backends.size(), 2u) << "an unreferenced backend is deleted";
  s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 9))});
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 10u);
  s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(20, 22))});
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 3u);
  EXPECT_EQ(maps.backends.size(), 3u);

  // Delete: nothing of the service is left.
  r = s.syncOwner("default/web", {});
  EXPECT_EQ(r.frontendsDeleted, 1u);
  EXPECT_THAT(maps.slots, IsEmpty());
  EXPECT_THAT(maps.backends, IsEmpty());
  EXPECT_THAT(maps.revNats, IsEmpty());
  EXPECT_THAT(maps.violations, IsEmpty());
}

Frontend udpFrontend(const std::string& ip, uint16_t port, const std::vector<std::string>& backendIps,
                     Scope scope = Scope::External) {
  Frontend f = frontend(ip, port, backendIps, 5353);
  f.key.proto = kProtoUDP;
  f.key.scope = scope;
  for (auto& b : f.backends) {
    b.key.proto = kProtoUDP;
  }
  return f;
}

std::vector<std::string> staleOf(const SyncResult& r) {
  std::vector<std::string> out;
  for (const StaleUdpBackend& s : r.staleUdp) {
    out.push_back(s.frontend.str() + " -> " + s.backend.str());
  }
  return out;
}

// kube-proxy clears the conntrack entries of a UDP endpoint removed from a service port
// (and of a deleted service's endpoints), so clients stop sending to it: the syncer names
// those pairs for the daemon (which terminates socket LB's connected UDP sockets); TCP
// endpoints need nothing (their connections fail on their own).
TEST(Syncer, RemovedUdpEndpointsAreNamedForTermination_KubeProxyDeleteUDPEndpointConnections) {
  FakeMaps maps;
  Syncer s(maps);
  auto r = s.syncOwner("default/dns", {udpFrontend("198.19.0.53", 53, {"198.18.16.2", "198.18.16.3"}),
                                       frontend("198.19.0.53", 80, {"198.18.16.2", "198.18.16.3"})});
  EXPECT_THAT(staleOf(r), IsEmpty());
  r = s.syncOwner("default/dns", {udpFrontend("198.19.0.53", 53, {"198.18.16.3"}),
                                  frontend("198.19.0.53", 80, {"198.18.16.3"})});
  EXPECT_THAT(staleOf(r), ElementsAre("198.19.0.53:53/UDP -> 198.18.16.2:5353/UDP"));
  r = s.syncOwner("default/dns", {udpFrontend("198.19.0.53", 53, {"198.18.16.3", "198.18.16.4"})});
  EXPECT_THAT(staleOf(r), IsEmpty()) << "an added endpoint, a removed TCP frontend: nothing to terminate";
  r = s.syncOwner("default/dns", {});
  EXPECT_THAT(staleOf(r), ElementsAre("198.19.0.53:53/UDP -> 198.18.16.3:5353/UDP",
                                      "198.19.0.53:53/UDP -> 198.18.16.4:5353/UDP"));
}

TEST(Syncer, AUdpEndpointTheOtherScopeKeepsIsNotStale) {
  FakeMaps maps;
  Syncer s(maps);
  s.syncOwner("default/dns", {udpFrontend("198.19.0.53", 53, {"198.18.16.2", "198.18.16.3"}),
                              udpFrontend("198.19.0.53", 53, {"198.18.16.2", "198.18.16.3"}, Scope::Internal)});
  auto r = s.syncOwner("default/dns", {udpFrontend("198.19.0.53", 53, {"198.18.16.3"}),
                                       udpFrontend("198.19.0.53", 53, {"198.18.16.2", "198.18.16.3"}, Scope::Internal)});
  EXPECT_THAT(staleOf(r), IsEmpty()) << "in-cluster clients still reach 198.18.16.2 through the internal scope";
  r = s.syncOwner("default/dns", {udpFrontend("198.19.0.53", 53, {"198.18.16.3"}),
                                  udpFrontend("198.19.0.53", 53, {"198.18.16.3"}, Scope::Internal)});
  EXPECT_THAT(staleOf(r), ElementsAre("198.19.0.53:53/UDP -> 198.18.16.2:5353/UDP"));
}

TEST(Syncer, NoBackendsIsAServiceWithCountZero) {
  FakeMaps maps;
  Syncer s(maps);
  s.syncOwner("default/web", {frontend("198.19.0.10", 80, {})});
  auto head = maps.slots.find({fe("198.19.0.10", 80), 0});
  ASSERT_NE(head, maps.slots.end()) << "the frontend must exist so traffic is rejected, not passed";
  EXPECT_EQ(head->second.count, 0u);
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(Syncer, OneEndpointChangeRewritesAConstantNumberOfSlots) {
  FakeMaps maps;
  Syncer s(maps);
  s.syncOwner("default/big", {frontend("198.19.0.10", 80, pods(0, 999))});
  size_t before = maps.slotWrites;
  // Remove one backend from the middle and add a new one.
  auto eps = pods(0, 999);
  eps.erase(eps.begin() + 500);
  eps.push_back(pods(2000, 2000)[0]);
  s.syncOwner("default/big", {frontend("198.19.0.10", 80, eps)});
  EXPECT_LE(maps.slotWrites - before, 2u) << "the new backend takes the removed one's slot, then slot 0";
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 1000u);
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(Syncer, UnchangedServiceWritesNothing) {
  FakeMaps maps;
  Syncer s(maps);
  auto f = frontend("198.19.0.10", 80, pods(0, 4));
  s.syncOwner("default/web", {f});
  size_t before = maps.slotWrites;
  auto r = s.syncOwner("default/web", {f});
  EXPECT_EQ(maps.slotWrites, before);
  EXPECT_EQ(r.frontendsWritten, 0u);
  EXPECT_EQ(r.backendsWritten, 0u);
}

TEST(Syncer, BackendsSharedBetweenServicesLiveAsLongAsOneUsesThem) {
  FakeMaps maps;
  Syncer s(maps);
  s.syncOwner("default/a", {frontend("198.19.0.10", 80, {"198.18.16.2"})});
  s.syncOwner("default/b", {frontend("198.19.0.11", 80, {"198.18.16.2"})});
  EXPECT_EQ(maps.backends.size(), 1u);
  s.syncOwner("default/a", {});
  EXPECT_EQ(maps.backends.size(), 1u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.11", 80)), ElementsAre("198.18.16.2:8080/TCP"));
  s.syncOwner("default/b", {});
  EXPECT_THAT(maps.backends, IsEmpty());
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(Syncer, AdoptionAfterRestartWritesNothingAndKeepsIds) {
  FakeMaps maps;
  {
    Syncer first(maps);
    first.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 2))});
    first.syncOwner("default/gone", {frontend("198.19.0.99", 80, pods(5, 5))});
  }
  auto idsBefore = maps.read();
  size_t writesBefore = maps.slotWrites;

  Syncer second(maps);
  second.adopt(maps.read());
  auto r = second.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 2))});
  EXPECT_EQ(maps.slotWrites, writesBefore) << "a restart must not rewrite what is already right";
  EXPECT_EQ(r.backendsWritten, 0u);
  // default/gone was deleted while we were down: removed once the first sync is complete.
  EXPECT_EQ(maps.reachable(fe("198.19.0.99", 80)).size(), 1u);
  r = second.removeUnclaimed();
  EXPECT_EQ(r.frontendsDeleted, 1u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.99", 80)), IsEmpty());
  auto after = maps.read();
  ASSERT_EQ(after.frontends.size(), 1u);
  EXPECT_EQ(after.frontends[0].revNatId, idsBefore.frontends[0].revNatId);
  EXPECT_EQ(after.frontends[0].backendIds, idsBefore.frontends[0].backendIds);
  EXPECT_EQ(after.backends.size(), 3u);
  EXPECT_THAT(maps.violations, IsEmpty());

  // New IDs never collide with adopted ones.
  second.syncOwner("default/new", {frontend("198.19.0.12", 80, pods(7, 7))});
  auto last = maps.read();
  EXPECT_EQ(last.backends.size(), 4u);
  EXPECT_EQ(last.revNats.size(), 2u);
}

TEST(Syncer, AFailedWriteIsCountedAndAForcedSyncRepairsIt) {
  FakeMaps maps;
  Syncer s(maps);
  maps.failOp = "putSlot";
  auto r = s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 2))});
  EXPECT_GT(r.errors, 0u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.10", 80)), IsEmpty());
  maps.failOp.clear();
  r = s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 2))}, /*force=*/true);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 3u);
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(Syncer, TooManyBackendsIsRefusedWithAMessage) {
  FakeMaps maps;
  Syncer s(maps);
  Frontend f = frontend("198.19.0.10", 80, {});
  for (uint32_t i = 0; i < kMaxBackendsPerFrontend + 1; ++i) {
    IpAddr a = *IpAddr::parse("198.18.0.0");
    a.bytes[13] = static_cast<uint8_t>(i >> 16);
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    f.backends.push_back({{a, 8080, kProtoTCP}, false});
  }
  auto r = s.syncOwner("default/huge", {f});
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_THAT(r.problems[0], ::testing::HasSubstr("Service default/huge: frontend 198.19.0.10:80/TCP has 65536 backends"));
  EXPECT_THAT(maps.slots, IsEmpty());
}

}  // namespace
}  // namespace switchyard::lb

namespace switchyard::lb {
namespace {

TEST(Syncer, APartlyFailedUpdateKeepsTheOldServiceWholeUntilRepaired) {
  FakeMaps maps;
  Syncer s(maps);
  s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 2))});
  // Grow to 5 backends while slot 5 cannot be written (the map is full).
  maps.failSlot = 5;
  auto r = s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 4))});
  EXPECT_GT(r.errors, 0u);
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 3u) << "the old head must stay";
  // Then replace everything while it still fails: the old backends the head covers stay.
  s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(10, 14))});
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 3u);
  EXPECT_THAT(maps.violations, IsEmpty()) << "a slot named a deleted backend, or the head a missing slot";
  // Room again: the forced repair completes it and frees what nothing names any more.
  maps.failSlot = 0;
  r = s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(10, 14))}, /*force=*/true);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 5u);
  EXPECT_EQ(maps.backends.size(), 5u) << "backends of the failed attempts must not leak";
  s.syncOwner("default/web", {});
  EXPECT_THAT(maps.backends, IsEmpty());
  EXPECT_THAT(maps.violations, IsEmpty());
}

}  // namespace
}  // namespace switchyard::lb

namespace switchyard::lb {
namespace {

TEST(Syncer, AFrontendMovingBetweenOwnersInOneCallIsHandedOverWhole) {
  FakeMaps maps;
  Syncer s(maps);
  s.syncOwner("default/a", {frontend("198.19.0.10", 80, pods(0, 2))});
  // One call: a gives the frontend up, b takes it with other backends.
  std::vector<OwnerFrontends> batch{{"default/a", {}}, {"default/b", {frontend("198.19.0.10", 80, pods(5, 6))}}};
  auto r = s.syncOwners(batch);
  r.add(s.collectGarbage());
  EXPECT_EQ(r.errors, 0u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.10", 80)), ElementsAre("198.18.16.7:8080/TCP", "198.18.16.8:8080/TCP"));
  EXPECT_EQ(maps.backends.size(), 2u);
  EXPECT_THAT(s.owners(), ElementsAre("default/b"));
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(Syncer, AFailedBackendWriteKeepsTheOldHeadAndIsRetried) {
  FakeMaps maps;
  Syncer s(maps);
  s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 1))});
  maps.failOp = "putBackend";
  auto r = s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 2))});
  EXPECT_GT(r.errors, 0u);
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 2u) << "no slot may name a backend that is not there";
  EXPECT_THAT(maps.violations, IsEmpty());
  maps.failOp.clear();
  r = s.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 2))});
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(maps.reachable(fe("198.19.0.10", 80)).size(), 3u) << "the backend is written again once named again";
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(Syncer, SlotsAboveTheCountAreDeletedOnAdoption) {
  FakeMaps maps;
  {
    Syncer first(maps);
    first.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 1))});
  }
  // A daemon that died between lowering a count and deleting the slots above it.
  maps.slots[{fe("198.19.0.10", 80), 3}] = SlotValue{maps.slots[{fe("198.19.0.10", 80), 1}].backendId, 0, 0, {}};
  Syncer second(maps);
  second.adopt(maps.read());
  EXPECT_EQ(maps.slots.count({fe("198.19.0.10", 80), 3}), 0u);
  EXPECT_EQ(maps.slots.size(), 3u) << "head and two slots stay";
}

// A clock the tests move by hand.
struct FakeClock {
  IdAllocator::Clock::time_point t{std::chrono::hours(1000)};
  IdAllocator::Now now() {
    return [this] { return t; };
  }
};

TEST(IdAllocator, AReleasedIdWaitsForTheQuarantineTimeBeforeReuse) {
  FakeClock clock;
  IdAllocator ids(std::chrono::hours(6), 1000, clock.now());
  EXPECT_EQ(ids.allocate(), 1u);
  EXPECT_EQ(ids.allocate(), 2u);
  ids.release(1);
  // However many IDs come and go meanwhile, 1 stays out for the whole quarantine: a
  // conntrack entry of a 6-hour TCP flow may still name it.
  for (int i = 0; i < 100; ++i) {
    uint32_t id = ids.allocate();
    EXPECT_NE(id, 1u) << "reused before its quarantine ended";
    ids.release(id);
  }
  clock.t += std::chrono::hours(6) - std::chrono::seconds(1);
  EXPECT_NE(ids.allocate(), 1u) << "a second before the quarantine ends";
  clock.t += std::chrono::seconds(1);
  EXPECT_EQ(ids.allocate(), 1u) << "quarantine over: the oldest released ID comes back first";
  EXPECT_TRUE(ids.inUse(1));
}

TEST(IdAllocator, PastTheCapTheOldestWaitingIdGoesEarly) {
  FakeClock clock;
  IdAllocator ids(std::chrono::hours(6), 2, clock.now());
  for (int i = 0; i < 3; ++i) {
    ids.allocate();
  }
  ids.release(1);
  ids.release(2);
  EXPECT_EQ(ids.allocate(), 4u) << "two waiting, cap two: none goes early";
  ids.release(3);
  EXPECT_EQ(ids.allocate(), 1u) << "three waiting, cap two: the oldest goes early";
}

TEST(IdAllocator, AdoptedIdsAreKeptTheGapsFreeAndIdsConntrackNamesHeld) {
  FakeClock clock;
  IdAllocator ids(std::chrono::hours(6), 1000, clock.now());
  ids.claim(3);
  ids.claim(6);
  ids.holdReleased(2);  // no backend entry, but a conntrack entry names it
  ids.holdReleased(6);  // in use: nothing to hold
  EXPECT_TRUE(ids.inUse(3));
  EXPECT_TRUE(ids.inUse(6));
  EXPECT_FALSE(ids.inUse(2));
  std::set<uint32_t> got{ids.allocate(), ids.allocate(), ids.allocate()};
  EXPECT_EQ(got, (std::set<uint32_t>{1, 4, 5})) << "the gaps nothing names are free at once";
  EXPECT_EQ(ids.allocate(), 7u) << "2 is held for a quarantine from adoption";
  clock.t += std::chrono::hours(6);
  EXPECT_EQ(ids.allocate(), 2u);
}

TEST(Syncer, ABackendIdConntrackStillNamesIsNotReusedAfterARestart) {
  FakeClock clock;
  FakeMaps maps;
  {
    Syncer first(maps, clock.now());
    first.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(0, 1))});
    first.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(1, 1))});
  }
  ASSERT_EQ(maps.backends.size(), 1u);
  uint32_t gone = 0;
  for (uint32_t id = 1; id <= 2; ++id) {
    if (!maps.backends.count(id)) gone = id;
  }
  ASSERT_NE(gone, 0u);
  DataplaneState st = maps.read();
  st.backendIdsInUse = {gone};  // what the restarted daemon reads from conntrack
  Syncer second(maps, clock.now());
  second.adopt(st);
  second.syncOwner("default/web", {frontend("198.19.0.10", 80, pods(1, 3))});
  EXPECT_EQ(maps.backends.count(gone), 0u) << "backend ID " << gone << " reused while conntrack names it";
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(IdIndex, FindsInsertsAndErasesThroughGrowthAndTombstones) {
  std::vector<BackendKey> keys(1);  // ID 0 unused
  auto keyOf = [&keys](uint32_t id) -> const BackendKey& { return keys[id]; };
  IdIndex<BackendKey, AddrPortHash, decltype(keyOf)> index(keyOf);
  for (uint32_t i = 1; i <= 5000; ++i) {
    BackendKey k{*IpAddr::parse("198.18.0.0"), static_cast<uint16_t>(i), kProtoTCP};
    keys.push_back(k);
    ASSERT_EQ(index.find(k), 0u);
    index.insert(k, i);
  }
  EXPECT_EQ(index.size(), 5000u);
  for (uint32_t i = 1; i <= 5000; i += 2) {
    index.erase(keys[i]);
  }
  for (uint32_t i = 1; i <= 5000; ++i) {
    EXPECT_EQ(index.find(keys[i]), i % 2 ? 0u : i) << i;
  }
  for (uint32_t i = 1; i <= 5000; i += 2) {
    index.insert(keys[i], i);  // reuses tombstones
  }
  EXPECT_EQ(index.size(), 5000u);
  EXPECT_EQ(index.find(keys[4999]), 4999u);
}

}  // namespace
}  // namespace switchyard::lb
