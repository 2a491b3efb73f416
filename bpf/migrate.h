// Taking pinned maps over when their layout or size changed: a new daemon version, or a new
// bpf.mapSizes. The old maps keep serving traffic (through the programs attached to them)
// until the new programs replace those, so nothing is flushed:
//  1. load: the new daemon creates each map whose pin is missing or incompatible, and copies
//     the old map's entries in, converting them when the layout changed (kPredecessors);
//  2. attach: it replaces the programs (tc filter replace, bpf_link_update), and, when a map
//     the kernel writes (conntrack, affinity, socket reverse NAT) was copied, hands packets its
//     conntrack misses to the replaced programs (tc_lb.bpf.c, sy_prev_progs), whose maps still
//     track the flows that began after the copy;
//  3. finish: it copies what the old maps gained meanwhile, stops the hand-off, copies once
//     more, adds the old counters to the new, and drops the old maps and pins.
// This file holds the copying and the registry of layout changes; bpf/datapath.cpp runs the
// steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace switchyard::bpf {

// What makes two maps interchangeable for libbpf's pin reuse.
struct MapShape {
  uint32_t type = 0;
  uint32_t keySize = 0;
  uint32_t valueSize = 0;
  uint32_t maxEntries = 0;
  uint32_t flags = 0;
  bool operator==(const MapShape&) const = default;
};
std::optional<MapShape> shapeOf(int mapFd);
std::string describe(const MapShape& s);  // "lru_hash 40->56 bytes, 262144 entries, flags 0x0"

// Turns one entry of an old layout into the new one: both buffers of the new sizes are zeroed
// before the call. Returns false to leave the entry out.
using ConvertEntry = bool (*)(const MapShape& from, const MapShape& to, const uint8_t* key,
                              const uint8_t* value, uint8_t* newKey, uint8_t* newValue);

// Same key, and the old value's bytes at the start of the new value, the rest zero: a layout
// change that only appends fields.
bool convertAppendedFields(const MapShape& from, const MapShape& to, const uint8_t* key,
                           const uint8_t* value, uint8_t* newKey, uint8_t* newValue);

// A renamed map (a layout change bumps the _vN suffix): where its entries come from.
struct Predecessor {
  const char* oldPin;
  const char* newPin;
  ConvertEntry convert;
};
std::span<const Predecessor> predecessors();

enum class CopyMode {
  Overwrite,     // every old entry is written (the first copy, into a fresh map)
  KeepExisting,  // only entries the new map lacks (later copies: the new programs' own win)
  AddCounters,   // per-CPU counters: the new value is new + old
};

struct CopyStats {
  size_t copied = 0;
  size_t skipped = 0;  // left out by the converter, or already there (KeepExisting)
  size_t failed = 0;   // the new map refused them (full): counted, the copy goes on
  int firstErrno = 0;
};

// Copies every entry of `from` into `to`. Without a converter the key and value sizes must
// match (a resize); map-in-map values (inner map IDs) are passed on as the same inner maps.
// Hash-like maps are walked by key, arrays by index (up to the smaller size). Bounded: a
// walk that a concurrent writer keeps restarting stops after 2 x max_entries steps.
// Returns false with `error` only when the copy cannot be made at all.
bool copyEntries(int fromFd, int toFd, ConvertEntry convert, CopyMode mode, CopyStats& stats,
                 std::string& error);

}  // namespace switchyard::bpf
