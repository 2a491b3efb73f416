// `switchyard status policy`: what the policy maps hold (pol_state_v1, identities by the
// ipcache, endpoints and their rules), named from the file the daemon writes beside them
// (cmd/policy_sync.h policyNamesPath): the maps are the truth, the file only names numbers.
#include <bpf/bpf.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bpf/pinned_maps.h"
#include "bpf/policy_abi.h"
#include "bpf/policy_maps.h"
#include "cmd/policy_sync.h"
#include "cmd/status.h"

namespace switchyard::cmd {
namespace {

struct IdentityName {
  std::string namespace_;
  policy::Labels labels;
};

// The daemon's names file; what it lacks is shown as null.
struct Names {
  std::optional<uint32_t> revision;
  std::map<uint32_t, IdentityName> identities;
  std::map<uint32_t, std::string> cidrs;
  std::map<uint32_t, std::string> pods;  // endpoint number -> namespace/name
};

Names readNames(const std::string& path) {
  Names n;
  std::ifstream in(path);
  if (!in) {
    return n;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  rapidjson::Document d;
  std::string text = ss.str();
  if (d.Parse(text.c_str()).HasParseError() || !d.IsObject()) {
    return n;
  }
  if (d.HasMember("revision") && d["revision"].IsUint()) {
    n.revision = d["revision"].GetUint();
  }
  auto each = [&d](const char* key, auto&& f) {
    if (d.HasMember(key) && d[key].IsArray()) {
      for (const auto& v : d[key].GetArray()) {
        if (v.IsObject() && v.HasMember("id") && v["id"].IsUint()) {
          f(v["id"].GetUint(), v);
        }
      }
    }
  };
  each("identities", [&](uint32_t id, const rapidjson::Value& v) {
    IdentityName in;
    if (v.HasMember("namespace") && v["namespace"].IsString()) in.namespace_ = v["namespace"].GetString();
    if (v.HasMember("labels") && v["labels"].IsObject()) {
      for (const auto& m : v["labels"].GetObject()) {
        if (m.value.IsString()) in.labels[m.name.GetString()] = m.value.GetString();
      }
    }
    n.identities[id] = in;
  });
  each("cidrs", [&](uint32_t id, const rapidjson::Value& v) {
    if (v.HasMember("cidr") && v["cidr"].IsString()) n.cidrs[id] = v["cidr"].GetString();
  });
  each("endpoints", [&](uint32_t id, const rapidjson::Value& v) {
    if (v.HasMember("pod") && v["pod"].IsString()) n.pods[id] = v["pod"].GetString();
  });
  return n;
}

const char* protocolName(uint8_t proto) {
  switch (proto) {
    case 0: return "any";
    case lb::kProtoTCP: return "TCP";
    case lb::kProtoUDP: return "UDP";
    case lb::kProtoSCTP: return "SCTP";
  }
  return "other";
}

struct EndpointView {
  policy::Endpoint ep;
  std::vector<std::string> addresses;
  std::vector<policy::RuleKey> rules;
};

}  // namespace

int printPolicyStatus(const std::string& pinPath, bool json) {
  bpf::PinnedMaps maps;
  std::string error;
  if (!maps.open(pinPath, error)) {
    std::cerr << "switchyard status policy: " << error << "\n";
    return 1;
  }
  const bpf::MapFds& fds = maps.fds();
  uint32_t key = 0;
  sy_pol_state st{};
  if (bpf_map_lookup_elem(fds.polState, &key, &st) != 0) {
    std::cerr << "switchyard status policy: " << bpf::kPinPolState << ": cannot be read\n";
    return 1;
  }
  policy::State held;
  if (!bpf::readPolicyMaps({fds.polIpcache, fds.polEndpoints, fds.polRules}, held, error)) {
    std::cerr << "switchyard status policy: " << error << "\n";
    return 1;
  }
  Names names = readNames(policyNamesPath(pinPath));

  // Pod identities as the ipcache holds them, with their addresses; CIDR identities by prefix.
  std::map<uint32_t, std::vector<std::string>> identityAddrs;
  std::map<uint32_t, std::string> cidrs;
  for (const auto& [c, peer] : held.ipcache) {
    if (peer.podIdentity != policy::kIdentityWorld) {
      identityAddrs[peer.podIdentity].push_back(c.addr.str());
    } else {
      cidrs[peer.cidrIdentity] = c.str();
    }
  }
  std::map<uint32_t, EndpointView> endpoints;
  for (const auto& [addr, ep] : held.endpoints) {
    EndpointView& v = endpoints[ep.id];
    v.ep = ep;
    v.addresses.push_back(addr.str());
    identityAddrs.try_emplace(ep.identity);
  }
  for (const auto& r : held.rules) {
    endpoints[r.endpoint].ep.id = r.endpoint;  // a rule of an endpoint the map lacks shows too
    endpoints[r.endpoint].rules.push_back(r);
  }
  bool enabled = st.flags & SY_POL_STATE_ENABLED;
  bool logDenied = st.flags & SY_POL_STATE_LOG_DENIED;
  auto podOf = [&](uint32_t id) -> const std::string* {
    auto it = names.pods.find(id);
    return it == names.pods.end() ? nullptr : &it->second;
  };

  if (json) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("enabled");
    w.Bool(enabled);
    w.Key("logDenied");
    w.Bool(logDenied);
    w.Key("revision");
    w.Uint(st.revision);
    w.Key("namesRevision");  // the revision the names were written at (null: no names file)
    if (names.revision) {
      w.Uint(*names.revision);
    } else {
      w.Null();
    }
    w.Key("identities");
    w.StartArray();
    for (const auto& [id, addrs] : identityAddrs) {
      w.StartObject();
      w.Key("id");
      w.Uint(id);
      auto n = names.identities.find(id);
      w.Key("namespace");
      if (n != names.identities.end()) {
        w.String(n->second.namespace_.c_str());
      } else {
        w.Null();
      }
      w.Key("labels");
      if (n != names.identities.end()) {
        w.StartObject();
        for (const auto& [k, v] : n->second.labels) {
          w.Key(k.c_str());
          w.String(v.c_str());
        }
        w.EndObject();
      } else {
        w.Null();
      }
      w.Key("addresses");
      w.StartArray();
      for (const auto& a : addrs) {
        w.String(a.c_str());
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.Key("cidrs");
    w.StartArray();
    for (const auto& [id, c] : cidrs) {
      w.StartObject();
      w.Key("id");
      w.Uint(id);
      w.Key("cidr");
      w.String(c.c_str());
      w.EndObject();
    }
    w.EndArray();
    w.Key("endpoints");
    w.StartArray();
    for (const auto& [id, v] : endpoints) {
      w.StartObject();
      w.Key("pod");
      if (const std::string* pod = podOf(id)) {
        w.String(pod->c_str());
      } else {
        w.Null();
      }
      w.Key("endpoint");
      w.Uint(id);
      w.Key("addresses");
      w.StartArray();
      for (const auto& a : v.addresses) {
        w.String(a.c_str());
      }
      w.EndArray();
      w.Key("identity");
      w.Uint(v.ep.identity);
      w.Key("ingressIsolated");
      w.Bool(v.ep.ingressIsolated);
      w.Key("egressIsolated");
      w.Bool(v.ep.egressIsolated);
      w.Key("rules");
      w.StartArray();
      for (const auto& r : v.rules) {
        w.StartObject();
        w.Key("direction");
        w.String(policy::directionName(r.dir));
        w.Key("peer");
        w.Uint(r.identity);
        w.Key("protocol");
        w.String(protocolName(r.proto));
        w.Key("port");
        w.Uint(r.port);
        w.Key("portPrefixLen");
        w.Uint(r.portPrefixLen);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::cout << buf.GetString() << "\n";
    return 0;
  }

  std::printf("NetworkPolicy: %s, revision %u, denied-flow log %s\n", enabled ? "enforced" : "not enforced",
              st.revision, logDenied ? "on" : "off");
  if (!names.revision) {
    std::printf("(no names: %s is missing; numbers only)\n", policyNamesPath(pinPath).c_str());
  } else if (*names.revision != st.revision) {
    std::printf("(names written at revision %u: they may be out of date)\n", *names.revision);
  }
  std::printf("\n%-10s %-24s %s\n", "IDENTITY", "NAMESPACE", "LABELS");
  for (const auto& [id, addrs] : identityAddrs) {
    auto n = names.identities.find(id);
    std::string labels;
    if (n != names.identities.end()) {
      for (const auto& [k, v] : n->second.labels) {
        labels.append(labels.empty() ? "" : ",").append(k).append("=").append(v);
      }
    }
    std::printf("%-10u %-24s %s\n", id, n != names.identities.end() ? n->second.namespace_.c_str() : "?",
                n != names.identities.end() ? labels.c_str() : "?");
  }
  for (const auto& [id, c] : cidrs) {
    std::printf("%-10u %-24s %s\n", id, "(cidr)", c.c_str());
  }
  std::printf("\n%-32s %-9s %-9s %-10s %-10s %s\n", "ENDPOINT", "NUMBER", "IDENTITY", "INGRESS", "EGRESS",
              "ADDRESSES");
  for (const auto& [id, v] : endpoints) {
    std::string addrs;
    for (const auto& a : v.addresses) {
      addrs.append(addrs.empty() ? "" : ",").append(a);
    }
    const std::string* pod = podOf(id);
    std::printf("%-32s %-9u %-9u %-10s %-10s %s\n", pod ? pod->c_str() : "?", id, v.ep.identity,
                v.ep.ingressIsolated ? "isolated" : "open", v.ep.egressIsolated ? "isolated" : "open",
                addrs.c_str());
    for (const auto& r : v.rules) {
      std::printf("    %s\n", r.str().c_str());
    }
  }
  return 0;
}

}  // namespace switchyard::cmd
