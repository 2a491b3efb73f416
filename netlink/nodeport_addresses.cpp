#include "netlink/nodeport_addresses.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

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

// "ADDR/LEN" into a 128-bit prefix, or a reason it is not one.
std::optional<std::string> parseCidr(const std::string& text, IpBytes& addr, uint8_t& prefixLen, bool& v4) {
  static constexpr const char* kNotCidr = "must be a CIDR (such as 198.18.0.0/15 or 2001:db8::/32)";
  auto slash = text.find('/');
  if (slash == std::string::npos) {
    return kNotCidr;
  }
  std::string ip = text.substr(0, slash);
  std::string len = text.substr(slash + 1);
  unsigned bits = 0;
  auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), bits);
  if (len.empty() || ec != std::errc() || end != len.data() + len.size()) {
    return kNotCidr;
  }
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
    if (bits > 32) {
      return "an IPv4 prefix length must be 0-32";
    }
    uint8_t b[4];
    std::memcpy(b, &a4, 4);
    addr = ipv4Mapped(b);
    prefixLen = static_cast<uint8_t>(96 + bits);
    v4 = true;
  } else if (inet_pton(AF_INET6, ip.c_str(), &a6) == 1) {
    if (bits > 128) {
      return "an IPv6 prefix length must be 0-128";
    }
    std::memcpy(addr.data(), &a6, 16);
    if (isIpv4Mapped(addr)) {
      return "an IPv4-mapped IPv6 prefix is ambiguous: write the IPv4 CIDR";
    }
    prefixLen = static_cast<uint8_t>(bits);
    v4 = false;
  } else {
    return kNotCidr;
  }
  for (unsigned i = prefixLen; i < 128; ++i) {  // host bits go, as in net.ParseCIDR
    addr[i / 8] &= static_cast<uint8_t>(~(0x80u >> (i % 8)));
  }
  return std::nullopt;
}

}  // namespace

bool NodePortAddresses::Cidr::contains(const IpBytes& ip) const {
  unsigned full = prefixLen / 8;
  if (std::memcmp(ip.data(), addr.data(), full) != 0) {
    return false;
  }
  unsigned rest = prefixLen % 8;
  if (rest == 0) {
    return true;
  }
  uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
  return (ip[full] & mask) == addr[full];
}

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
    Cidr c;
    bool v4 = false;
    if (auto reason = parseCidr(e, c.addr, c.prefixLen, v4)) {
      errors.push_back(where + *reason);
      ok = false;
      continue;
    }
    Family& f = v4 ? npa.v4_ : npa.v6_;
    f.matchAll = false;
    f.cidrs.push_back(c);
    if (c.prefixLen == (v4 ? 96 : 0)) {
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
                        : std::any_of(f.cidrs.begin(), f.cidrs.end(), [&](const Cidr& c) { return c.contains(a.ip); });
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
