// Client-side pacing of API requests: a token bucket (clientConnection.qps/burst, as
// client-go's flowcontrol.NewTokenBucketRateLimiter) and an exponential backoff with
// jitter for retries (client-go's reflector: 800ms doubling to 30s, jitter 1.0). Both are
// pure: the caller passes the time and the random source, so tests are deterministic.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

namespace switchyard::k8s::apiserver {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // qps <= 0 disables limiting. burst < 1 is treated as 1.
  TokenBucket(double qps, int burst)
      : qps_(qps), burst_(std::max(1, burst)), tokens_(static_cast<double>(std::max(1, burst))) {}

  // Takes one token and returns how long the request must wait for it (0 = go now).
  // Waiting requests queue in order: each reservation pushes the next one further out.
  std::chrono::nanoseconds reserve(Clock::time_point now) {
    if (qps_ <= 0) {
      return std::chrono::nanoseconds(0);
    }
    refill(now);
    tokens_ -= 1;
    if (tokens_ >= 0) {
      return std::chrono::nanoseconds(0);
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ / qps_ * 1e9));
  }

 private:
  void refill(Clock::time_point now) {
    if (last_ != Clock::time_point{}) {
      double secs = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min<double>(burst_, tokens_ + secs * qps_);
    }
    last_ = now;
  }

  double qps_;
  int burst_;
  double tokens_;
  Clock::time_point last_{};
};

struct BackoffPolicy {
  std::chrono::milliseconds initial{800};
  std::chrono::milliseconds max{30000};
  double factor = 2.0;
  double jitter = 1.0;  // each wait is base * (1 + jitter * U[0,1))
};

class Backoff {
 public:
  // random01 returns a uniform value in [0, 1); tests inject a fixed one.
  explicit Backoff(BackoffPolicy policy, std::function<double()> random01 = {})
      : policy_(policy), random_(std::move(random01)), base_(policy.initial) {
    if (!random_) {
      random_ = [gen = std::mt19937_64(std::random_device{}())]() mutable {
        return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
      };
    }
  }

  // The wait before the next attempt; each call doubles the base up to max.
  std::chrono::milliseconds next() {
    double wait = static_cast<double>(base_.count()) * (1.0 + policy_.jitter * random_());
    base_ = std::min(policy_.max, std::chrono::milliseconds(static_cast<int64_t>(
                                      static_cast<double>(base_.count()) * policy_.factor)));
    ++failures_;
    return std::chrono::milliseconds(static_cast<int64_t>(wait));
  }
  // After a success: the next failure waits the initial time again.
  void reset() {
    base_ = policy_.initial;
    failures_ = 0;
  }
  int failures() const { return failures_; }

 private:
  BackoffPolicy policy_;
  std::function<double()> random_;
  std::chrono::milliseconds base_;
  int failures_ = 0;
};

}  // namespace switchyard::k8s::apiserver
