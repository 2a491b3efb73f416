#include "bpf/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>

#include "bpf/bpffs.h"
#include "bpf/cleanup.h"
#include "logging/log.h"
#include "sock_lb.skel.h"
#include "tc_lb.skel.h"

namespace switchyard::bpf {
namespace {

bool gVerbose = false;

int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && !gVerbose) {
    return 0;
  }
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') {
    msg.pop_back();
  }
  // bpf_tc_hook_create on a device that already has clsact (ours from an earlier run, or
  // someone else's) is expected; libbpf still prints the kernel's complaint.
  if (msg.find("Exclusivity flag on") != std::string::npos && !gVerbose) {
    return 0;
  }
  logging::write(level == LIBBPF_WARN ? logging::Level::Warning : logging::Level::Debug,
                 "libbpf: " + msg);
  return n;
}

std::string errnoText(int err) { return std::strerror(err < 0 ? -err : err); }

// Sets max_entries of the maps we size before load (0 = keep the default).
template <typename Skel>
void sizeMaps(Skel* s, const MapSizes& m) {
  if (m.services) bpf_map__set_max_entries(s->maps.SY_MAP_SERVICES, m.services);
  if (m.backends) bpf_map__set_max_entries(s->maps.SY_MAP_BACKENDS, m.backends);
  if (m.revNat) bpf_map__set_max_entries(s->maps.SY_MAP_REVNAT, m.revNat);
  if (m.conntrack) bpf_map__set_max_entries(s->maps.SY_MAP_CT, m.conntrack);
  if (m.sockRevNat) bpf_map__set_max_entries(s->maps.SY_MAP_SOCK_REVNAT, m.sockRevNat);
  if (m.affinity) bpf_map__set_max_entries(s->maps.SY_MAP_AFFINITY, m.affinity);
  if (m.sourceRanges) bpf_map__set_max_entries(s->maps.SY_MAP_SRC_RANGES, m.sourceRanges);
  if (m.maglev) bpf_map__set_max_entries(s->maps.SY_MAP_MAGLEV, m.maglev);
}

// Whether a device carries no link-layer header (tun, wireguard, ipip: ARPHRD_NONE and
// friends), so its programs find IP at offset 0. Asked with SIOCGIFHWADDR, which answers
// in the caller's network namespace.
bool isL3Device(const std::string& device) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, device.c_str(), IFNAMSIZ - 1);
  if (!sock.valid() || ::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) < 0) {
    return false;
  }
  return ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER;
}

// cgroup v2 directories: the inode number is the cgroup ID the kernel reports in link info.
uint64_t cgroupId(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

void installLibbpfLogger(bool verbose) {
  gVerbose = verbose;
  libbpf_set_print(libbpfPrint);
}

Datapath::~Datapath() {
  // Closes our handles only: pinned maps and links, and tc filters, stay in the kernel.
  if (sock_) {
    sock_lb__destroy(sock_);
  }
  if (tc_) {
    tc_lb__destroy(tc_);
  }
}

std::unique_ptr<Datapath> Datapath::load(const DatapathOptions& options, std::string& error) {
  if (!ensurePinPath(options.pinPath, error)) {
    return nullptr;
  }
  std::unique_ptr<Datapath> dp(new Datapath());
  dp->pinPath_ = options.pinPath;
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = options.pinPath.c_str());

  dp->sock_ = sock_lb__open_opts(&opts);
  if (!dp->sock_) {
    error = "open socket LB programs: " + errnoText(errno);
    return nullptr;
  }
  sizeMaps(dp->sock_, options.sizes);
  if (int err = sock_lb__load(dp->sock_); err) {
    error = "load socket LB programs: " + errnoText(err) +
            " (a pinned map with another size or layout under " + options.pinPath +
            "? `switchyard cleanup` removes it)";
    return nullptr;
  }
  dp->tc_ = tc_lb__open_opts(&opts);
  if (!dp->tc_) {
    error = "open tc programs: " + errnoText(errno);
    return nullptr;
  }
  sizeMaps(dp->tc_, options.sizes);
  dp->tc_->rodata->sy_snat_port_min = options.snatPortMin;
  dp->tc_->rodata->sy_snat_port_max = options.snatPortMax;
  dp->tc_->rodata->sy_maglev_seed = options.maglevSeed;
  if (int err = tc_lb__load(dp->tc_); err) {
    error = "load tc programs: " + errnoText(err);
    return nullptr;
  }

  auto* m = &dp->sock_->maps;
  dp->fds_.services = bpf_map__fd(m->SY_MAP_SERVICES);
  dp->fds_.backends = bpf_map__fd(m->SY_MAP_BACKENDS);
  dp->fds_.revNat = bpf_map__fd(m->SY_MAP_REVNAT);
  dp->fds_.ct = bpf_map__fd(m->SY_MAP_CT);
  dp->fds_.sockRevNat = bpf_map__fd(m->SY_MAP_SOCK_REVNAT);
  dp->fds_.affinity = bpf_map__fd(m->SY_MAP_AFFINITY);
  dp->fds_.srcRanges = bpf_map__fd(m->SY_MAP_SRC_RANGES);
  dp->fds_.nodeAddrs = bpf_map__fd(m->SY_MAP_NODE_ADDRS);
  dp->fds_.localNets = bpf_map__fd(m->SY_MAP_LOCAL_NETS);
  dp->fds_.counters = bpf_map__fd(m->SY_MAP_COUNTERS);
  dp->fds_.meta = bpf_map__fd(m->SY_MAP_META);
  dp->fds_.tcAttach = bpf_map__fd(m->SY_MAP_TC_ATTACH);
  dp->fds_.maglev = bpf_map__fd(m->SY_MAP_MAGLEV);

  uint32_t zero = 0;
  struct sy_meta meta {};
  if (bpf_map_lookup_elem(dp->fds_.meta, &zero, &meta) == 0 && meta.abi_version != 0 &&
      meta.abi_version != SY_ABI_VERSION) {
    error = "pinned maps under " + options.pinPath + " have ABI version " +
            std::to_string(meta.abi_version) + ", this daemon speaks " +
            std::to_string(SY_ABI_VERSION);
    return nullptr;
  }
  meta.abi_version = SY_ABI_VERSION;
  bpf_map_update_elem(dp->fds_.meta, &zero, &meta, BPF_ANY);
  dp->mapIds_ = mapIdsOf(dp->fds_);
  return dp;
}

bool Datapath::attachSocketLB(const std::string& cgroupPath, std::string& error) {
  struct Hook {
    const char* name;
    struct bpf_program* prog;
  } hooks[] = {
      {"connect4", sock_->progs.sy_sock_connect4},
      {"sendmsg4", sock_->progs.sy_sock_sendmsg4},
      {"recvmsg4", sock_->progs.sy_sock_recvmsg4},
      {"getpeername4", sock_->progs.sy_sock_getpeername4},
      {"connect6", sock_->progs.sy_sock_connect6},
      {"sendmsg6", sock_->progs.sy_sock_sendmsg6},
      {"recvmsg6", sock_->progs.sy_sock_recvmsg6},
      {"getpeername6", sock_->progs.sy_sock_getpeername6},
  };
  static_assert(sizeof(hooks) / sizeof(hooks[0]) == kSocketHooks.size());
  int cg = ::open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) {
    error = "open cgroup " + cgroupPath + ": " + errnoText(errno);
    return false;
  }
  UniqueFd cgFd(cg);
  uint64_t wantCgroup = cgroupId(cgroupPath);
  for (const Hook& h : hooks) {
    std::string pin = pinPath_ + "/" + kLinksDir + "/" + h.name;
    // An earlier daemon's link: swap the program in place if it is on the same cgroup.
    int lfd = bpf_obj_get(pin.c_str());
    if (lfd >= 0) {
      UniqueFd link(lfd);
      struct bpf_link_info info {};
      uint32_t len = sizeof(info);
      bool sameCgroup = bpf_obj_get_info_by_fd(lfd, &info, &len) == 0 &&
                        info.cgroup.cgroup_id == wantCgroup;
      if (sameCgroup && bpf_link_update(lfd, bpf_program__fd(h.prog), nullptr) == 0) {
        continue;
      }
      // Another cgroup (config changed) or a defunct link: attach anew, then drop the old.
      ::unlink(pin.c_str());
    }
    struct bpf_link* link = bpf_program__attach_cgroup(h.prog, cg);
    if (!link) {
      error = std::string("attach ") + h.name + " to cgroup " + cgroupPath + ": " +
              errnoText(errno);
      return false;
    }
    if (int err = bpf_link__pin(link, pin.c_str()); err) {
      error = "pin link " + pin + ": " + errnoText(err);
      bpf_link__destroy(link);
      return false;
    }
    // The pin keeps the link (and the program) alive after we exit.
    bpf_link__disconnect(link);
    bpf_link__destroy(link);
  }
  SY_LOG(Info) << "socket LB attached to cgroup " << cgroupPath;
  return true;
}

int Datapath::programFd(Program p) const {
  switch (p) {
    case Program::TcFromPod: return bpf_program__fd(tc_->progs.sy_tc_from_pod);
    case Program::TcToPod: return bpf_program__fd(tc_->progs.sy_tc_to_pod);
    case Program::TcFromNet: return bpf_program__fd(tc_->progs.sy_tc_from_net);
    case Program::TcToNet: return bpf_program__fd(tc_->progs.sy_tc_to_net);
    case Program::TcFromPodL3: return bpf_program__fd(tc_->progs.sy_tc_from_pod3);
    case Program::TcToPodL3: return bpf_program__fd(tc_->progs.sy_tc_to_pod3);
    case Program::TcFromNetL3: return bpf_program__fd(tc_->progs.sy_tc_from_net3);
    case Program::TcToNetL3: return bpf_program__fd(tc_->progs.sy_tc_to_net3);
    case Program::SockConnect4: return bpf_program__fd(sock_->progs.sy_sock_connect4);
    case Program::SockSendmsg4: return bpf_program__fd(sock_->progs.sy_sock_sendmsg4);
    case Program::SockRecvmsg4: return bpf_program__fd(sock_->progs.sy_sock_recvmsg4);
    case Program::SockGetpeername4: return bpf_program__fd(sock_->progs.sy_sock_getpeername4);
    case Program::SockConnect6: return bpf_program__fd(sock_->progs.sy_sock_connect6);
    case Program::SockSendmsg6: return bpf_program__fd(sock_->progs.sy_sock_sendmsg6);
    case Program::SockRecvmsg6: return bpf_program__fd(sock_->progs.sy_sock_recvmsg6);
    case Program::SockGetpeername6: return bpf_program__fd(sock_->progs.sy_sock_getpeername6);
  }
  return -1;
}

void Datapath::detachSocketLB() {
  for (const char* name : kSocketHooks) {
    std::string pin = pinPath_ + "/" + kLinksDir + "/" + name;
    if (::unlink(pin.c_str()) == 0) {
      SY_LOG(Info) << "socket LB hook " << name << " removed";
    }
  }
}

Datapath::TcAttachResult Datapath::attachTc(const std::string& device, TcRole role) {
  TcAttachResult res;
  using Status = TcAttachResult::Status;
  unsigned ifindex = if_nametoindex(device.c_str());
  if (ifindex == 0) {
    res.status = errno == ENODEV ? Status::Missing : Status::Failed;
    res.error = "device " + device + ": " + errnoText(errno);
    return res;
  }
  res.ifindex = ifindex;
  bool l3 = isL3Device(device);
  auto* pr = &tc_->progs;
  struct bpf_program* in = role == TcRole::Pod ? (l3 ? pr->sy_tc_from_pod3 : pr->sy_tc_from_pod)
                                               : (l3 ? pr->sy_tc_from_net3 : pr->sy_tc_from_net);
  struct bpf_program* out = role == TcRole::Pod ? (l3 ? pr->sy_tc_to_pod3 : pr->sy_tc_to_pod)
                                                : (l3 ? pr->sy_tc_to_net3 : pr->sy_tc_to_net);
  struct Dir {
    enum bpf_tc_attach_point point;
    uint32_t direction;
    struct bpf_program* prog;
  } dirs[] = {
      {BPF_TC_INGRESS, SY_TC_INGRESS, in},
      {BPF_TC_EGRESS, SY_TC_EGRESS, out},
  };
  // Both directions are checked before either is touched: all switchyard daemons use one
  // handle and priority, so BPF_TC_F_REPLACE would silently take over another daemon's
  // filter (two daemons naming one device) or another tool's.
  for (const Dir& d : dirs) {
    TcFilter f = queryTcFilter(ifindex, d.point == BPF_TC_INGRESS, mapIds_);
    if (f.owner == TcFilterOwner::None || f.owner == TcFilterOwner::ThisPinPath) {
      continue;
    }
    if (f.owner == TcFilterOwner::QueryFailed) {
      res.error = "query tc filter on " + device + ": " + errnoText(f.err);
      return res;
    }
    struct sy_tc_attach_key key {static_cast<uint32_t>(ifindex), d.direction};
    struct sy_tc_attach_value rec {};
    if (bpf_map_lookup_elem(fds_.tcAttach, &key, &rec) == 0 &&
        std::strncmp(rec.ifname, device.c_str(), sizeof(rec.ifname)) == 0) {
      continue;  // recorded as ours: replace it (restart adoption)
    }
    res.status = Status::Refused;
    res.error = "device " + device + " " + (d.point == BPF_TC_INGRESS ? "ingress" : "egress") +
                ": a filter at switchyard's tc handle and priority is program " + f.progName + " (id " +
                std::to_string(f.progId) + ", " + ownerName(f.owner) +
                "), not this daemon's; not replacing it (does another switchyard daemon name " + device +
                " in bpf.devices? if none does, e.g. after pins were removed by hand, remove it with `" +
                tcFilterDelCommand(device, d.point == BPF_TC_INGRESS) + "`)";
    return res;
  }
  bool createdQdisc = false;
  for (const Dir& d : dirs) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = d.point);
    int err = bpf_tc_hook_create(&hook);
    if (err == 0) {
      createdQdisc = true;
    } else if (err != -EEXIST) {
      res.error = "create clsact qdisc on " + device + ": " + errnoText(err);
      return res;
    }
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(d.prog), .flags = BPF_TC_F_REPLACE,
                .handle = kTcHandle, .priority = kTcPriority);
    err = bpf_tc_attach(&hook, &opts);
    if (err) {
      res.error = "attach tc program on " + device + ": " + errnoText(err);
      return res;
    }
    struct sy_tc_attach_key key {static_cast<uint32_t>(ifindex), d.direction};
    struct sy_tc_attach_value val {};
    struct sy_tc_attach_value old {};
    bool had = bpf_map_lookup_elem(fds_.tcAttach, &key, &old) == 0;
    val.handle = kTcHandle;
    val.priority = kTcPriority;
    // Keep "we created the qdisc" across restarts: a restart sees EEXIST on our own qdisc.
    val.created_qdisc = (had && old.created_qdisc) || createdQdisc ? 1 : 0;
    std::strncpy(val.ifname, device.c_str(), sizeof(val.ifname) - 1);
    if (bpf_map_update_elem(fds_.tcAttach, &key, &val, BPF_ANY) != 0) {
      // The filter works, but cleanup can only find it through bpf.devices (--config).
      SY_LOG(Warning) << "record tc attachment of " << device << " in " << kPinTcAttach << ": "
                      << errnoText(errno);
    }
  }
  SY_LOG(Info) << "tc programs attached to " << (role == TcRole::Pod ? "pod-facing" : "host-facing")
               << " device " << device << " (ifindex " << ifindex << (l3 ? ", no link-layer header" : "")
               << ")";
  res.status = Status::Attached;
  return res;
}

}  // namespace switchyard::bpf
