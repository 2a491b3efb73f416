#include "tests/fake_apiserver/json_patch.h"

#include <string_view>

namespace switchyard::fake {
namespace {

using rapidjson::Value;

// patchMergeKey of the list fields kubectl may patch on the served kinds.
const char* mergeKeyFor(const std::string& path) {
  if (path == "spec.ports") {
    return "port";  // Service (and only Service has spec.ports among the served kinds)
  }
  if (path == "metadata.ownerReferences") {
    return "uid";
  }
  return nullptr;
}

bool sameKey(const Value& a, const Value& b, const char* key) {
  if (!a.IsObject() || !b.IsObject()) {
    return false;
  }
  auto x = a.FindMember(key);
  auto y = b.FindMember(key);
  return x != a.MemberEnd() && y != b.MemberEnd() && x->value == y->value;
}

bool isDeleteDirective(const Value& v) {
  if (!v.IsObject()) {
    return false;
  }
  auto p = v.FindMember("$patch");
  return p != v.MemberEnd() && p->value.IsString() &&
         std::string_view(p->value.GetString()) == "delete";
}

void mergeList(Value& target, const Value& patch, const char* key,
               rapidjson::Document::AllocatorType& alloc, const std::string& path) {
  for (const Value& elem : patch.GetArray()) {
    Value* match = nullptr;
    rapidjson::SizeType matchIndex = 0;
    for (rapidjson::SizeType i = 0; i < target.Size(); ++i) {
      if (sameKey(target[i], elem, key)) {
        match = &target[i];
        matchIndex = i;
        break;
      }
    }
    if (isDeleteDirective(elem)) {
      if (match) {
        target.Erase(target.Begin() + matchIndex);
      }
      continue;
    }
    if (match) {
      applyMergePatch(*match, elem, alloc, true, path);
    } else {
      Value copy(elem, alloc);
      target.PushBack(copy, alloc);
    }
  }
}

}  // namespace

void applyMergePatch(Value& target, const Value& patch,
                     rapidjson::Document::AllocatorType& alloc, bool strategic,
                     const std::string& path) {
  if (!patch.IsObject()) {
    target.CopyFrom(patch, alloc);
    return;
  }
  if (strategic) {
    auto directive = patch.FindMember("$patch");
    if (directive != patch.MemberEnd() && directive->value.IsString() &&
        std::string_view(directive->value.GetString()) == "replace") {
      target.CopyFrom(patch, alloc);
      target.RemoveMember("$patch");
      return;
    }
  }
  if (!target.IsObject()) {
    target.SetObject();
  }
  for (auto it = patch.MemberBegin(); it != patch.MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    if (strategic && !name.empty() && name[0] == '$') {
      continue;  // $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...: order only
    }
    std::string child = path.empty() ? name : path + "." + name;
    if (it->value.IsNull()) {
      target.RemoveMember(name.c_str());
      continue;
    }
    auto existing = target.FindMember(name.c_str());
    const char* key = strategic ? mergeKeyFor(child) : nullptr;
    if (existing != target.MemberEnd() && key && it->value.IsArray() &&
        existing->value.IsArray()) {
      mergeList(existing->value, it->value, key, alloc, child);
      continue;
    }
    if (existing == target.MemberEnd()) {
      Value k(name.c_str(), alloc);
      Value v(rapidjson::kNullType);
      target.AddMember(k, v, alloc);
      existing = target.FindMember(name.c_str());
    }
    if (it->value.IsObject()) {
      applyMergePatch(existing->value, it->value, alloc, strategic, child);
    } else {
      existing->value.CopyFrom(it->value, alloc);
    }
  }
}

}  // namespace switchyard::fake
