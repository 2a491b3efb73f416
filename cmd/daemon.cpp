#include "cmd/daemon.h"

#include <prometheus/exposer.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "bpf/bpffs.h"
#include "bpf/cleanup.h"
#include "bpf/xdp_links.h"
#include "bpf/ct_gc.h"
#include "bpf/datapath.h"
#include "bpf/map_writer.h"
#include "bpf/node_maps.h"
#include "bpf/pod_cgroups.h"
#include "bpf/sock_term.h"
#include "cmd/policy_events.h"
#include "cmd/policy_sync.h"
#include "k8sclient/apiserver/apiserver_source.h"
#include "k8sclient/manifest_source.h"
#include "lb/proxier.h"
#include "logging/log.h"
#include "metrics/conntrack_metrics.h"
#include "metrics/datapath_counters.h"
#include "metrics/health.h"
#include "metrics/policy_metrics.h"
#include "metrics/service_health.h"
#include "netlink/device_match.h"
#include "netlink/nodeport_addresses.h"
#include "netlink/watcher.h"
#include "metrics/metrics.h"
#include "metrics/sync_recorder.h"

namespace switchyard::cmd {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A full rewrite of every entry, whatever the syncer believes, repairs drift (someone
// else writing our maps). kube-proxy's iptables proxier forces one per hour too.
constexpr auto kFullResyncPeriod = 1h;

// Counts and forwards source events, and asks for a sync after each.
class EventTap : public k8s::ServiceEventHandler {
 public:
  EventTap(lb::Proxier& proxier, metrics::ProxyMetrics& m, metrics::HealthState& health,
           std::string nodeName, std::function<void()> changed)
      : proxier_(proxier), metrics_(m), health_(health), nodeName_(std::move(nodeName)),
        changed_(std::move(changed)) {}

  void onServiceUpsert(const k8s::Service& s) override {
    metrics_.countServiceChange();
    count("Service", "upsert");
    proxier_.onServiceUpsert(s);
  }
  void onServiceDelete(const k8s::Service& s) override {
    metrics_.countServiceChange();
    count("Service", "delete");
    proxier_.onServiceDelete(s);
  }
  void onEndpointSliceUpsert(const k8s::EndpointSlice& s) override {
    metrics_.countEndpointChange();
    count("EndpointSlice", "upsert");
    proxier_.onEndpointSliceUpsert(s);
  }
  void onEndpointSliceDelete(const k8s::EndpointSlice& s) override {
    metrics_.countEndpointChange();
    count("EndpointSlice", "delete");
    proxier_.onEndpointSliceDelete(s);
  }
  // This node's Node only (a files source delivers every Node it finds): its zone label for
  // topology, and whether load balancers should still send here (/healthz), as
  // kube-proxy: not once it is being deleted, or carries the cluster autoscaler's taint.
  void onNodeUpsert(const k8s::Node& n) override {
    if (n.metadata.name != nodeName_) {
      return;
    }
    count("Node", "upsert");
    health_.syncNode(&n);
    proxier_.onNodeUpsert(n);
  }
  void onNodeDelete(const k8s::Node& n) override {
    if (n.metadata.name != nodeName_) {
      return;
    }
    count("Node", "delete");
    SY_LOG(Warning) << "Node " << nodeName_ << " deleted: /healthz answers 503";
    health_.syncNode(nullptr);  // the Node is gone: no load balancer should send here
  }
  // bpf.socketLB.podOptOut: this node's pods and every namespace, for the opt-out.
  void setOptOut(bpf::SocketLBOptOut* optOut, std::function<void()> changed) {
    optOut_ = optOut;
    optOutChanged_ = std::move(changed);
  }
  // policy.enabled: Pods, Namespaces and NetworkPolicies also feed the policy sync.
  void setPolicy(PolicySync* policy) { policy_ = policy; }
  void onPodUpsert(const k8s::Pod& p) override {
    if (policy_) {
      policy_->onPodUpsert(p);
    }
    if (optOut_) {
      optOutProblem("Pod", optOut_->onPod(p));
      optOutChanged_();
    }
  }
  void onPodDelete(const k8s::Pod& p) override {
    if (policy_) {
      policy_->onPodDelete(p);
    }
    if (optOut_) {
      optOut_->onPodDelete(p.metadata.key());
      optOutChanged_();
    }
  }
  void onNamespaceUpsert(const k8s::Namespace& n) override {
    if (policy_) {
      policy_->onNamespaceUpsert(n);
    }
    if (optOut_) {
      optOutProblem("Namespace", optOut_->onNamespace(n));
      optOutChanged_();
    }
  }
  void onNamespaceDelete(const k8s::Namespace& n) override {
    if (policy_) {
      policy_->onNamespaceDelete(n);
    }
    if (optOut_) {
      optOut_->onNamespaceDelete(n.metadata.name);
      optOutChanged_();
    }
  }
  void onNetworkPolicyUpsert(const k8s::NetworkPolicy& p) override {
    if (policy_) {
      metrics_.countSourceEvent("NetworkPolicy", "upsert");
      policy_->onNetworkPolicyUpsert(p);
    }
  }
  void onNetworkPolicyDelete(const k8s::NetworkPolicy& p) override {
    if (policy_) {
      metrics_.countSourceEvent("NetworkPolicy", "delete");
      policy_->onNetworkPolicyDelete(p);
    }
  }
  void onSynced() override {
    SY_LOG(Info) << "source synced: " << proxier_.tracker().serviceCount() << " services, "
                 << proxier_.tracker().sliceCount() << " endpoint slices";
    proxier_.onSynced();
    if (policy_) {
      policy_->onSynced();
    }
    changed_();
  }

 private:
  void count(const char* kind, const char* type) {
    metrics_.countSourceEvent(kind, type);
    metrics_.setQueued();
    health_.queued(std::chrono::system_clock::now());
    changed_();
  }

  void optOutProblem(const char* kind, const std::optional<std::string>& problem) {
    if (problem) {
      SY_LOG(Warning) << "bpf.socketLB.podOptOut: " << *problem;
      metrics_.countSourceError("optout", kind);
    }
  }

  lb::Proxier& proxier_;
  metrics::ProxyMetrics& metrics_;
  metrics::HealthState& health_;
  std::string nodeName_;
  std::function<void()> changed_;
  bpf::SocketLBOptOut* optOut_ = nullptr;
  std::function<void()> optOutChanged_;
  PolicySync* policy_ = nullptr;
};

// --- conntrack GC (issue 11 item 5) ---
metrics::ConntrackSnapshot conntrackSnapshot(const bpf::CtGcRunner* gc) {
  metrics::ConntrackSnapshot out;
  if (!gc) {
    return out;
  }
  bpf::CtGcRunner::Stats s = gc->stats();
  out.ctName = metrics::mapLabel(bpf::kPinCt);
  out.ctEntries = s.entries;
  out.passes = s.passes;
  out.errors = s.errors;
  out.removedExpired = s.removed.expired;
  out.removedClosed = s.removed.closed;
  out.removedOrphan = s.removed.orphan;
  out.lastPassSeconds = s.lastPassSeconds;
  out.intervalSeconds = s.lastIntervalSeconds;
  out.maps.push_back({out.ctName, s.entries, s.maxEntries});
  for (const auto& m : s.maps) {
    out.maps.push_back({m.name, m.entries, m.maxEntries});
  }
  return out;
}
// --- end conntrack GC ---

class Daemon {
 public:
  Daemon(const config::Config& cfg, std::string master)
      : cfg_(cfg), master_(std::move(master)), health_(2 * cfg.syncPeriod), syncTimer_(io_), tickTimer_(io_),
        signals_(io_, SIGINT, SIGTERM) {}

  int run() {
    logging::setLevel(cfg_.verbosity >= 4 ? logging::Level::Debug : logging::Level::Info);
    bpf::installLibbpfLogger(cfg_.verbosity >= 6);
    SY_LOG(Info) << "switchyard " << SY_VERSION << " starting: source " << cfg_.source.kind
                 << ", pin path " << cfg_.bpf.pinPath;

    std::string error;
    // One daemon per pin path: a second one would hand out the backend and rev-NAT IDs the
    // first one uses. The lock is taken before the maps are opened, let alone written.
    if (!bpf::ensurePinPath(cfg_.bpf.pinPath, error) || !pinLock_.acquire(cfg_.bpf.pinPath, error)) {
      SY_LOG(Error) << error;
      return 1;
    }
    bpf::DatapathOptions opts;
    opts.pinPath = cfg_.bpf.pinPath;
    opts.sizes = cfg_.bpf.mapSizes;
    opts.ctLifetimes = ctLifetimes();
    opts.maglevSeed = cfg_.loadBalancer.maglev.hashSeed;  // Maglev (issue 11 item 3)
    datapath_ = bpf::Datapath::load(opts, error);
    if (!datapath_) {
      SY_LOG(Error) << error;
      return 1;
    }
    writer_ = std::make_unique<bpf::MapWriter>(
        datapath_->maps(), [this](const char* map, const char* op) { metrics_.countMapError(map, op); });
    proxier_ = std::make_unique<lb::Proxier>(*writer_, nodeName(), nullptr, lbConfig());
    proxier_->setLbMode(lb::parseLbMode(cfg_.loadBalancer.mode).value_or(lb::LbMode::Snat),
                        cfg_.loadBalancer.dsrDispatch == "ipip");
    lb::DataplaneState adopted = writer_->read();
    proxier_->adopt(adopted);
    // A restart over pinned maps that already serve traffic is healthy before its first
    // sync; a fresh node is not (metrics/health.h).
    health_.adoptedFrontends(adopted.frontends.size());
    SY_LOG(Info) << "adopted pinned maps: " << adopted.frontends.size() << " frontends, "
                 << adopted.backends.size() << " backends, " << adopted.maglevTables.size() << " Maglev tables";
    SY_LOG(Info) << "load balancing: " << cfg_.loadBalancer.algorithm << " by default; Maglev tables of "
                 << cfg_.loadBalancer.maglev.tableSize << " entries, hash seed " << cfg_.loadBalancer.maglev.hashSeed;

    if (!startPolicy(error) || !writeDenyList(error) || !setLocalNets(error) || !startNetlink(error) || !attach(error)) {
      SY_LOG(Error) << error;
      return 1;
    }
    // The programs that served the old maps are replaced now: a takeover of maps of another
    // size or layout (bpf/migrate.h) copies what they gained meanwhile and lets them go.
    datapath_->finishTakeover();
    // --- conntrack GC (issue 11 item 5): a thread of its own, off the io_context ---
    {
      bpf::CtGcRunner::Options o;
      o.gc.lifetimes = ctLifetimes();
      const bpf::MapFds& fds = datapath_->maps();
      for (const bpf::MapPin& p : bpf::kMapPins) {
        if (p.fd != &bpf::MapFds::ct && p.writer != bpf::MapWriterKind::Counters &&
            p.writer != bpf::MapWriterKind::Meta) {
          o.sampled.push_back({metrics::mapLabel(p.name), fds.*p.fd});
        }
      }
      ctGc_ = std::make_shared<bpf::CtGcRunner>(fds.ct, std::move(o));
      metrics::DatapathCounters::Totals t;
      if (metrics::DatapathCounters::read(fds.counters, t)) {
        ctFullSeen_ = t.packets.at(SY_REASON_TC_CT_FULL);  // pinned counters: refusals of before
      }
    }
    // --- end conntrack GC ---
    if (!startMetrics(error) || !startHealth(error)) {
      SY_LOG(Error) << error;
      return 1;
    }

    tap_ = std::make_unique<EventTap>(*proxier_, metrics_, health_, nodeName(), [this] { scheduleSync(); });
    if (cfg_.policy.enabled) {
      tap_->setPolicy(policy_.get());
    }
    if (podOptOut()) {
      optOut_ = std::make_unique<bpf::SocketLBOptOut>(nodeName());
      tap_->setOptOut(optOut_.get(), [this] {
        // Coalesced: a list of many pods is one refresh.
        if (!optOutRefreshPosted_) {
          optOutRefreshPosted_ = true;
          boost::asio::post(io_, [this] {
            optOutRefreshPosted_ = false;
            refreshSocketLBSkip();
          });
        }
      });
    }
    metrics_.declareSource(cfg_.source.kind);
    if (cfg_.source.kind == "files") {
      files_ = std::make_unique<k8s::ManifestSource>(
          io_, cfg_.source.path, *tap_,
          [this](const k8s::ManifestProblem& p) {
            SY_LOG(Warning) << "manifest: " << p.str();
            std::string kind = p.object.substr(0, p.object.find(' '));
            metrics_.countSourceError("files", kind.empty() ? "document" : kind);
          },
          cfg_.source.pollInterval);
      files_->setPolicyKinds(podOptOut() || cfg_.policy.enabled);
      files_->start();
    } else if (!startApiServerSource(error)) {
      SY_LOG(Error) << error;
      return 1;
    }

    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) {
        SY_LOG(Info) << "signal " << sig << ": exiting; programs stay attached and maps pinned";
        io_.stop();
      }
    });
    armTick();
    io_.run();
    return 0;
  }

 private:
  bool attach(std::string& error) {
    if (cfg_.bpf.socketLB) {
      std::string cg = cfg_.bpf.cgroupPath.empty() ? bpf::findCgroup2Mount() : cfg_.bpf.cgroupPath;
      if (cg.empty()) {
        error = "bpf.cgroupPath: no cgroup v2 hierarchy is mounted; set bpf.cgroupPath";
        return false;
      }
      if (!datapath_->attachSocketLB(cg, error)) {
        return false;
      }
      refreshSocketLBSkip();
      std::string why;
      terminator_ = bpf::SocketTerminator::load(datapath_->maps().sockRevNat, why);
      if (!terminator_) {
        SY_LOG(Warning) << why << ": connected UDP sockets that socket LB sent to a removed backend "
                        << "keep sending to it until the application reconnects";
      }
    } else {
      datapath_->detachSocketLB();
    }
    refreshDevices();
    // loadBalancer.acceleration native is a requirement: a host-facing device that cannot
    // run XDP in its driver stops the start (best-effort falls back to generic instead).
    if (cfg_.loadBalancer.acceleration == "native" && !xdpFailedLogged_.empty()) {
      error = xdpLastError_;
      return false;
    }
    // Records of an earlier run that are not the attachments made now: devices the
    // configuration no longer names, and devices deleted (or recreated with another
    // ifindex) while no daemon ran.
    bpf::CleanupReport dropped;
    bpf::detachTcHooks(datapath_->maps().tcAttach, datapath_->mapIds(), attachedDevices_,
                       bpf::RecordScope::DaemonNetns, dropped);
    if (dropped.tcFiltersRemoved > 0) {
      SY_LOG(Info) << "removed " << dropped.tcFiltersRemoved
                   << " tc filters from devices no longer in bpf.devices";
    }
    logCleanup(dropped);
    return true;
  }

  // kube-proxy flushes the conntrack entries of removed UDP endpoints; socket LB's connected
  // UDP sockets to them are destroyed instead, in every pod network namespace.
  void terminateStaleUdp(const std::vector<lb::StaleUdpBackend>& stale) {
    if (stale.empty() || !terminator_) {
      return;
    }
    bpf::TerminateReport report = terminator_->terminate(stale, bpf::podNetworkNamespaces());
    for (const std::string& e : report.errors) {
      SY_LOG(Warning) << "terminating UDP sockets of removed backends: " << e;
    }
    metrics_.countUdpSocketsTerminated(report.destroyed);
    SY_LOG_AT(report.destroyed > 0 ? logging::Level::Info : logging::Level::Debug)
        << "terminated " << report.destroyed << " connected UDP sockets of " << stale.size()
        << " removed UDP backends in " << report.namespaces << " network namespaces";
  }

  // bpf.socketLB.skipCgroups into sockskip_v1, looked up again every tick: a cgroup made
  // after the daemon started (a pod started later) gets a new ID, and a removed one is
  // dropped. A path that does not resolve is said once, until it does.
  bool podOptOut() const { return cfg_.bpf.socketLB && cfg_.bpf.socketLBPodOptOut; }

  void refreshSocketLBSkip() {
    if (!cfg_.bpf.socketLB) {
      return;
    }
    std::map<uint64_t, uint32_t> want;
    if (optOut_) {
      addOptedOutPods(want);
    }
    for (const std::string& path : cfg_.bpf.socketLBSkipCgroups) {
      std::string why;
      auto ref = bpf::resolveCgroup(path, why);
      if (!ref) {
        if (skipUnresolved_.insert(path).second) {
          SY_LOG(Warning) << "bpf.socketLB.skipCgroups: " << path << ": " << why
                          << " (looked for again every " << tickPeriod().count() << " ms)";
        }
        continue;
      }
      if (skipUnresolved_.erase(path) > 0 || !skipResolved_.count(path) || skipResolved_[path] != ref->id) {
        SY_LOG(Info) << "socket LB skips cgroup " << path << " (id " << ref->id << ", level " << ref->level << ")";
      }
      skipResolved_[path] = ref->id;
      want[ref->id] = ref->level;
    }
    if (skipWritten_ && want == *skipWritten_) {
      return;  // the first call writes: the adopted map may hold another config's cgroups
    }
    std::string error;
    bpf::NodeMaps maps(datapath_->maps());
    if (!maps.setSocketLBSkip(want, error)) {
      SY_LOG(Error) << "bpf.socketLB.skipCgroups: " << error;
      metrics_.countMapError(bpf::kPinSockSkip, "update");
      return;
    }
    skipWritten_ = want;
  }

  // bpf.socketLB.podOptOut: the cgroup of each opted-out pod, found by its UID below
  // podCgroupRoot (cached; searched again while missing, e.g. before the kubelet made it).
  void addOptedOutPods(std::map<uint64_t, uint32_t>& want) {
    std::string root = cfg_.bpf.socketLBPodCgroupRoot.empty()
                           ? (cfg_.bpf.cgroupPath.empty() ? bpf::findCgroup2Mount() : cfg_.bpf.cgroupPath)
                           : cfg_.bpf.socketLBPodCgroupRoot;
    std::map<std::string, std::string> found;  // uid -> cgroup path
    for (const bpf::OptedOutPod& p : optOut_->optedOut()) {
      std::string why;
      std::optional<bpf::CgroupRef> ref;
      auto cached = podCgroups_.find(p.uid);
      if (cached != podCgroups_.end()) {
        ref = bpf::resolveCgroup(cached->second, why);
      }
      std::string path = ref ? cached->second : "";
      if (!ref) {
        if (auto dir = bpf::findPodCgroup(root, p.uid)) {
          path = *dir;
          ref = bpf::resolveCgroup(path, why);
        } else {
          why = "no cgroup of pod UID " + p.uid + " below " + root + " (yet)";
        }
      }
      std::string said = p.pod + " " + p.why;
      if (!ref) {
        if (optOutUnresolved_.insert(said).second) {
          SY_LOG(Warning) << "bpf.socketLB.podOptOut: pod " << p.pod << " opts out by " << p.why
                          << " but " << why << " (looked for again every " << tickPeriod().count() << " ms)";
        }
        continue;
      }
      found[p.uid] = path;
      if (optOutUnresolved_.erase(said) > 0 || !podCgroups_.count(p.uid)) {
        SY_LOG(Info) << "socket LB skips pod " << p.pod << " (" << p.why << "): cgroup " << path << " (id "
                     << ref->id << ", level " << ref->level << ")";
      }
      want[ref->id] = ref->level;
    }
    for (const auto& [uid, path] : podCgroups_) {
      if (!found.count(uid)) {
        SY_LOG(Info) << "socket LB serves the pod of cgroup " << path << " again";
      }
    }
    podCgroups_ = std::move(found);
  }

  // policy.enabled (cmd/policy_sync.h): adopts the pinned policy maps, or, disabled, clears
  // pol_state_v1's flags and empties them.
  bool startPolicy(std::string& error) {
    const bpf::MapFds& m = datapath_->maps();
    PolicySyncOptions o;
    o.enabled = cfg_.policy.enabled;
    o.logDenied = cfg_.policy.logDenied;
    o.nodeName = nodeName();
    o.namesFile = policyNamesPath(cfg_.bpf.pinPath);
    o.minSyncPeriod = cfg_.minSyncPeriod;
    policy_ = std::make_unique<PolicySync>(io_, PolicySyncMaps{{m.polIpcache, m.polEndpoints, m.polRules}, m.polState},
                                           std::move(o), policyMetrics_);
    if (!policy_->start(error)) {
      error = "policy: " + error;
      return false;
    }
    SY_LOG(Info) << "NetworkPolicy " << (cfg_.policy.enabled ? "enforced" : "not enforced (policy.enabled false)");
    if (cfg_.policy.enabled && cfg_.policy.logDenied) {
      std::string why;
      deniedLog_ = DeniedFlowLog::open(io_, m.polEvents, [this](const lb::IpAddr& a) { return policy_->podAt(a); }, why);
      if (!deniedLog_) {
        SY_LOG(Warning) << "policy.logDenied: " << why << ": denied flows are counted, not logged";
      }
    }
    return true;
  }

  // clusterCIDR: traffic from these networks is in-cluster (kube-proxy's detectLocal).
  bool setLocalNets(std::string& error) {
    std::vector<lb::Cidr> nets;
    std::string rest = cfg_.clusterCIDR;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string part = rest.substr(0, comma);
      rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
      if (auto c = lb::Cidr::parse(part)) {
        nets.push_back(*c);
      }
    }
    bpf::NodeMaps maps(datapath_->maps());
    if (!maps.setLocalNets(nets, error)) {
      error = "clusterCIDR: " + error;
      return false;
    }
    return true;
  }

  // This node's links and addresses, followed through libnl: NodePort addresses
  // (nodePortAddresses) into nodeaddr_v1 and the health check listeners, pod devices by
  // pattern into tc attachments.
  bool startNetlink(std::string& error) {
    std::vector<std::string> errors;
    auto npa = netlink::NodePortAddresses::parse(cfg_.nodePortAddresses, errors);
    if (!npa) {
      error = errors.empty() ? "nodePortAddresses: invalid" : errors.front();
      return false;
    }
    nodePortAddresses_ = *npa;
    net_ = netlink::NodeNetworkWatcher::start(io_, {}, error);
    if (!net_) {
      error = "netlink: " + error;
      return false;
    }
    applyNodeNetwork(net_->current());
    net_->onChange([this](const netlink::NodeNetwork& n) {
      applyNodeNetwork(n);
      refreshDevices();
    });
    return true;
  }

  void applyNodeNetwork(const netlink::NodeNetwork& n) {
    std::map<lb::IpAddr, uint32_t> addrs;
    auto toIp = [](const netlink::IpBytes& b) {
      lb::IpAddr a;
      a.bytes = b;
      return a;
    };
    for (const netlink::Address& a : n.addresses) {
      addrs.emplace(toIp(a.ip), 0);
    }
    std::vector<std::string> selected;
    for (const netlink::IpBytes& ip : nodePortAddresses_.select(n.addresses)) {
      addrs[toIp(ip)] |= SY_NODE_ADDR_F_NODEPORT;
      selected.push_back(toIp(ip).str());
    }
    std::string error;
    bpf::NodeMaps maps(datapath_->maps());
    if (!maps.setNodeAddresses(addrs, error)) {
      SY_LOG(Error) << error;
      metrics_.countMapError(bpf::kPinNodeAddrs, "update");
    }
    if (selected != nodePortIPs_) {
      SY_LOG(Info) << "NodePort addresses: " << (selected.empty() ? std::string("none") : join(selected));
      nodePortIPs_ = selected;
      if (serviceHealth_ && !serviceHealth_->setAddresses(selected, error)) {
        SY_LOG(Warning) << "health check listeners: " << error;
      }
    }
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) {
      out += (out.empty() ? "" : ", ") + s;
    }
    return out;
  }

  void logCleanup(const bpf::CleanupReport& r) {
    for (const std::string& n : r.notes) {
      SY_LOG(Info) << n;
    }
    for (const std::string& e : r.errors) {
      SY_LOG(Warning) << e;
    }
  }

  // Attaches the tc programs to every configured device that does not have them: devices
  // that are missing now are retried on every tick (pods come and go), and a device
  // deleted and recreated under the same name (a new ifindex) gets them again, its old
  // record dropped.
  // Device names in the configuration are taken as they are (a missing one is reported and
  // retried); patterns ("veth*") match the links netlink knows now, so pods' devices get the
  // programs as they appear.
  std::vector<std::pair<std::string, bpf::TcRole>> wantedDevices() const {
    std::vector<std::pair<std::string, bpf::TcRole>> wanted;
    auto add = [&](const std::vector<std::string>& patterns, bpf::TcRole role) {
      for (const std::string& p : patterns) {
        if (p.find_first_of("*?[") == std::string::npos) {
          wanted.emplace_back(p, role);
        } else if (net_) {
          for (const netlink::Link& l : netlink::matchDevices({p}, net_->current().links)) {
            if (!l.loopback) {
              wanted.emplace_back(l.name, role);
            }
          }
        }
      }
    };
    add(cfg_.bpf.devices, bpf::TcRole::Pod);
    if (!cfg_.bpf.hostDevices.empty()) {
      add(cfg_.bpf.hostDevices, bpf::TcRole::Host);
    } else if (net_) {
      // Unset: the devices holding one of this node's NodePort addresses on a subnet (the
      // uplink, a bond, a bridge the node address lives on), but loopback and the
      // pod-facing ones. A single-address prefix (/32, /128) is the gateway address CNIs put
      // on pods' veths, not the node's network.
      const netlink::NodeNetwork& n = net_->current();
      std::vector<netlink::IpBytes> npa = nodePortAddresses_.select(n.addresses);
      for (const netlink::Link& l : n.links) {
        bool pod = std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) { return w.first == l.name; });
        bool holds = std::any_of(n.addresses.begin(), n.addresses.end(), [&](const netlink::Address& a) {
          bool subnet = a.family == AF_INET ? a.prefixLen < 32 : a.prefixLen < 128;
          return a.ifindex == l.ifindex && subnet && std::find(npa.begin(), npa.end(), a.ip) != npa.end();
        });
        if (holds && !pod && !l.loopback) {
          wanted.emplace_back(l.name, bpf::TcRole::Host);
        }
      }
    }
    return wanted;
  }

  // -- XDP fast path (issue 11 item 4) --
  // loadBalancer.denyCIDRs into the deny map (emptied when the list is).
  bool writeDenyList(std::string& error) {
    std::vector<lb::Cidr> cidrs;
    for (const std::string& s : cfg_.loadBalancer.denyCIDRs) {
      if (auto c = lb::Cidr::parse(s)) {
        cidrs.push_back(*c);
      }
    }
    if (!bpf::writeDenyCidrs(datapath_->maps().xdpDeny, cidrs, error)) {
      return false;
    }
    if (!cidrs.empty()) {
      SY_LOG(Info) << "loadBalancer.denyCIDRs: " << cidrs.size() << " prefixes dropped by XDP on host-facing devices";
    }
    return true;
  }

  // The XDP program on every host-facing device that has tc attached, in the configured
  // mode; off the devices that are no longer host-facing, and off all when disabled.
  void refreshXdp(const std::vector<std::pair<std::string, bpf::TcRole>>& wanted) {
    const std::string& acc = cfg_.loadBalancer.acceleration;
    std::set<std::string> keep;
    if (acc != "disabled") {
      bpf::XdpMode mode = acc == "native" ? bpf::XdpMode::Native : bpf::XdpMode::BestEffort;
      for (const auto& [dev, role] : wanted) {
        unsigned now = if_nametoindex(dev.c_str());
        if (role != bpf::TcRole::Host || now == 0) {
          continue;
        }
        keep.insert(dev);
        if (auto it = xdpDevices_.find(dev); it != xdpDevices_.end() && it->second == now) {
          continue;
        }
        using Status = bpf::Datapath::XdpAttachResult::Status;
        bpf::Datapath::XdpAttachResult res = datapath_->attachXdp(dev, mode);
        if (res.status == Status::Attached) {
          xdpDevices_[dev] = now;
          xdpFailedLogged_.erase(dev);
        } else {
          xdpDevices_.erase(dev);
          xdpLastError_ = res.error;
          if (xdpFailedLogged_.insert(dev).second) {
            SY_LOG(Error) << res.error << " (retrying every " << tickPeriod().count() << " ms)";
          }
        }
      }
    }
    for (const std::string& dev : datapath_->detachXdpExcept(keep)) {
      xdpDevices_.erase(dev);
    }
  }
  // -- end XDP --

  void refreshDevices() {
    std::vector<std::pair<std::string, bpf::TcRole>> wanted = wantedDevices();
    // A device a pattern matched that is gone: its filters went with it; forget the records.
    for (auto it = attachedDevices_.begin(); it != attachedDevices_.end();) {
      bool still = std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) { return w.first == it->first; });
      if (!still && if_nametoindex(it->first.c_str()) == 0) {
        SY_LOG(Info) << "device " << it->first << " (ifindex " << it->second << ") is gone: dropping its records";
        bpf::CleanupReport r;
        bpf::forgetTcIfindex(datapath_->maps().tcAttach, datapath_->mapIds(), it->second, r);
        logCleanup(r);
        it = attachedDevices_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [dev, role] : wanted) {
      unsigned now = if_nametoindex(dev.c_str());
      auto it = attachedDevices_.find(dev);
      if (it != attachedDevices_.end()) {
        if (it->second == now) {
          continue;
        }
        SY_LOG(Info) << "device " << dev << " (ifindex " << it->second << ") "
                     << (now ? "was recreated as ifindex " + std::to_string(now) : std::string("is gone"))
                     << ": dropping its tc_attach records" << (now ? " and attaching again" : "");
        bpf::CleanupReport r;
        bpf::forgetTcIfindex(datapath_->maps().tcAttach, datapath_->mapIds(), it->second, r);
        logCleanup(r);
        attachedDevices_.erase(it);
      }
      if (now == 0 && missingLogged_.count(dev)) {
        continue;  // said so already; checked again next tick
      }
      using Status = bpf::Datapath::TcAttachResult::Status;
      bpf::Datapath::TcAttachResult res = datapath_->attachTc(dev, role);
      switch (res.status) {
        case Status::Attached:
          metrics_.declareTcDevice(dev);
          attachedDevices_[dev] = res.ifindex;
          missingLogged_.erase(dev);
          refusedLogged_.erase(dev);
          break;
        case Status::Missing:
          SY_LOG(Warning) << res.error << " (retrying every " << tickPeriod().count() << " ms)";
          missingLogged_.insert(dev);
          break;
        case Status::Refused:
          // Counted every time, logged once per episode: it is retried every tick, and
          // works once the other daemon lets go of the device.
          metrics_.countTcAttachRefused(dev);
          if (refusedLogged_.insert(dev).second) {
            SY_LOG(Error) << res.error << " (retrying every " << tickPeriod().count() << " ms)";
          }
          break;
        case Status::Failed:
          SY_LOG(Warning) << res.error << " (retrying every " << tickPeriod().count() << " ms)";
          break;
      }
    }
    refreshXdp(wanted);  // after tc: what XDP passes on finds tc there
  }

  // -- Maglev (issue 11 item 3): loadBalancer.* as lb/ takes it --
  lb::LbConfig lbConfig() const {
    lb::LbConfig c;
    c.algorithm = lb::parseAlgorithm(cfg_.loadBalancer.algorithm).value_or(lb::Algorithm::Random);
    c.maglev.tableSize = cfg_.loadBalancer.maglev.tableSize;
    c.maglev.seed = cfg_.loadBalancer.maglev.hashSeed;
    return c;
  }
  // -- end Maglev --

  // This node's name, as kube-proxy finds it: hostnameOverride, else the lowercased
  // hostname. It selects the Node object whose taints feed /healthz.
  std::string nodeName() const {
    if (!cfg_.hostnameOverride.empty()) {
      return cfg_.hostnameOverride;
    }
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    std::string name = host;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return name;
  }

  bool startApiServerSource(std::string& error) {
    k8s::apiserver::ConnectionConfig connection;
    if (!k8s::apiserver::resolveConnection(cfg_.clientConnection.kubeconfig, master_,
                                           k8s::apiserver::InClusterEnvironment::fromProcess(),
                                           connection, error)) {
      error = "source apiserver: " + error;
      return false;
    }
    k8s::apiserver::ApiServerSourceOptions options;
    options.nodeName = nodeName();
    options.localPods = podOptOut();
    options.policy = cfg_.policy.enabled;
    options.qps = cfg_.clientConnection.qps;
    options.burst = cfg_.clientConnection.burst;
    options.reflector.maxEventBytes = cfg_.clientConnection.maxEventBytes;
    // The source logs every problem itself (object and field, or the failed request).
    apiserver_ = std::make_unique<k8s::apiserver::ApiServerSource>(
        io_, std::move(connection), *tap_,
        [this](const k8s::apiserver::SourceProblem& p) {
          if (p.type == k8s::apiserver::SourceProblem::Type::Decode) {
            metrics_.countSourceError("apiserver", p.kind);
          }
        },
        *metrics_.registry(), options);
    apiserver_->start();
    return true;
  }

  bool startMetrics(std::string& error) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(cfg_.metricsBindAddress);
    } catch (const std::exception& e) {
      error = "metricsBindAddress " + cfg_.metricsBindAddress + ": " + e.what();
      return false;
    }
    exposer_->RegisterCollectable(metrics_.registry());
    counters_ = std::make_shared<metrics::DatapathCounters>(datapath_->maps().counters);
    exposer_->RegisterCollectable(counters_);
    // The exposer keeps a weak_ptr: the daemon owns the collectable.
    ctMetrics_ = std::make_shared<metrics::ConntrackMetrics>(
        [gc = std::weak_ptr<bpf::CtGcRunner>(ctGc_)] { return conntrackSnapshot(gc.lock().get()); });
    exposer_->RegisterCollectable(ctMetrics_);
    SY_LOG(Info) << "metrics on http://" << cfg_.metricsBindAddress << "/metrics";
    return true;
  }

  bool startHealth(std::string& error) {
    std::string host;
    uint16_t port = 0;
    config::parseHostPort(cfg_.healthzBindAddress, host, port);
    healthServer_ = std::make_unique<metrics::HealthServer>(
        io_, health_, [this](const std::string& path, int code) {
          if (path == "/healthz") {
            metrics_.countHealthz(code);
          } else if (path == "/livez") {
            metrics_.countLivez(code);
          }
        });
    if (!healthServer_->listen(host, port, error)) {
      return false;
    }
    // healthCheckNodePort listeners of LoadBalancer services with externalTrafficPolicy
    // Local, as kube-proxy's service health server.
    serviceHealth_ = std::make_unique<metrics::ServiceHealthServer>(
        io_, [this] { return health_.healthy(std::chrono::system_clock::now()); },
        [this] { metrics_.countServiceHealthBindError(); },
        metrics::ServiceHealthServer::Options{tickPeriod()});
    if (!serviceHealth_->setAddresses(nodePortIPs_, error)) {
      SY_LOG(Warning) << "health check listeners: " << error;
    }
    SY_LOG(Info) << "healthz on http://" << cfg_.healthzBindAddress << "/healthz";
    return true;
  }

  std::chrono::milliseconds tickPeriod() const {
    return std::min<std::chrono::milliseconds>(cfg_.syncPeriod, 5000ms);
  }

  // At most one sync per minSyncPeriod; changes in between are batched into it.
  void scheduleSync() {
    if (syncArmed_) {
      return;
    }
    syncArmed_ = true;
    auto due = std::max(lastSync_ + cfg_.minSyncPeriod, retryNotBefore_);
    syncTimer_.expires_at(std::max(due, Clock::now()));
    syncTimer_.async_wait([this](const boost::system::error_code& ec) {
      syncArmed_ = false;
      if (!ec) {
        sync(false);
      }
    });
  }

  void sync(bool forceFull) {
    auto start = Clock::now();
    lb::SyncReport rep = proxier_->sync(forceFull);
    lastSync_ = Clock::now();
    if (!rep.ran) {
      if (proxier_->initialSyncDone()) {
        health_.updated(std::chrono::system_clock::now());
      }
      return;
    }
    metrics::SyncOutcome outcome;
    outcome.full = rep.full;
    outcome.seconds = std::chrono::duration<double>(lastSync_ - start).count();
    outcome.errors = rep.result.errors;
    auto wallNow = std::chrono::system_clock::now();
    double sinceEvent =
        rep.oldestChange ? std::chrono::duration<double>(lastSync_ - *rep.oldestChange).count() : -1;
    // kube-proxy measures from the EndpointSlice's last-change-trigger-time, set where the
    // change happened. Manifest files carry whatever time they were written with, so there
    // the clock starts when the change reached us.
    if (cfg_.source.kind == "apiserver" && !rep.triggerTimes.empty()) {
      for (auto t : rep.triggerTimes) {
        if (t <= wallNow) {
          outcome.changeLatencies.push_back(std::chrono::duration<double>(wallNow - t).count());
        }
      }
    } else if (rep.oldestChange) {
      outcome.changeLatencies.push_back(sinceEvent);
    }
    if (!rep.full) {
      outcome.eventLatency = sinceEvent;  // -1 (none) when this sync applied no change
    }
    metrics_.clearPendingChanges();
    if (rep.healthChanged) {
      serviceHealth_->syncServices(proxier_->healthCheckPorts());
      serviceHealth_->syncEndpoints(proxier_->localEndpoints());
    }
    syncRecorder_.synced(outcome, wallNow);
    metrics_.setProgrammed(proxier_->frontendCount(), proxier_->backendCount());
    metrics_.setMaglevTables(proxier_->maglevTableCount(), rep.result.maglevTablesWritten);
    for (const std::string& w : rep.warnings) {
      SY_LOG(Warning) << w;
      metrics_.countTranslationWarning();
    }
    for (const std::string& p : rep.result.problems) {
      SY_LOG(Warning) << p;
    }
    terminateStaleUdp(rep.result.staleUdp);
    if (rep.result.errors > 0) {
      // The repair is a forced full sync: back off (1 s doubling to 60 s) so a full map
      // does not turn into a loop of full rewrites.
      retryBackoff_ = std::min<std::chrono::milliseconds>(
          retryBackoff_.count() ? 2 * retryBackoff_ : std::chrono::milliseconds(1000), 60s);
      retryNotBefore_ = Clock::now() + retryBackoff_;
      metrics_.countSyncError();
      SY_LOG(Error) << "sync: " << rep.result.errors << " map operations failed; a full resync in "
                    << retryBackoff_.count() << " ms";
      scheduleSync();
    } else {
      retryBackoff_ = std::chrono::milliseconds(0);
      retryNotBefore_ = {};
    }
    SY_LOG_AT(rep.full ? logging::Level::Info : logging::Level::Debug)
        << (rep.full ? "full" : "partial") << " sync of " << rep.servicesSynced << " services in "
        << static_cast<long>(outcome.seconds * 1e6) << " us: " << rep.result.frontendsWritten
        << " frontends written, " << rep.result.frontendsDeleted << " deleted, "
        << rep.result.backendsWritten << " backends written, " << rep.result.backendsDeleted
        << " deleted; now " << proxier_->frontendCount() << " frontends, "
        << proxier_->backendCount() << " backends";
  }

  // --- conntrack GC (issue 11 item 5) ---
  static_assert(config::Config::kConntrackLifetimeMax.count() == SY_CT_LIFETIME_MAX * 1000ll,
                "conntrack.* may not outlive a released backend ID's quarantine");
  bpf::CtLifetimes ctLifetimes() const {
    auto ns = [](std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count()) * 1000000ull; };
    return {ns(cfg_.conntrack.tcpEstablishedTimeout), ns(cfg_.conntrack.tcpCloseWaitTimeout),
            ns(cfg_.conntrack.udpTimeout)};
  }
  // New flows refused since the last tick (tc_ct_full): a warning (at most once a minute,
  // with the sum since the last one) and a GC pass now rather than at the end of its interval.
  void watchConntrackFull() {
    metrics::DatapathCounters::Totals t;
    if (!ctGc_ || !metrics::DatapathCounters::read(datapath_->maps().counters, t)) {
      return;
    }
    uint64_t full = t.packets.at(SY_REASON_TC_CT_FULL);
    if (full <= ctFullSeen_) {
      ctFullSeen_ = full;
      return;
    }
    ctFullUnlogged_ += full - ctFullSeen_;
    ctFullSeen_ = full;
    ctGc_->kick();
    auto now = Clock::now();
    if (now - ctFullLogged_ >= std::chrono::minutes(1)) {
      auto s = ctGc_->stats();
      SY_LOG(Warning) << "conntrack " << bpf::kPinCt << " is full (" << s.entries << " of " << s.maxEntries
                      << " entries at the last GC pass): " << ctFullUnlogged_
                      << " new flows refused (reason tc_ct_full); tracked flows are unaffected; "
                         "raise bpf.mapSizes.conntrack";
      ctFullLogged_ = now;
      ctFullUnlogged_ = 0;
    }
  }
  // --- end conntrack GC ---

  void armTick() {
    tickTimer_.expires_after(tickPeriod());
    tickTimer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      refreshDevices();
      refreshSocketLBSkip();
      watchConntrackFull();
      if (Clock::now() - lastFullSync_ >= kFullResyncPeriod) {
        lastFullSync_ = Clock::now();
        sync(true);
        policy_->resync();
      } else if (proxier_->pending()) {
        scheduleSync();  // a retry after failed writes; still at most one per minSyncPeriod
      }
      armTick();
    });
  }

  const config::Config& cfg_;
  std::string master_;  // --master: overrides the kubeconfig's server
  boost::asio::io_context io_;
  metrics::ProxyMetrics metrics_;
  metrics::PolicyMetrics policyMetrics_{*metrics_.registry()};
  metrics::HealthState health_;
  std::unique_ptr<bpf::Datapath> datapath_;
  std::unique_ptr<bpf::MapWriter> writer_;
  std::unique_ptr<lb::Proxier> proxier_;
  std::unique_ptr<PolicySync> policy_;
  std::unique_ptr<DeniedFlowLog> deniedLog_;  // policy.logDenied
  std::unique_ptr<EventTap> tap_;
  std::unique_ptr<k8s::ManifestSource> files_;
  std::unique_ptr<k8s::apiserver::ApiServerSource> apiserver_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<metrics::DatapathCounters> counters_;
  std::shared_ptr<metrics::ConntrackMetrics> ctMetrics_;
  std::unique_ptr<metrics::HealthServer> healthServer_;
  std::unique_ptr<metrics::ServiceHealthServer> serviceHealth_;
  std::optional<netlink::NodeNetworkWatcher> net_;
  netlink::NodePortAddresses nodePortAddresses_;
  std::vector<std::string> nodePortIPs_;  // what nodePortAddresses selects now
  metrics::SyncRecorder syncRecorder_{metrics_, health_};
  bpf::PinPathLock pinLock_;  // held for the daemon's lifetime
  std::map<std::string, unsigned> attachedDevices_;  // device -> the ifindex attached
  std::set<std::string> missingLogged_;   // devices said to be missing, until attached
  std::set<std::string> refusedLogged_;   // devices said to be refused, until attached
  std::map<std::string, unsigned> xdpDevices_;  // XDP fast path: device -> ifindex attached
  std::set<std::string> xdpFailedLogged_;       // devices whose XDP attach failed, until attached
  std::string xdpLastError_;
  std::unique_ptr<bpf::SocketTerminator> terminator_;  // nullptr: socket LB off, or no kernel support
  std::set<std::string> skipUnresolved_;           // skipCgroups paths said to be missing
  std::map<std::string, uint64_t> skipResolved_;   // skipCgroups path -> the cgroup ID found
  std::optional<std::map<uint64_t, uint32_t>> skipWritten_;  // what sockskip_v1 holds
  std::unique_ptr<bpf::SocketLBOptOut> optOut_;              // bpf.socketLB.podOptOut
  std::map<std::string, std::string> podCgroups_;            // opted-out pod UID -> its cgroup
  std::set<std::string> optOutUnresolved_;                   // pods said to have no cgroup
  bool optOutRefreshPosted_ = false;
  boost::asio::steady_timer syncTimer_;
  boost::asio::steady_timer tickTimer_;
  boost::asio::signal_set signals_;
  bool syncArmed_ = false;
  std::chrono::milliseconds retryBackoff_{0};  // after failed map writes
  Clock::time_point retryNotBefore_{};
  Clock::time_point lastSync_{};
  Clock::time_point lastFullSync_ = Clock::now();
  // Declared last: its thread stops first, before the maps it reads close.
  std::shared_ptr<bpf::CtGcRunner> ctGc_;
  uint64_t ctFullSeen_ = 0;      // tc_ct_full as of the last tick
  uint64_t ctFullUnlogged_ = 0;  // refusals not yet in a warning
  Clock::time_point ctFullLogged_{};
};

}  // namespace

int runDaemon(const config::Config& cfg, const std::string& master) {
  Daemon d(cfg, master);
  return d.run();
}

}  // namespace switchyard::cmd
