#include "lb/types.h"

#include <arpa/inet.h>

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
    default: return "?";
  }
}

namespace {
std::string hostPort(const IpAddr& a, uint16_t port) {
  return a.isV4() ? a.str() + ":" + std::to_string(port)
                  : "[" + a.str() + "]:" + std::to_string(port);
}
}  // namespace

std::string FrontendKey::str() const { return hostPort(addr, port) + "/" + protoName(proto); }
std::string BackendKey::str() const { return hostPort(addr, port) + "/" + protoName(proto); }

}  // namespace switchyard::lb
