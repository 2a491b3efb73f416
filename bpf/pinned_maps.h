// The set of map fds the control plane works with, either borrowed from a loaded skeleton
// (the daemon) or opened from their pins (status, cleanup, tests).
#pragma once

#include <cstdint>
#include <string>

#include "bpf/abi.h"
#include "bpf/unique_fd.h"

namespace switchyard::bpf {

// Pin names, from the one place that names the maps.
inline constexpr const char* kPinServices = SY_STRINGIFY(SY_MAP_SERVICES);
inline constexpr const char* kPinBackends = SY_STRINGIFY(SY_MAP_BACKENDS);
inline constexpr const char* kPinRevNat = SY_STRINGIFY(SY_MAP_REVNAT);
inline constexpr const char* kPinCt = SY_STRINGIFY(SY_MAP_CT);
inline constexpr const char* kPinSockRevNat = SY_STRINGIFY(SY_MAP_SOCK_REVNAT);
inline constexpr const char* kPinSockSkip = SY_STRINGIFY(SY_MAP_SOCK_SKIP);
inline constexpr const char* kPinAffinity = SY_STRINGIFY(SY_MAP_AFFINITY);
inline constexpr const char* kPinSrcRanges = SY_STRINGIFY(SY_MAP_SRC_RANGES);
inline constexpr const char* kPinNodeAddrs = SY_STRINGIFY(SY_MAP_NODE_ADDRS);
inline constexpr const char* kPinLocalNets = SY_STRINGIFY(SY_MAP_LOCAL_NETS);
inline constexpr const char* kPinCounters = SY_STRINGIFY(SY_MAP_COUNTERS);
inline constexpr const char* kPinMeta = SY_STRINGIFY(SY_MAP_META);
inline constexpr const char* kPinTcAttach = SY_STRINGIFY(SY_MAP_TC_ATTACH);
inline constexpr const char* kPinMaglev = SY_STRINGIFY(SY_MAP_MAGLEV);  // Maglev (issue 11 item 3)
inline constexpr const char* kPinPolIpcache = SY_STRINGIFY(SY_MAP_POL_IPCACHE);  // NetworkPolicy
inline constexpr const char* kPinPolEndpoints = SY_STRINGIFY(SY_MAP_POL_ENDPOINTS);
inline constexpr const char* kPinPolRules = SY_STRINGIFY(SY_MAP_POL_RULES);
inline constexpr const char* kPinPolState = SY_STRINGIFY(SY_MAP_POL_STATE);
inline constexpr const char* kPinPolEvents = SY_STRINGIFY(SY_MAP_POL_EVENTS);
inline constexpr const char* kPinXdpDeny = SY_STRINGIFY(SY_MAP_XDP_DENY);  // XDP (issue 11 item 4)
inline constexpr const char* kLinksDir = "links";  // pinned cgroup and XDP links live here

// tc filter identity: one handle and priority for every switchyard filter.
inline constexpr uint32_t kTcHandle = 0x5359;  // "SY"
inline constexpr uint32_t kTcPriority = 1;
// Program names as the kernel keeps them (15 characters at most) start with these.
inline constexpr const char* kTcProgPrefix = "sy_tc_";
inline constexpr const char* kSockProgPrefix = "sy_sock_";

// Raw fds; whoever builds this keeps them open for its lifetime.
struct MapFds {
  int services = -1;
  int backends = -1;
  int revNat = -1;
  int ct = -1;
  int sockRevNat = -1;
  int sockSkip = -1;
  int affinity = -1;
  int srcRanges = -1;
  int nodeAddrs = -1;
  int localNets = -1;
  int counters = -1;
  int meta = -1;
  int tcAttach = -1;
  int maglev = -1;  // Maglev (issue 11 item 3)
  int polIpcache = -1;  // NetworkPolicy (bpf/policy_abi.h, docs/policy.md)
  int polEndpoints = -1;
  int polRules = -1;
  int polState = -1;
  int polEvents = -1;  // ring buffer of denied flows (policy.logDenied)
  int xdpDeny = -1;  // loadBalancer.denyCIDRs (bpf/xdp_lb.bpf.c)
};

// Who writes a map: what an upgrade (bpf/migrate.h) must copy again after the programs
// were replaced.
enum class MapWriterKind {
  Daemon,    // only the control plane: one copy at load is complete
  Kernel,    // the programs too (conntrack, affinity, socket reverse NAT): copied again
  Counters,  // per-CPU counters: the old values are added to the new at the end
  Meta,      // written by each daemon itself: not copied
};

// Every pinned map: its pin name, the MapFds member that holds its fd, and who writes it.
// The one list that open, cleanup, map-ID checks and upgrades walk.
struct MapPin {
  const char* name;
  int MapFds::*fd;
  MapWriterKind writer = MapWriterKind::Daemon;
};
inline constexpr MapPin kMapPins[] = {
    {kPinServices, &MapFds::services},
    {kPinBackends, &MapFds::backends},
    {kPinRevNat, &MapFds::revNat},
    {kPinCt, &MapFds::ct, MapWriterKind::Kernel},
    {kPinSockRevNat, &MapFds::sockRevNat, MapWriterKind::Kernel},
    {kPinAffinity, &MapFds::affinity, MapWriterKind::Kernel},
    {kPinSrcRanges, &MapFds::srcRanges},
    {kPinNodeAddrs, &MapFds::nodeAddrs},
    {kPinLocalNets, &MapFds::localNets},
    {kPinCounters, &MapFds::counters, MapWriterKind::Counters},
    {kPinMeta, &MapFds::meta, MapWriterKind::Meta},
    {kPinTcAttach, &MapFds::tcAttach},
    {kPinSockSkip, &MapFds::sockSkip},
    {kPinMaglev, &MapFds::maglev},  // Maglev (issue 11 item 3)
    {kPinPolIpcache, &MapFds::polIpcache},
    {kPinPolEndpoints, &MapFds::polEndpoints},
    {kPinPolRules, &MapFds::polRules},
    {kPinPolState, &MapFds::polState},
    {kPinPolEvents, &MapFds::polEvents, MapWriterKind::Meta},
    {kPinXdpDeny, &MapFds::xdpDeny},
};
// Who writes the map pinned under `name` (Daemon for a name not in kMapPins).
MapWriterKind writerOf(const std::string& name);
// Pins of earlier layouts that cleanup also removes (ABI version 1, and ct_v2 of 2).
inline constexpr const char* kLegacyPins[] = {"services_v1", "backends_v1", "ct_v1", "counters_v1", "ct_v2"};

// Maps opened from pins under a pin path.
class PinnedMaps {
 public:
  // Opens every map pinned under pinPath. Returns false with a message naming the pin
  // when one is missing or cannot be opened.
  bool open(const std::string& pinPath, std::string& error);
  const MapFds& fds() const { return fds_; }

 private:
  UniqueFd owned_[sizeof(kMapPins) / sizeof(kMapPins[0])];
  MapFds fds_;
};

}  // namespace switchyard::bpf
