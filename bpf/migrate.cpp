#include "bpf/migrate.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "bpf/abi.h"
#include "bpf/pinned_maps.h"
#include "bpf/unique_fd.h"

namespace switchyard::bpf {
namespace {

bool isPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

bool isArray(uint32_t type) {
  return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_ARRAY_OF_MAPS;
}

bool isMapInMap(uint32_t type) {
  return type == BPF_MAP_TYPE_ARRAY_OF_MAPS || type == BPF_MAP_TYPE_HASH_OF_MAPS;
}

// Bytes of one value as the syscalls pass it: per-CPU maps hold one 8-byte-aligned slot per
// possible CPU.
size_t valueBytes(const MapShape& s, size_t cpus) {
  if (!isPerCpu(s.type)) {
    return s.valueSize;
  }
  return cpus * ((s.valueSize + 7) / 8 * 8);
}

size_t slotBytes(const MapShape& s) { return isPerCpu(s.type) ? (s.valueSize + 7) / 8 * 8 : s.valueSize; }

constexpr Predecessor kPredecessors[] = {
#ifdef SY_TEST_NEXT_LAYOUT
    // The test layout (abi.h): the released conntrack map becomes ct_vnext, whose entries
    // have one more field.
    {SY_STRINGIFY(SY_MAP_CT_RELEASED), kPinCt, convertAppendedFields},
#endif
    // A real layout change adds its line here: {"ct_v2", "ct_v3", convertCtV2ToV3}.
    {nullptr, nullptr, nullptr},
};

}  // namespace

std::optional<MapShape> shapeOf(int mapFd) {
  struct bpf_map_info info {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(mapFd, &info, &len) != 0) {
    return std::nullopt;
  }
  return MapShape{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags};
}

std::string describe(const MapShape& s) {
  const char* type = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(s.type));
  char flags[16];
  std::snprintf(flags, sizeof(flags), "0x%x", s.flags);
  return std::string(type ? type : "type " + std::to_string(s.type)) + ", key " +
         std::to_string(s.keySize) + " bytes, value " + std::to_string(s.valueSize) + " bytes, " +
         std::to_string(s.maxEntries) + " entries, flags " + flags;
}

bool convertAppendedFields(const MapShape& from, const MapShape& to, const uint8_t* key,
                           const uint8_t* value, uint8_t* newKey, uint8_t* newValue) {
  if (from.keySize != to.keySize || from.valueSize > to.valueSize) {
    return false;
  }
  std::memcpy(newKey, key, from.keySize);
  std::memcpy(newValue, value, from.valueSize);
  return true;
}

std::span<const Predecessor> predecessors() {
  return std::span<const Predecessor>(kPredecessors, std::size(kPredecessors) - 1);
}

bool copyEntries(int fromFd, int toFd, ConvertEntry convert, CopyMode mode, CopyStats& stats,
                 std::string& error) {
  auto from = shapeOf(fromFd);
  auto to = shapeOf(toFd);
  if (!from || !to) {
    error = std::string("map info: ") + std::strerror(errno);
    return false;
  }
  if (from->type != to->type || isPerCpu(from->type) != isPerCpu(to->type)) {
    // A map may change type (LRU to plain hash) only with a converter that knows why.
    bool hashes = !isArray(from->type) && !isArray(to->type) && !isMapInMap(from->type) &&
                  !isMapInMap(to->type) && !isPerCpu(from->type) && !isPerCpu(to->type);
    if (!hashes) {
      error = "cannot copy " + describe(*from) + " into " + describe(*to);
      return false;
    }
  }
  if (!convert && (from->keySize != to->keySize || from->valueSize != to->valueSize)) {
    error = "no conversion from " + describe(*from) + " to " + describe(*to) +
            " (a layout change renames the map and registers one in bpf/migrate.cpp)";
    return false;
  }
  if (mode == CopyMode::AddCounters && (!isPerCpu(from->type) || from->valueSize % 8 != 0)) {
    error = "AddCounters needs per-CPU values of 64-bit counters, not " + describe(*from);
    return false;
  }
  int cpus = isPerCpu(from->type) ? libbpf_num_possible_cpus() : 1;
  if (cpus <= 0) {
    error = "cannot count the possible CPUs";
    return false;
  }
  std::vector<uint8_t> key(from->keySize), next(from->keySize), value(valueBytes(*from, cpus));
  std::vector<uint8_t> newKey(to->keySize), newValue(valueBytes(*to, cpus)), have(valueBytes(*to, cpus));

  // An update's outcome: EEXIST is an entry the new map already had (KeepExisting).
  auto count = [&](int rc) {
    if (rc == 0) {
      ++stats.copied;
    } else if (errno == EEXIST) {
      ++stats.skipped;
    } else {
      ++stats.failed;
      stats.firstErrno = stats.firstErrno ? stats.firstErrno : errno;
    }
  };
  // One entry: convert (per CPU slot for per-CPU maps), then write as the mode says.
  auto copyOne = [&](const uint8_t* k) {
    if (bpf_map_lookup_elem(fromFd, k, value.data()) != 0) {
      return;  // gone since the walk found it
    }
    std::fill(newKey.begin(), newKey.end(), 0);
    std::fill(newValue.begin(), newValue.end(), 0);
    if (isMapInMap(from->type)) {
      // Lookups yield inner map IDs; updates take fds of the same inner maps.
      uint32_t id = 0;
      std::memcpy(&id, value.data(), sizeof(id));
      UniqueFd inner(bpf_map_get_fd_by_id(id));
      if (!inner.valid()) {
        ++stats.skipped;
        return;
      }
      uint32_t fd = static_cast<uint32_t>(inner.get());
      std::memcpy(newKey.data(), k, from->keySize);
      count(bpf_map_update_elem(toFd, newKey.data(), &fd, mode == CopyMode::KeepExisting ? BPF_NOEXIST : BPF_ANY));
      return;
    }
    size_t fromSlot = slotBytes(*from), toSlot = slotBytes(*to);
    for (int c = 0; c < cpus; ++c) {
      const uint8_t* v = value.data() + c * fromSlot;
      uint8_t* nv = newValue.data() + c * toSlot;
      if (convert) {
        if (!convert(*from, *to, k, v, newKey.data(), nv)) {
          ++stats.skipped;
          return;
        }
      } else {
        std::memcpy(newKey.data(), k, from->keySize);
        std::memcpy(nv, v, from->valueSize);
      }
    }
    uint64_t flags = BPF_ANY;
    if (mode == CopyMode::KeepExisting && !isArray(to->type)) {
      flags = BPF_NOEXIST;
    } else if (mode == CopyMode::AddCounters) {
      if (bpf_map_lookup_elem(toFd, newKey.data(), have.data()) == 0) {
        for (size_t i = 0; i + 8 <= newValue.size(); i += 8) {
          uint64_t a, b;
          std::memcpy(&a, newValue.data() + i, 8);
          std::memcpy(&b, have.data() + i, 8);
          a += b;
          std::memcpy(newValue.data() + i, &a, 8);
        }
      }
    }
    count(bpf_map_update_elem(toFd, newKey.data(), newValue.data(), flags));
  };

  if (isArray(from->type)) {
    uint32_t n = std::min(from->maxEntries, to->maxEntries);
    for (uint32_t i = 0; i < n; ++i) {
      std::memcpy(key.data(), &i, sizeof(i));
      copyOne(key.data());
    }
    return true;
  }
  // get_next_key starts over from the first key when the current one was deleted meanwhile
  // (an LRU eviction, an expiry): the bound keeps such a walk finite, and copying an entry
  // twice is harmless.
  size_t bound = 2 * static_cast<size_t>(from->maxEntries) + 16;
  int rc = bpf_map_get_next_key(fromFd, nullptr, next.data());
  for (size_t steps = 0; rc == 0 && steps < bound; ++steps) {
    copyOne(next.data());
    key.swap(next);
    rc = bpf_map_get_next_key(fromFd, key.data(), next.data());
  }
  if (rc != 0 && errno != ENOENT) {
    error = std::string("walk the map: ") + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace switchyard::bpf
