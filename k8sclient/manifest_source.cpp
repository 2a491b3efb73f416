#include "k8sclient/manifest_source.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

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
  std::istringstream in(content);
  std::string line;
  int lineNo = 0;
  while (std::getline(in, line)) {
    bool marker = line.rfind("---", 0) == 0 &&
                  (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    if (marker) {
      docs.push_back({line.substr(3) + "\n", lineNo});
    } else if (line == "..." || line == "...\r") {
      docs.push_back({"", lineNo + 1});
    } else {
      docs.back().text += line + "\n";
    }
    ++lineNo;
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

class FileLoader {
 public:
  FileLoader(const std::string& file, ManifestSet& out, const ManifestSet& previous,
             std::vector<ManifestProblem>& problems)
      : file_(file), out_(out), previous_(previous), problems_(problems) {}

  // `kubectl get -o json` output: one object or a List. JSON carries no positions for its
  // values, so problems name line 1 and the field path.
  bool loadJson(const std::string& content) {
    rapidjson::Document json;
    json.Parse(content.c_str(), content.size());
    if (json.HasParseError()) {
      int line = 1 + static_cast<int>(std::count(content.begin(),
                                                 content.begin() + static_cast<long>(json.GetErrorOffset()), '\n'));
      problems_.push_back({file_, 1, line, "", "",
                           std::string("invalid JSON: ") + rapidjson::GetParseError_En(json.GetParseError())});
      return false;
    }
    RawDocument raw{"", 1};
    YAML::Node none;
    if (kindOf(json).ends_with("List")) {
      auto items = json.FindMember("items");
      if (items == json.MemberEnd() || !items->value.IsArray()) {
        problem(1, raw, none, "", "items", "a List must have an items list");
        return true;
      }
      for (rapidjson::SizeType i = 0; i < items->value.Size(); ++i) {
        object(items->value[i], 1, raw, none, "items[" + std::to_string(i) + "].");
      }
      return true;
    }
    object(json, 1, raw, none, "");
    return true;
  }

  // Returns false on a YAML syntax error (the caller keeps the file's previous objects).
  bool load(const std::string& content) {
    bool syntaxOk = true;
    size_t docIndex = 0;
    for (const RawDocument& raw : splitDocuments(content)) {
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
      if (kindOf(json) == "List" || kindOf(json).ends_with("List")) {
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

  template <typename T, typename Decode>
  void decodeInto(const rapidjson::Value& obj, const char* kind, size_t docIndex,
                  const RawDocument& raw, const YAML::Node& ydoc, const std::string& prefix,
                  std::map<std::string, T>& dest, const std::map<std::string, T>& prev,
                  Decode decode) {
    std::vector<FieldError> errors;
    T value;
    std::string ref = std::string(kind) + " " + objectRef(obj);
    std::string fpKey = std::string(kind) + " " + objectRef(obj);
    if (!decode(obj, value, errors)) {
      for (const FieldError& e : errors) {
        problems_.push_back({file_, docIndex, raw.firstLine + yamlLineOf(ydoc, e.field), ref,
                             prefix + e.field, e.reason});
      }
      // Keep the last good version of this object, if there was one.
      std::string key = objectRef(obj);
      auto p = prev.find(key);
      if (p != prev.end() && previous_.fingerprint.count(fpKey)) {
        dest[key] = p->second;
        out_.fingerprint[fpKey] = previous_.fingerprint.at(fpKey);
        out_.objectsByFile[file_].push_back(fpKey);
      }
      return;
    }
    std::string key = value.metadata.key();
    if (dest.count(key)) {
      problems_.push_back({file_, docIndex, raw.firstLine + yamlLineOf(ydoc, "metadata.name"),
                           ref, prefix + "metadata.name",
                           "duplicate: the same object appears earlier; this copy is ignored"});
      return;
    }
    dest[key] = std::move(value);
    out_.fingerprint[fpKey] = fingerprintOf(obj);
    out_.objectsByFile[file_].push_back(fpKey);
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
      decodeInto(obj, "Service", docIndex, raw, ydoc, prefix, out_.services, previous_.services,
                 decodeService);
    } else if (kind == "EndpointSlice") {
      decodeInto(obj, "EndpointSlice", docIndex, raw, ydoc, prefix, out_.slices,
                 previous_.slices, decodeEndpointSlice);
    }
    // Other kinds (Deployments, Pods, ...) may share the files; they are not ours.
  }

  const std::string& file_;
  ManifestSet& out_;
  const ManifestSet& previous_;
  std::vector<ManifestProblem>& problems_;
};

// Copies every object `previous` had from `file` into `out`.
void keepPrevious(const std::string& file, const ManifestSet& previous, ManifestSet& out) {
  auto objs = previous.objectsByFile.find(file);
  if (objs == previous.objectsByFile.end()) {
    return;
  }
  for (const std::string& fpKey : objs->second) {
    out.fingerprint[fpKey] = previous.fingerprint.at(fpKey);
    out.objectsByFile[file].push_back(fpKey);
    std::string key = fpKey.substr(fpKey.find(' ') + 1);
    if (fpKey.rfind("Service ", 0) == 0) {
      out.services[key] = previous.services.at(key);
    } else {
      out.slices[key] = previous.slices.at(key);
    }
  }
}

// Adds the objects of one kind from `from` to `to` unless `to` already has them; a clash
// is reported through onDuplicate (or silently skipped when it is empty), and the added
// objects are recorded as `file`'s when a file is named.
template <typename T>
void mergeKind(const std::string& kindPrefix, const std::map<std::string, T>& fromObjects,
               const ManifestSet& from, std::map<std::string, T>& toObjects, ManifestSet& to,
               const std::function<void(const std::string&)>& onDuplicate,
               const std::string& file = "") {
  for (const auto& [k, v] : fromObjects) {
    std::string fpKey = kindPrefix + k;
    if (!toObjects.emplace(k, v).second) {
      if (onDuplicate) {
        onDuplicate(fpKey);
      }
      continue;
    }
    to.fingerprint[fpKey] = from.fingerprint.at(fpKey);
    if (!file.empty()) {
      to.objectsByFile[file].push_back(fpKey);
    }
  }
}

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

ManifestSet loadManifestFile(const std::string& file, const ManifestSet& previous,
                             std::vector<ManifestProblem>& problems) {
  ManifestSet fileSet;
  std::ifstream in(file);
  if (!in) {
    problems.push_back({file, 0, 0, "", "", "cannot be read"});
    keepPrevious(file, previous, fileSet);
    return fileSet;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  FileLoader loader(file, fileSet, previous, problems);
  bool isJson = file.size() > 5 && file.compare(file.size() - 5, 5, ".json") == 0;
  if (!(isJson ? loader.loadJson(ss.str()) : loader.load(ss.str()))) {
    // A document we could not parse may hold any of the file's earlier objects (an edit
    // in progress): keep those, and apply the documents that did parse.
    ManifestSet kept;
    keepPrevious(file, previous, kept);
    mergeKind("Service ", kept.services, kept, fileSet.services, fileSet, {}, file);
    mergeKind("EndpointSlice ", kept.slices, kept, fileSet.slices, fileSet, {}, file);
  }
  return fileSet;
}

void mergeManifestFile(const std::string& file, const ManifestSet& fileSet, ManifestSet& out,
                       std::vector<ManifestProblem>& problems) {
  std::function<void(const std::string&)> duplicate = [&](const std::string& fpKey) {
    problems.push_back({file, 0, 0, fpKey, "metadata.name",
                        "duplicate: defined in another file too; this copy is ignored"});
  };
  mergeKind("Service ", fileSet.services, fileSet, out.services, out, duplicate, file);
  mergeKind("EndpointSlice ", fileSet.slices, fileSet, out.slices, out, duplicate, file);
}

ManifestSet loadManifests(const std::vector<std::string>& files, const ManifestSet& previous,
                          std::vector<ManifestProblem>& problems) {
  ManifestSet out;
  for (const std::string& file : files) {
    mergeManifestFile(file, loadManifestFile(file, previous, problems), out, problems);
  }
  return out;
}

void diffManifests(const ManifestSet& before, const ManifestSet& after,
                   ServiceEventHandler& handler) {
  auto changed = [&](const std::string& fpKey) {
    auto b = before.fingerprint.find(fpKey);
    auto a = after.fingerprint.find(fpKey);
    return b == before.fingerprint.end() || a == after.fingerprint.end() || b->second != a->second;
  };
  for (const auto& [k, v] : after.services) {
    if (changed("Service " + k)) {
      handler.onServiceUpsert(v);
    }
  }
  for (const auto& [k, v] : after.slices) {
    if (changed("EndpointSlice " + k)) {
      handler.onEndpointSliceUpsert(v);
    }
  }
  for (const auto& [k, v] : before.slices) {
    if (!after.slices.count(k)) {
      handler.onEndpointSliceDelete(v);
    }
  }
  for (const auto& [k, v] : before.services) {
    if (!after.services.count(k)) {
      handler.onServiceDelete(v);
    }
  }
}

ManifestSource::ManifestSource(boost::asio::io_context& io, std::string path,
                               ServiceEventHandler& handler, ProblemSink problems,
                               std::chrono::milliseconds pollInterval)
    : timer_(io), path_(std::move(path)), handler_(handler), problems_(std::move(problems)),
      interval_(pollInterval) {}

std::string ManifestSource::stamp(const std::vector<std::string>& files) const {
  std::string s;
  for (const std::string& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) == 0) {
      s += f + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
    } else {
      s += f + ":gone;";
    }
  }
  return s;
}

// Re-parses only the files whose stamp changed (parsing dominates: yaml-cpp reads a few MB/s),
// then merges every file's objects and delivers the difference.
bool ManifestSource::reload(const std::vector<std::string>& files) {
  std::vector<ManifestProblem> problems;
  std::map<std::string, CachedFile> cache;
  bool changed = files.size() != cache_.size();
  for (const std::string& f : files) {
    std::string st = stamp({f});
    auto it = cache_.find(f);
    if (it != cache_.end() && it->second.stamp == st) {
      cache.emplace(f, std::move(it->second));
      continue;
    }
    cache.emplace(f, CachedFile{st, loadManifestFile(f, current_, problems)});
    ++filesParsed_;
    changed = true;
  }
  cache_ = std::move(cache);
  if (!changed) {
    return false;
  }
  ManifestSet next;
  for (const auto& [f, cached] : cache_) {
    mergeManifestFile(f, cached.set, next, problems);
  }
  for (const ManifestProblem& p : problems) {
    problems_(p);
  }
  diffManifests(current_, next, handler_);
  current_ = std::move(next);
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
