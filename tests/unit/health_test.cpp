// /healthz semantics and body, as kube-proxy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/health.h"

namespace switchyard::metrics {
namespace {

using Clock = HealthState::Clock;
using namespace std::chrono_literals;

Clock::time_point at(long long secs, long long nanos = 0) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(secs) +
                                                                      std::chrono::nanoseconds(nanos)));
}

TEST(Health, NotHealthyBeforeTheFirstSync) {
  HealthState h(60s);
  EXPECT_FALSE(h.healthy(at(1000)));
  EXPECT_EQ(h.body(at(1000), true),
            R"({"lastUpdated": "0001-01-01 00:00:00 +0000 UTC","currentTime": "1970-01-01 00:16:40 +0000 UTC", "nodeEligible": true})");
}

TEST(Health, HealthyAfterSyncUntilAChangeWaitsTooLong) {
  HealthState h(60s);
  h.updated(at(1000));
  EXPECT_TRUE(h.healthy(at(1001)));
  h.queued(at(1010));
  EXPECT_TRUE(h.healthy(at(1069)));
  EXPECT_FALSE(h.healthy(at(1070)));
  h.updated(at(1071));
  EXPECT_TRUE(h.healthy(at(1072)));
}

TEST(Health, BodyFormatsTimesAsGo) {
  HealthState h(60s);
  h.updated(at(1763892000, 123456000));
  EXPECT_EQ(goTimeString(at(1763892000, 123456000)), "2025-11-23 10:00:00.123456 +0000 UTC");
  // Healthy: lastUpdated reports the current time, as kube-proxy does for old clients.
  EXPECT_EQ(h.body(at(1763892001), false),
            R"({"lastUpdated": "2025-11-23 10:00:01 +0000 UTC","currentTime": "2025-11-23 10:00:01 +0000 UTC"})");
}

}  // namespace
}  // namespace switchyard::metrics
