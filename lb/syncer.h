// Diff-and-apply of desired frontends to the maps, incremental per service.
//
// Ordering is the contract that keeps traffic flowing during updates:
//  - a backend entry exists before any slot points to it, and is deleted only after no
//    slot does;
//  - a service's backend slots are written before slot 0 switches its count, and when a
//    service shrinks, the count drops before the extra slots go;
//  - a reverse NAT entry exists before the frontend that names it.
// So a packet or connect() never sees a half-made service, and a restarted daemon that
// adopts the pinned maps rewrites only what changed.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lb/dataplane_writer.h"
#include "lb/types.h"

namespace switchyard::lb {

struct SyncResult {
  size_t frontendsWritten = 0;  // frontends whose slots were (re)written
  size_t frontendsDeleted = 0;
  size_t backendsWritten = 0;
  size_t backendsDeleted = 0;
  size_t errors = 0;            // failed map operations (logged and counted by the writer)
  std::vector<std::string> problems;  // input the syncer refused, naming object and field
};

// A frontend's slots are numbered by a __u16 (abi.h).
inline constexpr size_t kMaxBackendsPerFrontend = 65535;

class Syncer {
 public:
  explicit Syncer(DataplaneWriter& writer) : writer_(writer) {}

  // Takes over what the maps already hold (IDs and contents) so the first sync after a
  // restart writes only differences. Entries stay unclaimed until a service claims them.
  void adopt(const DataplaneState& state);

  // Makes the frontends owned by `owner` (a Service's namespace/name) exactly `desired`.
  // force: rewrite every entry even where the syncer believes the maps agree (the repair
  // after failed writes, and the periodic reconcile).
  SyncResult syncOwner(const std::string& owner, const std::vector<Frontend>& desired,
                       bool force = false);

  // Deletes adopted frontends that no owner claimed (services removed while the daemon
  // was down). Call once after the first complete sync.
  SyncResult removeUnclaimed();

  size_t frontendCount() const { return frontends_.size(); }
  size_t backendCount() const { return backends_.size(); }
  // Owners with at least one frontend, for a full resync after errors.
  std::vector<std::string> owners() const;

 private:
  struct ProgrammedState {
    std::string owner;  // "" = adopted, not yet claimed
    uint32_t revNatId = 0;
    uint16_t flags = 0;
    std::vector<uint32_t> backendIds;
    // Backends the maps may still name after a failed write (the old head was kept):
    // referenced until a write of this frontend succeeds.
    std::vector<uint32_t> heldIds;
  };
  struct BackendState {
    uint32_t id = 0;
    uint32_t refs = 0;
    bool terminating = false;
  };

  uint32_t acquireBackend(const Backend& b, bool force, SyncResult& r);
  void releaseBackend(uint32_t id);
  void deleteUnreferencedBackends(SyncResult& r);
  uint32_t allocateRevNat();
  // False when a slot write failed, so the head (slot 0) was left as it was.
  bool writeFrontend(const Frontend& fe, ProgrammedState& st, const std::vector<uint32_t>& slots,
                     bool force, SyncResult& r);
  void deleteFrontend(const FrontendKey& key, ProgrammedState& st, SyncResult& r);

  DataplaneWriter& writer_;
  std::map<FrontendKey, ProgrammedState> frontends_;
  std::map<std::string, std::set<FrontendKey>> owners_;
  std::map<BackendKey, BackendState> backends_;
  std::map<uint32_t, BackendKey> backendById_;
  std::set<uint32_t> revNatsInUse_;
  std::vector<uint32_t> releasedBackends_;  // refs hit 0 during this sync
  std::vector<uint32_t> orphanRevNats_;     // adopted rev NAT entries no frontend names
  uint32_t nextBackendId_ = 1;
  uint32_t nextRevNatId_ = 1;
};

}  // namespace switchyard::lb
