// Terminating connected UDP sockets that socket LB sent to a removed backend (see
// bpf/sock_term.bpf.c): kube-proxy clears a removed UDP endpoint's conntrack entries so that
// clients stop sending to it; with socket LB a connected UDP socket holds the backend's
// address itself, and only destroying the socket makes the application connect again.
// Sockets live in their pods' network namespaces: the iterator runs in each one (entered by a
// worker thread, so the daemon's own threads never change namespace).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bpf/unique_fd.h"
#include "lb/syncer.h"

struct sock_term;

namespace switchyard::bpf {

struct TerminateReport {
  uint64_t destroyed = 0;         // sockets destroyed
  size_t namespaces = 0;          // network namespaces searched
  std::vector<std::string> errors;  // per namespace or map write, with the reason
};

class SocketTerminator {
 public:
  // Loads the iterator, reading socket LB's translations from sockRevNatFd (the pinned
  // sock_rnat map). nullptr with the reason where the kernel has no bpf_sock_destroy
  // (before Linux 6.5) or no UDP iterator.
  static std::unique_ptr<SocketTerminator> load(int sockRevNatFd, std::string& error);
  ~SocketTerminator();
  SocketTerminator(const SocketTerminator&) = delete;
  SocketTerminator& operator=(const SocketTerminator&) = delete;

  // Destroys the connected UDP sockets that socket LB sent through one of the stale
  // (frontend, backend) pairs, in each network namespace of netnsPaths (nsfs files such as
  // /proc/self/ns/net or /run/netns/NAME).
  TerminateReport terminate(std::span<const lb::StaleUdpBackend> stale, const std::vector<std::string>& netnsPaths);

 private:
  SocketTerminator() = default;
  struct sock_term* skel_ = nullptr;
  UniqueFd link_;
};

// The network namespaces socket LB's clients may live in: this process's own and each one
// pinned under /run/netns (where containerd and CRI-O keep their pods' namespaces, and
// `ip netns` its own), each once.
std::vector<std::string> podNetworkNamespaces(const std::string& netnsDir = "/run/netns");

}  // namespace switchyard::bpf
