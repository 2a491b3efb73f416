#include "bpf/xdp_links.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "bpf/abi.h"
#include "bpf/pinned_maps.h"
#include "bpf/unique_fd.h"

namespace switchyard::bpf {

std::string xdpLinkPin(const std::string& device) { return std::string(kXdpLinkPrefix) + device; }

std::string xdpAttachMode(unsigned ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) != 0) {
    return "none";
  }
  switch (q.attach_mode) {
    case XDP_ATTACHED_DRV: return "native";
    case XDP_ATTACHED_SKB: return "generic";
    case XDP_ATTACHED_HW: return "offload";
    case XDP_ATTACHED_MULTI: return "multi";
    default: return "none";
  }
}

std::vector<XdpLinkInfo> listXdpLinks(const std::string& pinPath) {
  namespace fs = std::filesystem;
  std::vector<XdpLinkInfo> out;
  std::error_code ec;
  fs::path dir = fs::path(pinPath) / kLinksDir;
  if (!fs::is_directory(dir, ec)) {
    return out;
  }
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(kXdpLinkPrefix, 0) != 0) {
      continue;
    }
    XdpLinkInfo li;
    li.pin = e.path().string();
    li.device = name.substr(std::strlen(kXdpLinkPrefix));
    UniqueFd fd(bpf_obj_get(li.pin.c_str()));
    struct bpf_link_info info {};
    uint32_t len = sizeof(info);
    if (fd.valid() && bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && info.type == BPF_LINK_TYPE_XDP) {
      li.ifindex = info.xdp.ifindex;
      li.progId = info.prog_id;
      if (li.ifindex) {
        li.mode = xdpAttachMode(li.ifindex);
      }
    }
    out.push_back(std::move(li));
  }
  std::sort(out.begin(), out.end(), [](const XdpLinkInfo& a, const XdpLinkInfo& b) { return a.device < b.device; });
  return out;
}

namespace {
sy_xdp_deny_key denyKey(const lb::Cidr& c) {
  sy_xdp_deny_key k{};
  k.prefixlen = c.prefixLen;
  std::memcpy(k.addr.b, c.addr.bytes.data(), 16);
  return k;
}
}  // namespace

bool writeDenyCidrs(int fd, const std::vector<lb::Cidr>& cidrs, std::string& error) {
  std::set<lb::Cidr> want(cidrs.begin(), cidrs.end());
  for (const lb::Cidr& c : want) {
    sy_xdp_deny_key k = denyKey(c);
    uint8_t one = 1;
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0) {
      error = "loadBalancer.denyCIDRs: write " + c.str() + " to " + kPinXdpDeny + ": " + std::strerror(errno);
      return false;
    }
  }
  for (const lb::Cidr& c : readDenyCidrs(fd)) {
    if (!want.count(c)) {
      sy_xdp_deny_key k = denyKey(c);
      bpf_map_delete_elem(fd, &k);
    }
  }
  return true;
}

std::vector<lb::Cidr> readDenyCidrs(int fd) {
  std::vector<lb::Cidr> out;
  sy_xdp_deny_key key{}, next{};
  void* prev = nullptr;
  for (int guard = 0; guard < SY_XDP_DENY_MAX + 1 && bpf_map_get_next_key(fd, prev, &next) == 0; ++guard) {
    lb::Cidr c;
    std::memcpy(c.addr.bytes.data(), next.addr.b, 16);
    c.prefixLen = static_cast<uint8_t>(next.prefixlen);
    out.push_back(c);
    key = next;
    prev = &key;
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace switchyard::bpf
