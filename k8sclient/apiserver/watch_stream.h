// The body of a watch response: a stream of JSON objects, one per event
// ({"type":"ADDED","object":{...}}), newline-separated by the API server. TCP and HTTP
// chunking cut it anywhere, so the framer reassembles whole values across reads and
// splits several out of one read. Pure code (no I/O): the fuzz target drives it directly.
#pragma once

#include <rapidjson/document.h>

#include <functional>
#include <string>
#include <string_view>

namespace switchyard::k8s::apiserver {

class JsonFramer {
 public:
  // A frame bigger than maxFrame is an error: a bounded buffer against a broken stream.
  explicit JsonFramer(size_t maxFrame = 64u << 20) : maxFrame_(maxFrame) {}

  // Appends data and calls onFrame with each top-level object or array completed by it,
  // in order. Returns false (and sets error()) when the stream cannot be JSON values: a
  // stray character between values or an oversized frame. The stream is then unusable.
  bool feed(std::string_view data, const std::function<void(std::string_view)>& onFrame);

  size_t buffered() const { return buf_.size(); }
  const std::string& error() const { return error_; }
  void reset();

 private:
  size_t maxFrame_;
  std::string buf_;   // bytes of the value being assembled (from its first byte)
  int depth_ = 0;     // nesting depth; 0 = between values
  bool inString_ = false;
  bool escape_ = false;
  std::string error_;
};

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
