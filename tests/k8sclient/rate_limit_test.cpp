// Request pacing (qps/burst) and retry backoff, with injected time and randomness.
#include <gtest/gtest.h>

#include "k8sclient/apiserver/rate_limit.h"

namespace switchyard::k8s::apiserver {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucket, BurstGoesAtOnceThenQpsPaces) {
  TokenBucket b(10, 3);  // 10/s, burst 3
  auto t0 = TokenBucket::Clock::time_point() + 1h;
  EXPECT_EQ(b.reserve(t0), 0ns);
  EXPECT_EQ(b.reserve(t0), 0ns);
  EXPECT_EQ(b.reserve(t0), 0ns);
  // The 4th and 5th wait for tokens 100ms apart.
  EXPECT_EQ(b.reserve(t0), 100ms);
  EXPECT_EQ(b.reserve(t0), 200ms);
  // After a second the bucket is full again (3), not 10.
  auto t1 = t0 + 2s;
  EXPECT_EQ(b.reserve(t1), 0ns);
  EXPECT_EQ(b.reserve(t1), 0ns);
  EXPECT_EQ(b.reserve(t1), 0ns);
  EXPECT_GT(b.reserve(t1), 0ns);
}

TEST(TokenBucket, ZeroQpsDisablesLimiting) {
  TokenBucket b(0, 1);
  auto t = TokenBucket::Clock::now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(b.reserve(t), 0ns);
  }
}

TEST(Backoff, DoublesWithJitterUpToTheMaximum) {
  double r = 0.0;
  Backoff b(BackoffPolicy{100ms, 1000ms, 2.0, 1.0}, [&] { return r; });
  EXPECT_EQ(b.next(), 100ms);
  EXPECT_EQ(b.next(), 200ms);
  EXPECT_EQ(b.next(), 400ms);
  EXPECT_EQ(b.next(), 800ms);
  EXPECT_EQ(b.next(), 1000ms);
  EXPECT_EQ(b.next(), 1000ms) << "capped";
  r = 0.5;  // jitter adds up to jitter * base
  EXPECT_EQ(b.next(), 1500ms);
  b.reset();
  EXPECT_EQ(b.failures(), 0);
  r = 0.0;
  EXPECT_EQ(b.next(), 100ms) << "reset starts over";
}

TEST(Backoff, RealRandomStaysWithinBounds) {
  Backoff b(BackoffPolicy{800ms, 30000ms, 2.0, 1.0});
  auto first = b.next();
  EXPECT_GE(first, 800ms);
  EXPECT_LT(first, 1600ms);
}

}  // namespace
}  // namespace switchyard::k8s::apiserver
