// kube-proxy's nodePortAddresses: which of this node's addresses serve NodePorts. A pure
// function of the configured CIDRs and the node's addresses (node_network.h), mirroring
// kubernetes pkg/proxy/util/nodeport_addresses.go (NewNodePortAddresses, GetNodeIPs) per
// address family:
//  - A family with no CIDR in the list (and so every family of an empty list) matches all of
//    the node's addresses of that family, except loopback (127.0.0.0/8, ::1: kube-proxy's
//    MatchAll without localhost NodePorts) and IPv6 link-local (fe80::/10: one such address
//    can be on many links, and the nodeaddr map has no link in its key).
//  - A zero CIDR (0.0.0.0/0, ::/0) is the same as no CIDR of its family, whatever else is
//    listed (kube-proxy's IsZeroCIDR short-cut).
//  - Otherwise a family matches exactly the addresses inside one of its CIDRs, loopback and
//    link-local included when a CIDR covers them.
// Each address is selected once, however many links carry it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lb/types.h"
#include "netlink/node_network.h"

namespace switchyard::netlink {

class NodePortAddresses {
 public:
  // Parses the configured list. Every entry must be a CIDR ("198.18.0.0/15",
  // "2001:db8::/32"); host bits are ignored, as Go's net.ParseCIDR does. The keyword
  // "primary" is refused (see the .cpp for why). Every bad entry is one error
  // "nodePortAddresses[INDEX]: \"ENTRY\": REASON", all in one pass; nullopt if there is any.
  static std::optional<NodePortAddresses> parse(const std::vector<std::string>& entries,
                                                std::vector<std::string>& errors);

  // The addresses that serve NodePorts, sorted, each once.
  std::vector<IpBytes> select(const std::vector<Address>& addresses) const;

  // Whether a family (AF_INET, AF_INET6) matches every node address but loopback and
  // link-local (no CIDR of its family, or a zero CIDR).
  bool matchesAll(int family) const;

  // "[198.18.0.0/15, all IPv6]" for logs.
  std::string str() const;

 private:
  struct Family {
    bool matchAll = true;
    std::vector<lb::Cidr> cidrs;
  };
  const Family& familyOf(const IpBytes& ip) const;

  Family v4_, v6_;
  std::vector<std::string> entries_;
};

}  // namespace switchyard::netlink
