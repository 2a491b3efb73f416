#include "bpf/pinned_maps.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

namespace switchyard::bpf {

bool PinnedMaps::open(const std::string& pinPath, std::string& error) {
  size_t i = 0;
  for (const MapPin& m : kMapPins) {
    std::string path = pinPath + "/" + m.name;
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      error = path + ": " + std::strerror(errno) +
              (errno == ENOENT ? " (is a switchyard daemon running with this pinPath?)" : "");
      return false;
    }
    owned_[i++].reset(fd);
    fds_.*m.fd = fd;
  }
  return true;
}

MapWriterKind writerOf(const std::string& name) {
  for (const MapPin& m : kMapPins) {
    if (name == m.name) {
      return m.writer;
    }
  }
  return MapWriterKind::Daemon;
}

}  // namespace switchyard::bpf
