#include "bpf/map_writer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "bpf/unique_fd.h"
#include "lb/maglev.h"
#include "logging/log.h"

namespace switchyard::bpf {
namespace {

// Logged failures per apply(); the rest are counted and summed up in one line, so a full
// map costs a few log lines rather than one per entry.
constexpr size_t kFailuresLogged = 20;

bool batchRefused(int err) { return err == EINVAL || err == EOPNOTSUPP || err == ENOTSUP || err == 524 /* ENOTSUPP */; }

std::string describe(const lb::MapOp& op) {
  using K = lb::MapOp::Kind;
  switch (op.kind) {
    case K::PutBackend: return "backend " + std::to_string(op.id) + " " + op.backend.key.str();
    case K::DeleteBackend: return "backend " + std::to_string(op.id);
    case K::PutRevNat: return "rev NAT " + std::to_string(op.id) + " " + op.frontend.str();
    case K::DeleteRevNat: return "rev NAT " + std::to_string(op.id);
    case K::PutSlot:
    case K::DeleteSlot: return op.frontend.str() + " slot " + std::to_string(op.slot);
    case K::PutSourceRange:
    case K::DeleteSourceRange: return "rev NAT " + std::to_string(op.id) + " source range " + op.range.str();
    case K::MoveAffinity:
      return "rev NAT " + std::to_string(op.id) + " affinity slot " + std::to_string(op.slot) + " -> " +
             std::to_string(op.value.count);
    case K::PutMaglev:
      return "rev NAT " + std::to_string(op.id) + " Maglev table (M=" + std::to_string(op.table.size()) + ")";
    case K::DeleteMaglev: return "rev NAT " + std::to_string(op.id) + " Maglev table";
  }
  return "?";
}

}  // namespace

union sy_addr toSyAddr(const lb::IpAddr& a) {
  union sy_addr out;
  std::memcpy(out.b, a.bytes.data(), 16);
  return out;
}

lb::IpAddr fromSyAddr(const union sy_addr& a) {
  lb::IpAddr out;
  std::memcpy(out.bytes.data(), a.b, 16);
  return out;
}

struct sy_svc_key toSvcKey(const lb::FrontendKey& fe, uint16_t slot) {
  struct sy_svc_key k;
  std::memset(&k, 0, sizeof(k));
  k.addr = toSyAddr(fe.addr);
  k.port = htons(fe.port);
  k.proto = fe.proto;
  k.scope = static_cast<__u8>(fe.scope);
  k.slot = slot;
  return k;
}

struct sy_src_range_key toSrcRangeKey(uint32_t revNatId, const lb::Cidr& c) {
  struct sy_src_range_key k;
  std::memset(&k, 0, sizeof(k));
  k.prefixlen = 32 + c.prefixLen;
  k.rev_nat_id = htonl(revNatId);
  k.addr = toSyAddr(c.addr);
  return k;
}

struct MapWriter::Target {
  int fd;
  const char* map;
  const char* op;  // "update" | "delete"
};

int MapWriter::fail(const Target& t, const lb::MapOp& op, int err) {
  if (failuresLogged_ < kFailuresLogged) {
    ++failuresLogged_;
    SY_LOG(Error) << "map " << t.map << ": " << t.op << " " << describe(op) << ": " << std::strerror(err)
                  << (err == E2BIG || err == ENOMEM ? " (the map is full: raise bpf.mapSizes)" : "");
  } else {
    ++failuresUnlogged_;
  }
  if (onError_) {
    onError_(t.map, t.op);
  }
  return -err;
}

template <typename K, typename V>
void MapWriter::update(const Target& t, std::span<lb::MapOp> run, const K* keys, const V* values) {
  size_t done = 0;
  while (done < run.size()) {
    if (!batching_ || noBatch_.count(t.fd) || run.size() - done == 1) {
      ++syscalls_;
      run[done].result = bpf_map_update_elem(t.fd, &keys[done], &values[done], BPF_ANY) < 0
                             ? fail(t, run[done], errno) : 0;
      ++done;
      continue;
    }
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
    __u32 count = static_cast<__u32>(run.size() - done);
    ++syscalls_;
    int rc = bpf_map_update_batch(t.fd, &keys[done], &values[done], &count, &opts);
    int err = errno;
    if (rc == 0) {
      done = run.size();
      break;
    }
    if (count == 0 && batchRefused(err)) {
      // Possibly a kernel without batch support for this map: try the element alone; if
      // that works, stop batching.
      ++syscalls_;
      if (bpf_map_update_elem(t.fd, &keys[done], &values[done], BPF_ANY) == 0) {
        noBatch_.insert(t.fd);
        SY_LOG(Warning) << "map " << t.map << ": the kernel refused a batch update ("
                        << std::strerror(err) << "); writing one entry per call";
        run[done++].result = 0;
        continue;
      }
      err = errno;
    }
    // The first `count` went in; the next one failed with err.
    done += count;
    run[done].result = fail(t, run[done], err);
    ++done;
  }
}

template <typename K>
void MapWriter::remove(const Target& t, std::span<lb::MapOp> run, const K* keys) {
  size_t done = 0;
  while (done < run.size()) {
    if (!batching_ || noBatch_.count(t.fd) || run.size() - done == 1) {
      ++syscalls_;
      bool ok = bpf_map_delete_elem(t.fd, &keys[done]) == 0 || errno == ENOENT;
      run[done].result = ok ? 0 : fail(t, run[done], errno);
      ++done;
      continue;
    }
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    __u32 count = static_cast<__u32>(run.size() - done);
    ++syscalls_;
    int rc = bpf_map_delete_batch(t.fd, &keys[done], &count, &opts);
    int err = errno;
    if (rc == 0) {
      break;
    }
    if (count == 0 && batchRefused(err)) {
      ++syscalls_;
      if (bpf_map_delete_elem(t.fd, &keys[done]) == 0 || errno == ENOENT) {
        noBatch_.insert(t.fd);
        SY_LOG(Warning) << "map " << t.map << ": the kernel refused a batch delete ("
                        << std::strerror(err) << "); deleting one entry per call";
        run[done++].result = 0;
        continue;
      }
      err = errno;
    }
    done += count;
    // Deleting what is already gone is success: the batch stopped there, go on after it.
    run[done].result = err == ENOENT ? 0 : fail(t, run[done], err);
    ++done;
  }
}

void MapWriter::applyRun(std::span<lb::MapOp> run) {
  using K = lb::MapOp::Kind;
  const size_t n = run.size();
  switch (run[0].kind) {
    case K::PutBackend: {
      std::vector<__u32> keys(n);
      std::vector<struct sy_backend> vals(n);
      for (size_t i = 0; i < n; ++i) {
        const lb::Backend& b = run[i].backend;
        keys[i] = run[i].id;
        std::memset(&vals[i], 0, sizeof(vals[i]));
        vals[i].addr = toSyAddr(b.key.addr);
        vals[i].port = htons(b.key.port);
        vals[i].proto = b.key.proto;
        vals[i].state = b.terminating ? SY_BACKEND_TERMINATING : SY_BACKEND_ACTIVE;
        vals[i].flags = b.local ? SY_BACKEND_F_LOCAL : 0;
      }
      update(Target{fds_.backends, kPinBackends, "update"}, run, keys.data(), vals.data());
      break;
    }
    case K::DeleteBackend:
    case K::DeleteRevNat: {
      std::vector<__u32> keys(n);
      for (size_t i = 0; i < n; ++i) {
        keys[i] = run[i].id;
      }
      bool backend = run[0].kind == K::DeleteBackend;
      remove(Target{backend ? fds_.backends : fds_.revNat, backend ? kPinBackends : kPinRevNat, "delete"},
             run, keys.data());
      break;
    }
    case K::PutRevNat: {
      std::vector<__u32> keys(n);
      std::vector<struct sy_revnat> vals(n);
      for (size_t i = 0; i < n; ++i) {
        keys[i] = run[i].id;
        std::memset(&vals[i], 0, sizeof(vals[i]));
        vals[i].addr = toSyAddr(run[i].frontend.addr);
        vals[i].port = htons(run[i].frontend.port);
      }
      update(Target{fds_.revNat, kPinRevNat, "update"}, run, keys.data(), vals.data());
      break;
    }
    case K::PutSlot: {
      std::vector<struct sy_svc_key> keys(n);
      std::vector<struct sy_svc_value> vals(n);
      for (size_t i = 0; i < n; ++i) {
        const lb::SlotValue& v = run[i].value;
        keys[i] = toSvcKey(run[i].frontend, run[i].slot);
        std::memset(&vals[i], 0, sizeof(vals[i]));
        vals[i].backend_id = v.backendId;
        vals[i].rev_nat_id = v.revNatId;
        vals[i].count = v.count;
        if (run[i].slot == 0) {
          vals[i].flags = v.head.flags;
          vals[i].kind = static_cast<__u8>(v.head.kind);
          vals[i].affinity_timeout = v.head.affinityTimeout;
        }
      }
      update(Target{fds_.services, kPinServices, "update"}, run, keys.data(), vals.data());
      break;
    }
    case K::DeleteSlot: {
      std::vector<struct sy_svc_key> keys(n);
      for (size_t i = 0; i < n; ++i) {
        keys[i] = toSvcKey(run[i].frontend, run[i].slot);
      }
      remove(Target{fds_.services, kPinServices, "delete"}, run, keys.data());
      break;
    }
    case K::PutSourceRange: {
      std::vector<struct sy_src_range_key> keys(n);
      std::vector<__u8> vals(n, 1);
      for (size_t i = 0; i < n; ++i) {
        keys[i] = toSrcRangeKey(run[i].id, run[i].range);
      }
      update(Target{fds_.srcRanges, kPinSrcRanges, "update"}, run, keys.data(), vals.data());
      break;
    }
    case K::DeleteSourceRange: {
      std::vector<struct sy_src_range_key> keys(n);
      for (size_t i = 0; i < n; ++i) {
        keys[i] = toSrcRangeKey(run[i].id, run[i].range);
      }
      remove(Target{fds_.srcRanges, kPinSrcRanges, "delete"}, run, keys.data());
      break;
    }
    case K::MoveAffinity:
      moveAffinity(run);
      break;
    // -- Maglev (issue 11 item 3): one table per operation (each is a map of its own) --
    case K::PutMaglev:
      for (lb::MapOp& op : run) {
        op.result = putMaglev(op);
      }
      break;
    case K::DeleteMaglev: {
      std::vector<__u32> keys(n);
      for (size_t i = 0; i < n; ++i) {
        keys[i] = run[i].id;
      }
      remove(Target{fds_.maglev, kPinMaglev, "delete"}, run, keys.data());
      break;
    }
  }
}

void MapWriter::apply(std::span<lb::MapOp> ops) {
  failuresLogged_ = 0;
  failuresUnlogged_ = 0;
  size_t i = 0;
  while (i < ops.size()) {
    size_t j = i + 1;
    while (j < ops.size() && ops[j].kind == ops[i].kind) {
      ++j;
    }
    applyRun(ops.subspan(i, j - i));
    i = j;
  }
  if (failuresUnlogged_ > 0) {
    SY_LOG(Error) << "... and " << failuresUnlogged_ << " more failed map operations in this batch";
  }
}

namespace {

// Visits every entry of a hash map with BPF_MAP_LOOKUP_BATCH (a few thousand entries per
// call); falls back to get_next_key + lookup when the kernel refuses batches. Entries
// deleted or added by others during the walk may be missed or seen twice, which is fine
// for a dump and for adoption (the first sync repairs the difference).
template <typename K, typename V, typename F>
void forEachEntry(int fd, F&& f) {
  constexpr __u32 kChunk = 4096;
  std::vector<K> keys(kChunk);
  std::vector<V> vals(kChunk);
  __u32 token = 0;
  bool first = true;
  for (;;) {
    __u32 count = kChunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(fd, first ? nullptr : &token, &token, keys.data(), vals.data(),
                                  &count, &opts);
    int err = errno;
    for (__u32 i = 0; i < count; ++i) {
      f(keys[i], vals[i]);
    }
    if (rc == 0) {
      first = false;
      continue;
    }
    if (err == ENOENT) {
      return;  // the walk is complete
    }
    if (first && count == 0) {
      break;  // no batch lookups here: walk key by key
    }
    SY_LOG(Warning) << "map walk stopped early: " << std::strerror(err);
    return;
  }
  K key, next;
  K* prev = nullptr;
  size_t guard = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0 && guard++ < (1u << 24)) {
    V v;
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) {
      f(next, v);
    }
    key = next;
    prev = &key;
  }
}

}  // namespace

// One walk of the affinity map for a run of moves: each entry of a moved backend in its old
// slot gets the new slot (BPF_EXIST: an entry that expired meanwhile stays gone).
void MapWriter::moveAffinity(std::span<lb::MapOp> run) {
  std::map<std::pair<uint32_t, uint16_t>, std::pair<uint32_t, uint16_t>> moves;  // (revnat, from) -> (backend, to)
  for (lb::MapOp& op : run) {
    moves[{op.id, op.slot}] = {op.value.backendId, op.value.count};
    op.result = 0;
  }
  if (fds_.affinity < 0) {
    return;
  }
  forEachEntry<struct sy_affinity_key, struct sy_affinity_value>(
      fds_.affinity, [&](const struct sy_affinity_key& k, const struct sy_affinity_value& v) {
        auto it = moves.find({k.rev_nat_id, v.slot});
        if (it == moves.end() || it->second.first != v.backend_id) {
          return;
        }
        struct sy_affinity_value nv = v;
        nv.slot = it->second.second;
        ++syscalls_;
        bpf_map_update_elem(fds_.affinity, &k, &nv, BPF_EXIST);
      });
}

// -- Maglev (issue 11 item 3) --

// A new table, complete before anyone can see it: an inner array of its own (bpf/abi.h: word
// 0 is M, words 1..M the backend IDs, two words a cell), filled, then swapped into the outer
// map in one update. Packets in flight keep the old table until they finish; the kernel frees
// it when the last reference goes (the outer entry and our fd here).
int MapWriter::putMaglev(const lb::MapOp& op) {
  const Target t{fds_.maglev, kPinMaglev, "update"};
  const std::vector<uint32_t>& table = op.table;
  const uint32_t m = static_cast<uint32_t>(table.size());
  if (m == 0 || m > SY_MAGLEV_TABLE_MAX) {
    return fail(t, op, EINVAL);
  }
  const uint32_t cells = SY_MAGLEV_CELLS(m);
  std::vector<__u32> keys(cells);
  std::vector<struct sy_maglev_cell> vals(cells);
  auto word = [&](uint32_t w) -> uint32_t { return w == 0 ? m : (w <= m ? table[w - 1] : 0); };
  for (uint32_t k = 0; k < cells; ++k) {
    keys[k] = k;
    vals[k].word[0] = word(2 * k);
    vals[k].word[1] = word(2 * k + 1);
  }
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
  ++syscalls_;
  UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, "sy_maglev", sizeof(__u32), sizeof(struct sy_maglev_cell),
                                cells, &opts));
  if (!inner.valid()) {
    return fail(t, op, errno);
  }
  __u32 count = cells;
  LIBBPF_OPTS(bpf_map_batch_opts, bopts, .elem_flags = BPF_ANY);
  ++syscalls_;
  if (bpf_map_update_batch(inner.get(), keys.data(), vals.data(), &count, &bopts) != 0) {
    for (uint32_t k = count; k < cells; ++k) {  // no batches here: one cell a call
      ++syscalls_;
      if (bpf_map_update_elem(inner.get(), &keys[k], &vals[k], BPF_ANY) != 0) {
        return fail(t, op, errno);
      }
    }
  }
  int fd = inner.get();
  ++syscalls_;
  if (bpf_map_update_elem(fds_.maglev, &op.id, &fd, BPF_ANY) != 0) {
    return fail(t, op, errno);
  }
  return 0;
}

bool MapWriter::readMaglevTable(uint32_t revNatId, std::vector<uint32_t>& out) const {
  out.clear();
  __u32 innerId = 0;
  if (fds_.maglev < 0 || bpf_map_lookup_elem(fds_.maglev, &revNatId, &innerId) != 0) {
    return false;
  }
  UniqueFd inner(bpf_map_get_fd_by_id(innerId));
  if (!inner.valid()) {
    return false;
  }
  std::vector<uint32_t> words;
  forEachEntry<__u32, struct sy_maglev_cell>(inner.get(), [&](const __u32& k, const struct sy_maglev_cell& c) {
    if (words.size() < 2 * (static_cast<size_t>(k) + 1)) {
      words.resize(2 * (static_cast<size_t>(k) + 1));
    }
    words[2 * k] = c.word[0];
    words[2 * k + 1] = c.word[1];
  });
  if (words.empty() || words[0] == 0 || words[0] >= words.size()) {
    return false;  // not a table this daemon wrote
  }
  out.assign(words.begin() + 1, words.begin() + 1 + words[0]);
  return true;
}

void MapWriter::readMaglevTables(lb::DataplaneState& st) {
  if (fds_.maglev < 0) {
    return;
  }
  std::vector<__u32> revNats;
  forEachEntry<__u32, __u32>(fds_.maglev, [&](const __u32& k, const __u32&) { revNats.push_back(k); });
  std::vector<uint32_t> table;
  for (__u32 id : revNats) {
    lb::ProgrammedMaglev& pm = st.maglevTables[id];
    if (!readMaglevTable(id, table)) {
      continue;  // unreadable: digest 0, so a sync replaces it (or, unclaimed, deletes it)
    }
    pm.tableSize = static_cast<uint32_t>(table.size());
    pm.digest = lb::maglevDigest(table);
    std::set<uint32_t> ids(table.begin(), table.end());
    pm.backendIds.assign(ids.begin(), ids.end());
  }
}

// -- end Maglev --

void MapWriter::readIdsInUse(lb::DataplaneState& st) {
  std::set<uint32_t> backends, revNats;
  if (fds_.ct >= 0) {
    forEachEntry<struct sy_ct_key, struct sy_ct_entry>(
        fds_.ct, [&](const struct sy_ct_key&, const struct sy_ct_entry& e) {
          backends.insert(e.backend_id);
          revNats.insert(e.rev_nat_id);
        });
  }
  if (fds_.affinity >= 0) {
    forEachEntry<struct sy_affinity_key, struct sy_affinity_value>(
        fds_.affinity, [&](const struct sy_affinity_key& k, const struct sy_affinity_value& v) {
          backends.insert(v.backend_id);
          revNats.insert(k.rev_nat_id);
        });
  }
  backends.erase(0);
  revNats.erase(0);
  st.backendIdsInUse.assign(backends.begin(), backends.end());
  st.revNatIdsInUse.assign(revNats.begin(), revNats.end());
}

lb::DataplaneState MapWriter::read() {
  lb::DataplaneState st;
  forEachEntry<__u32, struct sy_backend>(fds_.backends, [&](const __u32& id, const struct sy_backend& v) {
    st.backends[id] = lb::Backend{{fromSyAddr(v.addr), ntohs(v.port), v.proto},
                                  v.state == SY_BACKEND_TERMINATING, (v.flags & SY_BACKEND_F_LOCAL) != 0};
  });
  forEachEntry<__u32, struct sy_revnat>(fds_.revNat, [&](const __u32& id, const struct sy_revnat& v) {
    st.revNats[id] = lb::FrontendKey{fromSyAddr(v.addr), ntohs(v.port), 0, lb::Scope::External};
  });
  if (fds_.srcRanges >= 0) {
    // An LPM trie has no batch lookup: key by key.
    struct sy_src_range_key key {}, next {};
    struct sy_src_range_key* prev = nullptr;
    for (size_t guard = 0; guard < (1u << 22) && bpf_map_get_next_key(fds_.srcRanges, prev, &next) == 0;
         ++guard) {
      lb::Cidr c;
      c.addr = fromSyAddr(next.addr);
      c.prefixLen = static_cast<uint8_t>(next.prefixlen - 32);
      st.sourceRanges[ntohl(next.rev_nat_id)].push_back(c);
      key = next;
      prev = &key;
    }
    for (auto& [id, ranges] : st.sourceRanges) {
      std::sort(ranges.begin(), ranges.end());
    }
  }
  readIdsInUse(st);
  readMaglevTables(st);
  // Slot 0 entries make frontends; other slots fill them in.
  std::map<lb::FrontendKey, lb::ProgrammedFrontend> frontends;
  std::map<lb::FrontendKey, std::map<uint16_t, uint32_t>> slots;
  forEachEntry<struct sy_svc_key, struct sy_svc_value>(
      fds_.services, [&](const struct sy_svc_key& k, const struct sy_svc_value& v) {
        lb::FrontendKey fe{fromSyAddr(k.addr), ntohs(k.port), k.proto, static_cast<lb::Scope>(k.scope)};
        if (k.slot == 0) {
          lb::ProgrammedFrontend& pf = frontends[fe];
          pf.key = fe;
          pf.revNatId = v.rev_nat_id;
          pf.head.flags = v.flags;
          pf.head.kind = static_cast<lb::FrontendKind>(v.kind);
          pf.head.affinityTimeout = v.affinity_timeout;
          pf.backendIds.assign(v.count, 0);
        } else {
          slots[fe][k.slot] = v.backend_id;
        }
      });
  for (auto& [key, pf] : frontends) {
    auto s = slots.find(key);
    if (s != slots.end()) {
      for (auto [slot, id] : s->second) {
        if (slot >= 1 && slot <= pf.backendIds.size()) {
          pf.backendIds[slot - 1] = id;
        } else {
          pf.straySlots.push_back(slot);
        }
      }
      slots.erase(s);
    }
    st.frontends.push_back(std::move(pf));
  }
  // Slots with no slot 0 (a crash between writes) become frontends with count 0, so the
  // syncer's ownership pass removes or rewrites them.
  for (auto& [key, s] : slots) {
    lb::ProgrammedFrontend pf;
    pf.key = key;
    uint16_t maxSlot = s.rbegin()->first;
    pf.backendIds.assign(maxSlot, 0);
    for (auto [slot, id] : s) {
      pf.backendIds[slot - 1] = id;
    }
    st.frontends.push_back(std::move(pf));
  }
  return st;
}

}  // namespace switchyard::bpf
