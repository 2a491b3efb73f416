#include "tests/tools/testpeer_serve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace switchyard::testpeer {
namespace {

// Below the default RLIMIT_NOFILE of 1024, so accept() never fails with EMFILE; the listener is
// simply not polled while the server is full and the kernel backlog holds the rest.
constexpr size_t maxConnections = 512;
constexpr int listenBacklog = 1024;
// A request larger than this is answered as it stands: the tests only send tiny GETs.
constexpr size_t maxRequestBytes = 16 * 1024;
// A client that neither finishes its request nor reads the answer is dropped after this.
constexpr auto connectionIdleLimit = std::chrono::seconds(10);
constexpr size_t maxDatagramBytes = 64 * 1024;
// Datagrams answered per wake-up before the loop looks at the other sockets again.
constexpr int udpBurst = 64;

struct Connection {
  Fd fd;
  std::string peer; // the client's address, for --report-peer answers
  std::string request;
  std::string response; // non-empty once the request is complete
  size_t written = 0;
  Clock::time_point deadline;
  // A held connection (the client's first line was "HOLD"): every further line is answered
  // with one answer line, and the connection stays open, so tests can watch one established
  // flow across a daemon restart or upgrade.
  bool held = false;
  std::string pending; // held: answer bytes not yet written
};

struct Counters {
  unsigned long tcpAnswered = 0;
  unsigned long udpAnswered = 0;
};

void printSetupError(const char* what, const SocketAddress& address, int error) {
  std::fprintf(stderr, "sy-testpeer serve: %s %s: %s\n", what, address.toString().c_str(),
               std::strerror(error));
}

bool isIpv6Wildcard(const SocketAddress& address) {
  if (address.family() != AF_INET6) {
    return false;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

// Opens, configures and binds one socket. type is SOCK_STREAM or SOCK_DGRAM.
Fd openBoundSocket(const SocketAddress& address, int type) {
  Fd fd(::socket(address.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    printSetupError("socket for", address, errno);
    return fd;
  }
  int on = 1;
  int off = 0;
  if (type == SOCK_STREAM) {
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  }
  if (isIpv6Wildcard(address)) {
    // Dual stack: one socket also takes IPv4, whatever net.ipv6.bindv6only says.
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  }
  if (type == SOCK_DGRAM) {
    // Learn each datagram's destination address so the reply leaves from exactly that address;
    // a pod with several addresses must not answer from whichever one routing prefers. On an
    // IPv6 socket this also covers IPv4 datagrams (as IPv4-mapped addresses).
    int rc = address.family() == AF_INET6
                 ? setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on))
                 : setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
    if (rc != 0) {
      printSetupError("enabling packet info on", address, errno);
      fd.reset();
      return fd;
    }
  }
  if (::bind(fd.get(), address.raw(), address.length) != 0) {
    printSetupError("bind", address, errno);
    fd.reset();
    return fd;
  }
  if (type == SOCK_STREAM && ::listen(fd.get(), listenBacklog) != 0) {
    printSetupError("listen", address, errno);
    fd.reset();
  }
  return fd;
}

// The address to bind for one protocol: --bind, else [::], else 0.0.0.0 on a kernel without IPv6.
std::optional<SocketAddress> bindAddressFor(const ServeOptions& options, unsigned port) {
  if (options.bindAddress) {
    return parseBindAddress(*options.bindAddress, port);
  }
  Fd probe(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe.valid() && errno == EAFNOSUPPORT) {
    return wildcardIpv4(port);
  }
  return wildcardIpv6(port);
}

std::string httpResponse(const std::string& name) {
  std::string body = name + "\n";
  return "HTTP/1.1 200 OK\r\n"
         "Content-Type: text/plain\r\n"
         "Content-Length: " +
         std::to_string(body.size()) +
         "\r\n"
         "Connection: close\r\n"
         "\r\n" +
         body;
}

// The client address as an answer reports it: a.b.c.d for IPv4, also when the dual-stack socket
// saw it as ::ffff:a.b.c.d, else the IPv6 address. No port: the tests compare addresses, and the
// client's port is ephemeral.
std::string peerAddressText(const sockaddr_storage& peer) {
  char text[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&peer);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
  } else if (peer.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    }
  }
  return text[0] != '\0' ? std::string(text) : std::string("unknown");
}

// What the server says: its name, or "NAME PEER" with --report-peer.
std::string answerFor(const ServeOptions& options, const std::string& peer) {
  return options.reportPeer ? options.name + " " + peer : options.name;
}

constexpr std::string_view holdLine = "HOLD\n";

bool requestComplete(const std::string& request) {
  return request.find("\r\n\r\n") != std::string::npos || request.find("\n\n") != std::string::npos ||
         request.size() >= maxRequestBytes;
}

void acceptConnections(int listenFd, bool reportPeer, std::vector<std::unique_ptr<Connection>>& connections) {
  while (connections.size() < maxConnections) {
    sockaddr_storage peer{};
    socklen_t peerLength = sizeof(peer);
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&peer), &peerLength, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // EAGAIN: drained. ECONNABORTED and friends: that client is gone, nothing to do.
      return;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd.reset(fd);
    if (reportPeer) {
      connection->peer = peerAddressText(peer);
    }
    connection->deadline = Clock::now() + connectionIdleLimit;
    connections.push_back(std::move(connection));
  }
}

// Advances one connection as far as it can go without blocking. Returns false once it is done
// (answered or broken) and should be closed. response is the answer when the peer is not reported.
// A held connection: answers each complete line, writes what it can. Returns false once the
// client closed it or it broke.
bool serviceHeldConnection(Connection& connection, const ServeOptions& options, Counters& counters) {
  bool clientClosed = false;
  for (;;) {
    char buffer[4096];
    ssize_t got = ::recv(connection.fd.get(), buffer, sizeof(buffer), 0);
    if (got == 0) {
      clientClosed = true;
      break;
    }
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        break;
      }
      return false;
    }
    connection.request.append(buffer, static_cast<size_t>(got));
    if (connection.request.size() > maxRequestBytes) {
      return false; // lines that never end: not one of our probes
    }
  }
  for (size_t end; (end = connection.request.find('\n')) != std::string::npos;) {
    connection.request.erase(0, end + 1);
    connection.pending += answerFor(options, connection.peer) + "\n";
    ++counters.tcpAnswered;
    connection.deadline = Clock::now() + connectionIdleLimit;
  }
  while (!connection.pending.empty()) {
    ssize_t sent = ::send(connection.fd.get(), connection.pending.data(), connection.pending.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        break;
      }
      return false;
    }
    connection.pending.erase(0, static_cast<size_t>(sent));
  }
  return !clientClosed;
}

bool serviceConnection(Connection& connection, const ServeOptions& options, const std::string& response,
                       Counters& counters) {
  if (connection.held) {
    return serviceHeldConnection(connection, options, counters);
  }
  while (connection.response.empty()) {
    char buffer[4096];
    ssize_t got = ::recv(connection.fd.get(), buffer, sizeof(buffer), 0);
    if (got < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    if (got == 0 && connection.request.empty()) {
      return false; // closed without asking anything
    }
    connection.request.append(buffer, static_cast<size_t>(got));
    if (connection.request.starts_with(holdLine)) {
      connection.held = true;
      connection.request.erase(0, holdLine.size());
      return serviceHeldConnection(connection, options, counters);
    }
    if (got > 0 && std::string_view(holdLine).starts_with(connection.request)) {
      continue; // the start of "HOLD": wait for the rest of the line
    }
    if (got == 0 || requestComplete(connection.request)) {
      connection.response = options.reportPeer ? httpResponse(answerFor(options, connection.peer)) : response;
    }
  }
  while (connection.written < connection.response.size()) {
    ssize_t sent = ::send(connection.fd.get(), connection.response.data() + connection.written,
                          connection.response.size() - connection.written, MSG_NOSIGNAL);
    if (sent < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    connection.written += static_cast<size_t>(sent);
  }
  // Connection: close. The server closes first, so TIME_WAIT piles up here and not in the probe,
  // which opens a fresh connection (and source port) per request.
  ::shutdown(connection.fd.get(), SHUT_WR);
  ++counters.tcpAnswered;
  return false;
}

// Answers every queued datagram with the name (and the peer), from the address it was sent to.
void answerDatagrams(int udpFd, const ServeOptions& options, Counters& counters) {
  std::vector<char> payload(maxDatagramBytes);
  for (int i = 0; i < udpBurst; ++i) {
    sockaddr_storage peer{};
    iovec in{payload.data(), payload.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo))];
    msghdr message{};
    message.msg_name = &peer;
    message.msg_namelen = sizeof(peer);
    message.msg_iov = &in;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    if (::recvmsg(udpFd, &message, 0) < 0) {
      return; // EAGAIN: drained
    }

    // Reply source = the datagram's destination; interface left to routing (ifindex 0).
    alignas(cmsghdr) char replyControl[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    size_t replyControlLength = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      auto* out = reinterpret_cast<cmsghdr*>(replyControl);
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info{};
        std::memcpy(&info, CMSG_DATA(c), sizeof(info));
        info.ipi6_ifindex = 0;
        out->cmsg_level = IPPROTO_IPV6;
        out->cmsg_type = IPV6_PKTINFO;
        out->cmsg_len = CMSG_LEN(sizeof(info));
        std::memcpy(CMSG_DATA(out), &info, sizeof(info));
        replyControlLength = CMSG_SPACE(sizeof(info));
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info{};
        std::memcpy(&info, CMSG_DATA(c), sizeof(info));
        in_pktinfo reply{};
        reply.ipi_spec_dst = info.ipi_addr;
        out->cmsg_level = IPPROTO_IP;
        out->cmsg_type = IP_PKTINFO;
        out->cmsg_len = CMSG_LEN(sizeof(reply));
        std::memcpy(CMSG_DATA(out), &reply, sizeof(reply));
        replyControlLength = CMSG_SPACE(sizeof(reply));
      }
    }

    const std::string answer = answerFor(options, options.reportPeer ? peerAddressText(peer) : std::string());
    iovec outPayload{const_cast<char*>(answer.data()), answer.size()};
    msghdr reply{};
    reply.msg_name = &peer;
    reply.msg_namelen = message.msg_namelen;
    reply.msg_iov = &outPayload;
    reply.msg_iovlen = 1;
    reply.msg_control = replyControlLength > 0 ? replyControl : nullptr;
    reply.msg_controllen = replyControlLength;
    if (::sendmsg(udpFd, &reply, MSG_NOSIGNAL) >= 0) {
      ++counters.udpAnswered;
    }
  }
}

} // namespace

int runServe(const ServeOptions& options, int stopFd) {
  Fd tcpListener;
  Fd udpSocket;
  if (options.tcpPort != 0) {
    auto address = bindAddressFor(options, options.tcpPort);
    if (!address) {
      std::fprintf(stderr, "sy-testpeer serve: --bind %s is not an IP address\n", options.bindAddress->c_str());
      return 1;
    }
    tcpListener = openBoundSocket(*address, SOCK_STREAM);
    if (!tcpListener.valid()) {
      return 1;
    }
  }
  if (options.udpPort != 0) {
    auto address = bindAddressFor(options, options.udpPort);
    if (!address) {
      std::fprintf(stderr, "sy-testpeer serve: --bind %s is not an IP address\n", options.bindAddress->c_str());
      return 1;
    }
    udpSocket = openBoundSocket(*address, SOCK_DGRAM);
    if (!udpSocket.valid()) {
      return 1;
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);

  const std::string response = httpResponse(options.name); // without --report-peer, for every connection
  std::vector<std::unique_ptr<Connection>> connections;
  Counters counters;
  std::vector<pollfd> polled;
  while (!stopRequested()) {
    // Slots: 0 stop pipe, 1 TCP listener, 2 UDP socket (fd -1 when absent or full), then connections.
    polled.clear();
    polled.push_back({stopFd, POLLIN, 0});
    polled.push_back({connections.size() < maxConnections ? tcpListener.get() : -1, POLLIN, 0});
    polled.push_back({udpSocket.get(), POLLIN, 0});
    Clock::time_point nextDeadline = Clock::time_point::max();
    for (const auto& connection : connections) {
      short events = connection->held ? static_cast<short>(POLLIN | (connection->pending.empty() ? 0 : POLLOUT))
                     : connection->response.empty() ? POLLIN
                                                    : POLLOUT;
      polled.push_back({connection->fd.get(), events, 0});
      nextDeadline = std::min(nextDeadline, connection->deadline);
    }
    int timeout = nextDeadline == Clock::time_point::max() ? -1 : millisecondsUntil(nextDeadline) + 1;
    if (::poll(polled.data(), polled.size(), timeout) < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::fprintf(stderr, "sy-testpeer serve: poll: %s\n", std::strerror(errno));
      return 1;
    }
    if (polled[0].revents != 0) {
      break;
    }

    // Connections first: indices into polled match the connections present before this round.
    auto now = Clock::now();
    std::vector<std::unique_ptr<Connection>> stillOpen;
    stillOpen.reserve(connections.size());
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& connection = *connections[i];
      bool keep = true;
      if (polled[3 + i].revents != 0) {
        keep = serviceConnection(connection, options, response, counters);
      } else if (now >= connection.deadline) {
        keep = false;
      }
      if (keep) {
        stillOpen.push_back(std::move(connections[i]));
      }
    }
    connections = std::move(stillOpen);

    if (polled[1].revents != 0) {
      acceptConnections(tcpListener.get(), options.reportPeer, connections);
    }
    if (polled[2].revents != 0) {
      answerDatagrams(udpSocket.get(), options, counters);
    }
  }
  std::fprintf(stderr, "sy-testpeer serve %s: stopped after %lu TCP and %lu UDP answers\n", options.name.c_str(),
               counters.tcpAnswered, counters.udpAnswered);
  return 0;
}

} // namespace switchyard::testpeer
