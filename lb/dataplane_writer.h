// The seam between lb/ and the maps: the syncer decides what to write and in which order;
// a writer (bpf/map_writer.h) performs single map operations. Each call returns 0 or a
// negative errno; the writer logs and counts its own failures, naming map, key and errno.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "lb/types.h"

namespace switchyard::lb {

// The value of one services-map slot (see abi.h: slot 0 = service, 1..n = backends).
struct SlotValue {
  uint32_t backendId = 0;
  uint32_t revNatId = 0;
  uint16_t count = 0;
  uint16_t flags = 0;
  auto operator<=>(const SlotValue&) const = default;
};

// What the maps hold, read back at start-up so a new daemon adopts it.
struct ProgrammedFrontend {
  FrontendKey key;
  uint32_t revNatId = 0;
  uint16_t flags = 0;
  std::vector<uint32_t> backendIds;  // slots 1..count, in slot order
};

struct DataplaneState {
  std::vector<ProgrammedFrontend> frontends;
  std::map<uint32_t, Backend> backends;     // backend ID -> backend
  std::map<uint32_t, FrontendKey> revNats;  // rev NAT ID -> frontend
};

class DataplaneWriter {
 public:
  virtual ~DataplaneWriter() = default;
  virtual int putBackend(uint32_t id, const Backend& backend) = 0;
  virtual int deleteBackend(uint32_t id) = 0;
  virtual int putRevNat(uint32_t id, const FrontendKey& frontend) = 0;
  virtual int deleteRevNat(uint32_t id) = 0;
  virtual int putSlot(const FrontendKey& frontend, uint16_t slot, const SlotValue& value) = 0;
  virtual int deleteSlot(const FrontendKey& frontend, uint16_t slot) = 0;
  // Everything the maps hold now; incomplete services (a slot missing) come back with
  // backend ID 0 in that slot.
  virtual DataplaneState read() = 0;
};

}  // namespace switchyard::lb
