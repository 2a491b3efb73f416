// The conntrack GC's figures and the fill of the BPF maps, at scrape time, from a snapshot
// the daemon hands over (bpf::CtGcRunner::stats(), taken on its own thread): reading it is a
// copy under a lock, never a walk of a map.
//   switchyard_conntrack_entries{map}              gauge: entries the last GC pass kept
//   switchyard_conntrack_gc_runs_total             counter: completed GC passes
//   switchyard_conntrack_gc_removed_total{map,reason}  counter: entries removed
//   switchyard_conntrack_gc_errors_total           counter: passes that could not read the map
//   switchyard_conntrack_gc_duration_seconds       gauge: the last pass's wall time
//   switchyard_conntrack_gc_interval_seconds       gauge: the wait before the next pass
//   switchyard_bpf_map_entries{map}, switchyard_bpf_map_max_entries{map},
//   switchyard_bpf_map_pressure{map}               gauges: used, size, used/size
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace switchyard::metrics {

struct ConntrackSnapshot {
  struct Map {
    std::string name;  // the pin name without its _vN suffix: stable across layout changes
    uint64_t entries = 0;
    uint64_t maxEntries = 0;
  };
  std::string ctName = "ct";
  uint64_t ctEntries = 0;
  uint64_t passes = 0;
  uint64_t errors = 0;
  uint64_t removedExpired = 0, removedClosed = 0, removedOrphan = 0;
  double lastPassSeconds = 0;
  double intervalSeconds = 0;
  std::vector<Map> maps;  // ct included
};

class ConntrackMetrics : public prometheus::Collectable {
 public:
  explicit ConntrackMetrics(std::function<ConntrackSnapshot()> source) : source_(std::move(source)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<ConntrackSnapshot()> source_;
};

// "ct_v3" -> "ct", "sock_rnat_v1" -> "sock_rnat": the map label of the metrics above.
std::string mapLabel(const std::string& pinName);

}  // namespace switchyard::metrics
