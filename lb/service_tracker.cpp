#include "lb/service_tracker.h"

#include "lb/translate.h"

namespace switchyard::lb {
namespace {
std::string owningService(const k8s::EndpointSlice& s) {
  std::string name = s.serviceName();
  return name.empty() ? std::string() : s.metadata.namespace_ + "/" + name;
}
}  // namespace

void ServiceTracker::upsertService(const k8s::Service& svc) {
  std::string key = svc.metadata.key();
  services_[key] = svc;
  dirty_.insert(key);
}

void ServiceTracker::deleteService(const std::string& key) {
  services_.erase(key);
  dirty_.insert(key);
}

void ServiceTracker::upsertSlice(const k8s::EndpointSlice& slice) {
  std::string key = slice.metadata.key();
  auto old = slices_.find(key);
  if (old != slices_.end()) {
    std::string oldSvc = owningService(old->second);
    if (!oldSvc.empty()) {
      byService_[oldSvc].erase(key);
      dirty_.insert(oldSvc);
    }
  }
  slices_[key] = slice;
  std::string svc = owningService(slice);
  if (!svc.empty()) {
    byService_[svc].insert(key);
    dirty_.insert(svc);
  }
}

void ServiceTracker::deleteSlice(const std::string& sliceKey) {
  auto it = slices_.find(sliceKey);
  if (it == slices_.end()) {
    return;
  }
  std::string svc = owningService(it->second);
  if (!svc.empty()) {
    auto bs = byService_.find(svc);
    if (bs != byService_.end()) {
      bs->second.erase(sliceKey);
      if (bs->second.empty()) {
        byService_.erase(bs);
      }
    }
    dirty_.insert(svc);
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
  std::vector<const k8s::EndpointSlice*> slices;
  auto bs = byService_.find(key);
  if (bs != byService_.end()) {
    for (const std::string& sk : bs->second) {
      const k8s::EndpointSlice& s = slices_.at(sk);
      // Slices of headless services carry this label; kube-proxy's informer filters them.
      if (s.metadata.labels.count(kHeadlessLabel)) {
        continue;
      }
      slices.push_back(&s);
    }
  }
  return translateClusterIP(svc->second, slices, warnings);
}

}  // namespace switchyard::lb
