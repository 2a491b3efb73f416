// Maglev lookup tables (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016), with weights as Katran's: a pure function of the backend set, the
// weights, the table size M and the seed. Every node builds the same table for the same
// backends, whatever order their endpoints arrived in and whatever backend IDs the node gave
// them, because the table is made from the backends' identities (address, port, protocol).
//
// Each backend has a preference list, a permutation of the M entries (offset + j * skip mod
// M, from two hashes of its identity; M prime makes every skip a full cycle). The backends
// take turns, each claiming its next preferred entry still free, until the table is full; a
// backend's turns come in proportion to its weight. Removing one of N backends frees only its
// own entries (about M/N) and moves few others; adding one takes about M/(N+1).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lb/types.h"

namespace switchyard::lb {

// The table size M and the seed of both the permutations and the datapath's flow hash
// (loadBalancer.maglev.tableSize, .hashSeed). The defaults are bpf/abi.h's.
struct MaglevConfig {
  uint32_t tableSize = 16381;
  uint32_t seed = 0x53594d47u;
  auto operator<=>(const MaglevConfig&) const = default;
};
inline constexpr uint32_t kMaglevTableSizeMin = 3;
inline constexpr uint32_t kMaglevTableSizeMax = 65521;  // the largest prime below 2^16
// Weights above this buy no precision a table of at most 65521 entries can show.
inline constexpr uint16_t kMaglevWeightMax = 1000;

// The load-balancing settings of the cluster (loadBalancer.*): the default algorithm (a
// Service may override it by annotation) and the tables' parameters.
struct LbConfig {
  Algorithm algorithm = Algorithm::Random;
  MaglevConfig maglev;
};

constexpr bool isPrime(uint32_t n) {
  if (n < 2) {
    return false;
  }
  for (uint32_t d = 2; static_cast<uint64_t>(d) * d <= n; ++d) {
    if (n % d == 0) {
      return false;
    }
  }
  return true;
}
static_assert(isPrime(16381) && isPrime(kMaglevTableSizeMax) && !isPrime(65535));

// The table: M entries, each an index into `backends` (the order given; the table depends
// only on the set). Backends with weight 0 get no entries; when every weight is 0, all count
// as 1 (there is nothing else to send to). Empty when there are no backends. Requires a
// prime tableSize in [kMaglevTableSizeMin, kMaglevTableSizeMax].
std::vector<uint32_t> buildMaglevTable(std::span<const Backend> backends, const MaglevConfig& cfg);

// A digest of a table's contents (its size and every entry), to compare what the maps hold
// with what a sync would write without keeping tables in memory.
uint64_t maglevDigest(std::span<const uint32_t> table);

}  // namespace switchyard::lb
