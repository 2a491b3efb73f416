// An in-memory stand-in for the services, backends and rev NAT maps that checks, after
// every single operation, what a packet could observe: a service's slots 1..count all
// exist and point to existing backends, and its rev NAT entry exists. The BPF behaviour
// itself is tested with the real programs (tests/bpf, tests/e2e); this tests the order in
// which the syncer writes.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "lb/dataplane_writer.h"
#include "lb/maglev.h"

namespace switchyard::lb::testing {

class FakeMaps : public DataplaneWriter {
 public:
  // One operation at a time, in order, checking the invariants after each: whatever the
  // real writer batches, a packet can observe no more than this.
  void apply(std::span<MapOp> ops) override {
    ++applyCalls;
    for (MapOp& op : ops) {
      switch (op.kind) {
        case MapOp::Kind::PutBackend: op.result = putBackend(op.id, op.backend); break;
        case MapOp::Kind::DeleteBackend: op.result = deleteBackend(op.id); break;
        case MapOp::Kind::PutRevNat: op.result = putRevNat(op.id, op.frontend); break;
        case MapOp::Kind::DeleteRevNat: op.result = deleteRevNat(op.id); break;
        case MapOp::Kind::PutSlot: op.result = putSlot(op.frontend, op.slot, op.value); break;
        case MapOp::Kind::DeleteSlot: op.result = deleteSlot(op.frontend, op.slot); break;
        case MapOp::Kind::PutSourceRange:
          if (!(op.result = maybeFail("putSourceRange"))) {
            ranges[op.id].insert(op.range);
            op.result = check("putSourceRange");
          }
          break;
        case MapOp::Kind::MoveAffinity:
          affinityMoves.push_back(op);
          op.result = 0;
          break;
        case MapOp::Kind::PutMaglev:
          if (!(op.result = maybeFail("putMaglev"))) {
            maglev[op.id] = op.table;  // swapped in whole, as the real writer does
            ++maglevWrites;
            op.result = check("putMaglev");
          }
          break;
        case MapOp::Kind::DeleteMaglev:
          if (!(op.result = maybeFail("deleteMaglev"))) {
            maglev.erase(op.id);
            op.result = check("deleteMaglev");
          }
          break;
        case MapOp::Kind::DeleteSourceRange:
          if (!(op.result = maybeFail("deleteSourceRange"))) {
            ranges[op.id].erase(op.range);
            if (ranges[op.id].empty()) ranges.erase(op.id);
            op.result = check("deleteSourceRange");
          }
          break;
      }
      log.push_back(op);
    }
  }
  int putBackend(uint32_t id, const Backend& b) {
    if (int e = maybeFail("putBackend")) return e;
    backends[id] = b;
    return check("putBackend");
  }
  int deleteBackend(uint32_t id) {
    if (int e = maybeFail("deleteBackend")) return e;
    backends.erase(id);
    return check("deleteBackend");
  }
  int putRevNat(uint32_t id, const FrontendKey& fe) {
    if (int e = maybeFail("putRevNat")) return e;
    revNats[id] = fe;
    return check("putRevNat");
  }
  int deleteRevNat(uint32_t id) {
    if (int e = maybeFail("deleteRevNat")) return e;
    revNats.erase(id);
    return check("deleteRevNat");
  }
  int putSlot(const FrontendKey& fe, uint16_t slot, const SlotValue& v) {
    if (int e = maybeFail("putSlot")) return e;
    if (failSlot != 0 && slot == failSlot) return -7;  // E2BIG: this slot's key does not fit
    slots[{fe, slot}] = v;
    ++slotWrites;
    return check("putSlot");
  }
  int deleteSlot(const FrontendKey& fe, uint16_t slot) {
    if (int e = maybeFail("deleteSlot")) return e;
    slots.erase({fe, slot});
    return check("deleteSlot");
  }
  DataplaneState read() override {
    DataplaneState st;
    st.backends = backends;
    st.revNats = revNats;
    for (const auto& [id, set] : ranges) {
      st.sourceRanges[id].assign(set.begin(), set.end());
    }
    for (const auto& [id, table] : maglev) {
      ProgrammedMaglev& pm = st.maglevTables[id];
      pm.tableSize = static_cast<uint32_t>(table.size());
      pm.digest = maglevDigest(table);
      std::set<uint32_t> ids(table.begin(), table.end());
      pm.backendIds.assign(ids.begin(), ids.end());
    }
    for (const auto& [k, v] : slots) {
      if (k.second == 0) {
        ProgrammedFrontend pf;
        pf.key = k.first;
        pf.revNatId = v.revNatId;
        pf.head = v.head;
        for (uint16_t s = 1; s <= v.count; ++s) {
          auto it = slots.find({k.first, s});
          pf.backendIds.push_back(it == slots.end() ? 0 : it->second.backendId);
        }
        for (auto it = slots.upper_bound({k.first, v.count}); it != slots.end() && it->first.first == k.first; ++it) {
          pf.straySlots.push_back(it->first.second);
        }
        st.frontends.push_back(pf);
      }
    }
    return st;
  }

  // The backends a packet to `fe` can reach now, as strings.
  std::vector<std::string> reachable(const FrontendKey& fe) const {
    std::vector<std::string> out;
    auto head = slots.find({fe, 0});
    if (head == slots.end()) return out;
    for (uint16_t s = 1; s <= head->second.count; ++s) {
      out.push_back(backends.at(slots.at({fe, s}).backendId).key.str());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::map<uint32_t, Backend> backends;
  std::map<uint32_t, FrontendKey> revNats;
  std::map<std::pair<FrontendKey, uint16_t>, SlotValue> slots;
  std::map<uint32_t, std::set<Cidr>> ranges;  // rev NAT ID -> source ranges
  std::map<uint32_t, std::vector<uint32_t>> maglev;  // rev NAT ID -> Maglev table entries
  size_t maglevWrites = 0;
  std::vector<MapOp> affinityMoves;
  std::vector<std::string> violations;  // invariant breaks seen after an operation
  size_t slotWrites = 0;
  size_t applyCalls = 0;
  std::vector<MapOp> log;  // every operation applied, in order
  std::string failOp;  // operation name to fail with -E2BIG ("map full"), "" = none
  uint16_t failSlot = 0;  // putSlot of this slot number fails, 0 = none

 private:
  int maybeFail(const std::string& op) { return op == failOp ? -7 /* E2BIG */ : 0; }

  int check(const std::string& op) {
    for (const auto& [k, v] : slots) {
      if (k.second != 0) continue;
      const std::string fe = k.first.str();
      if (v.revNatId == 0 || !revNats.count(v.revNatId)) {
        violations.push_back(op + ": " + fe + " names rev NAT " + std::to_string(v.revNatId) + " which does not exist");
      }
      if ((v.head.flags & kFrontendSourceRanges) && !ranges.count(v.revNatId)) {
        violations.push_back(op + ": " + fe + " checks source ranges but has none");
      }
      if (v.head.flags & kFrontendTwoScopes) {
        FrontendKey internal = k.first;
        internal.scope = Scope::Internal;
        if (!slots.count({internal, 0})) {
          violations.push_back(op + ": " + fe + " announces an internal scope that does not exist");
        }
      }
      // A Maglev head with backends has a whole table, naming only backends that exist.
      if ((v.head.flags & kFrontendMaglev) && v.count > 0) {
        auto t = maglev.find(v.revNatId);
        if (t == maglev.end() || t->second.empty()) {
          violations.push_back(op + ": " + fe + " is flagged Maglev but has no table");
        } else {
          for (uint32_t id : t->second) {
            if (!backends.count(id)) {
              violations.push_back(op + ": " + fe + "'s Maglev table names missing backend " + std::to_string(id));
              break;
            }
          }
        }
      }
      for (uint16_t s = 1; s <= v.count; ++s) {
        auto it = slots.find({k.first, s});
        if (it == slots.end()) {
          violations.push_back(op + ": " + fe + " count " + std::to_string(v.count) + " but slot " + std::to_string(s) + " is missing");
        } else if (!backends.count(it->second.backendId)) {
          violations.push_back(op + ": " + fe + " slot " + std::to_string(s) + " points to missing backend " +
                               std::to_string(it->second.backendId));
        }
      }
    }
    return 0;
  }
};

}  // namespace switchyard::lb::testing
