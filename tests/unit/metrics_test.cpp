// kube-proxy's metric shapes (bucket boundaries exactly as kube-proxy's, so dashboards and
// SLO queries on `le` keep working), series that exist from the start, and what a sync
// means for the metrics and /healthz (metrics/sync_recorder.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "metrics/datapath_counters.h"
#include "metrics/metrics.h"
#include "metrics/sync_recorder.h"

namespace switchyard::metrics {
namespace {

using ::testing::ElementsAreArray;
using Clock = HealthState::Clock;
using namespace std::chrono_literals;

const prometheus::MetricFamily* family(const std::vector<prometheus::MetricFamily>& all, const std::string& name) {
  for (const auto& f : all) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

// The `le` bounds a histogram exposes, without +Inf.
std::vector<double> exposedBounds(ProxyMetrics& m, const std::string& name) {
  auto all = m.registry()->Collect();
  const prometheus::MetricFamily* f = family(all, name);
  std::vector<double> out;
  if (f == nullptr || f->metric.empty()) {
    return out;
  }
  for (const auto& b : f->metric[0].histogram.bucket) {
    if (!std::isinf(b.upper_bound)) {
      out.push_back(b.upper_bound);
    }
  }
  return out;
}

double gauge(ProxyMetrics& m, const std::string& name) {
  auto all = m.registry()->Collect();
  const prometheus::MetricFamily* f = family(all, name);
  return f && !f->metric.empty() ? f->metric[0].gauge.value : -1;
}

uint64_t histogramCount(ProxyMetrics& m, const std::string& name) {
  auto all = m.registry()->Collect();
  const prometheus::MetricFamily* f = family(all, name);
  return f && !f->metric.empty() ? f->metric[0].histogram.sample_count : 0;
}

// Operators read what each reason means in docs/operations.md: every reason the datapath
// exports has its row there.
TEST(Metrics, EveryDatapathReasonIsDocumented) {
  std::ifstream in(SY_DOCS "/operations.md");
  ASSERT_TRUE(in) << SY_DOCS "/operations.md";
  std::stringstream text;
  text << in.rdbuf();
  for (const std::string& reason : reasonNames()) {
    EXPECT_NE(text.str().find("| `" + reason + "` |"), std::string::npos)
        << "docs/operations.md has no row for the datapath reason " << reason;
  }
}

TEST(Metrics, NetworkProgrammingBucketsAreKubeProxys) {
  // pkg/proxy/metrics/metrics.go: merge(LinearBuckets(0.25, 0.25, 2), LinearBuckets(1, 1, 59),
  // LinearBuckets(60, 5, 12), LinearBuckets(120, 30, 7)); merge() starts with one 0.
  std::vector<double> want = {0, 0.25, 0.5};
  for (int i = 0; i < 59; ++i) want.push_back(1 + i);
  for (int i = 0; i < 12; ++i) want.push_back(60 + 5 * i);
  for (int i = 0; i < 7; ++i) want.push_back(120 + 30 * i);
  ASSERT_EQ(want.size(), 81u);
  EXPECT_EQ(want.back(), 300);
  EXPECT_THAT(programmingDurationBuckets(), ElementsAreArray(want));
  ProxyMetrics m;
  EXPECT_THAT(exposedBounds(m, "kubeproxy_network_programming_duration_seconds"), ElementsAreArray(want));
}

TEST(Metrics, SyncDurationBucketsAreKubeProxys) {
  // ExponentialBuckets(0.001, 2, 15): 1 ms .. 16.384 s.
  std::vector<double> want;
  for (int i = 0; i < 15; ++i) want.push_back(0.001 * std::pow(2, i));
  ProxyMetrics m;
  for (const char* name : {"kubeproxy_sync_proxy_rules_duration_seconds",
                           "kubeproxy_sync_full_proxy_rules_duration_seconds",
                           "kubeproxy_sync_partial_proxy_rules_duration_seconds"}) {
    std::vector<double> got = exposedBounds(m, name);
    ASSERT_EQ(got.size(), want.size()) << name;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_DOUBLE_EQ(got[i], want[i]) << name << " bucket " << i;
    }
  }
}

TEST(Metrics, MapOperationErrorSeriesExistAtZeroFromTheStart) {
  ProxyMetrics m;
  auto all = m.registry()->Collect();
  const prometheus::MetricFamily* f = family(all, "switchyard_bpf_map_operation_errors_total");
  ASSERT_NE(f, nullptr);
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& metric : f->metric) {
    std::string map, op;
    for (const auto& l : metric.label) {
      (l.name == "map" ? map : op) = l.value;
    }
    EXPECT_EQ(metric.counter.value, 0) << map << "/" << op;
    seen.insert({map, op});
  }
  std::set<std::pair<std::string, std::string>> want;
  for (const char* map : {"services_v2", "backends_v2", "revnat_v1", "srcrange_v1", "maglev_v1"}) {
    for (const char* op : {"update", "delete"}) {
      want.insert({map, op});
    }
  }
  EXPECT_EQ(seen, want);
  // Counting one error moves its series only.
  m.countMapError("services_v2", "update");
  all = m.registry()->Collect();
  f = family(all, "switchyard_bpf_map_operation_errors_total");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->metric.size(), want.size());
}

// kube-proxy reports a healthCheckNodePort it cannot listen on as an event; switchyard
// counts it, from 0 so that increase() sees the first failure.
TEST(Metrics, ServiceHealthBindErrorsCountFromZero) {
  ProxyMetrics m;
  auto counter = [&m] {
    auto all = m.registry()->Collect();
    const prometheus::MetricFamily* f = family(all, "switchyard_service_health_bind_errors_total");
    return f && f->metric.size() == 1 ? f->metric[0].counter.value : -1;
  };
  EXPECT_EQ(counter(), 0);
  m.countServiceHealthBindError();
  m.countServiceHealthBindError();
  EXPECT_EQ(counter(), 2);
}

class SyncRecorderTest : public ::testing::Test {
 protected:
  Clock::time_point at(int secs) { return Clock::time_point(std::chrono::seconds(1'700'000'000 + secs)); }
  static SyncOutcome fullSync(size_t errors, std::vector<double> latencies = {}) {
    SyncOutcome o;
    o.full = true;
    o.seconds = 0.01;
    o.errors = errors;
    o.changeLatencies = std::move(latencies);
    return o;
  }

  ProxyMetrics metrics_;
  HealthState health_{60s};  // 2 x syncPeriod of 30 s
  SyncRecorder recorder_{metrics_, health_};
};

TEST_F(SyncRecorderTest, AFailedSyncIsNotTheLastSuccessfulOneAndProgramsNothing) {
  recorder_.synced(fullSync(0, {0.2}), at(0));
  EXPECT_DOUBLE_EQ(gauge(metrics_, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"), 1'700'000'000.0);
  EXPECT_EQ(histogramCount(metrics_, "kubeproxy_network_programming_duration_seconds"), 1u);

  recorder_.synced(fullSync(3, {0.5, 0.7}), at(10));
  // Its duration counts (kube-proxy observes every sync), nothing else does.
  EXPECT_EQ(histogramCount(metrics_, "kubeproxy_sync_proxy_rules_duration_seconds"), 2u);
  EXPECT_DOUBLE_EQ(gauge(metrics_, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"), 1'700'000'000.0);
  EXPECT_EQ(histogramCount(metrics_, "kubeproxy_network_programming_duration_seconds"), 1u);

  recorder_.synced(fullSync(0), at(20));
  EXPECT_DOUBLE_EQ(gauge(metrics_, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"), 1'700'000'020.0);
}

TEST_F(SyncRecorderTest, EventToProgrammedIsObservedForSuccessfulSyncsThatAppliedAChange) {
  SyncOutcome o = fullSync(0);
  o.full = false;
  o.eventLatency = 0.0007;
  recorder_.synced(o, at(0));
  EXPECT_EQ(histogramCount(metrics_, "switchyard_event_to_programmed_seconds"), 1u);
  o.errors = 1;  // the change did not reach the maps
  recorder_.synced(o, at(1));
  o.errors = 0;
  o.eventLatency = -1;  // nothing was applied
  recorder_.synced(o, at(2));
  EXPECT_EQ(histogramCount(metrics_, "switchyard_event_to_programmed_seconds"), 1u);
}

TEST_F(SyncRecorderTest, HealthTurnsStaleWhenSyncsKeepFailingWithoutAnyChangeQueued) {
  recorder_.synced(fullSync(0), at(0));
  EXPECT_TRUE(health_.healthy(at(1)));
  // The periodic forced full sync fails (nothing was queued by a change) and its repairs
  // keep failing: healthy within the health timeout, then stale.
  recorder_.synced(fullSync(1), at(100));
  EXPECT_TRUE(health_.healthy(at(159)));
  recorder_.synced(fullSync(1), at(130));  // does not restart the clock
  EXPECT_FALSE(health_.healthy(at(160)));
  recorder_.synced(fullSync(0), at(170));
  EXPECT_TRUE(health_.healthy(at(171)));
}

}  // namespace
}  // namespace switchyard::metrics
