#include "k8sclient/decode.h"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace switchyard::k8s {
namespace {

using rapidjson::Value;

// Walks one object, collecting every problem with its JSON path.
class Decoder {
 public:
  explicit Decoder(std::vector<FieldError>& errors) : errors_(errors) {}

  void fail(const std::string& path, const std::string& reason) {
    errors_.push_back({path, reason});
  }
  size_t errorCount() const { return errors_.size(); }

  const Value* member(const Value& obj, const char* name) {
    if (!obj.IsObject()) {
      return nullptr;
    }
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || it->value.IsNull()) {
      return nullptr;
    }
    return &it->value;
  }

  void str(const Value& obj, const char* name, const std::string& path, std::string& out) {
    const Value* v = member(obj, name);
    if (!v) {
      return;
    }
    if (!v->IsString()) {
      fail(path, "must be a string");
      return;
    }
    out.assign(v->GetString(), v->GetStringLength());
  }

  bool int32(const Value& obj, const char* name, const std::string& path, int32_t& out) {
    const Value* v = member(obj, name);
    if (!v) {
      return false;
    }
    if (!v->IsInt()) {
      fail(path, "must be an integer");
      return false;
    }
    out = v->GetInt();
    return true;
  }

  void optBool(const Value& obj, const char* name, const std::string& path,
               std::optional<bool>& out) {
    const Value* v = member(obj, name);
    if (!v) {
      return;
    }
    if (!v->IsBool()) {
      fail(path, "must be a boolean");
      return;
    }
    out = v->GetBool();
  }

  void strList(const Value& obj, const char* name, const std::string& path,
               std::vector<std::string>& out) {
    const Value* v = member(obj, name);
    if (!v) {
      return;
    }
    if (!v->IsArray()) {
      fail(path, "must be a list of strings");
      return;
    }
    for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
      if (!(*v)[i].IsString()) {
        fail(path + "[" + std::to_string(i) + "]", "must be a string");
        continue;
      }
      out.emplace_back((*v)[i].GetString(), (*v)[i].GetStringLength());
    }
  }

  void strMap(const Value& obj, const char* name, const std::string& path,
              std::map<std::string, std::string>& out) {
    const Value* v = member(obj, name);
    if (!v) {
      return;
    }
    if (!v->IsObject()) {
      fail(path, "must be a map of strings");
      return;
    }
    for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
      std::string key(it->name.GetString(), it->name.GetStringLength());
      if (!it->value.IsString()) {
        fail(path + "." + key, "must be a string");
        continue;
      }
      out[key] = std::string(it->value.GetString(), it->value.GetStringLength());
    }
  }

  const Value* list(const Value& obj, const char* name, const std::string& path) {
    const Value* v = member(obj, name);
    if (v && !v->IsArray()) {
      fail(path, "must be a list");
      return nullptr;
    }
    return v;
  }

  const Value* object(const Value& obj, const char* name, const std::string& path) {
    const Value* v = member(obj, name);
    if (v && !v->IsObject()) {
      fail(path, "must be an object");
      return nullptr;
    }
    return v;
  }

  void protocol(const Value& obj, const std::string& path, Protocol& out) {
    std::string p;
    str(obj, "protocol", path, p);
    if (p.empty() || p == "TCP") {
      out = Protocol::TCP;
    } else if (p == "UDP") {
      out = Protocol::UDP;
    } else if (p == "SCTP") {
      out = Protocol::SCTP;
    } else {
      fail(path, "must be TCP, UDP or SCTP, got \"" + p + "\"");
    }
  }

  void port(const Value& obj, const char* name, const std::string& path, int32_t& out,
            bool required) {
    if (!int32(obj, name, path, out)) {
      if (required && !member(obj, name)) {
        fail(path, "is required");
      }
      return;
    }
    if (out < 1 || out > 65535) {
      fail(path, "must be between 1 and 65535, got " + std::to_string(out));
    }
  }

  void meta(const Value& obj, ObjectMeta& m) {
    const Value* md = object(obj, "metadata", "metadata");
    if (!md) {
      if (!member(obj, "metadata")) {
        fail("metadata", "is required");
      }
      return;
    }
    str(*md, "namespace", "metadata.namespace", m.namespace_);
    if (m.namespace_.empty()) {
      m.namespace_ = "default";
    }
    str(*md, "name", "metadata.name", m.name);
    if (m.name.empty()) {
      fail("metadata.name", "is required");
    }
    str(*md, "uid", "metadata.uid", m.uid);
    str(*md, "resourceVersion", "metadata.resourceVersion", m.resourceVersion);
    strMap(*md, "labels", "metadata.labels", m.labels);
    strMap(*md, "annotations", "metadata.annotations", m.annotations);
    m.deleting = member(*md, "deletionTimestamp") != nullptr;
  }

  void expectKind(const Value& obj, std::string_view apiVersion, std::string_view kind) {
    if (!obj.IsObject()) {
      fail("", "must be an object");
      return;
    }
    std::string av, k;
    str(obj, "apiVersion", "apiVersion", av);
    str(obj, "kind", "kind", k);
    // The API server omits apiVersion/kind on list items and watch objects: accept absent.
    if (!av.empty() && av != apiVersion) {
      fail("apiVersion", "must be " + std::string(apiVersion) + ", got \"" + av + "\"");
    }
    if (!k.empty() && k != kind) {
      fail("kind", "must be " + std::string(kind) + ", got \"" + k + "\"");
    }
  }

 private:
  std::vector<FieldError>& errors_;
};

std::string idx(const std::string& path, rapidjson::SizeType i) {
  return path + "[" + std::to_string(i) + "]";
}

}  // namespace

std::string objectRef(const rapidjson::Value& obj) {
  std::string ns = "default", name;
  if (obj.IsObject()) {
    auto md = obj.FindMember("metadata");
    if (md != obj.MemberEnd() && md->value.IsObject()) {
      auto n = md->value.FindMember("namespace");
      if (n != md->value.MemberEnd() && n->value.IsString()) {
        ns = n->value.GetString();
      }
      auto nm = md->value.FindMember("name");
      if (nm != md->value.MemberEnd() && nm->value.IsString()) {
        name = nm->value.GetString();
      }
    }
  }
  return name.empty() ? "<unnamed>" : ns + "/" + name;
}

bool decodeService(const rapidjson::Value& obj, Service& out, std::vector<FieldError>& errors) {
  Decoder d(errors);
  size_t before = d.errorCount();
  d.expectKind(obj, "v1", "Service");
  if (!obj.IsObject()) {
    return false;
  }
  d.meta(obj, out.metadata);
  const Value* spec = d.object(obj, "spec", "spec");
  if (!spec) {
    if (!d.member(obj, "spec")) {
      d.fail("spec", "is required");
    }
    return false;
  }
  d.str(*spec, "type", "spec.type", out.type);
  if (out.type.empty()) {
    out.type = "ClusterIP";
  }
  if (out.type != "ClusterIP" && out.type != "NodePort" && out.type != "LoadBalancer" &&
      out.type != "ExternalName") {
    d.fail("spec.type", "must be ClusterIP, NodePort, LoadBalancer or ExternalName, got \"" +
                            out.type + "\"");
  }
  d.str(*spec, "clusterIP", "spec.clusterIP", out.clusterIP);
  d.strList(*spec, "clusterIPs", "spec.clusterIPs", out.clusterIPs);
  if (out.clusterIPs.empty() && !out.clusterIP.empty()) {
    out.clusterIPs.push_back(out.clusterIP);
  }
  d.strList(*spec, "externalIPs", "spec.externalIPs", out.externalIPs);
  d.str(*spec, "sessionAffinity", "spec.sessionAffinity", out.sessionAffinity);
  if (const Value* sac = d.object(*spec, "sessionAffinityConfig", "spec.sessionAffinityConfig")) {
    if (const Value* cip = d.object(*sac, "clientIP", "spec.sessionAffinityConfig.clientIP")) {
      d.int32(*cip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
              out.sessionAffinityTimeoutSeconds);
    }
  }
  d.str(*spec, "externalTrafficPolicy", "spec.externalTrafficPolicy", out.externalTrafficPolicy);
  d.str(*spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", out.internalTrafficPolicy);
  d.str(*spec, "trafficDistribution", "spec.trafficDistribution", out.trafficDistribution);
  d.int32(*spec, "healthCheckNodePort", "spec.healthCheckNodePort", out.healthCheckNodePort);
  d.strList(*spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges",
            out.loadBalancerSourceRanges);
  if (const Value* ports = d.list(*spec, "ports", "spec.ports")) {
    for (rapidjson::SizeType i = 0; i < ports->Size(); ++i) {
      const Value& p = (*ports)[i];
      std::string path = idx("spec.ports", i);
      if (!p.IsObject()) {
        d.fail(path, "must be an object");
        continue;
      }
      ServicePort sp;
      d.str(p, "name", path + ".name", sp.name);
      d.protocol(p, path + ".protocol", sp.protocol);
      d.port(p, "port", path + ".port", sp.port, true);
      if (const Value* tp = d.member(p, "targetPort")) {
        if (tp->IsInt()) {
          sp.targetPort.number = tp->GetInt();
          if (*sp.targetPort.number < 1 || *sp.targetPort.number > 65535) {
            d.fail(path + ".targetPort",
                   "must be between 1 and 65535, got " + std::to_string(*sp.targetPort.number));
          }
        } else if (tp->IsString()) {
          sp.targetPort.name = tp->GetString();
        } else {
          d.fail(path + ".targetPort", "must be an integer or a port name");
        }
      } else {
        sp.targetPort.number = sp.port;
      }
      if (d.member(p, "nodePort")) {
        d.port(p, "nodePort", path + ".nodePort", sp.nodePort, false);
      }
      out.ports.push_back(std::move(sp));
    }
  }
  if (const Value* status = d.object(obj, "status", "status")) {
    if (const Value* lb = d.object(*status, "loadBalancer", "status.loadBalancer")) {
      if (const Value* ing = d.list(*lb, "ingress", "status.loadBalancer.ingress")) {
        for (rapidjson::SizeType i = 0; i < ing->Size(); ++i) {
          std::string path = idx("status.loadBalancer.ingress", i);
          Service::Ingress in;
          d.str((*ing)[i], "ip", path + ".ip", in.ip);
          d.str((*ing)[i], "ipMode", path + ".ipMode", in.ipMode);
          if (!in.ipMode.empty() && in.ipMode != "VIP" && in.ipMode != "Proxy") {
            d.fail(path + ".ipMode", "must be VIP or Proxy, got \"" + in.ipMode + "\"");
            continue;
          }
          if (!in.ip.empty()) {
            out.loadBalancerIngress.push_back(std::move(in));
          }
        }
      }
    }
  }
  return d.errorCount() == before;
}

std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& text) {
  int y, mo, dd, h, mi, s, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &dd, &h, &mi, &s, &n) != 6 ||
      n != 19) {
    return std::nullopt;
  }
  std::tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = dd;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = s;
  time_t secs = timegm(&t);
  std::chrono::nanoseconds frac{0};
  size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    long long scale = 100000000, ns = 0;
    for (++i; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      ns += (text[i] - '0') * scale;
      scale /= 10;
    }
    frac = std::chrono::nanoseconds(ns);
  }
  long offset = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) {
      return std::nullopt;
    }
    offset = (text[i] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
    i += 6;
  } else if (i < text.size() && text[i] == 'Z') {
    ++i;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) {
    return std::nullopt;
  }
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs - offset)) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(frac);
}

bool decodeEndpointSlice(const rapidjson::Value& obj, EndpointSlice& out,
                         std::vector<FieldError>& errors) {
  Decoder d(errors);
  size_t before = d.errorCount();
  d.expectKind(obj, "discovery.k8s.io/v1", "EndpointSlice");
  if (!obj.IsObject()) {
    return false;
  }
  d.meta(obj, out.metadata);
  // A bad trigger time only loses a latency sample: not an error.
  auto trigger = out.metadata.annotations.find("endpoints.kubernetes.io/last-change-trigger-time");
  if (trigger != out.metadata.annotations.end()) {
    out.lastChangeTriggerTime = parseRfc3339(trigger->second);
  }
  d.str(obj, "addressType", "addressType", out.addressType);
  if (out.addressType != "IPv4" && out.addressType != "IPv6" && out.addressType != "FQDN") {
    d.fail("addressType", out.addressType.empty()
                              ? std::string("is required")
                              : "must be IPv4, IPv6 or FQDN, got \"" + out.addressType + "\"");
  }
  if (const Value* eps = d.list(obj, "endpoints", "endpoints")) {
    for (rapidjson::SizeType i = 0; i < eps->Size(); ++i) {
      const Value& e = (*eps)[i];
      std::string path = idx("endpoints", i);
      if (!e.IsObject()) {
        d.fail(path, "must be an object");
        continue;
      }
      Endpoint ep;
      d.strList(e, "addresses", path + ".addresses", ep.addresses);
      if (ep.addresses.empty()) {
        d.fail(path + ".addresses", "must hold at least one address");
      }
      if (const Value* c = d.object(e, "conditions", path + ".conditions")) {
        d.optBool(*c, "ready", path + ".conditions.ready", ep.conditions.ready);
        d.optBool(*c, "serving", path + ".conditions.serving", ep.conditions.serving);
        d.optBool(*c, "terminating", path + ".conditions.terminating", ep.conditions.terminating);
      }
      d.str(e, "nodeName", path + ".nodeName", ep.nodeName);
      d.str(e, "zone", path + ".zone", ep.zone);
      if (const Value* h = d.object(e, "hints", path + ".hints")) {
        if (const Value* fz = d.list(*h, "forZones", path + ".hints.forZones")) {
          for (rapidjson::SizeType j = 0; j < fz->Size(); ++j) {
            std::string z;
            d.str((*fz)[j], "name", idx(path + ".hints.forZones", j) + ".name", z);
            ep.hintsForZones.push_back(z);
          }
        }
        if (const Value* fn = d.list(*h, "forNodes", path + ".hints.forNodes")) {
          for (rapidjson::SizeType j = 0; j < fn->Size(); ++j) {
            std::string n;
            d.str((*fn)[j], "name", idx(path + ".hints.forNodes", j) + ".name", n);
            ep.hintsForNodes.push_back(n);
          }
        }
      }
      out.endpoints.push_back(std::move(ep));
    }
  }
  if (const Value* ports = d.list(obj, "ports", "ports")) {
    for (rapidjson::SizeType i = 0; i < ports->Size(); ++i) {
      const Value& p = (*ports)[i];
      std::string path = idx("ports", i);
      if (!p.IsObject()) {
        d.fail(path, "must be an object");
        continue;
      }
      EndpointPort ep;
      d.str(p, "name", path + ".name", ep.name);
      d.protocol(p, path + ".protocol", ep.protocol);
      int32_t port = 0;
      if (d.member(p, "port")) {
        d.port(p, "port", path + ".port", port, false);
        ep.port = port;
      }
      out.ports.push_back(std::move(ep));
    }
  }
  return d.errorCount() == before;
}

bool decodeNode(const rapidjson::Value& obj, Node& out, std::vector<FieldError>& errors) {
  Decoder d(errors);
  size_t before = d.errorCount();
  d.expectKind(obj, "v1", "Node");
  if (!obj.IsObject()) {
    return false;
  }
  d.meta(obj, out.metadata);
  if (const Value* spec = d.object(obj, "spec", "spec")) {
    if (const Value* taints = d.list(*spec, "taints", "spec.taints")) {
      for (rapidjson::SizeType i = 0; i < taints->Size(); ++i) {
        Node::Taint t;
        std::string path = idx("spec.taints", i);
        d.str((*taints)[i], "key", path + ".key", t.key);
        d.str((*taints)[i], "value", path + ".value", t.value);
        d.str((*taints)[i], "effect", path + ".effect", t.effect);
        out.taints.push_back(std::move(t));
      }
    }
  }
  return d.errorCount() == before;
}

// --- NetworkPolicy, Pod, Namespace ---

namespace {

void decodeSelector(Decoder& d, const Value& v, const std::string& path, LabelSelector& out) {
  if (!v.IsObject()) {
    d.fail(path, "must be an object");
    return;
  }
  d.strMap(v, "matchLabels", path + ".matchLabels", out.matchLabels);
  if (const Value* exprs = d.list(v, "matchExpressions", path + ".matchExpressions")) {
    for (rapidjson::SizeType i = 0; i < exprs->Size(); ++i) {
      std::string ep = idx(path + ".matchExpressions", i);
      LabelSelectorRequirement r;
      d.str((*exprs)[i], "key", ep + ".key", r.key);
      d.str((*exprs)[i], "operator", ep + ".operator", r.op);
      d.strList((*exprs)[i], "values", ep + ".values", r.values);
      if (r.key.empty()) {
        d.fail(ep + ".key", "is required");
      }
      // metav1.LabelSelectorAsSelector's rules: In/NotIn need values, Exists/DoesNotExist none.
      if (r.op == "In" || r.op == "NotIn") {
        if (r.values.empty()) {
          d.fail(ep + ".values", "must be non-empty for operator " + r.op);
        }
      } else if (r.op == "Exists" || r.op == "DoesNotExist") {
        if (!r.values.empty()) {
          d.fail(ep + ".values", "must be empty for operator " + r.op);
        }
      } else {
        d.fail(ep + ".operator", "must be In, NotIn, Exists or DoesNotExist, got \"" + r.op + "\"");
      }
      out.matchExpressions.push_back(std::move(r));
    }
  }
}

void decodeRules(Decoder& d, const Value& spec, const char* name, const char* peersName,
                 std::vector<NetworkPolicyRule>& out) {
  std::string base = std::string("spec.") + name;
  const Value* rules = d.list(spec, name, base);
  if (!rules) {
    return;
  }
  for (rapidjson::SizeType i = 0; i < rules->Size(); ++i) {
    const Value& r = (*rules)[i];
    std::string path = idx(base, i);
    if (!r.IsObject()) {
      d.fail(path, "must be an object");
      continue;
    }
    NetworkPolicyRule rule;
    if (const Value* ports = d.list(r, "ports", path + ".ports")) {
      for (rapidjson::SizeType j = 0; j < ports->Size(); ++j) {
        const Value& p = (*ports)[j];
        std::string pp = idx(path + ".ports", j);
        if (!p.IsObject()) {
          d.fail(pp, "must be an object");
          continue;
        }
        NetworkPolicyPort np;
        d.protocol(p, pp + ".protocol", np.protocol);
        if (const Value* port = d.member(p, "port")) {
          IntOrString v;
          if (port->IsInt()) {
            int32_t n = 0;
            d.port(p, "port", pp + ".port", n, false);
            v.number = n;
          } else if (port->IsString() && port->GetStringLength() > 0) {
            v.name = port->GetString();
          } else {
            d.fail(pp + ".port", "must be a port number or a port name");
          }
          np.port = v;
        }
        if (d.member(p, "endPort")) {
          int32_t end = 0;
          d.port(p, "endPort", pp + ".endPort", end, false);
          // The API server's validation: endPort needs a numeric port and is not below it.
          if (!np.port || !np.port->number) {
            d.fail(pp + ".endPort", "needs a numeric port");
          } else if (end < *np.port->number) {
            d.fail(pp + ".endPort", "must not be below port " + std::to_string(*np.port->number) +
                                        ", got " + std::to_string(end));
          }
          np.endPort = end;
        }
        rule.ports.push_back(std::move(np));
      }
    }
    if (const Value* peers = d.list(r, peersName, path + "." + peersName)) {
      for (rapidjson::SizeType j = 0; j < peers->Size(); ++j) {
        const Value& p = (*peers)[j];
        std::string pp = idx(path + "." + peersName, j);
        if (!p.IsObject()) {
          d.fail(pp, "must be an object");
          continue;
        }
        NetworkPolicyPeer peer;
        if (const Value* ps = d.member(p, "podSelector")) {
          decodeSelector(d, *ps, pp + ".podSelector", peer.podSelector.emplace());
        }
        if (const Value* ns = d.member(p, "namespaceSelector")) {
          decodeSelector(d, *ns, pp + ".namespaceSelector", peer.namespaceSelector.emplace());
        }
        if (const Value* ib = d.object(p, "ipBlock", pp + ".ipBlock")) {
          IPBlock block;
          d.str(*ib, "cidr", pp + ".ipBlock.cidr", block.cidr);
          if (block.cidr.empty()) {
            d.fail(pp + ".ipBlock.cidr", "is required");
          }
          d.strList(*ib, "except", pp + ".ipBlock.except", block.except);
          if (peer.podSelector || peer.namespaceSelector) {
            d.fail(pp, "ipBlock may not be combined with podSelector or namespaceSelector");
          }
          peer.ipBlock = std::move(block);
        }
        if (!peer.podSelector && !peer.namespaceSelector && !peer.ipBlock) {
          d.fail(pp, "must set podSelector, namespaceSelector or ipBlock");
        }
        rule.peers.push_back(std::move(peer));
      }
    }
    out.push_back(std::move(rule));
  }
}

}  // namespace

bool decodePod(const rapidjson::Value& obj, Pod& out, std::vector<FieldError>& errors) {
  Decoder d(errors);
  size_t before = d.errorCount();
  d.expectKind(obj, "v1", "Pod");
  if (!obj.IsObject()) {
    return false;
  }
  d.meta(obj, out.metadata);
  if (const Value* spec = d.object(obj, "spec", "spec")) {
    d.str(*spec, "nodeName", "spec.nodeName", out.nodeName);
    std::optional<bool> host;
    d.optBool(*spec, "hostNetwork", "spec.hostNetwork", host);
    out.hostNetwork = host.value_or(false);
    if (const Value* cs = d.list(*spec, "containers", "spec.containers")) {
      for (rapidjson::SizeType i = 0; i < cs->Size(); ++i) {
        std::string cp = idx("spec.containers", i);
        const Value* ports = d.list((*cs)[i], "ports", cp + ".ports");
        if (!ports) {
          continue;
        }
        for (rapidjson::SizeType j = 0; j < ports->Size(); ++j) {
          const Value& p = (*ports)[j];
          std::string pp = idx(cp + ".ports", j);
          ContainerPort port;
          d.str(p, "name", pp + ".name", port.name);
          d.protocol(p, pp + ".protocol", port.protocol);
          d.port(p, "containerPort", pp + ".containerPort", port.containerPort, true);
          out.ports.push_back(std::move(port));
        }
      }
    }
  }
  if (const Value* status = d.object(obj, "status", "status")) {
    d.str(*status, "phase", "status.phase", out.phase);
    if (const Value* ips = d.list(*status, "podIPs", "status.podIPs")) {
      for (rapidjson::SizeType i = 0; i < ips->Size(); ++i) {
        std::string ip;
        d.str((*ips)[i], "ip", idx("status.podIPs", i) + ".ip", ip);
        if (!ip.empty()) {
          out.podIPs.push_back(std::move(ip));
        }
      }
    }
    if (out.podIPs.empty()) {
      std::string ip;
      d.str(*status, "podIP", "status.podIP", ip);
      if (!ip.empty()) {
        out.podIPs.push_back(std::move(ip));
      }
    }
  }
  return d.errorCount() == before;
}

bool decodeNamespace(const rapidjson::Value& obj, Namespace& out, std::vector<FieldError>& errors) {
  Decoder d(errors);
  size_t before = d.errorCount();
  d.expectKind(obj, "v1", "Namespace");
  if (!obj.IsObject()) {
    return false;
  }
  d.meta(obj, out.metadata);
  // A Namespace has no namespace: meta() files it under "default", as it does a Node, so
  // the sources key every kind the same way.
  // The API server sets this immutable label on every namespace (since 1.21); a manifest
  // file may lack it, and a namespaceSelector on it must still match.
  out.metadata.labels.emplace("kubernetes.io/metadata.name", out.metadata.name);
  return d.errorCount() == before;
}

bool decodeNetworkPolicy(const rapidjson::Value& obj, NetworkPolicy& out,
                         std::vector<FieldError>& errors) {
  Decoder d(errors);
  size_t before = d.errorCount();
  d.expectKind(obj, "networking.k8s.io/v1", "NetworkPolicy");
  if (!obj.IsObject()) {
    return false;
  }
  d.meta(obj, out.metadata);
  const Value* spec = d.object(obj, "spec", "spec");
  if (!spec) {
    if (!d.member(obj, "spec")) {
      d.fail("spec", "is required");
    }
    return false;
  }
  if (const Value* ps = d.member(*spec, "podSelector")) {
    decodeSelector(d, *ps, "spec.podSelector", out.podSelector);
  }
  decodeRules(d, *spec, "ingress", "from", out.ingressRules);
  decodeRules(d, *spec, "egress", "to", out.egressRules);
  std::vector<std::string> types;
  d.strList(*spec, "policyTypes", "spec.policyTypes", types);
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] == "Ingress") {
      out.ingress = true;
    } else if (types[i] == "Egress") {
      out.egress = true;
    } else {
      d.fail("spec.policyTypes[" + std::to_string(i) + "]",
             "must be Ingress or Egress, got \"" + types[i] + "\"");
    }
  }
  if (types.empty()) {
    // pkg/apis/networking/v1 defaults: Ingress always, Egress when egress rules exist.
    out.ingress = true;
    out.egress = !out.egressRules.empty();
  }
  return d.errorCount() == before;
}

}  // namespace switchyard::k8s
