// source: files — Services and EndpointSlices from manifest files, multi-document YAML
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

struct ManifestSet {
  std::map<std::string, Service> services;       // ns/name
  std::map<std::string, EndpointSlice> slices;   // ns/name
  // "Service ns/name" -> hash of its canonical JSON: change detection without keeping a
  // second copy of every object's text.
  std::map<std::string, size_t> fingerprint;
  std::map<std::string, std::vector<std::string>> objectsByFile;  // file -> fingerprint keys
};

// The manifest files a path names: the file itself, or the *.yaml/*.yml files of a
// directory (not recursive), sorted. Fills error when the path cannot be read.
std::vector<std::string> manifestFiles(const std::string& path, std::string& error);

// Parses every file. An invalid document is reported and skipped; if its object existed in
// `previous`, the previous version is kept (a bad edit never removes a working service).
// A file with a YAML syntax error keeps all of its previous objects.
ManifestSet loadManifests(const std::vector<std::string>& files, const ManifestSet& previous,
                          std::vector<ManifestProblem>& problems);

// One file: its objects, keeping last good versions from `previous` as loadManifests does.
ManifestSet loadManifestFile(const std::string& file, const ManifestSet& previous,
                             std::vector<ManifestProblem>& problems);
// Adds one file's objects to `out`; objects `out` already has are reported as duplicates.
void mergeManifestFile(const std::string& file, const ManifestSet& fileSet, ManifestSet& out,
                       std::vector<ManifestProblem>& problems);

// Delivers the difference between two sets as events.
void diffManifests(const ManifestSet& before, const ManifestSet& after,
                   ServiceEventHandler& handler);

class ManifestSource {
 public:
  using ProblemSink = std::function<void(const ManifestProblem&)>;

  ManifestSource(boost::asio::io_context& io, std::string path, ServiceEventHandler& handler,
                 ProblemSink problems,
                 std::chrono::milliseconds pollInterval = std::chrono::milliseconds(500));

  // Loads everything, delivers it, then signals synced; afterwards polls for changes. A
  // path that does not exist yet is waited for: nothing is synced from nothing.
  void start();
  // Re-reads now if any file changed (also called by the poll timer).
  void poll();
  size_t reloads() const { return reloads_; }
  size_t filesParsed() const { return filesParsed_; }

 private:
  struct CachedFile {
    std::string stamp;  // inode, size and mtime when parsed
    ManifestSet set;    // what the file held then
  };

  std::string stamp(const std::vector<std::string>& files) const;
  // Re-parses the files that changed; false when none did.
  bool reload(const std::vector<std::string>& files);
  void arm();

  boost::asio::steady_timer timer_;
  std::string path_;
  ServiceEventHandler& handler_;
  ProblemSink problems_;
  std::chrono::milliseconds interval_;
  ManifestSet current_;
  std::map<std::string, CachedFile> cache_;  // file -> its last parse
  std::string lastError_;                    // reported once until it changes
  size_t reloads_ = 0;
  size_t filesParsed_ = 0;
  bool synced_ = false;
};

}  // namespace switchyard::k8s
