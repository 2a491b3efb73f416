// The per-Service health checks of externalTrafficPolicy: Local Services, as kube-proxy's
// pkg/proxy/healthcheck/service_health.go: one HTTP listener per healthCheckNodePort on
// each of the node's nodePortAddresses. Any path answers
//   {"service": {"namespace": ..., "name": ...}, "localEndpoints": N, "serviceProxyHealthy": B}
// with Content-Type application/json, X-Content-Type-Options nosniff and
// X-Load-Balancing-Endpoint-Weight: N; 200 iff N > 0 and the proxy is healthy, else 503,
// so that a cloud load balancer sends a Service's external traffic only to nodes that
// run one of its ready endpoints.
//
// Inputs are narrow, as kube-proxy's: service -> port (syncServices) and service -> local
// endpoints (syncEndpoints), keyed "namespace/name". Listeners open, close and rebind
// incrementally. A listener that cannot be opened (the port is in use) is logged with the
// Service and port, counted (the onBindError callback; the daemon feeds
// switchyard_service_health_bind_errors_total) and retried on every syncServices and
// every retryInterval until it opens; the other addresses of the Service are served
// meanwhile (kube-proxy closes them and retries the whole Service on its next sync).
//
// All calls on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "metrics/http_listener.h"

namespace switchyard::metrics {

// kube-proxy's body, byte for byte (its dedented template: tab-indented, no final newline).
std::string serviceHealthBody(const std::string& namespace_, const std::string& name, int localEndpoints,
                              bool proxyHealthy);

// The addresses the listeners bind: `configured` (nodePortAddresses), or when it is empty
// 0.0.0.0 and, on a host with IPv6, [::].
std::vector<boost::asio::ip::address> healthCheckBindAddresses(const std::vector<boost::asio::ip::address>& configured,
                                                               bool ipv6Available);
// Whether the listener on `a` must be IPv6-only: an IPv6 wildcard beside an IPv4 one
// (the two share the port); otherwise the kernel's default.
bool healthCheckV6Only(const boost::asio::ip::address& a, const std::vector<boost::asio::ip::address>& bindAddresses);

class ServiceHealthServer {
 public:
  // Whether the proxy is healthy (serviceProxyHealthy); asked on every request.
  using ProxyHealthy = std::function<bool()>;
  // One listener that could not be opened (each attempt).
  using BindErrorObserver = std::function<void()>;

  struct Options {
    // How often listeners that failed to open are retried between syncs (0: only on syncs).
    std::chrono::milliseconds retryInterval{5000};
  };

  ServiceHealthServer(boost::asio::io_context& io, ProxyHealthy proxyHealthy, BindErrorObserver onBindError,
                      Options options);
  ServiceHealthServer(boost::asio::io_context& io, ProxyHealthy proxyHealthy, BindErrorObserver onBindError)
      : ServiceHealthServer(io, std::move(proxyHealthy), std::move(onBindError), Options{}) {}
  ~ServiceHealthServer();
  ServiceHealthServer(const ServiceHealthServer&) = delete;
  ServiceHealthServer& operator=(const ServiceHealthServer&) = delete;

  // The addresses every listener binds: this node's nodePortAddresses. Empty (the
  // default) means all: 0.0.0.0 and [::] (IPv6-only, so that the two share the port;
  // skipped on a host without IPv6). Open listeners move: those on addresses no longer
  // listed close first, then the new addresses open. An address that does not parse
  // rejects the whole call (false, every bad entry named in `error`) and changes nothing.
  bool setAddresses(const std::vector<std::string>& ips, std::string& error);

  // The Services that need a health check now, "namespace/name" -> healthCheckNodePort:
  // new ones open, missing ones close, a changed port reopens (with 0 local endpoints
  // until the next syncEndpoints, as kube-proxy), unchanged ones are left alone. Port 0
  // asks the kernel for a port (tests; listening() says which).
  void syncServices(const std::map<std::string, uint16_t>& services);
  // "namespace/name" -> this node's ready endpoints of the Service. Services not listed
  // have 0; entries for Services without a health check are dropped.
  void syncEndpoints(const std::map<std::string, int>& localEndpoints);

  // Where a Service's health check listens now (bound address and port); empty when the
  // Service has none or none could be opened.
  std::vector<boost::asio::ip::tcp::endpoint> listening(const std::string& service) const;

 private:
  struct Service;

  // Opens the listeners `service` lacks on the current addresses; true when none is missing.
  bool openMissing(const std::string& key, Service& service);
  void openAllMissing();
  void armRetry();

  boost::asio::io_context& io_;
  ProxyHealthy proxyHealthy_;
  BindErrorObserver onBindError_;
  Options options_;
  std::vector<boost::asio::ip::address> addresses_;  // empty = all
  bool ipv6Unavailable_ = false;                      // [::] failed with EAFNOSUPPORT
  // shared_ptr: each listener's handler holds a weak_ptr, so a request that arrives as
  // its Service closes finds it gone and is not answered.
  std::map<std::string, std::shared_ptr<Service>> services_;
  boost::asio::steady_timer retry_;
  bool retryArmed_ = false;
  std::shared_ptr<int> alive_;  // expires with the server: a late timer completion checks it
};

}  // namespace switchyard::metrics
