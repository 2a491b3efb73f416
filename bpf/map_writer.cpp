#include "bpf/map_writer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "logging/log.h"

namespace switchyard::bpf {

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
  k.scope = SY_SCOPE_EXTERNAL;
  k.slot = slot;
  return k;
}

int MapWriter::fail(const char* map, const char* op, const std::string& key, int err) {
  SY_LOG(Error) << "map " << map << ": " << op << " " << key << ": " << std::strerror(err)
                << (err == E2BIG || err == ENOMEM ? " (the map is full: raise bpf.mapSizes)" : "");
  if (onError_) {
    onError_(map, op);
  }
  return -err;
}

int MapWriter::putBackend(uint32_t id, const lb::Backend& b) {
  struct sy_backend v;
  std::memset(&v, 0, sizeof(v));
  v.addr = toSyAddr(b.key.addr);
  v.port = htons(b.key.port);
  v.proto = b.key.proto;
  v.state = b.terminating ? SY_BACKEND_TERMINATING : SY_BACKEND_ACTIVE;
  if (bpf_map_update_elem(fds_.backends, &id, &v, BPF_ANY) < 0) {
    return fail(kPinBackends, "update", "backend " + std::to_string(id) + " " + b.key.str(), errno);
  }
  return 0;
}

int MapWriter::deleteBackend(uint32_t id) {
  if (bpf_map_delete_elem(fds_.backends, &id) < 0 && errno != ENOENT) {
    return fail(kPinBackends, "delete", "backend " + std::to_string(id), errno);
  }
  return 0;
}

int MapWriter::putRevNat(uint32_t id, const lb::FrontendKey& fe) {
  struct sy_revnat v;
  std::memset(&v, 0, sizeof(v));
  v.addr = toSyAddr(fe.addr);
  v.port = htons(fe.port);
  if (bpf_map_update_elem(fds_.revNat, &id, &v, BPF_ANY) < 0) {
    return fail(kPinRevNat, "update", "rev NAT " + std::to_string(id) + " " + fe.str(), errno);
  }
  return 0;
}

int MapWriter::deleteRevNat(uint32_t id) {
  if (bpf_map_delete_elem(fds_.revNat, &id) < 0 && errno != ENOENT) {
    return fail(kPinRevNat, "delete", "rev NAT " + std::to_string(id), errno);
  }
  return 0;
}

int MapWriter::putSlot(const lb::FrontendKey& fe, uint16_t slot, const lb::SlotValue& value) {
  struct sy_svc_key k = toSvcKey(fe, slot);
  struct sy_svc_value v;
  std::memset(&v, 0, sizeof(v));
  v.backend_id = value.backendId;
  v.rev_nat_id = value.revNatId;
  v.count = value.count;
  v.flags = value.flags;
  if (bpf_map_update_elem(fds_.services, &k, &v, BPF_ANY) < 0) {
    return fail(kPinServices, "update", fe.str() + " slot " + std::to_string(slot), errno);
  }
  return 0;
}

int MapWriter::deleteSlot(const lb::FrontendKey& fe, uint16_t slot) {
  struct sy_svc_key k = toSvcKey(fe, slot);
  if (bpf_map_delete_elem(fds_.services, &k) < 0 && errno != ENOENT) {
    return fail(kPinServices, "delete", fe.str() + " slot " + std::to_string(slot), errno);
  }
  return 0;
}

namespace {
// Visits every key of a hash map. Deletions by others while we walk may restart the walk
// from the beginning (the kernel's get_next_key semantics); the visitor sees each key at
// most a bounded number of times, which is fine for a read-only dump.
template <typename K, typename F>
void forEachKey(int fd, F&& f) {
  K key, next;
  K* prev = nullptr;
  size_t guard = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0 && guard++ < (1u << 24)) {
    f(next);
    key = next;
    prev = &key;
  }
}
}  // namespace

lb::DataplaneState MapWriter::read() {
  lb::DataplaneState st;
  forEachKey<uint32_t>(fds_.backends, [&](const uint32_t& id) {
    struct sy_backend v;
    if (bpf_map_lookup_elem(fds_.backends, &id, &v) == 0) {
      st.backends[id] = lb::Backend{{fromSyAddr(v.addr), ntohs(v.port), v.proto},
                                    v.state == SY_BACKEND_TERMINATING};
    }
  });
  forEachKey<uint32_t>(fds_.revNat, [&](const uint32_t& id) {
    struct sy_revnat v;
    if (bpf_map_lookup_elem(fds_.revNat, &id, &v) == 0) {
      st.revNats[id] = lb::FrontendKey{fromSyAddr(v.addr), ntohs(v.port), 0};
    }
  });
  // Slot 0 entries make frontends; other slots fill them in.
  std::map<lb::FrontendKey, lb::ProgrammedFrontend> frontends;
  std::map<lb::FrontendKey, std::map<uint16_t, uint32_t>> slots;
  forEachKey<struct sy_svc_key>(fds_.services, [&](const struct sy_svc_key& k) {
    struct sy_svc_value v;
    if (bpf_map_lookup_elem(fds_.services, &k, &v) != 0) {
      return;
    }
    lb::FrontendKey fe{fromSyAddr(k.addr), ntohs(k.port), k.proto};
    if (k.slot == 0) {
      lb::ProgrammedFrontend& pf = frontends[fe];
      pf.key = fe;
      pf.revNatId = v.rev_nat_id;
      pf.flags = v.flags;
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
        }
      }
    }
    st.frontends.push_back(std::move(pf));
  }
  // Slots with no slot 0 (a crash between writes) become frontends with count 0, so the
  // syncer's ownership pass removes or rewrites them.
  for (auto& [key, s] : slots) {
    if (!frontends.count(key)) {
      lb::ProgrammedFrontend pf;
      pf.key = key;
      uint16_t maxSlot = s.rbegin()->first;
      pf.backendIds.assign(maxSlot, 0);
      for (auto [slot, id] : s) {
        pf.backendIds[slot - 1] = id;
      }
      st.frontends.push_back(std::move(pf));
    }
  }
  return st;
}

}  // namespace switchyard::bpf
