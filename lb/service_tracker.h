// The current Services and EndpointSlices, reduced to what translation needs
// (ServiceInfo, SliceInfo) and indexed by Service, and the set of services whose frontends
// may have changed since the last sync. An upsert that changes nothing translation sees
// (a resync, a relist, an edit of another field) marks nothing dirty.
#pragma once

#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "k8sclient/objects.h"
#include "lb/translate.h"
#include "lb/types.h"

namespace switchyard::lb {

class ServiceTracker {
 public:
  void upsertService(const k8s::Service& svc);
  void deleteService(const std::string& key);
  void upsertSlice(const k8s::EndpointSlice& slice);
  void deleteSlice(const std::string& sliceKey);

  // Services touched since the last takeDirty(), and clears the set.
  std::set<std::string> takeDirty();
  bool hasDirty() const { return !dirty_.empty(); }
  // Every service key known now (for full syncs), including those only slices name.
  std::set<std::string> allKeys() const;

  // The frontends service `key` should have now (empty when it is gone or skipped).
  std::vector<Frontend> desired(const std::string& key, std::vector<std::string>& warnings) const;

  size_t serviceCount() const { return services_.size(); }
  size_t sliceCount() const { return slices_.size(); }

 private:
  void unlinkSlice(const std::string& service, const std::string& sliceKey);

  std::unordered_map<std::string, ServiceInfo> services_;  // ns/name -> Service
  std::unordered_map<std::string, SliceInfo> slices_;      // ns/sliceName -> slice
  std::unordered_map<std::string, std::vector<std::string>> byService_;  // ns/svc -> slice keys
  std::set<std::string> dirty_;
};

}  // namespace switchyard::lb
