#include "config/kube_proxy_config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "lb/types.h"

namespace switchyard::config {
namespace {

// One pass over the document: mapped fields land in the Config, the rest is warned about once.
// kube-proxy's files carry every field, most of them null or "" (kubeadm prints its defaults):
// a null or empty value of a mapped field means "not set", as kube-proxy's defaulting reads it.
class Translator {
 public:
  Translator(std::string name, Config& c, std::vector<std::string>& errors)
      : name_(std::move(name)), c_(c), errors_(errors) {}

  void run(const YAML::Node& root);

 private:
  std::string at(const YAML::Node& n) const { return name_ + ":" + std::to_string(n.Mark().line + 1) + ": "; }
  void fail(const YAML::Node& n, const std::string& field, const std::string& reason) {
    errors_.push_back(at(n) + field + ": " + reason);
  }
  // At the field's key where it has one (a block's value starts a line later).
  void warn(const YAML::Node& n, const std::string& field, const std::string& text) {
    if (!warned_.insert(field).second) {
      return;
    }
    auto key = c_.fieldLines.find(field);
    std::string where = key == c_.fieldLines.end() ? at(n) : name_ + ":" + std::to_string(key->second) + ": ";
    c_.warnings.push_back(where + field + ": " + text);
  }
  static bool unset(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }

  // Each returns true when the value was set and valid.
  bool str(const YAML::Node& n, const std::string& field, std::string& out) {
    if (unset(n)) {
      return false;
    }
    if (!n.IsScalar()) {
      fail(n, field, "must be a string");
      return false;
    }
    out = n.Scalar();
    return true;
  }
  bool nonEmpty(const YAML::Node& n, const std::string& field, std::string& out) {
    return str(n, field, out) && !out.empty();
  }
  bool boolean(const YAML::Node& n, const std::string& field, bool& out) {
    if (unset(n)) {
      return false;
    }
    std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true" || s == "True" || s == "TRUE") {
      out = true;
    } else if (s == "false" || s == "False" || s == "FALSE") {
      out = false;
    } else {
      fail(n, field, "must be true or false");
      return false;
    }
    return true;
  }
  bool number(const YAML::Node& n, const std::string& field, double& out, double min, double max, bool integer) {
    if (unset(n)) {
      return false;
    }
    std::string s = n.IsScalar() ? n.Scalar() : "";
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (!n.IsScalar() || s.empty() || *end != '\0' || n.Tag() == "!") {
      fail(n, field, "must be a number" + (n.IsScalar() ? ", got \"" + s + "\"" : std::string()));
      return false;
    }
    if (v < min || v > max) {
      std::ostringstream msg;
      msg.precision(15);
      msg << "must be between " << min << " and " << max << ", got " << s;
      fail(n, field, msg.str());
      return false;
    }
    if (integer && v != static_cast<double>(static_cast<long long>(v))) {
      fail(n, field, "must be an integer, got " + s);
      return false;
    }
    out = v;
    return true;
  }
  bool duration(const YAML::Node& n, const std::string& field, std::chrono::milliseconds& out) {
    std::string s;
    if (!nonEmpty(n, field, s)) {
      return false;
    }
    if (!parseDuration(s, out)) {
      fail(n, field, "must be a duration like 30s, 500ms or 1m0s, got \"" + s + "\"");
      return false;
    }
    return true;
  }
  // A duration where 0 means "not set": kubeadm writes `syncPeriod: 0s` and kube-proxy's
  // defaulting replaces every zero period with its default.
  bool positive(const YAML::Node& n, const std::string& field, std::chrono::milliseconds& out) {
    std::chrono::milliseconds d{};
    if (!duration(n, field, d) || d.count() == 0) {
      return false;
    }
    out = d;
    return true;
  }
  void hostPort(const YAML::Node& n, const std::string& field, std::string& out, bool& set) {
    std::string s, host;
    uint16_t port = 0;
    if (!nonEmpty(n, field, s)) {
      return;
    }
    if (!parseHostPort(s, host, port)) {
      fail(n, field, "must be IP:port (e.g. 0.0.0.0:10256 or [::]:10256), got \"" + s + "\"");
      return;
    }
    out = s;
    set = true;
  }
  bool cidrs(const YAML::Node& n, const std::string& field, const std::string& s) {
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) {
      std::string why;
      if (!lb::Cidr::parse(part, &why)) {
        fail(n, field, "\"" + part + "\": " + why);
        return false;
      }
    }
    return true;
  }

  // Walks a mapping: handlers for the keys that have one, `other` for the rest (a warning).
  using Handler = std::function<void(const YAML::Node&, const std::string&)>;
  void object(const YAML::Node& n, const std::string& prefix, const std::map<std::string, Handler>& fields,
              const std::function<void(const YAML::Node& key, const YAML::Node&, const std::string&)>& other) {
    if (unset(n)) {
      return;
    }
    if (!n.IsMap()) {
      fail(n, prefix.empty() ? "<document>" : prefix, "must be a mapping");
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      std::string field = prefix.empty() ? key : prefix + "." + key;
      if (!seen.insert(key).second) {
        fail(kv.first, field, "duplicate field");
        continue;
      }
      c_.fieldLines[field] = kv.first.Mark().line + 1;
      auto h = fields.find(key);
      if (h != fields.end()) {
        h->second(kv.second, field);
      } else {
        other(kv.first, kv.second, field);
      }
    }
  }
  // A handler that only warns: the field is kube-proxy's and has no meaning here.
  Handler ignored(const std::string& why) {
    return [this, why](const YAML::Node& n, const std::string& f) { warn(n, f, why); };
  }

  // The syncPeriod and minSyncPeriod of a mode block (iptables, ipvs, nftables).
  struct Periods {
    std::chrono::milliseconds sync{0}, minSync{0};
    bool syncSet = false, minSyncSet = false;
    YAML::Node syncAt, minSyncAt;
  };
  void modeBlock(const YAML::Node& n, const std::string& f, Periods& p) {
    warn(n, f, "not applicable (switchyard programs its own eBPF dataplane); only its syncPeriod and "
               "minSyncPeriod are used, for the mode in `mode`, when the top level sets none");
    object(n, f, {
      {"syncPeriod", [&](const YAML::Node& v, const std::string& vf) { p.syncSet = positive(v, vf, p.sync); p.syncAt = v; }},
      {"minSyncPeriod", [&](const YAML::Node& v, const std::string& vf) { p.minSyncSet = positive(v, vf, p.minSync); p.minSyncAt = v; }},
    }, [](const YAML::Node&, const YAML::Node&, const std::string&) {});
  }

  std::string name_;
  Config& c_;
  std::vector<std::string>& errors_;
  std::set<std::string> warned_;
};

void Translator::run(const YAML::Node& root) {
  std::string mode, bindAddress;
  bool healthzSet = false, metricsSet = false, topSync = false, topMinSync = false;
  std::map<std::string, Periods> blocks;  // by mode name
  std::vector<std::pair<std::string, YAML::Node>> nodePortEntries;  // (entry, node), checked at the end
  YAML::Node nodePortAt;
  const std::string conntrackNote =
      "accepted, not applied: switchyard's conntrack is its own BPF map (bpf.mapSizes.conntrack), "
      "not the kernel's nf_conntrack";
  const std::string timeoutNote =
      "accepted, not applied: this switchyard has no configurable conntrack lifetimes yet";

  object(root, "", {
    {"apiVersion", [&](const YAML::Node& n, const std::string& f) {
       std::string v;
       if (str(n, f, v) && v != kKubeProxyApiVersion) {
         if (v.rfind("kubeproxy.config.k8s.io/", 0) == 0) {
           warn(n, f, "\"" + v + "\" read with " + kKubeProxyApiVersion + "'s field names");
         } else {
           fail(n, f, std::string("must be ") + kKubeProxyApiVersion + " for kind KubeProxyConfiguration, got \"" + v + "\"");
         }
       }
     }},
    {"kind", [&](const YAML::Node&, const std::string&) {}},
    {"hostnameOverride", [&](const YAML::Node& n, const std::string& f) { nonEmpty(n, f, c_.hostnameOverride); }},
    {"bindAddress", [&](const YAML::Node& n, const std::string& f) {
       std::string v;
       unsigned char buf[16];
       if (nonEmpty(n, f, v)) {
         if (inet_pton(AF_INET, v.c_str(), buf) != 1 && inet_pton(AF_INET6, v.c_str(), buf) != 1) {
           fail(n, f, "must be an IP address, got \"" + v + "\"");
         } else {
           bindAddress = v;
         }
       }
     }},
    {"healthzBindAddress", [&](const YAML::Node& n, const std::string& f) { hostPort(n, f, c_.healthzBindAddress, healthzSet); }},
    {"metricsBindAddress", [&](const YAML::Node& n, const std::string& f) { hostPort(n, f, c_.metricsBindAddress, metricsSet); }},
    {"bindAddressHardFail", [&](const YAML::Node& n, const std::string& f) {
       bool v = false;
       if (boolean(n, f, v) && !v) {
         warn(n, f, "false is not supported: switchyard always exits when it cannot listen on "
                    "healthzBindAddress or metricsBindAddress (as with true)");
       }
     }},
    {"clientConnection", [&](const YAML::Node& n, const std::string& f) {
       object(n, f, {
         {"kubeconfig", [&](const YAML::Node& v, const std::string& vf) { nonEmpty(v, vf, c_.clientConnection.kubeconfig); }},
         {"qps", [&](const YAML::Node& v, const std::string& vf) {
            double d = 0;
            if (number(v, vf, d, 0, 1e6, false) && d > 0) {  // 0: kube-proxy's default
              c_.clientConnection.qps = d;
            }
          }},
         {"burst", [&](const YAML::Node& v, const std::string& vf) {
            double d = 0;
            if (number(v, vf, d, 0, 1e6, true) && d > 0) {
              c_.clientConnection.burst = static_cast<int>(d);
            }
          }},
         {"contentType", [&](const YAML::Node& v, const std::string& vf) {
            std::string s;
            if (str(v, vf, s)) {
              warn(v, vf, "accepted, ignored: switchyard always asks the API server for JSON");
            }
          }},
         {"acceptContentTypes", [&](const YAML::Node& v, const std::string& vf) {
            std::string s;
            if (str(v, vf, s)) {
              warn(v, vf, "accepted, ignored: switchyard always asks the API server for JSON");
            }
          }},
       }, [&](const YAML::Node& k, const YAML::Node&, const std::string& vf) { warn(k, vf, "unknown field, ignored"); });
     }},
    {"logging", [&](const YAML::Node& n, const std::string& f) {
       object(n, f, {
         {"verbosity", [&](const YAML::Node& v, const std::string& vf) {
            double d = 0;
            if (number(v, vf, d, 0, 2147483647, true)) {
              c_.verbosity = static_cast<int>(d);
            }
          }},
         {"format", [&](const YAML::Node& v, const std::string& vf) {
            std::string s;
            if (nonEmpty(v, vf, s) && s != "text") {
              warn(v, vf, "\"" + s + "\" is not supported: switchyard logs text");
            }
          }},
       }, [&](const YAML::Node& k, const YAML::Node&, const std::string& vf) {
         warn(k, vf, "accepted, not applied: switchyard's logging takes only verbosity");
       });
     }},
    {"clusterCIDR", [&](const YAML::Node& n, const std::string& f) {
       std::string v;
       if (nonEmpty(n, f, v) && cidrs(n, f, v)) {
         c_.clusterCIDR = v;
       }
     }},
    {"detectLocalMode", [&](const YAML::Node& n, const std::string& f) {
       std::string v;
       if (!nonEmpty(n, f, v) || v == "ClusterCIDR") {
         return;
       }
       if (v == "NodeCIDR" || v == "BridgeInterface" || v == "InterfaceNamePrefix") {
         warn(n, f, v + " is not supported: switchyard tells in-cluster traffic by clusterCIDR only "
                    "(the ClusterCIDR mode); set clusterCIDR to the pods' range");
       } else {
         fail(n, f, "must be ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix, got \"" + v + "\"");
       }
     }},
    {"detectLocal", [&](const YAML::Node& n, const std::string& f) {
       object(n, f, {
         {"bridgeInterface", [&](const YAML::Node& v, const std::string& vf) {
            std::string s;
            if (nonEmpty(v, vf, s)) {
              warn(v, vf, "not supported (detectLocalMode BridgeInterface): switchyard uses clusterCIDR");
            }
          }},
         {"interfaceNamePrefix", [&](const YAML::Node& v, const std::string& vf) {
            std::string s;
            if (nonEmpty(v, vf, s)) {
              warn(v, vf, "not supported (detectLocalMode InterfaceNamePrefix): switchyard uses clusterCIDR");
            }
          }},
       }, [&](const YAML::Node& k, const YAML::Node&, const std::string& vf) { warn(k, vf, "unknown field, ignored"); });
     }},
    {"nodePortAddresses", [&](const YAML::Node& n, const std::string& f) {
       if (unset(n)) {
         return;
       }
       if (!n.IsSequence()) {
         fail(n, f, "must be a list of CIDRs or the keywords primary, all, localhost");
         return;
       }
       nodePortAt = n;
       for (size_t i = 0; i < n.size(); ++i) {
         std::string item = f + "[" + std::to_string(i) + "]", v;
         if (!n[i].IsScalar()) {
           fail(n[i], item, "must be a string");
         } else if (str(n[i], item, v)) {
           nodePortEntries.emplace_back(v, n[i]);
         }
       }
     }},
    {"syncPeriod", [&](const YAML::Node& n, const std::string& f) { topSync = positive(n, f, c_.syncPeriod); }},
    {"minSyncPeriod", [&](const YAML::Node& n, const std::string& f) { topMinSync = positive(n, f, c_.minSyncPeriod); }},
    {"mode", [&](const YAML::Node& n, const std::string& f) {
       str(n, f, mode);
       warn(n, f, "\"" + mode + "\" accepted: switchyard programs its own eBPF dataplane whatever the mode");
     }},
    {"iptables", [&](const YAML::Node& n, const std::string& f) { modeBlock(n, f, blocks["iptables"]); }},
    {"ipvs", [&](const YAML::Node& n, const std::string& f) { modeBlock(n, f, blocks["ipvs"]); }},
    {"nftables", [&](const YAML::Node& n, const std::string& f) { modeBlock(n, f, blocks["nftables"]); }},
    {"winkernel", ignored("not applicable (Windows only)")},
    {"windowsRunAsService", ignored("not applicable (Windows only)")},
    {"conntrack", [&](const YAML::Node& n, const std::string& f) {
       object(n, f, {
         {"maxPerCore", ignored(conntrackNote)},
         {"min", ignored(conntrackNote)},
         {"max", ignored(conntrackNote)},
         {"tcpBeLiberal", ignored(conntrackNote)},
         // kube-proxy's names of the lifetimes switchyard's conntrack will take: checked as
         // durations already, so a file that loads today still loads once they are applied.
         {"tcpEstablishedTimeout", [&](const YAML::Node& v, const std::string& vf) {
            std::chrono::milliseconds d{};
            duration(v, vf, d);
            warn(v, vf, timeoutNote);
          }},
         {"tcpCloseWaitTimeout", [&](const YAML::Node& v, const std::string& vf) {
            std::chrono::milliseconds d{};
            duration(v, vf, d);
            warn(v, vf, timeoutNote);
          }},
         {"udpTimeout", [&](const YAML::Node& v, const std::string& vf) {
            std::chrono::milliseconds d{};
            duration(v, vf, d);
            warn(v, vf, timeoutNote);
          }},
         {"udpStreamTimeout", [&](const YAML::Node& v, const std::string& vf) {
            std::chrono::milliseconds d{};
            duration(v, vf, d);
            warn(v, vf, timeoutNote);
          }},
       }, [&](const YAML::Node& k, const YAML::Node&, const std::string& vf) { warn(k, vf, "unknown field, ignored"); });
     }},
    {"featureGates", [&](const YAML::Node& n, const std::string& f) {
       std::string gates;
       if (n.IsMap()) {
         for (const auto& kv : n) {
           gates += (gates.empty() ? " (" : ", ") + kv.first.Scalar() + "=" + (kv.second.IsScalar() ? kv.second.Scalar() : "?");
         }
         gates += gates.empty() ? "" : ")";
       }
       warn(n, f, "accepted, not applied: switchyard has none of kube-proxy's feature gates" + gates);
     }},
    {"configSyncPeriod", ignored("accepted, not applied: switchyard's watches need no informer resync "
                                 "(syncPeriod is its full reconcile)")},
    {"oomScoreAdj", ignored("accepted, not applied: set the pod's priority and resources instead")},
    {"portRange", ignored("accepted, ignored (the userspace proxy's, unused by kube-proxy too)")},
    {"udpIdleTimeout", ignored("accepted, ignored (the userspace proxy's, removed from kube-proxy)")},
    {"showHiddenMetricsForVersion", ignored("accepted, not applied: switchyard has no hidden metrics")},
    {"enableProfiling", ignored("accepted, not applied: switchyard serves no /debug/pprof")},
  }, [&](const YAML::Node& k, const YAML::Node&, const std::string& f) {
    warn(k, f, "not a KubeProxyConfiguration field switchyard knows; ignored");
  });

  // Older releases have syncPeriod and minSyncPeriod only in the mode's block; the top level
  // (newer releases) wins. kube-proxy's default mode on Linux is iptables.
  auto block = blocks.find(mode.empty() ? "iptables" : mode);
  if (block != blocks.end()) {
    if (!topSync && block->second.syncSet) {
      c_.syncPeriod = block->second.sync;
      c_.fieldLines["syncPeriod"] = block->second.syncAt.Mark().line + 1;
    }
    if (!topMinSync && block->second.minSyncSet) {
      c_.minSyncPeriod = block->second.minSync;
      c_.fieldLines["minSyncPeriod"] = block->second.minSyncAt.Mark().line + 1;
    }
  }
  // kube-proxy's default bind addresses follow bindAddress's family.
  bool v6 = bindAddress.find(':') != std::string::npos;
  if (v6 && !healthzSet) {
    c_.healthzBindAddress = "[::]:10256";
  }
  if (v6 && !metricsSet) {
    c_.metricsBindAddress = "[::1]:10249";
  }

  // nodePortAddresses: CIDRs as ours; `all` is our empty list (every address of the node);
  // `primary` (newer releases: the Node's primary addresses) is bindAddress when that names
  // one, else every address, with a warning; `localhost` is not served by the eBPF datapath.
  bool all = false;
  std::vector<std::string> list;
  for (size_t i = 0; i < nodePortEntries.size(); ++i) {
    const auto& [v, n] = nodePortEntries[i];
    std::string item = "nodePortAddresses[" + std::to_string(i) + "]";
    if (v == "all") {
      all = true;
    } else if (v == "primary") {
      if (!bindAddress.empty() && bindAddress != "0.0.0.0" && bindAddress != "::") {
        list.push_back(bindAddress + (v6 ? "/128" : "/32"));
      } else {
        all = true;
        warn(n, item, "primary: the Node's primary address is taken from bindAddress, which is not set; "
                      "NodePorts are served on every address of the node");
      }
    } else if (v == "localhost") {
      warn(n, item, "localhost is not supported: switchyard does not serve NodePorts on loopback");
    } else if (v.find(',') != std::string::npos) {
      fail(n, item, "must be one CIDR, got \"" + v + "\"");
    } else if (cidrs(n, item, v)) {
      list.push_back(v);
    }
  }
  c_.nodePortAddresses = all ? std::vector<std::string>{} : list;
  if (!nodePortEntries.empty() && !all && list.empty() && nodePortAt.IsDefined()) {
    // Only `localhost`: kube-proxy would serve loopback only; serving every address instead
    // would open NodePorts the operator closed.
    fail(nodePortAt, "nodePortAddresses", "names no address switchyard can serve NodePorts on");
  }
}

}  // namespace

bool isKubeProxyConfiguration(const YAML::Node& root) {
  if (!root.IsMap()) {
    return false;
  }
  YAML::Node kind = root["kind"];
  return kind.IsDefined() && kind.IsScalar() && kind.Scalar() == kKubeProxyKind;
}

bool translateKubeProxyConfiguration(const YAML::Node& root, const std::string& name, Config& out,
                                     std::vector<std::string>& errors) {
  size_t before = errors.size();
  out.fieldLines.clear();
  out.warnings.clear();
  Translator(name, out, errors).run(root);
  return errors.size() == before;
}

}  // namespace switchyard::config
