#include "lb/maglev.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <numeric>

#include "bpf/jhash.h"

namespace switchyard::lb {
namespace {

constexpr uint32_t kEmpty = UINT32_MAX;

// A backend's identity as five words: its address and (port, protocol). The same bytes on
// every node, unlike its backend ID.
std::array<uint32_t, 5> identityWords(const BackendKey& k) {
  std::array<uint32_t, 5> w{};
  for (size_t i = 0; i < 4; ++i) {
    w[i] = static_cast<uint32_t>(k.addr.bytes[4 * i]) << 24 | static_cast<uint32_t>(k.addr.bytes[4 * i + 1]) << 16 |
           static_cast<uint32_t>(k.addr.bytes[4 * i + 2]) << 8 | k.addr.bytes[4 * i + 3];
  }
  w[4] = static_cast<uint32_t>(k.port) << 16 | k.proto;
  return w;
}

}  // namespace

std::vector<uint32_t> buildMaglevTable(std::span<const Backend> backends, const MaglevConfig& cfg) {
  const uint32_t m = cfg.tableSize;
  assert(isPrime(m) && m >= kMaglevTableSizeMin && m <= kMaglevTableSizeMax);
  if (backends.empty()) {
    return {};
  }
  // Turns go in identity order, so the table does not depend on the order given.
  std::vector<uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return backends[a].key < backends[b].key; });
  bool anyWeight = std::any_of(backends.begin(), backends.end(), [](const Backend& b) { return b.weight > 0; });
  struct Turn {
    uint32_t index;   // into backends
    uint32_t weight;
    uint32_t offset;  // the first preference
    uint32_t skip;    // the step between preferences: 1..M-1, coprime with the prime M
    uint32_t next = 0;    // preferences used so far
    uint32_t credit = 0;  // weight accumulated towards the next turn
  };
  std::vector<Turn> turns;
  uint32_t maxWeight = 0;
  for (uint32_t i : order) {
    uint32_t w = anyWeight ? backends[i].weight : 1;
    if (w == 0) {
      continue;
    }
    std::array<uint32_t, 5> id = identityWords(backends[i].key);
    uint32_t h1 = sy_jhash_words(id.data(), id.size(), cfg.seed);
    uint32_t h2 = sy_jhash_words(id.data(), id.size(), h1);
    turns.push_back({i, w, h1 % m, h2 % (m - 1) + 1});
    maxWeight = std::max(maxWeight, w);
  }
  std::vector<uint32_t> table(m, kEmpty);
  uint32_t filled = 0;
  // Each round, every backend gains its weight in credit; a backend with a full turn's worth
  // (the largest weight) spends it on its next free preference. So the heaviest claims an
  // entry every round and the others in proportion.
  while (filled < m) {
    for (Turn& t : turns) {
      t.credit += t.weight;
      if (t.credit < maxWeight) {
        continue;
      }
      t.credit -= maxWeight;
      uint32_t entry;
      do {
        entry = static_cast<uint32_t>((t.offset + static_cast<uint64_t>(t.next) * t.skip) % m);
        ++t.next;
      } while (table[entry] != kEmpty);  // ends: the preferences cover all M, one is free
      table[entry] = t.index;
      if (++filled == m) {
        break;
      }
    }
  }
  return table;
}

uint64_t maglevDigest(std::span<const uint32_t> table) {
  uint32_t m = static_cast<uint32_t>(table.size());
  size_t h = hashBytes(reinterpret_cast<const uint8_t*>(&m), sizeof(m));
  return hashBytes(reinterpret_cast<const uint8_t*>(table.data()), table.size() * sizeof(uint32_t), h);
}

}  // namespace switchyard::lb
