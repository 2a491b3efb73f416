// Crafted IPv4 TCP/UDP packets for BPF_PROG_TEST_RUN, and independent checksum checks
// (computed here from scratch, not with the helpers under test).
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

struct Packet {
  std::vector<uint8_t> bytes;

  bool v6() const {
    return ntohs(reinterpret_cast<const ethhdr*>(bytes.data())->h_proto) == ETH_P_IPV6;
  }
  iphdr* ip() { return reinterpret_cast<iphdr*>(bytes.data() + ETH_HLEN); }
  const iphdr* ip() const { return reinterpret_cast<const iphdr*>(bytes.data() + ETH_HLEN); }
  const ipv6hdr* ip6() const { return reinterpret_cast<const ipv6hdr*>(bytes.data() + ETH_HLEN); }
  size_t l3len() const { return v6() ? sizeof(ipv6hdr) : ip()->ihl * 4u; }
  uint8_t proto() const { return v6() ? ip6()->nexthdr : ip()->protocol; }
  uint8_t* l4() { return bytes.data() + ETH_HLEN + l3len(); }
  const uint8_t* l4() const { return bytes.data() + ETH_HLEN + l3len(); }
  size_t l4len() const { return bytes.size() - ETH_HLEN - l3len(); }
  size_t csumOff() const { return proto() == IPPROTO_TCP ? 16 : 6; }
  uint16_t sport() const { uint16_t v; std::memcpy(&v, l4(), 2); return ntohs(v); }
  uint16_t dport() const { uint16_t v; std::memcpy(&v, l4() + 2, 2); return ntohs(v); }
  std::string addr(bool src) const {
    char buf[INET6_ADDRSTRLEN];
    if (v6()) {
      inet_ntop(AF_INET6, src ? &ip6()->saddr : &ip6()->daddr, buf, sizeof(buf));
      return std::string("[") + buf + "]";
    }
    return ip4str(src ? ip()->saddr : ip()->daddr);
  }
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
  // True when the TCP/UDP checksum (with pseudo-header) verifies; IPv4 UDP 0 = none is OK.
  bool l4ChecksumOk() const {
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
    l4()[csumOff()] = l4()[csumOff() + 1] = 0;
    uint16_t c = htons(static_cast<uint16_t>(~foldSum(l4Sum())));
    if (proto() == IPPROTO_UDP && c == 0) {
      c = 0xffff;
    }
    std::memcpy(l4() + csumOff(), &c, 2);
  }
};

// An Ethernet + IPv4/IPv6 + TCP/UDP packet with a payload and valid checksums. The family
// follows the addresses ("198.18.1.2" or "2001:db8::2").
inline Packet makePacket(uint8_t proto, const char* saddr, uint16_t sport, const char* daddr,
                         uint16_t dport, uint8_t tcpFlags = 0x02 /* SYN */,
                         const std::string& payload = "switchyard test payload") {
  bool v6 = std::strchr(saddr, ':') != nullptr;
  size_t l3len = v6 ? sizeof(ipv6hdr) : sizeof(iphdr);
  size_t l4len = (proto == IPPROTO_TCP ? sizeof(tcphdr) : sizeof(udphdr)) + payload.size();
  Packet p;
  p.bytes.assign(ETH_HLEN + l3len + l4len, 0);
  auto* eth = reinterpret_cast<ethhdr*>(p.bytes.data());
  std::memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x01", 6);
  std::memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x02", 6);
  eth->h_proto = htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
  if (v6) {
    auto* ip6 = reinterpret_cast<ipv6hdr*>(p.bytes.data() + ETH_HLEN);
    ip6->version = 6;
    ip6->nexthdr = proto;
    ip6->hop_limit = 64;
    ip6->payload_len = htons(static_cast<uint16_t>(l4len));
    inet_pton(AF_INET6, saddr, &ip6->saddr);
    inet_pton(AF_INET6, daddr, &ip6->daddr);
  } else {
    iphdr* ip = p.ip();
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = proto;
    ip->tot_len = htons(static_cast<uint16_t>(sizeof(iphdr) + l4len));
    ip->id = htons(0x1234);
    ip->frag_off = htons(0x4000);  // DF
    ip->saddr = ip4(saddr);
    ip->daddr = ip4(daddr);
  }
  uint8_t* l4 = p.l4();
  uint16_t sp = htons(sport), dp = htons(dport);
  std::memcpy(l4, &sp, 2);
  std::memcpy(l4 + 2, &dp, 2);
  if (proto == IPPROTO_TCP) {
    auto* th = reinterpret_cast<tcphdr*>(l4);
    th->seq = htonl(1000);
    th->doff = 5;
    l4[13] = tcpFlags;
    th->window = htons(65535);
    std::memcpy(l4 + sizeof(tcphdr), payload.data(), payload.size());
  } else {
    auto* uh = reinterpret_cast<udphdr*>(l4);
    uh->len = htons(static_cast<uint16_t>(l4len));
    std::memcpy(l4 + sizeof(udphdr), payload.data(), payload.size());
  }
  p.fixChecksums();
  return p;
}

}  // namespace switchyard::bpftest
