// The API server source against the fake API server over HTTPS: lists, watches, and every
// way a watch ends. The client's io_context runs only inside runUntil/runFor, so whatever
// a test does to the server in between happens while the client is frozen: the
// interleavings below are exact, not timing-dependent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>

#include "tests/k8sclient/harness.h"

namespace switchyard::k8s::apiserver::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const fake::Resource& servicesResource() { return *fake::findResource("", "v1", "services"); }

TEST_F(SourceTest, InitialListIsPaginatedFilteredAndSyncedOnce) {
  startServer();
  for (int i = 0; i < 7; ++i) {
    server->apply(serviceJson("bulk", "svc-" + std::to_string(i), 80 + i));
  }
  auto o = fastOptions();
  o.reflector.pageSize = 2;
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced(); }, 10s, "synced"));

  // 7 bulk + web + dns; other-proxy belongs to another proxy (service-proxy-name).
  EXPECT_EQ(handler.services.size(), 9u);
  EXPECT_FALSE(handler.services.count("shop/other-proxy"));
  // The headless service's slice is not ours either.
  EXPECT_EQ(handler.slices.size(), 2u);
  EXPECT_FALSE(handler.slices.count("shop/headless-abc12"));
  // Synced once, after everything both lists delivered.
  EXPECT_EQ(handler.syncs, 1);
  EXPECT_EQ(handler.events.back(), "synced");
  EXPECT_EQ(handler.events.size(), 9u + 2u + 1u);
  // 9 matching services in pages of 2: the first page and 4 continued ones.
  EXPECT_EQ(server->countRequests("GET /api/v1/services?limit=2&labelSelector="), 1u);
  EXPECT_EQ(server->countRequests("GET /api/v1/services?limit=2&continue="), 4u);
  // ...and 2 matching slices in one page.
  EXPECT_EQ(source->metrics().requests("LIST", "200"), 5u + 1u);
  // The last-sync gauge has one series per kind (read before the read-backs below, which
  // would create the series they ask for).
  std::set<std::string> syncKinds;
  for (const auto& family : registry.Collect()) {
    if (family.name != "switchyard_k8s_last_sync_timestamp_seconds") {
      continue;
    }
    for (const auto& m : family.metric) {
      for (const auto& l : m.label) {
        if (l.name == "kind" && m.gauge.value > 0) {
          syncKinds.insert(l.value);
        }
      }
    }
  }
  EXPECT_EQ(syncKinds, (std::set<std::string>{"EndpointSlice", "Service"}));
  EXPECT_GT(source->metrics().lastSync("Service"), 0);
  EXPECT_GT(source->metrics().lastSync("EndpointSlice"), 0);
}

TEST_F(SourceTest, WatchDeliversAddUpdateDelete) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  size_t mark = handler.events.size();

  server->apply(serviceJson("shop", "api", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/api") > 0; }, 5s, "add"));
  server->apply(serviceJson("shop", "api", 81));
  ASSERT_TRUE(runUntil([&] { return handler.services["shop/api"].ports[0].port == 81; }, 5s, "update"));
  server->remove("v1", "Service", "shop", "api");
  ASSERT_TRUE(runUntil([&] { return !handler.services.count("shop/api"); }, 5s, "delete"));
  // A Service handed to another proxy leaves our selector: the watch says DELETED.
  server->apply(serviceJson("shop", "web", 80, R"(,"service.kubernetes.io/service-proxy-name":"other")"));
  ASSERT_TRUE(runUntil([&] { return !handler.services.count("shop/web"); }, 5s, "relabel"));
  server->apply(sliceJson("shop", "api-1", "api", "198.18.1.20"));
  ASSERT_TRUE(runUntil([&] { return handler.slices.count("shop/api-1") > 0; }, 5s, "slice"));

  EXPECT_THAT(handler.since(mark),
              ElementsAre("+Service shop/api", "+Service shop/api", "-Service shop/api",
                          "-Service shop/web", "+EndpointSlice shop/api-1"));
  EXPECT_EQ(source->metrics().events("Service", "ADDED"), 1);
  EXPECT_EQ(source->metrics().events("Service", "MODIFIED"), 1);
  EXPECT_EQ(source->metrics().events("Service", "DELETED"), 2);
  EXPECT_EQ(source->metrics().events("EndpointSlice", "ADDED"), 1);
  EXPECT_EQ(source->metrics().requests("WATCH", "200"), 2u);
}

// policy.enabled: Pods of every node, Namespaces and NetworkPolicies are listed and watched
// too, and the first sync waits for them (policy is never enforced from a partial picture).
TEST_F(SourceTest, PolicyKindsAreListedAndWatchedAndSyncWaitsForThem) {
  startServer();
  server->apply(R"({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"x","labels":{"team":"a"}}})");
  server->apply(R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"x"},)"
                R"("spec":{"nodeName":"other-node"},"status":{"podIP":"198.18.1.5"}})");
  auto o = fastOptions();
  o.policy = true;
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 5; }));
  auto synced = std::find(handler.events.begin(), handler.events.end(), "synced");
  ASSERT_NE(synced, handler.events.end());
  // The pod on another node and the namespace came before the sync.
  EXPECT_NE(std::find(handler.events.begin(), synced, "+Pod x/web 198.18.1.5"), synced);
  EXPECT_NE(std::find(handler.events.begin(), synced, "+Namespace x"), synced);
  size_t mark = handler.events.size();
  server->apply(R"({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1",)"
                R"("metadata":{"name":"deny","namespace":"x"},"spec":{"podSelector":{}}})");
  ASSERT_TRUE(runUntil([&] { return handler.events.size() > mark; }, 5s, "policy add"));
  server->remove("v1", "Pod", "x", "web");
  ASSERT_TRUE(runUntil([&] { return handler.events.size() > mark + 1; }, 5s, "pod delete"));
  // A policy the decoder refuses is a problem naming it and its field; the rest goes on.
  server->apply(R"({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1",)"
                R"("metadata":{"name":"bad","namespace":"x"},"spec":{"podSelector":{},)"
                R"("ingress":[{"ports":[{"endPort":90}]}]}})");
  ASSERT_TRUE(runUntil([&] { return hasProblem("x/bad"); }, 5s, "decode problem"));
  EXPECT_TRUE(hasProblem("spec.ingress[0].ports[0].endPort"));
  EXPECT_THAT(handler.since(mark), ElementsAre("+NetworkPolicy x/deny", "-Pod x/web"));
}

// bpf.socketLB.podOptOut: this node's pods only (the kubelet's field selector) and the
// namespaces; no NetworkPolicies.
TEST_F(SourceTest, LocalPodsAreThoseOfThisNodeOnly) {
  startServer();
  server->apply(R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"mine","namespace":"x","uid":"u1"},)"
                R"("spec":{"nodeName":"node-a"}})");
  server->apply(R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"theirs","namespace":"x","uid":"u2"},)"
                R"("spec":{"nodeName":"node-b"}})");
  auto o = fastOptions();
  o.nodeName = "node-a";
  o.localPods = true;
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 5; }));
  EXPECT_NE(std::find(handler.events.begin(), handler.events.end(), "+Pod x/mine -"), handler.events.end());
  EXPECT_EQ(std::find(handler.events.begin(), handler.events.end(), "+Pod x/theirs -"), handler.events.end());
  bool fieldSelected = false;
  for (const auto& r : server->timedRequestLog()) {
    EXPECT_EQ(r.line.find("networkpolicies"), std::string::npos) << r.line;
    fieldSelected = fieldSelected || (r.line.find("/api/v1/pods") != std::string::npos &&
                                      r.line.find("spec.nodeName") != std::string::npos);
  }
  EXPECT_TRUE(fieldSelected);
}

// Without policy, nothing of these kinds is asked for.
TEST_F(SourceTest, WithoutPolicyNoPodIsListed) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  for (const auto& r : server->timedRequestLog()) {
    EXPECT_EQ(r.line.find("/pods"), std::string::npos) << r.line;
    EXPECT_EQ(r.line.find("networkpolicies"), std::string::npos) << r.line;
  }
}

// Every event is cut into two HTTP chunks, each at a different byte: together they cut
// an event line at every boundary it has. (watch_stream_test cuts in-process, at every
// boundary and pair of boundaries; this goes through TLS and Beast's chunk decoder.)
TEST_F(SourceTest, EventsSplitAtEveryByteBoundaryOfAChunk) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  // A fixed-width label keeps every event line the same length.
  auto version = [](int i) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%04d", i);
    return serviceJson("shop", "split", 80, std::string(R"(,"gen":")") + buf + "\"");
  };
  server->apply(version(0));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/split") > 0; }));
  size_t length = 0;
  server->withState([&](fake::FakeState& s) {
    length = fake::watchEventJson("MODIFIED", s.get(servicesResource(), "shop", "split").body).size();
  });
  ASSERT_GT(server->resourceVersion() + length, server->resourceVersion());
  ASSERT_LT(server->resourceVersion() + length, 1000u) << "resourceVersions must keep 3 digits";

  std::mutex mu;
  std::set<size_t> cuts;
  std::set<size_t> lengths;
  server->setWatchChunker([&](const std::string& line, size_t index) {
    size_t cut = index % line.size();
    cut = cut == 0 ? 1 : cut;
    std::lock_guard<std::mutex> lock(mu);
    cuts.insert(cut);
    lengths.insert(line.size());
    return std::vector<std::string>{line.substr(0, cut), line.substr(cut)};
  });
  size_t mark = handler.events.size();
  for (size_t i = 1; i < length; ++i) {
    server->apply(version(static_cast<int>(i)));
  }
  std::string last = version(static_cast<int>(length - 1));
  ASSERT_TRUE(runUntil(
      [&] { return handler.services["shop/split"].metadata.labels["gen"] == last.substr(last.find("\"gen\":\"") + 7, 4); },
      20s, "the last version"));
  EXPECT_EQ(handler.events.size() - mark, length - 1) << "every version arrived, once";
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(lengths, std::set<size_t>{length});
  EXPECT_EQ(cuts.size(), length - 1) << "every boundary 1.." << length - 1 << " was cut";
  EXPECT_EQ(source->metrics().decodeErrors("Service"), 0);
}

TEST_F(SourceTest, ManyEventsInOneChunk) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  server->holdWatchEvents(true);
  for (int i = 0; i < 20; ++i) {
    server->apply(serviceJson("batch", "s" + std::to_string(i), 1000 + i));
  }
  runFor(50ms);
  EXPECT_FALSE(handler.services.count("batch/s0")) << "held back by the server";
  server->holdWatchEvents(false);
  ASSERT_TRUE(runUntil([&] { return handler.services.count("batch/s19") > 0; }));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(handler.services["batch/s" + std::to_string(i)].ports[0].port, 1000 + i);
  }
}

TEST_F(SourceTest, BookmarkAdvancesTheResourceVersionAndSavesARelist) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  std::string before = source->serviceReflector().resourceVersion();
  // A change of another kind moves the server's version; the Service watch sees nothing.
  server->apply(sliceJson("shop", "other-1", "other", "198.18.3.1"));
  ASSERT_TRUE(runUntil([&] { return handler.slices.count("shop/other-1") > 0; }));
  EXPECT_EQ(source->serviceReflector().resourceVersion(), before);

  size_t mark = handler.events.size();
  server->sendBookmarks();
  std::string now = std::to_string(server->resourceVersion());
  ASSERT_TRUE(runUntil([&] { return source->serviceReflector().resourceVersion() == now; }, 5s,
                       "bookmark"));
  EXPECT_EQ(source->metrics().events("Service", "BOOKMARK"), 1);
  EXPECT_EQ(handler.events.size(), mark) << "a bookmark is not an object event";

  // With the bookmark's version, a rewatch after compaction needs no relist.
  server->compact();
  server->dropWatches();
  ASSERT_TRUE(runUntil([&] { return source->metrics().watchRestarts("Service") >= 1 &&
                                    server->activeWatches() == 2; }));
  runFor(100ms);
  EXPECT_EQ(source->metrics().relists("Service"), 0);
  EXPECT_EQ(source->metrics().relists("EndpointSlice"), 0);
}

// 410 as the real API server sends it: an ERROR event in the watch stream. Meanwhile,
// unseen by the client, one object was deleted, one changed and one created.
TEST_F(SourceTest, ExpiredErrorEventRelistsAndDeliversOnlyTheDifference) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  size_t mark = handler.events.size();

  server->setWatchesSilenced(true);
  server->remove("v1", "Service", "kube-system", "dns");
  server->apply(serviceJson("shop", "web", 8080));
  server->apply(serviceJson("shop", "late", 80));
  server->expireWatches();
  server->setWatchesSilenced(false);

  ASSERT_TRUE(runUntil([&] { return source->metrics().relists("Service") == 1 &&
                                    source->metrics().relists("EndpointSlice") == 1 &&
                                    server->activeWatches() == 2; }));
  // Adds and updates as the list delivers them, then deletes (client-go's Replace order);
  // unchanged slices: nothing.
  EXPECT_THAT(handler.since(mark),
              ElementsAre("+Service shop/late", "+Service shop/web", "-Service kube-system/dns"));
  EXPECT_EQ(handler.services["shop/web"].ports[0].port, 8080);
  EXPECT_EQ(handler.syncs, 1) << "synced is said once";
  EXPECT_EQ(source->metrics().events("Service", "ERROR"), 1);
  EXPECT_TRUE(hasProblem("expired (410 Gone); relisting")) << problemList();
}

// 410 as an HTTP status: the watch connection drops, history is compacted meanwhile,
// and the rewatch from the old version is refused.
TEST_F(SourceTest, ExpiredHttp410OnRewatchRelists) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  size_t mark = handler.events.size();
  server->setExpiredWatchAsHttp410(true);
  server->setWatchesSilenced(true);
  server->remove("v1", "Service", "kube-system", "dns");
  server->dropWatches();
  server->compact();
  server->setWatchesSilenced(false);
  ASSERT_TRUE(runUntil([&] { return !handler.services.count("kube-system/dns"); }));
  ASSERT_TRUE(runUntil([&] { return server->activeWatches() == 2; }));
  EXPECT_THAT(handler.since(mark), ElementsAre("-Service kube-system/dns"));
  EXPECT_EQ(source->metrics().relists("Service"), 1);
  EXPECT_GE(server->countRequests("GET /api/v1/services?allowWatchBookmarks=true&watch=true"), 2u);
  EXPECT_GE(source->metrics().requests("WATCH", "410"), 1u);
}

TEST_F(SourceTest, DroppedConnectionResumesFromTheLastVersionWithoutRelist) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  std::string rv = source->serviceReflector().resourceVersion();
  size_t lists = server->countRequests("GET /api/v1/services?limit");

  server->dropWatches();
  // Made while the client is cut off: the resumed watch replays it.
  server->apply(serviceJson("shop", "after-drop", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-drop") > 0; }));

  EXPECT_EQ(server->countRequests("GET /api/v1/services?limit"), lists) << "no relist";
  EXPECT_EQ(source->metrics().relists("Service"), 0);
  EXPECT_GE(source->metrics().watchRestarts("Service"), 1);
  EXPECT_EQ(server->countRequests(
                "GET /api/v1/services?allowWatchBookmarks=true&watch=true&resourceVersion=" + rv),
            2u)
      << "the first watch and the resumed one start at the list's version";
  EXPECT_TRUE(hasProblem("watch Service")) << problemList();
}

// The watch delivered events before the connection dropped: it resumes from the last
// event's resourceVersion (not the list's), so nothing is replayed and nothing relisted.
TEST_F(SourceTest, DropAfterEventsResumesFromTheLastEventWithoutRepeats) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  std::string listRv = source->serviceReflector().resourceVersion();
  size_t lists = server->countRequests("GET /api/v1/services?limit");
  size_t mark = handler.events.size();

  server->apply(serviceJson("shop", "before-drop-1", 80));
  server->apply(serviceJson("shop", "before-drop-2", 81));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/before-drop-2") > 0; }));
  std::string eventRv = source->serviceReflector().resourceVersion();
  ASSERT_NE(eventRv, listRv);
  EXPECT_EQ(eventRv, handler.services["shop/before-drop-2"].metadata.resourceVersion);

  server->dropWatches();
  server->apply(serviceJson("shop", "after-drop", 82));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-drop") > 0 &&
                                    server->activeWatches() == 2; }));
  runFor(100ms);  // room for a repeat to show up

  EXPECT_THAT(handler.since(mark), ElementsAre("+Service shop/before-drop-1",
                                               "+Service shop/before-drop-2",
                                               "+Service shop/after-drop"))
      << "each change once";
  const std::string watchFrom =
      "GET /api/v1/services?allowWatchBookmarks=true&watch=true&resourceVersion=";
  EXPECT_EQ(server->countRequests(watchFrom + eventRv + "&"), 1u)
      << "the resumed watch starts at the last event";
  EXPECT_EQ(server->countRequests(watchFrom + listRv + "&"), 1u) << "only the first watch";
  EXPECT_EQ(server->countRequests(watchFrom), 2u);
  EXPECT_EQ(server->countRequests("GET /api/v1/services?limit"), lists) << "no relist";
  EXPECT_EQ(source->metrics().relists("Service"), 0);
  EXPECT_EQ(source->metrics().watchRestarts("Service"), 1);
}

// clientConnection.qps and burst reach the requests: with qps 5 and burst 1, every
// request of every reflector (LIST pages and WATCHes share one token bucket) leaves 200ms
// after the one before it.
TEST_F(SourceTest, QpsAndBurstSpaceTheRequests) {
  startServer();
  for (int i = 0; i < 7; ++i) {
    server->apply(serviceJson("bulk", "svc-" + std::to_string(i), 80 + i));
  }
  server->clearRequestLog();
  auto o = fastOptions();
  o.qps = 5;
  o.burst = 1;
  o.reflector.pageSize = 2;
  startSource(connection(), o);
  // 5 pages of Services, 1 of EndpointSlices, 2 watches.
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }, 10s,
                       "synced and watching"))
      << ::testing::PrintToString(server->requestLog()) << "\n" << problemList();
  auto times = requestTimes("GET ");
  ASSERT_EQ(times.size(), 8u) << ::testing::PrintToString(server->requestLog());
  auto gaps = gapsMs("GET ");
  // The client lets one request out every 200ms; each reaches the server a little later
  // (a reflector's first request does its TCP and TLS handshake first), so a gap can be
  // short of 200ms by how much later the one before it arrived. 100ms leaves room for a
  // loaded machine and is still far above the few milliseconds of an unlimited client.
  for (size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], 100) << "gap " << i << "; gaps: " << ::testing::PrintToString(gaps);
  }
  // Over all 8 the lateness does not add up: only the first request's can shorten it.
  double span = std::chrono::duration<double, std::milli>(times.back() - times.front()).count();
  EXPECT_GE(span, 7 * 200 - 100) << "8 requests at 5 per second";
}

TEST_F(SourceTest, ServerTimeoutEndsTheWatchAndANewOneStarts) {
  startServer();
  auto o = fastOptions();
  o.reflector.minWatchTimeout = 1s;  // random 0: exactly 1s
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced(); }));
  ASSERT_TRUE(runUntil([&] { return source->metrics().watchRestarts("Service") >= 1; }, 5s,
                       "the server to end the watch"));
  EXPECT_EQ(source->metrics().relists("Service"), 0);
  EXPECT_THAT(problems, IsEmpty()) << "a timeout is normal, not a problem:\n" << problemList();
  server->apply(serviceJson("shop", "after-timeout", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-timeout") > 0; }));
}

class TokenFile {
 public:
  TokenFile() {
    char tmpl[] = "/tmp/sy-token-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~TokenFile() { std::filesystem::remove_all(dir_); }
  // Writes a new file and renames it over the old one, as the kubelet's rotation does.
  void write(const std::string& token) {
    std::ofstream(dir_ + "/next", std::ios::trunc) << token << "\n";
    std::filesystem::rename(dir_ + "/next", path());
  }
  std::string path() const { return dir_ + "/token"; }

 private:
  std::string dir_;
};

TEST_F(SourceTest, BadTokenIsAClearErrorRetriedWithBackoffUntilTheTokenRotates) {
  startServer();
  TokenFile token;
  token.write("not-the-token");
  auto c = connection();
  c.token = "";
  c.tokenFile = token.path();
  startSource(c);

  auto serviceProblems = [&] {
    std::vector<std::string> out;
    for (const auto& p : problems) {
      if (p.kind == "Service") {
        out.push_back(p.message);
      }
    }
    return out;
  };
  ASSERT_TRUE(runUntil([&] { return serviceProblems().size() >= 3; }, 5s, "three failures"));
  auto msgs = serviceProblems();
  EXPECT_NE(msgs[0].find("LIST Service: HTTP 401 Unauthorized"), std::string::npos) << msgs[0];
  EXPECT_NE(msgs[0].find("rejected the credentials"), std::string::npos) << msgs[0];
  // Exponential: 50ms, 100ms, 200ms (jitter fixed at 0 here).
  EXPECT_NE(msgs[0].find("retrying in 0.05s"), std::string::npos) << msgs[0];
  EXPECT_NE(msgs[1].find("retrying in 0.1s"), std::string::npos) << msgs[1];
  EXPECT_NE(msgs[2].find("retrying in 0.2s"), std::string::npos) << msgs[2];
  EXPECT_FALSE(source->synced());
  EXPECT_THAT(handler.events, IsEmpty());
  EXPECT_GE(source->metrics().requests("LIST", "401"), 3u);

  token.write(kToken);
  ASSERT_TRUE(runUntil([&] { return source->synced(); }, 5s, "sync after the rotation"));
  EXPECT_EQ(handler.services.size(), 2u);
}

TEST_F(SourceTest, WrongCaIsATlsErrorAndNoData) {
  startServer();
  auto c = connection();
  c.caPem = fake::generateTestPki().caCertPem;  // another CA
  startSource(c);
  ASSERT_TRUE(runUntil([&] { return hasProblem("TLS handshake"); }, 5s, "the TLS error"));
  // The detail depends on whether the server sends its CA along ("self-signed certificate
  // in certificate chain") or not ("unable to get local issuer certificate").
  EXPECT_TRUE(hasProblem("certificate verify failed: ")) << problemList();
  runFor(200ms);
  EXPECT_FALSE(source->synced());
  EXPECT_THAT(handler.events, IsEmpty());
  EXPECT_THAT(server->requestLog(), IsEmpty()) << "no request got past the handshake";
  EXPECT_GE(source->metrics().requests("LIST", "<error>"), 1u);
}

// A kubeconfig for the fake with the token and no certificate-authority: the client trusts
// only the system's store, which does not hold the fake's test CA.
ConnectionConfig kubeconfigWithoutCa(const std::string& server, const std::string& token,
                                     const std::string& insecureField) {
  std::string text = "current-context: c\n"
                     "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                     "clusters: [{name: k, cluster: {server: '" + server + "'" + insecureField +
                     "}}]\n"
                     "users: [{name: u, user: {token: " + token + "}}]\n";
  ConnectionConfig c;
  std::string error;
  EXPECT_TRUE(parseKubeconfig(text, "/", c, error)) << error;
  return c;
}

TEST_F(SourceTest, InsecureSkipTlsVerifyConnectsToAServerWhoseCaIsNotTrusted) {
  startServer();
  startSource(kubeconfigWithoutCa(server->url(), kToken, ", insecure-skip-tls-verify: True"));
  ASSERT_TRUE(runUntil([&] { return source->synced(); }, 5s, "synced")) << problemList();
  EXPECT_EQ(handler.services.size(), 2u);
  EXPECT_FALSE(hasProblem("TLS handshake")) << problemList();
}

TEST_F(SourceTest, WithoutInsecureSkipTlsVerifyAnUntrustedCaIsATlsError) {
  startServer();
  startSource(kubeconfigWithoutCa(server->url(), kToken, ""));
  ASSERT_TRUE(runUntil([&] { return hasProblem("TLS handshake"); }, 5s, "the TLS error"));
  EXPECT_TRUE(hasProblem("certificate verify failed: ")) << problemList();
  runFor(100ms);
  EXPECT_FALSE(source->synced());
  EXPECT_THAT(handler.events, IsEmpty());
  EXPECT_THAT(server->requestLog(), IsEmpty()) << "no request got past the handshake";
}

// A config made in code gets the same refusal as a kubeconfig with both.
TEST_F(SourceTest, InsecureSkipTlsVerifyWithACaIsRefused) {
  startServer();
  auto c = connection();
  c.insecureSkipTlsVerify = true;
  startSource(c);
  ASSERT_TRUE(runUntil(
      [&] { return hasProblem("specifying a root certificates file with the insecure flag"); },
      5s, "the refusal"));
  EXPECT_THAT(handler.events, IsEmpty());
  EXPECT_THAT(server->requestLog(), IsEmpty());
}

TEST_F(SourceTest, ServerNameMismatchIsATlsError) {
  startServer();
  auto c = connection();
  c.tlsServerName = "not-the-server.example";
  startSource(c);
  ASSERT_TRUE(runUntil([&] { return hasProblem("TLS handshake"); }, 5s, "the TLS error"));
  EXPECT_TRUE(hasProblem("hostname mismatch") || hasProblem("Hostname mismatch")) << problemList();
  EXPECT_THAT(handler.events, IsEmpty());
}

TEST_F(SourceTest, ClientCertificateAuthenticates) {
  startServer();
  auto c = connection();
  c.token = "";
  c.clientCertPem = pki.clientCertPem;
  c.clientKeyPem = pki.clientKeyPem;
  startSource(c);
  ASSERT_TRUE(runUntil([&] { return source->synced(); }));
  EXPECT_EQ(handler.services.size(), 2u);
}

TEST_F(SourceTest, MalformedObjectsAreCountedAndSkippedAndTheStreamContinues) {
  startServer();
  server->apply(serviceJson("shop", "bad", 70000));
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  EXPECT_FALSE(handler.services.count("shop/bad"));
  EXPECT_TRUE(handler.services.count("shop/web"));
  EXPECT_EQ(source->metrics().decodeErrors("Service"), 1);
  EXPECT_TRUE(hasProblem(
      "Service shop/bad: spec.ports[0].port: must be between 1 and 65535, got 70000"))
      << problemList();

  // A bad update of a good object: skipped, the last good version stays.
  server->apply(serviceJson("shop", "web", 70000));
  server->apply(serviceJson("shop", "next", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/next") > 0; }));
  EXPECT_EQ(handler.services["shop/web"].ports[0].port, 80);
  EXPECT_EQ(source->metrics().decodeErrors("Service"), 2);

  // A line that is not a watch event at all.
  server->setWatchChunker([](const std::string& line, size_t) {
    return std::vector<std::string>{"{\"type\":\"RENAMED\",\"object\":{}}\n", line};
  });
  server->apply(serviceJson("shop", "after-garbage", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-garbage") > 0; }));
  EXPECT_EQ(source->metrics().decodeErrors("Service"), 3);
  EXPECT_TRUE(hasProblem("skipped a malformed event: type: unknown watch event type")) << problemList();
  EXPECT_EQ(source->metrics().relists("Service"), 0);
}

TEST_F(SourceTest, NodeObjectIsWatchedWithItsTaint) {
  startServer();
  auto o = fastOptions();
  o.nodeName = "node-a";
  int nodeChanges = 0;
  startSource(connection(), o);
  source->setNodeObserver([&](const Node*) { ++nodeChanges; });
  ASSERT_TRUE(runUntil([&] { return source->node() != nullptr; }));
  EXPECT_EQ(source->node()->metadata.labels.at("topology.kubernetes.io/zone"), "zone-1");
  EXPECT_TRUE(source->nodeToBeDeleted());
  EXPECT_EQ(server->countRequests("GET /api/v1/nodes?limit=500&fieldSelector=metadata.name%3Dnode-a"), 1u);

  // The autoscaler changed its mind.
  server->apply(R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"node-a","labels":{"topology.kubernetes.io/zone":"zone-1"}},"spec":{}})");
  ASSERT_TRUE(runUntil([&] { return !source->nodeToBeDeleted(); }));
  // Another node's changes are not ours.
  int before = nodeChanges;
  server->apply(R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"node-b"},"spec":{}})");
  server->apply(serviceJson("shop", "marker", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/marker") > 0; }));
  runFor(50ms);
  EXPECT_EQ(nodeChanges, before);
}

TEST_F(SourceTest, ConnectionIsKeptAliveBetweenRequests) {
  startServer();
  ConnectionConfig c = connection();
  BearerToken token(c.token, "");
  ApiConnection conn(io, c, token);
  int done = 0;
  std::vector<int> statuses;
  std::string body;
  auto get = [&](const std::string& target) {
    conn.get(HttpRequest{target}, ApiConnection::Handlers{
                                      [&](int s) { statuses.push_back(s); },
                                      [&](std::string_view d) { body.append(d); },
                                      [&](const HttpError& e) {
                                        EXPECT_FALSE(e) << e.message;
                                        ++done;
                                      }});
  };
  get("/version");
  ASSERT_TRUE(runUntil([&] { return done == 1; }));
  get("/api/v1/services?limit=1");
  ASSERT_TRUE(runUntil([&] { return done == 2; }));
  get("/api/v1/namespaces/shop/services/nope");
  ASSERT_TRUE(runUntil([&] { return done == 3; }));
  EXPECT_THAT(statuses, ElementsAre(200, 200, 404));
  EXPECT_EQ(conn.connectionsOpened(), 1u);
}

}  // namespace
}  // namespace switchyard::k8s::apiserver::testing
