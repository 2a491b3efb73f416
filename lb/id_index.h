// Small containers for the syncer's tables at 100,000 services x 10 endpoints (a million
// backends), where a node-based std::map or std::unordered_map costs 50-80 bytes an entry:
//  - IdAllocator hands out dense IDs (backend, rev NAT) and delays their reuse by time;
//  - IdIndex maps a key to an ID in 4 bytes an entry; the key itself lives in the caller's
//    table, indexed by ID (keyOf).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace switchyard::lb {

// IDs from 1 up (0 is "none" in the maps). A released ID waits `quarantine` before it is
// handed out again: conntrack, affinity and socket entries may still name it for that long
// (the longest conntrack lifetime, bpf/abi.h), and an early reuse would send them somewhere
// else. At most `cap` IDs wait; past that the oldest goes early (still safe: the datapath
// checks what an ID names before it follows one from conntrack or affinity). Released IDs
// never reused stay dense: new IDs extend the range only when none is free.
class IdAllocator {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  IdAllocator(std::chrono::seconds quarantine, size_t cap, Now now = nullptr)
      : quarantine_(quarantine), cap_(cap), now_(now ? std::move(now) : Now(&Clock::now)) {}

  uint32_t allocate() {
    uint32_t id = 0;
    if (!ready_.empty()) {
      id = ready_.front();
      ready_.pop_front();
    } else if (!waiting_.empty() &&
               (now_() - waiting_.front().since >= quarantine_ || waiting_.size() > cap_)) {
      id = waiting_.front().id;
      waiting_.pop_front();
    }
    if (id != 0) {
      used_[id] = true;
      return id;
    }
    if (used_.empty()) {
      used_.push_back(true);  // ID 0 is never handed out
    }
    used_.push_back(true);
    return static_cast<uint32_t>(used_.size() - 1);
  }

  // Marks an adopted ID as in use. IDs below it that nobody claims become free (at once:
  // a conntrack entry naming one is reported with holdReleased()).
  void claim(uint32_t id) {
    if (id == 0) {
      return;
    }
    if (used_.empty()) {
      used_.push_back(true);
    }
    while (used_.size() < id) {
      uint32_t gap = static_cast<uint32_t>(used_.size());
      used_.push_back(false);
      ready_.push_back(gap);
    }
    if (used_.size() == id) {
      used_.push_back(true);
    } else if (!used_[id]) {
      used_[id] = true;
      std::erase(ready_, id);  // adoption only: a linear pass per claimed gap is fine
      eraseWaiting(id);
    }
  }

  // An adopted ID that no entry holds any more but that conntrack still names: it waits
  // a full quarantine from now (what the daemon knows of its release after a restart).
  void holdReleased(uint32_t id) {
    if (id == 0 || inUse(id)) {
      return;
    }
    claim(id);
    release(id);
  }

  void release(uint32_t id) {
    if (id != 0 && id < used_.size() && used_[id]) {
      used_[id] = false;
      waiting_.push_back({id, now_()});
    }
  }

  bool inUse(uint32_t id) const { return id < used_.size() && used_[id]; }
  // One past the largest ID ever handed out or claimed.
  uint32_t end() const { return static_cast<uint32_t>(used_.size()); }
  size_t waiting() const { return waiting_.size(); }

 private:
  struct Waiting {
    uint32_t id;
    Clock::time_point since;
  };
  void eraseWaiting(uint32_t id) {
    std::erase_if(waiting_, [id](const Waiting& w) { return w.id == id; });
  }

  std::vector<bool> used_;
  std::deque<uint32_t> ready_;     // free now
  std::deque<Waiting> waiting_;    // released, in release order
  std::chrono::seconds quarantine_;
  size_t cap_;
  Now now_;
};

// Open addressing (linear probing, power-of-two capacity, load at most 0.7) over IDs. The
// caller owns the keys: keyOf(id) returns the key of a live ID.
template <typename Key, typename Hash, typename KeyOf>
class IdIndex {
 public:
  explicit IdIndex(KeyOf keyOf) : keyOf_(keyOf) {}

  // The ID of `k`, or 0.
  uint32_t find(const Key& k) const {
    if (slots_.empty()) {
      return 0;
    }
    size_t mask = slots_.size() - 1;
    for (size_t i = Hash{}(k) & mask;; i = (i + 1) & mask) {
      uint32_t id = slots_[i];
      if (id == kEmpty) {
        return 0;
      }
      if (id != kTomb && keyOf_(id) == k) {
        return id;
      }
    }
  }

  // `k` must be absent.
  void insert(const Key& k, uint32_t id) {
    if ((used_ + 1) * 10 > slots_.size() * 7) {
      rehash(size_ + 1);
    }
    size_t mask = slots_.size() - 1;
    size_t i = Hash{}(k) & mask;
    while (slots_[i] != kEmpty && slots_[i] != kTomb) {
      i = (i + 1) & mask;
    }
    if (slots_[i] == kEmpty) {
      ++used_;
    }
    slots_[i] = id;
    ++size_;
  }

  void erase(const Key& k) {
    if (slots_.empty()) {
      return;
    }
    size_t mask = slots_.size() - 1;
    for (size_t i = Hash{}(k) & mask;; i = (i + 1) & mask) {
      uint32_t id = slots_[i];
      if (id == kEmpty) {
        return;
      }
      if (id != kTomb && keyOf_(id) == k) {
        slots_[i] = kTomb;
        --size_;
        return;
      }
    }
  }

  size_t size() const { return size_; }

 private:
  static constexpr uint32_t kEmpty = 0;
  static constexpr uint32_t kTomb = UINT32_MAX;

  void rehash(size_t want) {
    size_t cap = 16;
    while (want * 10 > cap * 5) {  // rebuild at load 0.5, so growth is amortized
      cap *= 2;
    }
    std::vector<uint32_t> old;
    old.swap(slots_);
    slots_.assign(cap, kEmpty);
    size_ = 0;
    used_ = 0;
    for (uint32_t id : old) {
      if (id != kEmpty && id != kTomb) {
        insert(keyOf_(id), id);
      }
    }
  }

  KeyOf keyOf_;
  std::vector<uint32_t> slots_;
  size_t size_ = 0;  // live entries
  size_t used_ = 0;  // live entries and tombstones
};

}  // namespace switchyard::lb
