// lb::DataplaneWriter over the pinned maps. apply() hands each run of consecutive
// operations of one kind to the kernel in one batch system call (BPF_MAP_UPDATE_BATCH,
// BPF_MAP_DELETE_BATCH), keeping their order; the kernel stops a batch at the first
// failing element and says how many went in, so every operation still gets its own
// result. Failures are logged with map, key and errno and reported to the error sink (a
// Prometheus counter). read() walks the maps with BPF_MAP_LOOKUP_BATCH.
#pragma once

#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "bpf/abi.h"
#include "bpf/pinned_maps.h"
#include "lb/dataplane_writer.h"

namespace switchyard::bpf {

// Conversions between lb/ types and the map contract.
union sy_addr toSyAddr(const lb::IpAddr& a);
lb::IpAddr fromSyAddr(const union sy_addr& a);
struct sy_svc_key toSvcKey(const lb::FrontendKey& fe, uint16_t slot);
struct sy_src_range_key toSrcRangeKey(uint32_t revNatId, const lb::Cidr& c);

class MapWriter : public lb::DataplaneWriter {
 public:
  // map: pin name; op: "update" | "delete" | "lookup"
  using ErrorSink = std::function<void(const char* map, const char* op)>;

  MapWriter(const MapFds& fds, ErrorSink onError = nullptr)
      : fds_(fds), onError_(std::move(onError)) {
    noBatch_.insert(fds.srcRanges);  // LPM tries have no batch operations
  }

  void apply(std::span<lb::MapOp> ops) override;
  lb::DataplaneState read() override;
  // The Maglev table of a frontend (backend IDs of entries 1..M); false when it has none.
  bool readMaglevTable(uint32_t revNatId, std::vector<uint32_t>& out) const;

  // Batch system calls on (the default) or off (one call per entry: the benchmarks'
  // baseline, and what a kernel without batch support gets anyway).
  void setBatching(bool on) { batching_ = on; }
  // System calls made by apply() so far (for tests and benchmarks).
  size_t syscalls() const { return syscalls_; }

 private:
  struct Target;
  void applyRun(std::span<lb::MapOp> run);
  template <typename K, typename V>
  void update(const Target& t, std::span<lb::MapOp> run, const K* keys, const V* values);
  template <typename K>
  void remove(const Target& t, std::span<lb::MapOp> run, const K* keys);
  int fail(const Target& t, const lb::MapOp& op, int err);
  void moveAffinity(std::span<lb::MapOp> run);
  // -- Maglev (issue 11 item 3) --
  int putMaglev(const lb::MapOp& op);
  void readMaglevTables(lb::DataplaneState& st);
  // The backend and rev NAT IDs that conntrack and affinity entries name.
  void readIdsInUse(lb::DataplaneState& st);

  MapFds fds_;
  ErrorSink onError_;
  bool batching_ = true;
  std::set<int> noBatch_;  // maps whose batch operations the kernel refused: one call each
  size_t syscalls_ = 0;
  size_t failuresLogged_ = 0;      // in the current apply(); later ones are summed up
  size_t failuresUnlogged_ = 0;
};

}  // namespace switchyard::bpf
