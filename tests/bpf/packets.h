// Crafted packets for BPF_PROG_TEST_RUN (IPv4 and IPv6; TCP, UDP, SCTP, ICMP; with or without
// an Ethernet header, IPv4 options and IPv6 extension headers), and independent checks of
// what comes out: checksums and SCTP's CRC32c computed here from scratch, not with the
// helpers under test.
#pragma once

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace switchyard::bpftest {

inline constexpr uint8_t kProtoSctp = 132;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIcmp6 = 58;

inline uint32_t ip4(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

inline std::string ip4str(uint32_t be) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{be};
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

inline uint16_t foldSum(uint64_t sum) {
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

inline uint64_t addBytes(uint64_t sum, const uint8_t* p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) {
    sum += static_cast<uint64_t>(p[i] << 8 | p[i + 1]);
  }
  if (n & 1) {
    sum += static_cast<uint64_t>(p[n - 1] << 8);
  }
  return sum;
}

// CRC32c (Castagnoli), bit by bit: the reference the BPF table-driven one is checked against.
inline uint32_t crc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
  }
  return ~crc;
}

struct Packet {
  std::vector<uint8_t> bytes;
  size_t l3off = ETH_HLEN;  // 0 for a device without a link-layer header

  bool v6() const { return (bytes[l3off] >> 4) == 6; }
  iphdr* ip() { return reinterpret_cast<iphdr*>(bytes.data() + l3off); }
  const iphdr* ip() const { return reinterpret_cast<const iphdr*>(bytes.data() + l3off); }
  const ipv6hdr* ip6() const { return reinterpret_cast<const ipv6hdr*>(bytes.data() + l3off); }

  // Walks IPv6 extension headers (hop-by-hop, routing, destination options, fragment).
  size_t l3len() const {
    if (!v6()) {
      return ip()->ihl * 4u;
    }
    size_t off = sizeof(ipv6hdr);
    uint8_t nh = ip6()->nexthdr;
    while (nh == 0 || nh == 43 || nh == 60 || nh == 44) {
      const uint8_t* h = bytes.data() + l3off + off;
      uint8_t next = h[0];
      off += nh == 44 ? 8 : (h[1] + 1u) * 8;
      nh = next;
    }
    return off;
  }
  uint8_t proto() const {
    if (!v6()) {
      return ip()->protocol;
    }
    size_t off = sizeof(ipv6hdr);
    uint8_t nh = ip6()->nexthdr;
    while (nh == 0 || nh == 43 || nh == 60 || nh == 44) {
      const uint8_t* h = bytes.data() + l3off + off;
      off += nh == 44 ? 8 : (h[1] + 1u) * 8;
      nh = h[0];
    }
    return nh;
  }
  size_t ipLen() const { return v6() ? sizeof(ipv6hdr) + ntohs(ip6()->payload_len) : ntohs(ip()->tot_len); }
  uint8_t* l4() { return bytes.data() + l3off + l3len(); }
  const uint8_t* l4() const { return bytes.data() + l3off + l3len(); }
  size_t l4len() const { return ipLen() - l3len(); }
  size_t csumOff() const { return proto() == IPPROTO_TCP ? 16 : proto() == IPPROTO_UDP ? 6 : 2; }
  uint16_t sport() const { uint16_t v; std::memcpy(&v, l4(), 2); return ntohs(v); }
  uint16_t dport() const { uint16_t v; std::memcpy(&v, l4() + 2, 2); return ntohs(v); }
  uint8_t tcpFlags() const { return l4()[13]; }
  std::string addr(bool src) const {
    char buf[INET6_ADDRSTRLEN];
    if (v6()) {
      inet_ntop(AF_INET6, src ? &ip6()->saddr : &ip6()->daddr, buf, sizeof(buf));
      return std::string("[") + buf + "]";
    }
    return ip4str(src ? ip()->saddr : ip()->daddr);
  }
  std::string srcAddr() const { return addr(true); }
  std::string src() const { return addr(true) + ":" + std::to_string(sport()); }
  std::string dst() const { return addr(false) + ":" + std::to_string(dport()); }
  uint16_t l4csum() const {
    uint16_t v;
    std::memcpy(&v, l4() + csumOff(), 2);
    return v;
  }

  // One's-complement sum of the pseudo-header and the L4 segment.
  uint64_t l4Sum() const {
    uint64_t sum = v6() ? addBytes(0, reinterpret_cast<const uint8_t*>(&ip6()->saddr), 32)
                        : addBytes(0, reinterpret_cast<const uint8_t*>(&ip()->saddr), 8);
    sum += proto();
    sum += l4len();
    return addBytes(sum, l4(), l4len());
  }
  // True when the IPv4 header checksum verifies (IPv6 has none).
  bool ipChecksumOk() const {
    return v6() || foldSum(addBytes(0, reinterpret_cast<const uint8_t*>(ip()), ip()->ihl * 4)) == 0xffff;
  }
  // SCTP's CRC32c over the whole SCTP packet with the field zeroed, stored least
  // significant byte first (as Linux stores it).
  uint32_t sctpCrc() const {
    std::vector<uint8_t> copy(l4(), l4() + l4len());
    if (copy.size() < 12) {
      return 0;  // no SCTP common header
    }
    copy[8] = copy[9] = copy[10] = copy[11] = 0;
    return crc32c(copy.data(), copy.size());
  }
  uint32_t sctpField() const {
    const uint8_t* f = l4() + 8;
    return static_cast<uint32_t>(f[0]) | f[1] << 8 | f[2] << 16 | static_cast<uint32_t>(f[3]) << 24;
  }
  // True when the TCP/UDP checksum (with pseudo-header) verifies; IPv4 UDP 0 = none is OK;
  // SCTP: the CRC32c; ICMP: over the message (ICMPv6 with pseudo-header).
  bool l4ChecksumOk() const {
    if (proto() == kProtoSctp) {
      return sctpField() == sctpCrc();
    }
    if (proto() == kProtoIcmp) {
      return foldSum(addBytes(0, l4(), l4len())) == 0xffff;
    }
    if (!v6() && proto() == IPPROTO_UDP && l4csum() == 0) {
      return true;
    }
    return foldSum(l4Sum()) == 0xffff;
  }
  void fixChecksums() {
    if (!v6()) {
      ip()->check = 0;
      ip()->check = htons(static_cast<uint16_t>(~foldSum(addBytes(0, reinterpret_cast<uint8_t*>(ip()), ip()->ihl * 4))));
    }
    if (proto() == kProtoSctp) {
      uint32_t c = sctpCrc();
      uint8_t le[4] = {static_cast<uint8_t>(c), static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c >> 16),
                       static_cast<uint8_t>(c >> 24)};
      std::memcpy(l4() + 8, le, 4);
      return;
    }
    l4()[csumOff()] = l4()[csumOff() + 1] = 0;
    uint16_t c = htons(static_cast<uint16_t>(~foldSum(proto() == kProtoIcmp ? addBytes(0, l4(), l4len()) : l4Sum())));
    if (proto() == IPPROTO_UDP && c == 0) {
      c = 0xffff;
    }
    std::memcpy(l4() + csumOff(), &c, 2);
  }
};

// What to put between the IP header and L4, and around the packet.
struct PacketShape {
  bool l2 = true;                      // an Ethernet header
  std::vector<uint8_t> ipv4Options;    // a multiple of 4 bytes
  // IPv6 extension headers as (type, body) with the body's length such that 2 + body is a
  // multiple of 8 (the builder fills next-header and length); type 44 takes 6 body bytes.
  std::vector<std::pair<uint8_t, std::vector<uint8_t>>> v6Ext;
  uint16_t fragOff = 0x4000;           // IPv4 flags and offset (default DF)
};

// An IPv4/IPv6 + TCP/UDP/SCTP packet with a payload and valid checksums. The family follows
// the addresses ("198.18.1.2" or "2001:db8::2").
inline Packet makePacket(uint8_t proto, const char* saddr, uint16_t sport, const char* daddr,
                         uint16_t dport, uint8_t tcpFlags = 0x02 /* SYN */,
                         const std::string& payload = "switchyard test payload",
                         const PacketShape& shape = {}) {
  bool v6 = std::strchr(saddr, ':') != nullptr;
  size_t extLen = 0;
  for (const auto& [type, body] : shape.v6Ext) {
    extLen += 2 + body.size();
  }
  size_t l3len = v6 ? sizeof(ipv6hdr) + extLen : sizeof(iphdr) + shape.ipv4Options.size();
  size_t l4hdr = proto == IPPROTO_TCP ? sizeof(tcphdr) : proto == kProtoSctp ? 12 : sizeof(udphdr);
  size_t l4len = l4hdr + payload.size();
  Packet p;
  p.l3off = shape.l2 ? ETH_HLEN : 0;
  p.bytes.assign(p.l3off + l3len + l4len, 0);
  if (shape.l2) {
    auto* eth = reinterpret_cast<ethhdr*>(p.bytes.data());
    std::memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x01", 6);
    std::memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x02", 6);
    eth->h_proto = htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
  }
  uint8_t* l3 = p.bytes.data() + p.l3off;
  if (v6) {
    auto* ip6 = reinterpret_cast<ipv6hdr*>(l3);
    ip6->version = 6;
    ip6->hop_limit = 64;
    ip6->payload_len = htons(static_cast<uint16_t>(extLen + l4len));
    inet_pton(AF_INET6, saddr, &ip6->saddr);
    inet_pton(AF_INET6, daddr, &ip6->daddr);
    uint8_t* nh = &ip6->nexthdr;
    uint8_t* h = l3 + sizeof(ipv6hdr);
    for (const auto& [type, body] : shape.v6Ext) {
      *nh = type;
      nh = &h[0];
      h[1] = type == 44 ? 0 : static_cast<uint8_t>((2 + body.size()) / 8 - 1);
      std::memcpy(h + 2, body.data(), body.size());
      h += 2 + body.size();
    }
    *nh = proto;
  } else {
    iphdr* ip = p.ip();
    ip->version = 4;
    ip->ihl = static_cast<uint8_t>((sizeof(iphdr) + shape.ipv4Options.size()) / 4);
    ip->ttl = 64;
    ip->protocol = proto;
    ip->tot_len = htons(static_cast<uint16_t>(l3len + l4len));
    ip->id = htons(0x1234);
    ip->frag_off = htons(shape.fragOff);
    ip->saddr = ip4(saddr);
    ip->daddr = ip4(daddr);
    std::memcpy(l3 + sizeof(iphdr), shape.ipv4Options.data(), shape.ipv4Options.size());
  }
  uint8_t* l4 = l3 + l3len;
  uint16_t sp = htons(sport), dp = htons(dport);
  std::memcpy(l4, &sp, 2);
  std::memcpy(l4 + 2, &dp, 2);
  if (proto == IPPROTO_TCP) {
    auto* th = reinterpret_cast<tcphdr*>(l4);
    th->seq = htonl(1000);
    th->ack_seq = htonl(tcpFlags & 0x10 ? 5000 : 0);
    th->doff = 5;
    l4[13] = tcpFlags;
    th->window = htons(65535);
  } else if (proto == IPPROTO_UDP) {
    auto* uh = reinterpret_cast<udphdr*>(l4);
    uh->len = htons(static_cast<uint16_t>(l4len));
  } else {
    uint32_t vtag = htonl(0xfeedbeef);  // SCTP verification tag
    std::memcpy(l4 + 4, &vtag, 4);
  }
  std::memcpy(l4 + l4hdr, payload.data(), payload.size());
  p.fixChecksums();
  return p;
}

}  // namespace switchyard::bpftest
