// /healthz and /livez semantics and body, as kube-proxy (pkg/proxy/healthcheck/
// proxy_health.go and its healthcheck_test.go), the node's eligibility, switchyard's one
// difference before the first sync, and the server over real sockets on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <utility>
#include <vector>

#include "k8sclient/objects.h"
#include "metrics/health.h"
#include "tests/unit/http_test_client.h"

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

k8s::Node node(std::vector<std::string> taintKeys, bool deleting = false) {
  k8s::Node n;
  n.metadata.namespace_ = "default";
  n.metadata.name = "node-a";
  n.metadata.deleting = deleting;
  for (auto& key : taintKeys) {
    n.taints.push_back({key, "", "NoSchedule"});
  }
  return n;
}

TEST(NodeEligibility, AsKubeProxysNodeEligible) {
  struct Row {
    const char* name;
    std::optional<k8s::Node> node;  // nullopt: the observer got nullptr
    bool eligible;
  };
  k8s::Node autoscalerWithValue = node({kToBeDeletedTaint});
  autoscalerWithValue.taints[0].value = "1700000000";  // the autoscaler writes a time; only the key counts
  autoscalerWithValue.taints[0].effect = "NoExecute";
  const Row rows[] = {
      {"a Node without taints is eligible", node({}), true},
      {"kube-proxy: a Node tainted in any other way is eligible", node({"other", "node.kubernetes.io/unschedulable"}),
       true},
      {"kube-proxy: a Node with the ToBeDeletedByClusterAutoscaler taint is not", node({"other", kToBeDeletedTaint}),
       false},
      {"kube-proxy: the taint's key decides, whatever its value and effect", autoscalerWithValue, false},
      {"kube-proxy: a Node with deletionTimestamp set is not", node({}, true), false},
      {"a deleted (or absent) Node is not: stricter than kube-proxy's re-check of the deleted object", std::nullopt,
       false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(nodeEligible(row.node ? &*row.node : nullptr), row.eligible);
  }
}

TEST(Health, NodeIsEligibleWhileStartingUpUntilTheFirstNodeEventAsKubeProxy) {
  HealthState h(60s);
  h.updated(at(1000));
  EXPECT_TRUE(h.nodeEligible());
  EXPECT_EQ(h.code(at(1001), true), 200);
  k8s::Node tainted = node({kToBeDeletedTaint});
  h.syncNode(&tainted);
  EXPECT_EQ(h.code(at(1001), true), 503);
  k8s::Node untainted = node({});
  h.syncNode(&untainted);  // the autoscaler gave up on the node
  EXPECT_EQ(h.code(at(1001), true), 200);
  h.syncNode(nullptr);  // the Node was deleted
  EXPECT_EQ(h.code(at(1001), true), 503);
  // As kube-proxy's healthzHandler: a 503 (here for the node alone) reports the real last
  // update, not the current time.
  EXPECT_EQ(h.body(at(1001), true),
            R"({"lastUpdated": "1970-01-01 00:16:40 +0000 UTC","currentTime": "1970-01-01 00:16:41 +0000 UTC", "nodeEligible": false})");
}

TEST(Health, LivezIgnoresTheNodeAsKubeProxysLivezHandler) {
  HealthState h(60s);
  h.updated(at(1000));
  for (const k8s::Node& n : {node({kToBeDeletedTaint}), node({}, true)}) {
    h.syncNode(&n);
    EXPECT_EQ(h.code(at(1001), true), 503);
    EXPECT_EQ(h.code(at(1001), false), 200);
  }
  h.syncNode(nullptr);
  EXPECT_EQ(h.code(at(1001), false), 200);
  EXPECT_EQ(h.body(at(1001), false),
            R"({"lastUpdated": "1970-01-01 00:16:41 +0000 UTC","currentTime": "1970-01-01 00:16:41 +0000 UTC"})");
}

// Before the first complete sync. kube-proxy is healthy while starting up until a queued
// update is late by healthTimeout; switchyard's /livez is exactly that, and its /healthz
// too when the daemon restarted onto a programmed dataplane (the pinned programs and maps
// forward throughout). A fresh node forwards nothing yet: /healthz 503 until the first sync.
TEST(Health, BeforeTheFirstSync) {
  struct Row {
    const char* name;
    std::optional<size_t> adoptedFrontends;  // nullopt: adoptedFrontends() never called
    std::optional<int> queuedAt;             // seconds
    std::optional<int> updatedAt;
    int askAt;
    int healthz, livez;
  };
  const Row rows[] = {
      {"fresh node: /healthz 503 (switchyard), /livez 200 (kube-proxy: healthy while starting up)", std::nullopt,
       std::nullopt, std::nullopt, 1001, 503, 200},
      {"fresh node, first list queued 59 s ago: /livez 200 (kube-proxy: not late yet)", std::nullopt, 1000,
       std::nullopt, 1059, 503, 200},
      {"fresh node, first list late by healthTimeout: /livez 503 (kube-proxy)", std::nullopt, 1000, std::nullopt, 1060,
       503, 503},
      {"restart onto empty pinned maps: a fresh node", 0, std::nullopt, std::nullopt, 1001, 503, 200},
      {"restart onto a programmed dataplane: 200 (kube-proxy: healthy while starting up)", 3, std::nullopt,
       std::nullopt, 1001, 200, 200},
      {"restart, changes queued 59 s ago: 200 (kube-proxy: not late yet)", 3, 1000, std::nullopt, 1059, 200, 200},
      {"restart, changes late by healthTimeout: 503 (kube-proxy)", 3, 1000, std::nullopt, 1060, 503, 503},
      {"fresh node after its first complete sync: 200 (kube-proxy)", std::nullopt, 1000, 1005, 1006, 200, 200},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    HealthState h(60s);
    if (row.adoptedFrontends) {
      h.adoptedFrontends(*row.adoptedFrontends);
    }
    if (row.queuedAt) {
      h.queued(at(*row.queuedAt));
    }
    if (row.updatedAt) {
      h.updated(at(*row.updatedAt));
    }
    EXPECT_EQ(h.code(at(row.askAt), true), row.healthz);
    EXPECT_EQ(h.code(at(row.askAt), false), row.livez);
    EXPECT_EQ(h.healthy(at(row.askAt)), row.healthz == 200) << "healthy() is /healthz without the node";
    EXPECT_EQ(h.live(at(row.askAt)), row.livez == 200);
  }
}

// The body of /healthz while healthy before the first sync: lastUpdated is now, as
// kube-proxy's for any healthy answer.
TEST(Health, HealthyBeforeTheFirstSyncReportsLastUpdatedNowAsKubeProxy) {
  HealthState h(60s);
  h.adoptedFrontends(1);
  EXPECT_EQ(h.body(at(1000), true),
            R"({"lastUpdated": "1970-01-01 00:16:40 +0000 UTC","currentTime": "1970-01-01 00:16:40 +0000 UTC", "nodeEligible": true})");
}

// The server over a real socket: kube-proxy's headers, the code the state says, the
// observer told every answer, other paths 404 as Go's ServeMux, the query ignored.
TEST(HealthServer, ServesHealthzAndLivezOverHttpAsKubeProxy) {
  boost::asio::io_context io;
  HealthState state(60s);
  std::vector<std::pair<std::string, int>> seen;
  HealthServer server(io, state, [&](const std::string& path, int code) { seen.emplace_back(path, code); });
  std::string error;
  ASSERT_TRUE(server.listen("127.0.0.1", 0, error)) << error;
  ASSERT_NE(server.port(), 0);
  boost::asio::ip::tcp::endpoint to(boost::asio::ip::make_address("127.0.0.1"), server.port());
  const std::regex healthzBody(
      R"re(\{"lastUpdated": "([^"]+)","currentTime": "([^"]+)", "nodeEligible": (true|false)\})re");

  testhttp::HttpResult r = testhttp::httpRequest(io, to, "/healthz");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 503) << "a fresh node before its first sync: " << r.body;
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_EQ(r.headers["X-Content-Type-Options"], "nosniff");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(r.body, m, healthzBody)) << r.body;
  EXPECT_EQ(m[1].str(), "0001-01-01 00:00:00 +0000 UTC") << "never updated: Go's zero time";
  EXPECT_EQ(m[3].str(), "true");

  r = testhttp::httpRequest(io, to, "/livez");
  EXPECT_EQ(r.status, 200) << "kube-proxy's /livez is healthy while starting up: " << r.body;
  EXPECT_THAT(r.body, ::testing::Not(::testing::HasSubstr("nodeEligible")));

  state.updated(Clock::now());
  k8s::Node tainted = node({kToBeDeletedTaint});
  state.syncNode(&tainted);
  r = testhttp::httpRequest(io, to, "/healthz?verbose=1");
  EXPECT_EQ(r.status, 503) << "the autoscaler is removing the node: " << r.body;
  ASSERT_TRUE(std::regex_match(r.body, m, healthzBody)) << r.body;
  EXPECT_EQ(m[3].str(), "false");
  r = testhttp::httpRequest(io, to, "/livez");
  EXPECT_EQ(r.status, 200);

  k8s::Node untainted = node({});
  state.syncNode(&untainted);
  r = testhttp::httpRequest(io, to, "/healthz");
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(std::regex_match(r.body, m, healthzBody)) << r.body;
  EXPECT_EQ(m[1].str(), m[2].str()) << "a healthy answer reports lastUpdated = currentTime";

  r = testhttp::httpRequest(io, to, "/metrics");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers["Content-Type"], "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "404 page not found\n");

  const std::vector<std::pair<std::string, int>> want = {{"/healthz", 503}, {"/livez", 200}, {"/healthz", 503},
                                                         {"/livez", 200},   {"/healthz", 200}, {"/metrics", 404}};
  EXPECT_EQ(seen, want);
}

TEST(HealthServer, ListenErrorsNameTheAddress) {
  boost::asio::io_context io;
  HealthState state(60s);
  HealthServer first(io, state, nullptr);
  std::string error;
  ASSERT_TRUE(first.listen("127.0.0.1", 0, error)) << error;
  HealthServer second(io, state, nullptr);
  EXPECT_FALSE(second.listen("127.0.0.1", first.port(), error));
  EXPECT_THAT(error, ::testing::StartsWith("healthz listen on 127.0.0.1:" + std::to_string(first.port()) + ": "));
  EXPECT_FALSE(second.listen("not-an-ip", 0, error));
  EXPECT_THAT(error, ::testing::StartsWith("healthz address not-an-ip: "));
}

}  // namespace
}  // namespace switchyard::metrics
