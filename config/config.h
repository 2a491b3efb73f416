// The one YAML file: SwitchyardConfiguration (switchyard.dev/v1alpha1). Field names mirror
// KubeProxyConfiguration where the meaning is the same. docs/configuration.md lists them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bpf/map_sizes.h"

namespace switchyard::config {

inline constexpr const char* kApiVersion = "switchyard.dev/v1alpha1";
inline constexpr const char* kKind = "SwitchyardConfiguration";

struct Config {
  std::string hostnameOverride;
  std::string healthzBindAddress = "0.0.0.0:10256";
  std::string metricsBindAddress = "127.0.0.1:10249";
  std::string clusterCIDR;  // comma-separated for dual-stack: traffic from it is in-cluster
  // kube-proxy's nodePortAddresses: NodePorts are served on the node's addresses inside
  // these CIDRs; empty = every address of the node but loopback and IPv6 link-local.
  std::vector<std::string> nodePortAddresses;
  std::chrono::milliseconds syncPeriod{30000};     // periodic full reconcile
  std::chrono::milliseconds minSyncPeriod{100};    // at most one sync per this interval
  int verbosity = 0;                               // logging.verbosity; >= 4 logs debug

  struct Source {
    std::string kind;  // files | apiserver; "" resolved by resolveDefaults()
    std::string path;  // files: a file or a directory of *.yaml
    std::chrono::milliseconds pollInterval{500};
  } source;

  struct ClientConnection {
    std::string kubeconfig;  // "" = in-cluster
    double qps = 50;
    int burst = 100;
    // The largest watch event accepted, in bytes (client-go's 16 MiB); LIST responses are
    // bounded at max(256 MiB, 16 times this).
    uint64_t maxEventBytes = 16u << 20;
  } clientConnection;

  struct Bpf {
    std::string pinPath = "/sys/fs/bpf/switchyard";
    std::string cgroupPath;  // "" = the cgroup v2 root, auto-detected
    bool socketLB = true;
    // Cgroup v2 directories (absolute paths) whose sockets, and their descendants', the
    // socket hooks leave alone (bpf.socketLB.skipCgroups); a missing one is looked for again.
    std::vector<std::string> socketLBSkipCgroups;
    // bpf.socketLB.podOptOut: pods of this node annotated switchyard.dev/socket-lb: disabled,
    // or in a namespace labelled so, are skipped too (their cgroup found by pod UID under
    // podCgroupRoot, "" = the cgroup v2 root). Needs Pods and Namespaces from the source.
    bool socketLBPodOptOut = false;
    std::string socketLBPodCgroupRoot;
    std::vector<std::string> devices;      // pod-facing devices: names or patterns ("veth*")
    std::vector<std::string> hostDevices;  // host-facing devices (NodePort, LB, external IPs)
    bpf::MapSizes mapSizes;
  } bpf;

  // --- conntrack GC (issue 11 item 5) ---
  // The tc conntrack's idle lifetimes, named as KubeProxyConfiguration's conntrack.* (0: the
  // default, as kube-proxy leaves a 0 alone). They reach the tc programs as load-time
  // constants (ct_lifetime() in bpf/tc_lb.bpf.c) and the daemon's GC (bpf/ct_gc.h).
  struct Conntrack {
    std::chrono::milliseconds tcpEstablishedTimeout{6 * 3600 * 1000};  // an open TCP flow
    std::chrono::milliseconds tcpCloseWaitTimeout{10 * 1000};  // a TCP flow after FIN or RST
    std::chrono::milliseconds udpTimeout{60 * 1000};           // UDP and SCTP flows
  } conntrack;
  // At most SY_CT_LIFETIME_MAX (bpf/abi.h): a released backend ID is reused after that.
  static constexpr std::chrono::milliseconds kConntrackLifetimeMax{6 * 3600 * 1000};
  // --- end conntrack GC ---
  // How external clients (NodePort, LoadBalancer IPs, external IPs) reach a backend on
  // another node (issue 11; docs/services.md): snat (the node's address, as kube-proxy
  // masquerades), dsr (the client's address kept, the reply straight from the backend's
  // node) or hybrid (dsr for TCP, snat for UDP and SCTP). A Service overrides it with the
  // annotation switchyard.dev/lb-mode.
  struct LoadBalancer {
    std::string mode = "snat";        // snat | dsr | hybrid
    // opt: the frontend in an IPv4 option / IPv6 destination option; ipip: that request also
    // encapsulated (IPIP, IP6IP6) to the backend, for fabrics that drop IP options.
    std::string dsrDispatch = "opt";
    // -- Maglev (issue 11 item 3) --
    std::string algorithm = "random";  // random | maglev: how tc balances new flows from outside
    struct Maglev {
      uint32_t tableSize = 16381;       // M, a prime in 3..65521
      uint32_t hashSeed = 0x53594d47u;  // the same on every node: the same tables and choices
    } maglev;
    // -- end Maglev --
    // -- XDP fast path (issue 11 item 4; docs/acceleration.md) --
    // disabled | native (XDP in the driver, an error where there is none) | best-effort
    // (native, else generic XDP): the XDP program on the host-facing devices.
    std::string acceleration = "disabled";
    // Source prefixes dropped first by the XDP program (IPv4 or IPv6 CIDRs, one per item);
    // needs acceleration native or best-effort.
    std::vector<std::string> denyCIDRs;
    // -- end XDP --
  } loadBalancer;

  // NetworkPolicy (networking.k8s.io/v1; docs/policy.md). Off by default: the daemon stays a
  // pure kube-proxy replacement and watches no Pods, Namespaces or NetworkPolicies.
  struct Policy {
    bool enabled = false;
    // Denied flows are reported (rate-limited log lines with pod names) once the datapath
    // has its denied-flow events; sets SY_POL_STATE_LOG_DENIED in pol_state_v1.
    bool logDenied = false;
  } policy;

  // The line of every field the file set, by path ("bpf.cgroupPath"), for checks that run
  // after parsing (validateHostPaths) and still report FILE:LINE.
  std::map<std::string, int> fieldLines;

  // "FILE:LINE: field: text" for each field the file set that is accepted but not applied
  // (a KubeProxyConfiguration's iptables block, mode, ...: config/kube_proxy_config.h), once
  // per field. `switchyard run` prints them before it starts.
  std::vector<std::string> warnings;
};

// Parses and validates FILE: a SwitchyardConfiguration, or kube-proxy's
// KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) translated by
// config/kube_proxy_config.h. Every problem is reported as "FILE:LINE: field: reason"
// (all of them, in one pass); returns false if there was any. A file that cannot be read
// is one such line too: "FILE:1: config: cannot be read: REASON". A field given twice in
// one mapping is "FILE:LINE: field: duplicate field" at its second occurrence.
bool loadConfig(const std::string& file, Config& out, std::vector<std::string>& errors);

// Same, from text (tests); `name` stands in for the file name in messages.
bool parseConfig(const std::string& text, const std::string& name, Config& out,
                 std::vector<std::string>& errors);

// Fills what depends on the environment: source.kind, when the file does not set it, is
// apiserver inside a cluster (KUBERNETES_SERVICE_HOST set) or when a kubeconfig is given
// (clientConnection.kubeconfig, or --kubeconfig applied before this call), else files.
void resolveDefaults(Config& c);
void resolveDefaults(Config& c, bool inCluster);

// Checks the paths the daemon will use on this host (for `run` only: cleanup must work
// when they are gone): bpf.cgroupPath, when socket LB is on and it is set, must be a
// directory on a cgroup v2 filesystem. Problems are FILE:LINE: field: reason lines.
bool validateHostPaths(const Config& c, const std::string& file, std::vector<std::string>& errors);

// "host:port" with a numeric IPv4/IPv6 host ("[::1]:10249" for IPv6) and port 0-65535.
bool parseHostPort(const std::string& s, std::string& host, uint16_t& port);

// Go-style durations: "30s", "1m30s", "100ms", "2h".
bool parseDuration(const std::string& s, std::chrono::milliseconds& out);

}  // namespace switchyard::config
