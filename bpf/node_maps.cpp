#include "bpf/node_maps.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

#include "bpf/map_writer.h"

namespace switchyard::bpf {
namespace {

// Every key of a hash or LPM map (small maps: key by key).
template <typename K>
std::vector<K> keysOf(int fd) {
  std::vector<K> out;
  K key{}, next{};
  K* prev = nullptr;
  for (size_t guard = 0; guard < (1u << 20) && bpf_map_get_next_key(fd, prev, &next) == 0; ++guard) {
    out.push_back(next);
    key = next;
    prev = &key;
  }
  return out;
}

struct sy_local_net_key toNetKey(const lb::Cidr& c) {
  struct sy_local_net_key k;
  std::memset(&k, 0, sizeof(k));
  k.prefixlen = c.prefixLen;
  k.addr = toSyAddr(c.addr);
  return k;
}

void noteFailure(std::string& error, const std::string& what) {
  if (error.empty()) {
    error = what + ": " + std::strerror(errno);
  }
}

}  // namespace

bool NodeMaps::setNodeAddresses(const std::map<lb::IpAddr, uint32_t>& addrs, std::string& error) {
  error.clear();
  for (const union sy_addr& k : keysOf<union sy_addr>(fds_.nodeAddrs)) {
    if (!addrs.count(fromSyAddr(k)) && bpf_map_delete_elem(fds_.nodeAddrs, &k) != 0 && errno != ENOENT) {
      noteFailure(error, std::string("map ") + kPinNodeAddrs + ": delete " + fromSyAddr(k).str());
    }
  }
  for (const auto& [addr, flags] : addrs) {
    union sy_addr k = toSyAddr(addr);
    struct sy_node_addr_value v {}, old {};
    v.flags = flags;
    if (bpf_map_lookup_elem(fds_.nodeAddrs, &k, &old) == 0 && old.flags == flags) {
      continue;
    }
    if (bpf_map_update_elem(fds_.nodeAddrs, &k, &v, BPF_ANY) != 0) {
      noteFailure(error, std::string("map ") + kPinNodeAddrs + ": update " + addr.str());
    }
  }
  return error.empty();
}

bool NodeMaps::setLocalNets(const std::vector<lb::Cidr>& nets, std::string& error) {
  error.clear();
  std::map<lb::Cidr, bool> want;
  for (const lb::Cidr& c : nets) {
    want[c] = true;
  }
  for (const struct sy_local_net_key& k : keysOf<struct sy_local_net_key>(fds_.localNets)) {
    lb::Cidr c{fromSyAddr(k.addr), static_cast<uint8_t>(k.prefixlen)};
    if (!want.count(c) && bpf_map_delete_elem(fds_.localNets, &k) != 0 && errno != ENOENT) {
      noteFailure(error, std::string("map ") + kPinLocalNets + ": delete " + c.str());
    }
  }
  for (const lb::Cidr& c : nets) {
    struct sy_local_net_key k = toNetKey(c);
    struct sy_local_net_value v {};
    v.flags = SY_LOCAL_NET_F_CLUSTER;
    if (bpf_map_update_elem(fds_.localNets, &k, &v, BPF_ANY) != 0) {
      noteFailure(error, std::string("map ") + kPinLocalNets + ": update " + c.str());
    }
  }
  return error.empty();
}

std::map<lb::IpAddr, uint32_t> NodeMaps::nodeAddresses() const {
  std::map<lb::IpAddr, uint32_t> out;
  for (const union sy_addr& k : keysOf<union sy_addr>(fds_.nodeAddrs)) {
    struct sy_node_addr_value v {};
    if (bpf_map_lookup_elem(fds_.nodeAddrs, &k, &v) == 0) {
      out[fromSyAddr(k)] = v.flags;
    }
  }
  return out;
}

std::vector<lb::Cidr> NodeMaps::localNets() const {
  std::vector<lb::Cidr> out;
  for (const struct sy_local_net_key& k : keysOf<struct sy_local_net_key>(fds_.localNets)) {
    out.push_back({fromSyAddr(k.addr), static_cast<uint8_t>(k.prefixlen)});
  }
  return out;
}

}  // namespace switchyard::bpf
