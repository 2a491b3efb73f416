// The current Services and EndpointSlices, reduced to what translation needs
// (ServiceInfo, SliceInfo) and indexed by Service, and the set of services whose frontends
// may have changed since the last sync. An upsert that changes nothing translation sees
// (a resync, a relist, an edit of another field) marks nothing dirty.
#pragma once

#include <functional>
#include <optional>
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
  // node: endpoints with its name are local; hints.forNodes may name it; its zone label
  // selects hints.forZones (setNodeZone).
  explicit ServiceTracker(NodeContext node = {}) : node_(std::move(node)) {}

  // Conversion problems (a bad address, SCTP) are appended to warnings when the object is
  // new or changed, so each is reported once.
  void upsertService(const k8s::Service& svc, std::vector<std::string>& warnings);
  void deleteService(const std::string& key);
  void upsertSlice(const k8s::EndpointSlice& slice, std::vector<std::string>& warnings);
  void deleteSlice(const std::string& sliceKey);

  // Services touched since the last takeDirty(), and clears the set.
  std::set<std::string> takeDirty();
  // Forgets what is dirty (before a full sync, which looks at everything anyway).
  void clearDirty() { dirty_.clear(); }
  bool hasDirty() const { return !dirty_.empty(); }
  // Every service key known now (for full syncs), including those only slices name.
  void forEachKey(const std::function<void(const std::string&)>& f) const;
  bool knows(const std::string& key) const { return services_.count(key) > 0; }

  // The frontends service `key` should have now (none when it is gone or skipped).
  ServiceFrontends desired(const std::string& key) const;

  // The Node's zone label changed: every service's topology may change. Returns true when
  // it did change (the caller then syncs everything).
  bool setNodeZone(const std::string& zone);
  // loadBalancer.mode, for Services without the annotation (before the first event).
  void setLbMode(LbMode mode, bool dsrIpip) {
    node_.lbMode = mode;
    node_.dsrIpip = dsrIpip;
  }
  const NodeContext& node() const { return node_; }

  size_t serviceCount() const { return serviceCount_; }
  size_t sliceCount() const { return slices_.size(); }

 private:
  struct SliceEntry;
  // A Service, its slices, or both: one entry per namespace/name either names.
  struct ServiceEntry {
    std::optional<ServiceInfo> info;       // nullopt: only slices name it (so far)
    std::vector<const SliceEntry*> slices;
  };
  struct SliceEntry {
    SliceInfo info;
    const std::string* key = nullptr;      // its key in slices_
    const std::string* service = nullptr;  // its owner's key in services_; nullptr: none
  };
  using ServiceMap = std::unordered_map<std::string, ServiceEntry>;

  void unlink(const SliceEntry& slice);
  // Drops the entry when neither a Service nor a slice needs it any more.
  void release(ServiceMap::iterator it);

  NodeContext node_;
  ZoneSets zones_;  // hints.forZones of every endpoint, interned
  // Pointers into both maps stay valid: unordered_map nodes do not move.
  ServiceMap services_;
  std::unordered_map<std::string, SliceEntry> slices_;
  std::set<std::string> dirty_;
  size_t serviceCount_ = 0;  // entries with a Service
};

}  // namespace switchyard::lb
