#include "metrics/conntrack_metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace switchyard::metrics {
namespace {

const prometheus::MetricFamily* family(const std::vector<prometheus::MetricFamily>& fs, const std::string& name) {
  for (const auto& f : fs) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

double valueOf(const prometheus::MetricFamily& f, const std::string& map) {
  for (const auto& m : f.metric) {
    for (const auto& l : m.label) {
      if (l.name == "map" && l.value == map) {
        return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
  }
  return -1;
}

TEST(ConntrackMetrics, MapLabelsDropTheLayoutSuffix) {
  EXPECT_EQ(mapLabel("ct_v3"), "ct");
  EXPECT_EQ(mapLabel("sock_rnat_v1"), "sock_rnat");
  EXPECT_EQ(mapLabel("ct_vnext"), "ct");
  EXPECT_EQ(mapLabel("services"), "services");
  EXPECT_EQ(mapLabel("tc_attach_v1"), "tc_attach");
}

TEST(ConntrackMetrics, PressureIsUsedOverMax) {
  ConntrackSnapshot s;
  s.ctEntries = 50;
  s.passes = 3;
  s.removedExpired = 7;
  s.removedClosed = 2;
  s.maps = {{"ct", 50, 200}, {"services", 10, 10}, {"srcrange", 0, 0}};
  ConntrackMetrics c([&] { return s; });
  auto fs = c.Collect();
  ASSERT_NE(family(fs, "switchyard_bpf_map_pressure"), nullptr);
  EXPECT_DOUBLE_EQ(valueOf(*family(fs, "switchyard_bpf_map_pressure"), "ct"), 0.25);
  EXPECT_DOUBLE_EQ(valueOf(*family(fs, "switchyard_bpf_map_pressure"), "services"), 1.0);
  EXPECT_DOUBLE_EQ(valueOf(*family(fs, "switchyard_bpf_map_pressure"), "srcrange"), 0.0);
  EXPECT_DOUBLE_EQ(valueOf(*family(fs, "switchyard_bpf_map_max_entries"), "ct"), 200);
  EXPECT_DOUBLE_EQ(valueOf(*family(fs, "switchyard_conntrack_entries"), "ct"), 50);
  const auto* removed = family(fs, "switchyard_conntrack_gc_removed_total");
  ASSERT_NE(removed, nullptr);
  double total = 0;
  for (const auto& m : removed->metric) total += m.counter.value;
  EXPECT_DOUBLE_EQ(total, 9);
  EXPECT_DOUBLE_EQ(family(fs, "switchyard_conntrack_gc_runs_total")->metric.at(0).counter.value, 3);
}

TEST(ConntrackMetrics, EveryMetricIsDocumented) {
  std::ifstream in(SY_DOCS "/operations.md");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  ConntrackMetrics c([] { return ConntrackSnapshot{}; });
  for (const auto& f : c.Collect()) {
    EXPECT_NE(text.str().find("| `" + f.name), std::string::npos) << "docs/operations.md has no row for " << f.name;
  }
}

}  // namespace
}  // namespace switchyard::metrics
