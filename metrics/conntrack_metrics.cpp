#include "metrics/conntrack_metrics.h"

#include <cctype>

namespace switchyard::metrics {
namespace {

prometheus::ClientMetric gauge(double v, std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  return m;
}

prometheus::ClientMetric counter(double v, std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = v;
  return m;
}

}  // namespace

std::string mapLabel(const std::string& pinName) {
  auto pos = pinName.rfind("_v");
  if (pos == std::string::npos || pos + 2 >= pinName.size()) {
    return pinName;
  }
  for (size_t i = pos + 2; i < pinName.size(); ++i) {
    if (!std::isalnum(static_cast<unsigned char>(pinName[i]))) {
      return pinName;
    }
  }
  return pinName.substr(0, pos);
}

std::vector<prometheus::MetricFamily> ConntrackMetrics::Collect() const {
  using prometheus::MetricType;
  ConntrackSnapshot s = source_();
  prometheus::MetricFamily entries{"switchyard_conntrack_entries",
                                   "Conntrack entries alive after the last GC pass, by map",
                                   MetricType::Gauge, {gauge(static_cast<double>(s.ctEntries), {{"map", s.ctName}})}};
  prometheus::MetricFamily runs{"switchyard_conntrack_gc_runs_total", "Completed conntrack GC passes",
                                MetricType::Counter, {counter(static_cast<double>(s.passes))}};
  prometheus::MetricFamily errors{"switchyard_conntrack_gc_errors_total",
                                  "Conntrack GC passes cut short because the map could not be read",
                                  MetricType::Counter, {counter(static_cast<double>(s.errors))}};
  prometheus::MetricFamily removed{
      "switchyard_conntrack_gc_removed_total",
      "Conntrack entries the GC removed, by map and reason (expired: idle past the lifetime; closed: a "
      "closed TCP flow past its short lifetime; orphan: an expired entry whose flow's other entry was gone)",
      MetricType::Counter,
      {counter(static_cast<double>(s.removedExpired), {{"map", s.ctName}, {"reason", "expired"}}),
       counter(static_cast<double>(s.removedClosed), {{"map", s.ctName}, {"reason", "closed"}}),
       counter(static_cast<double>(s.removedOrphan), {{"map", s.ctName}, {"reason", "orphan"}})}};
  prometheus::MetricFamily duration{"switchyard_conntrack_gc_duration_seconds",
                                    "Wall time of the last conntrack GC pass (its pauses between slices included)",
                                    MetricType::Gauge, {gauge(s.lastPassSeconds)}};
  prometheus::MetricFamily interval{"switchyard_conntrack_gc_interval_seconds",
                                    "The wait before the next conntrack GC pass (shorter under pressure)",
                                    MetricType::Gauge, {gauge(s.intervalSeconds)}};
  prometheus::MetricFamily used{"switchyard_bpf_map_entries", "Entries in a BPF map, by map",
                                MetricType::Gauge, {}};
  prometheus::MetricFamily size{"switchyard_bpf_map_max_entries", "Size of a BPF map (bpf.mapSizes), by map",
                                MetricType::Gauge, {}};
  prometheus::MetricFamily pressure{"switchyard_bpf_map_pressure",
                                    "Fill of a BPF map, entries / max entries (0 to 1), by map",
                                    MetricType::Gauge, {}};
  for (const auto& m : s.maps) {
    used.metric.push_back(gauge(static_cast<double>(m.entries), {{"map", m.name}}));
    size.metric.push_back(gauge(static_cast<double>(m.maxEntries), {{"map", m.name}}));
    pressure.metric.push_back(
        gauge(m.maxEntries ? static_cast<double>(m.entries) / static_cast<double>(m.maxEntries) : 0, {{"map", m.name}}));
  }
  return {entries, runs, errors, removed, duration, interval, used, size, pressure};
}

}  // namespace switchyard::metrics
