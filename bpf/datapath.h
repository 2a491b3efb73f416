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

#include "bpf/ct_gc.h"
#include "bpf/map_sizes.h"
#include "bpf/migrate.h"
#include "bpf/pinned_maps.h"
#include "bpf/unique_fd.h"

struct bpf_map;
struct sock_lb;
struct tc_lb;
struct xdp_lb;

namespace switchyard::bpf {

struct DatapathOptions {
  std::string pinPath;
  MapSizes sizes;
  // Source ports for SNAT (NodePort to another node's backend, and the port change that
  // keeps two flows from sharing a reply tuple), host order. Outside the ephemeral range,
  // so they never collide with the node's own connections.
  uint16_t snatPortMin = 20000;
  uint16_t snatPortMax = 29999;
  CtLifetimes ctLifetimes{};  // config conntrack.*: the tc programs' and the GC's
  // The seed of the tc programs' Maglev flow hash (loadBalancer.maglev.hashSeed).
  uint32_t maglevSeed = SY_MAGLEV_SEED_DEFAULT;
};

// What a tc device faces: pods (their veth host ends, a CNI bridge) or the network (the
// node's uplink or fabric, where NodePort and LB traffic from outside arrives).
enum class TcRole { Pod, Host };

// loadBalancer.acceleration (issue 11 item 4): how the XDP fast path is attached to the
// host-facing devices. Native: in the driver (XDP_FLAGS_DRV_MODE), an error where the driver
// has none; BestEffort: native where the driver has it, else generic (XDP_FLAGS_SKB_MODE).
enum class XdpMode { Native, BestEffort };

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
  // by an earlier daemon). A pinned map of another size (bpf.mapSizes changed) or an earlier
  // layout (a renamed map with a registered predecessor, bpf/migrate.h) is taken over: a new
  // map is made and filled from the old one, whose programs keep serving until attach
  // replaces them. nullptr and a message on failure; the pins are then as they were.
  static std::unique_ptr<Datapath> load(const DatapathOptions& options, std::string& error);

  // After the first attach (socket hooks and every device that exists): completes a
  // takeover (bpf/migrate.h, step 3) and drops the old maps. A no-op when load took over
  // nothing. Logs what was copied.
  void finishTakeover();
  // What load took over, for logs and tests: "ct_v2 -> ct_v2 (resize): 120 entries".
  std::vector<std::string> takeoverSummary() const;
  bool takingOver() const { return !takeovers_.empty(); }

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

  // Attaches the XDP fast path (bpf/xdp_lb.bpf.c) to a host-facing device through a bpf
  // link pinned under PIN/links/xdp_DEVICE (bpf/xdp_links.h), or swaps the program of the
  // link already there in place. `mode` says which XDP mode is acceptable; the result says
  // which one the device got ("native" or "generic").
  struct XdpAttachResult {
    enum class Status { Attached, Missing, Failed } status = Status::Failed;
    unsigned ifindex = 0;
    std::string mode;
    std::string error;
  };
  XdpAttachResult attachXdp(const std::string& device, XdpMode mode);
  // Detaches and unpins the XDP links of devices not in `keep` (acceleration switched off,
  // a device no longer host-facing, a device gone). Returns the devices detached.
  std::vector<std::string> detachXdpExcept(const std::set<std::string>& keep);

  const MapFds& maps() const { return fds_; }
  // IDs of our maps: what makes a program ours (cleanup.h).
  const std::set<uint32_t>& mapIds() const { return mapIds_; }

  enum class Program {
    TcFromPod, TcToPod, TcFromNet, TcToNet, TcFromPodL3, TcToPodL3, TcFromNetL3, TcToNetL3,
    SockConnect4, SockSendmsg4, SockRecvmsg4, SockGetpeername4,
    SockConnect6, SockSendmsg6, SockRecvmsg6, SockGetpeername6,
    XdpFromNet,
  };
  // For BPF_PROG_TEST_RUN in tests and for introspection.
  int programFd(Program p) const;
  const std::string& pinPath() const { return pinPath_; }

 private:
  Datapath() = default;

  std::string pinPath_;
  struct sock_lb* sock_ = nullptr;
  struct tc_lb* tc_ = nullptr;
  struct xdp_lb* xdp_ = nullptr;
  MapFds fds_;
  std::set<uint32_t> mapIds_;

  // A pinned map being taken over (bpf/migrate.h).
  struct Takeover {
    std::string pin;      // the new map's pin name
    std::string oldPin;   // where its entries come from (== pin for a resize)
    UniqueFd oldFd;
    int newFd = -1;       // owned by the skeleton
    struct bpf_map* map = nullptr;  // the new map in its skeleton (pinned once filled)
    ConvertEntry convert = nullptr;
    MapWriterKind writer = MapWriterKind::Daemon;
    CopyStats stats;
  };
  bool planTakeovers(std::string& error);
  bool copyTakeovers(std::string& error);
  void handOffPrevious(uint32_t progId, const std::string& progName);
  std::vector<Takeover> takeovers_;
  bool handoff_ = false;          // packets are handed to the replaced tc programs
  std::set<uint32_t> ownProgIds_; // this daemon's tc programs (never a hand-off target)
};

// Routes libbpf's own messages to our logger (warnings and errors; debug with -v).
void installLibbpfLogger(bool verbose);

}  // namespace switchyard::bpf
