#pragma once

// Socket plumbing shared by `sy-testpeer serve` and `sy-testpeer probe`: an owning fd, a
// family-agnostic socket address, address parsing and errno names for the probe's JSON report.

#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace switchyard::testpeer {

// Owns one file descriptor; closes it on destruction. Move-only.
class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  void reset(int fd = -1);

private:
  int fd_ = -1;
};

// An IPv4 or IPv6 address with port, as handed to connect()/bind()/sendto().
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* raw() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* raw() { return reinterpret_cast<sockaddr*>(&storage); }
  // "198.18.16.2:8080" or "[2001:db8::2]:8080".
  std::string toString() const;
};

// Parses "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6). Literal addresses only: the tests never
// resolve names, so a name is a typo, not a lookup.
std::optional<SocketAddress> parseHostPort(std::string_view text);

// Parses a bare literal address ("198.18.16.2", "2001:db8::2" or "[2001:db8::2]") and sets port.
std::optional<SocketAddress> parseBindAddress(std::string_view text, unsigned port);

// The IPv6 wildcard [::]:port, used for a dual-stack listener.
SocketAddress wildcardIpv6(unsigned port);
// The IPv4 wildcard 0.0.0.0:port, the fallback when the kernel has no IPv6.
SocketAddress wildcardIpv4(unsigned port);

// True when both name the same address and port. An IPv4-mapped IPv6 address (a dual-stack
// socket's view of an IPv4 peer) equals the IPv4 address it maps.
bool sameEndpoint(const SocketAddress& a, const SocketAddress& b);

// "ECONNREFUSED" for ECONNREFUSED; "errno_N" for a value glibc cannot name.
std::string errnoName(int error);

// Parses a decimal number in [min, max]; nullopt for anything else.
std::optional<unsigned long> parseNumber(std::string_view text, unsigned long min, unsigned long max);

using Clock = std::chrono::steady_clock;

// Milliseconds left until deadline, clamped to [0, INT_MAX] for poll().
int millisecondsUntil(Clock::time_point deadline);

// Set by SIGTERM/SIGINT (see installStopHandlers); checked by every loop.
bool stopRequested();
// Installs SIGTERM/SIGINT handlers without SA_RESTART, so a blocked poll() returns EINTR, and
// ignores SIGPIPE. Returns the read end of a self-pipe that becomes readable once a stop signal
// arrived, for loops that would rather poll it than race a flag check against poll().
int installStopHandlers();

} // namespace switchyard::testpeer
