// Loads the BPF programs (skeletons compiled into the binary), reuses or creates the
// pinned maps, and attaches: cgroup sock_addr hooks through pinned bpf links, tc programs
// through clsact filters. Everything attached outlives this object and the process:
// destroying a Datapath only closes our handles. A new daemon replaces the programs in
// place (bpf_link_update, tc replace), so traffic never sees a gap; only cleanup.h
// removes them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bpf/map_sizes.h"
#include "bpf/pinned_maps.h"

struct sock_lb;
struct tc_lb;

namespace switchyard::bpf {

struct DatapathOptions {
  std::string pinPath;
  MapSizes sizes;
};

// Pin names of the socket hooks' links under PIN/links/.
inline constexpr std::array<const char*, 8> kSocketHooks = {
    "connect4", "sendmsg4", "recvmsg4", "getpeername4",
    "connect6", "sendmsg6", "recvmsg6", "getpeername6"};

// tc filter identity: one handle and priority for every switchyard filter.
inline constexpr uint32_t kTcHandle = 0x5359;  // "SY"
inline constexpr uint32_t kTcPriority = 1;

class Datapath {
 public:
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // Loads both objects with their maps pinned under options.pinPath (reusing pins left
  // by an earlier daemon). nullptr and a message on failure.
  static std::unique_ptr<Datapath> load(const DatapathOptions& options, std::string& error);

  // Attaches (or atomically replaces) the four socket hooks on a cgroup v2 directory.
  bool attachSocketLB(const std::string& cgroupPath, std::string& error);
  // Removes our socket hooks (socketLB switched off in the config).
  void detachSocketLB();
  // Attaches (or atomically replaces) ingress and egress programs on a device of the
  // current network namespace, recording them for cleanup.
  bool attachTc(const std::string& device, std::string& error);

  const MapFds& maps() const { return fds_; }

  enum class Program { TcIngress, TcEgress, SockConnect4, SockSendmsg4, SockRecvmsg4, SockGetpeername4 };
  // For BPF_PROG_TEST_RUN in tests and for introspection.
  int programFd(Program p) const;
  const std::string& pinPath() const { return pinPath_; }

 private:
  Datapath() = default;

  std::string pinPath_;
  struct sock_lb* sock_ = nullptr;
  struct tc_lb* tc_ = nullptr;
  MapFds fds_;
};

// Routes libbpf's own messages to our logger (warnings and errors; debug with -v).
void installLibbpfLogger(bool verbose);

}  // namespace switchyard::bpf
