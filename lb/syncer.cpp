#include "lb/syncer.h"

#include <algorithm>
#include <set>

namespace switchyard::lb {
namespace {

// Released IDs wait this long before they are handed out again (IdAllocator): backend IDs
// live on in conntrack and affinity entries for up to the longest conntrack lifetime, rev
// NAT IDs in affinity entries for up to the longest affinity timeout Kubernetes allows
// (sessionAffinityConfig.clientIP.timeoutSeconds <= 86400). At most this many wait at once.
constexpr size_t kBackendIdsWaitingMax = 262144;
constexpr size_t kRevNatIdsWaitingMax = 65536;

// A batch is applied once it holds this many slot operations: large enough that the
// writer's batch system calls amortize, small enough that the plan stays a few hundred KB.
constexpr size_t kBatchSlotOps = 8192;

// Slot assignment that keeps every surviving backend in its slot: new backends fill the
// holes left by removed ones, then the tail moves into remaining holes, then new ones are
// appended. One endpoint change rewrites O(1) slots, whatever the service's size.
std::vector<uint32_t> assignSlots(const std::vector<uint32_t>& oldIds,
                                  const std::vector<uint32_t>& wantedIds) {
  std::unordered_set<uint32_t> wanted(wantedIds.begin(), wantedIds.end());
  std::unordered_set<uint32_t> placed;
  std::vector<uint32_t> slots;
  std::vector<size_t> holes;
  slots.reserve(std::max(oldIds.size(), wantedIds.size()));
  for (uint32_t id : oldIds) {
    if (id != 0 && wanted.count(id) && placed.insert(id).second) {
      slots.push_back(id);
    } else {
      holes.push_back(slots.size());
      slots.push_back(0);
    }
  }
  std::vector<uint32_t> fresh;
  for (uint32_t id : wantedIds) {
    if (!placed.count(id)) {
      fresh.push_back(id);
    }
  }
  size_t f = 0;
  for (size_t h : holes) {
    if (f < fresh.size()) {
      slots[h] = fresh[f++];
    }
  }
  while (f < fresh.size()) {
    slots.push_back(fresh[f++]);
  }
  // Compact: move the last filled slot into each remaining hole.
  for (size_t i = 0; i < slots.size(); ++i) {
    while (slots[i] == 0 && !slots.empty()) {
      uint32_t last = slots.back();
      slots.pop_back();
      if (i < slots.size()) {
        slots[i] = last;
      } else {
        break;
      }
    }
  }
  while (!slots.empty() && slots.back() == 0) {
    slots.pop_back();
  }
  return slots;
}

}  // namespace

void SyncResult::add(const SyncResult& o) {
  frontendsWritten += o.frontendsWritten;
  frontendsDeleted += o.frontendsDeleted;
  backendsWritten += o.backendsWritten;
  backendsDeleted += o.backendsDeleted;
  maglevTablesWritten += o.maglevTablesWritten;
  errors += o.errors;
  problems.insert(problems.end(), o.problems.begin(), o.problems.end());
  staleUdp.insert(staleUdp.end(), o.staleUdp.begin(), o.staleUdp.end());
}

Syncer::Syncer(DataplaneWriter& writer, IdAllocator::Now now, MaglevConfig maglev)
    : writer_(writer), backendIndex_(KeyOfBackend{&backends_}),
      backendIds_(kBackendIdQuarantine, kBackendIdsWaitingMax, now),
      revNatIds_(kRevNatIdQuarantine, kRevNatIdsWaitingMax, now), maglev_(maglev) {}

void Syncer::adopt(const DataplaneState& state) {
  for (const auto& [id, b] : state.backends) {
    if (id == 0 || backendIndex_.find(b.key) != 0) {
      continue;  // a second ID for the same backend: unreferenced, so collected below
    }
    backendIds_.claim(id);
    if (backends_.size() <= id) {
      backends_.resize(id + 1);
    }
    backends_[id] = {b.key, 0, b.terminating, b.local, true, false};
    backendIndex_.insert(b.key, id);
  }
  std::vector<MapOp> strays;
  for (const ProgrammedFrontend& f : state.frontends) {
    ProgrammedState st;
    st.revNatId = f.revNatId;
    st.head = f.head;
    st.backendIds = f.backendIds;
    if (auto r = state.sourceRanges.find(f.revNatId); r != state.sourceRanges.end()) {
      st.ranges = r->second;
    }
    for (uint32_t id : f.backendIds) {
      if (id < backends_.size() && backends_[id].live) {
        backends_[id].refs++;
      }
    }
    // -- Maglev: the pinned table stays in use until a sync replaces it (only if it differs).
    // A backend it names that no slot does (a crash between the table swap and the head) is
    // held like the old backends of a failed write, so it outlives the table. --
    if (auto t = f.revNatId ? state.maglevTables.find(f.revNatId) : state.maglevTables.end();
        t != state.maglevTables.end()) {
      st.maglevTable = true;
      st.maglevDigest = t->second.digest;
      for (uint32_t id : t->second.backendIds) {
        if (std::find(f.backendIds.begin(), f.backendIds.end(), id) == f.backendIds.end() &&
            id < backends_.size() && backends_[id].live) {
          backends_[id].refs++;
          st.heldIds.push_back(id);
        }
      }
    }
    if (f.revNatId != 0) {
      revNatIds_.claim(f.revNatId);
    }
    // Slots above the count (a crash between lowering it and deleting them): no packet
    // can reach them, so they go now.
    for (uint16_t s : f.straySlots) {
      strays.push_back(MapOp::deleteSlot(f.key, s));
    }
    frontends_[f.key] = std::move(st);
  }
  if (!strays.empty()) {
    writer_.apply(strays);
    strays.clear();
  }
  // Tables no frontend names (a failed delete before a restart): no head flags them, so they
  // go now. One that cannot keeps its rev NAT ID from being handed out (a new frontend's
  // table would be deleted with it) and is retried by collectGarbage().
  for (const auto& [id, t] : state.maglevTables) {
    if (!revNatIds_.inUse(id)) {
      strays.push_back(MapOp::deleteMaglev(id));
    }
  }
  if (!strays.empty()) {
    writer_.apply(strays);
  }
  for (const MapOp& op : strays) {
    if (op.result < 0) {
      revNatIds_.claim(op.id);
      staleMaglev_.push_back(op.id);
    }
  }
  strays.clear();
  for (const auto& [id, key] : state.revNats) {
    if (!revNatIds_.inUse(id)) {
      revNatIds_.claim(id);
      orphanRevNats_.push_back(id);
    }
  }
  for (const auto& [id, ranges] : state.sourceRanges) {
    if (!revNatIds_.inUse(id)) {
      for (const Cidr& c : ranges) {
        strays.push_back(MapOp::deleteSourceRange(id, c));
      }
    }
  }
  if (!strays.empty()) {
    writer_.apply(strays);
  }
  // IDs that no entry holds but conntrack (or affinity) still names wait a full quarantine.
  for (uint32_t id : state.backendIdsInUse) {
    backendIds_.holdReleased(id);
  }
  for (uint32_t id : state.revNatIdsInUse) {
    revNatIds_.holdReleased(id);
  }
  for (uint32_t id = 1; id < backends_.size(); ++id) {
    if (backends_[id].live && backends_[id].refs == 0) {
      released_.push_back(id);
    }
  }
}

uint32_t Syncer::acquireBackend(const Backend& b, bool force, Batch& batch) {
  uint32_t id = backendIndex_.find(b.key);
  if (id == 0) {
    id = backendIds_.allocate();
    if (backends_.size() <= id) {
      backends_.resize(id + 1);
    }
    backends_[id] = {b.key, 0, b.terminating, b.local, true, false};
    backendIndex_.insert(b.key, id);
    force = true;
  }
  BackendEntry& e = backends_[id];
  // A backend whose last write failed is written again by whoever names it next.
  if (!failedBackends_.empty() && failedBackends_.count(id)) {
    force = true;
  }
  if ((force || e.terminating != b.terminating || e.local != b.local) && !e.written) {
    e.terminating = b.terminating;
    e.local = b.local;
    e.written = true;
    written_.push_back(id);
    batch.backendOps.push_back(MapOp::putBackend(id, b));
  }
  e.refs++;
  return id;
}

void Syncer::releaseBackend(uint32_t id) {
  if (id >= backends_.size() || !backends_[id].live) {
    return;
  }
  BackendEntry& e = backends_[id];
  if (e.refs > 0 && --e.refs == 0) {
    released_.push_back(id);
  }
}

SyncResult Syncer::collectGarbage() {
  SyncResult r;
  retryMaglevDeletes(r);
  std::vector<MapOp> ops;
  for (uint32_t id : released_) {
    if (backends_[id].live && backends_[id].refs == 0) {
      ops.push_back(MapOp::deleteBackend(id));
    }
  }
  released_.clear();
  std::sort(ops.begin(), ops.end(), [](const MapOp& a, const MapOp& b) { return a.id < b.id; });
  ops.erase(std::unique(ops.begin(), ops.end(), [](const MapOp& a, const MapOp& b) { return a.id == b.id; }),
            ops.end());
  applyCounted(ops, r);
  for (const MapOp& op : ops) {
    if (op.result < 0) {
      released_.push_back(op.id);  // stays known; the next collection retries
      continue;
    }
    r.backendsDeleted++;
    failedBackends_.erase(op.id);
    BackendEntry& e = backends_[op.id];
    backendIndex_.erase(e.key);
    e.live = false;
    backendIds_.release(op.id);
  }
  return r;
}

size_t Syncer::applyCounted(std::vector<MapOp>& ops, SyncResult& r) {
  if (ops.empty()) {
    return 0;
  }
  writer_.apply(ops);
  size_t failed = 0;
  for (const MapOp& op : ops) {
    failed += op.result < 0;
  }
  r.errors += failed;
  return failed;
}

void Syncer::claim(ProgrammedState& st, const FrontendKey& key, const std::string& owner,
                   SyncResult& r) {
  if (st.owner && *st.owner == owner) {
    return;
  }
  if (st.owner) {
    r.problems.push_back("Service " + owner + ": frontend " + key.str() + " was owned by Service " +
                         *st.owner + "; taken over");
    disown(key, st);
  }
  auto [it, inserted] = owners_.try_emplace(owner);
  it->second.push_back(key);
  st.owner = &it->first;
}

void Syncer::disown(const FrontendKey& key, ProgrammedState& st) {
  if (!st.owner) {
    return;
  }
  auto it = owners_.find(*st.owner);
  st.owner = nullptr;
  if (it == owners_.end()) {
    return;
  }
  std::erase(it->second, key);
  if (it->second.empty()) {
    owners_.erase(it);
  }
}

bool Syncer::conflicts(const OwnerFrontends& o, const Batch& b) const {
  if (b.touched.empty()) {
    return false;
  }
  for (const Frontend& fe : o.frontends) {
    if (b.touched.count(fe.key)) {
      return true;
    }
  }
  auto owned = owners_.find(o.owner);
  if (owned != owners_.end()) {
    for (const FrontendKey& k : owned->second) {
      if (b.touched.count(k)) {
        return true;
      }
    }
  }
  return false;
}

void Syncer::planDelete(const FrontendKey& key, Batch& b) {
  b.deletes.push_back(key);
  b.touched.insert(key);
}

void Syncer::plan(const OwnerFrontends& o, bool force, Batch& b, SyncResult& r) {
  builtTables_.clear();
  std::unordered_set<FrontendKey, AddrPortHash> wanted;
  for (const Frontend& fe : o.frontends) {
    if (fe.backends.size() > kMaxBackendsPerFrontend) {
      r.errors++;
      r.problems.push_back("Service " + o.owner + ": frontend " + fe.key.str() + " has " +
                           std::to_string(fe.backends.size()) + " backends, more than the " +
                           std::to_string(kMaxBackendsPerFrontend) + " a service can hold");
      continue;
    }
    if (!wanted.insert(fe.key).second) {
      continue;  // listed twice by one owner: the first one counts
    }
    auto [it, inserted] = frontends_.try_emplace(fe.key);
    ProgrammedState& st = it->second;
    claim(st, fe.key, o.owner, r);
    b.touched.insert(fe.key);

    WritePlan w;
    w.key = fe.key;
    w.head = fe.head;
    w.ranges = fe.sourceRanges;
    std::vector<uint32_t> ids;
    ids.reserve(fe.backends.size());
    for (const Backend& be : fe.backends) {
      ids.push_back(acquireBackend(be, force, b));
    }
    w.oldIds = st.backendIds;
    if (st.revNatId == 0) {
      st.revNatId = revNatIds_.allocate();
      w.revNatNew = true;
    }
    if (w.revNatNew || force) {
      b.revNatOps.push_back(MapOp::putRevNat(st.revNatId, fe.key));
    }
    w.slots = assignSlots(w.oldIds, ids);
    bool rewriteAll = force || inserted || !st.heldIds.empty();
    // Source ranges go in before the head that enables them, and out after it.
    for (const Cidr& c : w.ranges) {
      if (rewriteAll || w.revNatNew || !std::binary_search(st.ranges.begin(), st.ranges.end(), c)) {
        b.rangeAdds.push_back(MapOp::putSourceRange(st.revNatId, c));
      }
    }
    for (const Cidr& c : st.ranges) {
      if (!std::binary_search(w.ranges.begin(), w.ranges.end(), c)) {
        w.rangeDeletes.push_back(c);
      }
    }
    planMaglev(fe, ids, st, rewriteAll, w, b);
    if (!rewriteAll && !w.revNatNew && w.slots == w.oldIds && st.head == fe.head &&
        st.ranges == w.ranges && !w.maglevPut && !w.maglevDelete) {
      // Nothing to write: the references taken above replace the old ones.
      for (uint32_t id : w.oldIds) {
        releaseBackend(id);
      }
      continue;
    }
    w.firstSlotOp = b.slotOps.size();
    for (size_t i = 0; i < w.slots.size(); ++i) {
      if (rewriteAll || i >= w.oldIds.size() || w.oldIds[i] != w.slots[i]) {
        b.slotOps.push_back(MapOp::putSlot(fe.key, static_cast<uint16_t>(i + 1), {w.slots[i], 0, 0, {}}));
      }
    }
    w.endSlotOp = b.slotOps.size();
    // Session affinity follows a backend to its new slot (the datapath only honours an
    // affinity entry while its slot holds its backend), so it survives churn of the others.
    // A Maglev frontend's entries name table positions, not slots: they stay (a client whose
    // position changed hands is balanced again, as every other node balances it).
    w.firstAffinityOp = b.affinityMoves.size();
    if (fe.head.affinityTimeout && !w.oldIds.empty() && !(fe.head.flags & kFrontendMaglev)) {
      std::unordered_map<uint32_t, uint16_t> oldSlot;
      for (size_t i = 0; i < w.oldIds.size(); ++i) {
        oldSlot.emplace(w.oldIds[i], static_cast<uint16_t>(i + 1));
      }
      for (size_t i = 0; i < w.slots.size(); ++i) {
        auto it = oldSlot.find(w.slots[i]);
        if (it != oldSlot.end() && it->second != i + 1) {
          b.affinityMoves.push_back(
              MapOp::moveAffinity(st.revNatId, w.slots[i], it->second, static_cast<uint16_t>(i + 1)));
        }
      }
    }
    w.endAffinityOp = b.affinityMoves.size();
    b.writes.push_back(std::move(w));
  }
  // Frontends the owner had and no longer wants.
  auto owned = owners_.find(o.owner);
  if (owned != owners_.end()) {
    for (const FrontendKey& k : owned->second) {
      if (!wanted.count(k)) {
        planDelete(k, b);
      }
    }
  }
}

void Syncer::execute(Batch& b, SyncResult& r) {
  // Phase 1: backends and rev NAT entries, which slots and heads will name.
  applyCounted(b.backendOps, r);
  for (const MapOp& op : b.backendOps) {
    if (op.result == 0) {
      r.backendsWritten++;
    }
  }
  applyCounted(b.revNatOps, r);
  applyCounted(b.rangeAdds, r);
  std::unordered_set<uint32_t> failedRevNats;
  for (const MapOp& op : b.backendOps) {
    if (op.result < 0) {
      failedBackends_.insert(op.id);
    } else if (!failedBackends_.empty()) {
      failedBackends_.erase(op.id);
    }
  }
  for (const MapOp& op : b.revNatOps) {
    if (op.result < 0) {
      failedRevNats.insert(op.id);
    }
  }
  for (const MapOp& op : b.rangeAdds) {
    if (op.result < 0) {
      failedRevNats.insert(op.id);  // its head must not enable ranges that did not land
    }
  }
  // Phase 2: slots, except those of frontends that would name a backend or rev NAT entry
  // that failed to land (their old head stays; a repair sync retries).
  std::vector<MapOp> slotOps;
  slotOps.reserve(b.slotOps.size());
  std::vector<std::pair<size_t, size_t>> ranges(b.writes.size());
  for (size_t i = 0; i < b.writes.size(); ++i) {
    WritePlan& w = b.writes[i];
    const ProgrammedState& st = frontends_.at(w.key);
    if (!failedRevNats.empty() && failedRevNats.count(st.revNatId) &&
        (w.revNatNew || !w.ranges.empty())) {
      w.failed = true;
    }
    if (!failedBackends_.empty()) {
      for (uint32_t id : w.slots) {
        if (failedBackends_.count(id)) {
          w.failed = true;
          break;
        }
      }
    }
    size_t begin = slotOps.size();
    if (!w.failed) {
      slotOps.insert(slotOps.end(), b.slotOps.begin() + static_cast<long>(w.firstSlotOp),
                     b.slotOps.begin() + static_cast<long>(w.endSlotOp));
    }
    ranges[i] = {begin, slotOps.size()};
  }
  applyCounted(slotOps, r);
  // Affinity entries move with their backends while both slots hold them (the head still
  // covers the old one), for the frontends whose slots landed.
  std::vector<MapOp> moves;
  for (size_t i = 0; i < b.writes.size(); ++i) {
    WritePlan& w = b.writes[i];
    bool landed = !w.failed;
    for (size_t k = ranges[i].first; k < ranges[i].second && landed; ++k) {
      landed = slotOps[k].result == 0;
    }
    if (landed) {
      moves.insert(moves.end(), b.affinityMoves.begin() + static_cast<long>(w.firstAffinityOp),
                   b.affinityMoves.begin() + static_cast<long>(w.endAffinityOp));
    }
  }
  applyCounted(moves, r);
  for (size_t i = 0; i < b.writes.size(); ++i) {
    WritePlan& w = b.writes[i];
    for (size_t k = ranges[i].first; k < ranges[i].second && !w.failed; ++k) {
      w.failed = slotOps[k].result < 0;
    }
  }
  // -- Maglev: phase 2b, the tables of frontends whose slots landed, each built whole and
  // swapped in before the head that flags it (a failed one keeps the old head and table). --
  std::vector<MapOp> tables;
  std::vector<size_t> tableOf;
  for (size_t i = 0; i < b.writes.size(); ++i) {
    WritePlan& w = b.writes[i];
    if (w.maglevPut && !w.failed) {
      tables.push_back(std::move(b.maglevOps[w.maglevOp]));
      tableOf.push_back(i);
    }
  }
  applyCounted(tables, r);
  for (size_t t = 0; t < tables.size(); ++t) {
    if (tables[t].result < 0) {
      b.writes[tableOf[t]].failed = true;
    } else {
      r.maglevTablesWritten++;
    }
  }
  tables.clear();
  // -- end Maglev --
  // Phase 3: heads, for frontends whose slots all landed. Internal-scope heads go before
  // external ones: an external head that announces an internal entry (kFrontendTwoScopes)
  // never lands before that entry.
  std::vector<MapOp> heads;
  std::vector<size_t> headOf;
  for (Scope scope : {Scope::Internal, Scope::External}) {
    for (size_t i = 0; i < b.writes.size(); ++i) {
      WritePlan& w = b.writes[i];
      if (w.key.scope != scope) {
        continue;
      }
      for (size_t k = ranges[i].first; k < ranges[i].second && !w.failed; ++k) {
        w.failed = slotOps[k].result < 0;
      }
      if (w.failed) {
        continue;
      }
      const ProgrammedState& st = frontends_.at(w.key);
      heads.push_back(MapOp::putSlot(w.key, 0, {0, st.revNatId, static_cast<uint16_t>(w.slots.size()), w.head}));
      headOf.push_back(i);
    }
  }
  applyCounted(heads, r);
  // Phase 4: deletions. Slots a shrunk head no longer covers; removed frontends, head
  // first so lookups miss the service at once, then its slots, then its rev NAT entry.
  std::vector<MapOp> slotDeletes, revNatDeletes;
  for (size_t h = 0; h < heads.size(); ++h) {
    WritePlan& w = b.writes[headOf[h]];
    if (heads[h].result < 0) {
      w.failed = true;
      continue;
    }
    for (size_t s = w.slots.size() + 1; s <= w.oldIds.size(); ++s) {
      slotDeletes.push_back(MapOp::deleteSlot(w.key, static_cast<uint16_t>(s)));
    }
  }
  for (const FrontendKey& k : b.deletes) {
    const ProgrammedState& st = frontends_.at(k);
    slotDeletes.push_back(MapOp::deleteSlot(k, 0));
    for (size_t s = 1; s <= std::max(st.backendIds.size(), st.heldIds.size()); ++s) {
      slotDeletes.push_back(MapOp::deleteSlot(k, static_cast<uint16_t>(s)));
    }
    if (st.revNatId != 0) {
      revNatDeletes.push_back(MapOp::deleteRevNat(st.revNatId));
    }
  }
  // Source ranges that written heads no longer use, and those of removed frontends.
  std::vector<MapOp> rangeDeletes;
  for (size_t h = 0; h < heads.size(); ++h) {
    const WritePlan& w = b.writes[headOf[h]];
    if (!w.failed) {
      for (const Cidr& c : w.rangeDeletes) {
        rangeDeletes.push_back(MapOp::deleteSourceRange(frontends_.at(w.key).revNatId, c));
      }
    }
  }
  for (const FrontendKey& k : b.deletes) {
    const ProgrammedState& st = frontends_.at(k);
    for (const Cidr& c : st.ranges) {
      rangeDeletes.push_back(MapOp::deleteSourceRange(st.revNatId, c));
    }
  }
  // -- Maglev: tables no head flags any more (the head went first), and removed frontends'.
  std::vector<size_t> tableDeleteOf;  // write index, or SIZE_MAX for a removed frontend
  for (size_t h = 0; h < heads.size(); ++h) {
    const WritePlan& w = b.writes[headOf[h]];
    if (!w.failed && w.maglevDelete) {
      tables.push_back(MapOp::deleteMaglev(frontends_.at(w.key).revNatId));
      tableDeleteOf.push_back(headOf[h]);
    }
  }
  for (const FrontendKey& k : b.deletes) {
    const ProgrammedState& st = frontends_.at(k);
    if (st.maglevTable) {
      tables.push_back(MapOp::deleteMaglev(st.revNatId));
      tableDeleteOf.push_back(SIZE_MAX);
    }
  }
  // -- end Maglev --
  applyCounted(slotDeletes, r);
  applyCounted(rangeDeletes, r);
  applyCounted(tables, r);
  for (size_t t = 0; t < tables.size(); ++t) {
    if (tableDeleteOf[t] != SIZE_MAX) {
      b.writes[tableDeleteOf[t]].maglevDeleteResult = tables[t].result;
    } else if (tables[t].result < 0) {
      staleMaglev_.push_back(tables[t].id);  // no head names it: retried by collectGarbage()
    }
  }
  applyCounted(revNatDeletes, r);

  // UDP backends a frontend stops naming (noted before the references go).
  std::vector<std::pair<StaleUdpBackend, uint32_t>> staleUdp;
  auto noteStale = [&](const FrontendKey& fe, const std::vector<uint32_t>& before, const std::vector<uint32_t>& after) {
    if (fe.proto != kProtoUDP) {
      return;
    }
    for (uint32_t id : before) {
      if (id < backends_.size() && backends_[id].live && std::find(after.begin(), after.end(), id) == after.end()) {
        staleUdp.push_back({{fe, backends_[id].key}, id});
      }
    }
  };
  for (const WritePlan& w : b.writes) {
    if (!w.failed) {
      noteStale(w.key, w.oldIds, w.slots);
    }
  }
  for (const FrontendKey& k : b.deletes) {
    noteStale(k, frontends_.at(k).backendIds, {});
  }

  // Bookkeeping: what the maps now hold, and which backends nothing names any more.
  for (WritePlan& w : b.writes) {
    ProgrammedState& st = frontends_.at(w.key);
    if (w.failed) {
      // The old head stays, so the slots it covers may still name the old backends: keep
      // those referenced until a write of this frontend succeeds.
      st.heldIds.insert(st.heldIds.end(), w.oldIds.begin(), w.oldIds.end());
      st.backendIds = std::move(w.slots);
      continue;
    }
    for (uint32_t id : w.oldIds) {
      releaseBackend(id);
    }
    for (uint32_t id : st.heldIds) {
      releaseBackend(id);
    }
    st.heldIds.clear();
    st.backendIds = std::move(w.slots);
    st.head = w.head;
    st.ranges = std::move(w.ranges);
    if (w.maglevPut) {
      st.maglevTable = true;
      st.maglevDigest = w.maglevDigest;
      st.maglevInput = w.maglevInput;
    } else if (w.maglevDelete) {
      st.maglevTable = false;
      if (w.maglevDeleteResult < 0) {
        staleMaglev_.push_back(st.revNatId);  // the head no longer flags it: unused
      }
    }
    r.frontendsWritten++;
  }
  for (const FrontendKey& k : b.deletes) {
    auto it = frontends_.find(k);
    ProgrammedState& st = it->second;
    for (uint32_t id : st.backendIds) {
      releaseBackend(id);
    }
    for (uint32_t id : st.heldIds) {
      releaseBackend(id);
    }
    revNatIds_.release(st.revNatId);
    disown(k, st);
    frontends_.erase(it);
    r.frontendsDeleted++;
  }
  // A backend the frontend's other scope still has is still served at that address.
  for (auto& [stale, id] : staleUdp) {
    FrontendKey other = stale.frontend;
    other.scope = other.scope == Scope::External ? Scope::Internal : Scope::External;
    auto it = frontends_.find(other);
    if (it != frontends_.end() &&
        std::find(it->second.backendIds.begin(), it->second.backendIds.end(), id) != it->second.backendIds.end()) {
      continue;
    }
    stale.frontend.scope = Scope::External;
    r.staleUdp.push_back(stale);
  }
  std::sort(r.staleUdp.begin(), r.staleUdp.end());
  r.staleUdp.erase(std::unique(r.staleUdp.begin(), r.staleUdp.end()), r.staleUdp.end());
  b = Batch{};
}

SyncResult Syncer::syncOwners(std::span<const OwnerFrontends> owners, bool force) {
  SyncResult r;
  // Each backend is written at most once per call, however many frontends name it.
  for (uint32_t id : written_) {
    backends_[id].written = false;
  }
  written_.clear();
  Batch b;
  for (const OwnerFrontends& o : owners) {
    // A frontend already planned in this batch (it moves between owners): apply what is
    // planned first, so each frontend has one plan per batch.
    if (conflicts(o, b)) {
      execute(b, r);
    }
    plan(o, force, b, r);
    if (b.slotOps.size() >= kBatchSlotOps) {
      execute(b, r);
    }
  }
  if (!b.empty()) {
    execute(b, r);
  }
  return r;
}

SyncResult Syncer::syncOwner(const std::string& owner, const std::vector<Frontend>& desired,
                             bool force) {
  OwnerFrontends o{owner, desired};
  SyncResult r = syncOwners(std::span<const OwnerFrontends>(&o, 1), force);
  r.add(collectGarbage());
  return r;
}

SyncResult Syncer::removeUnclaimed() {
  SyncResult r;
  Batch b;
  for (const auto& [key, st] : frontends_) {
    if (!st.owner) {
      planDelete(key, b);
    }
  }
  if (!b.deletes.empty()) {
    execute(b, r);
  }
  std::vector<MapOp> ops;
  for (uint32_t id : orphanRevNats_) {
    ops.push_back(MapOp::deleteRevNat(id));
  }
  applyCounted(ops, r);
  for (const MapOp& op : ops) {
    if (op.result == 0) {
      revNatIds_.release(op.id);
    }
  }
  orphanRevNats_.clear();
  r.add(collectGarbage());
  return r;
}

// -- Maglev (issue 11 item 3) --

void Syncer::planMaglev(const Frontend& fe, const std::vector<uint32_t>& ids, ProgrammedState& st,
                        bool rewriteAll, WritePlan& w, Batch& b) {
  if (!(fe.head.flags & kFrontendMaglev) || fe.backends.empty()) {
    // No table (not Maglev, or nothing to balance: the head rejects or drops new flows).
    w.maglevDelete = st.maglevTable;
    return;
  }
  // What the table is built from: M, the seed, and each backend's ID and weight (the IDs
  // name the identities the table is made of, one to one).
  uint64_t input = hashBytes(reinterpret_cast<const uint8_t*>(&maglev_), sizeof(maglev_));
  for (size_t i = 0; i < ids.size(); ++i) {
    uint32_t idw[2] = {ids[i], fe.backends[i].weight};
    input = hashBytes(reinterpret_cast<const uint8_t*>(idw), sizeof(idw), input);
  }
  if (!rewriteAll && st.maglevTable && input == st.maglevInput) {
    return;  // built from the same input before: the maps hold it
  }
  auto built = builtTables_.find(input);
  if (built == builtTables_.end()) {
    std::vector<uint32_t> table = buildMaglevTable(fe.backends, maglev_);
    for (uint32_t& e : table) {
      e = ids[e];
    }
    built = builtTables_.emplace(input, std::move(table)).first;
  }
  uint64_t digest = maglevDigest(built->second);
  if (!rewriteAll && st.maglevTable && digest == st.maglevDigest) {
    st.maglevInput = input;  // the same table as the maps hold (adopted): nothing to write
    return;
  }
  std::erase(staleMaglev_, st.revNatId);  // a delete still due would remove the new table
  w.maglevPut = true;
  w.maglevDigest = digest;
  w.maglevInput = input;
  w.maglevOp = b.maglevOps.size();
  b.maglevOps.push_back(MapOp::putMaglev(st.revNatId, built->second));
}

void Syncer::retryMaglevDeletes(SyncResult& r) {
  if (staleMaglev_.empty()) {
    return;
  }
  std::vector<MapOp> ops;
  for (uint32_t id : staleMaglev_) {
    ops.push_back(MapOp::deleteMaglev(id));
  }
  staleMaglev_.clear();
  applyCounted(ops, r);
  for (const MapOp& op : ops) {
    if (op.result < 0) {
      staleMaglev_.push_back(op.id);
    }
  }
}

size_t Syncer::maglevTableCount() const {
  size_t n = 0;
  for (const auto& [key, st] : frontends_) {
    n += st.maglevTable;
  }
  return n;
}

// -- end Maglev --

std::vector<std::string> Syncer::owners() const {
  std::vector<std::string> out;
  out.reserve(owners_.size());
  for (const auto& [owner, keys] : owners_) {
    out.push_back(owner);
  }
  return out;
}

}  // namespace switchyard::lb
