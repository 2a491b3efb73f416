// The events of a watch response ({"type":"ADDED","object":{...}}), once JsonFramer
// (json_framer.h) has cut them out of the stream, and the other small JSON readers of the
// client. Pure code (no I/O): the fuzz target drives it directly.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "k8sclient/apiserver/json_framer.h"

namespace switchyard::k8s::apiserver {

enum class WatchEventType { Added, Modified, Deleted, Bookmark, Error };

const char* watchEventTypeName(WatchEventType t);

struct WatchEvent {
  WatchEventType type = WatchEventType::Added;
  rapidjson::Document doc;             // owns the parsed event
  const rapidjson::Value* object = nullptr;  // doc["object"]
};

// Parses one frame. False with a reason when it is not a watch event (bad JSON, unknown
// type, object missing or not an object).
bool parseWatchEvent(std::string_view frame, WatchEvent& out, std::string& error);

// A metav1.Status (the object of an ERROR event, or the body of a failed request).
struct ApiStatus {
  int code = 0;
  std::string reason;   // "Expired", "Gone", "Unauthorized", ...
  std::string message;
};

// Fills what the value has; false when it is not a Status object.
bool parseStatus(const rapidjson::Value& v, ApiStatus& out);

// metadata.resourceVersion of an object, "" when absent.
std::string resourceVersionOf(const rapidjson::Value& obj);

// Parses JSON text without recursion (the input comes from the network).
void parseJson(std::string_view text, rapidjson::Document& doc);

}  // namespace switchyard::k8s::apiserver
