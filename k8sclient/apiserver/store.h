// Typed stores: one per kind, keyed by namespace/name, fed by a reflector through the
// ObjectSink interface (raw JSON in), handing typed add/update/delete callbacks out.
// A relist is diffed against what the store holds, so callbacks see only real changes:
// an object deleted while the watch was down gets its delete, an unchanged one nothing.
#pragma once

#include <rapidjson/document.h>

#include <functional>
#include <map>
#include <string>
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

template <typename T>
struct StoreCallbacks {
  std::function<void(const T&)> onAdd;
  std::function<void(const T& old, const T& now)> onUpdate;
  std::function<void(const T& last)> onDelete;
};

template <typename T>
class Store : public ObjectSink {
 public:
  using Decode = bool (*)(const rapidjson::Value&, T&, std::vector<FieldError>&);

  Store(std::string kind, Decode decode, StoreCallbacks<T> callbacks,
        std::function<void(const DecodeProblem&)> problems)
      : kind_(std::move(kind)), decode_(decode), callbacks_(std::move(callbacks)),
        problems_(std::move(problems)) {}

  const T* get(const std::string& key) const {
    auto it = items_.find(key);
    return it == items_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, T>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  const std::string& kind() const { return kind_; }

  void listBegin() override { pending_.clear(); }

  void listItem(const rapidjson::Value& obj) override {
    T value;
    if (!decodeOrReport(obj, value)) {
      // Keep the last good version: a bad edit never removes a working object.
      std::string key = objectRef(obj);
      if (auto it = items_.find(key); it != items_.end()) {
        pending_[key] = it->second;
      }
      return;
    }
    std::string key = value.metadata.key();
    pending_[key] = std::move(value);
  }

  void listEnd() override {
    std::map<std::string, T> next = std::move(pending_);
    pending_.clear();
    for (auto it = items_.begin(); it != items_.end();) {
      if (!next.count(it->first)) {
        T last = std::move(it->second);
        it = items_.erase(it);
        if (callbacks_.onDelete) {
          callbacks_.onDelete(last);
        }
      } else {
        ++it;
      }
    }
    for (auto& [key, value] : next) {
      auto it = items_.find(key);
      if (it == items_.end()) {
        const T& added = items_.emplace(key, std::move(value)).first->second;
        if (callbacks_.onAdd) {
          callbacks_.onAdd(added);
        }
      } else if (changed(it->second, value)) {
        T old = std::move(it->second);
        it->second = std::move(value);
        if (callbacks_.onUpdate) {
          callbacks_.onUpdate(old, it->second);
        }
      }
    }
  }

  void listAbort() override { pending_.clear(); }

  void watchEvent(WatchEventType type, const rapidjson::Value& obj) override {
    if (type == WatchEventType::Deleted) {
      // Only the name is needed to delete; the callback gets the last good version.
      T value;
      std::string key = decodeOrReport(obj, value) ? value.metadata.key() : objectRef(obj);
      auto it = items_.find(key);
      if (it == items_.end()) {
        return;
      }
      T last = std::move(it->second);
      items_.erase(it);
      if (callbacks_.onDelete) {
        callbacks_.onDelete(last);
      }
      return;
    }
    T value;
    if (!decodeOrReport(obj, value)) {
      return;  // keep the previous version, if any
    }
    std::string key = value.metadata.key();
    auto it = items_.find(key);
    if (it == items_.end()) {
      const T& added = items_.emplace(key, std::move(value)).first->second;
      if (callbacks_.onAdd) {
        callbacks_.onAdd(added);
      }
    } else if (changed(it->second, value)) {
      T old = std::move(it->second);
      it->second = std::move(value);
      if (callbacks_.onUpdate) {
        callbacks_.onUpdate(old, it->second);
      }
    }
  }

 private:
  // The API server bumps resourceVersion on every write, and a recreated object gets a new
  // uid: equal both means the same object.
  static bool changed(const T& a, const T& b) {
    return a.metadata.resourceVersion != b.metadata.resourceVersion ||
           a.metadata.uid != b.metadata.uid || a.metadata.resourceVersion.empty();
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
  std::map<std::string, T> items_;
  std::map<std::string, T> pending_;
};

}  // namespace switchyard::k8s::apiserver
