#include "bpf/policy_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "bpf/policy_abi.h"

#define SY_CHECK_SIZE(T, n) static_assert(sizeof(T) == (n), #T " size changed: bump the _vN of its map")
#define SY_CHECK_OFF(T, f, n) static_assert(offsetof(T, f) == (n), #T "." #f " moved")
SY_CHECK_SIZE(struct sy_pol_ipcache_key, 20);
SY_CHECK_SIZE(struct sy_pol_peer, 8);
SY_CHECK_SIZE(struct sy_pol_endpoint, 16);
SY_CHECK_SIZE(struct sy_pol_rule_key, 16);
SY_CHECK_OFF(struct sy_pol_rule_key, endpoint, 4);
SY_CHECK_OFF(struct sy_pol_rule_key, identity, 8);
SY_CHECK_OFF(struct sy_pol_rule_key, dir, 12);
SY_CHECK_OFF(struct sy_pol_rule_key, proto, 13);
SY_CHECK_OFF(struct sy_pol_rule_key, port, 14);
SY_CHECK_SIZE(struct sy_pol_rule_value, 4);
static_assert(SY_POL_IDENTITY_ANY == switchyard::policy::kIdentityAny);
static_assert(SY_POL_IDENTITY_WORLD == switchyard::policy::kIdentityWorld);
static_assert(SY_POL_INGRESS == static_cast<int>(switchyard::policy::Direction::Ingress));
static_assert(SY_POL_EGRESS == static_cast<int>(switchyard::policy::Direction::Egress));

namespace switchyard::bpf {
namespace {

sy_pol_ipcache_key ipcacheKey(const lb::Cidr& c) {
  sy_pol_ipcache_key k{};
  k.prefixlen = c.prefixLen;
  std::memcpy(k.addr, c.addr.bytes.data(), 16);
  return k;
}

sy_pol_rule_key ruleKey(const policy::RuleKey& r) {
  sy_pol_rule_key k{};
  k.endpoint = htonl(r.endpoint);
  k.identity = htonl(r.identity);
  k.dir = static_cast<uint8_t>(r.dir);
  if (r.proto == 0) {
    k.prefixlen = SY_POL_RULE_BITS_PEER;
    return k;
  }
  k.proto = r.proto;
  k.port = htons(r.port);
  k.prefixlen = SY_POL_RULE_BITS_PROTO + r.portPrefixLen;
  return k;
}

policy::RuleKey ruleOf(const sy_pol_rule_key& k) {
  policy::RuleKey r;
  r.endpoint = ntohl(k.endpoint);
  r.identity = ntohl(k.identity);
  r.dir = k.dir == SY_POL_EGRESS ? policy::Direction::Egress : policy::Direction::Ingress;
  if (k.prefixlen <= SY_POL_RULE_BITS_PEER) {
    return r;  // every protocol and port
  }
  r.proto = k.proto;
  r.port = ntohs(k.port);
  r.portPrefixLen = static_cast<uint8_t>(k.prefixlen - SY_POL_RULE_BITS_PROTO);
  return r;
}

// Calls f(key, value) for every entry of `fd`; false with errno set when a step fails. An
// LPM trie and a hash both walk with get_next_key; entries removed meanwhile are skipped.
template <typename K, typename V, typename F>
bool walk(int fd, F&& f) {
  K key{}, next{};
  K* prev = nullptr;
  for (;;) {
    if (bpf_map_get_next_key(fd, prev, &next) != 0) {
      return errno == ENOENT;
    }
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) {
      f(next, v);
    } else if (errno != ENOENT) {
      return false;
    }
    key = next;
    prev = &key;
  }
}

sy_pol_endpoint endpointValue(const policy::Endpoint& e) {
  sy_pol_endpoint v{};
  v.endpoint = e.id;
  v.identity = e.identity;
  v.flags = (e.ingressIsolated ? SY_POL_EP_INGRESS_ISOLATED : 0) |
            (e.egressIsolated ? SY_POL_EP_EGRESS_ISOLATED : 0) |
            (e.ingressRules ? SY_POL_EP_INGRESS_RULES : 0) | (e.egressRules ? SY_POL_EP_EGRESS_RULES : 0);
  return v;
}

class Writer {
 public:
  explicit Writer(PolicyWriteResult& r) : r_(r) {}
  void update(int fd, const void* k, const void* v, const char* map, const std::string& what) {
    if (bpf_map_update_elem(fd, k, v, BPF_ANY) == 0) {
      ++r_.written;
      return;
    }
    fail(map, what);
  }
  void remove(int fd, const void* k, const char* map, const std::string& what) {
    if (bpf_map_delete_elem(fd, k) == 0 || errno == ENOENT) {
      ++r_.written;
      return;
    }
    fail(map, what);
  }

 private:
  void fail(const char* map, const std::string& what) {
    ++r_.failedByMap[map];
    if (r_.failed++ == 0) {
      r_.firstError = std::string(map) + ": " + what + ": " + std::strerror(errno);
    }
  }
  PolicyWriteResult& r_;
};

}  // namespace

PolicyWriteResult writePolicyDiff(const PolicyMapFds& fds, const policy::Diff& d) {
  PolicyWriteResult r;
  Writer w(r);
  const sy_pol_rule_value allow{};
  for (const auto& [c, peer] : d.ipcacheUpsert) {
    auto k = ipcacheKey(c);
    sy_pol_peer v{peer.podIdentity, peer.cidrIdentity};
    w.update(fds.ipcache, &k, &v, "pol_ipcache_v1", c.str());
  }
  for (const auto& rule : d.ruleAdd) {
    auto k = ruleKey(rule);
    w.update(fds.rules, &k, &allow, "pol_rules_v1", rule.str());
  }
  if (!r.ok()) {
    return r;  // the previous rules stay in force
  }
  for (const auto& [addr, ep] : d.endpointUpsert) {
    auto v = endpointValue(ep);
    w.update(fds.endpoints, addr.bytes.data(), &v, "pol_ep_v1", ep.pod + " " + addr.str());
  }
  for (const auto& rule : d.ruleDelete) {
    auto k = ruleKey(rule);
    w.remove(fds.rules, &k, "pol_rules_v1", rule.str());
  }
  for (const auto& addr : d.endpointDelete) {
    w.remove(fds.endpoints, addr.bytes.data(), "pol_ep_v1", addr.str());
  }
  for (const auto& c : d.ipcacheDelete) {
    auto k = ipcacheKey(c);
    w.remove(fds.ipcache, &k, "pol_ipcache_v1", c.str());
  }
  return r;
}

bool sameEndpointValue(const policy::Endpoint& a, const policy::Endpoint& b) {
  sy_pol_endpoint va = endpointValue(a), vb = endpointValue(b);
  return std::memcmp(&va, &vb, sizeof(va)) == 0;
}

bool readPolicyMaps(const PolicyMapFds& fds, policy::State& out, std::string& error) {
  out = policy::State{};
  auto failed = [&](const char* map) {
    error = std::string(map) + ": cannot be read: " + std::strerror(errno);
    return false;
  };
  if (!walk<sy_pol_ipcache_key, sy_pol_peer>(fds.ipcache, [&](const sy_pol_ipcache_key& k, const sy_pol_peer& v) {
        lb::Cidr c;
        std::memcpy(c.addr.bytes.data(), k.addr, 16);
        c.prefixLen = static_cast<uint8_t>(k.prefixlen);
        out.ipcache[c] = policy::Peer{v.pod_identity, v.cidr_identity};
      })) {
    return failed("pol_ipcache_v1");
  }
  using Addr = std::array<uint8_t, 16>;
  if (!walk<Addr, sy_pol_endpoint>(fds.endpoints, [&](const Addr& k, const sy_pol_endpoint& v) {
        lb::IpAddr a;
        a.bytes = k;
        policy::Endpoint e;
        e.id = v.endpoint;
        e.identity = v.identity;
        e.ingressIsolated = v.flags & SY_POL_EP_INGRESS_ISOLATED;
        e.egressIsolated = v.flags & SY_POL_EP_EGRESS_ISOLATED;
        e.ingressRules = v.flags & SY_POL_EP_INGRESS_RULES;
        e.egressRules = v.flags & SY_POL_EP_EGRESS_RULES;
        out.endpoints[a] = e;
      })) {
    return failed("pol_ep_v1");
  }
  if (!walk<sy_pol_rule_key, sy_pol_rule_value>(fds.rules, [&](const sy_pol_rule_key& k, const sy_pol_rule_value&) {
        out.rules.insert(ruleOf(k));
      })) {
    return failed("pol_rules_v1");
  }
  return true;
}

}  // namespace switchyard::bpf
