#include "tests/tools/testpeer_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <string_view>

namespace switchyard::testpeer {
namespace {

constexpr std::string_view httpRequest = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
constexpr std::string_view holdLine = "HOLD\n";
// An answer larger than this is not one of our backends.
constexpr size_t maxResponseBytes = 64 * 1024;
// Backend names in the report are cut here, so a garbage answer cannot flood the JSON line.
constexpr size_t maxBackendNameBytes = 128;
// Stale datagrams drained before each UDP request, at most.
constexpr int maxStaleDatagrams = 1024;

// What one request came to. Exactly one of backend/error is set unless interrupted.
struct Outcome {
  std::string backend;
  std::string source; // the client address the server reported; empty when it reported none
  std::string error;
  bool peerMismatch = false;
  bool interrupted = false; // a stop signal cut the request short: it is not counted
};

Outcome failure(std::string error) {
  Outcome outcome;
  outcome.error = std::move(error);
  return outcome;
}

Outcome interruption() {
  Outcome outcome;
  outcome.interrupted = true;
  return outcome;
}

enum class Wait { ready, timeout, interrupted, failed };

// Waits until fd has one of events, or deadline passes, or a stop signal arrives.
Wait waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd polled{fd, events, 0};
    int rc = ::poll(&polled, 1, millisecondsUntil(deadline));
    if (rc > 0) {
      return Wait::ready;
    }
    if (rc == 0) {
      return Wait::timeout;
    }
    if (errno != EINTR) {
      return Wait::failed;
    }
    if (stopRequested()) {
      return Wait::interrupted;
    }
  }
}

Outcome waitFailure(Wait wait) {
  if (wait == Wait::interrupted) {
    return interruption();
  }
  if (wait == Wait::timeout) {
    return failure("timeout");
  }
  return failure(errnoName(errno));
}

bool peerDiffers(int fd, const SocketAddress& target) {
  SocketAddress peer;
  peer.length = sizeof(peer.storage);
  if (::getpeername(fd, peer.raw(), &peer.length) != 0) {
    return true;
  }
  return !sameEndpoint(peer, target);
}

std::string trimLineEnd(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return std::string(text.substr(0, maxBackendNameBytes));
}

// An answer line: "NAME", or "NAME PEER" from a server with --report-peer.
Outcome parseAnswerLine(std::string_view line) {
  std::string text = trimLineEnd(line);
  size_t space = text.find(' ');
  Outcome outcome;
  outcome.backend = text.substr(0, space);
  if (space != std::string::npos) {
    outcome.source = text.substr(space + 1);
  }
  if (outcome.backend.empty()) {
    return failure("empty_body");
  }
  return outcome;
}

// The backend name from an HTTP answer: the first line of the body of a 200 response.
Outcome parseHttpAnswer(std::string_view answer) {
  if (answer.empty()) {
    return failure("empty_response");
  }
  if (!answer.starts_with("HTTP/1.") || answer.size() < 12 || answer.substr(9, 3) != "200") {
    return failure("http_status");
  }
  size_t headerEnd = answer.find("\r\n\r\n");
  if (headerEnd == std::string_view::npos) {
    return failure("truncated_response");
  }
  std::string_view body = answer.substr(headerEnd + 4);
  return parseAnswerLine(body.substr(0, body.find('\n')));
}

// Binds a client socket to --bind (port 0) when given. Returns 0 or an errno.
int bindClient(int fd, const ProbeOptions& options) {
  if (!options.bindAddress) {
    return 0;
  }
  return ::bind(fd, options.bindAddress->raw(), options.bindAddress->length) == 0 ? 0 : errno;
}

// Binds a client socket to --bind (or the wildcard of the target's family) and source port
// `port`. SO_REUSEADDR: the previous run's socket on that port may still be closing.
int bindClientPort(int fd, const ProbeOptions& options, unsigned port) {
  SocketAddress local = options.bindAddress ? *options.bindAddress
                        : options.target.family() == AF_INET6 ? wildcardIpv6(0)
                                                              : wildcardIpv4(0);
  const auto netPort = htons(static_cast<uint16_t>(port));
  if (local.family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(local.raw())->sin6_port = netPort;
  } else {
    reinterpret_cast<sockaddr_in*>(local.raw())->sin_port = netPort;
  }
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return errno;
  }
  return ::bind(fd, local.raw(), local.length) == 0 ? 0 : errno;
}

// One HTTP/1.0 request on a new connection: connect, check the peer, ask, read to EOF. With
// sport (not 0), from that source port.
Outcome tcpRequest(const ProbeOptions& options, unsigned sport) {
  const auto deadline = Clock::now() + options.timeout;
  Fd fd(::socket(options.target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return failure(errnoName(errno));
  }
  if (int error = sport != 0 ? bindClientPort(fd.get(), options, sport) : bindClient(fd.get(), options); error != 0) {
    return failure(errnoName(error));
  }
  if (::connect(fd.get(), options.target.raw(), options.target.length) != 0) {
    if (errno != EINPROGRESS) {
      return failure(errnoName(errno));
    }
    Wait wait = waitFor(fd.get(), POLLOUT, deadline);
    if (wait != Wait::ready) {
      return waitFailure(wait);
    }
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      return failure(errnoName(error));
    }
  }
  const bool mismatch = peerDiffers(fd.get(), options.target);

  size_t written = 0;
  while (written < httpRequest.size()) {
    ssize_t sent = ::send(fd.get(), httpRequest.data() + written, httpRequest.size() - written, MSG_NOSIGNAL);
    if (sent >= 0) {
      written += static_cast<size_t>(sent);
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      Outcome outcome = failure(errnoName(errno));
      outcome.peerMismatch = mismatch;
      return outcome;
    }
    Wait wait = waitFor(fd.get(), POLLOUT, deadline);
    if (wait != Wait::ready) {
      Outcome outcome = waitFailure(wait);
      outcome.peerMismatch = mismatch;
      return outcome;
    }
  }

  std::string answer;
  for (;;) {
    char buffer[4096];
    ssize_t got = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (got == 0) {
      break;
    }
    if (got > 0) {
      answer.append(buffer, static_cast<size_t>(got));
      if (answer.size() > maxResponseBytes) {
        Outcome outcome = failure("oversized_response");
        outcome.peerMismatch = mismatch;
        return outcome;
      }
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      Outcome outcome = failure(errnoName(errno));
      outcome.peerMismatch = mismatch;
      return outcome;
    }
    Wait wait = waitFor(fd.get(), POLLIN, deadline);
    if (wait != Wait::ready) {
      Outcome outcome = waitFailure(wait);
      outcome.peerMismatch = mismatch;
      return outcome;
    }
  }
  Outcome outcome = parseHttpAnswer(answer);
  outcome.peerMismatch = mismatch;
  return outcome;
}

// The connection every request of a --hold probe shares; closed after a failed request.
struct HeldConnection {
  Fd fd;
  std::string unread; // bytes after the last answer line
  bool peerMismatch = false;
  bool fresh = false; // connected, HOLD not sent yet
  unsigned long opened = 0;
};

Outcome heldFailure(HeldConnection& held, std::string error) {
  held.fd.reset();
  held.unread.clear();
  Outcome outcome = failure(std::move(error));
  outcome.peerMismatch = held.peerMismatch;
  return outcome;
}

// Sends all of data before the deadline. Returns an empty string or the error.
std::string sendAll(int fd, std::string_view data, Clock::time_point deadline, bool& interrupted) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t sent = ::send(fd, data.data() + written, data.size() - written, MSG_NOSIGNAL);
    if (sent >= 0) {
      written += static_cast<size_t>(sent);
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return errnoName(errno);
    }
    Wait wait = waitFor(fd, POLLOUT, deadline);
    if (wait == Wait::interrupted) {
      interrupted = true;
      return "interrupted";
    }
    if (wait != Wait::ready) {
      return wait == Wait::timeout ? "timeout" : errnoName(errno);
    }
  }
  return {};
}

// One line out, one answer line back, on the held connection (opened first when there is none).
Outcome heldRequest(const ProbeOptions& options, HeldConnection& held, unsigned long sequence) {
  const auto deadline = Clock::now() + options.timeout;
  if (!held.fd.valid()) {
    held.fd.reset(::socket(options.target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!held.fd.valid()) {
      return failure(errnoName(errno));
    }
    ++held.opened;
    held.peerMismatch = false;
    if (int error = bindClient(held.fd.get(), options); error != 0) {
      return heldFailure(held, errnoName(error));
    }
    if (::connect(held.fd.get(), options.target.raw(), options.target.length) != 0) {
      if (errno != EINPROGRESS) {
        return heldFailure(held, errnoName(errno));
      }
      Wait wait = waitFor(held.fd.get(), POLLOUT, deadline);
      if (wait == Wait::interrupted) {
        return interruption();
      }
      if (wait != Wait::ready) {
        return heldFailure(held, waitFailure(wait).error);
      }
      int error = 0;
      socklen_t length = sizeof(error);
      ::getsockopt(held.fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        return heldFailure(held, errnoName(error));
      }
    }
    held.peerMismatch = peerDiffers(held.fd.get(), options.target);
    held.fresh = true;
  }
  // A new connection says HOLD first, in the same write as its first request.
  std::string request = held.fresh ? std::string(holdLine) : std::string();
  held.fresh = false;
  request += "PING " + std::to_string(sequence) + "\n";
  bool interrupted = false;
  std::string error = sendAll(held.fd.get(), request, deadline, interrupted);
  if (interrupted) {
    return interruption();
  }
  if (!error.empty()) {
    return heldFailure(held, error);
  }
  for (;;) {
    if (size_t end = held.unread.find('\n'); end != std::string::npos) {
      Outcome outcome = parseAnswerLine(std::string_view(held.unread).substr(0, end));
      held.unread.erase(0, end + 1);
      outcome.peerMismatch = held.peerMismatch;
      return outcome;
    }
    char buffer[4096];
    ssize_t got = ::recv(held.fd.get(), buffer, sizeof(buffer), 0);
    if (got == 0) {
      return heldFailure(held, "closed");
    }
    if (got > 0) {
      held.unread.append(buffer, static_cast<size_t>(got));
      if (held.unread.size() > maxResponseBytes) {
        return heldFailure(held, "oversized_response");
      }
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return heldFailure(held, errnoName(errno));
    }
    Wait wait = waitFor(held.fd.get(), POLLIN, deadline);
    if (wait == Wait::interrupted) {
      return interruption();
    }
    if (wait != Wait::ready) {
      return heldFailure(held, waitFailure(wait).error);
    }
  }
}

// The UDP socket every request of one probe shares, as a client resolver would.
struct UdpClient {
  Fd fd;
  std::string setupError; // non-empty: every request fails with this
  mutable bool dropped = false; // connected, and the kernel disconnected it (destroyed)
};

bool disconnectedError(int error) { return error == ECONNABORTED || error == EDESTADDRREQ || error == ENOTCONN; }

UdpClient openUdpClient(const ProbeOptions& options) {
  UdpClient client;
  client.fd.reset(::socket(options.target.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!client.fd.valid()) {
    client.setupError = errnoName(errno);
    return client;
  }
  if (int error = bindClient(client.fd.get(), options); error != 0) {
    client.setupError = errnoName(error);
    return client;
  }
  if (options.connectedUdp && ::connect(client.fd.get(), options.target.raw(), options.target.length) != 0) {
    client.setupError = errnoName(errno);
  }
  return client;
}

// One datagram out, one back. A late answer to an earlier, timed-out request would be taken for
// this request's answer, so whatever is queued is drained first.
Outcome udpRequest(const ProbeOptions& options, const UdpClient& client, unsigned long sequence) {
  if (!client.setupError.empty()) {
    return failure(client.setupError);
  }
  const int fd = client.fd.get();
  char buffer[2048];
  for (int i = 0; i < maxStaleDatagrams; ++i) {
    ssize_t got = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    // A queued error (ICMP unreachable on a connected socket) is consumed the same way.
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
  }

  const auto deadline = Clock::now() + options.timeout;
  const std::string payload = "sy-testpeer probe " + std::to_string(sequence);
  ssize_t sent = options.connectedUdp
                     ? ::send(fd, payload.data(), payload.size(), MSG_NOSIGNAL)
                     : ::sendto(fd, payload.data(), payload.size(), MSG_NOSIGNAL, options.target.raw(),
                                options.target.length);
  if (sent < 0) {
    client.dropped = options.connectedUdp && disconnectedError(errno);
    return failure(errnoName(errno));
  }
  bool mismatch = options.connectedUdp && peerDiffers(fd, options.target);

  for (;;) {
    SocketAddress source;
    source.length = sizeof(source.storage);
    ssize_t got = ::recvfrom(fd, buffer, sizeof(buffer), 0, source.raw(), &source.length);
    if (got >= 0) {
      mismatch = mismatch || !sameEndpoint(source, options.target);
      Outcome outcome = parseAnswerLine(std::string_view(buffer, static_cast<size_t>(got)));
      if (!outcome.error.empty()) {
        outcome.error = "empty_reply";
      }
      outcome.peerMismatch = mismatch;
      return outcome;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      client.dropped = options.connectedUdp && disconnectedError(errno);
      Outcome outcome = failure(errnoName(errno));
      outcome.peerMismatch = mismatch;
      return outcome;
    }
    Wait wait = waitFor(fd, POLLIN, deadline);
    if (wait != Wait::ready) {
      Outcome outcome = waitFailure(wait);
      outcome.peerMismatch = mismatch;
      return outcome;
    }
  }
}

struct Tally {
  unsigned long sent = 0;
  unsigned long ok = 0;
  unsigned long failed = 0;
  unsigned long peerMismatch = 0;
  std::map<std::string, unsigned long> backends; // ordered: the report is deterministic
  std::map<std::string, unsigned long> sources;
  std::map<std::string, unsigned long> errors;

  void add(const Outcome& outcome) {
    ++sent;
    if (outcome.error.empty()) {
      ++ok;
      ++backends[outcome.backend];
      if (!outcome.source.empty()) {
        ++sources[outcome.source];
      }
    } else {
      ++failed;
      ++errors[outcome.error];
    }
    if (outcome.peerMismatch) {
      ++peerMismatch;
    }
  }
};

std::string jsonString(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      // Non-ASCII too: a backend name is ASCII, anything else is shown, not trusted as UTF-8.
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string jsonObject(const std::map<std::string, unsigned long>& counts) {
  std::string out = "{";
  for (const auto& [key, value] : counts) {
    if (out.size() > 1) {
      out += ",";
    }
    out += jsonString(key) + ":" + std::to_string(value);
  }
  return out + "}";
}

// Sleeps for the interval; false when a stop signal cut it short.
bool pause(std::chrono::milliseconds interval) {
  if (interval.count() <= 0) {
    return true;
  }
  const auto until = Clock::now() + interval;
  while (Clock::now() < until) {
    if (::poll(nullptr, 0, millisecondsUntil(until)) < 0 && stopRequested()) {
      return false;
    }
  }
  return true;
}

} // namespace

int runProbe(const ProbeOptions& options) {
  const auto start = Clock::now();
  const unsigned long limit = std::min(options.count, probeIterationCap);
  UdpClient udp;
  unsigned long udpSockets = 0;
  if (options.protocol == ProbeProtocol::udp) {
    udp = openUdpClient(options);
    udpSockets = 1;
  }
  HeldConnection held;
  Tally tally;
  std::map<unsigned, std::string> flows; // --sport-base: source port -> NAME or !ERROR
  for (unsigned long i = 0; i < limit; ++i) {
    if (i > 0 && !pause(options.interval)) {
      break;
    }
    if (stopRequested()) {
      break;
    }
    if (options.duration && Clock::now() - start >= *options.duration) {
      break;
    }
    if (options.stopFile && ::access(options.stopFile->c_str(), F_OK) == 0) {
      break;
    }
    if (options.connectedUdp && udp.dropped) {
      // The socket was destroyed under it (ECONNABORTED; a removed backend's sockets are):
      // a resolver opens a new one, and so does the probe.
      udp = openUdpClient(options);
      ++udpSockets;
    }
    // 0: any port. --sport-base is at least 1024, so request i's port is never 0.
    const unsigned sport = options.sportBase ? *options.sportBase + static_cast<unsigned>(i) : 0;
    Outcome outcome = options.protocol == ProbeProtocol::udp ? udpRequest(options, udp, i)
                      : options.hold                         ? heldRequest(options, held, i)
                                                             : tcpRequest(options, sport);
    if (outcome.interrupted) {
      break;
    }
    tally.add(outcome);
    if (sport != 0) {
      flows[sport] = outcome.error.empty() ? outcome.backend : "!" + outcome.error;
    }
  }
  std::string flowReport;
  if (options.sportBase) {
    flowReport = ",\"flows\":{";
    for (const auto& [port, who] : flows) {
      flowReport += (flowReport.back() == '{' ? "\"" : ",\"") + std::to_string(port) + "\":" + jsonString(who);
    }
    flowReport += "}";
  }
  const std::string connections = options.hold           ? ",\"connections\":" + std::to_string(held.opened)
                                  : options.connectedUdp ? ",\"sockets\":" + std::to_string(udpSockets)
                                                         : "";
  std::printf("{\"sent\":%lu,\"ok\":%lu,\"failed\":%lu,\"peer_mismatch\":%lu,\"backends\":%s,\"sources\":%s,"
              "\"errors\":%s%s%s}\n",
              tally.sent, tally.ok, tally.failed, tally.peerMismatch, jsonObject(tally.backends).c_str(),
              jsonObject(tally.sources).c_str(), jsonObject(tally.errors).c_str(), connections.c_str(), flowReport.c_str());
  std::fflush(stdout);
  return tally.failed == 0 && tally.peerMismatch == 0 ? 0 : 1;
}

} // namespace switchyard::testpeer
