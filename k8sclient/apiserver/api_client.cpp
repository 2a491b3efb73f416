#include "k8sclient/apiserver/api_client.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace switchyard::k8s::apiserver {

ApiClient::ApiClient(boost::asio::io_context& io, ConnectionConfig config, double qps, int burst,
                     ClientMetrics& metrics)
    : io_(io), config_(std::move(config)), token_(config_.token, config_.tokenFile),
      bucket_(qps, burst), metrics_(metrics) {}

std::unique_ptr<ApiConnection> ApiClient::newConnection() {
  return std::make_unique<ApiConnection>(io_, config_, token_);
}

void ApiClient::whenAllowed(std::function<void()> fn) {
  auto wait = bucket_.reserve(TokenBucket::Clock::now());
  if (wait.count() <= 0) {
    boost::asio::post(io_, std::move(fn));
    return;
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, wait);
  timer->async_wait([timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec) {
      fn();
    }
  });
}

std::string urlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace switchyard::k8s::apiserver
