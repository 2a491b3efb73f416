// bpffs: make sure the pin path is on a BPF filesystem, and keep it to one daemon.
#pragma once

#include <functional>
#include <string>

#include "bpf/unique_fd.h"

namespace switchyard::bpf {

inline constexpr const char* kBpffsMount = "/sys/fs/bpf";

// mount(2)'s signature; tests pass a failing one to check the rollback.
using MountFn = std::function<int(const char* source, const char* target, const char* fstype,
                                  unsigned long flags, const void* data)>;

// Makes the pin path and its links/ directory exist on a bpffs:
//  - under /sys/fs/bpf: mounts bpffs at /sys/fs/bpf when nothing is mounted there;
//  - elsewhere, when the path is not on a bpffs already: mounts a bpffs at the pin path
//    itself (creating it; an existing directory must be empty, since the mount would hide
//    what it holds). `switchyard cleanup` unmounts such a bpffs once it is empty.
// On failure returns false with a message and leaves nothing behind: directories it
// created are removed and a bpffs it mounted is unmounted.
bool ensurePinPath(const std::string& pinPath, std::string& error);
bool ensurePinPath(const std::string& pinPath, std::string& error, const MountFn& mountFn);

// The mount point of the cgroup v2 hierarchy (e.g. /sys/fs/cgroup/unified on hybrid
// systems, /sys/fs/cgroup on unified ones), from /proc/self/mountinfo; "" if none.
std::string findCgroup2Mount();

// True when path is on a BPF filesystem.
bool onBpffs(const std::string& path);

// One daemon per pin path: an exclusive flock(2) on the pin path directory itself. A
// regular lock file cannot live in bpffs, and a file elsewhere (/run/...) would not be
// shared by daemons in containers that share only the bpffs; the directory is exactly
// as shared as the pins are. The kernel drops the lock when the holder exits, even on
// SIGKILL, so a crashed daemon never blocks its successor.
class PinPathLock {
 public:
  PinPathLock() = default;
  PinPathLock(PinPathLock&&) = default;
  PinPathLock& operator=(PinPathLock&&) = default;

  // Locks pinPath (which must exist). False with a message naming the pin path and, when
  // /proc/locks shows it, the PID holding it.
  bool acquire(const std::string& pinPath, std::string& error);
  bool held() const { return fd_.valid(); }

 private:
  UniqueFd fd_;
};

// The PID holding a flock on path according to /proc/locks, 0 when none is shown.
int flockHolder(const std::string& path);

// Whether a daemon holds pinPath's lock right now (for `switchyard cleanup`, which must not
// pull pins and hooks from under a running daemon): 0 when not (or pinPath does not exist),
// the holder's PID when /proc/locks shows it, -1 when held by a PID it does not show (another
// PID namespace). Takes and drops a shared lock: it never blocks, and holds nothing after.
int pinPathHolder(const std::string& pinPath);

}  // namespace switchyard::bpf
