#include "bpf/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
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
#include "bpf/migrate.h"
#include "bpf/xdp_links.h"
#include "logging/log.h"
#include "sock_lb.skel.h"
#include "tc_lb.skel.h"
#include "xdp_lb.skel.h"

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
  if (xdp_) {
    xdp_lb__destroy(xdp_);
  }
}

// The maps of both objects that are pinned, each name once: the socket object's, then the
// tc object's own. The tc object shares the socket object's maps by fd (load()).
template <typename F>
void forEachPinnedMap(struct sock_lb* sock, struct tc_lb* tc, F&& f) {
  std::set<std::string> seen;
  struct bpf_map* m;
  bpf_object__for_each_map(m, sock->obj) {
    if (!bpf_map__is_internal(m) && bpf_map__pin_path(m)) {
      seen.insert(bpf_map__name(m));
      f(m, false);
    }
  }
  bpf_object__for_each_map(m, tc->obj) {
    if (!bpf_map__is_internal(m) && bpf_map__pin_path(m) && !seen.count(bpf_map__name(m))) {
      f(m, true);
    }
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
  dp->tc_ = tc_lb__open_opts(&opts);
  if (!dp->tc_) {
    error = "open tc programs: " + errnoText(errno);
    return nullptr;
  }
  sizeMaps(dp->sock_, options.sizes);
  sizeMaps(dp->tc_, options.sizes);
  dp->tc_->rodata->sy_snat_port_min = options.snatPortMin;
  dp->tc_->rodata->sy_snat_port_max = options.snatPortMax;
  dp->tc_->rodata->sy_ct_life_tcp_ns = options.ctLifetimes.tcpNs;
  dp->tc_->rodata->sy_ct_life_closing_ns = options.ctLifetimes.tcpClosingNs;
  dp->tc_->rodata->sy_ct_life_other_ns = options.ctLifetimes.otherNs;
  dp->tc_->rodata->sy_maglev_seed = options.maglevSeed;
  if (!dp->planTakeovers(error)) {
    return nullptr;
  }
  if (int err = sock_lb__load(dp->sock_); err) {
    error = "load socket LB programs: " + errnoText(err);
    return nullptr;
  }
  // The tc object uses the socket object's maps (by fd, not by pin: a map being taken over
  // is not pinned yet).
  struct bpf_map* m;
  bpf_object__for_each_map(m, dp->tc_->obj) {
    if (bpf_map__is_internal(m)) {
      continue;
    }
    struct bpf_map* shared = bpf_object__find_map_by_name(dp->sock_->obj, bpf_map__name(m));
    if (!shared) {
      continue;
    }
    bpf_map__set_pin_path(m, nullptr);
    if (int err = bpf_map__reuse_fd(m, bpf_map__fd(shared)); err) {
      error = std::string("share map ") + bpf_map__name(m) + " with the tc programs: " + errnoText(err);
      return nullptr;
    }
  }
  if (int err = tc_lb__load(dp->tc_); err) {
    error = "load tc programs: " + errnoText(err);
    return nullptr;
  }
  // The XDP fast path (issue 11 item 4): the same maps again, by fd; its own deny map is
  // pinned by name. Loaded whether or not loadBalancer.acceleration attaches it, so the
  // pinned maps are the same set in every configuration.
  dp->xdp_ = xdp_lb__open_opts(&opts);
  if (!dp->xdp_) {
    error = "open XDP programs: " + errnoText(errno);
    return nullptr;
  }
  dp->xdp_->rodata->sy_ct_life_tcp_ns = options.ctLifetimes.tcpNs;
  dp->xdp_->rodata->sy_ct_life_closing_ns = options.ctLifetimes.tcpClosingNs;
  dp->xdp_->rodata->sy_ct_life_other_ns = options.ctLifetimes.otherNs;
  bpf_object__for_each_map(m, dp->xdp_->obj) {
    if (bpf_map__is_internal(m)) {
      continue;
    }
    struct bpf_map* shared = bpf_object__find_map_by_name(dp->sock_->obj, bpf_map__name(m));
    if (!shared) {
      shared = bpf_object__find_map_by_name(dp->tc_->obj, bpf_map__name(m));
    }
    if (!shared) {
      continue;
    }
    bpf_map__set_pin_path(m, nullptr);
    if (int err = bpf_map__reuse_fd(m, bpf_map__fd(shared)); err) {
      error = std::string("share map ") + bpf_map__name(m) + " with the XDP program: " + errnoText(err);
      return nullptr;
    }
  }
  if (int err = xdp_lb__load(dp->xdp_); err) {
    error = "load XDP program: " + errnoText(err);
    return nullptr;
  }

  auto* sm = &dp->sock_->maps;
  dp->fds_.services = bpf_map__fd(sm->SY_MAP_SERVICES);
  dp->fds_.backends = bpf_map__fd(sm->SY_MAP_BACKENDS);
  dp->fds_.revNat = bpf_map__fd(sm->SY_MAP_REVNAT);
  dp->fds_.ct = bpf_map__fd(sm->SY_MAP_CT);
  dp->fds_.sockRevNat = bpf_map__fd(sm->SY_MAP_SOCK_REVNAT);
  dp->fds_.affinity = bpf_map__fd(sm->SY_MAP_AFFINITY);
  dp->fds_.srcRanges = bpf_map__fd(sm->SY_MAP_SRC_RANGES);
  dp->fds_.nodeAddrs = bpf_map__fd(sm->SY_MAP_NODE_ADDRS);
  dp->fds_.localNets = bpf_map__fd(sm->SY_MAP_LOCAL_NETS);
  dp->fds_.counters = bpf_map__fd(sm->SY_MAP_COUNTERS);
  dp->fds_.meta = bpf_map__fd(sm->SY_MAP_META);
  dp->fds_.tcAttach = bpf_map__fd(sm->SY_MAP_TC_ATTACH);
  dp->fds_.sockSkip = bpf_map__fd(sm->SY_MAP_SOCK_SKIP);
  dp->fds_.maglev = bpf_map__fd(sm->SY_MAP_MAGLEV);  // Maglev (issue 11 item 3)
  auto* tm = &dp->tc_->maps;  // NetworkPolicy's maps: only the tc programs read them
  dp->fds_.polIpcache = bpf_map__fd(tm->SY_MAP_POL_IPCACHE);
  dp->fds_.polEndpoints = bpf_map__fd(tm->SY_MAP_POL_ENDPOINTS);
  dp->fds_.polRules = bpf_map__fd(tm->SY_MAP_POL_RULES);
  dp->fds_.polState = bpf_map__fd(tm->SY_MAP_POL_STATE);
  dp->fds_.polEvents = bpf_map__fd(tm->SY_MAP_POL_EVENTS);
  dp->fds_.xdpDeny = bpf_map__fd(dp->xdp_->maps.SY_MAP_XDP_DENY);

  if (!dp->copyTakeovers(error)) {
    return nullptr;
  }
  uint32_t zero = 0;
  struct sy_meta meta {};
  meta.abi_version = SY_ABI_VERSION;
  bpf_map_update_elem(dp->fds_.meta, &zero, &meta, BPF_ANY);
  dp->mapIds_ = mapIdsOf(dp->fds_);
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, dp->tc_->obj) {
    struct bpf_prog_info info {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
      dp->ownProgIds_.insert(info.id);
    }
  }
  return dp;
}

// Before load: which pins this daemon cannot reuse, and where their entries come from.
bool Datapath::planTakeovers(std::string& error) {
  // The layout version of what is pinned: a newer one is a downgrade, which needs a cleanup
  // (this daemon does not know the newer layout); one older than SY_ABI_MIGRATE_FROM has no
  // registered conversion.
  {
    UniqueFd meta(bpf_obj_get((pinPath_ + "/" + kPinMeta).c_str()));
    uint32_t zero = 0;
    struct sy_meta m {};
    if (meta.valid() && bpf_map_lookup_elem(meta.get(), &zero, &m) == 0 && m.abi_version != 0 &&
        (m.abi_version > SY_ABI_VERSION || m.abi_version < SY_ABI_MIGRATE_FROM)) {
      error = "pinned maps under " + pinPath_ + " have map ABI " + std::to_string(m.abi_version) +
              (m.abi_version > SY_ABI_VERSION ? ", newer than" : ", older than any taken over by") +
              " this daemon's " + std::to_string(SY_ABI_VERSION) +
              "; `switchyard cleanup` removes them (and drops every tracked flow)";
      return false;
    }
  }
  bool ok = true;
  forEachPinnedMap(sock_, tc_, [&](struct bpf_map* m, bool) {
    if (!ok) {
      return;
    }
    std::string name = bpf_map__name(m);
    MapShape want{bpf_map__type(m), bpf_map__key_size(m), bpf_map__value_size(m),
                  bpf_map__max_entries(m), bpf_map__map_flags(m)};
    Takeover t;
    t.pin = name;
    t.map = m;
    t.writer = writerOf(name);
    UniqueFd pinned(bpf_obj_get((pinPath_ + "/" + name).c_str()));
    if (pinned.valid()) {
      auto have = shapeOf(pinned.get());
      if (have && *have == want) {
        return;  // libbpf reuses it
      }
      if (have && (have->keySize != want.keySize || have->valueSize != want.valueSize)) {
        error = "pinned map " + pinPath_ + "/" + name + " (" + describe(*have) +
                ") has another layout than this daemon's (" + describe(want) +
                ") under the same name, so no conversion is known; `switchyard cleanup` removes it";
        ok = false;
        return;
      }
      SY_LOG(Info) << "pinned map " << name << " is " << (have ? describe(*have) : "unreadable")
                   << ", this daemon's is " << describe(want) << ": taking it over";
      t.oldPin = name;
      t.oldFd = std::move(pinned);
      bpf_map__set_pin_path(m, nullptr);  // a new map, pinned once filled
    } else {
      for (const Predecessor& p : predecessors()) {
        if (name != p.newPin) {
          continue;
        }
        UniqueFd old(bpf_obj_get((pinPath_ + "/" + p.oldPin).c_str()));
        if (old.valid()) {
          SY_LOG(Info) << "pinned map " << p.oldPin << " has an earlier layout: taking it over as "
                       << name;
          t.oldPin = p.oldPin;
          t.oldFd = std::move(old);
          t.convert = p.convert;
          break;
        }
      }
      if (!t.oldFd.valid()) {
        return;  // new: libbpf creates and pins it
      }
    }
    takeovers_.push_back(std::move(t));
  });
  return ok;
}

// After load: fills each new map from its old one, then pins it where the old one was.
bool Datapath::copyTakeovers(std::string& error) {
  for (Takeover& t : takeovers_) {
    t.newFd = bpf_map__fd(t.map);
    if (t.writer == MapWriterKind::Counters || t.writer == MapWriterKind::Meta) {
      continue;  // counters are added at the end; meta is this daemon's own
    }
    std::string why;
    if (!copyEntries(t.oldFd.get(), t.newFd, t.convert, CopyMode::Overwrite, t.stats, why)) {
      error = "take over " + t.oldPin + " as " + t.pin + ": " + why;
      return false;
    }
    if (t.stats.failed) {
      SY_LOG(Warning) << "take over " << t.oldPin << " as " << t.pin << ": " << t.stats.failed
                      << " entries did not fit (" << errnoText(t.stats.firstErrno) << ")";
    }
  }
  for (Takeover& t : takeovers_) {
    if (t.oldPin != t.pin) {
      continue;  // renamed: libbpf pinned the new map under its own name
    }
    std::string path = pinPath_ + "/" + t.pin;
    ::unlink(path.c_str());
    if (int err = bpf_map__pin(t.map, path.c_str()); err) {
      error = "pin " + path + ": " + errnoText(err);
      return false;
    }
  }
  for (const Takeover& t : takeovers_) {
    if (t.writer == MapWriterKind::Kernel) {
      handoff_ = true;
    }
  }
  if (handoff_) {
    tc_->bss->sy_handoff_active = 1;
  }
  return true;
}

void Datapath::handOffPrevious(uint32_t progId, const std::string& progName) {
  static constexpr const char* kSlots[] = {"sy_tc_from_pod", "sy_tc_to_pod", "sy_tc_from_net",
                                           "sy_tc_to_net"};
  if (!handoff_ || progId == 0 || ownProgIds_.count(progId)) {
    return;
  }
  uint32_t slot = 0;
  bool found = false;
  for (uint32_t i = 0; i < 4 && !found; ++i) {
    if (progName == kSlots[i]) {
      slot = i, found = true;
    } else if (progName == std::string(kSlots[i]) + "3") {
      slot = i + 4, found = true;
    }
  }
  if (!found) {
    return;
  }
  int prevFd = bpf_map__fd(tc_->maps.sy_prev_progs);
  uint32_t have = 0;
  if (bpf_map_lookup_elem(prevFd, &slot, &have) == 0) {
    return;  // one program per slot: every device of a role ran the same one
  }
  UniqueFd prog(bpf_prog_get_fd_by_id(progId));
  uint32_t fd = prog.valid() ? static_cast<uint32_t>(prog.get()) : 0;
  if (!prog.valid() || bpf_map_update_elem(prevFd, &slot, &fd, BPF_ANY) != 0) {
    SY_LOG(Warning) << "cannot hand packets to the replaced program " << progName << " (id " << progId
                    << "): " << errnoText(errno) << "; its flows that began after the copy are chosen again";
    return;
  }
  SY_LOG(Info) << "until the takeover completes, packets this conntrack misses go to the replaced "
               << progName << " (id " << progId << ")";
}

void Datapath::finishTakeover() {
  if (takeovers_.empty()) {
    return;
  }
  auto copyAgain = [&](CopyMode mode, MapWriterKind kind) {
    for (Takeover& t : takeovers_) {
      if (t.writer != kind) {
        continue;
      }
      std::string why;
      if (!copyEntries(t.oldFd.get(), t.newFd, t.convert, mode, t.stats, why)) {
        SY_LOG(Warning) << "take over " << t.oldPin << " as " << t.pin << ": " << why;
      }
    }
  };
  if (handoff_) {
    // What the old maps gained since the first copy (flows the old programs began before
    // they were replaced, and those handed to them since); then the hand-off stops, and once
    // the packets already in the old programs are through, a last copy takes what they
    // added meanwhile.
    copyAgain(CopyMode::KeepExisting, MapWriterKind::Kernel);
    tc_->bss->sy_handoff_active = 0;
    ::usleep(20 * 1000);
    copyAgain(CopyMode::KeepExisting, MapWriterKind::Kernel);
    int prevFd = bpf_map__fd(tc_->maps.sy_prev_progs);
    for (uint32_t slot = 0; slot < 8; ++slot) {
      bpf_map_delete_elem(prevFd, &slot);
    }
    handoff_ = false;
  }
  copyAgain(CopyMode::AddCounters, MapWriterKind::Counters);
  for (const std::string& line : takeoverSummary()) {
    SY_LOG(Info) << "took over " << line;
  }
  for (const Takeover& t : takeovers_) {
    if (t.oldPin != t.pin) {
      ::unlink((pinPath_ + "/" + t.oldPin).c_str());
    }
  }
  takeovers_.clear();  // closes the old maps: the kernel frees them with their last program
}

std::vector<std::string> Datapath::takeoverSummary() const {
  std::vector<std::string> out;
  for (const Takeover& t : takeovers_) {
    std::string line = t.oldPin + " -> " + t.pin + (t.oldPin == t.pin ? " (resize)" : " (layout)") + ": " +
                       std::to_string(t.stats.copied) + " entries copied";
    if (t.stats.failed) {
      line += ", " + std::to_string(t.stats.failed) + " did not fit";
    }
    out.push_back(line);
  }
  return out;
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
    case Program::XdpFromNet: return bpf_program__fd(xdp_->progs.sy_xdp_from_net);
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
  std::vector<std::pair<uint32_t, std::string>> replaced;  // programs this attach replaces
  for (const Dir& d : dirs) {
    TcFilter f = queryTcFilter(ifindex, d.point == BPF_TC_INGRESS, mapIds_);
    if (f.owner == TcFilterOwner::None) {
      continue;
    }
    if (f.owner == TcFilterOwner::ThisPinPath) {
      replaced.emplace_back(f.progId, f.progName);
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
      replaced.emplace_back(f.progId, f.progName);
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
  for (const auto& [id, name] : replaced) {
    handOffPrevious(id, name);  // only while a takeover is under way
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

Datapath::XdpAttachResult Datapath::attachXdp(const std::string& device, XdpMode mode) {
  XdpAttachResult res;
  using Status = XdpAttachResult::Status;
  unsigned ifindex = if_nametoindex(device.c_str());
  if (ifindex == 0) {
    res.status = errno == ENODEV ? Status::Missing : Status::Failed;
    res.error = "device " + device + ": " + errnoText(errno);
    return res;
  }
  res.ifindex = ifindex;
  if (isL3Device(device)) {
    res.error = "device " + device + " has no Ethernet header: the XDP fast path serves Ethernet devices only";
    return res;
  }
  int prog = bpf_program__fd(xdp_->progs.sy_xdp_from_net);
  std::string dir = pinPath_ + "/" + kLinksDir;
  ::mkdir(dir.c_str(), 0700);
  std::string pin = dir + "/" + xdpLinkPin(device);
  // An earlier daemon's link: swap the program in place when it is on this device in a mode
  // that suits the configuration; otherwise detach it and attach anew.
  if (int lfd = bpf_obj_get(pin.c_str()); lfd >= 0) {
    UniqueFd link(lfd);
    struct bpf_link_info info {};
    uint32_t len = sizeof(info);
    std::string have = xdpAttachMode(ifindex);
    bool same = bpf_obj_get_info_by_fd(lfd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_XDP &&
                info.xdp.ifindex == ifindex && (have == "native" || (have == "generic" && mode == XdpMode::BestEffort));
    if (same && bpf_link_update(lfd, prog, nullptr) == 0) {
      res.status = Status::Attached;
      res.mode = have;
      SY_LOG(Info) << "XDP fast path on " << device << " (" << have << ", replaced in place)";
      return res;
    }
    bpf_link_detach(lfd);
    ::unlink(pin.c_str());
  }
  auto attach = [&](uint32_t flags, int& err) {
    LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
    int fd = bpf_link_create(prog, static_cast<int>(ifindex), BPF_XDP, &lo);
    err = fd < 0 ? errno : 0;
    return fd;
  };
  int err = 0;
  int fd = attach(XDP_FLAGS_DRV_MODE, err);
  res.mode = "native";
  if (fd < 0 && mode == XdpMode::BestEffort && err != EBUSY && err != EEXIST) {
    int nativeErr = err;
    fd = attach(XDP_FLAGS_SKB_MODE, err);
    res.mode = "generic";
    if (fd >= 0) {
      SY_LOG(Warning) << "loadBalancer.acceleration best-effort: device " << device << " has no native XDP ("
                      << errnoText(nativeErr) << "): the fast path runs in generic (SKB) mode";
    }
  }
  if (fd < 0) {
    if (err == EBUSY || err == EEXIST) {
      res.error = "device " + device + " already has an XDP program that is not switchyard's (" + errnoText(err) +
                  "); not replacing it (`ip link set dev " + device + " xdp off` removes it)";
    } else if (mode == XdpMode::Native) {
      res.error = "loadBalancer.acceleration native: device " + device +
                  " cannot run XDP in its driver (XDP_FLAGS_DRV_MODE: " + errnoText(err) +
                  "); use best-effort to fall back to generic XDP, or disabled";
    } else {
      res.error = "attach XDP to " + device + ": " + errnoText(err);
    }
    return res;
  }
  UniqueFd link(fd);
  if (bpf_obj_pin(fd, pin.c_str()) != 0) {
    res.error = "pin XDP link " + pin + ": " + errnoText(errno);
    bpf_link_detach(fd);
    return res;
  }
  SY_LOG(Info) << "XDP fast path attached to host-facing device " << device << " (ifindex " << ifindex << ", "
               << res.mode << ")";
  res.status = Status::Attached;
  return res;
}

std::vector<std::string> Datapath::detachXdpExcept(const std::set<std::string>& keep) {
  std::vector<std::string> out;
  for (const XdpLinkInfo& li : listXdpLinks(pinPath_)) {
    if (keep.count(li.device) && li.ifindex != 0) {
      continue;
    }
    if (UniqueFd fd(bpf_obj_get(li.pin.c_str())); fd.valid()) {
      bpf_link_detach(fd.get());
    }
    ::unlink(li.pin.c_str());
    SY_LOG(Info) << "XDP fast path removed from " << li.device;
    out.push_back(li.device);
  }
  return out;
}

}  // namespace switchyard::bpf
