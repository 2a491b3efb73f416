// manifests/: every document parses, and the fields that make switchyard work in place of
// kube-proxy are what they must be. The embedded configuration goes through the daemon's
// own config parser.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include "config/config.h"
#include "k8sclient/apiserver/connection_config.h"

namespace switchyard {
namespace {

namespace fs = std::filesystem;
using ::testing::IsSupersetOf;

struct Doc {
  std::string file;
  YAML::Node node;
};

std::vector<Doc> loadManifests() {
  std::vector<Doc> docs;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(SY_MANIFESTS)) {
    if (e.path().extension() == ".yaml" && e.path().filename() != "kustomization.yaml") {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    for (const YAML::Node& n : YAML::LoadAllFromFile(f.string())) {
      if (n.IsDefined() && !n.IsNull()) {
        docs.push_back({f.filename().string(), n});
      }
    }
  }
  return docs;
}

class Manifests : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_THROW(docs_ = loadManifests());
    ASSERT_FALSE(docs_.empty());
  }

  YAML::Node find(const std::string& kind, const std::string& name = "switchyard") const {
    for (const Doc& d : docs_) {
      if (d.node["kind"].as<std::string>() == kind &&
          d.node["metadata"]["name"].as<std::string>() == name) {
        return d.node;
      }
    }
    ADD_FAILURE() << "no " << kind << " " << name << " in manifests/";
    return YAML::Node();
  }

  YAML::Node container(const YAML::Node& podSpec, const std::string& list,
                       const std::string& name) const {
    for (const auto& c : podSpec[list]) {
      if (c["name"].as<std::string>() == name) {
        return c;
      }
    }
    ADD_FAILURE() << "no " << list << " entry " << name;
    return YAML::Node();
  }

  std::vector<Doc> docs_;
};

TEST_F(Manifests, EveryDocumentIsAnObjectWithKindAndName) {
  std::set<std::string> clusterScoped = {"ClusterRole", "ClusterRoleBinding"};
  for (const Doc& d : docs_) {
    ASSERT_TRUE(d.node.IsMap()) << d.file;
    EXPECT_TRUE(d.node["apiVersion"].IsScalar()) << d.file;
    std::string kind = d.node["kind"].as<std::string>("");
    EXPECT_FALSE(kind.empty()) << d.file;
    EXPECT_EQ(d.node["metadata"]["name"].as<std::string>(""), "switchyard") << d.file << " " << kind;
    if (!clusterScoped.count(kind)) {
      EXPECT_EQ(d.node["metadata"]["namespace"].as<std::string>(""), "kube-system")
          << d.file << " " << kind;
    }
  }
}

TEST_F(Manifests, KustomizationListsEveryFile) {
  YAML::Node k = YAML::LoadFile(std::string(SY_MANIFESTS) + "/kustomization.yaml");
  std::set<std::string> listed, present;
  for (const auto& r : k["resources"]) {
    listed.insert(r.as<std::string>());
  }
  for (const Doc& d : docs_) {
    present.insert(d.file);
  }
  EXPECT_EQ(listed, present);
}

TEST_F(Manifests, ClusterRoleGrantsReadAndWatchOnWhatSwitchyardUsesAndNothingElse) {
  YAML::Node role = find("ClusterRole");
  std::set<std::string> grants;  // "group/resource:verb"
  for (const auto& rule : role["rules"]) {
    EXPECT_FALSE(rule["nonResourceURLs"]) << "no non-resource URLs";
    EXPECT_FALSE(rule["resourceNames"]) << "no per-name rules";
    for (const auto& g : rule["apiGroups"]) {
      for (const auto& r : rule["resources"]) {
        for (const auto& v : rule["verbs"]) {
          grants.insert(g.as<std::string>() + "/" + r.as<std::string>() + ":" + v.as<std::string>());
        }
      }
    }
  }
  std::set<std::string> want;
  for (const char* r : {"/services", "/nodes", "discovery.k8s.io/endpointslices"}) {
    for (const char* v : {"get", "list", "watch"}) {
      want.insert(std::string(r) + ":" + v);
    }
  }
  // Read by the reflectors only with policy.enabled (NetworkPolicy) or the pod opt-out of
  // socket LB (pods and namespaces): list and watch, no get.
  for (const char* r : {"/pods", "/namespaces", "networking.k8s.io/networkpolicies"}) {
    for (const char* v : {"list", "watch"}) {
      want.insert(std::string(r) + ":" + v);
    }
  }
  EXPECT_EQ(grants, want);
}

TEST_F(Manifests, BindingGivesTheRoleToTheServiceAccount) {
  find("ServiceAccount");
  YAML::Node b = find("ClusterRoleBinding");
  EXPECT_EQ(b["roleRef"]["kind"].as<std::string>(), "ClusterRole");
  EXPECT_EQ(b["roleRef"]["name"].as<std::string>(), "switchyard");
  ASSERT_EQ(b["subjects"].size(), 1u);
  EXPECT_EQ(b["subjects"][0]["kind"].as<std::string>(), "ServiceAccount");
  EXPECT_EQ(b["subjects"][0]["name"].as<std::string>(), "switchyard");
  EXPECT_EQ(b["subjects"][0]["namespace"].as<std::string>(), "kube-system");
}

TEST_F(Manifests, ConfigMapHoldsAValidConfigurationForTheCluster) {
  YAML::Node cm = find("ConfigMap");
  std::string text = cm["data"]["config.yaml"].as<std::string>("");
  ASSERT_FALSE(text.empty());
  config::Config cfg;
  std::vector<std::string> errors;
  ASSERT_TRUE(config::parseConfig(text, "configmap.yaml:config.yaml", cfg, errors))
      << ::testing::PrintToString(errors);
  EXPECT_EQ(cfg.source.kind, "apiserver");
  EXPECT_EQ(cfg.clientConnection.kubeconfig, "/etc/switchyard/kubeconfig.conf")
      << "the ConfigMap's kubeconfig.conf, not the in-cluster config";
  EXPECT_EQ(cfg.healthzBindAddress, "0.0.0.0:10256");
  EXPECT_EQ(cfg.metricsBindAddress, "0.0.0.0:10249");
  EXPECT_EQ(cfg.bpf.pinPath.rfind("/sys/fs/bpf/", 0), 0u) << cfg.bpf.pinPath;
  EXPECT_EQ(cfg.bpf.cgroupPath, "/run/switchyard/cgroupv2");
}

// Without kube-proxy nothing makes the `kubernetes` Service's ClusterIP (the in-cluster
// config's KUBERNETES_SERVICE_HOST) reachable before switchyard runs, so switchyard must
// dial the API server itself, as kubeadm's kube-proxy does: a kubeconfig in the ConfigMap
// with the real address, and the service account's token and CA files.
TEST_F(Manifests, KubeconfigDialsTheApiServerItselfWithTheServiceAccount) {
  const std::string sa = "/var/run/secrets/kubernetes.io/serviceaccount";
  YAML::Node cm = find("ConfigMap");
  std::string text = cm["data"]["kubeconfig.conf"].as<std::string>("");
  ASSERT_FALSE(text.empty()) << "configmap.yaml: data.kubeconfig.conf";

  // Through the daemon's own parser, with the service account files in a directory of
  // ours standing in for the pod's mount.
  char tmpl[] = "/tmp/sy-manifests-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::ofstream(dir + "/ca.crt") << "SA-CA";
  std::ofstream(dir + "/token") << "sa-token";
  std::string local = text;
  size_t replaced = 0;
  for (size_t at = local.find(sa); at != std::string::npos; at = local.find(sa, at)) {
    local.replace(at, sa.size(), dir);
    ++replaced;
  }
  k8s::apiserver::ConnectionConfig c;
  std::string error;
  bool parsed = k8s::apiserver::parseKubeconfig(local, "/etc/switchyard", c, error);
  fs::remove_all(dir);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(replaced, 2u) << "the CA and the token are the service account's";
  EXPECT_EQ(c.caPem, "SA-CA") << "certificate-authority: " << sa << "/ca.crt";
  EXPECT_EQ(c.tokenFile, dir + "/token") << "tokenFile (re-read on rotation), not a copy";
  EXPECT_TRUE(c.token.empty());
  EXPECT_FALSE(c.insecureSkipTlsVerify);
  EXPECT_EQ(c.server.scheme, "https");
  // A placeholder for the operator that can never reach anything by accident: .invalid
  // never resolves (RFC 6761), so an unfilled copy fails at once and says so.
  EXPECT_EQ(c.server.host, "REPLACE-WITH-API-SERVER-ADDRESS.invalid");
  EXPECT_EQ(c.server.host.find("kubernetes"), std::string::npos) << "not the Service";

  // The pod has the service account files, and the ConfigMap where the config says.
  YAML::Node pod = find("DaemonSet")["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["automountServiceAccountToken"].as<bool>(true));
  YAML::Node ctr = container(pod, "containers", "switchyard");
  ASSERT_TRUE(ctr);
  for (const auto& e : ctr["env"]) {
    EXPECT_NE(e["name"].as<std::string>(), "KUBERNETES_SERVICE_HOST")
        << "the kubeconfig names the server; a second source of truth would drift";
  }
}

TEST_F(Manifests, DaemonSetRunsLikeKubeProxyWithCapabilitiesNotPrivilege) {
  YAML::Node ds = find("DaemonSet");
  YAML::Node pod = ds["spec"]["template"]["spec"];
  EXPECT_EQ(ds["apiVersion"].as<std::string>(), "apps/v1");
  EXPECT_TRUE(pod["hostNetwork"].as<bool>());
  EXPECT_EQ(pod["priorityClassName"].as<std::string>(), "system-node-critical");
  EXPECT_EQ(pod["serviceAccountName"].as<std::string>(), "switchyard");
  // The node's resolver: cluster DNS is a Service, and ClusterFirstWithHostNet would make
  // the pod depend on the proxy it is.
  EXPECT_EQ(pod["dnsPolicy"].as<std::string>(""), "Default");
  // kube-proxy's toleration: everything.
  bool toleratesAll = false;
  for (const auto& t : pod["tolerations"]) {
    toleratesAll |= !t["key"] && t["operator"].as<std::string>("") == "Exists" && !t["effect"];
  }
  EXPECT_TRUE(toleratesAll) << "needs a toleration {operator: Exists} without key or effect";
  // The selector matches the template.
  for (const auto& l : ds["spec"]["selector"]["matchLabels"]) {
    EXPECT_EQ(ds["spec"]["template"]["metadata"]["labels"][l.first.as<std::string>()].as<std::string>(""),
              l.second.as<std::string>());
  }

  YAML::Node c = container(pod, "containers", "switchyard");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c["securityContext"]["privileged"].as<bool>(false)) << "capabilities, not privileged";
  // Exactly the set daemonset.yaml justifies (each one checked by running the e2e tests
  // under it), everything else dropped.
  std::set<std::string> caps, dropped;
  for (const auto& cap : c["securityContext"]["capabilities"]["add"]) {
    caps.insert(cap.as<std::string>());
  }
  for (const auto& cap : c["securityContext"]["capabilities"]["drop"]) {
    dropped.insert(cap.as<std::string>());
  }
  EXPECT_EQ(caps, (std::set<std::string>{"BPF", "NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"}));
  EXPECT_EQ(dropped, std::set<std::string>{"ALL"});

  // Probes on kube-proxy's healthz port: liveness /livez, readiness /healthz.
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/livez");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["port"].as<int>(), 10256);
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"].as<int>(), 10256);
  std::set<int> ports;
  for (const auto& p : c["ports"]) {
    ports.insert(p["containerPort"].as<int>());
  }
  EXPECT_TRUE(ports.count(10249)) << "metrics port";
  EXPECT_TRUE(ports.count(10256)) << "healthz port";

  // This node's name, from the downward API, becomes hostnameOverride.
  bool nodeName = false;
  for (const auto& e : c["env"]) {
    nodeName |= e["name"].as<std::string>() == "NODE_NAME" &&
                e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>("") == "spec.nodeName";
  }
  EXPECT_TRUE(nodeName);
  std::vector<std::string> args;
  for (const auto& a : c["args"]) {
    args.push_back(a.as<std::string>());
  }
  EXPECT_THAT(args, IsSupersetOf({"run", "--hostname-override=$(NODE_NAME)",
                                  "--config=/etc/switchyard/config.yaml"}));

  // Volumes: bpffs and the cgroup v2 root from the host, the config from the ConfigMap.
  std::map<std::string, std::string> hostPaths;  // volume -> host path
  std::string configMapVolume;
  for (const auto& v : pod["volumes"]) {
    if (v["hostPath"]) {
      hostPaths[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
    }
    if (v["configMap"] && v["configMap"]["name"].as<std::string>() == "switchyard") {
      configMapVolume = v["name"].as<std::string>();
    }
  }
  std::map<std::string, YAML::Node> mounts;  // mountPath -> mount
  for (const auto& m : c["volumeMounts"]) {
    mounts.emplace(m["mountPath"].as<std::string>(), static_cast<const YAML::Node&>(m));
  }
  ASSERT_TRUE(mounts.count("/sys/fs/bpf"));
  EXPECT_EQ(hostPaths[mounts["/sys/fs/bpf"]["name"].as<std::string>()], "/sys/fs/bpf");
  ASSERT_TRUE(mounts.count("/run/switchyard/cgroupv2")) << "where config bpf.cgroupPath points";
  EXPECT_EQ(hostPaths[mounts["/run/switchyard/cgroupv2"]["name"].as<std::string>()], "/sys/fs/cgroup");
  ASSERT_TRUE(mounts.count("/etc/switchyard"));
  EXPECT_EQ(mounts["/etc/switchyard"]["name"].as<std::string>(), configMapVolume);

  // bpffs reaches the host (Bidirectional) from the init container: Kubernetes allows
  // Bidirectional only in privileged containers, and that one is short-lived.
  YAML::Node init = container(pod, "initContainers", "mount-bpf-fs");
  ASSERT_TRUE(init);
  EXPECT_TRUE(init["securityContext"]["privileged"].as<bool>(false));
  bool bidirectional = false;
  for (const auto& m : init["volumeMounts"]) {
    bidirectional |= m["mountPath"].as<std::string>() == "/sys/fs/bpf" &&
                     m["mountPropagation"].as<std::string>("") == "Bidirectional";
  }
  EXPECT_TRUE(bidirectional);
  EXPECT_EQ(mounts["/sys/fs/bpf"]["mountPropagation"].as<std::string>(""), "HostToContainer");
}

// On AppArmor hosts the runtime's default profile denies writes under /sys/fs/bpf (and
// mount): every container runs unconfined, by the field (1.30+) and by the annotation
// older clusters read, which must agree and name containers that exist.
TEST_F(Manifests, EveryContainerRunsWithoutAppArmorConfinement) {
  YAML::Node tmpl = find("DaemonSet")["spec"]["template"];
  const std::string prefix = "container.apparmor.security.beta.kubernetes.io/";
  std::set<std::string> names, annotated;
  for (const char* list : {"initContainers", "containers"}) {
    for (const auto& c : tmpl["spec"][list]) {
      std::string name = c["name"].as<std::string>();
      names.insert(name);
      EXPECT_EQ(c["securityContext"]["appArmorProfile"]["type"].as<std::string>(""), "Unconfined")
          << list << " " << name;
      EXPECT_EQ(tmpl["metadata"]["annotations"][prefix + name].as<std::string>(""), "unconfined")
          << list << " " << name;
    }
  }
  for (const auto& a : tmpl["metadata"]["annotations"]) {
    std::string key = a.first.as<std::string>();
    if (key.rfind(prefix, 0) == 0) {
      annotated.insert(key.substr(prefix.size()));
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"mount-bpf-fs", "switchyard"}));
  EXPECT_EQ(annotated, names) << "an annotation for a container that does not exist";
}

}  // namespace
}  // namespace switchyard
