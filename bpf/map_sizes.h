// Map sizes in entries, set before load; 0 keeps the build default of bpf/abi.h. Shared by
// the configuration (bpf.mapSizes) and the loader, without either depending on the other.
#pragma once

#include <cstdint>

namespace switchyard::bpf {

struct MapSizes {
  uint32_t services = 0;
  uint32_t backends = 0;
  uint32_t revNat = 0;
  uint32_t conntrack = 0;
  uint32_t sockRevNat = 0;
  uint32_t affinity = 0;
  uint32_t sourceRanges = 0;
  uint32_t maglev = 0;  // Maglev tables (issue 11 item 3)
};

}  // namespace switchyard::bpf
