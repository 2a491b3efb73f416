#pragma once

// `sy-testpeer serve`: a backend pod for end-to-end tests. TCP answers one minimal HTTP request per
// connection with the backend's name; UDP answers every datagram with the name. With reportPeer,
// the answer is "NAME PEER" instead: PEER is the client address the server saw (IPv4 as a.b.c.d
// even on the dual-stack socket, no port), so tests can check source-IP preservation.
// A TCP client whose first line is "HOLD" keeps its connection: each further line it sends is
// answered with one answer line ("NAME" or "NAME PEER"), until it closes or idles for 10 s.

#include <optional>
#include <string>

#include "tests/tools/testpeer_socket.h"

namespace switchyard::testpeer {

struct ServeOptions {
  std::string name;                   // backend name, the HTTP body (plus "\n") and UDP reply
  unsigned tcpPort = 8080;            // 0: no TCP listener
  unsigned udpPort = 5353;            // 0: no UDP socket
  std::optional<std::string> bindAddress; // unset: [::] dual-stack, or 0.0.0.0 without IPv6
  bool reportPeer = false;            // answer "NAME PEER" rather than "NAME"
};

// Serves until SIGTERM/SIGINT. Prints "ready" on stdout once every socket listens.
// Returns the process exit code: 0 after a clean stop, 1 when a socket could not be set up.
int runServe(const ServeOptions& options, int stopFd);

} // namespace switchyard::testpeer
