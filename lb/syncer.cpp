#include "lb/syncer.h"

#include <algorithm>
#include <limits>

namespace switchyard::lb {
namespace {

// Slot assignment that keeps every surviving backend in its slot: new backends fill the
// holes left by removed ones, then the tail moves into remaining holes, then new ones are
// appended. One endpoint change rewrites O(1) slots, whatever the service's size.
std::vector<uint32_t> assignSlots(const std::vector<uint32_t>& oldIds,
                                  const std::vector<uint32_t>& wantedIds) {
  std::set<uint32_t> wanted(wantedIds.begin(), wantedIds.end());
  std::set<uint32_t> placed;
  std::vector<uint32_t> slots;
  std::vector<size_t> holes;
  for (uint32_t id : oldIds) {
    if (id != 0 && wanted.count(id) && !placed.count(id)) {
      placed.insert(id);
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

void Syncer::adopt(const DataplaneState& state) {
  for (const auto& [id, b] : state.backends) {
    backends_[b.key] = {id, 0, b.terminating};
    backendById_[id] = b.key;
    nextBackendId_ = std::max(nextBackendId_, id + 1);
  }
  for (const ProgrammedFrontend& f : state.frontends) {
    ProgrammedState st;
    st.revNatId = f.revNatId;
    st.flags = f.flags;
    st.backendIds = f.backendIds;
    for (uint32_t id : f.backendIds) {
      auto it = backendById_.find(id);
      if (it != backendById_.end()) {
        backends_[it->second].refs++;
      }
    }
    if (f.revNatId != 0) {
      revNatsInUse_.insert(f.revNatId);
      nextRevNatId_ = std::max(nextRevNatId_, f.revNatId + 1);
    }
    frontends_[f.key] = std::move(st);
  }
  for (const auto& [id, key] : state.revNats) {
    nextRevNatId_ = std::max(nextRevNatId_, id + 1);
    if (!revNatsInUse_.count(id)) {
      orphanRevNats_.push_back(id);
    }
  }
  for (const auto& [key, b] : backends_) {
    if (b.refs == 0) {
      releasedBackends_.push_back(b.id);
    }
  }
}

uint32_t Syncer::acquireBackend(const Backend& b, bool force, SyncResult& r) {
  auto it = backends_.find(b.key);
  if (it == backends_.end()) {
    while (backendById_.count(nextBackendId_) || nextBackendId_ == 0) {
      ++nextBackendId_;
    }
    uint32_t id = nextBackendId_++;
    it = backends_.emplace(b.key, BackendState{id, 0, b.terminating}).first;
    backendById_[id] = b.key;
    force = true;
  }
  if (force || it->second.terminating != b.terminating) {
    it->second.terminating = b.terminating;
    if (writer_.putBackend(it->second.id, b) < 0) {
      r.errors++;
    } else {
      r.backendsWritten++;
    }
  }
  it->second.refs++;
  return it->second.id;
}

void Syncer::releaseBackend(uint32_t id) {
  auto k = backendById_.find(id);
  if (k == backendById_.end()) {
    return;
  }
  BackendState& st = backends_[k->second];
  if (st.refs > 0 && --st.refs == 0) {
    releasedBackends_.push_back(id);
  }
}

void Syncer::deleteUnreferencedBackends(SyncResult& r) {
  for (uint32_t id : releasedBackends_) {
    auto k = backendById_.find(id);
    if (k == backendById_.end() || backends_[k->second].refs != 0) {
      continue;  // re-acquired in the same sync, or already gone
    }
    if (writer_.deleteBackend(id) < 0) {
      r.errors++;
      continue;  // stays known, so a later sync retries
    }
    r.backendsDeleted++;
    backends_.erase(k->second);
    backendById_.erase(k);
  }
  releasedBackends_.clear();
}

uint32_t Syncer::allocateRevNat() {
  while (revNatsInUse_.count(nextRevNatId_) || nextRevNatId_ == 0) {
    ++nextRevNatId_;  // wraps past UINT32_MAX to 0, which is skipped
  }
  uint32_t id = nextRevNatId_++;
  revNatsInUse_.insert(id);
  return id;
}

bool Syncer::writeFrontend(const Frontend& fe, ProgrammedState& st,
                           const std::vector<uint32_t>& slots, bool force, SyncResult& r) {
  const std::vector<uint32_t>& old = st.backendIds;
  size_t errors = r.errors;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (force || i >= old.size() || old[i] != slots[i]) {
      if (writer_.putSlot(fe.key, static_cast<uint16_t>(i + 1), {slots[i], 0, 0, 0}) < 0) {
        r.errors++;
      }
    }
  }
  if (r.errors != errors) {
    // A slot is missing (a full map): switching the count now would expose it. The old
    // head stays, so the slots it covers may still name the old backends: the caller keeps
    // those referenced until a write of this frontend succeeds.
    st.backendIds = slots;
    return false;
  }
  SlotValue head{0, st.revNatId, static_cast<uint16_t>(slots.size()), fe.flags};
  if (writer_.putSlot(fe.key, 0, head) < 0) {
    r.errors++;
  }
  for (size_t s = slots.size() + 1; s <= old.size(); ++s) {
    if (writer_.deleteSlot(fe.key, static_cast<uint16_t>(s)) < 0) {
      r.errors++;
    }
  }
  st.backendIds = slots;
  st.flags = fe.flags;
  if (r.errors == errors) {
    r.frontendsWritten++;
  }
  return true;
}

void Syncer::deleteFrontend(const FrontendKey& key, ProgrammedState& st, SyncResult& r) {
  size_t errors = r.errors;
  // Slot 0 first: lookups miss the service at once, then the rest goes quietly.
  if (writer_.deleteSlot(key, 0) < 0) {
    r.errors++;
  }
  for (size_t s = 1; s <= st.backendIds.size(); ++s) {
    if (writer_.deleteSlot(key, static_cast<uint16_t>(s)) < 0) {
      r.errors++;
    }
  }
  if (st.revNatId != 0) {
    if (writer_.deleteRevNat(st.revNatId) < 0) {
      r.errors++;
    }
    revNatsInUse_.erase(st.revNatId);
  }
  for (uint32_t id : st.backendIds) {
    releaseBackend(id);
  }
  for (uint32_t id : st.heldIds) {
    releaseBackend(id);
  }
  st.heldIds.clear();
  if (r.errors == errors) {
    r.frontendsDeleted++;
  }
}

SyncResult Syncer::syncOwner(const std::string& owner, const std::vector<Frontend>& desired,
                             bool force) {
  SyncResult r;
  std::set<FrontendKey> wanted;
  for (const Frontend& fe : desired) {
    if (fe.backends.size() > kMaxBackendsPerFrontend) {
      r.errors++;
      r.problems.push_back("Service " + owner + ": frontend " + fe.key.str() + " has " +
                           std::to_string(fe.backends.size()) + " backends, more than the " +
                           std::to_string(kMaxBackendsPerFrontend) + " a service can hold");
      continue;
    }
    wanted.insert(fe.key);
    auto [it, inserted] = frontends_.try_emplace(fe.key);
    ProgrammedState& st = it->second;
    if (!inserted && !st.owner.empty() && st.owner != owner) {
      r.problems.push_back("Service " + owner + ": frontend " + fe.key.str() +
                           " was owned by Service " + st.owner + "; taken over");
      owners_[st.owner].erase(fe.key);
    }
    st.owner = owner;
    owners_[owner].insert(fe.key);

    std::vector<uint32_t> ids;
    ids.reserve(fe.backends.size());
    for (const Backend& b : fe.backends) {
      ids.push_back(acquireBackend(b, force, r));
    }
    const std::vector<uint32_t> oldIds = st.backendIds;
    bool newRevNat = st.revNatId == 0;
    if (newRevNat) {
      st.revNatId = allocateRevNat();
    }
    if (newRevNat || force) {
      if (writer_.putRevNat(st.revNatId, fe.key) < 0) {
        r.errors++;
      }
    }
    std::vector<uint32_t> slots = assignSlots(oldIds, ids);
    bool written = true;
    if (inserted || force || slots != oldIds || st.flags != fe.flags || !st.heldIds.empty()) {
      written = writeFrontend(fe, st, slots, force || inserted || !st.heldIds.empty(), r);
    }
    if (written) {
      for (uint32_t id : oldIds) {
        releaseBackend(id);
      }
      for (uint32_t id : st.heldIds) {
        releaseBackend(id);
      }
      st.heldIds.clear();
    } else {
      st.heldIds.insert(st.heldIds.end(), oldIds.begin(), oldIds.end());
    }
  }
  auto owned = owners_.find(owner);
  if (owned != owners_.end()) {
    for (auto it = owned->second.begin(); it != owned->second.end();) {
      if (wanted.count(*it)) {
        ++it;
        continue;
      }
      auto fe = frontends_.find(*it);
      if (fe != frontends_.end()) {
        deleteFrontend(*it, fe->second, r);
        frontends_.erase(fe);
      }
      it = owned->second.erase(it);
    }
    if (owned->second.empty()) {
      owners_.erase(owned);
    }
  }
  deleteUnreferencedBackends(r);
  return r;
}

SyncResult Syncer::removeUnclaimed() {
  SyncResult r;
  for (auto it = frontends_.begin(); it != frontends_.end();) {
    if (!it->second.owner.empty()) {
      ++it;
      continue;
    }
    deleteFrontend(it->first, it->second, r);
    it = frontends_.erase(it);
  }
  for (uint32_t id : orphanRevNats_) {
    if (!revNatsInUse_.count(id) && writer_.deleteRevNat(id) < 0) {
      r.errors++;
    }
  }
  orphanRevNats_.clear();
  deleteUnreferencedBackends(r);
  return r;
}

std::vector<std::string> Syncer::owners() const {
  std::vector<std::string> out;
  for (const auto& [owner, keys] : owners_) {
    out.push_back(owner);
  }
  return out;
}

}  // namespace switchyard::lb
