// A one-request HTTP client for tests of the servers in metrics/: it runs on the same
// io_context as the server (one thread, as the daemon), driving it until the answer, the
// connection's end or a deadline, whichever comes first. Never sleeps.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace switchyard::testhttp {

struct HttpResult {
  // Set when the exchange failed: the connect (refused: nothing listens) or the read
  // (the server closed without answering). Empty on an answer.
  std::string error;
  bool refused = false;
  int status = 0;
  std::map<std::string, std::string> headers;  // as sent (names case-sensitive)
  std::string body;
};

// Runs `io` until `done()` or `timeout`; false on timeout.
template <typename Done>
bool runUntil(boost::asio::io_context& io, Done done, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  io.restart();
  while (!done()) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      return false;
    }
    io.run_one_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
  }
  return true;
}

// A connection opened now, its request sent later (to race a request with a close).
class HttpTestConnection {
 public:
  HttpTestConnection(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& to)
      : io_(io), state_(std::make_shared<State>(io)) {
    auto s = state_;
    s->stream.async_connect(to, [s](boost::beast::error_code ec) {
      s->connected = true;
      if (ec) {
        s->result.error = "connect: " + ec.message();
        s->result.refused = ec == boost::asio::error::connection_refused;
        s->done = true;
      }
    });
    runUntil(io_, [s] { return s->connected; });
  }

  bool connected() const { return state_->connected && !state_->done; }

  HttpResult request(const std::string& target, boost::beast::http::verb method = boost::beast::http::verb::get) {
    namespace http = boost::beast::http;
    auto s = state_;
    if (!s->done) {
      s->request = http::request<http::empty_body>(method, target, 11);
      s->request.set(http::field::host, "switchyard-test");
      http::async_write(s->stream, s->request, [s, method](boost::beast::error_code ec, size_t) {
        if (ec) {
          s->result.error = "write: " + ec.message();
          s->done = true;
          return;
        }
        s->parser.emplace();
        s->parser->skip(method == http::verb::head);  // a HEAD answer has headers only
        http::async_read(s->stream, s->buffer, *s->parser, [s](boost::beast::error_code ec, size_t) {
          if (ec) {
            s->result.error = "read: " + ec.message();
          } else {
            const auto& res = s->parser->get();
            s->result.status = static_cast<int>(res.result_int());
            for (const auto& f : res) {
              s->result.headers[std::string(f.name_string())] = std::string(f.value());
            }
            s->result.body = res.body();
          }
          s->done = true;
        });
      });
    }
    if (!runUntil(io_, [s] { return s->done; })) {
      s->result.error = "timed out";
    }
    return s->result;
  }

 private:
  struct State {
    explicit State(boost::asio::io_context& io) : stream(io) {}
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::empty_body> request;
    std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser;
    HttpResult result;
    bool connected = false;
    bool done = false;
  };
  boost::asio::io_context& io_;
  std::shared_ptr<State> state_;
};

inline HttpResult httpRequest(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& to,
                              const std::string& target,
                              boost::beast::http::verb method = boost::beast::http::verb::get) {
  HttpTestConnection c(io, to);
  return c.request(target, method);
}

// Sends `request` as is and returns every byte the server sent until it closed (or the
// deadline): for what a parser would hide, such as a body after a HEAD answer.
inline std::string rawExchange(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& to,
                               const std::string& request) {
  struct State {
    explicit State(boost::asio::io_context& io) : socket(io) {}
    boost::asio::ip::tcp::socket socket;
    std::string request, received;
    char chunk[4096];
    bool done = false;
    void readMore(std::shared_ptr<State> self) {
      socket.async_read_some(boost::asio::buffer(chunk), [self](boost::system::error_code ec, size_t n) {
        self->received.append(self->chunk, n);
        if (ec) {
          self->done = true;
        } else {
          self->readMore(self);
        }
      });
    }
  };
  auto s = std::make_shared<State>(io);
  s->request = request;
  s->socket.async_connect(to, [s](boost::system::error_code ec) {
    if (ec) {
      s->done = true;
      return;
    }
    boost::asio::async_write(s->socket, boost::asio::buffer(s->request), [s](boost::system::error_code ec, size_t) {
      if (ec) {
        s->done = true;
      } else {
        s->readMore(s);
      }
    });
  });
  runUntil(io, [s] { return s->done; });
  return s->received;
}

}  // namespace switchyard::testhttp
