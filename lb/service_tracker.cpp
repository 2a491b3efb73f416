#include "lb/service_tracker.h"

#include <algorithm>

namespace switchyard::lb {

void ServiceTracker::upsertService(const k8s::Service& svc, std::vector<std::string>& warnings) {
  std::string key = svc.metadata.key();
  std::vector<std::string> found;
  ServiceInfo info = toServiceInfo(svc, found);
  auto [it, inserted] = services_.try_emplace(key);
  std::optional<ServiceInfo>& cur = it->second.info;
  if (cur && *cur == info) {
    return;
  }
  warnings.insert(warnings.end(), found.begin(), found.end());
  serviceCount_ += !cur;
  cur = std::move(info);
  dirty_.insert(std::move(key));
}

void ServiceTracker::deleteService(const std::string& key) {
  auto it = services_.find(key);
  if (it == services_.end() || !it->second.info) {
    return;
  }
  it->second.info.reset();
  --serviceCount_;
  dirty_.insert(key);
  release(it);
}

void ServiceTracker::release(ServiceMap::iterator it) {
  if (!it->second.info && it->second.slices.empty()) {
    services_.erase(it);
  }
}

void ServiceTracker::unlink(const SliceEntry& slice) {
  if (!slice.service) {
    return;
  }
  auto it = services_.find(*slice.service);
  std::erase(it->second.slices, &slice);
  dirty_.insert(*slice.service);
  release(it);
}

void ServiceTracker::upsertSlice(const k8s::EndpointSlice& slice, std::vector<std::string>& warnings) {
  std::string key = slice.metadata.key();
  std::string owner = owningService(slice);
  std::vector<std::string> found;
  SliceInfo info = toSliceInfo(slice, node_.name, zones_, found);
  auto [it, inserted] = slices_.try_emplace(std::move(key));
  SliceEntry& e = it->second;
  bool sameOwner = (e.service ? *e.service : std::string()) == owner;
  if (!inserted && sameOwner && e.info == info) {
    return;
  }
  warnings.insert(warnings.end(), found.begin(), found.end());
  e.info = std::move(info);
  e.key = &it->first;
  if (!inserted && !sameOwner) {
    unlink(e);
    e.service = nullptr;
  }
  if (!owner.empty()) {
    if (inserted || !sameOwner) {
      auto svc = services_.try_emplace(owner).first;
      svc->second.slices.push_back(&e);
      e.service = &svc->first;
    }
    dirty_.insert(owner);
  }
}

void ServiceTracker::deleteSlice(const std::string& sliceKey) {
  auto it = slices_.find(sliceKey);
  if (it == slices_.end()) {
    return;
  }
  unlink(it->second);
  slices_.erase(it);
}

std::set<std::string> ServiceTracker::takeDirty() {
  std::set<std::string> out;
  out.swap(dirty_);
  return out;
}

void ServiceTracker::forEachKey(const std::function<void(const std::string&)>& f) const {
  for (const auto& [k, v] : services_) {
    f(k);
  }
}

bool ServiceTracker::setNodeZone(const std::string& zone) {
  if (zone == node_.zone) {
    return false;
  }
  node_.zone = zone;
  return true;
}

ServiceFrontends ServiceTracker::desired(const std::string& key) const {
  auto svc = services_.find(key);
  if (svc == services_.end() || !svc->second.info) {
    return {};
  }
  // A stable order (slice names), so warnings and backend merging do not depend on the
  // order events came in.
  std::vector<const SliceEntry*> entries = svc->second.slices;
  std::sort(entries.begin(), entries.end(),
            [](const SliceEntry* a, const SliceEntry* b) { return *a->key < *b->key; });
  std::vector<const SliceInfo*> slices;
  slices.reserve(entries.size());
  for (const SliceEntry* e : entries) {
    // Slices of headless services carry this label; kube-proxy's informer filters them.
    if (!e->info.headless) {
      slices.push_back(&e->info);
    }
  }
  return translateService(*svc->second.info, slices, node_, zones_);
}

}  // namespace switchyard::lb
