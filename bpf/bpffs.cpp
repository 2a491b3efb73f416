#include "bpf/bpffs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "bpf/pinned_maps.h"
#include "logging/log.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace switchyard::bpf {
namespace {

namespace fs = std::filesystem;

// Undoes what ensurePinPath did when a later step fails.
class Rollback {
 public:
  ~Rollback() {
    if (committed_) {
      return;
    }
    if (!mounted_.empty() && ::umount2(mounted_.c_str(), UMOUNT_NOFOLLOW) < 0) {
      SY_LOG(Warning) << "rollback: unmount bpffs at " << mounted_.string() << ": " << std::strerror(errno);
    }
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      ::rmdir(it->c_str());
    }
  }
  void created(const fs::path& p) { created_.push_back(p); }
  void mounted(const fs::path& p) { mounted_ = p; }
  void commit() { committed_ = true; }

 private:
  std::vector<fs::path> created_;  // outermost first
  fs::path mounted_;
  bool committed_ = false;
};

// mkdir -p that remembers which directories it made.
bool makeDirs(const fs::path& path, Rollback& rb, std::string& error) {
  fs::path sofar;
  for (const fs::path& part : path) {
    sofar /= part;
    if (::mkdir(sofar.c_str(), 0755) == 0) {
      rb.created(sofar);
    } else if (errno != EEXIST) {
      error = "create " + sofar.string() + ": " + std::strerror(errno);
      return false;
    } else if (!fs::is_directory(sofar)) {
      error = "create " + sofar.string() + ": exists and is not a directory";
      return false;
    }
  }
  return true;
}

int systemMount(const char* source, const char* target, const char* fstype, unsigned long flags,
                const void* data) {
  return ::mount(source, target, fstype, flags, data);
}

}  // namespace

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
  return ensurePinPath(pinPath, error, systemMount);
}

bool ensurePinPath(const std::string& pinPath, std::string& error, const MountFn& mountFn) {
  fs::path pin = fs::path(pinPath).lexically_normal();
  if (!pin.is_absolute()) {
    error = "pin path " + pinPath + " must be absolute";
    return false;
  }
  if (!pin.has_filename() && pin != pin.root_path()) {
    pin = pin.parent_path();  // "/a/b/" -> "/a/b"
  }
  Rollback rb;
  std::string mount = kBpffsMount;
  bool underDefault = pin == fs::path(mount) || pin.string().rfind(mount + "/", 0) == 0;
  if (underDefault && !onBpffs(mount)) {
    if (!makeDirs(mount, rb, error)) {
      return false;
    }
    if (mountFn("bpf", mount.c_str(), "bpf", 0, "mode=0700") < 0) {
      error = "mount bpffs at " + mount + ": " + std::strerror(errno);
      return false;
    }
    rb.mounted(mount);
    SY_LOG(Info) << "mounted bpffs at " << mount;
  }
  std::error_code ec;
  bool existed = fs::exists(pin, ec);
  if (!makeDirs(pin, rb, error)) {
    error = "pin path: " + error;
    return false;
  }
  if (!onBpffs(pin)) {
    if (underDefault) {
      error = "pin path " + pinPath + " is not on a BPF filesystem, though " + mount + " is (a mount over part of it?)";
      return false;
    }
    // Mounting over a directory hides what it holds: only an empty one.
    if (existed && !fs::is_empty(pin, ec)) {
      error = "pin path " + pinPath + " is not on a BPF filesystem and not empty; mount bpffs there "
              "(mount -t bpf bpf " + pinPath + ") or choose an empty or new directory";
      return false;
    }
    if (mountFn("bpf", pin.c_str(), "bpf", 0, "mode=0700") < 0) {
      error = "mount bpffs at pin path " + pinPath + ": " + std::strerror(errno);
      return false;
    }
    rb.mounted(pin);
    SY_LOG(Info) << "mounted bpffs at the pin path " << pinPath;
  }
  if (!makeDirs(pin / kLinksDir, rb, error)) {
    error = "pin path: " + error;
    return false;
  }
  if (!onBpffs(pin)) {
    error = "pin path " + pinPath + " is not on a BPF filesystem after mounting one there";
    return false;
  }
  rb.commit();
  return true;
}

int flockHolder(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) {
    return 0;
  }
  // "1: FLOCK  ADVISORY  WRITE 6932 00:26:4270519 0 EOF" (device numbers in hex)
  char want[64];
  std::snprintf(want, sizeof(want), "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string ord, kind, mode, access, dev;
    int pid = 0;
    f >> ord >> kind;
    if (kind == "->") {
      continue;  // a waiter, not the holder
    }
    f >> mode >> access >> pid >> dev;
    if (kind == "FLOCK" && dev == want) {
      return pid;
    }
  }
  return 0;
}

int pinPathHolder(const std::string& pinPath) {
  UniqueFd fd(::open(pinPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    return 0;
  }
  // A shared lock conflicts only with the daemon's exclusive one; closing fd drops it.
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK) {
    return 0;
  }
  int pid = flockHolder(pinPath);
  return pid > 0 ? pid : -1;
}

bool PinPathLock::acquire(const std::string& pinPath, std::string& error) {
  UniqueFd fd(::open(pinPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    error = "lock pin path " + pinPath + ": " + std::strerror(errno);
    return false;
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      error = "lock pin path " + pinPath + ": " + std::strerror(err);
      return false;
    }
    int pid = flockHolder(pinPath);
    error = "pin path " + pinPath + " is in use by another switchyard daemon" +
            (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
            ": one daemon per pin path (two would hand out the same backend and rev-NAT IDs); "
            "stop it or give this one another bpf.pinPath";
    return false;
  }
  fd_ = std::move(fd);
  return true;
}

}  // namespace switchyard::bpf
