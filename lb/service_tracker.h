// The current Services and EndpointSlices, indexed for translation, and the set of
// services whose frontends may have changed since the last sync.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "k8sclient/objects.h"
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

  // Newest endpoints.kubernetes.io/last-change-trigger-time among the dirty services'
  // slices is not tracked here; callers time from the event instead.
  size_t serviceCount() const { return services_.size(); }
  size_t sliceCount() const { return slices_.size(); }

 private:
  std::map<std::string, k8s::Service> services_;         // ns/name -> Service
  std::map<std::string, k8s::EndpointSlice> slices_;      // ns/sliceName -> slice
  std::map<std::string, std::set<std::string>> byService_;  // ns/svcName -> slice keys
  std::set<std::string> dirty_;
};

}  // namespace switchyard::lb
