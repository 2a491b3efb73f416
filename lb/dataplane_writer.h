// The seam between lb/ and the maps: the syncer decides what to write and in which order;
// a writer (bpf/map_writer.h) applies lists of single-entry operations in that order and
// reports each one's result. Consecutive operations of one kind may go to the kernel in
// one batch system call; the order the syncer chose is kept either way.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "lb/types.h"

namespace switchyard::lb {

// The value of one services-map slot (see abi.h: slot 0 = service, 1..n = backends).
struct SlotValue {
  uint32_t backendId = 0;  // slots 1..n
  uint32_t revNatId = 0;   // slot 0
  uint16_t count = 0;      // slot 0
  FrontendHead head;       // slot 0
  auto operator<=>(const SlotValue&) const = default;
};

// One map operation and, once applied, its result.
struct MapOp {
  enum class Kind : uint8_t {
    PutBackend, DeleteBackend, PutRevNat, DeleteRevNat, PutSlot, DeleteSlot,
    PutSourceRange, DeleteSourceRange,
    // A backend moves from slot `slot` to slot value.count of the frontend with rev NAT ID
    // `id`: the affinity entries that name it there follow it (best effort: entries come and
    // go with traffic; the result is always 0).
    MoveAffinity,
    // -- Maglev (issue 11 item 3) --
    // The Maglev table of the frontend with rev NAT ID `id` becomes `table` (backend IDs, the
    // M entries): a new table filled completely, then swapped in by one update.
    PutMaglev,
    DeleteMaglev,
    // -- end Maglev --
  };

  Kind kind = Kind::PutSlot;
  uint16_t slot = 0;      // PutSlot, DeleteSlot
  uint32_t id = 0;        // backend ID (*Backend), rev NAT ID (*RevNat, *SourceRange)
  FrontendKey frontend;   // PutRevNat, PutSlot, DeleteSlot
  Backend backend;        // PutBackend
  SlotValue value;        // PutSlot
  Cidr range;             // *SourceRange
  std::vector<uint32_t> table;  // PutMaglev: backend IDs of entries 1..M
  int result = 0;         // set by apply(): 0 or a negative errno

  static MapOp putBackend(uint32_t id, const Backend& b) {
    MapOp op;
    op.kind = Kind::PutBackend;
    op.id = id;
    op.backend = b;
    return op;
  }
  static MapOp deleteBackend(uint32_t id) {
    MapOp op;
    op.kind = Kind::DeleteBackend;
    op.id = id;
    return op;
  }
  static MapOp putRevNat(uint32_t id, const FrontendKey& fe) {
    MapOp op;
    op.kind = Kind::PutRevNat;
    op.id = id;
    op.frontend = fe;
    return op;
  }
  static MapOp deleteRevNat(uint32_t id) {
    MapOp op;
    op.kind = Kind::DeleteRevNat;
    op.id = id;
    return op;
  }
  static MapOp putSlot(const FrontendKey& fe, uint16_t slot, const SlotValue& v) {
    MapOp op;
    op.kind = Kind::PutSlot;
    op.frontend = fe;
    op.slot = slot;
    op.value = v;
    return op;
  }
  static MapOp deleteSlot(const FrontendKey& fe, uint16_t slot) {
    MapOp op;
    op.kind = Kind::DeleteSlot;
    op.frontend = fe;
    op.slot = slot;
    return op;
  }
  static MapOp putSourceRange(uint32_t revNatId, const Cidr& c) {
    MapOp op;
    op.kind = Kind::PutSourceRange;
    op.id = revNatId;
    op.range = c;
    return op;
  }
  static MapOp moveAffinity(uint32_t revNatId, uint32_t backendId, uint16_t from, uint16_t to) {
    MapOp op;
    op.kind = Kind::MoveAffinity;
    op.id = revNatId;
    op.slot = from;
    op.value.backendId = backendId;
    op.value.count = to;
    return op;
  }
  static MapOp putMaglev(uint32_t revNatId, std::vector<uint32_t> table) {
    MapOp op;
    op.kind = Kind::PutMaglev;
    op.id = revNatId;
    op.table = std::move(table);
    return op;
  }
  static MapOp deleteMaglev(uint32_t revNatId) {
    MapOp op;
    op.kind = Kind::DeleteMaglev;
    op.id = revNatId;
    return op;
  }
  static MapOp deleteSourceRange(uint32_t revNatId, const Cidr& c) {
    MapOp op;
    op.kind = Kind::DeleteSourceRange;
    op.id = revNatId;
    op.range = c;
    return op;
  }
};

// What the maps hold, read back at start-up so a new daemon adopts it.
struct ProgrammedFrontend {
  FrontendKey key;  // scope included
  uint32_t revNatId = 0;
  FrontendHead head;
  std::vector<uint32_t> backendIds;  // slots 1..count, in slot order
  // Slots above count that are still in the map (a crash between lowering the count and
  // deleting them): the syncer deletes them.
  std::vector<uint16_t> straySlots;
};

// A Maglev table the maps hold (for adoption: enough to tell whether a sync would change it).
struct ProgrammedMaglev {
  uint32_t tableSize = 0;            // its M
  uint64_t digest = 0;               // maglevDigest() of its entries (lb/maglev.h)
  std::vector<uint32_t> backendIds;  // the distinct backend IDs it names, sorted
};

struct DataplaneState {
  std::vector<ProgrammedFrontend> frontends;
  std::map<uint32_t, Backend> backends;     // backend ID -> backend
  std::map<uint32_t, FrontendKey> revNats;  // rev NAT ID -> frontend (scope unknown: External)
  std::map<uint32_t, std::vector<Cidr>> sourceRanges;  // rev NAT ID -> its ranges
  std::map<uint32_t, ProgrammedMaglev> maglevTables;   // rev NAT ID -> its Maglev table
  // IDs that live conntrack (and affinity) entries still name: not to be handed out again
  // before the longest conntrack lifetime has passed (id_index.h).
  std::vector<uint32_t> backendIdsInUse;
  std::vector<uint32_t> revNatIdsInUse;
};

class DataplaneWriter {
 public:
  virtual ~DataplaneWriter() = default;
  // Applies ops in order and sets each op's result. Deleting an absent entry succeeds.
  // A failure is logged and counted by the writer, naming map, key and errno; the
  // remaining ops still run (the caller decides what a failure means for what follows).
  virtual void apply(std::span<MapOp> ops) = 0;
  // Everything the maps hold now; incomplete services (a slot missing) come back with
  // backend ID 0 in that slot.
  virtual DataplaneState read() = 0;
};

}  // namespace switchyard::lb
