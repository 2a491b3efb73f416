// Events -> syncs: nothing before the source has synced, then only what changed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_maps.h"
#include "lb/proxier.h"

namespace switchyard::lb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::FakeMaps;

k8s::Service svc(const std::string& name, const std::string& ip) {
  k8s::Service s;
  s.metadata.namespace_ = "default";
  s.metadata.name = name;
  s.clusterIP = ip;
  s.clusterIPs = {ip};
  k8s::ServicePort p;
  p.name = "http";
  p.port = 80;
  s.ports = {p};
  return s;
}

k8s::EndpointSlice slice(const std::string& name, const std::string& service,
                         const std::vector<std::string>& ips) {
  k8s::EndpointSlice s;
  s.metadata.namespace_ = "default";
  s.metadata.name = name;
  s.metadata.labels["kubernetes.io/service-name"] = service;
  s.addressType = "IPv4";
  for (const auto& ip : ips) {
    k8s::Endpoint e;
    e.addresses = {ip};
    s.endpoints.push_back(e);
  }
  s.ports = {{"http", k8s::Protocol::TCP, 8080}};
  return s;
}

FrontendKey fe(const std::string& ip) { return {*IpAddr::parse(ip), 80, kProtoTCP}; }

TEST(Proxier, NothingIsProgrammedFromAPartialPicture) {
  FakeMaps maps;
  Proxier p(maps);
  p.onServiceUpsert(svc("web", "198.19.0.10"));
  EXPECT_FALSE(p.sync().ran);
  EXPECT_THAT(maps.slots, IsEmpty());
  p.onSynced();
  auto rep = p.sync();
  EXPECT_TRUE(rep.ran);
  EXPECT_TRUE(rep.full);
  EXPECT_EQ(maps.slots.size(), 1u);
}

TEST(Proxier, AnEndpointSliceChangeSyncsOnlyItsService) {
  FakeMaps maps;
  Proxier p(maps);
  p.onServiceUpsert(svc("a", "198.19.0.10"));
  p.onServiceUpsert(svc("b", "198.19.0.11"));
  p.onEndpointSliceUpsert(slice("a-1", "a", {"198.18.16.2", "198.18.16.3"}));
  p.onEndpointSliceUpsert(slice("b-1", "b", {"198.18.16.4"}));
  p.onSynced();
  p.sync();

  size_t logBefore = maps.log.size();
  p.onEndpointSliceUpsert(slice("a-1", "a", {"198.18.16.2"}));
  auto rep = p.sync();
  EXPECT_FALSE(rep.full);
  EXPECT_EQ(rep.servicesSynced, 1u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.10")), ElementsAre("198.18.16.2:8080/TCP"));
  EXPECT_THAT(maps.reachable(fe("198.19.0.11")), ElementsAre("198.18.16.4:8080/TCP"));
  // Exactly the change: service a's count drops, its slot 2 goes, and the backend nothing
  // names any more goes. Service b's entries are not touched.
  std::vector<std::string> ops;
  for (size_t i = logBefore; i < maps.log.size(); ++i) {
    const MapOp& op = maps.log[i];
    switch (op.kind) {
      case MapOp::Kind::PutSlot: ops.push_back("put " + op.frontend.str() + " slot " + std::to_string(op.slot)); break;
      case MapOp::Kind::DeleteSlot: ops.push_back("delete " + op.frontend.str() + " slot " + std::to_string(op.slot)); break;
      case MapOp::Kind::DeleteBackend: ops.push_back("delete backend"); break;
      default: ops.push_back("other"); break;
    }
  }
  EXPECT_THAT(ops, ElementsAre("put 198.19.0.10:80/TCP slot 0", "delete 198.19.0.10:80/TCP slot 2", "delete backend"));
  EXPECT_FALSE(p.sync().ran) << "nothing changed since";
}

TEST(Proxier, AnUpsertThatChangesNothingSyncsNothing) {
  FakeMaps maps;
  Proxier p(maps);
  auto s = svc("a", "198.19.0.10");
  auto sl = slice("a-1", "a", {"198.18.16.2"});
  p.onServiceUpsert(s);
  p.onEndpointSliceUpsert(sl);
  p.onSynced();
  p.sync();
  // A relist or an edit of a field translation does not read (a label, the
  // resourceVersion) delivers the objects again: nothing to sync.
  s.metadata.resourceVersion = "2";
  s.metadata.annotations["note"] = "x";
  sl.metadata.resourceVersion = "3";
  p.onServiceUpsert(s);
  p.onEndpointSliceUpsert(sl);
  EXPECT_FALSE(p.pending());
  EXPECT_FALSE(p.sync().ran);
}

TEST(Proxier, AFullSyncOfManyServicesGoesToTheWriterInFewBatches) {
  FakeMaps maps;
  Proxier p(maps);
  for (int i = 0; i < 1100; ++i) {  // more than one group of 512
    std::string name = "s" + std::to_string(i);
    std::string ip = "198.19." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
    p.onServiceUpsert(svc(name, ip));
    p.onEndpointSliceUpsert(slice(name + "-1", name, {"198.18.16." + std::to_string(2 + i % 200), "198.18.17.2"}));
  }
  p.onSynced();
  auto rep = p.sync();
  EXPECT_EQ(rep.result.errors, 0u);
  EXPECT_EQ(rep.result.frontendsWritten, 1100u);
  EXPECT_EQ(p.frontendCount(), 1100u);
  EXPECT_EQ(p.backendCount(), 201u) << "backends shared between services are written once";
  // 1,100 services: 2,200 slots, 1,100 heads, 1,100 rev NAT entries, 201 backends in a
  // handful of apply() calls (the real writer makes one batch system call per run of one
  // kind): four per group of 512 services.
  EXPECT_LE(maps.applyCalls, 15u);
  EXPECT_THAT(maps.violations, IsEmpty());
}

TEST(Proxier, ARemovedServiceLeavesNoEntry) {
  FakeMaps maps;
  Proxier p(maps);
  auto s = svc("web", "198.19.0.10");
  auto sl = slice("web-1", "web", {"198.18.16.2"});
  p.onServiceUpsert(s);
  p.onEndpointSliceUpsert(sl);
  p.onSynced();
  p.sync();
  p.onEndpointSliceDelete(sl);
  p.onServiceDelete(s);
  p.sync();
  EXPECT_THAT(maps.slots, IsEmpty());
  EXPECT_THAT(maps.backends, IsEmpty());
  EXPECT_THAT(maps.revNats, IsEmpty());
}

TEST(Proxier, SliceMovingToAnotherServiceUpdatesBoth) {
  FakeMaps maps;
  Proxier p(maps);
  p.onServiceUpsert(svc("a", "198.19.0.10"));
  p.onServiceUpsert(svc("b", "198.19.0.11"));
  p.onEndpointSliceUpsert(slice("s-1", "a", {"198.18.16.2"}));
  p.onSynced();
  p.sync();
  p.onEndpointSliceUpsert(slice("s-1", "b", {"198.18.16.2"}));
  auto rep = p.sync();
  EXPECT_EQ(rep.servicesSynced, 2u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.10")), IsEmpty());
  EXPECT_THAT(maps.reachable(fe("198.19.0.11")), ElementsAre("198.18.16.2:8080/TCP"));
}

TEST(Proxier, HeadlessAndForeignServicesAreNotProgrammed) {
  FakeMaps maps;
  Proxier p(maps);
  auto headless = svc("h", "None");
  auto foreign = svc("f", "198.19.0.12");
  foreign.metadata.labels["service.kubernetes.io/service-proxy-name"] = "other";
  p.onServiceUpsert(headless);
  p.onServiceUpsert(foreign);
  p.onSynced();
  p.sync();
  EXPECT_THAT(maps.slots, IsEmpty());
  // The label removed later: now programmed.
  foreign.metadata.labels.clear();
  p.onServiceUpsert(foreign);
  p.sync();
  EXPECT_EQ(maps.slots.size(), 1u);
}

TEST(Proxier, FailedWritesTriggerAForcedFullSync) {
  FakeMaps maps;
  Proxier p(maps);
  p.onServiceUpsert(svc("web", "198.19.0.10"));
  p.onEndpointSliceUpsert(slice("web-1", "web", {"198.18.16.2"}));
  p.onSynced();
  maps.failOp = "putSlot";
  EXPECT_GT(p.sync().result.errors, 0u);
  maps.failOp.clear();
  EXPECT_TRUE(p.pending());
  auto rep = p.sync();
  EXPECT_TRUE(rep.full);
  EXPECT_EQ(rep.result.errors, 0u);
  EXPECT_THAT(maps.reachable(fe("198.19.0.10")), ElementsAre("198.18.16.2:8080/TCP"));
}

}  // namespace
}  // namespace switchyard::lb
