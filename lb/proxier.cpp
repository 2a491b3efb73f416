#include "lb/proxier.h"

namespace switchyard::lb {

void Proxier::noteChange() {
  if (!oldestPending_) {
    oldestPending_ = std::chrono::steady_clock::now();
  }
}

void Proxier::onServiceUpsert(const k8s::Service& svc) {
  tracker_.upsertService(svc);
  noteChange();
}

void Proxier::onServiceDelete(const k8s::Service& last) {
  tracker_.deleteService(last.metadata.key());
  noteChange();
}

void Proxier::onEndpointSliceUpsert(const k8s::EndpointSlice& slice) {
  if (slice.lastChangeTriggerTime) {
    pendingTriggers_.push_back(*slice.lastChangeTriggerTime);
  }
  tracker_.upsertSlice(slice);
  noteChange();
}

void Proxier::onEndpointSliceDelete(const k8s::EndpointSlice& last) {
  tracker_.deleteSlice(last.metadata.key());
  noteChange();
}

SyncReport Proxier::sync(bool forceFull) {
  SyncReport rep;
  if (!sourceSynced_) {
    return rep;  // never program the maps from a partial picture
  }
  bool first = !initialSyncDone_;
  bool full = first || forceFull || needFullSync_;
  if (!full && !tracker_.hasDirty()) {
    return rep;
  }
  rep.ran = true;
  rep.full = full;
  rep.oldestChange = oldestPending_;
  oldestPending_.reset();
  rep.triggerTimes.swap(pendingTriggers_);

  std::set<std::string> keys = tracker_.takeDirty();
  if (full) {
    for (const std::string& k : tracker_.allKeys()) {
      keys.insert(k);
    }
    for (const std::string& k : syncer_.owners()) {
      keys.insert(k);  // owners whose Service is gone get their frontends removed
    }
  }
  // The first sync after adoption writes only differences; repairs rewrite everything.
  bool force = full && !first;
  // Services go to the syncer in groups, so its batches stay large while the desired
  // frontends held at once stay few (a full sync of 100,000 services would otherwise hold
  // every frontend with its backends twice).
  constexpr size_t kGroup = 512;
  std::vector<OwnerFrontends> group;
  group.reserve(kGroup);
  auto flush = [&] {
    rep.result.add(syncer_.syncOwners(group, force));
    group.clear();
  };
  for (const std::string& key : keys) {
    group.push_back({key, tracker_.desired(key, rep.warnings)});
    rep.servicesSynced++;
    if (group.size() == kGroup) {
      flush();
    }
  }
  flush();
  if (first) {
    rep.result.add(syncer_.removeUnclaimed());
    initialSyncDone_ = true;
  }
  rep.result.add(syncer_.collectGarbage());
  // A failed write leaves the maps and our picture of them apart: repair with a forced
  // full sync next time rather than trusting the incremental state.
  needFullSync_ = rep.result.errors > 0;
  return rep;
}

}  // namespace switchyard::lb
