// The fake API server's storage and its API semantics, without any I/O: objects of every
// served resource, one resourceVersion sequence for all of them (as etcd's revision), and
// the history of changes that watches replay and that paginated lists read snapshots
// from. Compacting the history makes older resourceVersions answer 410 Gone, exactly as
// the real API server does once etcd has compacted.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/fake_apiserver/resources.h"
#include "tests/fake_apiserver/selectors.h"

namespace switchyard::fake {

struct StoredObject {
  const Resource* resource = nullptr;
  std::string ns;  // "" for cluster-scoped objects
  std::string name;
  std::map<std::string, std::string> labels;
  std::string nodeName;  // a Pod's spec.nodeName, for the field selector the kubelet uses
  uint64_t resourceVersion = 0;
  std::string creationTimestamp;
  std::string json;      // the whole object, kind and apiVersion included (GET, watch)
  std::string itemJson;  // without kind and apiVersion: how list items look

  std::string key() const { return ns + "/" + name; }
};
using ObjectPtr = std::shared_ptr<const StoredObject>;

enum class ChangeType { Added, Modified, Deleted };

struct Change {
  uint64_t resourceVersion = 0;
  ChangeType type = ChangeType::Added;
  ObjectPtr object;    // the new state; for Deleted, the last state
  ObjectPtr previous;  // the state before (Modified, Deleted)
};

// An HTTP answer: status and JSON body (an object, a list or a metav1.Status).
struct Response {
  int status = 200;
  std::string body;
};

struct ListOptions {
  std::string ns;  // "" = all namespaces
  std::string labelSelector;
  std::string fieldSelector;
  size_t limit = 0;  // 0 = everything
  std::string continueToken;
};

class FakeState {
 public:
  using Listener = std::function<void(const Change&)>;

  // Called after every change, in resourceVersion order.
  void setListener(Listener l) { listener_ = std::move(l); }

  Response create(const Resource& r, const std::string& ns, const std::string& body);
  Response replace(const Resource& r, const std::string& ns, const std::string& name,
                   const std::string& body);
  // application/merge-patch+json, or application/strategic-merge-patch+json (the subset
  // kubectl apply sends: maps merge, Service ports merge by port, $-directives honoured).
  Response patch(const Resource& r, const std::string& ns, const std::string& name,
                 const std::string& body, const std::string& contentType);
  Response remove(const Resource& r, const std::string& ns, const std::string& name);
  Response get(const Resource& r, const std::string& ns, const std::string& name) const;
  Response list(const Resource& r, const ListOptions& options) const;

  // Create or replace whatever kind the JSON names (fixtures, tests). No version check.
  Response apply(const std::string& json);
  // Also accepts a List ({"kind":"List","items":[...]}); returns how many were applied.
  size_t applyAll(const std::string& json, std::vector<std::string>& errors);

  // The changes a watch from resourceVersion rv starts with: "" or "0" = a synthetic ADDED
  // per existing object; else the history after rv. 410 when rv predates the history.
  Response watchBacklog(const Resource& r, const std::string& rv,
                        std::vector<Change>& backlog) const;

  uint64_t resourceVersion() const { return rv_; }
  // Forgets the history: watches from, and continue tokens of, older versions get 410.
  void compact() {
    compactedAt_ = rv_;
    history_.clear();
  }
  size_t count(const Resource& r) const;

 private:
  Response write(const Resource& r, const std::string& ns, const std::string& name,
                 const std::string& body, bool mustExist, bool mustNotExist,
                 bool checkVersion);
  void commit(const Resource& r, ChangeType type, ObjectPtr object, ObjectPtr previous);
  // The objects of r as of resourceVersion rv, undoing the history after it.
  std::map<std::string, ObjectPtr> snapshot(const Resource& r, uint64_t rv) const;
  std::string allocateClusterIP();

  Listener listener_;
  std::map<const Resource*, std::map<std::string, ObjectPtr>> objects_;
  std::vector<Change> history_;
  uint64_t rv_ = 100;
  uint64_t compactedAt_ = 0;
  uint64_t uidCounter_ = 0;
  uint32_t nextClusterIP_ = 10;
  uint32_t nextNodePort_ = 30000;
};

std::string statusJson(int code, const std::string& reason, const std::string& message);
// {"type":"ADDED","object":{...}}
std::string watchEventJson(const char* type, const std::string& objectJson);
std::string bookmarkJson(const Resource& r, uint64_t rv);
// The ERROR event the API server sends when a watch's resourceVersion was compacted away.
std::string expiredEventJson(const std::string& requestedRv, uint64_t oldest);

// What a watcher with these filters sees of a change: the event line, or "" for nothing.
// An object that stops matching the selector is DELETED for the watcher, one that starts
// matching is ADDED, as with the real API server's watch cache.
std::string watchLineFor(const Change& c, const std::string& ns, const LabelSelector& labels,
                         const FieldSelector& fields);

}  // namespace switchyard::fake
