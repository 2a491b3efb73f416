// switchyard_datapath_{packets,bytes}_total{reason}: the per-CPU counters map, summed over
// CPUs at scrape time. Reads a map fd only; the datapath never calls into metrics.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace switchyard::metrics {

// Label value of each sy_reason (bpf/abi.h), indexed by reason.
const std::vector<std::string>& reasonNames();

class DatapathCounters : public prometheus::Collectable {
 public:
  explicit DatapathCounters(int countersFd) : fd_(countersFd) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

  struct Totals {
    std::vector<uint64_t> packets, bytes;  // by reason
  };
  // Sums one snapshot of the map; false if the map cannot be read.
  static bool read(int fd, Totals& out);

 private:
  int fd_;
};

}  // namespace switchyard::metrics
