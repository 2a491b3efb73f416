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

// The family's wildcard (::ffff:0.0.0.0 or ::): NodePort frontends are keyed by it and
// found on every NodePort address of the node (bpf/abi.h).
IpAddr wildcardOf(const IpAddr& a);
bool isWildcard(const IpAddr& a);

// An address prefix; IPv4 prefixes as IPv4-mapped (a /24 is prefixLen 120).
struct Cidr {
  IpAddr addr;  // host bits zero
  uint8_t prefixLen = 128;

  // "198.18.0.0/16", "2001:db8::/32". Host bits are cleared, as Go's net.ParseCIDR does. An
  // IPv4-mapped IPv6 prefix (::ffff:198.18.0.0/112) is refused: it is ambiguous between the
  // families. On failure, `why` (when given) says what is wrong, for the caller's error line.
  static std::optional<Cidr> parse(std::string_view text, std::string* why = nullptr);
  bool contains(const IpAddr& a) const;
  std::string str() const;
  auto operator<=>(const Cidr&) const = default;
};

inline constexpr uint8_t kProtoTCP = 6;
inline constexpr uint8_t kProtoUDP = 17;
inline constexpr uint8_t kProtoSCTP = 132;
const char* protoName(uint8_t proto);

// Which clients a frontend entry serves (abi.h SY_SCOPE_*): every frontend has an external
// entry; one whose traffic policies give in-cluster clients other backends also has an
// internal one.
enum class Scope : uint8_t { External = 0, Internal = 1 };
const char* scopeName(Scope s);

// How a client reaches the service (abi.h SY_SVC_KIND_*).
enum class FrontendKind : uint8_t { ClusterIP = 1, NodePort = 2, ExternalIP = 3, LoadBalancer = 4 };
const char* kindName(FrontendKind k);

// Where a service is reached: (address, port, protocol, scope). Port in host order.
struct FrontendKey {
  IpAddr addr;
  uint16_t port = 0;
  uint8_t proto = kProtoTCP;
  Scope scope = Scope::External;

  // "198.19.0.10:80/TCP", "[2001:db8::1]:80/TCP", "*:30080/TCP" (NodePort), with
  // " (internal)" for the internal scope.
  std::string str() const;
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
  bool local = false;  // the endpoint runs on this node
  // Its share of a Maglev frontend's table (lb/maglev.h): entries in proportion to it; 0 =
  // none (no new flows through the table; flows it has keep it). Random choices ignore it.
  uint16_t weight = 1;
  auto operator<=>(const Backend&) const = default;
};

// Slot-0 flags, mirrored from abi.h's SY_SVC_F_* (bpf/abi_check.cpp checks they agree).
inline constexpr uint16_t kFrontendTwoScopes = 1u << 0;     // has an internal-scope entry
inline constexpr uint16_t kFrontendDropEmpty = 1u << 1;     // no backends: drop, not reject
inline constexpr uint16_t kFrontendSourceRanges = 1u << 2;  // loadBalancerSourceRanges apply
// Forwarding of external clients to other nodes' backends (loadBalancer.mode, issue 11).
inline constexpr uint16_t kFrontendDsr = 1u << 15;         // direct server return, not SNAT
inline constexpr uint16_t kFrontendDsrIpip = 1u << 14;     // DSR by encapsulation, not the option
inline constexpr uint16_t kFrontendModeHybrid = 1u << 13;  // mode hybrid (status only)
// -- Maglev (issue 11 item 3) --
inline constexpr uint16_t kFrontendMaglev = 1u << 3;        // tc: new flows by its Maglev table

// How the tc programs pick a new flow's backend: a random slot (kube-proxy's choice), or the
// frontend's Maglev table (the same choice on every node).
enum class Algorithm : uint8_t { Random, Maglev };
const char* algorithmName(Algorithm a);  // "random", "maglev"
std::optional<Algorithm> parseAlgorithm(std::string_view text);
// -- end Maglev --

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
    h = hashBytes(tail, sizeof(tail), h);
    if constexpr (requires { k.scope; }) {
      uint8_t scope = static_cast<uint8_t>(k.scope);
      h = hashBytes(&scope, 1, h);
    }
    return h;
  }
};

// What slot 0 of a frontend says besides its backends.
struct FrontendHead {
  FrontendKind kind = FrontendKind::ClusterIP;
  uint16_t flags = 0;            // kFrontend*
  uint32_t affinityTimeout = 0;  // sessionAffinity ClientIP timeout in seconds; 0 = none
  auto operator<=>(const FrontendHead&) const = default;
};

struct Frontend {
  FrontendKey key;
  FrontendHead head;
  std::vector<Backend> backends;  // sorted, unique
  std::vector<Cidr> sourceRanges; // loadBalancerSourceRanges (kFrontendSourceRanges), sorted
  std::string portName;           // the Service port's name, for status and logs
};

}  // namespace switchyard::lb
