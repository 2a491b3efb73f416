// The vocabulary of lb/: frontends and backends as kube-proxy semantics produce them,
// independent of BPF types (bpf/map_writer.cpp converts them to the map contract).
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::lb {

// An IPv4 or IPv6 address; IPv4 is kept IPv4-mapped (::ffff:a.b.c.d), as in the maps.
struct IpAddr {
  std::array<uint8_t, 16> bytes{};

  static std::optional<IpAddr> parse(std::string_view text);
  bool isV4() const;
  std::string str() const;
  auto operator<=>(const IpAddr&) const = default;
};

inline constexpr uint8_t kProtoTCP = 6;
inline constexpr uint8_t kProtoUDP = 17;
const char* protoName(uint8_t proto);

// Where a service is reached: (address, port, protocol). Port in host order.
struct FrontendKey {
  IpAddr addr;
  uint16_t port = 0;
  uint8_t proto = kProtoTCP;

  std::string str() const;  // "198.19.0.10:80/TCP", "[2001:db8::1]:80/TCP"
  auto operator<=>(const FrontendKey&) const = default;
};

// One backend of a frontend. Port in host order.
struct BackendKey {
  IpAddr addr;
  uint16_t port = 0;
  uint8_t proto = kProtoTCP;

  std::string str() const;
  auto operator<=>(const BackendKey&) const = default;
};

struct Backend {
  BackendKey key;
  bool terminating = false;
  auto operator<=>(const Backend&) const = default;
};

// Slot-0 flags, mirrored from abi.h's SY_SVC_F_* (bpf/abi_check.cpp checks they agree).
inline constexpr uint16_t kFrontendClusterIP = 1u << 0;

// Hashes for the control plane's indexes (FNV-1a over the fixed-size fields).
inline size_t hashBytes(const uint8_t* p, size_t n, size_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ p[i]) * 1099511628211ull;
  }
  return h;
}
struct AddrPortHash {
  template <typename K>
  size_t operator()(const K& k) const {
    size_t h = hashBytes(k.addr.bytes.data(), k.addr.bytes.size());
    uint8_t tail[3] = {static_cast<uint8_t>(k.port >> 8), static_cast<uint8_t>(k.port), k.proto};
    return hashBytes(tail, sizeof(tail), h);
  }
};

struct Frontend {
  FrontendKey key;
  std::vector<Backend> backends;  // sorted, unique
  uint16_t flags = 0;
  std::string portName;           // the Service port's name, for status and logs
};

}  // namespace switchyard::lb
