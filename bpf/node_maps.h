// What the datapath knows of this node besides services: its addresses (nodeaddr_v1, the
// ones NodePorts are served on flagged) and the cluster's networks (localnet_v1, from
// clusterCIDR). Each call makes the map exactly what it is given, writing only differences,
// so the daemon can call it on every netlink change.
#pragma once

#include <cstdint>
#include <map>
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

  std::map<lb::IpAddr, uint32_t> nodeAddresses() const;
  std::vector<lb::Cidr> localNets() const;

 private:
  MapFds fds_;
};

}  // namespace switchyard::bpf
