// This node's links and addresses in one network namespace, as plain values: what
// NodeNetworkWatcher (watcher.h) reports and the pure selections (nodeport_addresses.h,
// device_match.h) read. No libnl type crosses this header.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::netlink {

// An address as 16 bytes in network order, IPv4 as IPv4-mapped (::ffff:a.b.c.d): the layout
// of lb::IpAddr::bytes and of union sy_addr (bpf/abi.h), so it converts by copying.
using IpBytes = std::array<uint8_t, 16>;

IpBytes ipv4Mapped(const uint8_t (&v4)[4]);
bool isIpv4Mapped(const IpBytes& ip);
std::string ipString(const IpBytes& ip);  // "198.18.0.1", "2001:db8::1"

// One network device (rtnl link).
struct Link {
  int ifindex = 0;
  std::string name;
  std::string kind;       // IFLA_INFO_KIND: "veth", "dummy", "bridge", ...; "" for a physical NIC
  int masterIfindex = 0;  // the bridge or bond it is enslaved to; 0 = none
  uint32_t mtu = 0;
  bool up = false;        // IFF_UP: administratively up
  bool running = false;   // IFF_RUNNING: operationally up (carrier)
  bool loopback = false;  // IFF_LOOPBACK
  bool hasL2 = false;     // ARPHRD_ETHER: packets carry an Ethernet header before L3

  auto operator<=>(const Link&) const = default;
};

// The kernel's address scopes (RT_SCOPE_*); other values are possible and kept as they are.
enum class AddressScope : uint8_t { Universe = 0, Site = 200, Link = 253, Host = 254 };
const char* scopeName(AddressScope s);  // "universe", "site", "link", "host", "other"

// One address of a link (rtnl addr): the local address (IFA_LOCAL), not a point-to-point peer.
struct Address {
  int ifindex = 0;
  IpBytes ip{};           // see IpBytes
  uint8_t prefixLen = 0;  // as configured: 0-32 for IPv4, 0-128 for IPv6
  int family = AF_INET;   // AF_INET or AF_INET6
  AddressScope scope = AddressScope::Universe;
  bool tentative = false;   // IFA_F_TENTATIVE: IPv6 duplicate address detection not done yet
  bool deprecated = false;  // IFA_F_DEPRECATED: preferred lifetime over, still valid

  std::string str() const;  // "198.18.0.1/24", "2001:db8::1/64"
  auto operator<=>(const Address&) const = default;
};

// Everything at one moment. Links sorted by ifindex; addresses by (ifindex, family, ip,
// prefixLen). An address is listed only while its link is.
struct NodeNetwork {
  std::vector<Link> links;
  std::vector<Address> addresses;

  const Link* findLink(int ifindex) const;
  const Link* findLink(std::string_view name) const;
  bool operator==(const NodeNetwork&) const = default;
};

}  // namespace switchyard::netlink
