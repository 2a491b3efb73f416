#include "k8sclient/manifest_source.h"

#include <rapidjson/error/en.h>
#include <rapidjson/filereadstream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <malloc.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <unordered_set>

#include "k8sclient/decode.h"
#include "k8sclient/yaml_json.h"

namespace switchyard::k8s {
namespace {

namespace fs = std::filesystem;

struct RawDocument {
  std::string text;
  int firstLine = 0;  // 0-based line of the document's first line in the file
};

// Splits a multi-document YAML file at "---" lines ourselves, so one broken document does
// not hide the others (yaml-cpp's LoadAll stops at the first syntax error).
std::vector<RawDocument> splitDocuments(const std::string& content) {
  std::vector<RawDocument> docs(1);
  size_t pos = 0;
  int lineNo = 0;
  while (pos < content.size()) {
    size_t eol = content.find('\n', pos);
    size_t next = eol == std::string::npos ? content.size() : eol + 1;
    std::string_view line(content.data() + pos, (eol == std::string::npos ? content.size() : eol) - pos);
    bool marker = line.starts_with("---") &&
                  (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    if (marker) {
      docs.push_back({std::string(line.substr(3)) + "\n", lineNo});
    } else if (line == "..." || line == "...\r") {
      docs.push_back({"", lineNo + 1});
    } else {
      docs.back().text.append(line).push_back('\n');
    }
    ++lineNo;
    pos = next;
  }
  return docs;
}

size_t fingerprintOf(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::hash<std::string_view>{}(std::string_view(buf.GetString(), buf.GetSize()));
}

std::string kindOf(const rapidjson::Value& obj) {
  if (obj.IsObject()) {
    auto k = obj.FindMember("kind");
    if (k != obj.MemberEnd() && k->value.IsString()) {
      return k->value.GetString();
    }
  }
  return "";
}

// A FileReadStream that counts lines, so a JSON syntax error names its line.
class LineCountingStream {
 public:
  using Ch = char;
  explicit LineCountingStream(rapidjson::FileReadStream& in) : in_(in) {}
  Ch Peek() const { return in_.Peek(); }
  Ch Take() {
    Ch c = in_.Take();
    line_ += c == '\n';
    return c;
  }
  size_t Tell() const { return in_.Tell(); }
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }
  int line() const { return line_; }

 private:
  rapidjson::FileReadStream& in_;
  int line_ = 1;
};

// SAX handler that builds the top-level JSON value, except that the elements of its
// "items" array are handed to onItem one by one and then dropped: a List of 100,000
// objects is never held whole.
class StreamingItems : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, StreamingItems> {
 public:
  using Value = rapidjson::Value;
  using Alloc = rapidjson::MemoryPoolAllocator<>;
  explicit StreamingItems(std::function<void(const Value&, size_t index)> onItem)
      : onItem_(std::move(onItem)) {}

  bool Null() { return add(Value()); }
  bool Bool(bool b) { return add(Value(b)); }
  bool Int(int i) { return add(Value(i)); }
  bool Uint(unsigned u) { return add(Value(u)); }
  bool Int64(int64_t i) { return add(Value(i)); }
  bool Uint64(uint64_t u) { return add(Value(u)); }
  bool Double(double d) { return add(Value(d)); }
  bool String(const char* s, rapidjson::SizeType n, bool) { return add(Value(s, n, alloc())); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    stack_.back().key.SetString(s, n, alloc());
    return true;
  }
  bool StartObject() { return push(Value(rapidjson::kObjectType), false); }
  bool EndObject(rapidjson::SizeType) { return pop(); }
  bool StartArray() {
    // The top-level object's "items": stream its elements.
    bool items = stack_.size() == 1 && stack_[0].value.IsObject() && stack_[0].key.IsString() &&
                 std::string_view(stack_[0].key.GetString(), stack_[0].key.GetStringLength()) == "items";
    return push(Value(rapidjson::kArrayType), items);
  }
  bool EndArray(rapidjson::SizeType) { return pop(); }

  Value& root() { return root_; }
  bool sawItems() const { return sawItems_; }

 private:
  struct Frame {
    Value value;
    Value key;  // pending member name (objects)
    bool items = false;
  };
  Alloc& alloc() { return inItem_ ? itemAlloc_ : topAlloc_; }
  bool push(Value v, bool items) {
    if (!stack_.empty() && stack_.back().items) {
      inItem_ = true;  // an item starts: it lives in the item allocator
    }
    stack_.push_back({std::move(v), Value(), items});
    sawItems_ = sawItems_ || items;
    return true;
  }
  bool pop() {
    Value v = std::move(stack_.back().value);
    stack_.pop_back();
    return add(std::move(v));
  }
  bool add(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return true;
    }
    Frame& top = stack_.back();
    if (top.items) {
      onItem_(v, index_++);
      v.SetNull();
      inItem_ = false;
      itemAlloc_.Clear();
      return true;
    }
    if (top.value.IsObject()) {
      top.value.AddMember(top.key, v, alloc());
    } else {
      top.value.PushBack(v, alloc());
    }
    return true;
  }

  std::function<void(const Value&, size_t)> onItem_;
  Alloc topAlloc_, itemAlloc_;
  std::vector<Frame> stack_;
  Value root_;
  size_t index_ = 0;
  bool inItem_ = false;
  bool sawItems_ = false;
};

class FileParser {
 public:
  FileParser(const std::string& file, ManifestVisitor& visitor, std::vector<ManifestProblem>& problems)
      : file_(file), visitor_(visitor), problems_(problems) {}

  // `kubectl get -o json` output: one object or a List. JSON carries no positions for its
  // values, so problems name line 1 and the field path.
  bool parseJson() {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file_.c_str(), "rb"), &std::fclose);
    if (!f) {
      problems_.push_back({file_, 0, 0, "", "", "cannot be read"});
      return false;
    }
    char buffer[65536];
    rapidjson::FileReadStream raw(f.get(), buffer, sizeof(buffer));
    LineCountingStream in(raw);
    RawDocument doc{"", 1};  // JSON values carry no lines: problems name line 1
    YAML::Node none;
    StreamingItems handler([&](const rapidjson::Value& item, size_t i) {
      object(item, 1, doc, none, "items[" + std::to_string(i) + "].");
    });
    rapidjson::Reader reader;
    rapidjson::ParseResult ok = reader.Parse(in, handler);
    if (!ok) {
      problems_.push_back({file_, 1, in.line(), "", "",
                           std::string("invalid JSON: ") + rapidjson::GetParseError_En(ok.Code())});
      return false;
    }
    rapidjson::Value& root = handler.root();
    if (handler.sawItems()) {
      return true;  // a List: its items went by one by one
    }
    if (kindOf(root).ends_with("List")) {
      problem(1, doc, none, "", "items", "a List must have an items list");
      return true;
    }
    object(root, 1, doc, none, "");
    return true;
  }

  bool parseYaml() {
    std::ifstream in(file_);
    if (!in) {
      problems_.push_back({file_, 0, 0, "", "", "cannot be read"});
      return false;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    bool syntaxOk = true;
    size_t docIndex = 0;
    for (const RawDocument& raw : splitDocuments(ss.str())) {
      YAML::Node doc;
      try {
        doc = YAML::Load(raw.text);
      } catch (const YAML::Exception& e) {
        ++docIndex;
        problems_.push_back({file_, docIndex, raw.firstLine + e.mark.line + 1, "", "",
                             "invalid YAML: " + e.msg});
        syntaxOk = false;
        continue;
      }
      if (doc.IsNull() || !doc.IsDefined()) {
        continue;  // empty document (comments only, or a leading ---)
      }
      ++docIndex;
      rapidjson::Document json;
      yamlToJson(doc, json, json.GetAllocator());
      if (kindOf(json).ends_with("List")) {
        auto items = json.FindMember("items");
        if (items == json.MemberEnd() || !items->value.IsArray()) {
          problem(docIndex, raw, doc, "", "items", "a List must have an items list");
          continue;
        }
        YAML::Node yitems = doc["items"];
        for (rapidjson::SizeType i = 0; i < items->value.Size(); ++i) {
          object(items->value[i], docIndex, raw, yitems[i], "items[" + std::to_string(i) + "].");
        }
        continue;
      }
      object(json, docIndex, raw, doc, "");
    }
    return syntaxOk;
  }

 private:
  void problem(size_t docIndex, const RawDocument& raw, const YAML::Node& doc,
               const std::string& object, const std::string& field, const std::string& reason) {
    problems_.push_back({file_, docIndex, raw.firstLine + yamlLineOf(doc, field), object, field,
                         reason});
  }

  template <typename T, typename Decode, typename Deliver>
  void decode(const rapidjson::Value& obj, const char* kind, size_t docIndex, const RawDocument& raw,
              const YAML::Node& ydoc, const std::string& prefix, Decode decodeFn, Deliver deliver) {
    std::vector<FieldError> errors;
    T value;
    std::string ref = std::string(kind) + " " + objectRef(obj);
    if (!decodeFn(obj, value, errors)) {
      for (const FieldError& e : errors) {
        problems_.push_back({file_, docIndex, raw.firstLine + yamlLineOf(ydoc, e.field), ref,
                             prefix + e.field, e.reason});
      }
      std::string key = manifestObjectKey(kind, objectRef(obj));
      if (!seen_.count(key)) {
        visitor_.invalid(key);  // a later broken copy does not spoil a good one
      }
      return;
    }
    std::string key = manifestObjectKey(kind, value.metadata.key());
    if (!seen_.insert(key).second) {
      problems_.push_back({file_, docIndex, raw.firstLine + yamlLineOf(ydoc, "metadata.name"), ref,
                           prefix + "metadata.name",
                           "duplicate: the same object appears earlier; this copy is ignored"});
      return;
    }
    deliver(value, fingerprintOf(obj));
  }

  void object(const rapidjson::Value& obj, size_t docIndex, const RawDocument& raw,
              const YAML::Node& ydoc, const std::string& prefix) {
    std::string kind = kindOf(obj);
    if (kind.empty()) {
      problems_.push_back({file_, docIndex, raw.firstLine + yamlLineOf(ydoc, "kind"), "",
                           prefix + "kind", "is required"});
      return;
    }
    if (kind == "Service") {
      decode<Service>(obj, "Service", docIndex, raw, ydoc, prefix, decodeService,
                      [this](const Service& s, size_t fp) { visitor_.service(s, fp); });
    } else if (kind == "EndpointSlice") {
      decode<EndpointSlice>(obj, "EndpointSlice", docIndex, raw, ydoc, prefix, decodeEndpointSlice,
                            [this](const EndpointSlice& s, size_t fp) { visitor_.endpointSlice(s, fp); });
    } else if (kind == "Node") {
      decode<Node>(obj, "Node", docIndex, raw, ydoc, prefix, decodeNode,
                   [this](const Node& n, size_t fp) { visitor_.node(n, fp); });
    } else if (visitor_.policyKinds() && kind == "Pod") {
      decode<Pod>(obj, "Pod", docIndex, raw, ydoc, prefix, decodePod,
                  [this](const Pod& p, size_t fp) { visitor_.pod(p, fp); });
    } else if (visitor_.policyKinds() && kind == "Namespace") {
      decode<Namespace>(obj, "Namespace", docIndex, raw, ydoc, prefix, decodeNamespace,
                        [this](const Namespace& n, size_t fp) { visitor_.namespace_(n, fp); });
    } else if (visitor_.policyKinds() && kind == "NetworkPolicy") {
      decode<NetworkPolicy>(obj, "NetworkPolicy", docIndex, raw, ydoc, prefix, decodeNetworkPolicy,
                            [this](const NetworkPolicy& p, size_t fp) { visitor_.networkPolicy(p, fp); });
    }
    // Other kinds (Deployments, Pods, ...) may share the files; they are not ours.
  }

  const std::string& file_;
  ManifestVisitor& visitor_;
  std::vector<ManifestProblem>& problems_;
  std::unordered_set<std::string> seen_;  // objects of this file so far
};

}  // namespace

std::string ManifestProblem::str() const {
  std::string s = file + ":" + std::to_string(line) + ": document " + std::to_string(document) + ": ";
  if (!object.empty()) {
    s += object + ": ";
  }
  if (!field.empty()) {
    s += field + ": ";
  }
  return s + reason;
}

std::string manifestObjectKey(const char* kind, const std::string& nsName) {
  return std::string(kind) + " " + nsName;
}

std::vector<std::string> manifestFiles(const std::string& path, std::string& error) {
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      std::string ext = entry.path().extension().string();
      std::string name = entry.path().filename().string();
      if ((ext == ".yaml" || ext == ".yml" || ext == ".json") && !name.starts_with(".") &&
          entry.is_regular_file(ec)) {
        files.push_back(entry.path().string());
      }
    }
    if (ec) {
      error = path + ": " + ec.message();
    }
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(path, ec)) {
    files.push_back(path);
  } else {
    error = path + ": no such file or directory";
  }
  return files;
}

bool parseManifestFile(const std::string& file, ManifestVisitor& visitor,
                       std::vector<ManifestProblem>& problems) {
  FileParser parser(file, visitor, problems);
  bool isJson = file.size() > 5 && file.compare(file.size() - 5, 5, ".json") == 0;
  return isJson ? parser.parseJson() : parser.parseYaml();
}

// ------------------------------------------------------------------ ManifestSource

ManifestSource::Definition* ManifestSource::ObjectState::find(const std::string* file) {
  if (owner.file == file) {
    return &owner;
  }
  for (Definition& d : others) {
    if (d.file == file) {
      return &d;
    }
  }
  return nullptr;
}

void ManifestSource::ObjectState::add(const Definition& d) {
  if (!owner.file) {
    owner = d;
    return;
  }
  if (*d.file < *owner.file) {
    others.insert(others.begin(), owner);
    owner = d;
    return;
  }
  auto pos = std::find_if(others.begin(), others.end(), [&](const Definition& o) { return *o.file > *d.file; });
  others.insert(pos, d);
}

void ManifestSource::ObjectState::remove(const std::string* file) {
  if (owner.file == file) {
    if (others.empty()) {
      owner = Definition{nullptr, false, 0};
    } else {
      owner = others.front();
      others.erase(others.begin());
    }
    return;
  }
  std::erase_if(others, [&](const Definition& d) { return d.file == file; });
}

// Records what one file defines and delivers the changes it makes. With `only` set, it
// delivers just those objects (a file parsed again because it now owns them).
class ManifestSource::Loader : public ManifestVisitor {
 public:
  Loader(ManifestSource& src, const std::string* file, std::vector<ManifestProblem>& problems,
         const std::vector<std::string>* only = nullptr)
      : src_(src), file_(file), problems_(problems), only_(only) {}

  void service(const Service& s, size_t fp) override {
    if (define(manifestObjectKey("Service", s.metadata.key()), true, fp)) {
      src_.handler_.onServiceUpsert(s);
    }
  }
  void endpointSlice(const EndpointSlice& s, size_t fp) override {
    if (define(manifestObjectKey("EndpointSlice", s.metadata.key()), true, fp)) {
      src_.handler_.onEndpointSliceUpsert(s);
    }
  }
  void node(const Node& n, size_t fp) override {
    if (define(manifestObjectKey("Node", n.metadata.key()), true, fp)) {
      src_.handler_.onNodeUpsert(n);
    }
  }
  bool policyKinds() const override { return src_.policyKinds_; }
  void pod(const Pod& p, size_t fp) override {
    if (define(manifestObjectKey("Pod", p.metadata.key()), true, fp)) {
      src_.handler_.onPodUpsert(p);
    }
  }
  void namespace_(const Namespace& n, size_t fp) override {
    if (define(manifestObjectKey("Namespace", n.metadata.key()), true, fp)) {
      src_.handler_.onNamespaceUpsert(n);
    }
  }
  void networkPolicy(const NetworkPolicy& p, size_t fp) override {
    if (define(manifestObjectKey("NetworkPolicy", p.metadata.key()), true, fp)) {
      src_.handler_.onNetworkPolicyUpsert(p);
    }
  }
  void invalid(const std::string& key) override { define(key, false, 0); }

  const std::vector<const std::string*>& keys() const { return keys_; }

 private:
  // Records this file's copy; true when it is the one to deliver.
  bool define(const std::string& key, bool valid, size_t fp) {
    if (only_) {
      if (!valid || std::find(only_->begin(), only_->end(), key) == only_->end()) {
        return false;
      }
      auto it = src_.objects_.find(key);
      if (it == src_.objects_.end() || it->second.owner.file != file_) {
        return false;
      }
      it->second.delivered = fp;
      it->second.active = true;
      return true;
    }
    auto [it, inserted] = src_.objects_.try_emplace(key);
    ObjectState& obj = it->second;
    keys_.push_back(&it->first);
    Definition* def = obj.find(file_);
    if (!def) {
      obj.add(Definition{file_, valid, fp});
    } else if (valid) {
      *def = Definition{file_, true, fp};
    } else {
      def->valid = false;  // keeps the last good fingerprint: nothing changes downstream
    }
    if (obj.owner.file != file_) {
      if (valid) {
        problems_.push_back({*file_, 0, 0, key, "metadata.name",
                             "duplicate: defined in another file too; this copy is ignored"});
      }
      return false;
    }
    if (!valid || (obj.active && obj.delivered == fp)) {
      return false;  // invalid: the last good version stays; same fingerprint: no change
    }
    obj.delivered = fp;
    obj.active = true;
    return true;
  }

  ManifestSource& src_;
  const std::string* file_;
  std::vector<ManifestProblem>& problems_;
  const std::vector<std::string>* only_;
  std::vector<const std::string*> keys_;
};

ManifestSource::ManifestSource(boost::asio::io_context& io, std::string path,
                               ServiceEventHandler& handler, ProblemSink problems,
                               std::chrono::milliseconds pollInterval)
    : timer_(io), path_(std::move(path)), handler_(handler), problems_(std::move(problems)),
      interval_(pollInterval) {}

std::string ManifestSource::stamp(const std::string& f) const {
  struct stat st {};
  if (::stat(f.c_str(), &st) != 0) {
    return "gone";
  }
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

void ManifestSource::deliverDelete(const std::string& key) {
  std::string nsName = key.substr(key.find(' ') + 1);
  auto slash = nsName.find('/');
  ObjectMeta meta;
  meta.namespace_ = nsName.substr(0, slash);
  meta.name = nsName.substr(slash + 1);
  if (key.starts_with("Service ")) {
    Service s;
    s.metadata = std::move(meta);
    handler_.onServiceDelete(s);
  } else if (key.starts_with("Node ")) {
    Node n;
    n.metadata = std::move(meta);
    handler_.onNodeDelete(n);
  } else if (key.starts_with("Pod ")) {
    Pod p;
    p.metadata = std::move(meta);
    handler_.onPodDelete(p);
  } else if (key.starts_with("Namespace ")) {
    Namespace n;
    n.metadata = std::move(meta);
    handler_.onNamespaceDelete(n);
  } else if (key.starts_with("NetworkPolicy ")) {
    NetworkPolicy p;
    p.metadata = std::move(meta);
    handler_.onNetworkPolicyDelete(p);
  } else {
    EndpointSlice s;
    s.metadata = std::move(meta);
    handler_.onEndpointSliceDelete(s);
  }
}

void ManifestSource::resolve(const std::string& key,
                             std::map<const std::string*, std::vector<std::string>>& reparse) {
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    return;
  }
  ObjectState& obj = it->second;
  if (obj.undefined()) {
    bool active = obj.active;
    objects_.erase(it);
    if (active) {
      deliverDelete(key);
    }
    return;
  }
  const Definition& owner = obj.owner;
  if (owner.valid && (!obj.active || obj.delivered != owner.fingerprint)) {
    reparse[owner.file].push_back(key);  // its content is in that file only
  }
}

void ManifestSource::parseFile(const std::string* file, std::vector<ManifestProblem>& problems) {
  FileState& fs = files_.at(*file);
  Loader loader(*this, file, problems);
  bool ok = parseManifestFile(*file, loader, problems);
  ++filesParsed_;
  std::unordered_set<const std::string*> now(loader.keys().begin(), loader.keys().end());
  std::vector<const std::string*> keys = loader.keys();
  std::vector<std::string> dropped;
  for (const std::string* k : fs.keys) {
    if (now.count(k)) {
      continue;
    }
    if (!ok) {
      // A document we could not parse may hold any of the file's earlier objects (an edit
      // in progress): keep those.
      keys.push_back(k);
    } else {
      dropped.push_back(*k);
    }
  }
  keys.shrink_to_fit();
  fs.keys = std::move(keys);
  std::map<const std::string*, std::vector<std::string>> reparse;
  for (const std::string& k : dropped) {
    objects_.at(k).remove(file);
    resolve(k, reparse);
  }
  for (auto& [other, keysOf] : reparse) {
    Loader again(*this, other, problems, &keysOf);
    parseManifestFile(*other, again, problems);
    ++filesParsed_;
  }
}

// Re-parses only the files whose stamp changed (parsing dominates: yaml-cpp reads a few
// MB/s) and delivers the difference.
bool ManifestSource::reload(const std::vector<std::string>& files) {
  std::vector<ManifestProblem> problems;
  std::vector<const std::string*> changed;
  std::unordered_set<std::string> present(files.begin(), files.end());
  // Files gone: their objects go, or pass to another file that defines them too.
  std::vector<std::string> gone;
  for (const auto& [f, st] : files_) {
    if (!present.count(f)) {
      gone.push_back(f);
    }
  }
  std::map<const std::string*, std::vector<std::string>> reparse;
  for (const std::string& f : gone) {
    auto node = files_.find(f);
    std::vector<std::string> keys;
    for (const std::string* k : node->second.keys) {
      keys.push_back(*k);
    }
    for (const std::string& k : keys) {
      objects_.at(k).remove(&node->first);
    }
    files_.erase(node);
    for (const std::string& k : keys) {
      resolve(k, reparse);
    }
  }
  for (const std::string& f : files) {
    std::string st = stamp(f);
    auto [it, inserted] = files_.try_emplace(f);
    if (inserted || it->second.stamp != st) {
      it->second.stamp = st;
      changed.push_back(&it->first);
    }
  }
  if (gone.empty() && changed.empty()) {
    return false;
  }
  for (const std::string* f : changed) {
    reparse.erase(f);  // parsed in full below
    parseFile(f, problems);
  }
  for (auto& [file, keys] : reparse) {
    Loader again(*this, file, problems, &keys);
    parseManifestFile(*file, again, problems);
    ++filesParsed_;
  }
  for (const ManifestProblem& p : problems) {
    problems_(p);
  }
  ++reloads_;
  return true;
}

void ManifestSource::start() {
  poll();
  arm();
}

void ManifestSource::poll() {
  std::string error;
  std::vector<std::string> files = manifestFiles(path_, error);
  if (!error.empty() && !synced_) {
    // No picture at all yet: never report an empty cluster as synced (a restarted daemon
    // would then delete every adopted service). Wait for the path, and say so once.
    if (lastError_ != error) {
      problems_({path_, 0, 0, "", "", error + "; waiting for it before programming anything"});
      lastError_ = error;
    }
    return;
  }
  if (!synced_) {
    lastError_.clear();
    reload(files);
    // Parsing leaves the heap full of freed buffers (documents, items, decoded objects):
    // give those pages back before the first sync builds the syncer's tables.
    malloc_trim(0);
    synced_ = true;
    handler_.onSynced();
    return;
  }
  if (!error.empty()) {
    // The path vanished (a ConfigMap remount, an editor): keep what we have rather than
    // removing every service; say so once per change.
    if (lastError_ != error) {
      problems_({path_, 0, 0, "", "", error + "; keeping the last good manifests"});
      lastError_ = error;
    }
    return;
  }
  lastError_.clear();
  reload(files);
}

void ManifestSource::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    poll();
    arm();
  });
}

}  // namespace switchyard::k8s
