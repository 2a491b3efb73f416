// How a reflector recovers when the API server refuses, fails or cuts it short: what it
// does next (relist or rewatch), how long it waits first, and what the metrics count.
// The fake answers chosen requests with failures (InjectedFailure) and logs when each
// request arrived, so waits are measured where the server sees them.
//
// Waits are checked from below only (a timer never fires early), so a loaded machine
// cannot make these tests fail; a missing wait makes the gaps a few milliseconds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/k8sclient/harness.h"

namespace switchyard::k8s::apiserver::testing {
namespace {

using ::testing::ElementsAre;
using Failure = fake::InjectedFailure;

constexpr const char* kServiceList = "GET /api/v1/services?limit=";
constexpr const char* kServiceWatch = "GET /api/v1/services?allowWatchBookmarks=true&watch=true";

// Slack for the clock reads on two threads; far below any wait checked.
constexpr double kSlackMs = 5;

std::string gapList(const std::vector<double>& gaps) {
  std::string s;
  for (double g : gaps) {
    s += std::to_string(static_cast<int>(g)) + "ms ";
  }
  return s;
}

// client-go relists on every ERROR event, not only 410: the server gave up on the watch
// and may have dropped events for it.
TEST_F(SourceTest, ErrorEventOtherThan410RelistsAfterTheBackoff) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  size_t mark = handler.events.size();
  server->clearRequestLog();

  // A change the open watches miss; the relist must find it.
  server->setWatchesSilenced(true);
  server->remove("v1", "Service", "kube-system", "dns");
  server->setWatchesSilenced(false);
  server->sendWatchError(500, "InternalError", "etcd: leader changed");

  ASSERT_TRUE(runUntil([&] { return source->metrics().relists("Service") == 1 &&
                                    source->metrics().relists("EndpointSlice") == 1 &&
                                    server->activeWatches() == 2; },
                       5s, "the relists"))
      << problemList();
  EXPECT_THAT(handler.since(mark), ElementsAre("-Service kube-system/dns"));
  EXPECT_EQ(server->countRequests(kServiceList), 1u) << "one LIST after the ERROR event";
  EXPECT_EQ(source->metrics().events("Service", "ERROR"), 1);
  // Through the relist backoff (50ms first, jitter fixed at 0), not at once.
  EXPECT_TRUE(hasProblem(
      "watch Service: ERROR event 500 InternalError: etcd: leader changed; relisting in 0.05s"))
      << problemList();
  EXPECT_EQ(handler.syncs, 1);
}

struct RepeatedRefusal {
  const char* name;
  Failure::Kind kind;
  int code;
  const char* reason;
};

class RepeatedRefusalTest : public SourceTest,
                            public ::testing::WithParamInterface<RepeatedRefusal> {};

// A server that refuses every watch would otherwise get LIST -> WATCH -> refusal -> LIST
// as fast as it answers: each relist waits on an exponential backoff.
TEST_P(RepeatedRefusalTest, RelistsBackOffExponentially) {
  const RepeatedRefusal& p = GetParam();
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  server->clearRequestLog();
  Failure f;
  f.prefix = kServiceWatch;
  f.kind = p.kind;
  f.code = p.code;
  f.reason = p.reason;
  f.times = -1;
  server->injectFailure(f);
  server->sendWatchError(410, "Expired", "too old resource version");

  ASSERT_TRUE(runUntil([&] { return server->countRequests(kServiceList) >= 5; }, 10s,
                       "five relists"))
      << problemList();
  auto gaps = gapsMs(kServiceList);
  gaps.resize(4);
  // Relist waits with backoff 50ms doubling to 400ms: 50 (before the first LIST), then
  // 100, 200, 400, 400 between LISTs.
  const double want[] = {100, 200, 400, 400};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GE(gaps[i], want[i] - kSlackMs) << "gap " << i << "; gaps: " << gapList(gaps);
  }
  EXPECT_GE(source->metrics().relists("Service"), 5);
  EXPECT_EQ(source->metrics().relists("EndpointSlice"), 1) << "its watches are not refused";

  // Once the server accepts watches again, the reflector settles.
  server->clearInjectedFailures();
  ASSERT_TRUE(runUntil([&] { return server->activeWatches() == 2; }, 5s, "a watch again"));
  server->apply(serviceJson("shop", "after-refusals", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-refusals") > 0; }));
  EXPECT_EQ(handler.syncs, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Refusals, RepeatedRefusalTest,
    ::testing::Values(RepeatedRefusal{"Http410", Failure::Kind::HttpStatus, 410, "Gone"},
                      RepeatedRefusal{"ErrorEvent410", Failure::Kind::WatchError, 410, "Expired"},
                      RepeatedRefusal{"ErrorEvent500", Failure::Kind::WatchError, 500,
                                      "InternalError"}),
    [](const ::testing::TestParamInfo<RepeatedRefusal>& info) { return info.param.name; });

// The counters say how often the reflector decided to relist or rewatch, not how many
// attempts the failing LIST or WATCH took.
TEST_F(SourceTest, RelistsAndWatchRestartsAreCountedOncePerDecision) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  server->clearRequestLog();

  // A relist whose first two LISTs fail.
  Failure listFails;
  listFails.prefix = kServiceList;
  listFails.code = 500;
  listFails.times = 2;
  server->injectFailure(listFails);
  server->sendWatchError(410, "Expired", "too old resource version");
  ASSERT_TRUE(runUntil([&] { return server->activeWatches() == 2 &&
                                    server->countRequests(kServiceWatch) == 1; },
                       5s, "the relist and a new watch"))
      << problemList();
  EXPECT_EQ(server->countRequests(kServiceList), 3u) << "two failed LISTs and a good one";
  EXPECT_EQ(source->metrics().requests("LIST", "500"), 2u);
  EXPECT_EQ(source->metrics().relists("Service"), 1);
  EXPECT_EQ(source->metrics().relists("EndpointSlice"), 1);
  EXPECT_EQ(source->metrics().watchRestarts("Service"), 0) << "a relist is not a rewatch";

  // A rewatch whose first three WATCHes fail.
  Failure watchFails;
  watchFails.prefix = kServiceWatch;
  watchFails.code = 500;
  watchFails.times = 3;
  server->injectFailure(watchFails);
  server->dropWatches();
  ASSERT_TRUE(runUntil([&] { return server->activeWatches() == 2 &&
                                    server->countRequests(kServiceWatch) == 5; },
                       5s, "the rewatch"))
      << problemList();
  EXPECT_EQ(source->metrics().requests("WATCH", "500"), 3u);
  EXPECT_EQ(source->metrics().watchRestarts("Service"), 1);
  EXPECT_EQ(source->metrics().watchRestarts("EndpointSlice"), 1);
  EXPECT_EQ(source->metrics().relists("Service"), 1) << "no relist for a dropped watch";
}

// A server that ends every watch at once, with nothing in it, must not be re-watched in a
// tight loop (client-go: "very short watch").
TEST_F(SourceTest, VeryShortWatchesAreRetriedWithBackoff) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  server->clearRequestLog();
  Failure f;
  f.prefix = kServiceWatch;
  f.kind = Failure::Kind::EmptyWatch;
  f.times = -1;
  server->injectFailure(f);
  server->dropWatches();

  ASSERT_TRUE(runUntil([&] { return server->countRequests(kServiceWatch) >= 5; }, 10s,
                       "five short watches"))
      << problemList();
  auto gaps = gapsMs(kServiceWatch);
  gaps.resize(4);
  // The drop waits 50ms before the first of them; then 100, 200, 400, 400.
  const double want[] = {100, 200, 400, 400};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GE(gaps[i], want[i] - kSlackMs) << "gap " << i << "; gaps: " << gapList(gaps);
  }
  EXPECT_TRUE(hasProblem("watch Service: very short watch")) << problemList();
  EXPECT_EQ(source->metrics().relists("Service"), 0) << "the resourceVersion is still good";

  server->clearInjectedFailures();
  ASSERT_TRUE(runUntil([&] { return server->activeWatches() == 2; }, 5s, "a watch again"));
  server->apply(serviceJson("shop", "after-short-watches", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-short-watches") > 0; }));
}

struct RetryAfterCase {
  const char* name;
  int retryAfterSeconds;
  std::chrono::milliseconds maxRetryAfter;
  double wantGapMs;
  const char* wantMessage;
};

class RetryAfterTest : public SourceTest, public ::testing::WithParamInterface<RetryAfterCase> {};

// 429 from the API server's priority and fairness says how long to stay away: the retry
// waits that (bounded by maxRetryAfter), not the 50ms backoff.
TEST_P(RetryAfterTest, TooManyRequestsWaitsWhatTheServerAsks) {
  const RetryAfterCase& p = GetParam();
  startServer();
  Failure f;
  f.prefix = kServiceList;
  f.code = 429;
  f.reason = "TooManyRequests";
  f.retryAfterSeconds = p.retryAfterSeconds;
  server->injectFailure(f);
  auto o = fastOptions();
  o.reflector.maxRetryAfter = p.maxRetryAfter;
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced(); }, 10s, "synced")) << problemList();
  auto gaps = gapsMs(kServiceList);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_GE(gaps[0], p.wantGapMs - kSlackMs);
  EXPECT_TRUE(hasProblem(p.wantMessage)) << problemList();
  EXPECT_EQ(source->metrics().requests("LIST", "429"), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    RetryAfter, RetryAfterTest,
    ::testing::Values(
        RetryAfterCase{"Honoured", 1, 60s, 1000,
                       "LIST Service: HTTP 429 Too Many Requests: injected by the test; "
                       "retrying in 1s (Retry-After)"},
        RetryAfterCase{"Bounded", 3600, 300ms, 300, "retrying in 0.3s (Retry-After)"},
        RetryAfterCase{"AbsentMeansBackoff", 0, 60s, 50,
                       "HTTP 429 Too Many Requests: injected by the test; retrying in 0.05s"}),
    [](const ::testing::TestParamInfo<RetryAfterCase>& info) { return info.param.name; });

// Pages read more slowly than the server compacts: the continue token expires. Paging
// again could expire again; the list starts over in one unpaginated request, after the
// backoff, and handlers see each object once.
TEST_F(SourceTest, ExpiredContinueTokenListsAgainUnpaginatedAfterTheBackoff) {
  startServer();
  for (int i = 0; i < 7; ++i) {
    server->apply(serviceJson("bulk", "svc-" + std::to_string(i), 80 + i));
  }
  Failure f;
  f.prefix = "GET /api/v1/services?limit=2&continue=";
  f.code = 410;
  f.reason = "Expired";
  server->injectFailure(f);
  auto o = fastOptions();
  o.reflector.pageSize = 2;
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced(); }, 10s, "synced")) << problemList();

  EXPECT_EQ(handler.services.size(), 9u);
  EXPECT_EQ(handler.events.size(), 9u + 2u + 1u) << "each object once, then synced";
  EXPECT_EQ(server->countRequests("GET /api/v1/services?labelSelector="), 1u)
      << "the unpaginated list";
  auto full = requestTimes("GET /api/v1/services?labelSelector=");
  auto refused = requestTimes("GET /api/v1/services?limit=2&continue=");
  ASSERT_EQ(full.size(), 1u);
  ASSERT_EQ(refused.size(), 1u);
  double waitedMs = std::chrono::duration<double, std::milli>(full[0] - refused[0]).count();
  EXPECT_GE(waitedMs, 50 - kSlackMs);
  EXPECT_TRUE(hasProblem("continue token expired (410 Gone); listing again without "
                         "pagination; retrying in 0.05s"))
      << problemList();
  EXPECT_EQ(source->metrics().relists("Service"), 0) << "still the first list";
}

}  // namespace
}  // namespace switchyard::k8s::apiserver::testing
