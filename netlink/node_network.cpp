#include "netlink/node_network.h"

#include <arpa/inet.h>

#include <cstring>

namespace switchyard::netlink {

IpBytes ipv4Mapped(const uint8_t (&v4)[4]) {
  IpBytes ip{};
  ip[10] = 0xff;
  ip[11] = 0xff;
  std::memcpy(&ip[12], v4, 4);
  return ip;
}

bool isIpv4Mapped(const IpBytes& ip) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(ip.data(), kPrefix, sizeof(kPrefix)) == 0;
}

std::string ipString(const IpBytes& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isIpv4Mapped(ip)) {
    inet_ntop(AF_INET, &ip[12], buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  }
  return buf;
}

const char* scopeName(AddressScope s) {
  switch (s) {
    case AddressScope::Universe: return "universe";
    case AddressScope::Site: return "site";
    case AddressScope::Link: return "link";
    case AddressScope::Host: return "host";
  }
  return "other";
}

std::string Address::str() const { return ipString(ip) + "/" + std::to_string(prefixLen); }

const Link* NodeNetwork::findLink(int ifindex) const {
  for (const Link& l : links) {
    if (l.ifindex == ifindex) {
      return &l;
    }
  }
  return nullptr;
}

const Link* NodeNetwork::findLink(std::string_view name) const {
  for (const Link& l : links) {
    if (l.name == name) {
      return &l;
    }
  }
  return nullptr;
}

}  // namespace switchyard::netlink
