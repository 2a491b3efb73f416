#include "bpf/ct_gc.h"

#include <bpf/bpf.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "bpf/migrate.h"
#include "logging/log.h"

namespace switchyard::bpf {
namespace {

sy_ct_key makeKey(const sy_addr& saddr, const sy_addr& daddr, uint16_t sport, uint16_t dport,
                  uint8_t proto) {
  sy_ct_key k{};
  k.saddr = saddr;
  k.daddr = daddr;
  k.sport = sport;
  k.dport = dport;
  k.proto = proto;
  return k;
}

struct KeyLess {
  bool operator()(const sy_ct_key& a, const sy_ct_key& b) const {
    return std::memcmp(&a, &b, sizeof(a)) < 0;
  }
};

bool sameKey(const sy_ct_key& a, const sy_ct_key& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

}  // namespace

uint64_t ctLifetimeNs(const sy_ct_entry& e, uint8_t proto, const CtLifetimes& l) {
  if (proto != IPPROTO_TCP) {
    return l.otherNs;
  }
  return (e.flags & SY_CT_F_CLOSING) ? l.tcpClosingNs : l.tcpNs;
}

sy_ct_key ctPartnerKey(const sy_ct_key& k, const sy_ct_entry& e) {
  bool snat = e.flags & SY_CT_F_SNAT;
  if (e.dir == SY_CT_FORWARD) {
    return snat ? makeKey(e.nat_addr, e.nat2_addr, e.nat_port, e.nat2_port, k.proto)
                : makeKey(e.nat_addr, k.saddr, e.nat_port, k.sport, k.proto);
  }
  return snat ? makeKey(e.nat2_addr, e.nat_addr, e.nat2_port, e.nat_port, k.proto)
              : makeKey(k.daddr, e.nat_addr, k.dport, e.nat_port, k.proto);
}

uint64_t monotonicNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

CtGc::CtGc(int ctFd, Options o) : fd_(ctFd), o_(o) {
  o_.batchEntries = std::max<uint32_t>(o_.batchEntries, 16);
  o_.sliceEntries = std::max(o_.sliceEntries, o_.batchEntries);
}

void CtGc::flushDeletes() {
  if (deletes_.empty()) {
    return;
  }
  uint32_t count = static_cast<uint32_t>(deletes_.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_delete_batch(fd_, deletes_.data(), &count, &opts) != 0) {
    // The batch stops at the first key it cannot delete (one the programs deleted
    // meanwhile: ENOENT): the rest one by one.
    for (size_t i = count; i < deletes_.size(); ++i) {
      if (bpf_map_delete_elem(fd_, &deletes_[i]) != 0 && errno != ENOENT) {
        ++pass_.deleteErrors;
      }
    }
  }
  deletes_.clear();
}

bool CtGc::slice(uint64_t nowNs) {
  error_.clear();
  if (!started_) {
    pass_ = {};
  }
  ++pass_.slices;
  uint32_t budget = o_.sliceEntries;
  while (budget > 0) {
    uint32_t want = std::min(budget, o_.batchEntries);
    keys_.resize(want);
    values_.resize(want);
    uint32_t count = want;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(fd_, started_ ? &inBatch_ : nullptr, &outBatch_, keys_.data(),
                                  values_.data(), &count, &opts);
    bool end = rc != 0 && errno == ENOENT;
    if (rc != 0 && !end) {
      if (errno == ENOSPC && count == 0 && o_.batchEntries < (1u << 20)) {
        o_.batchEntries *= 2;  // one hash bucket holds more entries than a batch
        o_.sliceEntries = std::max(o_.sliceEntries, o_.batchEntries);
        budget = std::max(budget, o_.batchEntries);
        continue;
      }
      error_ = std::string("conntrack GC: read the map: ") + std::strerror(errno);
      started_ = false;
      return true;
    }
    started_ = true;
    inBatch_ = outBatch_;
    budget -= std::min(budget, std::max<uint32_t>(count, 1));

    // Keys already queued for deletion in this batch: the other entry of a flow removed
    // earlier in the batch is not judged again.
    std::set<sy_ct_key, KeyLess> queued;
    for (uint32_t i = 0; i < count; ++i) {
      const sy_ct_key& k = keys_[i];
      const sy_ct_entry& e = values_[i];
      if (queued.count(k)) {
        continue;
      }
      ++pass_.scanned;
      if (ctFresh(e.last_seen_ns, nowNs, ctLifetimeNs(e, k.proto, o_.lifetimes))) {
        ++pass_.kept;
        continue;
      }
      // Expired by its own stamp. Its flow's other entry decides too: both directions
      // stamp both, but the pair is judged by the newer stamp and either's closing flag.
      sy_ct_key pk = ctPartnerKey(k, e);
      sy_ct_entry pe{};
      bool paired = bpf_map_lookup_elem(fd_, &pk, &pe) == 0 && pe.dir != e.dir &&
                    sameKey(ctPartnerKey(pk, pe), k);
      if (!paired) {
        // Alone (its other entry gone, or that tuple now belongs to another flow).
        deletes_.push_back(k);
        queued.insert(k);
        ++pass_.removed.orphan;
        continue;
      }
      sy_ct_entry merged = e;
      merged.last_seen_ns = std::max(e.last_seen_ns, pe.last_seen_ns);
      merged.flags |= pe.flags & SY_CT_F_CLOSING;
      if (ctFresh(merged.last_seen_ns, nowNs, ctLifetimeNs(merged, k.proto, o_.lifetimes))) {
        ++pass_.kept;
        continue;
      }
      deletes_.push_back(k);
      deletes_.push_back(pk);
      queued.insert(k);
      queued.insert(pk);
      bool closed = k.proto == IPPROTO_TCP && (merged.flags & SY_CT_F_CLOSING);
      (closed ? pass_.removed.closed : pass_.removed.expired) += 2;
    }
    flushDeletes();
    if (end) {
      started_ = false;
      return true;
    }
  }
  return false;
}

CtGcPass CtGc::runPass(uint64_t nowNs) {
  // A pass that a concurrent writer keeps from ending is cut off: a table can't need more
  // slices than it has entries per slice, twice over.
  auto shape = shapeOf(fd_);
  uint64_t bound = 2 * (shape ? shape->maxEntries : 1u << 20) / o_.sliceEntries + 4;
  for (uint64_t i = 0; i < bound && !slice(nowNs); ++i) {
  }
  started_ = false;
  return pass_;
}

std::chrono::milliseconds nextCtGcInterval(std::chrono::milliseconds prev, const CtGcPass& p,
                                           uint32_t maxEntries, const CtGcIntervals& b) {
  using std::chrono::milliseconds;
  double removedShare = p.scanned ? static_cast<double>(p.removed.total()) / static_cast<double>(p.scanned) : 0;
  double pressure = maxEntries ? static_cast<double>(p.kept) / maxEntries : 0;
  milliseconds next = prev;
  if (removedShare > 0.25 || pressure > 0.75) {
    next = prev / 2;  // much garbage, or little room: look again sooner
  } else if (removedShare < 0.05) {
    next = prev + prev / 2;
  }
  return std::clamp(next, b.min, b.max);
}

uint64_t countMapEntries(int fd) {
  auto shape = shapeOf(fd);
  if (!shape) {
    return 0;
  }
  std::vector<uint8_t> keys(static_cast<size_t>(shape->keySize) * 1024);
  std::vector<uint8_t> values(static_cast<size_t>(shape->valueSize) * 1024);
  uint64_t n = 0;
  uint32_t in = 0, out = 0;
  bool first = true;
  for (uint64_t steps = 0; steps < shape->maxEntries / 16 + 64; ++steps) {
    uint32_t count = 1024;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, keys.data(), values.data(), &count, &opts);
    if (rc != 0 && errno != ENOENT) {
      if (first && (errno == EINVAL || errno == EOPNOTSUPP || errno == 524 /* ENOTSUPP */)) {
        break;  // no batch for this type: walk key by key below
      }
      return n;
    }
    n += count;
    if (rc != 0) {
      return n;  // ENOENT: the end
    }
    first = false;
    in = out;
  }
  if (!first) {
    return n;
  }
  std::vector<uint8_t> key(shape->keySize), next(shape->keySize);
  void* prev = nullptr;
  n = 0;
  while (n <= shape->maxEntries && bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    ++n;
    key.swap(next);
    prev = key.data();
  }
  return n;
}

CtGcRunner::CtGcRunner(int ctFd, Options o) : fd_(ctFd), o_(o) {
  auto shape = shapeOf(fd_);
  stats_.maxEntries = shape ? shape->maxEntries : 0;
  for (const SampledMap& m : o_.sampled) {
    auto sh = shapeOf(m.fd);
    stats_.maps.push_back({m.name, 0, sh ? sh->maxEntries : 0});
  }
  thread_ = std::jthread([this](std::stop_token st) { loop(st); });
}

CtGcRunner::~CtGcRunner() {
  thread_.request_stop();
  cv_.notify_all();
}

CtGcRunner::Stats CtGcRunner::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void CtGcRunner::kick() {
  {
    std::lock_guard<std::mutex> l(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void CtGcRunner::loop(std::stop_token st) {
  std::chrono::milliseconds interval = o_.intervals.initial;
  auto lastErrorLog = std::chrono::steady_clock::time_point{};
  CtGc gc(fd_, o_.gc);
  while (!st.stop_requested()) {
    auto t0 = std::chrono::steady_clock::now();
    bool failed = false;
    while (!st.stop_requested()) {
      bool done = gc.slice(monotonicNowNs());
      if (!gc.error().empty()) {
        failed = true;
        if (t0 - lastErrorLog > std::chrono::minutes(1)) {  // rate-limited
          SY_LOG(Warning) << gc.error();
          lastErrorLog = t0;
        }
        break;
      }
      if (done) {
        break;
      }
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, st, o_.slicePause, [] { return false; });
    }
    if (st.stop_requested()) {
      return;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The other maps' fill, counted off the lock (a walk of each).
    std::vector<uint64_t> fills;
    for (const SampledMap& m : o_.sampled) {
      fills.push_back(countMapEntries(m.fd));
    }
    std::unique_lock<std::mutex> l(mu_);
    for (size_t i = 0; i < fills.size(); ++i) {
      stats_.maps[i].entries = fills[i];
    }
    if (failed) {
      ++stats_.errors;
    } else {
      const CtGcPass& p = gc.pass();
      ++stats_.passes;
      stats_.removed += p.removed;
      stats_.entries = p.kept;
      stats_.lastPassSeconds = seconds;
      interval = nextCtGcInterval(interval, p, stats_.maxEntries, o_.intervals);
      SY_LOG(Debug) << "conntrack GC: " << p.scanned << " entries read in " << p.slices << " slices, "
                    << p.removed.total() << " removed, " << p.kept << " kept; next pass in "
                    << interval.count() << " ms";
    }
    stats_.lastIntervalSeconds = std::chrono::duration<double>(interval).count();
    cv_.wait_for(l, st, interval, [this] { return kicked_; });
    kicked_ = false;
  }
}

}  // namespace switchyard::bpf
