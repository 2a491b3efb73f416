#pragma once

// `sy-testpeer probe`: a client pod for end-to-end tests. It sends a bounded number of requests to
// one address and reports, as one JSON line, which backends answered, what failed, and whether the
// peer address the socket reported ever differed from the address it was asked to talk to (the
// thing the socket-LB getpeername/recvmsg hooks must hide). Servers run with --report-peer answer
// "NAME PEER"; the probe then also counts the client addresses the servers saw ("sources"), the
// thing source-IP preservation is about.

#include <chrono>
#include <optional>
#include <string>

#include "tests/tools/testpeer_socket.h"

namespace switchyard::testpeer {

enum class ProbeProtocol { tcp, udp };

// The most requests one probe sends, whatever --count or --duration-s say.
constexpr unsigned long probeIterationCap = 1'000'000;

struct ProbeOptions {
  ProbeProtocol protocol = ProbeProtocol::tcp;
  SocketAddress target;
  unsigned long count = 100;                         // stop after this many requests
  std::chrono::milliseconds interval{0};             // pause between requests
  std::chrono::milliseconds timeout{1000};           // per request: connect + send + answer
  std::optional<std::chrono::seconds> duration;      // stop after this long
  std::optional<std::string> stopFile;               // stop once this path exists
  bool connectedUdp = false;                         // connect() the UDP socket instead of sendto()
  std::optional<SocketAddress> bindAddress;          // bind the client socket here (port 0) first
  bool hold = false;                                 // TCP: every request on one held connection
  // TCP, new connections only: request i binds source port sportBase + i (SO_REUSEADDR), so a
  // run repeats the same 5-tuples; the report then says who answered each ("flows").
  std::optional<unsigned> sportBase;
};

// Runs the probe and prints one JSON line:
// {"sent":N,"ok":N,"failed":N,"peer_mismatch":N,"backends":{...},"sources":{...},"errors":{...}}
// sent == ok + failed. backends counts answers by server name, sources by the client address the
// server reported (answers without one, from servers without --report-peer, are not in sources).
// peer_mismatch counts requests (ok or not) during which getpeername() or the reply's source
// address differed from the target. With hold (TCP only), the requests are lines on one
// connection opened with "HOLD" (see testpeer_serve.h); a request that fails closes it and the
// next opens a new one; the report then also has "connections":N, the connections opened
// (1 when the first one carried every request). With connectedUdp, a socket the kernel
// disconnects (destroyed: ECONNABORTED, then EDESTADDRREQ) is replaced by a new one, as a
// resolver would, and the report has "sockets":N, the sockets opened. With sportBase, the report
// also has "flows":{"PORT":"NAME" or "!ERROR",...}, one per request by its source port. Returns 0 iff failed == 0 and
// peer_mismatch == 0, else 1.
int runProbe(const ProbeOptions& options);

} // namespace switchyard::testpeer
