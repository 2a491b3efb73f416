#include "tests/fake_apiserver/fake_state.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "tests/fake_apiserver/json_patch.h"

namespace switchyard::fake {
namespace {

using rapidjson::Document;
using rapidjson::Value;

std::string serialize(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return buf.GetString();
}

std::string quote(const std::string& s) {
  Value v(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return serialize(v);
}

std::string nowRfc3339() {
  time_t t = time(nullptr);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

Response notFound(const Resource& r, const std::string& name) {
  std::string what = r.group.empty() ? r.plural : r.plural + "." + r.group;
  return {404, statusJson(404, "NotFound", what + " \"" + name + "\" not found")};
}

Response badRequest(const std::string& message) {
  return {400, statusJson(400, "BadRequest", message)};
}

Value& ensureObject(Value& parent, const char* key, Document::AllocatorType& alloc) {
  auto it = parent.FindMember(key);
  if (it == parent.MemberEnd()) {
    parent.AddMember(Value(key, alloc), Value(rapidjson::kObjectType), alloc);
    it = parent.FindMember(key);
  } else if (!it->value.IsObject()) {
    it->value.SetObject();
  }
  return it->value;
}

void setString(Value& obj, const char* key, const std::string& value,
               Document::AllocatorType& alloc) {
  auto it = obj.FindMember(key);
  if (it != obj.MemberEnd()) {
    it->value.SetString(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc);
  } else {
    obj.AddMember(Value(key, alloc), Value(value.c_str(), alloc), alloc);
  }
}

std::string getString(const Value& obj, const char* key) {
  if (!obj.IsObject()) {
    return "";
  }
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

bool has(const Value& obj, const char* key) {
  return obj.IsObject() && obj.FindMember(key) != obj.MemberEnd() && !obj[key].IsNull();
}

// Defaults the real API server fills in on a Service, so objects written by kubectl look as
// they would in a cluster.
void defaultService(Value& obj, Document::AllocatorType& alloc, const Value* old,
                    const std::function<std::string()>& allocateIP,
                    const std::function<int()>& allocateNodePort) {
  Value& spec = ensureObject(obj, "spec", alloc);
  std::string type = getString(spec, "type");
  if (type.empty()) {
    type = "ClusterIP";
    setString(spec, "type", type, alloc);
  }
  if (!has(spec, "sessionAffinity")) {
    setString(spec, "sessionAffinity", "None", alloc);
  }
  if (type != "ExternalName") {
    std::string ip = getString(spec, "clusterIP");
    if (ip.empty() && old && old->IsObject() && has(*old, "spec")) {
      ip = getString((*old)["spec"], "clusterIP");  // immutable once allocated
    }
    if (ip.empty()) {
      ip = allocateIP();
    }
    setString(spec, "clusterIP", ip, alloc);
    if (!has(spec, "clusterIPs")) {
      Value ips(rapidjson::kArrayType);
      ips.PushBack(Value(ip.c_str(), alloc), alloc);
      spec.AddMember("clusterIPs", ips, alloc);
    }
    if (ip != "None" && !has(spec, "ipFamilies")) {
      Value fams(rapidjson::kArrayType);
      fams.PushBack(Value(ip.find(':') != std::string::npos ? "IPv6" : "IPv4"), alloc);
      spec.AddMember("ipFamilies", fams, alloc);
      setString(spec, "ipFamilyPolicy", "SingleStack", alloc);
    }
    if (!has(spec, "internalTrafficPolicy")) {
      setString(spec, "internalTrafficPolicy", "Cluster", alloc);
    }
  }
  if ((type == "NodePort" || type == "LoadBalancer") && !has(spec, "externalTrafficPolicy")) {
    setString(spec, "externalTrafficPolicy", "Cluster", alloc);
  }
  auto ports = spec.FindMember("ports");
  if (ports != spec.MemberEnd() && ports->value.IsArray()) {
    for (Value& p : ports->value.GetArray()) {
      if (!p.IsObject()) {
        continue;
      }
      if (!has(p, "protocol")) {
        setString(p, "protocol", "TCP", alloc);
      }
      if (!has(p, "targetPort") && has(p, "port")) {
        Value tp;
        tp.CopyFrom(p["port"], alloc);
        p.AddMember("targetPort", tp, alloc);
      }
      if ((type == "NodePort" || type == "LoadBalancer") && !has(p, "nodePort")) {
        p.AddMember("nodePort", allocateNodePort(), alloc);
      }
    }
  }
  if (!has(obj, "status")) {
    Value status(rapidjson::kObjectType);
    status.AddMember("loadBalancer", Value(rapidjson::kObjectType), alloc);
    obj.AddMember("status", status, alloc);
  }
}

// Parses a continue token "RV:ns/name" (the fake's own, opaque to clients).
bool parseContinue(const std::string& token, uint64_t& rv, std::string& after) {
  auto colon = token.find(':');
  if (colon == std::string::npos) {
    return false;
  }
  // from_chars on the token itself: strtoull on a temporary's c_str() left `end` pointing
  // into freed memory, which -O3 made visible (every continue token rejected).
  auto [end, ec] = std::from_chars(token.data(), token.data() + colon, rv);
  after = token.substr(colon + 1);
  return ec == std::errc() && end == token.data() + colon;
}

}  // namespace

std::string statusJson(int code, const std::string& reason, const std::string& message) {
  return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":)" +
         quote(message) + R"(,"reason":)" + quote(reason) + R"(,"code":)" + std::to_string(code) +
         "}";
}

std::string watchEventJson(const char* type, const std::string& objectJson) {
  return std::string(R"({"type":")") + type + R"(","object":)" + objectJson + "}\n";
}

std::string bookmarkJson(const Resource& r, uint64_t rv) {
  return R"({"type":"BOOKMARK","object":{"kind":")" + r.kind + R"(","apiVersion":")" +
         r.apiVersion() + R"(","metadata":{"resourceVersion":")" + std::to_string(rv) +
         R"(","annotations":{"k8s.io/initial-events-end":"false"}}}})" + "\n";
}

std::string expiredEventJson(const std::string& requestedRv, uint64_t oldest) {
  return watchEventJson("ERROR", statusJson(410, "Expired",
                                            "too old resource version: " + requestedRv + " (" +
                                                std::to_string(oldest) + ")"));
}

std::string watchLineFor(const Change& c, const std::string& ns, const LabelSelector& labels,
                         const FieldSelector& fields) {
  auto passes = [&](const ObjectPtr& o) {
    return o && (ns.empty() || o->ns == ns) && labels.matches(o->labels) &&
           fields.matches(o->ns, o->name);
  };
  bool now = passes(c.object);
  bool before = passes(c.previous);
  switch (c.type) {
    case ChangeType::Added:
      return now ? watchEventJson("ADDED", c.object->json) : "";
    case ChangeType::Modified:
      if (now && before) {
        return watchEventJson("MODIFIED", c.object->json);
      }
      if (now) {
        return watchEventJson("ADDED", c.object->json);
      }
      return before ? watchEventJson("DELETED", c.object->json) : "";
    case ChangeType::Deleted:
      return before || now ? watchEventJson("DELETED", c.object->json) : "";
  }
  return "";
}

std::string FakeState::allocateClusterIP() {
  // Service ClusterIPs from the test range 198.18.0.0/15: 198.19.128.0/17.
  uint32_t n = nextClusterIP_++;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "198.19.%u.%u", 128 + (n >> 8) % 128, n & 0xff);
  return buf;
}

size_t FakeState::count(const Resource& r) const {
  auto it = objects_.find(&r);
  return it == objects_.end() ? 0 : it->second.size();
}

void FakeState::commit(const Resource& r, ChangeType type, ObjectPtr object, ObjectPtr previous) {
  auto& objs = objects_[&r];
  if (type == ChangeType::Deleted) {
    objs.erase(object->key());
  } else {
    objs[object->key()] = object;
  }
  Change c{object->resourceVersion, type, object, previous};
  history_.push_back(c);
  if (listener_) {
    listener_(c);
  }
}

Response FakeState::write(const Resource& r, const std::string& pathNs, const std::string& pathName,
                          const std::string& body, bool mustExist, bool mustNotExist,
                          bool checkVersion) {
  Document doc;
  doc.Parse(body.c_str(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return badRequest("the request body is not a JSON object");
  }
  auto& alloc = doc.GetAllocator();
  std::string kind = getString(doc, "kind"), apiVersion = getString(doc, "apiVersion");
  if ((!kind.empty() && kind != r.kind) || (!apiVersion.empty() && apiVersion != r.apiVersion())) {
    return badRequest("the object is a " + apiVersion + " " + kind + ", not a " + r.apiVersion() +
                      " " + r.kind);
  }
  ensureObject(doc, "metadata", alloc);
  // Adding members to doc may move them: always reach metadata afresh.
  auto meta = [&doc]() -> Value& { return doc["metadata"]; };
  std::string name = getString(meta(), "name");
  if (name.empty() && !getString(meta(), "generateName").empty()) {
    name = getString(meta(), "generateName") + std::to_string(++uidCounter_);
  }
  if (!pathName.empty() && !name.empty() && name != pathName) {
    return badRequest("the name of the object (" + name + ") does not match the name in the URL (" +
                      pathName + ")");
  }
  if (name.empty()) {
    name = pathName;
  }
  if (name.empty()) {
    return {422, statusJson(422, "Invalid", r.kind + " is invalid: metadata.name: Required value")};
  }
  std::string ns = r.namespaced ? getString(meta(), "namespace") : "";
  if (r.namespaced) {
    if (ns.empty()) {
      ns = pathNs.empty() ? "default" : pathNs;
    } else if (!pathNs.empty() && ns != pathNs) {
      return badRequest("the namespace of the object (" + ns +
                        ") does not match the namespace on the request (" + pathNs + ")");
    }
  }
  auto& objs = objects_[&r];
  auto existing = objs.find(ns + "/" + name);
  ObjectPtr previous = existing == objs.end() ? nullptr : existing->second;
  if (mustExist && !previous) {
    return notFound(r, name);
  }
  if (mustNotExist && previous) {
    std::string what = r.group.empty() ? r.plural : r.plural + "." + r.group;
    return {409, statusJson(409, "AlreadyExists", what + " \"" + name + "\" already exists")};
  }
  std::string requestedRv = getString(meta(), "resourceVersion");
  if (checkVersion && previous && !requestedRv.empty() &&
      requestedRv != std::to_string(previous->resourceVersion)) {
    return {409, statusJson(409, "Conflict",
                            "Operation cannot be fulfilled on " + r.plural + " \"" + name +
                                "\": the object has been modified; please apply your changes to "
                                "the latest version and try again")};
  }

  Document old;
  if (previous) {
    old.Parse(previous->json.c_str());
  }
  setString(doc, "kind", r.kind, alloc);
  setString(doc, "apiVersion", r.apiVersion(), alloc);
  setString(meta(), "name", name, alloc);
  if (r.namespaced) {
    setString(meta(), "namespace", ns, alloc);
  } else {
    meta().RemoveMember("namespace");
  }
  std::string uid = previous ? getString(old["metadata"], "uid") : "";
  if (uid.empty()) {
    char buf[40];
    uint64_t n = ++uidCounter_;
    std::snprintf(buf, sizeof(buf), "5f1c0de0-0000-4000-8000-%012llx",
                  static_cast<unsigned long long>(n));
    uid = buf;
  }
  setString(meta(), "uid", uid, alloc);
  std::string created = previous ? previous->creationTimestamp : nowRfc3339();
  setString(meta(), "creationTimestamp", created, alloc);
  if (r.kind == "Service") {
    defaultService(doc, alloc, previous ? &old : nullptr,
                   [this] { return allocateClusterIP(); },
                   [this] { return static_cast<int>(nextNodePort_++); });
  }

  // A write that changes nothing keeps the resourceVersion and sends no event.
  if (previous) {
    setString(meta(), "resourceVersion", std::to_string(previous->resourceVersion), alloc);
    if (serialize(doc) == previous->json) {
      return {200, previous->json};
    }
  }
  uint64_t rv = ++rv_;
  setString(meta(), "resourceVersion", std::to_string(rv), alloc);

  auto obj = std::make_shared<StoredObject>();
  obj->resource = &r;
  obj->ns = ns;
  obj->name = name;
  obj->resourceVersion = rv;
  obj->creationTimestamp = created;
  if (auto labels = meta().FindMember("labels");
      labels != meta().MemberEnd() && labels->value.IsObject()) {
    for (auto& l : labels->value.GetObject()) {
      if (l.value.IsString()) {
        obj->labels[l.name.GetString()] = l.value.GetString();
      }
    }
  }
  obj->json = serialize(doc);
  doc.RemoveMember("kind");
  doc.RemoveMember("apiVersion");
  obj->itemJson = serialize(doc);
  commit(r, previous ? ChangeType::Modified : ChangeType::Added, obj, previous);
  return {previous ? 200 : 201, obj->json};
}

Response FakeState::create(const Resource& r, const std::string& ns, const std::string& body) {
  return write(r, ns, "", body, false, true, false);
}

Response FakeState::replace(const Resource& r, const std::string& ns, const std::string& name,
                            const std::string& body) {
  return write(r, ns, name, body, true, false, true);
}

Response FakeState::patch(const Resource& r, const std::string& ns, const std::string& name,
                          const std::string& body, const std::string& contentType) {
  bool strategic = contentType.find("strategic-merge-patch") != std::string::npos;
  if (!strategic && contentType.find("merge-patch") == std::string::npos) {
    return {415, statusJson(415, "UnsupportedMediaType",
                            "the fake API server supports merge and strategic merge patches, "
                            "not " + contentType)};
  }
  auto& objs = objects_[&r];
  auto existing = objs.find((r.namespaced ? ns : "") + "/" + name);
  if (existing == objs.end()) {
    return notFound(r, name);
  }
  Document target, p;
  target.Parse(existing->second->json.c_str());
  p.Parse(body.c_str(), body.size());
  if (p.HasParseError() || !p.IsObject()) {
    return badRequest("the patch is not a JSON object");
  }
  applyMergePatch(target, p, target.GetAllocator(), strategic);
  return write(r, ns, name, serialize(target), true, false, false);
}

Response FakeState::remove(const Resource& r, const std::string& ns, const std::string& name) {
  auto& objs = objects_[&r];
  auto existing = objs.find((r.namespaced ? ns : "") + "/" + name);
  if (existing == objs.end()) {
    return notFound(r, name);
  }
  ObjectPtr previous = existing->second;
  // The DELETED event carries the object at the deletion's resourceVersion.
  Document doc;
  doc.Parse(previous->json.c_str());
  uint64_t rv = ++rv_;
  setString(doc["metadata"], "resourceVersion", std::to_string(rv), doc.GetAllocator());
  auto obj = std::make_shared<StoredObject>(*previous);
  obj->resourceVersion = rv;
  obj->json = serialize(doc);
  doc.RemoveMember("kind");
  doc.RemoveMember("apiVersion");
  obj->itemJson = serialize(doc);
  commit(r, ChangeType::Deleted, obj, previous);
  return {200, obj->json};
}

Response FakeState::get(const Resource& r, const std::string& ns, const std::string& name) const {
  auto it = objects_.find(&r);
  if (it != objects_.end()) {
    auto o = it->second.find((r.namespaced ? ns : "") + "/" + name);
    if (o != it->second.end()) {
      return {200, o->second->json};
    }
  }
  return notFound(r, name);
}

std::map<std::string, ObjectPtr> FakeState::snapshot(const Resource& r, uint64_t rv) const {
  std::map<std::string, ObjectPtr> objs;
  if (auto it = objects_.find(&r); it != objects_.end()) {
    objs = it->second;
  }
  for (auto h = history_.rbegin(); h != history_.rend() && h->resourceVersion > rv; ++h) {
    if (h->object->resource != &r) {
      continue;
    }
    if (h->type == ChangeType::Added) {
      objs.erase(h->object->key());
    } else {
      objs[h->previous->key()] = h->previous;
    }
  }
  return objs;
}

Response FakeState::list(const Resource& r, const ListOptions& o) const {
  LabelSelector labels;
  FieldSelector fields;
  std::string error;
  if (!labels.parse(o.labelSelector, error) || !fields.parse(o.fieldSelector, error)) {
    return badRequest(error);
  }
  uint64_t snapshotRv = rv_;
  std::string after;
  if (!o.continueToken.empty()) {
    if (!parseContinue(o.continueToken, snapshotRv, after)) {
      return badRequest("invalid continue token");
    }
    if (snapshotRv < compactedAt_) {
      return {410, statusJson(410, "Expired",
                              "The provided continue parameter is too old to display a consistent "
                              "list result. You can start a new list without the continue "
                              "parameter.")};
    }
  }
  // The objects as of snapshotRv. Copying the whole map for each page would make a
  // paginated list of N objects cost O(N^2): copy only when something changed since.
  static const std::map<std::string, ObjectPtr> kNone;
  std::map<std::string, ObjectPtr> copy;
  const std::map<std::string, ObjectPtr>* current = &kNone;
  if (auto cur = objects_.find(&r); cur != objects_.end()) {
    current = &cur->second;
  }
  bool changedSince = false;
  for (auto h = history_.rbegin(); h != history_.rend() && h->resourceVersion > snapshotRv; ++h) {
    changedSince = changedSince || h->object->resource == &r;
  }
  if (changedSince) {
    copy = snapshot(r, snapshotRv);
    current = &copy;
  }
  const std::map<std::string, ObjectPtr>& objs = *current;
  std::string items;
  size_t n = 0, remaining = 0;
  std::string lastKey;
  // As the API server does, a list with a label or field selector says only that more
  // items follow (remainingItemCount is left out): matching the whole rest of the list for
  // every page would make a paginated list of N objects cost O(N^2) selector matches.
  bool countRemaining = o.labelSelector.empty() && o.fieldSelector.empty();
  for (auto it = after.empty() ? objs.begin() : objs.upper_bound(after); it != objs.end(); ++it) {
    const StoredObject& obj = *it->second;
    if ((!o.ns.empty() && obj.ns != o.ns) || !labels.matches(obj.labels) ||
        !fields.matches(obj.ns, obj.name)) {
      continue;
    }
    if (o.limit > 0 && n == o.limit) {
      ++remaining;
      if (!countRemaining) {
        break;
      }
      continue;
    }
    if (n++) {
      items += ",";
    }
    items += obj.itemJson;
    lastKey = it->first;
  }
  std::string md = R"("resourceVersion":")" + std::to_string(snapshotRv) + "\"";
  if (remaining > 0) {
    md += R"(,"continue":)" + quote(std::to_string(snapshotRv) + ":" + lastKey);
    if (countRemaining) {
      md += R"(,"remainingItemCount":)" + std::to_string(remaining);
    }
  }
  return {200, R"({"kind":")" + r.kind + R"(List","apiVersion":")" + r.apiVersion() +
                   R"(","metadata":{)" + md + R"(},"items":[)" + items + "]}"};
}

Response FakeState::watchBacklog(const Resource& r, const std::string& rvText,
                                 std::vector<Change>& backlog) const {
  backlog.clear();
  if (rvText.empty() || rvText == "0") {
    if (auto it = objects_.find(&r); it != objects_.end()) {
      for (const auto& [key, obj] : it->second) {
        backlog.push_back(Change{obj->resourceVersion, ChangeType::Added, obj, nullptr});
      }
    }
    return {200, ""};
  }
  char* end = nullptr;
  uint64_t rv = std::strtoull(rvText.c_str(), &end, 10);
  if (*end != '\0') {
    return badRequest("invalid resource version \"" + rvText + "\"");
  }
  if (rv < compactedAt_) {
    return {410, statusJson(410, "Expired", "too old resource version: " + rvText + " (" +
                                                std::to_string(compactedAt_) + ")")};
  }
  for (const Change& c : history_) {
    if (c.resourceVersion > rv && c.object->resource == &r) {
      backlog.push_back(c);
    }
  }
  return {200, ""};
}

Response FakeState::apply(const std::string& json) {
  Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return badRequest("not a JSON object");
  }
  const Resource* r = findKind(getString(doc, "apiVersion"), getString(doc, "kind"));
  if (!r) {
    return badRequest("the fake API server does not serve " + getString(doc, "apiVersion") + " " +
                      getString(doc, "kind"));
  }
  std::string ns, name;
  if (has(doc, "metadata")) {
    ns = getString(doc["metadata"], "namespace");
    name = getString(doc["metadata"], "name");
    doc["metadata"].RemoveMember("resourceVersion");
  }
  if (r->namespaced && ns.empty()) {
    ns = "default";
  }
  return write(*r, r->namespaced ? ns : "", "", serialize(doc), false, false, false);
}

size_t FakeState::applyAll(const std::string& json, std::vector<std::string>& errors) {
  Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    errors.push_back("not a JSON object");
    return 0;
  }
  std::vector<std::string> objects;
  if (getString(doc, "kind").ends_with("List") && has(doc, "items") && doc["items"].IsArray()) {
    for (const Value& item : doc["items"].GetArray()) {
      objects.push_back(serialize(item));
    }
  } else {
    objects.push_back(json);
  }
  size_t applied = 0;
  for (const std::string& o : objects) {
    Response res = apply(o);
    if (res.status >= 300) {
      errors.push_back(res.body);
    } else {
      ++applied;
    }
  }
  return applied;
}

}  // namespace switchyard::fake
