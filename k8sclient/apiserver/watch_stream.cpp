#include "k8sclient/apiserver/watch_stream.h"

#include <rapidjson/error/en.h>

namespace switchyard::k8s::apiserver {

const char* watchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::Added: return "ADDED";
    case WatchEventType::Modified: return "MODIFIED";
    case WatchEventType::Deleted: return "DELETED";
    case WatchEventType::Bookmark: return "BOOKMARK";
    case WatchEventType::Error: return "ERROR";
  }
  return "?";
}

void parseJson(std::string_view text, rapidjson::Document& doc) {
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
}

bool parseWatchEvent(std::string_view frame, WatchEvent& out, std::string& error) {
  parseJson(frame, out.doc);
  if (out.doc.HasParseError()) {
    error = std::string("invalid JSON at offset ") + std::to_string(out.doc.GetErrorOffset()) +
            ": " + rapidjson::GetParseError_En(out.doc.GetParseError());
    return false;
  }
  if (!out.doc.IsObject()) {
    error = "a watch event must be a JSON object";
    return false;
  }
  // Const access: RapidJSON's mutable iterators compare ambiguously under C++20.
  const rapidjson::Value& doc = out.doc;
  auto type = doc.FindMember("type");
  if (type == doc.MemberEnd() || !type->value.IsString()) {
    error = "type: must be a string";
    return false;
  }
  std::string_view t(type->value.GetString(), type->value.GetStringLength());
  if (t == "ADDED") {
    out.type = WatchEventType::Added;
  } else if (t == "MODIFIED") {
    out.type = WatchEventType::Modified;
  } else if (t == "DELETED") {
    out.type = WatchEventType::Deleted;
  } else if (t == "BOOKMARK") {
    out.type = WatchEventType::Bookmark;
  } else if (t == "ERROR") {
    out.type = WatchEventType::Error;
  } else {
    error = "type: unknown watch event type \"" + std::string(t) + "\"";
    return false;
  }
  auto obj = doc.FindMember("object");
  if (obj == doc.MemberEnd() || !obj->value.IsObject()) {
    error = "object: must be an object";
    return false;
  }
  out.object = &obj->value;
  return true;
}

bool parseStatus(const rapidjson::Value& v, ApiStatus& out) {
  if (!v.IsObject()) {
    return false;
  }
  auto kind = v.FindMember("kind");
  if (kind == v.MemberEnd() || !kind->value.IsString() ||
      std::string_view(kind->value.GetString()) != "Status") {
    return false;
  }
  if (auto c = v.FindMember("code"); c != v.MemberEnd() && c->value.IsInt()) {
    out.code = c->value.GetInt();
  }
  if (auto r = v.FindMember("reason"); r != v.MemberEnd() && r->value.IsString()) {
    out.reason = r->value.GetString();
  }
  if (auto m = v.FindMember("message"); m != v.MemberEnd() && m->value.IsString()) {
    out.message = m->value.GetString();
  }
  return true;
}

std::string resourceVersionOf(const rapidjson::Value& obj) {
  if (!obj.IsObject()) {
    return "";
  }
  auto md = obj.FindMember("metadata");
  if (md == obj.MemberEnd() || !md->value.IsObject()) {
    return "";
  }
  auto rv = md->value.FindMember("resourceVersion");
  if (rv == md->value.MemberEnd() || !rv->value.IsString()) {
    return "";
  }
  return std::string(rv->value.GetString(), rv->value.GetStringLength());
}

}  // namespace switchyard::k8s::apiserver
