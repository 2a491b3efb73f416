// source: files — Services, EndpointSlices and Nodes from manifest files, multi-document YAML
// exactly as `kubectl get -o yaml` prints them (single objects or kind: List), from one
// file or a directory of *.yaml / *.yml (and *.json: `kubectl get -o json`). Re-read when a file changes; each change is
// delivered as the add/update/delete events an API server watch would give.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "k8sclient/events.h"
#include "k8sclient/objects.h"

namespace switchyard::k8s {

// One invalid document: where it is and what is wrong.
struct ManifestProblem {
  std::string file;
  size_t document = 0;  // 1-based index of the YAML document in the file
  int line = 0;         // 1-based line of the offending field (or of the document)
  std::string object;   // "Service default/web", or "" when unknown
  std::string field;    // JSON path, "" for YAML syntax errors
  std::string reason;
  // "FILE:LINE: document N: Service default/web: spec.ports[0].port: reason"
  std::string str() const;
};

// Receives what one manifest file holds, in file order.
class ManifestVisitor {
 public:
  virtual ~ManifestVisitor() = default;
  // A valid object, and a fingerprint of its content (a hash of its canonical JSON):
  // change detection without keeping a copy of every object.
  virtual void service(const Service& s, size_t fingerprint) = 0;
  virtual void endpointSlice(const EndpointSlice& s, size_t fingerprint) = 0;
  virtual void node(const Node& n, size_t fingerprint) { (void)n, (void)fingerprint; }
  // Pods, Namespaces and NetworkPolicies are read only when the visitor asks for them: with
  // policy off they are other people's objects, and a Pod switchyard cannot read is no problem.
  virtual bool policyKinds() const { return false; }
  virtual void pod(const Pod& p, size_t fingerprint) { (void)p, (void)fingerprint; }
  virtual void namespace_(const Namespace& n, size_t fingerprint) { (void)n, (void)fingerprint; }
  virtual void networkPolicy(const NetworkPolicy& p, size_t fingerprint) { (void)p, (void)fingerprint; }
  // An object whose document is invalid (already reported): "Service ns/name".
  virtual void invalid(const std::string& objectKey) { (void)objectKey; }
};

// "Service ns/name", "EndpointSlice ns/name", "Node ns/name": one key space for all kinds
// (a Node has no namespace; manifests give it "default" like any object without one).
std::string manifestObjectKey(const char* kind, const std::string& nsName);

// The manifest files a path names: the file itself, or the *.yaml/*.yml/*.json files of a
// directory (not recursive), sorted. Fills error when the path cannot be read.
std::vector<std::string> manifestFiles(const std::string& path, std::string& error);

// Parses one file: YAML (one or more documents, each an object or a List) or JSON
// (`kubectl get -o json`: an object or a List, whose items are read one at a time, so a
// large list is never held whole). Invalid documents are reported, with file, document,
// line and field, and skipped; an object appearing twice in the file is reported and
// its later copy ignored. Returns false when the file cannot be read or has a syntax
// error (the documents before the error, or the parsable ones, were still visited).
bool parseManifestFile(const std::string& file, ManifestVisitor& visitor,
                       std::vector<ManifestProblem>& problems);

class ManifestSource {
 public:
  using ProblemSink = std::function<void(const ManifestProblem&)>;

  ManifestSource(boost::asio::io_context& io, std::string path, ServiceEventHandler& handler,
                 ProblemSink problems,
                 std::chrono::milliseconds pollInterval = std::chrono::milliseconds(500));

  // Loads everything, delivers it, then signals synced; afterwards polls for changes. A
  // path that does not exist yet is waited for: nothing is synced from nothing.
  void start();
  // Also deliver Pods, Namespaces and NetworkPolicies (policy.enabled); call before start().
  void setPolicyKinds(bool on) { policyKinds_ = on; }
  // Re-reads now if any file changed (also called by the poll timer).
  void poll();
  size_t reloads() const { return reloads_; }
  size_t filesParsed() const { return filesParsed_; }

 private:
  // One file's copy of an object. The first file (in name order) that defines an object
  // owns it; the other copies are reported as duplicates and ignored.
  struct Definition {
    const std::string* file;  // key of files_
    bool valid;               // false: its document is invalid (the last good version stays)
    size_t fingerprint;
  };
  struct ObjectState {
    // The owning file's copy, then the others in file order. Most objects live in one
    // file: the owner is kept inline, with no allocation.
    Definition owner{nullptr, false, 0};  // owner.file == nullptr: no file defines it
    std::vector<Definition> others;
    size_t delivered = 0;  // fingerprint of the version the handler has
    bool active = false;   // the handler has it (delivered, not deleted since)

    bool undefined() const { return owner.file == nullptr; }
    Definition* find(const std::string* file);
    void add(const Definition& d);  // keeps file order
    void remove(const std::string* file);
  };
  struct FileState {
    std::string stamp;                      // inode, size and mtime when parsed
    std::vector<const std::string*> keys;   // objects it defines (keys of objects_)
  };
  class Loader;

  std::string stamp(const std::string& file) const;
  // Re-parses the files that changed; false when none did.
  bool reload(const std::vector<std::string>& files);
  // Parses `file`, records what it defines and delivers what it changes.
  void parseFile(const std::string* file, std::vector<ManifestProblem>& problems);
  // Delivers what `key` now is after a file stopped defining it (or names the file that
  // must be parsed again to deliver it).
  void resolve(const std::string& key, std::map<const std::string*, std::vector<std::string>>& reparse);
  void deliverDelete(const std::string& key);
  void arm();

  boost::asio::steady_timer timer_;
  std::string path_;
  ServiceEventHandler& handler_;
  ProblemSink problems_;
  std::chrono::milliseconds interval_;
  std::map<std::string, FileState> files_;                  // by file name (sorted)
  std::unordered_map<std::string, ObjectState> objects_;    // by manifestObjectKey
  std::string lastError_;                                   // reported once until it changes
  size_t reloads_ = 0;
  size_t filesParsed_ = 0;
  bool synced_ = false;
  bool policyKinds_ = false;
};

}  // namespace switchyard::k8s
