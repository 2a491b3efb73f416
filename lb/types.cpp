#include "lb/types.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace switchyard::lb {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  std::string s(text);
  IpAddr a;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    if (a.isV4()) {
      return std::nullopt;  // ::ffff:a.b.c.d written as IPv6 is not a pod or service IP
    }
    return a;
  }
  return std::nullopt;
}

bool IpAddr::isV4() const {
  static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(bytes.data(), prefix, sizeof(prefix)) == 0;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isV4()) {
    inet_ntop(AF_INET, &bytes[12], buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  }
  return buf;
}

const char* protoName(uint8_t proto) {
  switch (proto) {
    case kProtoTCP: return "TCP";
    case kProtoUDP: return "UDP";
    case kProtoSCTP: return "SCTP";
    default: return "?";
  }
}

const char* scopeName(Scope s) { return s == Scope::Internal ? "internal" : "external"; }

const char* kindName(FrontendKind k) {
  switch (k) {
    case FrontendKind::ClusterIP: return "ClusterIP";
    case FrontendKind::NodePort: return "NodePort";
    case FrontendKind::ExternalIP: return "ExternalIP";
    case FrontendKind::LoadBalancer: return "LoadBalancer";
  }
  return "?";
}

// -- Maglev (issue 11 item 3) --
const char* algorithmName(Algorithm a) { return a == Algorithm::Maglev ? "maglev" : "random"; }

std::optional<Algorithm> parseAlgorithm(std::string_view text) {
  if (text == "random") {
    return Algorithm::Random;
  }
  if (text == "maglev") {
    return Algorithm::Maglev;
  }
  return std::nullopt;
}
// -- end Maglev --

IpAddr wildcardOf(const IpAddr& a) {
  IpAddr w;
  if (a.isV4()) {
    w.bytes[10] = 0xff;
    w.bytes[11] = 0xff;
  }
  return w;
}

bool isWildcard(const IpAddr& a) { return a == wildcardOf(a); }

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Cidr> {
    if (why) *why = reason;
    return std::nullopt;
  };
  static constexpr const char* kNotCidr = "must be a CIDR (such as 198.18.0.0/15 or 2001:db8::/32)";
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return fail(kNotCidr);
  }
  std::string_view len = text.substr(slash + 1);
  unsigned n = 0;
  auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), n);
  if (len.empty() || ec != std::errc() || end != len.data() + len.size()) {
    return fail(kNotCidr);
  }
  std::string host(text.substr(0, slash));
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_V4MAPPED(&v6)) {
    return fail("an IPv4-mapped IPv6 prefix is ambiguous: write the IPv4 CIDR");
  }
  auto addr = IpAddr::parse(host);
  if (!addr) {
    return fail(kNotCidr);
  }
  if (n > (addr->isV4() ? 32u : 128u)) {
    return fail(addr->isV4() ? "an IPv4 prefix length must be 0-32" : "an IPv6 prefix length must be 0-128");
  }
  Cidr c;
  c.prefixLen = static_cast<uint8_t>(addr->isV4() ? 96 + n : n);
  c.addr = *addr;
  for (unsigned bit = c.prefixLen; bit < 128; ++bit) {
    c.addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return c;
}

bool Cidr::contains(const IpAddr& a) const {
  for (unsigned bit = 0; bit < prefixLen; ++bit) {
    uint8_t mask = static_cast<uint8_t>(0x80u >> (bit % 8));
    if ((a.bytes[bit / 8] & mask) != (addr.bytes[bit / 8] & mask)) {
      return false;
    }
  }
  return true;
}

std::string Cidr::str() const {
  return addr.str() + "/" + std::to_string(addr.isV4() ? prefixLen - 96 : prefixLen);
}

namespace {
// Built by appending to one string: GCC 12 at -O3 raises a false -Wrestrict (PR 105329) on
// `"[" + std::string(...)`, and -Werror builds stop on it.
std::string hostPort(const IpAddr& a, uint16_t port, bool wildcard = false) {
  std::string out;
  if (!a.isV4()) out += '[';
  out += wildcard ? "*" : a.str();
  if (!a.isV4()) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}
}  // namespace

std::string FrontendKey::str() const {
  std::string out = hostPort(addr, port, isWildcard(addr));
  out += '/';
  out += protoName(proto);
  if (scope == Scope::Internal) out += " (internal)";
  return out;
}
std::string BackendKey::str() const { return hostPort(addr, port) + "/" + protoName(proto); }

}  // namespace switchyard::lb
