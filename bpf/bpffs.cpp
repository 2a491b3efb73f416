#include "bpf/bpffs.h"

#include <sys/mount.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bpf/pinned_maps.h"
#include "logging/log.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace switchyard::bpf {

bool onBpffs(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 &&
         static_cast<unsigned long>(st.f_type) == static_cast<unsigned long>(BPF_FS_MAGIC);
}

std::string findCgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "36 25 0:31 / /sys/fs/cgroup/unified rw,... - cgroup2 cgroup2 rw"
    auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) {
      continue;
    }
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, dev, root, mountPoint;
    fields >> id >> parent >> dev >> root >> mountPoint;
    if (root == "/") {
      return mountPoint;
    }
  }
  return "";
}

bool ensurePinPath(const std::string& pinPath, std::string& error) {
  namespace fs = std::filesystem;
  std::string mount = kBpffsMount;
  bool underDefault = pinPath == mount || pinPath.rfind(mount + "/", 0) == 0;
  if (underDefault && !onBpffs(mount)) {
    std::error_code ec;
    fs::create_directories(mount, ec);
    if (::mount("bpf", mount.c_str(), "bpf", 0, "mode=0700") < 0) {
      error = "mount bpffs at " + mount + ": " + std::strerror(errno);
      return false;
    }
    SY_LOG(Info) << "mounted bpffs at " << mount;
  }
  std::error_code ec;
  fs::create_directories(fs::path(pinPath) / kLinksDir, ec);
  if (ec) {
    error = "create pin path " + pinPath + ": " + ec.message();
    return false;
  }
  if (!onBpffs(pinPath)) {
    error = "pin path " + pinPath + " is not on a BPF filesystem (mount -t bpf bpf DIR)";
    return false;
  }
  return true;
}

}  // namespace switchyard::bpf
