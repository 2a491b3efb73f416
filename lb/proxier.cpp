#include "lb/proxier.h"

namespace switchyard::lb {

void Proxier::noteChange() {
  if (!initialSyncDone_) {
    // The first sync looks at every service: no need to remember which changed (at
    // 100,000 services the set would cost several MB at the daemon's peak).
    tracker_.clearDirty();
  }
  if (!oldestPending_) {
    oldestPending_ = std::chrono::steady_clock::now();
  }
}

void Proxier::onServiceUpsert(const k8s::Service& svc) {
  tracker_.upsertService(svc, pendingWarnings_);
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
  tracker_.upsertSlice(slice, pendingWarnings_);
  noteChange();
}

void Proxier::onNodeUpsert(const k8s::Node& node) {
  auto zone = node.metadata.labels.find(kZoneLabel);
  if (tracker_.setNodeZone(zone == node.metadata.labels.end() ? "" : zone->second)) {
    needFullSync_ = true;  // hints.forZones of every service are read against the new zone
    noteChange();
  }
}

bool Proxier::noteHealth(const std::string& key, const ServiceFrontends& f) {
  bool changed = false;
  auto setOrErase = [&](auto& map, auto value, bool keep) {
    auto it = map.find(key);
    if (!keep) {
      if (it != map.end()) {
        map.erase(it);
        changed = true;
      }
    } else if (it == map.end() || it->second != value) {
      map[key] = value;
      changed = true;
    }
  };
  setOrErase(healthPorts_, f.healthCheckNodePort, f.healthCheckNodePort != 0);
  setOrErase(localEndpoints_, f.localReadyEndpoints, f.localReadyEndpoints != 0 || f.healthCheckNodePort != 0);
  return changed;
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
  rep.warnings.swap(pendingWarnings_);

  // The services to sync: the dirty ones, or for a full sync every one the tracker knows
  // and every owner the syncer knows (those whose Service is gone lose their frontends).
  std::set<std::string> dirty = tracker_.takeDirty();
  std::vector<const std::string*> keys;
  std::vector<std::string> goneOwners;
  if (full) {
    tracker_.forEachKey([&](const std::string& k) { keys.push_back(&k); });
    syncer_.forEachOwner([&](const std::string& o) {
      if (!tracker_.knows(o)) {
        goneOwners.push_back(o);
      }
    });
    for (const std::string& o : goneOwners) {
      keys.push_back(&o);
    }
  } else {
    for (const std::string& k : dirty) {
      keys.push_back(&k);
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
  for (const std::string* key : keys) {
    ServiceFrontends f = tracker_.desired(*key);
    rep.healthChanged |= noteHealth(*key, f);
    group.push_back({*key, std::move(f.frontends)});
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
