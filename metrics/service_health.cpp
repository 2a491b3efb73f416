#include "metrics/service_health.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "logging/log.h"

namespace switchyard::metrics {

using boost::asio::ip::address;
using boost::asio::ip::tcp;

struct ServiceHealthServer::Service {
  struct Listener {
    std::unique_ptr<HttpListener> http;
    bool v6Only = false;
  };
  std::string namespace_;
  std::string name;
  uint16_t port = 0;
  int localEndpoints = 0;
  std::map<address, Listener> listeners;
  // The last error per address that failed, so that a retry failing the same way logs
  // at Debug rather than repeating the warning every few seconds.
  std::map<address, std::string> failing;
};

namespace {

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string hostPort(const address& a, uint16_t port) {
  return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(port) : a.to_string() + ":" + std::to_string(port);
}

}  // namespace

std::vector<address> healthCheckBindAddresses(const std::vector<address>& configured, bool ipv6Available) {
  if (!configured.empty()) {
    return configured;
  }
  // kube-proxy listens on Go's "0.0.0.0", which Go opens as one dual-stack socket; two
  // sockets do the same and still serve IPv4 where IPv6 is disabled.
  std::vector<address> all = {boost::asio::ip::address_v4::any()};
  if (ipv6Available) {
    all.push_back(boost::asio::ip::address_v6::any());
  }
  return all;
}

bool healthCheckV6Only(const address& a, const std::vector<address>& bindAddresses) {
  if (!a.is_v6() || !a.is_unspecified()) {
    return false;
  }
  return std::any_of(bindAddresses.begin(), bindAddresses.end(),
                     [](const address& t) { return t.is_v4() && t.is_unspecified(); });
}

std::string serviceHealthBody(const std::string& namespace_, const std::string& name, int localEndpoints,
                              bool proxyHealthy) {
  return "{\n\t\"service\": {\n\t\t\"namespace\": " + jsonString(namespace_) + ",\n\t\t\"name\": " + jsonString(name) +
         "\n\t},\n\t\"localEndpoints\": " + std::to_string(localEndpoints) +
         ",\n\t\"serviceProxyHealthy\": " + (proxyHealthy ? "true" : "false") + "\n}";
}

ServiceHealthServer::ServiceHealthServer(boost::asio::io_context& io, ProxyHealthy proxyHealthy,
                                         BindErrorObserver onBindError, Options options)
    : io_(io), proxyHealthy_(std::move(proxyHealthy)), onBindError_(std::move(onBindError)), options_(options),
      retry_(io), alive_(std::make_shared<int>(0)) {}

ServiceHealthServer::~ServiceHealthServer() {
  retry_.cancel();
  services_.clear();  // closes every listener before the callbacks they use go
}

bool ServiceHealthServer::setAddresses(const std::vector<std::string>& ips, std::string& error) {
  std::set<address> parsed;
  std::string errors;
  for (size_t i = 0; i < ips.size(); ++i) {
    boost::system::error_code ec;
    address a = boost::asio::ip::make_address(ips[i], ec);
    if (ec) {
      errors += (errors.empty() ? "" : "; ") + std::string("health check addresses[") + std::to_string(i) + "]: \"" +
                ips[i] + "\" is not an IP address";
      continue;
    }
    parsed.insert(a);
  }
  if (!errors.empty()) {
    error = errors;
    return false;
  }
  std::vector<address> next(parsed.begin(), parsed.end());
  if (next == addresses_) {
    return true;
  }
  addresses_ = std::move(next);
  // Close first: moving from 0.0.0.0 to a node address on the same port must not collide
  // with the listener it replaces.
  std::vector<address> targets = healthCheckBindAddresses(addresses_, !ipv6Unavailable_);
  for (auto& [key, service] : services_) {
    for (auto it = service->listeners.begin(); it != service->listeners.end();) {
      bool keep = std::find(targets.begin(), targets.end(), it->first) != targets.end() &&
                  it->second.v6Only == healthCheckV6Only(it->first, targets);
      it = keep ? std::next(it) : service->listeners.erase(it);
    }
    service->failing.clear();
  }
  openAllMissing();
  return true;
}

void ServiceHealthServer::syncServices(const std::map<std::string, uint16_t>& services) {
  for (auto it = services_.begin(); it != services_.end();) {
    auto want = services.find(it->first);
    if (want == services.end() || want->second != it->second->port) {
      SY_LOG(Info) << "Service " << it->first << ": closing health check on port " << it->second->port;
      it = services_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, port] : services) {
    std::shared_ptr<Service>& service = services_[key];
    if (service) {
      continue;
    }
    service = std::make_shared<Service>();
    size_t slash = key.find('/');
    service->namespace_ = slash == std::string::npos ? std::string() : key.substr(0, slash);
    service->name = slash == std::string::npos ? key : key.substr(slash + 1);
    service->port = port;
    SY_LOG(Info) << "Service " << key << ": opening health check on port " << port;
  }
  openAllMissing();
}

void ServiceHealthServer::syncEndpoints(const std::map<std::string, int>& localEndpoints) {
  for (auto& [key, service] : services_) {
    auto it = localEndpoints.find(key);
    service->localEndpoints = it == localEndpoints.end() ? 0 : it->second;
  }
}

std::vector<tcp::endpoint> ServiceHealthServer::listening(const std::string& service) const {
  std::vector<tcp::endpoint> out;
  auto it = services_.find(service);
  if (it != services_.end()) {
    for (const auto& [addr, listener] : it->second->listeners) {
      out.push_back(listener.http->localEndpoint());
    }
  }
  return out;
}

bool ServiceHealthServer::openMissing(const std::string& key, Service& service) {
  bool complete = true;
  std::vector<address> targets = healthCheckBindAddresses(addresses_, !ipv6Unavailable_);
  for (const address& addr : targets) {
    if (service.listeners.count(addr) != 0) {
      continue;
    }
    std::weak_ptr<Service> weak = services_.at(key);
    const ProxyHealthy* proxyHealthy = &proxyHealthy_;
    // A Service alive means this server is: it owns the Services, on one thread.
    auto handler = [weak, proxyHealthy, key](const std::string&) -> std::optional<HttpReply> {
      std::shared_ptr<Service> s = weak.lock();
      if (!s) {
        SY_LOG(Debug) << "Service " << key << ": request for a closed health check, not answered";
        return std::nullopt;
      }
      bool healthy = *proxyHealthy && (*proxyHealthy)();
      HttpReply reply;
      reply.status = s->localEndpoints != 0 && healthy ? 200 : 503;
      reply.headers = {{"X-Content-Type-Options", "nosniff"},
                       {"X-Load-Balancing-Endpoint-Weight", std::to_string(s->localEndpoints)}};
      reply.body = serviceHealthBody(s->namespace_, s->name, s->localEndpoints, healthy);
      return reply;
    };
    Service::Listener listener{std::make_unique<HttpListener>(io_, handler), healthCheckV6Only(addr, targets)};
    boost::system::error_code ec;
    if (listener.http->listen(tcp::endpoint(addr, service.port), listener.v6Only, ec)) {
      if (service.failing.erase(addr) != 0) {
        SY_LOG(Info) << "Service " << key << ": health check listens on " << hostPort(addr, service.port)
                     << " now";
      }
      service.listeners.emplace(addr, std::move(listener));
      continue;
    }
    if (addresses_.empty() && addr.is_v6() && ec == boost::asio::error::address_family_not_supported) {
      // The implicit [::] on a host without IPv6: nothing to serve there.
      SY_LOG(Info) << "no IPv6 on this host: health checks listen on 0.0.0.0 only";
      ipv6Unavailable_ = true;
      continue;
    }
    complete = false;
    if (onBindError_) {
      onBindError_();
    }
    std::string message = ec.message();
    auto [it, first] = service.failing.emplace(addr, message);
    bool repeat = !first && it->second == message;
    it->second = message;
    SY_LOG_AT(repeat ? logging::Level::Debug : logging::Level::Warning)
        << "Service " << key << ": healthCheckNodePort " << service.port << " on " << hostPort(addr, service.port)
        << ": " << message << "; retrying";
  }
  return complete;
}

void ServiceHealthServer::openAllMissing() {
  bool complete = true;
  for (auto& [key, service] : services_) {
    complete = openMissing(key, *service) && complete;
  }
  if (!complete) {
    armRetry();
  }
}

void ServiceHealthServer::armRetry() {
  if (retryArmed_ || options_.retryInterval.count() <= 0) {
    return;
  }
  retryArmed_ = true;
  retry_.expires_after(options_.retryInterval);
  std::weak_ptr<int> alive = alive_;
  retry_.async_wait([this, alive](const boost::system::error_code& ec) {
    // A wait that completed just before the destructor cancelled it still runs: look
    // at the server only while it exists.
    if (alive.expired()) {
      return;
    }
    retryArmed_ = false;
    if (!ec) {
      openAllMissing();
    }
  });
}

}  // namespace switchyard::metrics
