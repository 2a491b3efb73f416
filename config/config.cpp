#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "config/kube_proxy_config.h"
#include "lb/maglev.h"
#include "lb/types.h"

namespace switchyard::config {
namespace {

constexpr unsigned long kCgroup2SuperMagic = 0x63677270;  // CGROUP2_SUPER_MAGIC, linux/magic.h

class Parser {
 public:
  Parser(std::string name, std::vector<std::string>& errors, std::map<std::string, int>& lines)
      : name_(std::move(name)), errors_(errors), lines_(lines) {}

  void fail(const YAML::Node& at, const std::string& field, const std::string& reason) {
    errors_.push_back(name_ + ":" + std::to_string(at.Mark().line + 1) + ": " + field + ": " + reason);
  }

  bool str(const YAML::Node& n, const std::string& field, std::string& out) {
    if (!n.IsScalar()) {
      fail(n, field, "must be a string");
      return false;
    }
    out = n.Scalar();
    return true;
  }

  void boolean(const YAML::Node& n, const std::string& field, bool& out) {
    std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true" || s == "True" || s == "TRUE") {
      out = true;
    } else if (s == "false" || s == "False" || s == "FALSE") {
      out = false;
    } else {
      fail(n, field, "must be true or false");
    }
  }

  template <typename T>
  void number(const YAML::Node& n, const std::string& field, T& out, double min, double max) {
    if (!n.IsScalar()) {
      fail(n, field, "must be a number");
      return;
    }
    const std::string& s = n.Scalar();
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || n.Tag() == "!") {
      fail(n, field, "must be a number, got \"" + s + "\"");
      return;
    }
    if (v < min || v > max) {
      std::ostringstream msg;
      msg.precision(15);
      msg << "must be between " << min << " and " << max << ", got " << s;
      fail(n, field, msg.str());
      return;
    }
    if constexpr (std::is_integral_v<T>) {
      if (v != static_cast<double>(static_cast<long long>(v))) {
        fail(n, field, "must be an integer, got " + s);
        return;
      }
    }
    out = static_cast<T>(v);
  }

  void duration(const YAML::Node& n, const std::string& field, std::chrono::milliseconds& out) {
    std::string s;
    if (str(n, field, s) && !parseDuration(s, out)) {
      fail(n, field, "must be a duration like 30s, 500ms or 1m, got \"" + s + "\"");
    }
  }

  void hostPort(const YAML::Node& n, const std::string& field, std::string& out) {
    std::string s, host;
    uint16_t port = 0;
    if (!str(n, field, s)) {
      return;
    }
    if (!parseHostPort(s, host, port)) {
      fail(n, field, "must be IP:port (e.g. 127.0.0.1:10249 or [::1]:10249), got \"" + s + "\"");
      return;
    }
    out = s;
  }

  void cidr(const YAML::Node& n, const std::string& field, std::string& out) {
    std::string s;
    if (str(n, field, s) && cidrText(n, field, s)) {
      out = s;
    }
  }

  // Checks CIDR text (comma-separated for dual-stack); reports at n.
  bool cidrText(const YAML::Node& n, const std::string& field, const std::string& s) {
    for (const std::string& part : split(s, ',')) {
      std::string why;
      if (!lb::Cidr::parse(part, &why)) {
        fail(n, field, "\"" + part + "\": " + why);
        return false;
      }
    }
    return true;
  }

  // Device names or shell patterns ("veth*") of 1 to 15 characters.
  void deviceList(const YAML::Node& n, const std::string& field, std::vector<std::string>& out) {
    strList(n, field, out);
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i].empty() || out[i].size() > 15 || out[i].find('/') != std::string::npos) {
        fail(n, field + "[" + std::to_string(i) + "]", "must be a device name or pattern of 1 to 15 characters");
      }
    }
  }

  void strList(const YAML::Node& n, const std::string& field, std::vector<std::string>& out) {
    if (!n.IsSequence()) {
      fail(n, field, "must be a list of strings");
      return;
    }
    out.clear();
    for (size_t i = 0; i < n.size(); ++i) {
      std::string s;
      if (str(n[i], field + "[" + std::to_string(i) + "]", s)) {
        out.push_back(s);
      }
    }
  }

  // Calls the handler of each key; unknown keys are errors, as kube-proxy's strict decoding.
  using Handler = std::function<void(const YAML::Node&, const std::string&)>;
  void object(const YAML::Node& n, const std::string& prefix,
              const std::map<std::string, Handler>& fields) {
    if (!n.IsMap()) {
      fail(n, prefix.empty() ? "<document>" : prefix, "must be a mapping");
      return;
    }
    // yaml-cpp keeps both entries of a repeated key; kube-proxy's strict decoding rejects
    // them, and silently merging two `bpf:` blocks would hide a mistake.
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      std::string field = prefix.empty() ? key : prefix + "." + key;
      if (!seen.insert(key).second) {
        fail(kv.first, field, "duplicate field");
        continue;
      }
      lines_[field] = kv.first.Mark().line + 1;
      auto h = fields.find(key);
      if (h == fields.end()) {
        fail(kv.first, field, "unknown field");
        continue;
      }
      h->second(kv.second, field);
    }
  }

  static std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep)) {
      out.push_back(item);
    }
    return out;
  }

 private:
  std::string name_;
  std::vector<std::string>& errors_;
  std::map<std::string, int>& lines_;  // field path -> line of its key
};

}  // namespace

bool parseDuration(const std::string& s, std::chrono::milliseconds& out) {
  if (s.empty()) {
    return false;
  }
  if (s == "0") {
    out = std::chrono::milliseconds(0);
    return true;
  }
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
      ++i;
    }
    if (start == i) {
      return false;
    }
    double v = std::strtod(s.substr(start, i - start).c_str(), nullptr);
    size_t ustart = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) {
      ++i;
    }
    std::string unit = s.substr(ustart, i - ustart);
    if (unit == "ms") {
      total += v;
    } else if (unit == "s") {
      total += v * 1000;
    } else if (unit == "m") {
      total += v * 60000;
    } else if (unit == "h") {
      total += v * 3600000;
    } else {
      return false;
    }
  }
  out = std::chrono::milliseconds(static_cast<long long>(total));
  return true;
}

bool parseHostPort(const std::string& s, std::string& host, uint16_t& port) {
  std::string portText;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return false;
    }
    host = s.substr(1, close - 1);
    portText = s.substr(close + 2);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host.c_str(), buf) != 1) {
      return false;
    }
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) {
      return false;
    }
    host = s.substr(0, colon);
    portText = s.substr(colon + 1);
    unsigned char buf[4];
    if (inet_pton(AF_INET, host.c_str(), buf) != 1) {
      return false;
    }
  }
  if (portText.empty() || portText.size() > 5 ||
      portText.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  unsigned long p = std::strtoul(portText.c_str(), nullptr, 10);
  if (p > 65535) {
    return false;
  }
  port = static_cast<uint16_t>(p);
  return true;
}

bool parseConfig(const std::string& text, const std::string& name, Config& c,
                 std::vector<std::string>& errors) {
  size_t before = errors.size();
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errors.push_back(name + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    return false;
  }
  if (!root.IsDefined() || root.IsNull()) {
    errors.push_back(name + ":1: <document>: empty configuration");
    return false;
  }
  if (isKubeProxyConfiguration(root)) {
    return translateKubeProxyConfiguration(root, name, c, errors);
  }
  c.fieldLines.clear();
  c.warnings.clear();
  Parser p(name, errors, c.fieldLines);
  bool sawApiVersion = false, sawKind = false;
  auto u32 = [&p](uint32_t& dst) {
    return [&p, &dst](const YAML::Node& n, const std::string& f) { p.number(n, f, dst, 1, 1 << 30); };
  };
  p.object(root, "", {
    {"apiVersion", [&](const YAML::Node& n, const std::string& f) {
       std::string v;
       sawApiVersion = true;
       if (p.str(n, f, v) && v != kApiVersion) {
         p.fail(n, f, std::string("must be ") + kApiVersion + ", got \"" + v + "\"");
       }
     }},
    {"kind", [&](const YAML::Node& n, const std::string& f) {
       std::string v;
       sawKind = true;
       if (p.str(n, f, v) && v != kKind) {
         p.fail(n, f, std::string("must be ") + kKind + ", got \"" + v + "\"");
       }
     }},
    {"hostnameOverride", [&](const YAML::Node& n, const std::string& f) { p.str(n, f, c.hostnameOverride); }},
    {"healthzBindAddress", [&](const YAML::Node& n, const std::string& f) { p.hostPort(n, f, c.healthzBindAddress); }},
    {"metricsBindAddress", [&](const YAML::Node& n, const std::string& f) { p.hostPort(n, f, c.metricsBindAddress); }},
    {"clusterCIDR", [&](const YAML::Node& n, const std::string& f) { p.cidr(n, f, c.clusterCIDR); }},
    {"nodePortAddresses", [&](const YAML::Node& n, const std::string& f) {
       p.strList(n, f, c.nodePortAddresses);
       for (size_t i = 0; i < c.nodePortAddresses.size(); ++i) {
         std::string item = f + "[" + std::to_string(i) + "]";
         if (c.nodePortAddresses[i].find(',') != std::string::npos) {
           p.fail(n, item, "must be one CIDR, got \"" + c.nodePortAddresses[i] + "\"");
         } else {
           p.cidrText(n, item, c.nodePortAddresses[i]);
         }
       }
     }},
    {"syncPeriod", [&](const YAML::Node& n, const std::string& f) { p.duration(n, f, c.syncPeriod); }},
    {"minSyncPeriod", [&](const YAML::Node& n, const std::string& f) { p.duration(n, f, c.minSyncPeriod); }},
    {"logging", [&](const YAML::Node& n, const std::string& f) {
       p.object(n, f, {{"verbosity", [&](const YAML::Node& v, const std::string& vf) { p.number(v, vf, c.verbosity, 0, 10); }}});
     }},
    {"source", [&](const YAML::Node& n, const std::string& f) {
       p.object(n, f, {
         {"kind", [&](const YAML::Node& v, const std::string& vf) {
            if (p.str(v, vf, c.source.kind) && c.source.kind != "files" && c.source.kind != "apiserver") {
              p.fail(v, vf, "must be files or apiserver, got \"" + c.source.kind + "\"");
            }
          }},
         {"path", [&](const YAML::Node& v, const std::string& vf) { p.str(v, vf, c.source.path); }},
         {"pollInterval", [&](const YAML::Node& v, const std::string& vf) { p.duration(v, vf, c.source.pollInterval); }},
       });
     }},
    {"clientConnection", [&](const YAML::Node& n, const std::string& f) {
       p.object(n, f, {
         {"kubeconfig", [&](const YAML::Node& v, const std::string& vf) { p.str(v, vf, c.clientConnection.kubeconfig); }},
         {"qps", [&](const YAML::Node& v, const std::string& vf) { p.number(v, vf, c.clientConnection.qps, 0, 1e6); }},
         {"burst", [&](const YAML::Node& v, const std::string& vf) { p.number(v, vf, c.clientConnection.burst, 0, 1e6); }},
         // From 2 MiB, above etcd's default object limit (1.5 MiB) and an event's wrapper,
         // so no object the API server stores is refused; up to 1 GiB.
         {"maxEventBytes", [&](const YAML::Node& v, const std::string& vf) {
            p.number(v, vf, c.clientConnection.maxEventBytes, 2 << 20, 1 << 30);
          }},
         {"contentType", [&](const YAML::Node& v, const std::string& vf) { std::string s; p.str(v, vf, s); }},
         {"acceptContentTypes", [&](const YAML::Node& v, const std::string& vf) { std::string s; p.str(v, vf, s); }},
       });
     }},
    // --- conntrack GC (issue 11 item 5) ---
    {"conntrack", [&](const YAML::Node& n, const std::string& f) {
       auto lifetime = [&](std::chrono::milliseconds& dst, std::chrono::milliseconds dflt) {
         return [&p, &dst, dflt](const YAML::Node& v, const std::string& vf) {
           std::chrono::milliseconds d{-1};
           p.duration(v, vf, d);
           if (d.count() < 0) {
             return;  // not a duration: reported
           }
           if (d.count() == 0) {
             dst = dflt;
           } else if (d < std::chrono::seconds(1) || d > Config::kConntrackLifetimeMax) {
             p.fail(v, vf, "must be from 1s to 6h (0: the default), got \"" + v.Scalar() + "\"");
           } else {
             dst = d;
           }
         };
       };
       const Config::Conntrack dflt;
       p.object(n, f, {
         {"tcpEstablishedTimeout", lifetime(c.conntrack.tcpEstablishedTimeout, dflt.tcpEstablishedTimeout)},
         {"tcpCloseWaitTimeout", lifetime(c.conntrack.tcpCloseWaitTimeout, dflt.tcpCloseWaitTimeout)},
         {"udpTimeout", lifetime(c.conntrack.udpTimeout, dflt.udpTimeout)},
       });
     }},
    // --- end conntrack GC ---
    {"loadBalancer", [&](const YAML::Node& n, const std::string& f) {
       YAML::Node denyNode;  // XDP fast path: where denyCIDRs was set, for the check below
       p.object(n, f, {
         {"mode", [&](const YAML::Node& v, const std::string& vf) {
            if (p.str(v, vf, c.loadBalancer.mode) && c.loadBalancer.mode != "snat" &&
                c.loadBalancer.mode != "dsr" && c.loadBalancer.mode != "hybrid") {
              p.fail(v, vf, "must be snat, dsr or hybrid, got \"" + c.loadBalancer.mode + "\"");
            }
          }},
         {"dsrDispatch", [&](const YAML::Node& v, const std::string& vf) {
            if (p.str(v, vf, c.loadBalancer.dsrDispatch) && c.loadBalancer.dsrDispatch != "opt" &&
                c.loadBalancer.dsrDispatch != "ipip") {
              p.fail(v, vf, "must be opt or ipip, got \"" + c.loadBalancer.dsrDispatch + "\"");
            }
          }},
         // -- Maglev (issue 11 item 3) --
         {"algorithm", [&](const YAML::Node& v, const std::string& vf) {
            if (p.str(v, vf, c.loadBalancer.algorithm) && c.loadBalancer.algorithm != "random" &&
                c.loadBalancer.algorithm != "maglev") {
              p.fail(v, vf, "must be random or maglev, got \"" + c.loadBalancer.algorithm + "\"");
            }
          }},
         {"maglev", [&](const YAML::Node& v, const std::string& vf) {
            p.object(v, vf, {
              {"tableSize", [&](const YAML::Node& t, const std::string& tf) {
                 uint32_t m = 0;
                 p.number(t, tf, m, 1, 4294967295.0);
                 if (m == 0) {
                   return;  // not a number: reported
                 }
                 if (!lb::isPrime(m) || m < lb::kMaglevTableSizeMin || m > lb::kMaglevTableSizeMax) {
                   p.fail(t, tf, "must be a prime between " + std::to_string(lb::kMaglevTableSizeMin) + " and " +
                                     std::to_string(lb::kMaglevTableSizeMax) +
                                     " (e.g. 251, 1021, 4093, 16381, 65521; at least 100 times the most backends "
                                     "a service has), got " + t.Scalar());
                   return;
                 }
                 c.loadBalancer.maglev.tableSize = m;
               }},
              {"hashSeed", [&](const YAML::Node& t, const std::string& tf) {
                 p.number(t, tf, c.loadBalancer.maglev.hashSeed, 0, 4294967295.0);
               }},
            });
          }},
         // -- end Maglev --
         // -- XDP fast path (issue 11 item 4) --
         {"acceleration", [&](const YAML::Node& v, const std::string& vf) {
            if (p.str(v, vf, c.loadBalancer.acceleration) && c.loadBalancer.acceleration != "disabled" &&
                c.loadBalancer.acceleration != "native" && c.loadBalancer.acceleration != "best-effort") {
              p.fail(v, vf, "must be disabled, native or best-effort, got \"" + c.loadBalancer.acceleration + "\"");
            }
          }},
         {"denyCIDRs", [&](const YAML::Node& v, const std::string& vf) {
            denyNode = v;
            p.strList(v, vf, c.loadBalancer.denyCIDRs);
            for (size_t i = 0; i < c.loadBalancer.denyCIDRs.size(); ++i) {
              std::string item = vf + "[" + std::to_string(i) + "]";
              if (c.loadBalancer.denyCIDRs[i].find(',') != std::string::npos) {
                p.fail(v, item, "must be one CIDR, got \"" + c.loadBalancer.denyCIDRs[i] + "\"");
              } else {
                p.cidrText(v, item, c.loadBalancer.denyCIDRs[i]);
              }
            }
          }},
         // -- end XDP --
       });
       if (!c.loadBalancer.denyCIDRs.empty() && c.loadBalancer.acceleration == "disabled") {
         p.fail(denyNode, f + ".denyCIDRs",
                "needs loadBalancer.acceleration native or best-effort (the list is enforced by the XDP program)");
       }
     }},
    {"policy", [&](const YAML::Node& n, const std::string& f) {
       p.object(n, f, {
         {"enabled", [&](const YAML::Node& v, const std::string& vf) { p.boolean(v, vf, c.policy.enabled); }},
         {"logDenied", [&](const YAML::Node& v, const std::string& vf) { p.boolean(v, vf, c.policy.logDenied); }},
       });
     }},
    {"bpf", [&](const YAML::Node& n, const std::string& f) {
       p.object(n, f, {
         {"pinPath", [&](const YAML::Node& v, const std::string& vf) {
            if (p.str(v, vf, c.bpf.pinPath) && (c.bpf.pinPath.empty() || c.bpf.pinPath[0] != '/')) {
              p.fail(v, vf, "must be an absolute path");
            }
          }},
         {"cgroupPath", [&](const YAML::Node& v, const std::string& vf) {
            if (p.str(v, vf, c.bpf.cgroupPath) && !c.bpf.cgroupPath.empty() && c.bpf.cgroupPath[0] != '/') {
              p.fail(v, vf, "must be an absolute path");
            }
          }},
         // true | false, or {enabled, skipCgroups}: the cgroups whose sockets keep the
         // ClusterIP (the tc programs translate their packets instead).
         {"socketLB", [&](const YAML::Node& v, const std::string& vf) {
            if (!v.IsMap()) {
              p.boolean(v, vf, c.bpf.socketLB);
              return;
            }
            p.object(v, vf, {
              {"enabled", [&](const YAML::Node& e, const std::string& ef) { p.boolean(e, ef, c.bpf.socketLB); }},
              {"skipCgroups", [&](const YAML::Node& s, const std::string& sf) {
                 p.strList(s, sf, c.bpf.socketLBSkipCgroups);
                 for (size_t i = 0; i < c.bpf.socketLBSkipCgroups.size(); ++i) {
                   const std::string& path = c.bpf.socketLBSkipCgroups[i];
                   if (path.empty() || path[0] != '/') {
                     p.fail(s[i], sf + "[" + std::to_string(i) + "]", "must be an absolute path, got \"" + path + "\"");
                   }
                 }
               }},
              {"podOptOut", [&](const YAML::Node& e, const std::string& ef) { p.boolean(e, ef, c.bpf.socketLBPodOptOut); }},
              {"podCgroupRoot", [&](const YAML::Node& e, const std::string& ef) {
                 if (p.str(e, ef, c.bpf.socketLBPodCgroupRoot) && !c.bpf.socketLBPodCgroupRoot.empty() &&
                     c.bpf.socketLBPodCgroupRoot[0] != '/') {
                   p.fail(e, ef, "must be an absolute path, got \"" + c.bpf.socketLBPodCgroupRoot + "\"");
                 }
               }},
            });
          }},
         {"devices", [&](const YAML::Node& v, const std::string& vf) { p.deviceList(v, vf, c.bpf.devices); }},
         {"hostDevices", [&](const YAML::Node& v, const std::string& vf) { p.deviceList(v, vf, c.bpf.hostDevices); }},
         {"mapSizes", [&](const YAML::Node& v, const std::string& vf) {
            p.object(v, vf, {
              {"services", u32(c.bpf.mapSizes.services)},
              {"backends", u32(c.bpf.mapSizes.backends)},
              {"revNat", u32(c.bpf.mapSizes.revNat)},
              {"conntrack", u32(c.bpf.mapSizes.conntrack)},
              {"sockRevNat", u32(c.bpf.mapSizes.sockRevNat)},
              {"affinity", u32(c.bpf.mapSizes.affinity)},
              {"sourceRanges", u32(c.bpf.mapSizes.sourceRanges)},
              {"maglev", u32(c.bpf.mapSizes.maglev)},
            });
          }},
       });
     }},
  });
  for (size_t i = 0; i < c.bpf.hostDevices.size(); ++i) {
    if (std::find(c.bpf.devices.begin(), c.bpf.devices.end(), c.bpf.hostDevices[i]) != c.bpf.devices.end()) {
      std::string f = "bpf.hostDevices[" + std::to_string(i) + "]";
      auto line = c.fieldLines.find("bpf.hostDevices");
      errors.push_back(name + ":" + std::to_string(line == c.fieldLines.end() ? 1 : line->second) + ": " + f +
                       ": " + c.bpf.hostDevices[i] + " is in bpf.devices too: a device faces pods or the network");
    }
  }
  if (root.IsMap() && !sawApiVersion) {
    errors.push_back(name + ":1: apiVersion: is required (" + kApiVersion + ")");
  }
  if (root.IsMap() && !sawKind) {
    errors.push_back(name + ":1: kind: is required (" + kKind + ")");
  }
  if (c.source.kind == "files" && c.source.path.empty() && root.IsMap()) {
    int line = 1;
    for (const auto& kv : root) {
      if (kv.first.Scalar() == "source") {
        line = kv.first.Mark().line + 1;  // the "source:" key, not its first child
      }
    }
    errors.push_back(name + ":" + std::to_string(line) + ": source.path: is required when source.kind is files");
  }
  return errors.size() == before;
}

bool loadConfig(const std::string& file, Config& out, std::vector<std::string>& errors) {
  // One FILE:LINE: field: reason line even when there is nothing to parse, so scripts and
  // people read every configuration problem the same way.
  auto unreadable = [&](int err) {
    errors.push_back(file + ":1: config: cannot be read: " + std::strerror(err));
    return false;
  };
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return unreadable(errno);
  }
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return unreadable(EISDIR);
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return unreadable(err);
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return parseConfig(text, file, out, errors);
}

void resolveDefaults(Config& c, bool inCluster) {
  if (c.source.kind.empty()) {
    // kube-proxy's order: an explicit kubeconfig (flag or file) or the in-cluster
    // environment means an API server; otherwise the manifest files.
    c.source.kind = inCluster || !c.clientConnection.kubeconfig.empty() ? "apiserver" : "files";
  }
}

void resolveDefaults(Config& c) { resolveDefaults(c, std::getenv("KUBERNETES_SERVICE_HOST") != nullptr); }

bool validateHostPaths(const Config& c, const std::string& file, std::vector<std::string>& errors) {
  size_t before = errors.size();
  if (c.bpf.socketLB && !c.bpf.cgroupPath.empty()) {
    auto line = c.fieldLines.find("bpf.cgroupPath");
    std::string at = file + ":" + std::to_string(line == c.fieldLines.end() ? 1 : line->second) +
                     ": bpf.cgroupPath: ";
    const std::string& path = c.bpf.cgroupPath;
    struct stat st {};
    struct statfs fs {};
    if (::stat(path.c_str(), &st) < 0) {
      errors.push_back(at + "\"" + path + "\": " + std::strerror(errno) +
                       " (must be a directory of the cgroup v2 hierarchy)");
    } else if (!S_ISDIR(st.st_mode)) {
      errors.push_back(at + "\"" + path + "\" is not a directory (must be a directory of the cgroup v2 hierarchy)");
    } else if (::statfs(path.c_str(), &fs) < 0) {
      errors.push_back(at + "\"" + path + "\": " + std::strerror(errno));
    } else if (static_cast<unsigned long>(fs.f_type) != kCgroup2SuperMagic) {
      errors.push_back(at + "\"" + path +
                       "\" is not on a cgroup v2 filesystem (socket LB hooks attach to cgroup v2 "
                       "only; use the directory where cgroup2 is mounted, e.g. /sys/fs/cgroup/unified)");
    }
  }
  return errors.size() == before;
}

}  // namespace switchyard::config
