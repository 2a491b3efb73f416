#include "bpf/pinned_maps.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

namespace switchyard::bpf {

bool PinnedMaps::open(const std::string& pinPath, std::string& error) {
  struct Entry {
    const char* name;
    UniqueFd* owner;
    int* fd;
  } entries[] = {
      {kPinServices, &services_, &fds_.services}, {kPinBackends, &backends_, &fds_.backends},
      {kPinRevNat, &revNat_, &fds_.revNat},       {kPinCt, &ct_, &fds_.ct},
      {kPinSockRevNat, &sockRevNat_, &fds_.sockRevNat},
      {kPinCounters, &counters_, &fds_.counters}, {kPinMeta, &meta_, &fds_.meta},
      {kPinTcAttach, &tcAttach_, &fds_.tcAttach},
  };
  for (const Entry& e : entries) {
    std::string path = pinPath + "/" + e.name;
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      error = path + ": " + std::strerror(errno) +
              (errno == ENOENT ? " (is a switchyard daemon running with this pinPath?)" : "");
      return false;
    }
    e.owner->reset(fd);
    *e.fd = fd;
  }
  return true;
}

}  // namespace switchyard::bpf
