// What the datapath knows of this node besides services: its addresses (nodeaddr_v1, the
// ones NodePorts are served on flagged) and the cluster's networks (localnet_v1, from
// clusterCIDR). Each call makes the map exactly what it is given, writing only differences,
// so the daemon can call it on every netlink change.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bpf/pinned_maps.h"
#include "lb/types.h"

namespace switchyard::bpf {

class NodeMaps {
 public:
  explicit NodeMaps(const MapFds& fds) : fds_(fds) {}

  // address -> SY_NODE_ADDR_F_* flags. Returns false with a message naming the map, the
  // address and the errno for the first failure (the others are still attempted).
  bool setNodeAddresses(const std::map<lb::IpAddr, uint32_t>& addrs, std::string& error);
  // The cluster's networks (SY_LOCAL_NET_F_CLUSTER).
  bool setLocalNets(const std::vector<lb::Cidr>& nets, std::string& error);

  // The cgroups the socket hooks skip (sockskip_v1): cgroup ID -> level below the cgroup v2
  // root (1..31), plus key 0 with the levels in use.
  bool setSocketLBSkip(const std::map<uint64_t, uint32_t>& cgroups, std::string& error);

  std::map<lb::IpAddr, uint32_t> nodeAddresses() const;
  std::map<uint64_t, uint32_t> socketLBSkip() const;  // without key 0
  std::vector<lb::Cidr> localNets() const;

 private:
  MapFds fds_;
};

// A cgroup as the socket hooks see it: its ID (the inode of its directory on cgroup v2) and
// its level (directories between it and the top of the cgroup v2 mount it is on, which must
// show the hierarchy's root: the host's /sys/fs/cgroup, or a hostPath mount of it).
struct CgroupRef {
  uint64_t id = 0;
  uint32_t level = 0;
};
// nullopt with the reason when path is not a cgroup v2 directory below the root.
std::optional<CgroupRef> resolveCgroup(const std::string& path, std::string& why);

}  // namespace switchyard::bpf
