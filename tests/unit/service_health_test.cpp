// The per-Service health checks (metrics/service_health.h), as kube-proxy's
// pkg/proxy/healthcheck/service_health.go and its TestServer, over real sockets on
// 127.0.0.1 and ::1 with ports the kernel picks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "metrics/health.h"
#include "metrics/service_health.h"
#include "tests/unit/http_test_client.h"

namespace switchyard::metrics {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::make_address;
using boost::asio::ip::tcp;
using testhttp::httpRequest;
using testhttp::HttpResult;
using namespace std::chrono_literals;

// `n` distinct ports that were free a moment ago, for the cases that need one number on
// two addresses or a port change (everything else asks for port 0). All are held until
// all are chosen, so that the kernel cannot hand out one twice.
std::vector<uint16_t> freePorts(boost::asio::io_context& io, size_t n) {
  std::vector<std::unique_ptr<tcp::acceptor>> held;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < n; ++i) {
    held.push_back(std::make_unique<tcp::acceptor>(io, tcp::endpoint(make_address("127.0.0.1"), 0)));
    ports.push_back(held.back()->local_endpoint().port());
  }
  return ports;
}
uint16_t freePort(boost::asio::io_context& io) { return freePorts(io, 1)[0]; }

// A listener the test holds, to make a port busy.
struct Blocker {
  Blocker(boost::asio::io_context& io, const char* on, uint16_t port = 0)
      : acceptor(io, tcp::endpoint(make_address(on), port)) {}
  uint16_t port() const { return acceptor.local_endpoint().port(); }
  tcp::acceptor acceptor;
};

bool hasIPv6Loopback() {
  boost::asio::io_context io;
  boost::system::error_code ec;
  tcp::acceptor a(io);
  a.open(tcp::v6(), ec);
  if (!ec) {
    a.bind(tcp::endpoint(make_address("::1"), 0), ec);
  }
  return !ec;
}

class ServiceHealthTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.setAddresses({"127.0.0.1"}, error_)) << error_; }

  // The one endpoint a Service's health check listens on (127.0.0.1 only in these tests).
  tcp::endpoint at(const std::string& service) {
    std::vector<tcp::endpoint> eps = server_.listening(service);
    EXPECT_EQ(eps.size(), 1u) << service;
    return eps.empty() ? tcp::endpoint() : eps[0];
  }
  // GET `path` of the Service's health check and check everything kube-proxy's TestServer
  // checks (tHandler): code, body fields, the three headers.
  void expectAnswer(const std::string& service, int code, int endpoints, bool proxyHealthy,
                    const std::string& path = "/healthz") {
    SCOPED_TRACE(service + " " + path);
    HttpResult r = httpRequest(io_, at(service), path);
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.status, code) << r.body;
    size_t slash = service.find('/');
    EXPECT_EQ(r.body, serviceHealthBody(service.substr(0, slash), service.substr(slash + 1), endpoints, proxyHealthy));
    EXPECT_EQ(r.headers["Content-Type"], "application/json");
    EXPECT_EQ(r.headers["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(r.headers["X-Load-Balancing-Endpoint-Weight"], std::to_string(endpoints));
  }
  bool refused(const tcp::endpoint& ep) { return httpRequest(io_, ep, "/").refused; }

  boost::asio::io_context io_;
  bool proxyHealthy_ = true;
  int bindErrors_ = 0;
  ServiceHealthServer::Options options_{0ms};  // retries on syncs only, unless a test says so
  ServiceHealthServer server_{io_, [this] { return proxyHealthy_; }, [this] { ++bindErrors_; }, options_};
  std::string error_;
};

TEST(ServiceHealthBody, IsKubeProxysDedentedTemplateByteForByte) {
  EXPECT_EQ(serviceHealthBody("a", "b", 18, true),
            "{\n"
            "\t\"service\": {\n"
            "\t\t\"namespace\": \"a\",\n"
            "\t\t\"name\": \"b\"\n"
            "\t},\n"
            "\t\"localEndpoints\": 18,\n"
            "\t\"serviceProxyHealthy\": true\n"
            "}");
  EXPECT_THAT(serviceHealthBody("a", "b", 0, false),
              ::testing::EndsWith("\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": false\n}"));
}

// kube-proxy's hcHandler: 200 iff there are local endpoints and the proxy is healthy.
TEST_F(ServiceHealthTest, AnswersAsKubeProxysHandler) {
  struct Row {
    const char* name;
    int localEndpoints;
    bool proxyHealthy;
    int code;
  };
  const Row rows[] = {
      {"no local endpoints: 503, so the load balancer skips this node", 0, true, 503},
      {"local endpoints and a healthy proxy: 200 with the count as weight", 7, true, 200},
      {"kube-proxy: a temporarily unhealthy proxy is 503 despite local endpoints", 7, false, 503},
      {"no endpoints and an unhealthy proxy: 503", 0, false, 503},
  };
  server_.syncServices({{"ns/web", 0}});
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    server_.syncEndpoints({{"ns/web", row.localEndpoints}});
    proxyHealthy_ = row.proxyHealthy;
    expectAnswer("ns/web", row.code, row.localEndpoints, row.proxyHealthy);
  }
}

// kube-proxy's handler is the listener's only handler: every path and method answers.
TEST_F(ServiceHealthTest, AnswersAnyPathAsKubeProxy) {
  server_.syncServices({{"ns/web", 0}});
  server_.syncEndpoints({{"ns/web", 2}});
  for (const char* path : {"/", "/healthz", "/livez", "/any/path", "/x?y=z"}) {
    expectAnswer("ns/web", 200, 2, true, path);
  }
  HttpResult head = httpRequest(io_, at("ns/web"), "/", boost::beast::http::verb::head);
  ASSERT_EQ(head.error, "");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "") << "HEAD: headers only, as Go's net/http";
  EXPECT_EQ(head.headers["Content-Length"], std::to_string(serviceHealthBody("ns", "web", 2, true).size()));
  EXPECT_EQ(head.headers["X-Load-Balancing-Endpoint-Weight"], "2");
  std::string raw = testhttp::rawExchange(io_, at("ns/web"), "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(raw, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(raw, ::testing::EndsWith("\r\n\r\n")) << "nothing after the headers";
}

// The sequence of kube-proxy's TestServer, step by step.
TEST_F(ServiceHealthTest, SyncServicesAndSyncEndpointsAsKubeProxysTestServer) {
  server_.syncServices({});
  server_.syncEndpoints({});
  server_.syncEndpoints({{"a/b", 93}});  // unknown endpoints are dropped
  EXPECT_TRUE(server_.listening("a/b").empty());

  server_.syncServices({{"a/b", 0}});
  expectAnswer("a/b", 503, 0, true);  // a new Service has 0 endpoints
  server_.syncEndpoints({{"a/b", 18}});
  expectAnswer("a/b", 200, 18, true);
  server_.syncEndpoints({{"a/b", 0}});
  expectAnswer("a/b", 503, 0, true);
  server_.syncEndpoints({{"a/b", 11}});
  server_.syncEndpoints({});  // missing from the map = 0
  expectAnswer("a/b", 503, 0, true);
  server_.syncEndpoints({{"a/b", 18}});
  tcp::endpoint ab = at("a/b");
  server_.syncServices({});  // delete the Service: its listener closes
  EXPECT_TRUE(server_.listening("a/b").empty());
  EXPECT_TRUE(refused(ab));

  std::vector<uint16_t> ports = freePorts(io_, 5);
  uint16_t p1 = ports[0], p2 = ports[1], p3 = ports[2], p3b = ports[3], p4 = ports[4];
  server_.syncServices({{"a/b", p1}, {"c/d", p2}, {"e/f", p3}});
  for (const char* s : {"a/b", "c/d", "e/f"}) {
    expectAnswer(s, 503, 0, true);
  }
  EXPECT_EQ(at("a/b").port(), p1);
  server_.syncEndpoints({{"a/b", 9}, {"c/d", 3}, {"e/f", 7}});
  expectAnswer("a/b", 200, 9, true);
  expectAnswer("c/d", 200, 3, true);
  expectAnswer("e/f", 200, 7, true);

  // Remove a/b, leave c/d, change e/f's port, add g/h.
  server_.syncServices({{"c/d", p2}, {"e/f", p3b}, {"g/h", p4}});
  EXPECT_TRUE(server_.listening("a/b").empty());
  EXPECT_TRUE(refused(tcp::endpoint(make_address("127.0.0.1"), p1)));
  EXPECT_TRUE(refused(tcp::endpoint(make_address("127.0.0.1"), p3))) << "e/f's old port closed";
  expectAnswer("c/d", 200, 3, true);  // left alone, its count kept
  expectAnswer("e/f", 503, 0, true);  // reopened: 0 until the next syncEndpoints
  EXPECT_EQ(at("e/f").port(), p3b);
  expectAnswer("g/h", 503, 0, true);
  server_.syncEndpoints({{"a/b", 9}, {"c/d", 3}, {"e/f", 7}, {"g/h", 6}});
  expectAnswer("c/d", 200, 3, true);
  expectAnswer("e/f", 200, 7, true);
  expectAnswer("g/h", 200, 6, true);
  server_.syncEndpoints({{"e/f", 7}, {"g/h", 6}});  // c/d missing
  expectAnswer("c/d", 503, 0, true);

  proxyHealthy_ = false;  // a temporarily unhealthy proxy
  expectAnswer("c/d", 503, 0, false);
  expectAnswer("e/f", 503, 7, false);
  expectAnswer("g/h", 503, 6, false);
  proxyHealthy_ = true;
  expectAnswer("c/d", 503, 0, true);
  expectAnswer("e/f", 200, 7, true);
  expectAnswer("g/h", 200, 6, true);
  EXPECT_EQ(bindErrors_, 0);
}

// kube-proxy logs and reports a healthCheckNodePort it cannot listen on
// (FailedToStartServiceHealthcheck) and tries again on its next SyncServices.
TEST_F(ServiceHealthTest, PortInUseIsCountedAndRetriedOnTheNextSyncAsKubeProxy) {
  auto blocker = std::make_unique<Blocker>(io_, "127.0.0.1");
  uint16_t port = blocker->port();
  server_.syncServices({{"ns/web", port}, {"ns/other", 0}});
  EXPECT_TRUE(server_.listening("ns/web").empty());
  EXPECT_EQ(bindErrors_, 1);
  server_.syncEndpoints({{"ns/web", 4}, {"ns/other", 1}});
  expectAnswer("ns/other", 200, 1, true);  // the other Services are served

  server_.syncServices({{"ns/web", port}, {"ns/other", 0}});
  EXPECT_EQ(bindErrors_, 2) << "each attempt counts";
  EXPECT_TRUE(server_.listening("ns/web").empty());

  blocker.reset();  // the port's other user goes away
  server_.syncServices({{"ns/web", port}, {"ns/other", 0}});
  EXPECT_EQ(bindErrors_, 2);
  ASSERT_EQ(server_.listening("ns/web").size(), 1u);
  EXPECT_EQ(at("ns/web").port(), port);
  expectAnswer("ns/web", 200, 4, true);  // the count synced while it could not listen is kept
}

// Between syncs (the daemon may go an hour without one), a failed listener is retried
// every retryInterval.
TEST(ServiceHealthRetry, PortInUseIsRetriedBetweenSyncs) {
  boost::asio::io_context io;
  int bindErrors = 0;
  ServiceHealthServer server(io, [] { return true; }, [&] { ++bindErrors; }, ServiceHealthServer::Options{10ms});
  std::string error;
  ASSERT_TRUE(server.setAddresses({"127.0.0.1"}, error)) << error;
  auto blocker = std::make_unique<Blocker>(io, "127.0.0.1");
  uint16_t port = blocker->port();
  server.syncServices({{"ns/web", port}});
  ASSERT_TRUE(testhttp::runUntil(io, [&] { return bindErrors >= 3; }, 5s)) << "retried every 10 ms";
  EXPECT_TRUE(server.listening("ns/web").empty());
  blocker.reset();
  ASSERT_TRUE(testhttp::runUntil(io, [&] { return !server.listening("ns/web").empty(); }, 5s))
      << "opened by a retry, with no sync";
  int errors = bindErrors;
  server.syncEndpoints({{"ns/web", 1}});
  HttpResult r = httpRequest(io, tcp::endpoint(make_address("127.0.0.1"), port), "/");
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  testhttp::runUntil(io, [] { return false; }, 50ms);  // no retry left armed
  EXPECT_EQ(bindErrors, errors);
}

// kube-proxy listens on each of the node's nodePortAddresses, the same port on each.
TEST(ServiceHealthAddresses, ListensOnEveryAddressAndFollowsChanges) {
  if (!hasIPv6Loopback()) {
    GTEST_SKIP() << "no ::1 on this host";
  }
  boost::asio::io_context io;
  int bindErrors = 0;
  ServiceHealthServer server(io, [] { return true; }, [&] { ++bindErrors; }, ServiceHealthServer::Options{0ms});
  std::string error;
  ASSERT_TRUE(server.setAddresses({"127.0.0.1", "::1", "127.0.0.1"}, error)) << error;
  uint16_t port = freePort(io);
  server.syncServices({{"ns/web", port}});
  server.syncEndpoints({{"ns/web", 3}});
  tcp::endpoint v4(make_address("127.0.0.1"), port), v6(make_address("::1"), port);
  EXPECT_THAT(server.listening("ns/web"), ::testing::UnorderedElementsAre(v4, v6)) << "duplicates collapse";
  for (const tcp::endpoint& ep : {v4, v6}) {
    HttpResult r = httpRequest(io, ep, "/");
    EXPECT_EQ(r.status, 200) << ep << ": " << r.error;
    EXPECT_EQ(r.body, serviceHealthBody("ns", "web", 3, true));
  }

  // The node's addresses change: the listener on 127.0.0.1 closes, ::1's stays, the
  // Service keeps its count.
  ASSERT_TRUE(server.setAddresses({"::1"}, error)) << error;
  EXPECT_THAT(server.listening("ns/web"), ::testing::ElementsAre(v6));
  EXPECT_TRUE(httpRequest(io, v4, "/").refused);
  EXPECT_EQ(httpRequest(io, v6, "/").status, 200);
  ASSERT_TRUE(server.setAddresses({"127.0.0.1"}, error)) << error;
  EXPECT_THAT(server.listening("ns/web"), ::testing::ElementsAre(v4));
  EXPECT_TRUE(httpRequest(io, v6, "/").refused);
  HttpResult r = httpRequest(io, v4, "/");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, serviceHealthBody("ns", "web", 3, true));

  // A bad address rejects the call, names every bad entry, and changes nothing.
  EXPECT_FALSE(server.setAddresses({"10.0.0.300", "::1", "eth0"}, error));
  EXPECT_EQ(error,
            "health check addresses[0]: \"10.0.0.300\" is not an IP address; "
            "health check addresses[2]: \"eth0\" is not an IP address");
  EXPECT_THAT(server.listening("ns/web"), ::testing::ElementsAre(v4));
  EXPECT_EQ(bindErrors, 0);
}

// One address failing does not take the Service's other addresses down (kube-proxy closes
// them all and retries; switchyard keeps serving where it can, docs/operations.md).
TEST(ServiceHealthAddresses, OtherAddressesServeWhileOneCannotListen) {
  if (!hasIPv6Loopback()) {
    GTEST_SKIP() << "no ::1 on this host";
  }
  boost::asio::io_context io;
  int bindErrors = 0;
  ServiceHealthServer server(io, [] { return true; }, [&] { ++bindErrors; }, ServiceHealthServer::Options{0ms});
  std::string error;
  ASSERT_TRUE(server.setAddresses({"127.0.0.1", "::1"}, error)) << error;
  auto blocker = std::make_unique<Blocker>(io, "::1");
  uint16_t port = blocker->port();
  server.syncServices({{"ns/web", port}});
  server.syncEndpoints({{"ns/web", 1}});
  EXPECT_EQ(bindErrors, 1);
  tcp::endpoint v4(make_address("127.0.0.1"), port), v6(make_address("::1"), port);
  EXPECT_THAT(server.listening("ns/web"), ::testing::ElementsAre(v4));
  EXPECT_EQ(httpRequest(io, v4, "/").status, 200);
  blocker.reset();
  server.syncServices({{"ns/web", port}});
  EXPECT_THAT(server.listening("ns/web"), ::testing::UnorderedElementsAre(v4, v6));
  EXPECT_EQ(httpRequest(io, v6, "/").status, 200);
  EXPECT_EQ(bindErrors, 1);
}

// Empty nodePortAddresses: all addresses, as kube-proxy's 0.0.0.0 (one dual-stack socket
// in Go): here 0.0.0.0 and an IPv6-only [::] on the same port. Pure, so the test binds
// nothing beyond loopback.
TEST(ServiceHealthAddresses, EmptyMeansEveryIPv4AndIPv6AddressAsKubeProxy) {
  address any4 = boost::asio::ip::address_v4::any(), any6 = boost::asio::ip::address_v6::any();
  EXPECT_THAT(healthCheckBindAddresses({}, true), ::testing::ElementsAre(any4, any6));
  EXPECT_THAT(healthCheckBindAddresses({}, false), ::testing::ElementsAre(any4)) << "a host without IPv6";
  std::vector<address> node = {make_address("192.0.2.10"), make_address("2001:db8::10")};
  EXPECT_EQ(healthCheckBindAddresses(node, true), node);

  EXPECT_TRUE(healthCheckV6Only(any6, {any4, any6})) << "[::] beside 0.0.0.0 leaves IPv4 to it";
  EXPECT_FALSE(healthCheckV6Only(any6, {any6})) << "[::] alone: the kernel's default";
  EXPECT_FALSE(healthCheckV6Only(make_address("2001:db8::10"), {any4, make_address("2001:db8::10")}));
  EXPECT_FALSE(healthCheckV6Only(any4, {any4, any6}));
}

// A request that arrives as its Service closes is not answered (kube-proxy's Close() ends
// the connections of the closed server), rather than answered from a gone Service.
TEST_F(ServiceHealthTest, ARequestToAClosedHealthCheckIsNotAnswered) {
  server_.syncServices({{"ns/web", 0}});
  server_.syncEndpoints({{"ns/web", 1}});
  tcp::endpoint ep = at("ns/web");
  testhttp::HttpTestConnection c(io_, ep);
  ASSERT_TRUE(c.connected());
  testhttp::runUntil(io_, [] { return false; }, 20ms);  // let the server accept it
  server_.syncServices({});
  HttpResult r = c.request("/");
  EXPECT_NE(r.error, "") << "answered " << r.status << ": " << r.body;
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(refused(ep));
}

TEST(ServiceHealthLifetime, DestroyedWithAConnectionInFlight) {
  boost::asio::io_context io;
  tcp::endpoint ep;
  std::unique_ptr<testhttp::HttpTestConnection> c;
  {
    ServiceHealthServer server(io, [] { return true; }, nullptr, ServiceHealthServer::Options{10ms});
    std::string error;
    ASSERT_TRUE(server.setAddresses({"127.0.0.1"}, error)) << error;
    server.syncServices({{"ns/web", 0}});
    ep = server.listening("ns/web").at(0);
    c = std::make_unique<testhttp::HttpTestConnection>(io, ep);
    testhttp::runUntil(io, [] { return false; }, 20ms);
  }
  HttpResult r = c->request("/");
  EXPECT_NE(r.error, "");
  EXPECT_TRUE(httpRequest(io, ep, "/").refused);
}

// serviceProxyHealthy is the daemon's HealthState::healthy(): a fresh node before its
// first sync says false (and 503) even where endpoints are counted.
TEST(ServiceHealthProxyHealth, FollowsTheDataplanesHealth) {
  boost::asio::io_context io;
  HealthState state(60s);
  ServiceHealthServer server(
      io, [&] { return state.healthy(HealthState::Clock::now()); }, nullptr, ServiceHealthServer::Options{0ms});
  std::string error;
  ASSERT_TRUE(server.setAddresses({"127.0.0.1"}, error)) << error;
  server.syncServices({{"ns/web", 0}});
  server.syncEndpoints({{"ns/web", 2}});
  tcp::endpoint ep = server.listening("ns/web").at(0);
  HttpResult r = httpRequest(io, ep, "/");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, serviceHealthBody("ns", "web", 2, false));
  state.updated(HealthState::Clock::now());
  r = httpRequest(io, ep, "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, serviceHealthBody("ns", "web", 2, true));
  // A change late by the health timeout makes the proxy unhealthy (kube-proxy).
  state.queued(HealthState::Clock::now() - 61s);
  EXPECT_EQ(httpRequest(io, ep, "/").status, 503);
}

}  // namespace
}  // namespace switchyard::metrics
