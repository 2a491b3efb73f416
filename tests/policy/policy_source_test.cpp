// The files source delivers Pods, Namespaces and NetworkPolicies when policy asks for them,
// with changes and deletions, and leaves them alone otherwise.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <fstream>

#include "k8sclient/manifest_source.h"

namespace switchyard::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

struct Recorder : ServiceEventHandler {
  std::vector<std::string> events;
  void onServiceUpsert(const Service& s) override { events.push_back("+svc " + s.metadata.key()); }
  void onServiceDelete(const Service& s) override { events.push_back("-svc " + s.metadata.key()); }
  void onEndpointSliceUpsert(const EndpointSlice&) override {}
  void onEndpointSliceDelete(const EndpointSlice&) override {}
  void onSynced() override {}
  void onPodUpsert(const Pod& p) override {
    events.push_back("+pod " + p.metadata.key() + " " + (p.podIPs.empty() ? "-" : p.podIPs[0]));
  }
  void onPodDelete(const Pod& p) override { events.push_back("-pod " + p.metadata.key()); }
  void onNamespaceUpsert(const Namespace& n) override { events.push_back("+ns " + n.metadata.name); }
  void onNamespaceDelete(const Namespace& n) override { events.push_back("-ns " + n.metadata.name); }
  void onNetworkPolicyUpsert(const NetworkPolicy& p) override {
    events.push_back("+netpol " + p.metadata.key() + " rules " + std::to_string(p.ingressRules.size()));
  }
  void onNetworkPolicyDelete(const NetworkPolicy& p) override {
    events.push_back("-netpol " + p.metadata.key());
  }
};

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sy-policy-src-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::string tmp = path + "/." + name + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path + "/" + name);
  }
};

const char* kObjects = R"(apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: x, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 198.18.1.5}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: x}
spec: {ports: [{port: 80}]}
)";

TEST(PolicySource, FilesDeliverPodsNamespacesAndPoliciesWhenAskedWithChangesAndDeletes) {
  TempDir dir;
  dir.write("objects.yaml", kObjects);
  boost::asio::io_context io;
  Recorder rec;
  std::vector<ManifestProblem> problems;
  ManifestSource src(io, dir.path, rec, [&](const ManifestProblem& p) { problems.push_back(p); });
  src.setPolicyKinds(true);
  src.start();
  EXPECT_THAT(rec.events, UnorderedElementsAre("+ns x", "+pod x/web 198.18.1.5",
                                               "+netpol x/deny rules 0", "+svc x/web"));
  rec.events.clear();
  // The pod moves address, the policy gains a rule, the namespace goes.
  std::string changed = kObjects;
  changed.replace(changed.find("198.18.1.5"), 10, "198.18.1.6");
  changed.replace(changed.find("spec: {podSelector: {}}"), 23,
                  "spec: {podSelector: {}, ingress: [{}]}");
  changed.erase(0, changed.find("---\n") + 4);
  dir.write("objects.yaml", changed);
  src.poll();
  EXPECT_THAT(rec.events, UnorderedElementsAre("+pod x/web 198.18.1.6", "+netpol x/deny rules 1",
                                               "-ns x"));
  rec.events.clear();
  std::filesystem::remove(dir.path + "/objects.yaml");
  src.poll();
  EXPECT_THAT(rec.events, UnorderedElementsAre("-pod x/web", "-netpol x/deny", "-svc x/web"));
  EXPECT_TRUE(problems.empty()) << problems.front().str();
}

TEST(PolicySource, WithoutPolicyThePolicyKindsAreNotReadEvenWhenBroken) {
  TempDir dir;
  // A Pod switchyard could not read is someone else's business while policy is off.
  dir.write("objects.yaml", std::string(kObjects) +
                                "---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: x}\n"
                                "spec: {containers: [{name: c, ports: [{containerPort: 99999}]}]}\n");
  boost::asio::io_context io;
  Recorder rec;
  std::vector<ManifestProblem> problems;
  ManifestSource src(io, dir.path, rec, [&](const ManifestProblem& p) { problems.push_back(p); });
  src.start();
  EXPECT_THAT(rec.events, ElementsAre("+svc x/web"));
  EXPECT_TRUE(problems.empty()) << problems.front().str();

  // With policy on, the same broken Pod is reported by file, line and field; the rest applies.
  Recorder rec2;
  ManifestSource src2(io, dir.path, rec2, [&](const ManifestProblem& p) { problems.push_back(p); });
  src2.setPolicyKinds(true);
  src2.start();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].field, "spec.containers[0].ports[0].containerPort");
  EXPECT_EQ(problems[0].object, "Pod x/bad");
  EXPECT_GT(problems[0].line, 20);
  EXPECT_EQ(rec2.events.size(), 4u);
}

}  // namespace
}  // namespace switchyard::k8s
