#include "tests/tools/testpeer_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>

namespace switchyard::testpeer {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    reset(other.release());
  }
  return *this;
}

Fd::~Fd() { reset(); }

int Fd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

// Built by appending to one string: GCC 12 at -O3 reports a false -Wrestrict overlap inside
// the inlined insert(0, ...) of `"[" + std::string(...)` (GCC PR 105329), and appending never
// inserts at the front.
std::string SocketAddress::toString() const {
  char text[INET6_ADDRSTRLEN] = {};
  std::string out;
  if (family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    out.append(text).append(":").append(std::to_string(ntohs(in->sin_port)));
  } else if (family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    out.append("[").append(text).append("]:").append(std::to_string(ntohs(in6->sin6_port)));
  } else {
    out.append("<family ").append(std::to_string(family())).append(">");
  }
  return out;
}

std::optional<unsigned long> parseNumber(std::string_view text, unsigned long min, unsigned long max) {
  unsigned long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<SocketAddress> parseBindAddress(std::string_view text, unsigned port) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  std::string literal(text);
  SocketAddress address;
  auto* in = reinterpret_cast<sockaddr_in*>(&address.storage);
  if (inet_pton(AF_INET, literal.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    address.length = sizeof(sockaddr_in);
    return address;
  }
  address = SocketAddress{};
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (inet_pton(AF_INET6, literal.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    address.length = sizeof(sockaddr_in6);
    return address;
  }
  return std::nullopt;
}

std::optional<SocketAddress> parseHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    // "[ADDR]:PORT": an IPv6 literal must be bracketed, or its colons would swallow the port.
    size_t close = text.find("]:");
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) {
      return std::nullopt;
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto portNumber = parseNumber(port, 1, 65535);
  if (!portNumber) {
    return std::nullopt;
  }
  return parseBindAddress(host, static_cast<unsigned>(*portNumber));
}

SocketAddress wildcardIpv6(unsigned port) {
  SocketAddress address;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_addr = in6addr_any;
  in6->sin6_port = htons(static_cast<uint16_t>(port));
  address.length = sizeof(sockaddr_in6);
  return address;
}

SocketAddress wildcardIpv4(unsigned port) {
  SocketAddress address;
  auto* in = reinterpret_cast<sockaddr_in*>(&address.storage);
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(INADDR_ANY);
  in->sin_port = htons(static_cast<uint16_t>(port));
  address.length = sizeof(sockaddr_in);
  return address;
}

namespace {

// Rewrites an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4, so that a dual-stack
// socket's peer compares equal to the IPv4 target it talks to.
SocketAddress unmapIpv4(const SocketAddress& address) {
  if (address.family() != AF_INET6) {
    return address;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
    return address;
  }
  SocketAddress plain;
  auto* in = reinterpret_cast<sockaddr_in*>(&plain.storage);
  in->sin_family = AF_INET;
  in->sin_port = in6->sin6_port;
  std::memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], sizeof(in->sin_addr));
  plain.length = sizeof(sockaddr_in);
  return plain;
}

} // namespace

bool sameEndpoint(const SocketAddress& a, const SocketAddress& b) {
  SocketAddress left = unmapIpv4(a);
  SocketAddress right = unmapIpv4(b);
  if (left.family() != right.family()) {
    return false;
  }
  if (left.family() == AF_INET) {
    const auto* l = reinterpret_cast<const sockaddr_in*>(&left.storage);
    const auto* r = reinterpret_cast<const sockaddr_in*>(&right.storage);
    return l->sin_port == r->sin_port && l->sin_addr.s_addr == r->sin_addr.s_addr;
  }
  if (left.family() == AF_INET6) {
    // Flow label and scope are not part of "which peer": compare address and port only.
    const auto* l = reinterpret_cast<const sockaddr_in6*>(&left.storage);
    const auto* r = reinterpret_cast<const sockaddr_in6*>(&right.storage);
    return l->sin6_port == r->sin6_port && IN6_ARE_ADDR_EQUAL(&l->sin6_addr, &r->sin6_addr);
  }
  return false;
}

std::string errnoName(int error) {
  const char* name = strerrorname_np(error);
  if (name == nullptr) {
    return "errno_" + std::to_string(error);
  }
  return name;
}

int millisecondsUntil(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) {
    return 0;
  }
  return left > INT_MAX ? INT_MAX : static_cast<int>(left);
}

namespace {

volatile sig_atomic_t stopFlag = 0;
int stopPipeWrite = -1;

void onStopSignal(int) {
  int savedErrno = errno;
  stopFlag = 1;
  if (stopPipeWrite >= 0) {
    char byte = 1;
    // Non-blocking: a full pipe already says "stop".
    [[maybe_unused]] ssize_t ignored = ::write(stopPipeWrite, &byte, 1);
  }
  errno = savedErrno;
}

} // namespace

bool stopRequested() { return stopFlag != 0; }

int installStopHandlers() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return -1;
  }
  stopPipeWrite = fds[1];
  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0; // no SA_RESTART: a blocked poll() must wake up and see the flag
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return fds[0];
}

} // namespace switchyard::testpeer
