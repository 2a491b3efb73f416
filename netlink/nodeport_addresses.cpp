#include "netlink/nodeport_addresses.h"

#include <arpa/inet.h>

#include <algorithm>

namespace switchyard::netlink {
namespace {

// kube-proxy's "primary" means the Node object's primary IPs (status.addresses, one per
// family, taken as /32 and /128). switchyard reads no Node addresses, and guessing them from
// the links would select other addresses than kube-proxy does, so the keyword is refused
// rather than approximated.
constexpr const char* kPrimaryKeyword = "primary";

bool isLoopback(const IpBytes& ip) {
  if (isIpv4Mapped(ip)) {
    return ip[12] == 127;
  }
  static constexpr IpBytes kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ip == kV6Loopback;
}

bool isIpv6LinkLocal(const IpBytes& ip) { return ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80; }

}  // namespace

std::optional<NodePortAddresses> NodePortAddresses::parse(const std::vector<std::string>& entries,
                                                          std::vector<std::string>& errors) {
  NodePortAddresses npa;
  npa.entries_ = entries;
  // Whether a zero CIDR was seen: it makes its family match all, whatever else is listed.
  bool zero4 = false, zero6 = false;
  bool ok = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& e = entries[i];
    std::string where = "nodePortAddresses[" + std::to_string(i) + "]: \"" + e + "\": ";
    if (e == kPrimaryKeyword) {
      errors.push_back(where +
                       "not supported: kube-proxy takes it to mean the Node object's primary IPs, "
                       "which switchyard does not read; list their CIDRs (ADDR/32, ADDR/128) instead");
      ok = false;
      continue;
    }
    std::string reason;
    auto c = lb::Cidr::parse(e, &reason);
    if (!c) {
      errors.push_back(where + reason);
      ok = false;
      continue;
    }
    bool v4 = c->addr.isV4();
    Family& f = v4 ? npa.v4_ : npa.v6_;
    f.matchAll = false;
    f.cidrs.push_back(*c);
    if (c->prefixLen == (v4 ? 96 : 0)) {
      (v4 ? zero4 : zero6) = true;
    }
  }
  if (!ok) {
    return std::nullopt;
  }
  for (auto [f, zero] : {std::pair{&npa.v4_, zero4}, std::pair{&npa.v6_, zero6}}) {
    if (zero) {
      f->matchAll = true;
      f->cidrs.clear();
    }
  }
  return npa;
}

const NodePortAddresses::Family& NodePortAddresses::familyOf(const IpBytes& ip) const {
  return isIpv4Mapped(ip) ? v4_ : v6_;
}

std::vector<IpBytes> NodePortAddresses::select(const std::vector<Address>& addresses) const {
  std::vector<IpBytes> out;
  for (const Address& a : addresses) {
    const Family& f = familyOf(a.ip);
    bool selected = f.matchAll
                        ? !isLoopback(a.ip) && !isIpv6LinkLocal(a.ip)
                        : std::any_of(f.cidrs.begin(), f.cidrs.end(), [&](const lb::Cidr& c) { return c.contains(lb::IpAddr{a.ip}); });
    if (selected) {
      out.push_back(a.ip);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool NodePortAddresses::matchesAll(int family) const { return (family == AF_INET ? v4_ : v6_).matchAll; }

std::string NodePortAddresses::str() const {
  std::string s = "[";
  for (const std::string& e : entries_) {
    s += e + ", ";
  }
  if (v4_.matchAll) {
    s += "all IPv4, ";
  }
  if (v6_.matchAll) {
    s += "all IPv6, ";
  }
  s.resize(s.size() - 2);
  return s + "]";
}

}  // namespace switchyard::netlink
