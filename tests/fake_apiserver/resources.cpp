#include "tests/fake_apiserver/resources.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace switchyard::fake {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

const std::vector<std::string> kVerbs = {"create", "delete", "get",   "list",
                                         "patch",  "update", "watch"};

void stringArray(Writer& w, const std::vector<std::string>& items) {
  w.StartArray();
  for (const auto& s : items) {
    w.String(s.c_str());
  }
  w.EndArray();
}

std::vector<const Resource*> inGroupVersion(const std::string& groupVersion) {
  std::vector<const Resource*> out;
  for (const Resource& r : resources()) {
    if (r.apiVersion() == groupVersion) {
      out.push_back(&r);
    }
  }
  return out;
}

std::vector<std::string> groups() {
  std::vector<std::string> out;
  for (const Resource& r : resources()) {
    if (!r.group.empty() && (out.empty() || out.back() != r.group)) {
      out.push_back(r.group);
    }
  }
  return out;
}

void groupObject(Writer& w, const std::string& group) {
  std::string gv = group + "/v1";
  w.StartObject();
  w.Key("name");
  w.String(group.c_str());
  w.Key("versions");
  w.StartArray();
  w.StartObject();
  w.Key("groupVersion");
  w.String(gv.c_str());
  w.Key("version");
  w.String("v1");
  w.EndObject();
  w.EndArray();
  w.Key("preferredVersion");
  w.StartObject();
  w.Key("groupVersion");
  w.String(gv.c_str());
  w.Key("version");
  w.String("v1");
  w.EndObject();
  w.EndObject();
}

}  // namespace

const std::vector<Resource>& resources() {
  static const std::vector<Resource> all = {
      {"", "v1", "services", "service", "Service", true, {"svc"}},
      {"", "v1", "nodes", "node", "Node", false, {"no"}},
      {"", "v1", "namespaces", "namespace", "Namespace", false, {"ns"}},
      {"", "v1", "pods", "pod", "Pod", true, {"po"}},
      {"networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true, {"netpol"}},
      {"discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true, {}},
  };
  return all;
}

const Resource* findResource(const std::string& group, const std::string& version,
                             const std::string& plural) {
  for (const Resource& r : resources()) {
    if (r.group == group && r.version == version && r.plural == plural) {
      return &r;
    }
  }
  return nullptr;
}

const Resource* findKind(const std::string& apiVersion, const std::string& kind) {
  for (const Resource& r : resources()) {
    if (r.apiVersion() == apiVersion && r.kind == kind) {
      return &r;
    }
  }
  return nullptr;
}

std::string versionDocument() {
  return R"({"major":"1","minor":"32","gitVersion":"v1.32.0-switchyard-fake",)"
         R"("gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean",)"
         R"("buildDate":"2024-12-11T00:00:00Z","goVersion":"go1.23.3","compiler":"gc",)"
         R"("platform":"linux/amd64"})";
}

std::string coreVersionsDocument() {
  return R"({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":)"
         R"([{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]})";
}

std::string groupListDocument() {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("kind");
  w.String("APIGroupList");
  w.Key("apiVersion");
  w.String("v1");
  w.Key("groups");
  w.StartArray();
  for (const std::string& g : groups()) {
    groupObject(w, g);
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string groupDocument(const std::string& group) {
  for (const std::string& g : groups()) {
    if (g == group) {
      rapidjson::StringBuffer buf;
      Writer w(buf);
      groupObject(w, g);
      std::string s = buf.GetString();
      return R"({"kind":"APIGroup","apiVersion":"v1",)" + s.substr(1);
    }
  }
  return "";
}

std::string resourceListDocument(const std::string& groupVersion) {
  auto rs = inGroupVersion(groupVersion);
  if (rs.empty()) {
    return "";
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("kind");
  w.String("APIResourceList");
  w.Key("apiVersion");
  w.String("v1");
  w.Key("groupVersion");
  w.String(groupVersion.c_str());
  w.Key("resources");
  w.StartArray();
  for (const Resource* r : rs) {
    w.StartObject();
    w.Key("name");
    w.String(r->plural.c_str());
    w.Key("singularName");
    w.String(r->singular.c_str());
    w.Key("namespaced");
    w.Bool(r->namespaced);
    w.Key("kind");
    w.String(r->kind.c_str());
    w.Key("verbs");
    stringArray(w, kVerbs);
    if (!r->shortNames.empty()) {
      w.Key("shortNames");
      stringArray(w, r->shortNames);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string openApiIndexDocument() {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("paths");
  w.StartObject();
  std::vector<std::string> gvs = {"v1"};
  for (const std::string& g : groups()) {
    gvs.push_back(g + "/v1");
  }
  for (const std::string& gv : gvs) {
    std::string path = gv == "v1" ? "api/v1" : "apis/" + gv;
    w.Key(path.c_str());
    w.StartObject();
    w.Key("serverRelativeURL");
    std::string url = "/openapi/v3/" + path + "?hash=0";
    w.String(url.c_str());
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

std::string openApiGroupVersionDocument(const std::string& groupVersion) {
  auto rs = inGroupVersion(groupVersion);
  if (rs.empty()) {
    return "";
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("openapi");
  w.String("3.0.0");
  w.Key("info");
  w.StartObject();
  w.Key("title");
  w.String("Kubernetes (switchyard fake API server)");
  w.Key("version");
  w.String("v1.32.0");
  w.EndObject();
  w.Key("paths");
  w.StartObject();
  for (const Resource* r : rs) {
    std::string path = r->groupVersionPath() + (r->namespaced ? "/namespaces/{namespace}/" : "/") +
                       r->plural + "/{name}";
    w.Key(path.c_str());
    w.StartObject();
    w.Key("patch");
    w.StartObject();
    w.Key("x-kubernetes-group-version-kind");
    w.StartObject();
    w.Key("group");
    w.String(r->group.c_str());
    w.Key("version");
    w.String(r->version.c_str());
    w.Key("kind");
    w.String(r->kind.c_str());
    w.EndObject();
    w.Key("parameters");
    w.StartArray();
    for (const char* p : {"dryRun", "fieldManager", "fieldValidation", "force"}) {
      w.StartObject();
      w.Key("name");
      w.String(p);
      w.Key("in");
      w.String("query");
      w.Key("schema");
      w.StartObject();
      w.Key("type");
      w.String("string");
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.Key("responses");
    w.StartObject();
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  w.Key("components");
  w.StartObject();
  w.Key("schemas");
  w.StartObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

}  // namespace switchyard::fake
