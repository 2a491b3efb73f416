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
  auto add = [&rep](const SyncResult& r) {
    rep.result.frontendsWritten += r.frontendsWritten;
    rep.result.frontendsDeleted += r.frontendsDeleted;
    rep.result.backendsWritten += r.backendsWritten;
    rep.result.backendsDeleted += r.backendsDeleted;
    rep.result.errors += r.errors;
    rep.result.problems.insert(rep.result.problems.end(), r.problems.begin(), r.problems.end());
  };
  for (const std::string& key : keys) {
    std::vector<Frontend> want = tracker_.desired(key, rep.warnings);
    add(syncer_.syncOwner(key, want, force));
    rep.servicesSynced++;
  }
  if (first) {
    add(syncer_.removeUnclaimed());
    initialSyncDone_ = true;
  }
  // A failed write leaves the maps and our picture of them apart: repair with a forced
  // full sync next time rather than trusting the incremental state.
  needFullSync_ = rep.result.errors > 0;
  return rep;
}

}  // namespace switchyard::lb
