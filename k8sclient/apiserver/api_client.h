// What the reflectors of one source share: the connection settings, the bearer token
// (re-read when its file rotates), the request rate limit and the metrics.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>

#include "k8sclient/apiserver/bearer_token.h"
#include "k8sclient/apiserver/client_metrics.h"
#include "k8sclient/apiserver/connection_config.h"
#include "k8sclient/apiserver/http_client.h"
#include "k8sclient/apiserver/rate_limit.h"

namespace switchyard::k8s::apiserver {

class ApiClient {
 public:
  ApiClient(boost::asio::io_context& io, ConnectionConfig config, double qps, int burst,
            ClientMetrics& metrics);

  boost::asio::io_context& io() { return io_; }
  const ConnectionConfig& config() const { return config_; }
  ClientMetrics& metrics() { return metrics_; }

  // A new connection; it connects on its first request.
  std::unique_ptr<ApiConnection> newConnection();

  // Runs fn when the token bucket (qps/burst) lets one more request out: at once, or
  // after a wait. fn must guard itself against having been cancelled meanwhile.
  void whenAllowed(std::function<void()> fn);

 private:
  boost::asio::io_context& io_;
  ConnectionConfig config_;
  BearerToken token_;
  TokenBucket bucket_;
  ClientMetrics& metrics_;
};

// "a=b,!c" -> "a%3Db%2C%21c": a query parameter value.
std::string urlEncode(const std::string& s);

}  // namespace switchyard::k8s::apiserver
