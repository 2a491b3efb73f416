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
//
// Many services are synced together in phases (backends and rev NAT entries, then slots,
// then heads, then deletions), so a writer can hand each phase to the kernel in batches:
// a cold sync of 100,000 services costs a few hundred system calls, not a million.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lb/dataplane_writer.h"
#include "lb/id_index.h"
#include "lb/maglev.h"
#include "lb/types.h"

namespace switchyard::lb {

// A UDP backend that a frontend no longer has (removed from it, or the frontend deleted),
// in neither of the frontend's scopes.
struct StaleUdpBackend {
  FrontendKey frontend;
  BackendKey backend;
  auto operator<=>(const StaleUdpBackend&) const = default;
};

struct SyncResult {
  size_t frontendsWritten = 0;  // frontends whose slots were (re)written
  size_t frontendsDeleted = 0;
  size_t backendsWritten = 0;
  size_t backendsDeleted = 0;
  size_t maglevTablesWritten = 0;  // Maglev tables built and swapped in
  size_t errors = 0;            // failed map operations (logged and counted by the writer)
  std::vector<std::string> problems;  // input the syncer refused, naming object and field
  // What kube-proxy would clear UDP conntrack entries for (a removed UDP endpoint): the
  // daemon terminates connected UDP sockets that socket LB sent to these (bpf/sock_term.h).
  std::vector<StaleUdpBackend> staleUdp;

  void add(const SyncResult& o);
};

// A frontend's slots are numbered by a __u16 (abi.h).
inline constexpr size_t kMaxBackendsPerFrontend = 65535;

// How long a released ID waits before it is handed out again (IdAllocator): backend IDs live
// on in conntrack and affinity entries for up to the longest conntrack lifetime (abi.h
// SY_CT_LIFETIME_MAX, checked in bpf/abi_check.cpp), rev NAT IDs in affinity entries for up
// to the longest affinity timeout Kubernetes allows (timeoutSeconds <= 86400).
inline constexpr std::chrono::seconds kBackendIdQuarantine{21600};
inline constexpr std::chrono::seconds kRevNatIdQuarantine{86400};

// What one owner (a Service's namespace/name) should have.
struct OwnerFrontends {
  std::string owner;
  std::vector<Frontend> frontends;
};

class Syncer {
 public:
  // now: the clock of ID quarantines (tests inject one). maglev: the tables' M and seed.
  explicit Syncer(DataplaneWriter& writer, IdAllocator::Now now = nullptr, MaglevConfig maglev = {});
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  // Takes over what the maps already hold (IDs and contents) so the first sync after a
  // restart writes only differences. Entries stay unclaimed until a service claims them.
  void adopt(const DataplaneState& state);

  // Makes the frontends of each owner exactly what is listed. force: rewrite every entry
  // even where the syncer believes the maps agree (the repair after failed writes, and the
  // periodic reconcile). Backends no slot names any more are deleted by collectGarbage().
  SyncResult syncOwners(std::span<const OwnerFrontends> owners, bool force = false);

  // syncOwners for one owner, then collectGarbage().
  SyncResult syncOwner(const std::string& owner, const std::vector<Frontend>& desired,
                       bool force = false);

  // Deletes backends that no slot names any more.
  SyncResult collectGarbage();

  // Deletes adopted frontends that no owner claimed (services removed while the daemon
  // was down). Call once after the first complete sync.
  SyncResult removeUnclaimed();

  size_t frontendCount() const { return frontends_.size(); }
  size_t backendCount() const { return backendIndex_.size(); }
  // Frontends with a Maglev table in the maps.
  size_t maglevTableCount() const;
  // Owners with at least one frontend, for a full resync after errors.
  std::vector<std::string> owners() const;
  void forEachOwner(const std::function<void(const std::string&)>& f) const {
    for (const auto& [owner, keys] : owners_) {
      f(owner);
    }
  }

 private:
  struct ProgrammedState {
    const std::string* owner = nullptr;  // key of owners_; nullptr = adopted, not yet claimed
    uint32_t revNatId = 0;
    FrontendHead head;
    std::vector<uint32_t> backendIds;  // what slots 1..n hold
    std::vector<Cidr> ranges;          // what srcrange holds for its rev NAT ID
    // Backends the maps may still name after a failed write (the old head was kept):
    // referenced until a write of this frontend succeeds.
    std::vector<uint32_t> heldIds;
    // -- Maglev --
    bool maglevTable = false;  // the maglev map holds a table for revNatId
    uint64_t maglevDigest = 0;  // maglevDigest() of that table
    uint64_t maglevInput = 0;   // what it was built from (0: unknown, e.g. adopted)
  };
  struct BackendEntry {  // 28 bytes: a million of them at 100,000 services
    BackendKey key;
    uint32_t refs = 0;
    bool terminating = false;
    bool local = false;
    bool live = false;
    bool written = false;  // written in the current syncOwners call (see written_)
  };
  struct KeyOfBackend {
    const std::deque<BackendEntry>* table;
    const BackendKey& operator()(uint32_t id) const { return (*table)[id].key; }
  };
  // One frontend's planned write: slots first, then (if they all landed) the head.
  struct WritePlan {
    FrontendKey key;
    std::vector<uint32_t> slots;   // slot contents wanted
    std::vector<uint32_t> oldIds;  // slot contents before
    FrontendHead head;
    std::vector<Cidr> ranges;      // source ranges wanted
    std::vector<Cidr> rangeDeletes;  // source ranges the head no longer uses
    bool revNatNew = false;        // its rev NAT entry is written in this batch
    size_t firstSlotOp = 0, endSlotOp = 0;
    size_t firstAffinityOp = 0, endAffinityOp = 0;
    // -- Maglev: a table to swap in before the head (index into Batch::maglevOps), or the
    // table to delete after it --
    bool maglevPut = false, maglevDelete = false;
    size_t maglevOp = 0;
    uint64_t maglevDigest = 0, maglevInput = 0;
    int maglevDeleteResult = 0;
    bool failed = false;
  };
  // Operations planned for a group of owners, applied in phases by execute().
  struct Batch {
    std::vector<MapOp> backendOps, revNatOps, slotOps;
    std::vector<MapOp> rangeAdds;  // before the heads
    std::vector<MapOp> affinityMoves;  // after the slots, before the heads
    std::vector<MapOp> maglevOps;      // PutMaglev: after the slots, before the heads
    std::vector<WritePlan> writes;
    std::vector<FrontendKey> deletes;
    std::unordered_set<FrontendKey, AddrPortHash> touched;
    bool empty() const { return writes.empty() && deletes.empty() && backendOps.empty(); }
  };

  void plan(const OwnerFrontends& o, bool force, Batch& b, SyncResult& r);
  void execute(Batch& b, SyncResult& r);
  bool conflicts(const OwnerFrontends& o, const Batch& b) const;
  uint32_t acquireBackend(const Backend& b, bool force, Batch& batch);
  void releaseBackend(uint32_t id);
  void claim(ProgrammedState& st, const FrontendKey& key, const std::string& owner, SyncResult& r);
  void disown(const FrontendKey& key, ProgrammedState& st);
  void planDelete(const FrontendKey& key, Batch& b);
  size_t applyCounted(std::vector<MapOp>& ops, SyncResult& r);
  // -- Maglev --
  // Plans frontend fe's table (ids: the backend IDs of fe.backends, in order).
  void planMaglev(const Frontend& fe, const std::vector<uint32_t>& ids, ProgrammedState& st, bool rewriteAll,
                  WritePlan& w, Batch& b);
  void retryMaglevDeletes(SyncResult& r);

  DataplaneWriter& writer_;
  std::unordered_map<FrontendKey, ProgrammedState, AddrPortHash> frontends_;
  std::unordered_map<std::string, std::vector<FrontendKey>> owners_;
  std::deque<BackendEntry> backends_;  // index = backend ID (a deque: no 2x growth spikes)
  IdIndex<BackendKey, AddrPortHash, KeyOfBackend> backendIndex_;
  IdAllocator backendIds_;
  IdAllocator revNatIds_;
  std::vector<uint32_t> released_;       // backends whose refs reached 0
  std::vector<uint32_t> orphanRevNats_;  // adopted rev NAT entries no frontend names
  // Backends whose last write failed: no slot may name them until a write succeeds.
  std::unordered_set<uint32_t> failedBackends_;
  std::vector<uint32_t> written_;        // backends with `written` set, cleared per call
  // -- Maglev --
  MaglevConfig maglev_;
  // Tables no frontend uses whose deletion is due (a failed delete, or adopted orphans).
  std::vector<uint32_t> staleMaglev_;
  // Tables built in the current plan() by input digest: an owner's frontends of one port
  // (NodePort, LB IPs, external IPs) share their backends, so one build serves them all.
  std::unordered_map<uint64_t, std::vector<uint32_t>> builtTables_;
};

}  // namespace switchyard::lb
