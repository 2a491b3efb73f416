#include "bpf/cleanup.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "bpf/abi.h"
#include "bpf/bpffs.h"
#include "bpf/migrate.h"
#include "bpf/unique_fd.h"
#include "bpf/xdp_links.h"

namespace switchyard::bpf {
namespace {

// Every map pin a switchyard daemon makes, of this layout and of the earlier ones it takes
// over (bpf/migrate.h) or that cleanup still removes (kLegacyPins).
std::vector<std::string> allPinNames() {
  std::vector<std::string> names;
  for (const MapPin& m : kMapPins) {
    names.push_back(m.name);
  }
  for (const Predecessor& p : predecessors()) {
    names.push_back(p.oldPin);
  }
  names.insert(names.end(), std::begin(kLegacyPins), std::end(kLegacyPins));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string errText(int err) { return std::strerror(err < 0 ? -err : err); }

uint32_t objectId(int fd) {
  struct bpf_map_info info {};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

struct ProgInfo {
  bool ok = false;
  std::string name;
  std::vector<uint32_t> mapIds;
};

ProgInfo progInfo(uint32_t id) {
  ProgInfo p;
  UniqueFd fd(bpf_prog_get_fd_by_id(id));
  if (!fd.valid()) {
    return p;
  }
  struct bpf_prog_info info {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
    return p;
  }
  p.name = info.name;
  // A second call with room for the map IDs the first one counted.
  std::vector<uint32_t> ids(info.nr_map_ids);
  struct bpf_prog_info withMaps {};
  withMaps.nr_map_ids = static_cast<uint32_t>(ids.size());
  withMaps.map_ids = reinterpret_cast<uint64_t>(ids.data());
  len = sizeof(withMaps);
  if (!ids.empty() && bpf_obj_get_info_by_fd(fd.get(), &withMaps, &len) != 0) {
    return p;
  }
  ids.resize(std::min<size_t>(ids.size(), withMaps.nr_map_ids));
  p.mapIds = std::move(ids);
  p.ok = true;
  return p;
}

// Whose program `progId` is: switchyard's (name prefix) and this pin path's (maps).
TcFilterOwner classify(const ProgInfo& p, const char* prefix, const std::set<uint32_t>& ours) {
  if (p.name.rfind(prefix, 0) != 0) {
    return TcFilterOwner::Foreign;
  }
  if (ours.empty()) {
    return TcFilterOwner::SwitchyardName;
  }
  for (uint32_t id : p.mapIds) {
    if (ours.count(id)) {
      return TcFilterOwner::ThisPinPath;
    }
  }
  return TcFilterOwner::OtherPinPath;
}

const char* dirName(bool ingress) { return ingress ? "ingress" : "egress"; }

int detachTcFilter(unsigned ifindex, bool ingress) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
              .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
  return bpf_tc_detach(&hook, &opts);
}

// The number of tc filter entries on the clsact ingress and egress hooks of ifindex (every
// chain, protocol and priority; a classifier may show as several entries, e.g. u32's hash
// table and key), from an RTM_GETTFILTER dump; 0 means none, -errno a failure.
// libbpf can only query one handle/priority, and a clsact qdisc must not be removed
// from under filters other tools added.
int countClsactFilters(unsigned ifindex) {
  UniqueFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock.valid()) {
    return -errno;
  }
  int total = 0;
  uint32_t seq = 0;
  for (uint32_t minor : {TC_H_MIN_INGRESS, TC_H_MIN_EGRESS}) {
    struct {
      struct nlmsghdr nh;
      struct tcmsg tc;
    } req {};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
    req.nh.nlmsg_type = RTM_GETTFILTER;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = ++seq;
    req.tc.tcm_family = AF_UNSPEC;
    req.tc.tcm_ifindex = static_cast<int>(ifindex);
    req.tc.tcm_parent = TC_H_MAKE(TC_H_CLSACT, minor);
    if (::send(sock.get(), &req, req.nh.nlmsg_len, 0) < 0) {
      return -errno;
    }
    bool done = false;
    // Bounded: a dump ends with NLMSG_DONE; 4096 reads of 32 KiB is far more than the
    // filters one device can hold in practice.
    for (int reads = 0; !done && reads < 4096; ++reads) {
      alignas(struct nlmsghdr) char buf[32768];
      ssize_t n = ::recv(sock.get(), buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return n < 0 ? -errno : -EIO;
      }
      int len = static_cast<int>(n);
      for (auto* nh = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
        if (nh->nlmsg_seq != seq) {
          continue;
        }
        if (nh->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (nh->nlmsg_type == NLMSG_ERROR) {
          auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(nh));
          if (e->error == 0) {
            continue;
          }
          // No clsact qdisc (any more): nothing is attached there.
          return e->error == -EINVAL ? 0 : e->error;
        }
        if (nh->nlmsg_type == RTM_NEWTFILTER) {
          total++;
        }
      }
    }
    if (!done) {
      return -EIO;
    }
  }
  return total;
}

struct Record {
  struct sy_tc_attach_key key;
  struct sy_tc_attach_value val;
};

std::vector<Record> readRecords(int fd) {
  // Collect first: deleting while walking a hash map restarts the walk.
  std::vector<Record> out;
  struct sy_tc_attach_key key {}, next {};
  struct sy_tc_attach_key* prev = nullptr;
  for (size_t guard = 0; guard < 4 * SY_TC_ATTACH_MAX && bpf_map_get_next_key(fd, prev, &next) == 0; ++guard) {
    struct sy_tc_attach_value val {};
    if (bpf_map_lookup_elem(fd, &next, &val) == 0) {
      val.ifname[sizeof(val.ifname) - 1] = '\0';
      out.push_back({next, val});
    }
    key = next;
    prev = &key;
  }
  return out;
}

std::string describe(const Record& rec) {
  return std::string("tc_attach record ") + rec.val.ifname + " (ifindex " +
         std::to_string(rec.key.ifindex) + ", " + dirName(rec.key.direction == SY_TC_INGRESS) + ")";
}

constexpr const char* kWrongNetns =
    "; run `switchyard cleanup` in the network namespace the daemon ran in (e.g. nsenter "
    "--net=/run/netns/NAME switchyard cleanup ...)";

enum class Action { Skip, Detach, Forget, Keep };

// What to do with one record; Keep comes with an error (or, in the daemon, a note).
Action plan(const Record& rec, const std::set<uint32_t>& ours, RecordScope scope, std::string& why) {
  bool ingress = rec.key.direction == SY_TC_INGRESS;
  char name[IF_NAMESIZE] = {};
  if (!if_indextoname(rec.key.ifindex, name)) {
    if (scope == RecordScope::DaemonNetns) {
      why = describe(rec) + ": the device is gone, and its filters with it";
      return Action::Forget;
    }
    why = describe(rec) + ": no device has this ifindex in this network namespace (left in place)" + kWrongNetns +
          " (if the device was deleted while no daemon ran, starting the daemon once forgets its record)";
    return Action::Keep;
  }
  TcFilter f = queryTcFilter(rec.key.ifindex, ingress, ours);
  if (name != std::string(rec.val.ifname)) {
    if (scope == RecordScope::DaemonNetns) {
      // Renamed (the filter moved along) or the index was reused: remove only ours.
      why = describe(rec) + ": ifindex " + std::to_string(rec.key.ifindex) + " is now " + name;
      return f.owner == TcFilterOwner::ThisPinPath ? Action::Detach : Action::Forget;
    }
    why = describe(rec) + ": ifindex " + std::to_string(rec.key.ifindex) + " is " + name +
          " in this network namespace, not " + rec.val.ifname + " (left in place)" + kWrongNetns;
    return Action::Keep;
  }
  switch (f.owner) {
    case TcFilterOwner::None:
      why = describe(rec) + ": no filter there any more";
      return Action::Forget;
    case TcFilterOwner::ThisPinPath:
    case TcFilterOwner::SwitchyardName:  // not reached: a record means our maps are pinned
      return Action::Detach;
    case TcFilterOwner::QueryFailed:
      why = describe(rec) + ": query the filter: " + errText(f.err);
      return Action::Keep;
    case TcFilterOwner::OtherPinPath:
    case TcFilterOwner::Foreign:
      if (scope == RecordScope::DaemonNetns) {
        why = describe(rec) + ": the filter there is now program " + f.progName + " (id " +
              std::to_string(f.progId) + ", " + ownerName(f.owner) + "); not ours to remove";
        return Action::Forget;
      }
      why = describe(rec) + ": the filter at switchyard's handle and priority is program " + f.progName +
            " (id " + std::to_string(f.progId) + ", " + ownerName(f.owner) +
            "), not one using the maps of this pin path (left in place)" + kWrongNetns;
      return Action::Keep;
  }
  return Action::Keep;
}

// Removes the clsact qdisc switchyard created on ifindex, unless other filters use it.
void removeOwnQdisc(unsigned ifindex, const std::string& device, CleanupReport& r) {
  int others = countClsactFilters(ifindex);
  if (others < 0) {
    if (others != -ENODEV) {
      r.errors.push_back("list tc filters on " + device + ": " + errText(others) +
                         " (the clsact qdisc switchyard created stays)");
    }
    return;
  }
  if (others > 0) {
    r.notes.push_back("kept the clsact qdisc switchyard created on " + device +
                      ": other tc filters are attached to it");
    return;
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
              .attach_point = static_cast<enum bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  if (int err = bpf_tc_hook_destroy(&hook); err == 0) {
    r.qdiscsRemoved++;
  } else if (err != -ENOENT && err != -EINVAL && err != -ENODEV) {
    r.errors.push_back("remove the clsact qdisc on " + device + ": " + errText(err));
  }
}

void applyRecords(int tcAttachFd, const std::vector<Record>& recs, const std::vector<Action>& actions,
                  CleanupReport& r) {
  struct Device {
    std::string name;
    bool createdQdisc = false;
    bool anyKept = false;
  };
  std::map<uint32_t, Device> touched;
  for (size_t i = 0; i < recs.size(); ++i) {
    const Record& rec = recs[i];
    if (actions[i] == Action::Skip) {
      continue;
    }
    Device& d = touched[rec.key.ifindex];
    d.name = rec.val.ifname;
    if (actions[i] == Action::Keep) {
      d.anyKept = true;
      continue;
    }
    if (actions[i] == Action::Detach) {
      int err = detachTcFilter(rec.key.ifindex, rec.key.direction == SY_TC_INGRESS);
      if (err == 0) {
        r.tcFiltersRemoved++;
      } else if (err != -ENOENT && err != -ENODEV && err != -EINVAL) {
        r.errors.push_back("detach tc filter: " + describe(rec) + ": " + errText(err));
        d.anyKept = true;
        continue;  // keep the record, so a later cleanup tries again
      }
    }
    bpf_map_delete_elem(tcAttachFd, &rec.key);
    d.createdQdisc = d.createdQdisc || rec.val.created_qdisc;
  }
  for (const auto& [ifindex, d] : touched) {
    if (d.createdQdisc && !d.anyKept) {
      removeOwnQdisc(ifindex, d.name, r);
    }
  }
}

// Links and attachments of our socket programs left on the cgroup after the pins under
// links/ are gone: a link someone else still holds (an fd, a pin elsewhere) is detached;
// a program attached without a link is detached from the cgroup.
void sweepCgroup(const std::string& cgroupPath, const std::set<uint32_t>& ours, CleanupReport& r) {
  struct stat st {};
  if (::stat(cgroupPath.c_str(), &st) < 0) {
    r.notes.push_back("cgroup " + cgroupPath + ": " + errText(errno) + " (not searched for socket hooks)");
    return;
  }
  uint32_t id = 0;
  for (size_t guard = 0; guard < (1u << 20) && bpf_link_get_next_id(id, &id) == 0; ++guard) {
    UniqueFd link(bpf_link_get_fd_by_id(id));
    if (!link.valid()) {
      continue;
    }
    struct bpf_link_info info {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0 || info.type != BPF_LINK_TYPE_CGROUP ||
        info.cgroup.cgroup_id != st.st_ino) {
      continue;
    }
    ProgInfo p = progInfo(info.prog_id);
    TcFilterOwner o = classify(p, kSockProgPrefix, ours);
    if (o == TcFilterOwner::ThisPinPath || o == TcFilterOwner::SwitchyardName) {
      if (bpf_link_detach(link.get()) == 0) {
        r.linksRemoved++;
      } else {
        r.errors.push_back("detach cgroup link " + std::to_string(id) + " (" + p.name + ") from " +
                           cgroupPath + ": " + errText(errno));
      }
    } else if (o == TcFilterOwner::OtherPinPath) {
      r.notes.push_back("left cgroup link " + std::to_string(id) + " (" + p.name + ") on " + cgroupPath +
                        ": its maps are not those of this pin path");
    }
  }
  UniqueFd cg(::open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.valid()) {
    return;
  }
  struct Attached {
    enum bpf_attach_type type;
    uint32_t progId;
    std::string name;
  };
  auto ourAttachments = [&] {
    std::vector<Attached> out;
    for (enum bpf_attach_type type :
         {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_INET4_GETPEERNAME,
          BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP6_SENDMSG, BPF_CGROUP_UDP6_RECVMSG, BPF_CGROUP_INET6_GETPEERNAME}) {
      uint32_t ids[64];
      uint32_t count = 64, flags = 0;
      if (bpf_prog_query(cg.get(), type, 0, &flags, ids, &count) != 0) {
        continue;
      }
      for (uint32_t i = 0; i < count; ++i) {
        ProgInfo p = progInfo(ids[i]);
        TcFilterOwner o = classify(p, kSockProgPrefix, ours);
        if (o == TcFilterOwner::ThisPinPath || o == TcFilterOwner::SwitchyardName) {
          out.push_back({type, ids[i], p.name});
        }
      }
    }
    return out;
  };
  // The kernel frees a link whose last reference went (an unpinned link) from a work
  // queue, so its program can stay listed on the cgroup for a moment: wait (bounded) for
  // that before calling anything left an attachment of its own.
  std::vector<Attached> left = ourAttachments();
  for (int i = 0; i < 40 && !left.empty(); ++i) {
    ::usleep(50 * 1000);
    left = ourAttachments();
  }
  for (const Attached& a : left) {
    // Attached without a link (switchyard never does that, an older tool might have).
    UniqueFd prog(bpf_prog_get_fd_by_id(a.progId));
    if (prog.valid() && bpf_prog_detach2(prog.get(), cg.get(), a.type) == 0) {
      r.linksRemoved++;
    } else {
      r.errors.push_back("program " + a.name + " (id " + std::to_string(a.progId) + ") stays attached to " +
                         cgroupPath + ": " + errText(errno));
    }
  }
}

// tc filters of ours on configured devices that no record names.
void sweepDevices(const std::vector<std::string>& devices, const std::set<uint32_t>& ours, CleanupReport& r) {
  for (const std::string& dev : devices) {
    unsigned ifindex = if_nametoindex(dev.c_str());
    if (ifindex == 0) {
      r.notes.push_back("device " + dev + " (bpf.devices) is not in this network namespace");
      continue;
    }
    for (bool ingress : {true, false}) {
      TcFilter f = queryTcFilter(ifindex, ingress, ours);
      std::string where = dev + " " + dirName(ingress);
      switch (f.owner) {
        case TcFilterOwner::ThisPinPath:
        case TcFilterOwner::SwitchyardName:
          if (int err = detachTcFilter(ifindex, ingress); err == 0) {
            r.tcFiltersRemoved++;
            r.notes.push_back("removed switchyard's filter on " + where + " (program " + f.progName +
                              ", id " + std::to_string(f.progId) + ") that no tc_attach record named");
          } else if (err != -ENOENT) {
            r.errors.push_back("detach tc filter on " + where + ": " + errText(err));
          }
          break;
        case TcFilterOwner::OtherPinPath:
          r.errors.push_back("left the filter on " + where + " (program " + f.progName + ", id " +
                             std::to_string(f.progId) +
                             "): it uses the maps of another pin path, so another daemon's (if no daemon "
                             "uses it, remove it with `" + tcFilterDelCommand(dev, ingress) + "`)");
          break;
        case TcFilterOwner::QueryFailed:
          r.errors.push_back("query the tc filter on " + where + ": " + errText(f.err));
          break;
        case TcFilterOwner::None:
        case TcFilterOwner::Foreign:
          break;
      }
    }
  }
}

// True when a bpffs holds nothing but what the kernel puts in every new one (bpf_preload's
// maps.debug and progs.debug iterators).
bool bpffsHoldsNothingOfAnyone(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    std::string name = e.path().filename().string();
    if (name != "maps.debug" && name != "progs.debug") {
      return false;
    }
  }
  return !ec;
}

bool isMountPoint(const std::string& path) {
  namespace fs = std::filesystem;
  struct stat self {}, parent {};
  std::string up = fs::path(path).parent_path().string();
  return ::stat(path.c_str(), &self) == 0 && ::stat(up.c_str(), &parent) == 0 && self.st_dev != parent.st_dev;
}

}  // namespace

const char* ownerName(TcFilterOwner o) {
  switch (o) {
    case TcFilterOwner::None: return "none";
    case TcFilterOwner::ThisPinPath: return "switchyard, this pin path";
    case TcFilterOwner::OtherPinPath: return "switchyard, another pin path";
    case TcFilterOwner::SwitchyardName: return "switchyard";
    case TcFilterOwner::Foreign: return "not switchyard's";
    case TcFilterOwner::QueryFailed: return "unknown";
  }
  return "unknown";
}

std::string tcFilterDelCommand(const std::string& device, bool ingress) {
  char handle[16];
  std::snprintf(handle, sizeof(handle), "0x%x", kTcHandle);
  return "tc filter del dev " + device + " " + dirName(ingress) + " pref " + std::to_string(kTcPriority) +
         " handle " + handle + " bpf";
}

std::set<uint32_t> mapIdsOf(const MapFds& fds) {
  std::set<uint32_t> ids;
  for (const MapPin& m : kMapPins) {
    int fd = fds.*m.fd;
    if (uint32_t id = fd >= 0 ? objectId(fd) : 0; id) {
      ids.insert(id);
    }
  }
  return ids;
}

std::set<uint32_t> pinnedMapIds(const std::string& pinPath) {
  std::set<uint32_t> ids;
  for (const std::string& name : allPinNames()) {
    UniqueFd fd(bpf_obj_get((pinPath + "/" + name).c_str()));
    if (uint32_t id = fd.valid() ? objectId(fd.get()) : 0; id) {
      ids.insert(id);
    }
  }
  return ids;
}

TcFilter queryTcFilter(unsigned ifindex, bool ingress, const std::set<uint32_t>& ourMapIds) {
  TcFilter f;
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
              .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
  // libbpf prints the kernel's extack ("Parent Qdisc doesn't exists") for a device without
  // clsact, an expected answer here; silence it for this call (everything runs on one
  // thread: the daemon's io_context, or a CLI command).
  libbpf_print_fn_t print = libbpf_set_print(nullptr);
  int err = bpf_tc_query(&hook, &opts);
  libbpf_set_print(print);
  if (err == -ENOENT || err == -EINVAL) {
    return f;  // no such filter (EINVAL: no clsact qdisc on the device at all)
  }
  if (err) {
    f.owner = TcFilterOwner::QueryFailed;
    f.err = -err;
    return f;
  }
  f.progId = opts.prog_id;
  ProgInfo p = progInfo(opts.prog_id);
  f.progName = p.name;
  f.owner = p.ok ? classify(p, kTcProgPrefix, ourMapIds) : TcFilterOwner::QueryFailed;
  f.err = p.ok ? 0 : errno;
  return f;
}

void detachTcHooks(int tcAttachFd, const std::set<uint32_t>& ourMapIds,
                   const std::map<std::string, unsigned>& keep, RecordScope scope, CleanupReport& r) {
  std::vector<Record> recs = readRecords(tcAttachFd);
  std::vector<Action> actions;
  bool anyKept = false;
  for (const Record& rec : recs) {
    auto k = keep.find(rec.val.ifname);
    if (k != keep.end() && k->second == rec.key.ifindex) {
      actions.push_back(Action::Skip);
      continue;
    }
    std::string why;
    Action a = plan(rec, ourMapIds, scope, why);
    actions.push_back(a);
    if (a == Action::Keep) {
      anyKept = true;
      r.errors.push_back(why);
    } else if (!why.empty()) {
      r.notes.push_back(why);
    }
  }
  if (anyKept && scope == RecordScope::MaybeOtherNetns) {
    return;  // all or nothing: a retry in the right namespace sees every record
  }
  applyRecords(tcAttachFd, recs, actions, r);
}

void forgetTcIfindex(int tcAttachFd, const std::set<uint32_t>& ourMapIds, unsigned ifindex,
                     CleanupReport& r) {
  std::vector<Record> recs = readRecords(tcAttachFd);
  std::vector<Action> actions;
  for (const Record& rec : recs) {
    if (rec.key.ifindex != ifindex) {
      actions.push_back(Action::Skip);
      continue;
    }
    std::string why;
    actions.push_back(plan(rec, ourMapIds, RecordScope::DaemonNetns, why));
    if (!why.empty()) {
      r.notes.push_back(why);
    }
  }
  applyRecords(tcAttachFd, recs, actions, r);
}

CleanupReport cleanupPinPath(const std::string& pinPath, const CleanupScope& scope) {
  namespace fs = std::filesystem;
  CleanupReport r;
  // Taken before anything is unpinned: afterwards the maps cannot be found by path.
  std::set<uint32_t> ours = pinnedMapIds(pinPath);
  std::string tcPin = pinPath + "/" + kPinTcAttach;
  UniqueFd tcAttach(bpf_obj_get(tcPin.c_str()));
  if (tcAttach.valid()) {
    detachTcHooks(tcAttach.get(), ours, {}, RecordScope::MaybeOtherNetns, r);
    if (!r.errors.empty()) {
      // Probably the wrong network namespace: change nothing, so that cleanup in the right
      // one still finds every record, pin and link.
      r.notes.push_back("nothing was removed");
      return r;
    }
  }
  if (scope.fromConfig) {
    sweepDevices(scope.devices, ours, r);
  }
  std::error_code ec;
  fs::path links = fs::path(pinPath) / kLinksDir;
  if (fs::is_directory(links, ec)) {
    for (const auto& e : fs::directory_iterator(links, ec)) {
      // Unpinning the last reference to a cgroup link detaches its program. An XDP link
      // (xdp_links.h) is detached first: the kernel frees an unpinned link from a work
      // queue, and the device would keep the program until then.
      if (e.path().filename().string().rfind(kXdpLinkPrefix, 0) == 0) {
        if (UniqueFd l(bpf_obj_get(e.path().c_str())); l.valid()) {
          bpf_link_detach(l.get());
        }
      }
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
  if (scope.fromConfig && !scope.cgroupPath.empty()) {
    sweepCgroup(scope.cgroupPath, ours, r);
  }
  for (const std::string& name : allPinNames()) {
    std::string pin = pinPath + "/" + name;
    if (::unlink(pin.c_str()) == 0) {
      r.pinsRemoved++;
    } else if (errno != ENOENT) {
      r.errors.push_back("unpin " + pin + ": " + std::strerror(errno));
    }
  }
  if (pinPath == kBpffsMount) {
    return r;  // the shared bpffs itself: never removed
  }
  // A bpffs the daemon mounted at the pin path itself (bpffs.h): unmount it once empty.
  if (isMountPoint(pinPath) && onBpffs(pinPath) && bpffsHoldsNothingOfAnyone(pinPath)) {
    if (::umount2(pinPath.c_str(), UMOUNT_NOFOLLOW) == 0) {
      r.unmountedBpffs = true;
    } else {
      r.errors.push_back("unmount the bpffs at " + pinPath + ": " + std::strerror(errno));
    }
  }
  if (::rmdir(pinPath.c_str()) < 0 && errno != ENOENT) {
    r.errors.push_back("remove " + pinPath + ": " + std::strerror(errno) +
                       (errno == ENOTEMPTY ? " (it holds pins switchyard did not make)" : ""));
  }
  return r;
}

}  // namespace switchyard::bpf
