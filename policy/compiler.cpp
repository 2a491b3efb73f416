#include "policy/compiler.h"

#include <algorithm>
#include <optional>

namespace switchyard::policy {
namespace {

uint8_t protoNumber(k8s::Protocol p) {
  switch (p) {
    case k8s::Protocol::TCP: return lb::kProtoTCP;
    case k8s::Protocol::UDP: return lb::kProtoUDP;
    case k8s::Protocol::SCTP: return lb::kProtoSCTP;
  }
  return 0;
}

// Q is inside C: same family, at least as long, and C holds Q's first address.
bool within(const lb::Cidr& q, const lb::Cidr& c) {
  return q.addr.isV4() == c.addr.isV4() && q.prefixLen >= c.prefixLen && c.contains(q.addr);
}

struct LivePod {
  const k8s::Pod* pod;
  uint32_t identity;
  std::vector<lb::IpAddr> ips;
};

// (protocol, first port, last port); protocol 0 = any protocol and port.
struct PortRange {
  uint8_t proto;
  uint16_t lo, hi;
};

// The numbers a named port has on a pod (a name may be on several containers' ports).
void resolveNamed(const k8s::Pod& pod, const std::string& name, uint8_t proto,
                  std::vector<PortRange>& out) {
  for (const auto& cp : pod.ports) {
    if (cp.name == name && protoNumber(cp.protocol) == proto && cp.containerPort > 0) {
      auto n = static_cast<uint16_t>(cp.containerPort);
      out.push_back({proto, n, n});
    }
  }
}

}  // namespace

const char* directionName(Direction d) { return d == Direction::Ingress ? "ingress" : "egress"; }

std::string RuleKey::str() const {
  // Built by append: GCC 12 at -O3 flags `"-" + std::to_string(n)` falsely (-Wrestrict, PR 105329).
  std::string s = "endpoint ";
  s.append(std::to_string(endpoint)).append(" ").append(directionName(dir)).append(" peer ");
  s.append(identity == kIdentityAny ? std::string("any") : std::to_string(identity));
  if (proto == 0) {
    return s.append(" any");
  }
  s.append(" ").append(lb::protoName(proto));
  if (portPrefixLen == 0) {
    return s.append(" any port");
  }
  uint32_t last = port + ((1u << (16 - portPrefixLen)) - 1);
  s.append(" ").append(std::to_string(port));
  if (last != port) {
    s.append("-").append(std::to_string(last));
  }
  return s;
}

size_t Diff::size() const {
  return ipcacheUpsert.size() + ipcacheDelete.size() + endpointUpsert.size() +
         endpointDelete.size() + ruleAdd.size() + ruleDelete.size();
}

std::vector<std::pair<uint16_t, uint8_t>> portBlocks(uint16_t lo, uint16_t hi) {
  std::vector<std::pair<uint16_t, uint8_t>> out;
  uint32_t start = lo;
  while (start <= hi) {
    // The largest aligned block starting at `start` that does not pass `hi`.
    uint32_t size = start == 0 ? (1u << 16) : (start & (~start + 1));
    while (start + size - 1 > hi) {
      size >>= 1;
    }
    uint8_t bits = 0;
    while ((1u << bits) < size) {
      ++bits;
    }
    out.emplace_back(static_cast<uint16_t>(start), static_cast<uint8_t>(16 - bits));
    start += size;
  }
  return out;
}

template <typename K, typename V>
static void diffMap(const std::map<K, V>& before, const std::map<K, V>& after,
                    std::map<K, V>& upsert, std::vector<K>& del) {
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    if (it == before.end() || !(it->second == v)) {
      upsert.emplace(k, v);
    }
  }
  for (const auto& [k, v] : before) {
    if (!after.count(k)) {
      del.push_back(k);
    }
  }
}

Diff diff(const State& before, const State& after) {
  Diff d;
  diffMap(before.ipcache, after.ipcache, d.ipcacheUpsert, d.ipcacheDelete);
  diffMap(before.endpoints, after.endpoints, d.endpointUpsert, d.endpointDelete);
  std::set_difference(after.rules.begin(), after.rules.end(), before.rules.begin(),
                      before.rules.end(), std::back_inserter(d.ruleAdd));
  std::set_difference(before.rules.begin(), before.rules.end(), after.rules.begin(),
                      after.rules.end(), std::back_inserter(d.ruleDelete));
  return d;
}

uint32_t Compiler::Adopted::claim(const std::map<lb::IpAddr, uint32_t>& at,
                                  const std::vector<lb::IpAddr>& ips, std::set<uint32_t>& claimed) {
  for (const auto& a : ips) {
    auto it = at.find(a);
    if (it != at.end() && claimed.insert(it->second).second) {
      return it->second;
    }
  }
  return 0;
}

void Compiler::adoptNumbers(const State& pinned) {
  Adopted a;
  for (const auto& [c, peer] : pinned.ipcache) {
    if (peer.podIdentity >= kFirstPodIdentity && peer.podIdentity < kFirstCidrIdentity && c.prefixLen == 128) {
      a.identityAt.emplace(c.addr, peer.podIdentity);
      nextIdentity_ = std::max(nextIdentity_, peer.podIdentity + 1);
    }
    if (peer.cidrIdentity >= kFirstCidrIdentity) {
      if (peer.podIdentity == kIdentityWorld) {
        a.cidr.emplace(c, peer.cidrIdentity);  // a prefix entry names its own identity
      }
      nextCidrIdentity_ = std::max(nextCidrIdentity_, peer.cidrIdentity + 1);
    }
  }
  for (const auto& [addr, ep] : pinned.endpoints) {
    a.endpointAt.emplace(addr, ep.id);
    nextEndpoint_ = std::max(nextEndpoint_, ep.id + 1);
  }
  adopted_ = std::move(a);
}

uint32_t Compiler::identityOf(const IdentityKey& k, const std::vector<lb::IpAddr>& ips,
                              std::set<uint32_t>& used) {
  auto it = identities_.find(k);
  if (it == identities_.end()) {
    uint32_t id = adopted_ ? Adopted::claim(adopted_->identityAt, ips, adopted_->identities) : 0;
    it = identities_.emplace(k, id ? id : nextIdentity_++).first;
  }
  used.insert(it->second);
  return it->second;
}

uint32_t Compiler::cidrIdentityOf(const lb::Cidr& c, std::set<uint32_t>& used) {
  auto it = cidrIdentities_.find(c);
  if (it == cidrIdentities_.end()) {
    uint32_t id = 0;
    if (adopted_) {
      auto hint = adopted_->cidr.find(c);
      if (hint != adopted_->cidr.end() && adopted_->cidrs.insert(hint->second).second) {
        id = hint->second;
      }
    }
    it = cidrIdentities_.emplace(c, id ? id : nextCidrIdentity_++).first;
  }
  used.insert(it->second);
  return it->second;
}

uint32_t Compiler::endpointOf(const std::string& pod, const std::vector<lb::IpAddr>& ips,
                              std::set<uint32_t>& used) {
  auto it = endpointIds_.find(pod);
  if (it == endpointIds_.end()) {
    uint32_t id = adopted_ ? Adopted::claim(adopted_->endpointAt, ips, adopted_->endpoints) : 0;
    it = endpointIds_.emplace(pod, id ? id : nextEndpoint_++).first;
  }
  used.insert(it->second);
  return it->second;
}

State Compiler::compute() {
  State st;
  std::set<uint32_t> usedIdentities, usedCidrs, usedEndpoints;

  // Pods that hold an address and their identities.
  std::vector<LivePod> live;
  std::map<uint32_t, std::vector<const k8s::Pod*>> podsOf;
  for (const auto& [key, pod] : pods_) {
    if (pod.hostNetwork || pod.phase == "Succeeded" || pod.phase == "Failed") {
      continue;
    }
    LivePod lp{&pod, 0, {}};
    for (const auto& ip : pod.podIPs) {
      if (auto a = lb::IpAddr::parse(ip)) {
        lp.ips.push_back(*a);
      }
    }
    if (lp.ips.empty()) {
      continue;
    }
    const std::string& ns = pod.metadata.namespace_;
    auto nsIt = namespaces_.find(ns);
    IdentityKey k{ns, nsIt != namespaces_.end() ? nsIt->second
                                                 : Labels{{"kubernetes.io/metadata.name", ns}},
                  pod.metadata.labels};
    lp.identity = identityOf(k, lp.ips, usedIdentities);
    st.identities.emplace(lp.identity, k);
    podsOf[lp.identity].push_back(&pod);
    live.push_back(std::move(lp));
  }

  // Every prefix an ipBlock names, and the two worlds.
  std::set<lb::Cidr> prefixes{*lb::Cidr::parse("0.0.0.0/0"), *lb::Cidr::parse("::/0")};
  for (const auto& [key, pol] : policies_) {
    for (const auto* rules : {&pol.ingressRules, &pol.egressRules}) {
      for (const auto& r : *rules) {
        for (const auto& peer : r.peers) {
          if (!peer.ipBlock) continue;
          if (auto c = lb::Cidr::parse(peer.ipBlock->cidr)) prefixes.insert(*c);
          for (const auto& e : peer.ipBlock->except) {
            if (auto c = lb::Cidr::parse(e)) prefixes.insert(*c);
          }
        }
      }
    }
  }
  for (const auto& c : prefixes) {
    uint32_t id = cidrIdentityOf(c, usedCidrs);
    st.cidrIdentities.emplace(id, c);
    st.ipcache[c] = Peer{kIdentityWorld, id};
  }
  auto longestPrefix = [&](const lb::IpAddr& a) {
    const lb::Cidr* best = nullptr;
    for (const auto& c : prefixes) {
      if (c.addr.isV4() == a.isV4() && c.contains(a) && (!best || c.prefixLen > best->prefixLen)) {
        best = &c;
      }
    }
    return cidrIdentities_.at(*best);  // a world prefix always matches
  };
  for (const auto& lp : live) {
    for (const auto& a : lp.ips) {
      st.ipcache[lb::Cidr{a, 128}] = Peer{lp.identity, longestPrefix(a)};
    }
  }

  // The identities a peer selects, for a policy in namespace `ns`.
  auto selectPeer = [&](const k8s::NetworkPolicyPeer& peer, const std::string& ns) {
    std::vector<uint32_t> ids;
    if (peer.ipBlock) {
      auto c = lb::Cidr::parse(peer.ipBlock->cidr);
      if (!c) return ids;
      std::vector<lb::Cidr> except;
      for (const auto& e : peer.ipBlock->except) {
        if (auto x = lb::Cidr::parse(e)) except.push_back(*x);
      }
      for (const auto& q : prefixes) {
        if (!within(q, *c)) continue;
        bool excluded = std::any_of(except.begin(), except.end(),
                                    [&](const lb::Cidr& e) { return within(q, e); });
        if (!excluded) ids.push_back(cidrIdentities_.at(q));
      }
      return ids;
    }
    for (const auto& [id, info] : st.identities) {
      bool nsOk = peer.namespaceSelector ? matches(*peer.namespaceSelector, info.namespaceLabels)
                                         : info.namespace_ == ns;
      bool podOk = !peer.podSelector || matches(*peer.podSelector, info.podLabels);
      if (nsOk && podOk) ids.push_back(id);
    }
    return ids;
  };

  auto addRules = [&](uint32_t ep, Direction dir, uint32_t identity,
                      const std::vector<PortRange>& ranges) {
    for (const auto& r : ranges) {
      if (r.proto == 0) {
        st.rules.insert(RuleKey{ep, dir, identity, 0, 0, 0});
        continue;
      }
      if (r.lo == 0 && r.hi == 0) {  // every port of the protocol
        st.rules.insert(RuleKey{ep, dir, identity, r.proto, 0, 0});
        continue;
      }
      for (auto [port, len] : portBlocks(r.lo, r.hi)) {
        st.rules.insert(RuleKey{ep, dir, identity, r.proto, port, len});
      }
    }
  };

  // The port ranges of a rule; a named port resolves on `target` (the pod receiving the
  // traffic: the local pod for ingress, each peer pod for egress).
  auto rangesOf = [&](const k8s::NetworkPolicyRule& rule,
                      const std::vector<const k8s::Pod*>& targets) {
    std::vector<PortRange> out;
    if (rule.ports.empty()) {
      out.push_back({0, 0, 0});
      return out;
    }
    for (const auto& p : rule.ports) {
      uint8_t proto = protoNumber(p.protocol);
      if (!p.port) {
        out.push_back({proto, 0, 0});
      } else if (p.port->number) {
        auto lo = static_cast<uint16_t>(*p.port->number);
        auto hi = static_cast<uint16_t>(p.endPort.value_or(*p.port->number));
        out.push_back({proto, lo, hi});
      } else {
        for (const auto* t : targets) resolveNamed(*t, p.port->name, proto, out);
      }
    }
    return out;
  };

  std::vector<const k8s::Pod*> allPods;
  for (const auto& lp : live) allPods.push_back(lp.pod);

  for (const auto& lp : live) {
    const k8s::Pod& pod = *lp.pod;
    if (pod.nodeName != node_) {
      continue;
    }
    Endpoint ep;
    ep.pod = pod.metadata.key();
    ep.id = endpointOf(ep.pod, lp.ips, usedEndpoints);
    ep.identity = lp.identity;
    for (const auto& [key, pol] : policies_) {
      if (pol.metadata.namespace_ != pod.metadata.namespace_ ||
          !matches(pol.podSelector, pod.metadata.labels)) {
        continue;
      }
      if (pol.ingress) {
        ep.ingressIsolated = true;
        ep.ingressRules = ep.ingressRules || !pol.ingressRules.empty();
        for (const auto& rule : pol.ingressRules) {
          auto ranges = rangesOf(rule, {&pod});
          if (rule.peers.empty()) {
            addRules(ep.id, Direction::Ingress, kIdentityAny, ranges);
          }
          for (const auto& peer : rule.peers) {
            for (uint32_t id : selectPeer(peer, pol.metadata.namespace_)) {
              addRules(ep.id, Direction::Ingress, id, ranges);
            }
          }
        }
      }
      if (pol.egress) {
        ep.egressIsolated = true;
        ep.egressRules = ep.egressRules || !pol.egressRules.empty();
        for (const auto& rule : pol.egressRules) {
          if (rule.peers.empty()) {
            // Every destination: numbers open to any peer, but a named port means each
            // destination pod's own number, so it resolves per identity as for a selected
            // peer (and matches no address that is no pod's).
            k8s::NetworkPolicyRule numbered = rule, named = rule;
            numbered.ports.clear();
            named.ports.clear();
            for (const auto& p : rule.ports) {
              (p.port && !p.port->number ? named : numbered).ports.push_back(p);
            }
            if (named.ports.empty() || !numbered.ports.empty()) {
              addRules(ep.id, Direction::Egress, kIdentityAny, rangesOf(numbered, {}));
            }
            if (!named.ports.empty()) {
              for (const auto& [id, pods] : podsOf) {
                addRules(ep.id, Direction::Egress, id, rangesOf(named, pods));
              }
            }
          }
          for (const auto& peer : rule.peers) {
            for (uint32_t id : selectPeer(peer, pol.metadata.namespace_)) {
              // A named port means the destination pod's port: resolve it on the pods of
              // this identity (an ipBlock peer has no pods, so a named port matches nothing).
              auto it = podsOf.find(id);
              addRules(ep.id, Direction::Egress, id,
                       rangesOf(rule, it != podsOf.end() ? it->second
                                                         : std::vector<const k8s::Pod*>{}));
            }
          }
        }
      }
    }
    for (const auto& a : lp.ips) {
      st.endpoints[a] = ep;
    }
  }

  // Forget numbers nothing uses any more, so the tables do not grow without bound.
  std::erase_if(identities_, [&](const auto& kv) { return !usedIdentities.count(kv.second); });
  std::erase_if(cidrIdentities_, [&](const auto& kv) { return !usedCidrs.count(kv.second); });
  std::erase_if(endpointIds_, [&](const auto& kv) { return !usedEndpoints.count(kv.second); });
  adopted_.reset();  // hints for the first state after a restart only
  return st;
}

}  // namespace switchyard::policy
