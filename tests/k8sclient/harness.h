// A fake API server with a test CA and token, an ApiServerSource pointed at it, and a
// handler that records what the source delivers. Everything binds port 0, and every wait
// is bounded.
#pragma once

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "k8sclient/apiserver/apiserver_source.h"
#include "logging/log.h"
#include "tests/fake_apiserver/fake_apiserver.h"
#include "tests/fake_apiserver/test_pki.h"

namespace switchyard::k8s::apiserver::testing {

using namespace std::chrono_literals;

inline std::string readFixture(const std::string& name) {
  std::ifstream in(std::string(SY_FIXTURES) + "/k8s/" + name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Records events as "+Service shop/web@105", "-EndpointSlice shop/web-x@110", "synced",
// and keeps the current picture as the consumer would.
class RecordingHandler : public ServiceEventHandler {
 public:
  void onServiceUpsert(const Service& s) override {
    events.push_back("+Service " + s.metadata.key() + "@" + s.metadata.resourceVersion);
    services[s.metadata.key()] = s;
  }
  void onServiceDelete(const Service& s) override {
    events.push_back("-Service " + s.metadata.key());
    services.erase(s.metadata.key());
  }
  void onEndpointSliceUpsert(const EndpointSlice& s) override {
    events.push_back("+EndpointSlice " + s.metadata.key() + "@" + s.metadata.resourceVersion);
    slices[s.metadata.key()] = s;
  }
  void onEndpointSliceDelete(const EndpointSlice& s) override {
    events.push_back("-EndpointSlice " + s.metadata.key());
    slices.erase(s.metadata.key());
  }
  void onPodUpsert(const Pod& p) override {
    events.push_back("+Pod " + p.metadata.key() + " " + (p.podIPs.empty() ? "-" : p.podIPs[0]));
  }
  void onPodDelete(const Pod& p) override { events.push_back("-Pod " + p.metadata.key()); }
  void onNamespaceUpsert(const Namespace& n) override { events.push_back("+Namespace " + n.metadata.name); }
  void onNamespaceDelete(const Namespace& n) override { events.push_back("-Namespace " + n.metadata.name); }
  void onNetworkPolicyUpsert(const NetworkPolicy& p) override {
    events.push_back("+NetworkPolicy " + p.metadata.key());
  }
  void onNetworkPolicyDelete(const NetworkPolicy& p) override {
    events.push_back("-NetworkPolicy " + p.metadata.key());
  }
  void onSynced() override {
    events.push_back("synced");
    ++syncs;
  }

  // Events after index `from`, without the "@rv" suffix.
  std::vector<std::string> since(size_t from) const {
    std::vector<std::string> out;
    for (size_t i = from; i < events.size(); ++i) {
      out.push_back(events[i].substr(0, events[i].find('@')));
    }
    return out;
  }

  std::vector<std::string> events;
  std::map<std::string, Service> services;
  std::map<std::string, EndpointSlice> slices;
  int syncs = 0;
};

inline std::string serviceJson(const std::string& ns, const std::string& name, int port,
                               const std::string& extraLabels = "") {
  return R"({"kind":"Service","apiVersion":"v1","metadata":{"name":")" + name +
         R"(","namespace":")" + ns + R"(","labels":{"app":")" + name + "\"" + extraLabels +
         R"(}},"spec":{"ports":[{"name":"http","protocol":"TCP","port":)" + std::to_string(port) +
         R"(,"targetPort":8080}]}})";
}

inline std::string sliceJson(const std::string& ns, const std::string& name,
                             const std::string& service, const std::string& ip) {
  return R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":")" +
         name + R"(","namespace":")" + ns + R"(","labels":{"kubernetes.io/service-name":")" +
         service + R"("}},"addressType":"IPv4","endpoints":[{"addresses":[")" + ip +
         R"("],"conditions":{"ready":true}}],"ports":[{"name":"http","protocol":"TCP","port":8080}]})";
}

class SourceTest : public ::testing::Test {
 protected:
  static constexpr const char* kToken = "test-token-0123456789";

  void SetUp() override { logging::setLevel(logging::Level::Error); }

  void TearDown() override {
    if (source) {
      source->stop();
    }
    source.reset();
    if (server) {
      server->stop();
    }
  }

  // Starts the fake with the fixtures of tests/fixtures/k8s loaded.
  void startServer(bool fixtures = true, fake::FakeApiServerOptions o = {}) {
    o.certPem = pki.serverCertPem;
    o.keyPem = pki.serverKeyPem;
    o.clientCaPem = pki.caCertPem;
    if (o.token.empty()) {
      o.token = kToken;
    }
    server = std::make_unique<fake::FakeApiServer>(o);
    std::string error;
    ASSERT_TRUE(server->start(error)) << error;
    if (fixtures) {
      for (const char* f : {"services.json", "endpointslices.json", "node.json"}) {
        std::vector<std::string> errors;
        std::string text = readFixture(f);
        server->withState([&](fake::FakeState& s) { s.applyAll(text, errors); });
        ASSERT_TRUE(errors.empty()) << f << ": " << errors.front();
      }
    }
  }

  ConnectionConfig connection() const {
    ConnectionConfig c;
    std::string error;
    EXPECT_TRUE(parseServerUrl(server->url(), c.server, error)) << error;
    c.caPem = pki.caCertPem;
    c.token = kToken;
    c.origin = "test";
    return c;
  }

  // Fast retries and a fixed jitter: the tests run in milliseconds and repeat exactly.
  static ApiServerSourceOptions fastOptions() {
    ApiServerSourceOptions o;
    o.reflector.backoff = BackoffPolicy{50ms, 400ms, 2.0, 1.0};
    o.reflector.random01 = [] { return 0.0; };
    o.reflector.minWatchTimeout = 60s;
    o.reflector.pageSize = 500;
    return o;
  }

  void startSource(ConnectionConfig c, ApiServerSourceOptions o = fastOptions()) {
    source = std::make_unique<ApiServerSource>(
        io, std::move(c), handler, [this](const SourceProblem& p) { problems.push_back(p); },
        registry, std::move(o));
    source->start();
  }

  // Runs the client's io_context until pred holds; false (and a test failure) on timeout.
  bool runUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s,
                const std::string& what = "condition") {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "timed out waiting for " << what;
        return false;
      }
      io.restart();
      io.run_for(5ms);
    }
    return true;
  }

  // Runs the io_context for a while (to show that something does NOT happen).
  void runFor(std::chrono::milliseconds d) {
    auto deadline = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(5ms);
    }
  }

  bool hasProblem(const std::string& needle) const {
    for (const auto& p : problems) {
      if (p.message.find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  // When the server read each request whose log line starts with prefix, in order.
  std::vector<std::chrono::steady_clock::time_point> requestTimes(const std::string& prefix) {
    std::vector<std::chrono::steady_clock::time_point> out;
    for (const auto& r : server->timedRequestLog()) {
      if (r.line.rfind(prefix, 0) == 0) {
        out.push_back(r.at);
      }
    }
    return out;
  }

  // The time between consecutive requests that start with prefix, in milliseconds.
  std::vector<double> gapsMs(const std::string& prefix) {
    auto times = requestTimes(prefix);
    std::vector<double> out;
    for (size_t i = 1; i < times.size(); ++i) {
      out.push_back(std::chrono::duration<double, std::milli>(times[i] - times[i - 1]).count());
    }
    return out;
  }

  std::string problemList() const {
    std::string s;
    for (const auto& p : problems) {
      s += "  " + p.message + "\n";
    }
    return s;
  }

  fake::TestPki pki = fake::generateTestPki();
  std::unique_ptr<fake::FakeApiServer> server;
  boost::asio::io_context io;
  prometheus::Registry registry;
  RecordingHandler handler;
  std::vector<SourceProblem> problems;
  std::unique_ptr<ApiServerSource> source;
};

}  // namespace switchyard::k8s::apiserver::testing
