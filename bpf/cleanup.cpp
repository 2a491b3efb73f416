#include "bpf/cleanup.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "bpf/abi.h"
#include "bpf/pinned_maps.h"
#include "bpf/unique_fd.h"

namespace switchyard::bpf {
void detachTcHooks(int tcAttachFd, const std::set<std::string>& keep, CleanupReport& r) {
  // Collect first: deleting while walking a hash map restarts the walk.
  std::vector<std::pair<struct sy_tc_attach_key, struct sy_tc_attach_value>> gone;
  struct sy_tc_attach_key key {}, next {};
  struct sy_tc_attach_key* prev = nullptr;
  while (bpf_map_get_next_key(tcAttachFd, prev, &next) == 0) {
    struct sy_tc_attach_value val {};
    if (bpf_map_lookup_elem(tcAttachFd, &next, &val) == 0 && !keep.count(val.ifname)) {
      gone.emplace_back(next, val);
    }
    key = next;
    prev = &key;
  }
  std::map<uint32_t, bool> qdiscOwned;  // ifindex -> we created its clsact
  for (const auto& [k, val] : gone) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(k.ifindex),
                .attach_point = k.direction == SY_TC_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = val.handle, .priority = val.priority);
    int err = bpf_tc_detach(&hook, &opts);
    if (err == 0) {
      r.tcFiltersRemoved++;
    } else if (err != -ENOENT && err != -ENODEV && err != -EINVAL) {
      r.errors.push_back(std::string("detach tc filter on ") + val.ifname + ": " + std::strerror(-err));
      continue;  // keep the record, so a later cleanup tries again
    }
    bpf_map_delete_elem(tcAttachFd, &k);
    qdiscOwned[k.ifindex] = qdiscOwned[k.ifindex] || val.created_qdisc;
  }
  for (auto [ifindex, owned] : qdiscOwned) {
    if (!owned) {
      continue;  // someone else's clsact: leave it
    }
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
                .attach_point = static_cast<enum bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    if (bpf_tc_hook_destroy(&hook) == 0) {
      r.qdiscsRemoved++;
    }
  }
}

CleanupReport cleanupPinPath(const std::string& pinPath) {
  namespace fs = std::filesystem;
  CleanupReport r;
  std::string tcPin = pinPath + "/" + kPinTcAttach;
  int fd = bpf_obj_get(tcPin.c_str());
  if (fd >= 0) {
    UniqueFd tcAttach(fd);
    detachTcHooks(fd, {}, r);
  }
  std::error_code ec;
  fs::path links = fs::path(pinPath) / kLinksDir;
  if (fs::is_directory(links, ec)) {
    for (const auto& e : fs::directory_iterator(links, ec)) {
      // Unpinning the last reference to a cgroup link detaches its program.
      if (::unlink(e.path().c_str()) == 0) {
        r.linksRemoved++;
      } else {
        r.errors.push_back("unpin " + e.path().string() + ": " + std::strerror(errno));
      }
    }
    if (::rmdir(links.c_str()) < 0 && errno != ENOENT) {
      r.errors.push_back("remove " + links.string() + ": " + std::strerror(errno));
    }
  }
  for (const char* name : {kPinServices, kPinBackends, kPinRevNat, kPinCt, kPinSockRevNat,
                           kPinCounters, kPinMeta, kPinTcAttach}) {
    std::string pin = pinPath + "/" + name;
    if (::unlink(pin.c_str()) == 0) {
      r.pinsRemoved++;
    } else if (errno != ENOENT) {
      r.errors.push_back("unpin " + pin + ": " + std::strerror(errno));
    }
  }
  if (::rmdir(pinPath.c_str()) < 0 && errno != ENOENT) {
    r.errors.push_back("remove " + pinPath + ": " + std::strerror(errno) +
                       (errno == ENOTEMPTY ? " (it holds pins switchyard did not make)" : ""));
  }
  return r;
}

}  // namespace switchyard::bpf
