// bpffs: make sure the pin path is on a BPF filesystem (mounting /sys/fs/bpf if needed).
#pragma once

#include <string>

namespace switchyard::bpf {

inline constexpr const char* kBpffsMount = "/sys/fs/bpf";

// Mounts bpffs at /sys/fs/bpf when the pin path lies under it and nothing is mounted
// there, then creates the pin path and its links/ directory. False with a message
// otherwise (e.g. a pin path on a filesystem that is not bpffs).
bool ensurePinPath(const std::string& pinPath, std::string& error);

// The mount point of the cgroup v2 hierarchy (e.g. /sys/fs/cgroup/unified on hybrid
// systems, /sys/fs/cgroup on unified ones), from /proc/self/mountinfo; "" if none.
std::string findCgroup2Mount();

// True when path is on a BPF filesystem.
bool onBpffs(const std::string& path);

}  // namespace switchyard::bpf
