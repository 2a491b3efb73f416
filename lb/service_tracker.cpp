#include "lb/service_tracker.h"

#include <algorithm>

namespace switchyard::lb {

void ServiceTracker::upsertService(const k8s::Service& svc) {
  std::string key = svc.metadata.key();
  ServiceInfo info = toServiceInfo(svc);
  auto [it, inserted] = services_.try_emplace(key);
  if (!inserted && it->second == info) {
    return;
  }
  it->second = std::move(info);
  dirty_.insert(std::move(key));
}

void ServiceTracker::deleteService(const std::string& key) {
  if (services_.erase(key)) {
    dirty_.insert(key);
  }
}

void ServiceTracker::unlinkSlice(const std::string& service, const std::string& sliceKey) {
  auto bs = byService_.find(service);
  if (bs == byService_.end()) {
    return;
  }
  std::erase(bs->second, sliceKey);
  if (bs->second.empty()) {
    byService_.erase(bs);
  }
}

void ServiceTracker::upsertSlice(const k8s::EndpointSlice& slice) {
  std::string key = slice.metadata.key();
  SliceInfo info = toSliceInfo(slice);
  auto [it, inserted] = slices_.try_emplace(key);
  if (!inserted) {
    if (it->second == info) {
      return;
    }
    if (it->second.service != info.service) {
      if (!it->second.service.empty()) {
        unlinkSlice(it->second.service, key);
        dirty_.insert(it->second.service);
      }
      if (!info.service.empty()) {
        byService_[info.service].push_back(key);
      }
    }
  } else if (!info.service.empty()) {
    byService_[info.service].push_back(key);
  }
  if (!info.service.empty()) {
    dirty_.insert(info.service);
  }
  it->second = std::move(info);
}

void ServiceTracker::deleteSlice(const std::string& sliceKey) {
  auto it = slices_.find(sliceKey);
  if (it == slices_.end()) {
    return;
  }
  if (!it->second.service.empty()) {
    unlinkSlice(it->second.service, sliceKey);
    dirty_.insert(it->second.service);
  }
  slices_.erase(it);
}

std::set<std::string> ServiceTracker::takeDirty() {
  std::set<std::string> out;
  out.swap(dirty_);
  return out;
}

std::set<std::string> ServiceTracker::allKeys() const {
  std::set<std::string> out;
  for (const auto& [k, v] : services_) {
    out.insert(k);
  }
  for (const auto& [k, v] : byService_) {
    out.insert(k);
  }
  return out;
}

std::vector<Frontend> ServiceTracker::desired(const std::string& key,
                                              std::vector<std::string>& warnings) const {
  auto svc = services_.find(key);
  if (svc == services_.end()) {
    return {};
  }
  std::vector<const SliceInfo*> slices;
  auto bs = byService_.find(key);
  if (bs != byService_.end()) {
    // A stable order (slice names), so warnings and backend merging do not depend on
    // hash order.
    std::vector<const std::string*> names;
    for (const std::string& sk : bs->second) {
      names.push_back(&sk);
    }
    std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (const std::string* sk : names) {
      const SliceInfo& s = slices_.at(*sk);
      // Slices of headless services carry this label; kube-proxy's informer filters them.
      if (s.headless) {
        continue;
      }
      slices.push_back(&s);
    }
  }
  return translateClusterIP(svc->second, slices, warnings);
}

}  // namespace switchyard::lb
