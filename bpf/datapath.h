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
#include <set>
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
  // Source ports for SNAT (NodePort to another node's backend, and the port change that
  // keeps two flows from sharing a reply tuple), host order. Outside the ephemeral range,
  // so they never collide with the node's own connections.
  uint16_t snatPortMin = 20000;
  uint16_t snatPortMax = 29999;
  // The seed of the tc programs' Maglev flow hash (loadBalancer.maglev.hashSeed).
  uint32_t maglevSeed = SY_MAGLEV_SEED_DEFAULT;
};

// What a tc device faces: pods (their veth host ends, a CNI bridge) or the network (the
// node's uplink or fabric, where NodePort and LB traffic from outside arrives).
enum class TcRole { Pod, Host };

// Pin names of the socket hooks' links under PIN/links/.
inline constexpr std::array<const char*, 8> kSocketHooks = {
    "connect4", "sendmsg4", "recvmsg4", "getpeername4",
    "connect6", "sendmsg6", "recvmsg6", "getpeername6"};

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
  // current network namespace, recording them for cleanup. A filter already at
  // switchyard's handle and priority is replaced only when it is ours: recorded in our
  // tc_attach map, or a program using our maps (a restarted daemon's, or one attached just
  // before a crash); anything else (another daemon naming the same device, another tool)
  // is left alone and the attach is Refused.
  struct TcAttachResult {
    enum class Status { Attached, Missing, Refused, Failed } status = Status::Failed;
    unsigned ifindex = 0;
    std::string error;
  };
  TcAttachResult attachTc(const std::string& device, TcRole role = TcRole::Pod);

  const MapFds& maps() const { return fds_; }
  // IDs of our maps: what makes a program ours (cleanup.h).
  const std::set<uint32_t>& mapIds() const { return mapIds_; }

  enum class Program {
    TcFromPod, TcToPod, TcFromNet, TcToNet, TcFromPodL3, TcToPodL3, TcFromNetL3, TcToNetL3,
    SockConnect4, SockSendmsg4, SockRecvmsg4, SockGetpeername4,
    SockConnect6, SockSendmsg6, SockRecvmsg6, SockGetpeername6,
  };
  // For BPF_PROG_TEST_RUN in tests and for introspection.
  int programFd(Program p) const;
  const std::string& pinPath() const { return pinPath_; }

 private:
  Datapath() = default;

  std::string pinPath_;
  struct sock_lb* sock_ = nullptr;
  struct tc_lb* tc_ = nullptr;
  MapFds fds_;
  std::set<uint32_t> mapIds_;
};

// Routes libbpf's own messages to our logger (warnings and errors; debug with -v).
void installLibbpfLogger(bool verbose);

}  // namespace switchyard::bpf
