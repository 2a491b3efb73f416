// The truth-table grid of tests/policy: namespaces x and y, pods a, b, c on nodes n1 and n2,
// every pod probing every other; the reference lookups (what the tc policy stage does, read
// from the compiler's State) and the Datapath seam the kernel tests plug into.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "k8sclient/decode.h"
#include "k8sclient/yaml_json.h"
#include "policy/compiler.h"

namespace switchyard::policy::testing {

using lb::Cidr;
using lb::IpAddr;

inline rapidjson::Document json(const std::string& yaml) {
  rapidjson::Document doc;
  k8s::yamlToJson(YAML::Load(yaml), doc, doc.GetAllocator());
  return doc;
}

inline k8s::NetworkPolicy policyFrom(const std::string& yaml) {
  auto doc = json(yaml);
  k8s::NetworkPolicy p;
  std::vector<k8s::FieldError> errs;
  EXPECT_TRUE(k8s::decodeNetworkPolicy(doc, p, errs)) << (errs.empty() ? "" : errs[0].str());
  return p;
}

inline std::vector<k8s::FieldError> policyErrors(const std::string& yaml) {
  auto doc = json(yaml);
  k8s::NetworkPolicy p;
  std::vector<k8s::FieldError> errs;
  EXPECT_FALSE(k8s::decodeNetworkPolicy(doc, p, errs));
  return errs;
}

inline IpAddr ip(const char* s) { return *IpAddr::parse(s); }

// --- the reference datapath: what the tc policy stage does for a new flow ---

inline bool ruleMatches(const State& st, uint32_t ep, Direction dir, uint32_t identity, uint8_t proto,
                 uint16_t port) {
  for (const auto& r : st.rules) {
    if (r.endpoint != ep || r.dir != dir || r.identity != identity) continue;
    if (r.proto == 0) return true;
    if (r.proto != proto) continue;
    if (r.portPrefixLen == 0) return true;
    unsigned shift = 16 - r.portPrefixLen;
    if ((port >> shift) == (r.port >> shift)) return true;
  }
  return false;
}

inline Peer lookupPeer(const State& st, const IpAddr& a) {
  const std::pair<const Cidr, Peer>* best = nullptr;
  for (const auto& e : st.ipcache) {
    if (e.first.addr.isV4() == a.isV4() && e.first.contains(a) &&
        (!best || e.first.prefixLen > best->first.prefixLen)) {
      best = &e;
    }
  }
  EXPECT_NE(best, nullptr) << "no ipcache prefix (not even the world) holds " << a.str();
  return best ? best->second : Peer{};
}

// One direction at one end: a local endpoint isolated in `dir` lets the flow pass only if
// a rule names the peer's pod identity, its CIDR identity, or any peer.
inline bool passes(const State& st, const IpAddr& local, const IpAddr& peer, Direction dir,
            uint8_t proto, uint16_t port) {
  auto it = st.endpoints.find(local);
  if (it == st.endpoints.end()) return true;  // not a pod of this node
  const Endpoint& ep = it->second;
  if (!(dir == Direction::Ingress ? ep.ingressIsolated : ep.egressIsolated)) return true;
  Peer p = lookupPeer(st, peer);
  return ruleMatches(st, ep.id, dir, p.podIdentity, proto, port) ||
         ruleMatches(st, ep.id, dir, p.cidrIdentity, proto, port) ||
         ruleMatches(st, ep.id, dir, kIdentityAny, proto, port);
}

// --- the grid: namespaces x and y, pods a, b, c; a and b of x and a of y on node n1 ---

struct GridPod {
  std::string ns, name, node, v4, v6;
  uint16_t servePort;  // its container port named "serve" (differs per pod)
  std::string key() const { return ns + "/" + name; }
};

inline const std::vector<GridPod> kGrid = {
    {"x", "a", "n1", "198.18.1.1", "2001:db8:1::1", 80},
    {"x", "b", "n1", "198.18.1.2", "2001:db8:1::2", 81},
    {"x", "c", "n2", "198.18.1.3", "2001:db8:1::3", 82},
    {"y", "a", "n1", "198.18.2.1", "2001:db8:2::1", 80},
    {"y", "b", "n2", "198.18.2.2", "2001:db8:2::2", 81},
    {"y", "c", "n2", "198.18.2.3", "2001:db8:2::3", 82},
};

inline k8s::Pod podOf(const GridPod& g, const std::map<std::string, std::string>& extraLabels = {}) {
  k8s::Pod p;
  p.metadata.namespace_ = g.ns;
  p.metadata.name = g.name;
  p.metadata.labels = {{"pod", g.name}};
  for (const auto& [k, v] : extraLabels) p.metadata.labels[k] = v;
  p.nodeName = g.node;
  p.phase = "Running";
  p.podIPs = {g.v4, g.v6};
  p.ports = {{"serve", k8s::Protocol::TCP, g.servePort},
             {"dns", k8s::Protocol::UDP, 53}};
  return p;
}

struct Probe {
  uint8_t proto = lb::kProtoTCP;
  uint16_t port = 0;  // 0: the destination's "serve" port
  bool v6 = false;
};

// Where verdicts come from: the reference lookups above over the compiler's State, or the
// kernel (policy_bpf_test.cpp: the entries written to real maps, the probe programs run on
// crafted packets).
class Datapath {
 public:
  virtual ~Datapath() = default;
  // The node's entries went from `before` to `after`.
  virtual void write(const std::string& node, const State& before, const State& after) = 0;
  // Does a flow src -> dst (destination port `port`) pass the egress check at src's node /
  // the ingress check at dst's node?
  virtual bool egress(const std::string& node, const State& st, const IpAddr& src,
                      const IpAddr& dst, uint8_t proto, uint16_t port) = 0;
  virtual bool ingress(const std::string& node, const State& st, const IpAddr& src,
                       const IpAddr& dst, uint8_t proto, uint16_t port) = 0;
};

class RefDatapath : public Datapath {
 public:
  void write(const std::string&, const State&, const State&) override {}
  bool egress(const std::string&, const State& st, const IpAddr& src, const IpAddr& dst,
              uint8_t proto, uint16_t port) override {
    return passes(st, src, dst, Direction::Egress, proto, port);
  }
  bool ingress(const std::string&, const State& st, const IpAddr& src, const IpAddr& dst,
               uint8_t proto, uint16_t port) override {
    return passes(st, dst, src, Direction::Ingress, proto, port);
  }
};

// Made by the test binary: "reference", or "kernel" where the binary has the probe.
std::unique_ptr<Datapath> makeDatapath(const std::string& kind);

class Grid {
 public:
  explicit Grid(std::unique_ptr<Datapath> dp = std::make_unique<RefDatapath>()) : dp_(std::move(dp)) {
    for (const char* ns : {"x", "y"}) {
      k8s::Namespace n;
      n.metadata.name = ns;
      n.metadata.labels = {{"ns", ns}, {"kubernetes.io/metadata.name", ns}};
      for (auto* c : {&n1_, &n2_}) c->upsertNamespace(n);
    }
    for (const auto& g : kGrid) setPod(g);
  }
  void setPod(const GridPod& g, const std::map<std::string, std::string>& extra = {}) {
    for (auto* c : {&n1_, &n2_}) c->upsertPod(podOf(g, extra));
  }
  void apply(const std::string& yaml) {
    auto p = policyFrom(yaml);
    for (auto* c : {&n1_, &n2_}) c->upsertPolicy(p);
  }
  void remove(const std::string& key) {
    for (auto* c : {&n1_, &n2_}) c->deletePolicy(key);
  }
  void compute() {
    State a = n1_.compute(), b = n2_.compute();
    dp_->write("n1", s1_, a);
    dp_->write("n2", s2_, b);
    s1_ = std::move(a);
    s2_ = std::move(b);
  }
  const State& stateOf(const std::string& node) const { return node == "n1" ? s1_ : s2_; }
  Compiler& compilerOf(const std::string& node) { return node == "n1" ? n1_ : n2_; }

  bool allowed(const GridPod& src, const IpAddr& srcIp, const GridPod& dst, const IpAddr& dstIp,
               uint8_t proto, uint16_t port) const {
    return dp_->egress(src.node, stateOf(src.node), srcIp, dstIp, proto, port) &&
           dp_->ingress(dst.node, stateOf(dst.node), srcIp, dstIp, proto, port);
  }
  // One direction for an address pair, on `node`'s entries (after compute()).
  bool egress(const std::string& node, const char* src, const char* dst, uint8_t proto, uint16_t port) {
    return dp_->egress(node, stateOf(node), ip(src), ip(dst), proto, port);
  }

  // Every pod to every pod; `expect(src, dst)` is the verdict the API defines. Returns "" when
  // every cell agrees, else both matrices (rows: from, columns: to; '.' allowed, 'X' denied).
  std::string check(const Probe& pr, const std::function<bool(const GridPod&, const GridPod&)>& expect) {
    compute();
    std::ostringstream want, got;
    bool same = true;
    for (const auto& s : kGrid) {
      want << s.key() << " ";
      got << s.key() << " ";
      for (const auto& d : kGrid) {
        uint16_t port = pr.port ? pr.port : d.servePort;
        bool a = allowed(s, ip(pr.v6 ? s.v6.c_str() : s.v4.c_str()), d,
                         ip(pr.v6 ? d.v6.c_str() : d.v4.c_str()), pr.proto, port);
        bool e = expect(s, d);
        same = same && a == e;
        want << (e ? '.' : 'X');
        got << (a ? '.' : 'X');
      }
      want << "\n";
      got << "\n";
    }
    if (same) return "";
    return "expected:\n" + want.str() + "observed:\n" + got.str();
  }

 private:
  std::unique_ptr<Datapath> dp_;
  Compiler n1_{"n1"}, n2_{"n2"};
  State s1_, s2_;
};

inline const GridPod& pod(const char* key) {
  for (const auto& g : kGrid) {
    if (g.key() == key) return g;
  }
  throw std::runtime_error(key);
}

}  // namespace switchyard::policy::testing
