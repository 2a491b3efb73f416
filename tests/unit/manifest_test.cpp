// The manifest source: kubectl-shaped YAML, bad documents reported with file, document,
// line and field and skipped, the rest applied; changes delivered as events.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <map>
#include <fstream>

#include "k8sclient/manifest_source.h"

namespace switchyard::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string fixture(const std::string& name) { return std::string(SY_FIXTURES) + "/manifests/" + name; }

// Records events as strings like "+svc shop/web".
struct Recorder : ServiceEventHandler {
  std::vector<std::string> events;
  bool synced = false;
  void onServiceUpsert(const Service& s) override { events.push_back("+svc " + s.metadata.key()); }
  void onServiceDelete(const Service& s) override { events.push_back("-svc " + s.metadata.key()); }
  void onEndpointSliceUpsert(const EndpointSlice& s) override { events.push_back("+eps " + s.metadata.key()); }
  void onEndpointSliceDelete(const EndpointSlice& s) override { events.push_back("-eps " + s.metadata.key()); }
  void onSynced() override { synced = true; }
  void onNodeUpsert(const Node& n) override {
    events.push_back("+node " + n.metadata.name + (n.metadata.deleting ? " deleting" : ""));
  }
  void onNodeDelete(const Node& n) override { events.push_back("-node " + n.metadata.name); }
};

// Collects what one file holds.
struct Collect : ManifestVisitor {
  std::map<std::string, Service> services;
  std::map<std::string, EndpointSlice> slices;
  std::vector<std::string> invalidKeys;
  void service(const Service& s, size_t) override { services[s.metadata.key()] = s; }
  void endpointSlice(const EndpointSlice& s, size_t) override { slices[s.metadata.key()] = s; }
  void invalid(const std::string& key) override { invalidKeys.push_back(key); }
};

Collect parse(const std::vector<std::string>& files, std::vector<ManifestProblem>& problems) {
  Collect c;
  for (const std::string& f : files) {
    parseManifestFile(f, c, problems);
  }
  return c;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sy-manifest-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::string tmp = path_ + "/." + name + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path_ + "/" + name);
  }

 private:
  std::string path_;
};

TEST(Manifests, KubectlGetListOutputIsRead) {
  std::vector<ManifestProblem> problems;
  Collect set = parse({fixture("kubectl-list.yaml")}, problems);
  EXPECT_TRUE(problems.empty()) << problems[0].str();
  ASSERT_EQ(set.services.count("shop/web"), 1u);
  ASSERT_EQ(set.slices.count("shop/web-x7k2p"), 1u);
  const Service& s = set.services.at("shop/web");
  EXPECT_EQ(s.clusterIPs.at(0), "198.19.0.10");
  EXPECT_EQ(s.ports.at(0).targetPort.name, "http-alt");
  const EndpointSlice& e = set.slices.at("shop/web-x7k2p");
  EXPECT_EQ(e.endpoints.size(), 2u);
  EXPECT_EQ(e.endpoints[1].conditions.ready, false);
}

TEST(Manifests, BadDocumentsAreReportedAndSkippedTheRestApplied) {
  std::vector<ManifestProblem> problems;
  Collect set = parse({fixture("invalid-docs.yaml")}, problems);
  EXPECT_EQ(set.services.count("default/good"), 1u);
  EXPECT_EQ(set.slices.count("default/good-1"), 1u);
  EXPECT_EQ(set.services.count("default/bad-port"), 0u);
  EXPECT_THAT(set.invalidKeys, ElementsAre("Service default/bad-port"));
  ASSERT_EQ(problems.size(), 2u);
  // The port error names file, line, document, object and field.
  EXPECT_EQ(problems[0].str(), fixture("invalid-docs.yaml") +
                                   ":22: document 2: Service default/bad-port: spec.ports[0].port: "
                                   "must be between 1 and 65535, got 0");
  // The broken YAML document is the fourth; the Deployment in between is not ours, no error.
  EXPECT_EQ(problems[1].document, 4u);
  EXPECT_THAT(problems[1].reason, HasSubstr("invalid YAML"));
  EXPECT_GE(problems[1].line, 32);
  EXPECT_LE(problems[1].line, 35);
}

constexpr const char* kSvc = R"(apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  clusterIP: 198.19.0.10
  ports:
  - name: http
    port: 80
    protocol: TCP
)";

TEST(Manifests, AnInvalidEditKeepsTheLastGoodVersion) {
  TempDir dir;
  dir.write("svc.yaml", kSvc);
  boost::asio::io_context io;
  Recorder rec;
  std::vector<ManifestProblem> problems;
  ManifestSource src(io, dir.path(), rec, [&](const ManifestProblem& p) { problems.push_back(p); });
  src.start();
  ASSERT_THAT(rec.events, ElementsAre("+svc default/web"));

  rec.events.clear();
  std::string bad = kSvc;
  bad.replace(bad.find("port: 80"), 8, "port: -1");
  dir.write("svc.yaml", bad);
  src.poll();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].field, "spec.ports[0].port");
  EXPECT_TRUE(rec.events.empty()) << "a bad edit must neither remove nor change the service";

  // Fixed as it was: the handler already has that version, so nothing is delivered.
  dir.write("svc.yaml", kSvc);
  src.poll();
  EXPECT_TRUE(rec.events.empty());
  // A real change is delivered.
  std::string changed = kSvc;
  changed.replace(changed.find("port: 80"), 8, "port: 81");
  dir.write("svc.yaml", changed);
  src.poll();
  EXPECT_THAT(rec.events, ElementsAre("+svc default/web"));
}

// A Node manifest (its zone label, taints, deletionTimestamp) is delivered like the other
// kinds: what the daemon reads of its own Node when there is no API server.
TEST(Manifests, NodesAreDeliveredWithTheirChangesAndDeletion) {
  TempDir dir;
  const std::string node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-2\n  labels:\n"
                           "    topology.kubernetes.io/zone: zone-b\n";
  dir.write("node.yaml", node);
  boost::asio::io_context io;
  Recorder rec;
  std::vector<ManifestProblem> problems;
  ManifestSource src(io, dir.path(), rec, [&](const ManifestProblem& p) { problems.push_back(p); });
  src.start();
  EXPECT_THAT(rec.events, ElementsAre("+node node-2"));
  rec.events.clear();
  dir.write("node.yaml", node + "  deletionTimestamp: \"2024-01-01T01:00:00Z\"\n");
  src.poll();
  EXPECT_THAT(rec.events, ElementsAre("+node node-2 deleting"));
  rec.events.clear();
  std::filesystem::remove(dir.path() + "/node.yaml");
  src.poll();
  EXPECT_THAT(rec.events, ElementsAre("-node node-2"));
  EXPECT_TRUE(problems.empty()) << problems.front().str();
}

TEST(Manifests, AnObjectInTwoFilesBelongsToTheFirstAndPassesToTheOther) {
  TempDir dir;
  std::string other = kSvc;
  other.replace(other.find("port: 80"), 8, "port: 81");
  dir.write("a.yaml", kSvc);
  dir.write("b.yaml", other);
  boost::asio::io_context io;
  Recorder rec;
  std::vector<ManifestProblem> problems;
  ManifestSource src(io, dir.path(), rec, [&](const ManifestProblem& p) { problems.push_back(p); });
  src.start();
  EXPECT_THAT(rec.events, ElementsAre("+svc default/web"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].file, dir.path() + "/b.yaml");
  EXPECT_THAT(problems[0].reason, HasSubstr("duplicate"));

  // a.yaml goes: the service is not deleted, it becomes b.yaml's version.
  rec.events.clear();
  std::filesystem::remove(dir.path() + "/a.yaml");
  src.poll();
  EXPECT_THAT(rec.events, ElementsAre("+svc default/web"));
  EXPECT_EQ(src.filesParsed(), 3u) << "b.yaml is parsed again for the object it now owns";
  rec.events.clear();
  std::filesystem::remove(dir.path() + "/b.yaml");
  src.poll();
  EXPECT_THAT(rec.events, ElementsAre("-svc default/web"));
}

TEST(Manifests, AFileWithASyntaxErrorKeepsItsObjects) {
  TempDir dir;
  std::string two = std::string(kSvc) + "---\n" + std::string(kSvc).replace(std::string(kSvc).find("name: web"), 9, "name: api");
  dir.write("svc.yaml", two);
  boost::asio::io_context io;
  Recorder rec;
  std::vector<ManifestProblem> problems;
  ManifestSource src(io, dir.path(), rec, [&](const ManifestProblem& p) { problems.push_back(p); });
  src.start();
  EXPECT_EQ(rec.events.size(), 2u);
  rec.events.clear();
  // An edit in progress: the second document is broken and the first one is gone.
  dir.write("svc.yaml", "kind: [unclosed\n");
  src.poll();
  EXPECT_TRUE(rec.events.empty()) << "objects of a file that does not parse stay";
  ASSERT_FALSE(problems.empty());
  EXPECT_THAT(problems.back().reason, HasSubstr("invalid YAML"));
}

TEST(Manifests, SourceDeliversEventsAndFollowsChanges) {
  TempDir dir;
  dir.write("svc.yaml", kSvc);
  boost::asio::io_context io;
  Recorder rec;
  std::vector<std::string> problems;
  ManifestSource src(io, dir.path(), rec, [&](const ManifestProblem& p) { problems.push_back(p.str()); });
  src.start();
  EXPECT_TRUE(rec.synced);
  EXPECT_THAT(rec.events, ElementsAre("+svc default/web"));

  rec.events.clear();
  dir.write("slice.yaml", R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [198.18.16.2]
ports:
- {name: http, port: 8080, protocol: TCP}
)");
  src.poll();
  EXPECT_THAT(rec.events, ElementsAre("+eps default/web-1"));

  rec.events.clear();
  src.poll();  // nothing changed: nothing delivered
  EXPECT_TRUE(rec.events.empty());

  std::filesystem::remove(dir.path() + "/svc.yaml");
  src.poll();
  EXPECT_THAT(rec.events, ElementsAre("-svc default/web"));
  EXPECT_TRUE(problems.empty());
}

TEST(Manifests, MissingPathIsAnErrorNotAnEmptyCluster) {
  boost::asio::io_context io;
  Recorder rec;
  TempDir dir;
  dir.write("svc.yaml", kSvc);
  std::vector<std::string> problems;
  ManifestSource src(io, dir.path(), rec, [&](const ManifestProblem& p) { problems.push_back(p.str()); });
  src.start();
  rec.events.clear();
  std::filesystem::remove_all(dir.path());
  src.poll();
  EXPECT_TRUE(rec.events.empty()) << "a vanished path must not delete every service";
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("keeping the last good manifests"));
}

}  // namespace
}  // namespace switchyard::k8s

namespace switchyard::k8s {
namespace {

TEST(Manifests, KubectlGetJsonOutputIsReadToo) {
  char dir[] = "/tmp/sy-manifest-json-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  std::string good = std::string(dir) + "/list.json", bad = std::string(dir) + "/broken.json";
  std::ofstream(good) << R"({"apiVersion":"v1","kind":"List","items":[
    {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"},
     "spec":{"clusterIP":"198.19.0.10","ports":[{"name":"http","port":80,"protocol":"TCP"}]}},
    {"apiVersion":"v1","kind":"Service","metadata":{"name":"bad","namespace":"default"},
     "spec":{"clusterIP":"198.19.0.11","ports":[{"port":0}]}}]})";
  std::ofstream(bad) << "{\n  \"kind\": \"Service\",\n  oops\n}";
  std::string error;
  auto files = manifestFiles(dir, error);
  ASSERT_EQ(files.size(), 2u);
  std::vector<ManifestProblem> problems;
  Collect set = parse(files, problems);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(set.services.count("default/web"), 1u);
  EXPECT_EQ(set.services.count("default/bad"), 0u);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].str(), bad + ":3: document 1: invalid JSON: Missing a name for object member.");
  EXPECT_EQ(problems[1].str(), good + ":1: document 1: Service default/bad: items[1].spec.ports[0].port: "
                                      "must be between 1 and 65535, got 0");
}

}  // namespace
}  // namespace switchyard::k8s

namespace switchyard::k8s {
namespace {

TEST(Manifests, APathAbsentAtStartIsWaitedForNotSyncedAsEmpty) {
  // After a restart the maps hold the last state; syncing "nothing" would delete it all.
  boost::asio::io_context io;
  Recorder rec;
  std::string dir = "/tmp/sy-manifest-later-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::vector<std::string> problems;
  ManifestSource src(io, dir, rec, [&](const ManifestProblem& p) { problems.push_back(p.str()); });
  src.start();
  EXPECT_FALSE(rec.synced) << "an absent path must not be reported as an empty, synced cluster";
  src.poll();
  ASSERT_EQ(problems.size(), 1u) << "the problem is reported once, not on every poll";
  EXPECT_THAT(problems[0], HasSubstr("waiting for it"));

  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/svc.yaml") << kSvc;
  src.poll();
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(rec.synced);
  EXPECT_THAT(rec.events, ElementsAre("+svc default/web"));
}

}  // namespace
}  // namespace switchyard::k8s

namespace switchyard::k8s {
namespace {

TEST(Manifests, AChangeReparsesOnlyTheFileThatChanged) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) {
    std::string svc = kSvc;
    svc.replace(svc.find("name: web"), 9, "name: web" + std::to_string(i));
    svc.replace(svc.find("198.19.0.10"), 11, "198.19.0.1" + std::to_string(i));
    dir.write("svc" + std::to_string(i) + ".yaml", svc);
  }
  boost::asio::io_context io;
  Recorder rec;
  ManifestSource src(io, dir.path(), rec, [](const ManifestProblem&) {});
  src.start();
  EXPECT_EQ(src.filesParsed(), 3u);
  EXPECT_EQ(rec.events.size(), 3u);

  rec.events.clear();
  std::string svc = kSvc;
  svc.replace(svc.find("name: web"), 9, "name: web1");
  svc.replace(svc.find("port: 80"), 8, "port: 81");
  dir.write("svc1.yaml", svc);
  src.poll();
  EXPECT_EQ(src.filesParsed(), 4u) << "only svc1.yaml should have been parsed again";
  EXPECT_THAT(rec.events, ElementsAre("+svc default/web1"));

  src.poll();
  EXPECT_EQ(src.filesParsed(), 4u);
  std::filesystem::remove(dir.path() + "/svc2.yaml");
  rec.events.clear();
  src.poll();
  EXPECT_EQ(src.filesParsed(), 4u);
  EXPECT_THAT(rec.events, ElementsAre("-svc default/web2"));
}

}  // namespace
}  // namespace switchyard::k8s

namespace switchyard::k8s {
namespace {

// kubectl prints "items" before "kind" (keys in order), so a List is recognised by its
// top-level items array, whose elements are decoded one at a time as they stream in.
TEST(Manifests, AJsonListIsReadItemByItemWhateverTheKeyOrder) {
  TempDir dir;
  std::string list = R"({"apiVersion":"v1","items":[)";
  for (int i = 0; i < 3000; ++i) {
    list += std::string(i ? "," : "") + R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s)" +
            std::to_string(i) + R"(","namespace":"default","annotations":{"items":"not a list"}},)" +
            R"("spec":{"clusterIP":"198.19.)" + std::to_string(i / 250) + "." + std::to_string(1 + i % 250) +
            R"(","ports":[{"name":"http","port":80,"protocol":"TCP"}]}})";
  }
  list += R"(],"kind":"List","metadata":{"resourceVersion":""}})";
  dir.write("all.json", list);
  dir.write("one.json", R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"solo","namespace":"x"},
    "spec":{"clusterIP":"198.19.100.1","ports":[{"port":53,"protocol":"UDP"}]}})");
  std::vector<ManifestProblem> problems;
  std::string error;
  Collect set = parse(manifestFiles(dir.path(), error), problems);
  EXPECT_TRUE(problems.empty()) << problems.front().str();
  EXPECT_EQ(set.services.size(), 3001u);
  EXPECT_EQ(set.services.at("default/s2999").clusterIP, "198.19.11.250");
  EXPECT_EQ(set.services.at("default/s7").metadata.annotations.at("items"), "not a list");
  EXPECT_EQ(set.services.at("x/solo").ports.at(0).protocol, Protocol::UDP);
}

}  // namespace
}  // namespace switchyard::k8s
