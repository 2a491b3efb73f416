// The only translation unit of the client that includes Boost.Beast and Asio's SSL.
#include "k8sclient/apiserver/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <limits>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace switchyard::k8s::apiserver {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

const char* httpErrorKindName(HttpError::Kind k) {
  switch (k) {
    case HttpError::Kind::None: return "none";
    case HttpError::Kind::Config: return "config";
    case HttpError::Kind::Resolve: return "resolve";
    case HttpError::Kind::Connect: return "connect";
    case HttpError::Kind::Tls: return "tls";
    case HttpError::Kind::Timeout: return "timeout";
    case HttpError::Kind::Closed: return "closed";
    case HttpError::Kind::Protocol: return "protocol";
  }
  return "?";
}

namespace {

bool isIpAddress(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

// "120" -> 120s. Only the delta-seconds form: the API server never sends an HTTP-date.
std::optional<std::chrono::seconds> parseRetryAfter(std::string_view v) {
  if (v.empty() || v.size() > 9) {
    return std::nullopt;
  }
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    n = n * 10 + (c - '0');
  }
  return std::chrono::seconds(n);
}

// A kept-alive connection the server closed while idle fails like this on first use.
bool staleConnectionError(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

}  // namespace

struct ApiConnection::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::io_context& ioc, const ConnectionConfig& c, BearerToken& t)
      : io(ioc), config(c), token(t), resolver(ioc) {}

  net::io_context& io;
  ConnectionConfig config;
  BearerToken& token;
  tcp::resolver resolver;
  std::unique_ptr<ssl::context> tlsContext;

  // One TCP (+TLS) connection and what its in-flight operations use. Every completion
  // handler holds a reference, so a connection dropped by close() stays valid until its
  // cancelled operations have finished.
  struct Conn {
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    std::unique_ptr<beast::tcp_stream> plain;
    beast::flat_buffer buffer;
    http::request<http::empty_body> req;
    std::unique_ptr<http::response_parser<http::buffer_body>> parser;
    std::array<char, 16384> body{};

    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  };
  std::shared_ptr<Conn> conn;  // null when not connected
  bool connected = false;      // conn has completed connect (and handshake)
  size_t opened = 0;
  // Bumped by close() and by each new request: completions of older work are dropped.
  uint64_t generation = 0;
  Handlers handlers;
  HttpRequest request;
  Clock::time_point deadline;
  bool reused = false;   // this attempt went out on a kept-alive connection
  bool retried = false;  // the stale-connection retry was spent
  std::optional<std::chrono::seconds> retryAfter;  // of the current response

  bool secure() const { return config.server.scheme == "https"; }

  beast::tcp_stream& lowest() { return conn->lowest(); }

  template <typename F>
  void withStream(F&& f) {
    if (conn->tls) {
      f(*conn->tls);
    } else {
      f(*conn->plain);
    }
  }

  std::string where() const { return config.server.str(); }

  void start(const HttpRequest& r, Handlers h) {
    ++generation;
    request = r;
    handlers = std::move(h);
    deadline = Clock::now() + request.timeout;
    retried = false;
    retryAfter.reset();
    if (connected) {
      reused = true;
      writeRequest();
    } else {
      connect();
    }
  }

  void disconnect() {
    connected = false;
    if (conn) {
      beast::error_code ignored;
      conn->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn->lowest().close();
      conn.reset();
    }
  }

  void closeFromUser() {
    ++generation;
    resolver.cancel();
    disconnect();
    handlers = Handlers();
  }

  void fail(HttpError::Kind kind, const std::string& message) {
    disconnect();
    Handlers h = std::move(handlers);
    handlers = Handlers();
    if (h.onDone) {
      h.onDone(HttpError{kind, message});
    }
  }

  void failFromCode(HttpError::Kind kind, const char* step, const beast::error_code& ec) {
    if (ec == beast::error::timeout) {
      fail(HttpError::Kind::Timeout, std::string(step) + " " + where() + ": timed out");
      return;
    }
    fail(kind, std::string(step) + " " + where() + ": " + ec.message());
  }

  bool makeTlsContext(std::string& error) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (config.insecureSkipTlsVerify && !config.caPem.empty()) {
      // parseKubeconfig refuses this pair; a config built in code must not slip through.
      error = "specifying a root certificates file with the insecure flag is not allowed";
      return false;
    }
    if (config.insecureSkipTlsVerify) {
      ctx->set_verify_mode(ssl::verify_none);
    } else {
      ctx->set_verify_mode(ssl::verify_peer);
      if (config.caPem.empty()) {
        ctx->set_default_verify_paths(ec);
        if (ec) {
          error = "the system trust store cannot be loaded: " + ec.message();
          return false;
        }
      } else {
        ctx->add_certificate_authority(net::buffer(config.caPem), ec);
        if (ec) {
          error = "certificate-authority: not a usable PEM certificate: " + ec.message();
          return false;
        }
      }
    }
    if (!config.clientCertPem.empty()) {
      ctx->use_certificate_chain(net::buffer(config.clientCertPem), ec);
      if (ec) {
        error = "client-certificate: not a usable PEM certificate: " + ec.message();
        return false;
      }
      ctx->use_private_key(net::buffer(config.clientKeyPem), ssl::context::pem, ec);
      if (ec) {
        error = "client-key: not a usable PEM key for the client certificate: " + ec.message();
        return false;
      }
    }
    tlsContext = std::move(ctx);
    return true;
  }

  void connect() {
    reused = false;
    disconnect();
    if (secure() && !tlsContext) {
      std::string error;
      if (!makeTlsContext(error)) {
        fail(HttpError::Kind::Config, error);
        return;
      }
    }
    auto gen = generation;
    resolver.async_resolve(
        config.server.host, std::to_string(config.server.port),
        [self = shared_from_this(), c = conn, gen](const beast::error_code& ec,
                                         tcp::resolver::results_type results) {
          if (gen != self->generation) {
            return;
          }
          if (ec) {
            self->fail(HttpError::Kind::Resolve,
                       "resolving " + self->config.server.host + ": " + ec.message());
            return;
          }
          self->onResolved(results);
        });
  }

  void onResolved(const tcp::resolver::results_type& results) {
    conn = std::make_shared<Conn>();
    if (secure()) {
      conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, *tlsContext);
    } else {
      conn->plain = std::make_unique<beast::tcp_stream>(io);
    }
    lowest().expires_at(deadline);
    auto gen = generation;
    lowest().async_connect(
        results, [self = shared_from_this(), c = conn, gen](const beast::error_code& ec,
                                                  const tcp::endpoint&) {
          if (gen != self->generation) {
            return;
          }
          if (ec) {
            self->failFromCode(HttpError::Kind::Connect, "connecting to", ec);
            return;
          }
          ++self->opened;
          beast::error_code ignored;
          self->lowest().socket().set_option(tcp::no_delay(true), ignored);
          if (self->conn->tls) {
            self->handshake();
          } else {
            self->connected = true;
            self->writeRequest();
          }
        });
  }

  void handshake() {
    const std::string& name =
        config.tlsServerName.empty() ? config.server.host : config.tlsServerName;
    SSL* ssl = conn->tls->native_handle();
    if (!isIpAddress(name)) {
      SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI is for names only (RFC 6066)
    }
    if (!config.insecureSkipTlsVerify) {
      // OpenSSL checks the name (or IP SAN) during the handshake itself.
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (isIpAddress(name)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      } else {
        X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
      }
    }
    lowest().expires_at(deadline);
    auto gen = generation;
    conn->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this(), c = conn,
                                                    gen](const beast::error_code& ec) {
      if (gen != self->generation) {
        return;
      }
      if (ec) {
        std::string detail = ec.message();
        long verify = SSL_get_verify_result(self->conn->tls->native_handle());
        if (verify != X509_V_OK) {
          detail = "certificate verify failed: " +
                   std::string(X509_verify_cert_error_string(verify)) +
                   " (check certificate-authority and the server's name)";
        }
        if (ec == beast::error::timeout) {
          self->fail(HttpError::Kind::Timeout, "TLS handshake with " + self->where() + ": timed out");
        } else {
          self->fail(HttpError::Kind::Tls, "TLS handshake with " + self->where() + ": " + detail);
        }
        return;
      }
      self->connected = true;
      self->writeRequest();
    });
  }

  void writeRequest() {
    http::request<http::empty_body>& req = conn->req;
    req = {};
    req.method(http::verb::get);
    req.target(config.server.basePath + request.target);
    req.version(11);
    std::string host = config.server.host.find(':') != std::string::npos
                           ? "[" + config.server.host + "]"
                           : config.server.host;
    req.set(http::field::host, host + ":" + std::to_string(config.server.port));
    req.set(http::field::user_agent, "switchyard/" SY_VERSION);
    req.set(http::field::accept, request.accept);
    const std::string& bearer = token.current();
    if (!bearer.empty()) {
      req.set(http::field::authorization, "Bearer " + bearer);
    }
    req.keep_alive(true);
    lowest().expires_at(deadline);
    auto gen = generation;
    withStream([&](auto& stream) {
      http::async_write(stream, conn->req, [self = shared_from_this(), c = conn, gen](const beast::error_code& ec,
                                                                      size_t) {
        if (gen != self->generation) {
          return;
        }
        if (ec) {
          self->retryOrFail(ec, "sending request to");
          return;
        }
        self->readHeader();
      });
    });
  }

  void retryOrFail(const beast::error_code& ec, const char* step) {
    if (reused && !retried && staleConnectionError(ec)) {
      retried = true;
      disconnect();
      connect();
      return;
    }
    failFromCode(HttpError::Kind::Closed, step, ec);
  }

  void readHeader() {
    auto& parser = conn->parser;
    parser = std::make_unique<http::response_parser<http::buffer_body>>();
    // A watch body never ends; lists can be large. (Not boost::none: Beast 1.74 compares
    // a length against an empty limit as "exceeded".)
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser->header_limit(64 * 1024);
    auto gen = generation;
    withStream([&](auto& stream) {
      http::async_read_header(stream, conn->buffer, *parser, [self = shared_from_this(), c = conn, gen](
                                                           const beast::error_code& ec, size_t) {
        if (gen != self->generation) {
          return;
        }
        if (ec) {
          if (staleConnectionError(ec)) {
            self->retryOrFail(ec, "reading response from");
          } else {
            self->failFromCode(HttpError::Kind::Protocol, "reading response from", ec);
          }
          return;
        }
        const auto& head = c->parser->get();
        if (auto it = head.find(http::field::retry_after); it != head.end()) {
          self->retryAfter = parseRetryAfter(std::string_view(it->value().data(), it->value().size()));
        }
        if (self->handlers.onHead) {
          self->handlers.onHead(static_cast<int>(head.result_int()));
          if (gen != self->generation) {
            return;  // the handler closed the connection
          }
        }
        self->readBody();
      });
    });
  }

  void readBody() {
    auto& parser = conn->parser;
    auto& body = conn->body;
    if (parser->is_done()) {
      finish();
      return;
    }
    parser->get().body().data = body.data();
    parser->get().body().size = body.size();
    lowest().expires_at(deadline);
    auto gen = generation;
    withStream([&](auto& stream) {
      http::async_read_some(stream, conn->buffer, *parser, [self = shared_from_this(), c = conn, gen](
                                                         beast::error_code ec, size_t) {
        if (gen != self->generation) {
          return;
        }
        if (ec == http::error::need_buffer) {
          ec = {};
        }
        size_t got = c->body.size() - c->parser->get().body().size;
        if (got > 0 && self->handlers.onBody) {
          self->handlers.onBody(std::string_view(c->body.data(), got));
          if (gen != self->generation) {
            return;
          }
        }
        if (ec) {
          // A body cut off mid-way is how an abrupt disconnect looks.
          self->failFromCode(ec == beast::error::timeout ? HttpError::Kind::Timeout
                                                         : HttpError::Kind::Closed,
                             "reading response body from", ec);
          return;
        }
        self->readBody();
      });
    });
  }

  void finish() {
    if (!conn->parser->get().keep_alive()) {
      disconnect();
    }
    Handlers h = std::move(handlers);
    handlers = Handlers();
    if (h.onDone) {
      h.onDone(HttpError{});
    }
  }
};

ApiConnection::ApiConnection(boost::asio::io_context& io, const ConnectionConfig& config,
                             BearerToken& token)
    : impl_(std::make_shared<Impl>(io, config, token)) {}

ApiConnection::~ApiConnection() { impl_->closeFromUser(); }

void ApiConnection::get(const HttpRequest& request, Handlers handlers) {
  impl_->start(request, std::move(handlers));
}

void ApiConnection::close() { impl_->closeFromUser(); }

size_t ApiConnection::connectionsOpened() const { return impl_->opened; }

std::optional<std::chrono::seconds> ApiConnection::retryAfter() const { return impl_->retryAfter; }

}  // namespace switchyard::k8s::apiserver
