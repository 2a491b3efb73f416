// Metrics of the API server client, registered on the registry the daemon exposes.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace switchyard::k8s::apiserver {

class ClientMetrics {
 public:
  explicit ClientMetrics(prometheus::Registry& registry);

  // A watch that streamed ended (server timeout, disconnect) and the reflector decided to
  // watch again: once per decision, however many attempts the new WATCH takes.
  void countWatchRestart(const std::string& kind);
  // The reflector decided to list again after its first list (410 Gone, an ERROR event):
  // once per decision, however many attempts the LIST takes. The store is rebuilt by diffing.
  void countRelist(const std::string& kind);
  // A watch event by type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).
  void countEvent(const std::string& kind, const std::string& type);
  // Something the server sent could not be decoded: a malformed object or event (skipped),
  // a watch stream the framer refused (the watch restarts), a list over its bound.
  void countDecodeError(const std::string& kind);
  // The store of this kind matches the server as of now (a list completed, or an event).
  void setLastSync(const std::string& kind, double unixSeconds);
  // verb: LIST | WATCH | GET; code: the HTTP status, or "<error>" when there was none.
  void observeRequest(const std::string& verb, const std::string& code, double seconds);

  // Read back (tests, status output).
  double watchRestarts(const std::string& kind) const;
  double relists(const std::string& kind) const;
  double events(const std::string& kind, const std::string& type) const;
  double decodeErrors(const std::string& kind) const;
  double lastSync(const std::string& kind) const;
  uint64_t requests(const std::string& verb, const std::string& code) const;

 private:
  prometheus::Family<prometheus::Counter>& watchRestarts_;
  prometheus::Family<prometheus::Counter>& relists_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Counter>& decodeErrors_;
  prometheus::Family<prometheus::Gauge>& lastSync_;
  prometheus::Family<prometheus::Histogram>& requestDuration_;
};

}  // namespace switchyard::k8s::apiserver
