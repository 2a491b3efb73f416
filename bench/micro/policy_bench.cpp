// sy-policy-bench: the NetworkPolicy control plane's cost at scale, in one run: for P policies
// (default 100, 1000 and 10000, side by side, ratios against the smallest), how long a change
// takes from the object to the maps (policy::Compiler::compute, policy::diff and
// bpf::writePolicyDiff into real kernel maps of bpf/policy_abi.h's layout), p50/p99/max over
// C changes of three kinds (a policy's port, a pod label moving a pod in or out of
// selectors, a policy added and removed), the cold start, and the memory per policy (kernel
// maps and this process). Needs root (BPF maps).
//
//   build/bench/micro/sy-policy-bench [--policies "100 1000 10000"] [--changes 60] [--json FILE]
//
// The synthetic cluster: 100 namespaces, 20 pods each (2000 pods, 200 of them on this node),
// labels app=a0..a9 and role=r0..r4; policy i lives in namespace i%100, selects app=a(i%10),
// and allows ingress from role=r(i%5) pods of namespaces with team=t(i%7) on TCP port
// 1000+i%5000 (a quarter also egress to an ipBlock with an except).
#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bpf/policy_abi.h"
#include "bpf/policy_maps.h"
#include "policy/compiler.h"

namespace {

using namespace switchyard;
using Clock = std::chrono::steady_clock;

constexpr int kNamespaces = 100;
constexpr int kPodsPerNs = 20;

struct Maps {
  bpf::PolicyMapFds fds;
  Maps() {
    LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
    LIBBPF_OPTS(bpf_map_create_opts, hash, .map_flags = BPF_F_NO_PREALLOC);
    fds.ipcache = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "pol_ipcache_b", sizeof(sy_pol_ipcache_key),
                                 sizeof(sy_pol_peer), SY_POL_IPCACHE_MAX, &lpm);
    fds.endpoints = bpf_map_create(BPF_MAP_TYPE_HASH, "pol_ep_b", 16, sizeof(sy_pol_endpoint),
                                   SY_POL_ENDPOINTS_MAX, &hash);
    fds.rules = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "pol_rules_b", sizeof(sy_pol_rule_key),
                               sizeof(sy_pol_rule_value), SY_POL_RULES_MAX, &lpm);
  }
  ~Maps() {
    for (int fd : {fds.ipcache, fds.endpoints, fds.rules}) {
      if (fd >= 0) close(fd);
    }
  }
  bool ok() const { return fds.ipcache >= 0 && fds.endpoints >= 0 && fds.rules >= 0; }
  // Kernel memory charged to the maps (fdinfo "memlock": the maps' own accounting).
  uint64_t kernelBytes() const {
    uint64_t sum = 0;
    for (int fd : {fds.ipcache, fds.endpoints, fds.rules}) {
      std::ifstream f("/proc/self/fdinfo/" + std::to_string(fd));
      std::string line;
      while (std::getline(f, line)) {
        if (line.rfind("memlock:", 0) == 0) sum += std::stoull(line.substr(8));
      }
    }
    return sum;
  }
};

uint64_t rssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

k8s::Pod pod(int ns, int j, bool flipped = false) {
  k8s::Pod p;
  p.metadata.namespace_ = "ns" + std::to_string(ns);
  p.metadata.name = "p" + std::to_string(j);
  p.metadata.labels = {{"app", "a" + std::to_string((j + (flipped ? 1 : 0)) % 10)},
                       {"role", "r" + std::to_string(j % 5)}};
  p.nodeName = (ns % 10 == 0) ? "local" : "node" + std::to_string(ns % 10);
  p.phase = "Running";
  int n = ns * kPodsPerNs + j;
  p.podIPs = {"198.18." + std::to_string(16 + n / 250) + "." + std::to_string(n % 250 + 1)};
  p.ports = {{"http", k8s::Protocol::TCP, 8080}};
  return p;
}

k8s::NetworkPolicy policy(int i, int portShift = 0) {
  k8s::NetworkPolicy p;
  p.metadata.namespace_ = "ns" + std::to_string(i % kNamespaces);
  p.metadata.name = "pol" + std::to_string(i);
  p.podSelector.matchLabels = {{"app", "a" + std::to_string(i % 10)}};
  p.ingress = true;
  k8s::NetworkPolicyRule in;
  k8s::NetworkPolicyPeer peer;
  peer.podSelector = k8s::LabelSelector{{{"role", "r" + std::to_string(i % 5)}}, {}};
  peer.namespaceSelector = k8s::LabelSelector{{{"team", "t" + std::to_string(i % 7)}}, {}};
  in.peers.push_back(peer);
  k8s::NetworkPolicyPort port;
  port.port = k8s::IntOrString{1000 + (i + portShift) % 5000, ""};
  in.ports.push_back(port);
  p.ingressRules.push_back(in);
  if (i % 4 == 0) {
    p.egress = true;
    k8s::NetworkPolicyRule out;
    k8s::NetworkPolicyPeer block;
    block.ipBlock = k8s::IPBlock{"198.19." + std::to_string(i % 250) + ".0/24",
                                 {"198.19." + std::to_string(i % 250) + ".128/25"}};
    out.peers.push_back(block);
    p.egressRules.push_back(out);
  }
  return p;
}

struct Row {
  int policies = 0;
  size_t rules = 0, ipcache = 0;
  double coldMs = 0, p50Ms = 0, p99Ms = 0, maxMs = 0;
  double kernelBytesPerPolicy = 0, processBytesPerPolicy = 0;
  size_t changes = 0;
};

double pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

bool run(int policies, int changes, Row& row, std::string& error) {
  Maps maps;
  if (!maps.ok()) {
    error = std::string("bpf_map_create: ") + std::strerror(errno);
    return false;
  }
  uint64_t rss0 = rssBytes(), kern0 = maps.kernelBytes();
  policy::Compiler c("local");
  for (int ns = 0; ns < kNamespaces; ++ns) {
    k8s::Namespace n;
    n.metadata.name = "ns" + std::to_string(ns);
    n.metadata.labels = {{"kubernetes.io/metadata.name", n.metadata.name},
                         {"team", "t" + std::to_string(ns % 7)}};
    c.upsertNamespace(n);
    for (int j = 0; j < kPodsPerNs; ++j) c.upsertPod(pod(ns, j));
  }
  for (int i = 0; i < policies; ++i) c.upsertPolicy(policy(i));
  policy::State written;
  auto commit = [&](double* ms) {
    auto t0 = Clock::now();
    policy::State next = c.compute();
    auto r = bpf::writePolicyDiff(maps.fds, policy::diff(written, next));
    auto t1 = Clock::now();
    if (!r.ok()) {
      error = r.firstError;
      return false;
    }
    written = std::move(next);
    *ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    return true;
  };
  if (!commit(&row.coldMs)) return false;
  row.policies = policies;
  row.rules = written.rules.size();
  row.ipcache = written.ipcache.size();
  row.kernelBytesPerPolicy = static_cast<double>(maps.kernelBytes() - kern0) / policies;
  uint64_t rss1 = rssBytes();
  row.processBytesPerPolicy = rss1 > rss0 ? static_cast<double>(rss1 - rss0) / policies : 0;
  std::vector<double> lat;
  for (int k = 0; k < changes; ++k) {
    double ms = 0;
    int i = (k * 7919) % policies;
    switch (k % 3) {
      case 0:  // a policy's port
        c.upsertPolicy(policy(i, 1 + k));
        break;
      case 1: {  // a pod of this node moves between selectors (app label)
        int ns = (k * 10) % kNamespaces, j = k % kPodsPerNs;
        c.upsertPod(pod(ns - ns % 10, j, (k / 3) % 2 == 0));
        break;
      }
      default:  // a policy added (and removed again by the next change of this kind)
        if ((k / 3) % 2 == 0) {
          c.upsertPolicy(policy(policies + k));
        } else {
          c.deletePolicy("ns" + std::to_string((policies + k - 3) % kNamespaces) + "/pol" +
                         std::to_string(policies + k - 3));
        }
    }
    if (!commit(&ms)) return false;
    lat.push_back(ms);
  }
  row.changes = lat.size();
  row.p50Ms = pct(lat, 0.50);
  row.p99Ms = pct(lat, 0.99);
  row.maxMs = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {100, 1000, 10000};
  int changes = 60;
  std::string jsonOut;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--policies" && i + 1 < argc) {
      sizes.clear();
      std::istringstream in(argv[++i]);
      for (int n; in >> n;) sizes.push_back(n);
    } else if (a == "--changes" && i + 1 < argc) {
      changes = std::stoi(argv[++i]);
    } else if (a == "--json" && i + 1 < argc) {
      jsonOut = argv[++i];
    } else {
      std::fprintf(stderr, "usage: sy-policy-bench [--policies \"100 1000 10000\"] [--changes N] [--json FILE]\n");
      return 2;
    }
  }
  if (sizes.empty() || changes < 1) {
    std::fprintf(stderr, "sy-policy-bench: --policies needs sizes, --changes at least 1\n");
    return 2;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "sy-policy-bench: needs root (BPF maps)\n");
    return 77;
  }
  std::vector<Row> rows;
  for (int n : sizes) {
    Row r;
    std::string error;
    if (!run(n, changes, r, error)) {
      std::fprintf(stderr, "sy-policy-bench: %d policies: %s\n", n, error.c_str());
      return 1;
    }
    rows.push_back(r);
  }
  const Row& base = rows.front();
  std::printf("%9s %8s %8s %9s %9s %9s %9s %7s %12s %12s\n", "policies", "rules", "ipcache", "cold ms",
              "p50 ms", "p99 ms", "max ms", "p99 x", "kernel B/pol", "process B/pol");
  for (const Row& r : rows) {
    std::printf("%9d %8zu %8zu %9.1f %9.2f %9.2f %9.2f %7.1f %12.0f %12.0f\n", r.policies, r.rules, r.ipcache,
                r.coldMs, r.p50Ms, r.p99Ms, r.maxMs, base.p99Ms > 0 ? r.p99Ms / base.p99Ms : 0.0,
                r.kernelBytesPerPolicy, r.processBytesPerPolicy);
  }
  if (!jsonOut.empty()) {
    std::ofstream f(jsonOut);
    f << "[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      f << (i ? "," : "") << "{\"policies\":" << r.policies << ",\"rules\":" << r.rules
        << ",\"ipcache\":" << r.ipcache << ",\"cold_ms\":" << r.coldMs << ",\"changes\":" << r.changes
        << ",\"p50_ms\":" << r.p50Ms << ",\"p99_ms\":" << r.p99Ms << ",\"max_ms\":" << r.maxMs
        << ",\"p99_ratio_vs_smallest\":" << (base.p99Ms > 0 ? r.p99Ms / base.p99Ms : 0.0)
        << ",\"kernel_bytes_per_policy\":" << r.kernelBytesPerPolicy
        << ",\"process_bytes_per_policy\":" << r.processBytesPerPolicy << "}";
    }
    f << "]\n";
  }
  return 0;
}
