// Typed stores: one per kind, keyed by namespace/name, fed by a reflector through the
// ObjectSink interface (raw JSON in), handing typed add/update/delete callbacks out.
// A relist is diffed against what the store holds, so callbacks see only real changes:
// an object deleted while the watch was down gets its delete, an unchanged one nothing.
//
// A store remembers each object's identity (hashes of its resourceVersion and uid), which
// is all the diff needs; it keeps whole objects only when asked (KeepObjects::Yes, for the node's own Node
// object). Services and EndpointSlices go to their consumer, which keeps what it uses: at
// 100,000 services, a second copy of every object would be most of the daemon's memory.
#pragma once

#include <rapidjson/document.h>

#include <functional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "k8sclient/apiserver/watch_stream.h"
#include "k8sclient/decode.h"
#include "k8sclient/objects.h"

namespace switchyard::k8s::apiserver {

// What a reflector delivers. A list arrives as begin, items, end (or abort when a page
// fails); watch events arrive one by one.
class ObjectSink {
 public:
  virtual ~ObjectSink() = default;
  virtual void listBegin() = 0;
  virtual void listItem(const rapidjson::Value& obj) = 0;
  virtual void listEnd() = 0;
  virtual void listAbort() = 0;
  virtual void watchEvent(WatchEventType type, const rapidjson::Value& obj) = 0;
};

// A malformed object: "EndpointSlice shop/web-x1: endpoints[0].addresses: must hold ...".
struct DecodeProblem {
  std::string kind;
  std::string object;  // ns/name, "<unnamed>" when even that is missing
  std::vector<FieldError> errors;

  std::string str() const {
    std::string s = kind + " " + object + ":";
    for (size_t i = 0; i < errors.size(); ++i) {
      s += (i ? "; " : " ") + errors[i].str();
    }
    return s;
  }
};

// Deletes carry the object as last seen when the store keeps objects, and otherwise an
// object holding only its metadata namespace and name.
template <typename T>
struct StoreCallbacks {
  std::function<void(const T&)> onAdd;
  std::function<void(const T& now)> onUpdate;
  std::function<void(const T& last)> onDelete;
};

enum class KeepObjects { No, Yes };

template <typename T, KeepObjects kKeep = KeepObjects::No>
class Store : public ObjectSink {
 public:
  using Decode = bool (*)(const rapidjson::Value&, T&, std::vector<FieldError>&);

  Store(std::string kind, Decode decode, StoreCallbacks<T> callbacks,
        std::function<void(const DecodeProblem&)> problems)
      : kind_(std::move(kind)), decode_(decode), callbacks_(std::move(callbacks)),
        problems_(std::move(problems)) {}

  // The object under `key`, for stores that keep objects.
  const T* get(const std::string& key) const
    requires(kKeep == KeepObjects::Yes)
  {
    auto it = items_.find(key);
    return it == items_.end() ? nullptr : &it->second.object;
  }
  bool contains(const std::string& key) const { return items_.count(key) > 0; }
  size_t size() const { return items_.size(); }
  const std::string& kind() const { return kind_; }

  void listBegin() override { ++listGeneration_; }

  // Items are delivered as they arrive (adds and updates are real states of their objects
  // whatever comes next); only deletions wait for the end of the list.
  void listItem(const rapidjson::Value& obj) override {
    T value;
    if (!decodeOrReport(obj, value)) {
      // Keep the last good version: a bad edit never removes a working object.
      auto it = items_.find(objectRef(obj));
      if (it != items_.end()) {
        it->second.seenInList = listGeneration_;
      }
      return;
    }
    upsert(std::move(value), listGeneration_);
  }

  void listEnd() override {
    std::vector<std::string> gone;
    for (const auto& [key, entry] : items_) {
      if (entry.seenInList != listGeneration_) {
        gone.push_back(key);
      }
    }
    for (const std::string& key : gone) {
      erase(key);
    }
  }

  // Nothing to undo: what was delivered is real; deletions simply wait for a complete list.
  void listAbort() override {}

  void watchEvent(WatchEventType type, const rapidjson::Value& obj) override {
    if (type == WatchEventType::Deleted) {
      // Only the name is needed to delete; a malformed last state is no new problem.
      erase(objectRef(obj));
      return;
    }
    T value;
    if (!decodeOrReport(obj, value)) {
      return;  // keep the previous version, if any
    }
    upsert(std::move(value), listGeneration_);
  }

 private:
  // 16 bytes instead of two strings (the uid alone is 36 characters): two versions that
  // hash alike would have to collide in 64 bits for a change to go unseen.
  struct Identity {
    size_t resourceVersion = 0;
    size_t uid = 0;
    bool operator==(const Identity&) const = default;
  };
  static Identity identityOf(const ObjectMeta& m) {
    return {std::hash<std::string>{}(m.resourceVersion), std::hash<std::string>{}(m.uid)};
  }
  struct Entry {
    Identity id;
    uint64_t seenInList = 0;  // the list generation that last listed it
    [[no_unique_address]] std::conditional_t<kKeep == KeepObjects::Yes, T, std::monostate> object;
  };

  void upsert(T&& value, uint64_t generation) {
    std::string key = value.metadata.key();
    auto [it, inserted] = items_.try_emplace(std::move(key));
    Entry& e = it->second;
    e.seenInList = generation;
    // The API server bumps resourceVersion on every write, and a recreated object gets a
    // new uid: equal both means the same object.
    Identity id = identityOf(value.metadata);
    if (!inserted && e.id == id && !value.metadata.resourceVersion.empty()) {
      return;
    }
    e.id = id;
    if constexpr (kKeep == KeepObjects::Yes) {
      e.object = value;
    }
    if (inserted) {
      if (callbacks_.onAdd) {
        callbacks_.onAdd(value);
      }
    } else if (callbacks_.onUpdate) {
      callbacks_.onUpdate(value);
    }
  }

  void erase(const std::string& key) {
    auto it = items_.find(key);
    if (it == items_.end()) {
      return;
    }
    T last;
    if constexpr (kKeep == KeepObjects::Yes) {
      last = std::move(it->second.object);
    } else {
      auto slash = key.find('/');
      last.metadata.namespace_ = key.substr(0, slash);
      last.metadata.name = key.substr(slash + 1);
    }
    items_.erase(it);
    if (callbacks_.onDelete) {
      callbacks_.onDelete(last);
    }
  }

  bool decodeOrReport(const rapidjson::Value& obj, T& out) {
    std::vector<FieldError> errors;
    if (decode_(obj, out, errors)) {
      return true;
    }
    if (problems_) {
      problems_(DecodeProblem{kind_, objectRef(obj), std::move(errors)});
    }
    return false;
  }

  std::string kind_;
  Decode decode_;
  StoreCallbacks<T> callbacks_;
  std::function<void(const DecodeProblem&)> problems_;
  std::unordered_map<std::string, Entry> items_;
  uint64_t listGeneration_ = 0;
};

}  // namespace switchyard::k8s::apiserver
