// Conntrack garbage collection: the daemon removes the tc conntrack's expired flows, so a
// full table (a plain hash since ct_v3: it refuses new flows instead of evicting live ones)
// fills only with live flows. A flow is two entries that live and die together (bpf/abi.h,
// "ct"): the GC judges and removes them as a pair, and never leaves one of them behind.
//
// Work is bounded: a pass over the table is cut in slices of at most `sliceEntries`
// entries (batched lookups and deletes), and the runner does them off the daemon's
// io_context thread, with a pause between slices, so a 1M-entry table stalls nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bpf/abi.h"

namespace switchyard::bpf {

// How long an idle entry lives, as the tc programs judge it (ct_lifetime() in tc_lb.bpf.c).
struct CtLifetimes {
  uint64_t tcpNs = SY_CT_LIFETIME_TCP * 1000000000ull;
  uint64_t tcpClosingNs = SY_CT_LIFETIME_TCP_CLOSING * 1000000000ull;
  uint64_t otherNs = SY_CT_LIFETIME_NONTCP * 1000000000ull;
};
uint64_t ctLifetimeNs(const sy_ct_entry& e, uint8_t proto, const CtLifetimes& l);
// Whether an entry stamped at `stampNs` is still alive at `nowNs` (sy_fresh() in BPF: a
// stamp from after `now`, written by another CPU meanwhile, is alive).
inline bool ctFresh(uint64_t stampNs, uint64_t nowNs, uint64_t lifeNs) {
  return stampNs >= nowNs || nowNs - stampNs < lifeNs;
}
// The key of the other entry of an entry's flow (ct_reply_key_of / ct_forward_key_of).
sy_ct_key ctPartnerKey(const sy_ct_key& k, const sy_ct_entry& e);
// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), which stamps the entries.
uint64_t monotonicNowNs();

// What the GC removed, by why (the reason label of switchyard_conntrack_gc_removed_total).
struct CtGcRemoved {
  uint64_t expired = 0;  // idle past its lifetime
  uint64_t closed = 0;   // a closed TCP flow (FIN or RST seen) past its short lifetime
  uint64_t orphan = 0;   // an expired entry whose flow's other entry was gone already
  uint64_t total() const { return expired + closed + orphan; }
  CtGcRemoved& operator+=(const CtGcRemoved& o) {
    expired += o.expired;
    closed += o.closed;
    orphan += o.orphan;
    return *this;
  }
};

// One pass (a walk of the whole table), done slice by slice.
struct CtGcPass {
  uint64_t scanned = 0;   // entries read
  uint64_t kept = 0;      // of those, alive: the table's size at the pass's end
  CtGcRemoved removed;    // entries deleted (both of a pair)
  uint64_t deleteErrors = 0;
  uint32_t slices = 0;
};

class CtGc {
 public:
  struct Options {
    CtLifetimes lifetimes;
    uint32_t sliceEntries = 8192;  // entries read per slice at most
    uint32_t batchEntries = 1024;  // entries per bpf_map_lookup_batch call (grows on ENOSPC)
  };
  CtGc(int ctFd, Options o);

  // Reads up to sliceEntries entries from where the previous slice stopped, deletes the
  // expired flows among them. Returns true when the pass reached the table's end (the next
  // slice starts a new pass); pass() is then complete.
  bool slice(uint64_t nowNs);
  // A whole pass, slice after slice (tests; the runner paces its slices).
  CtGcPass runPass(uint64_t nowNs);
  const CtGcPass& pass() const { return pass_; }
  // An error of the last slice (the map could not be walked), empty if none.
  const std::string& error() const { return error_; }

 private:
  void flushDeletes();

  int fd_;
  Options o_;
  CtGcPass pass_;
  bool started_ = false;  // within a pass: inBatch_ holds the position
  uint32_t inBatch_ = 0, outBatch_ = 0;
  std::vector<sy_ct_key> keys_, deletes_;
  std::vector<sy_ct_entry> values_;
  std::string error_;
};

// Cilium's dynamic GC interval: a pass that removed much of the table, or a table under
// pressure, brings the next pass closer; a quiet one moves it away, within [min, max].
struct CtGcIntervals {
  std::chrono::milliseconds min{1000};
  std::chrono::milliseconds max{60000};
  std::chrono::milliseconds initial{10000};
};
std::chrono::milliseconds nextCtGcInterval(std::chrono::milliseconds prev, const CtGcPass& p,
                                           uint32_t maxEntries, const CtGcIntervals& b);

// Entries in a hash-like map, counted by walking it (batched lookups; key by key where the
// kernel has no batch for the type, e.g. LPM tries). Bounded by the map's size.
uint64_t countMapEntries(int fd);

// The GC on a thread of its own. Its figures (for metrics and status) are read with stats().
class CtGcRunner {
 public:
  // A map whose fill the runner samples after each pass (for switchyard_bpf_map_pressure).
  struct SampledMap {
    std::string name;  // the metrics label
    int fd = -1;       // the caller's; must outlive the runner
  };
  struct MapFill {
    std::string name;
    uint64_t entries = 0;
    uint32_t maxEntries = 0;
  };
  struct Stats {
    uint64_t passes = 0;
    std::vector<MapFill> maps;      // the sampled maps, as of the last pass
    CtGcRemoved removed;            // since start
    uint64_t entries = 0;           // kept by the last complete pass
    uint32_t maxEntries = 0;
    double lastPassSeconds = 0;     // wall time of the last pass, pauses between slices included
    double lastIntervalSeconds = 0; // the wait before the next pass
    uint64_t errors = 0;
  };
  struct Options {
    CtGc::Options gc;
    CtGcIntervals intervals;
    std::chrono::microseconds slicePause{2000};
    std::vector<SampledMap> sampled;  // counted after each pass, besides ct itself
  };
  // ctFd stays the caller's and must outlive the runner.
  CtGcRunner(int ctFd, Options o);
  ~CtGcRunner();  // stops the thread
  Stats stats() const;
  // Starts a pass now (tests, and a ct-full event) instead of at the end of the interval.
  void kick();

 private:
  void loop(std::stop_token st);

  int fd_;
  Options o_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  bool kicked_ = false;
  Stats stats_;
  std::jthread thread_;
};

}  // namespace switchyard::bpf
