#include "bpf/node_maps.h"

#include <bpf/bpf.h>

#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <filesystem>
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

bool NodeMaps::setSocketLBSkip(const std::map<uint64_t, uint32_t>& cgroups, std::string& error) {
  error.clear();
  struct sy_sock_skip_value inUse {};
  for (const auto& [id, level] : cgroups) {
    if (id != 0 && level >= 1 && level < 32) {
      inUse.levels |= 1u << level;
    }
  }
  const uint64_t zero = 0;
  // Entries before the levels that announce them, and the levels shrunk after the entries
  // go, so a hook never misses a cgroup that stays in the set.
  for (const auto& [id, level] : cgroups) {
    if (id == 0 || level < 1 || level >= 32) {
      continue;
    }
    struct sy_sock_skip_value v {};
    v.levels = level;
    if (bpf_map_update_elem(fds_.sockSkip, &id, &v, BPF_ANY) != 0) {
      noteFailure(error, std::string("map ") + kPinSockSkip + ": update cgroup " + std::to_string(id));
    }
  }
  struct sy_sock_skip_value old {};
  bool hadLevels = bpf_map_lookup_elem(fds_.sockSkip, &zero, &old) == 0;
  struct sy_sock_skip_value wider = inUse;
  wider.levels |= hadLevels ? old.levels : 0;
  if (wider.levels != 0 && bpf_map_update_elem(fds_.sockSkip, &zero, &wider, BPF_ANY) != 0) {
    noteFailure(error, std::string("map ") + kPinSockSkip + ": update the levels in use");
  }
  for (uint64_t id : keysOf<uint64_t>(fds_.sockSkip)) {
    if (id != 0 && !cgroups.count(id) && bpf_map_delete_elem(fds_.sockSkip, &id) != 0 && errno != ENOENT) {
      noteFailure(error, std::string("map ") + kPinSockSkip + ": delete cgroup " + std::to_string(id));
    }
  }
  if (inUse.levels == 0) {
    if (bpf_map_delete_elem(fds_.sockSkip, &zero) != 0 && errno != ENOENT) {
      noteFailure(error, std::string("map ") + kPinSockSkip + ": delete the levels in use");
    }
  } else if (inUse.levels != wider.levels && bpf_map_update_elem(fds_.sockSkip, &zero, &inUse, BPF_ANY) != 0) {
    noteFailure(error, std::string("map ") + kPinSockSkip + ": update the levels in use");
  }
  return error.empty();
}

std::map<uint64_t, uint32_t> NodeMaps::socketLBSkip() const {
  std::map<uint64_t, uint32_t> out;
  for (uint64_t id : keysOf<uint64_t>(fds_.sockSkip)) {
    struct sy_sock_skip_value v {};
    if (id != 0 && bpf_map_lookup_elem(fds_.sockSkip, &id, &v) == 0) {
      out[id] = v.levels;
    }
  }
  return out;
}

std::optional<CgroupRef> resolveCgroup(const std::string& path, std::string& why) {
  namespace fs = std::filesystem;
  constexpr unsigned long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC
  auto onCgroup2 = [](const fs::path& p, dev_t* dev) {
    struct statfs sfs {};
    struct stat st {};
    if (::statfs(p.c_str(), &sfs) != 0 || static_cast<unsigned long>(sfs.f_type) != kCgroup2Magic ||
        ::stat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return false;
    }
    *dev = st.st_dev;
    return true;
  };
  std::error_code ec;
  fs::path real = fs::canonical(path, ec);
  if (ec) {
    why = ec.message();
    return std::nullopt;
  }
  dev_t dev = 0;
  if (!onCgroup2(real, &dev)) {
    why = "not a directory on a cgroup v2 filesystem";
    return std::nullopt;
  }
  // Up to the top of the mount: each parent on the same cgroup v2 filesystem is one level.
  uint32_t level = 0;
  for (fs::path p = real; p.has_relative_path() && level < 64; p = p.parent_path()) {
    dev_t parentDev = 0;
    if (!onCgroup2(p.parent_path(), &parentDev) || parentDev != dev) {
      break;
    }
    ++level;
  }
  if (level == 0) {
    why = "the cgroup v2 root itself: every socket would skip socket LB (set bpf.socketLB: false)";
    return std::nullopt;
  }
  if (level >= 32) {
    why = "nested " + std::to_string(level) + " levels deep (at most 31)";
    return std::nullopt;
  }
  struct stat st {};
  ::stat(real.c_str(), &st);
  return CgroupRef{static_cast<uint64_t>(st.st_ino), level};
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
