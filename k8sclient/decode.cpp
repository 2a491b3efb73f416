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

}  // namespace switchyard::k8s
