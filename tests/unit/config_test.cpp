// Config parsing: the example of the issue works as written; every mistake is reported as
// FILE:LINE: field: reason, all of them in one pass.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"

#include "bpf/abi.h"

namespace switchyard::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kIssueExample = R"(apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
hostnameOverride: node-a
healthzBindAddress: 0.0.0.0:10256     # default
metricsBindAddress: 127.0.0.1:10249   # default
clusterCIDR: 198.18.0.0/16
source:
  kind: files                          # files | apiserver (next issue)
  path: /etc/switchyard/manifests      # a file or a directory of *.yaml
bpf:
  pinPath: /sys/fs/bpf/switchyard      # default; one daemon per pin path
  cgroupPath: /sys/fs/cgroup/unified   # default: the cgroup v2 root, auto-detected
  socketLB: true
  devices: [veth-c]                    # pod-facing devices for tc ClusterIP DNAT
)";

TEST(Config, TheIssueExampleParsesAsWritten) {
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig(kIssueExample, "cfg.yaml", c, errors)) << ::testing::PrintToString(errors);
  EXPECT_EQ(c.hostnameOverride, "node-a");
  EXPECT_EQ(c.healthzBindAddress, "0.0.0.0:10256");
  EXPECT_EQ(c.metricsBindAddress, "127.0.0.1:10249");
  EXPECT_EQ(c.clusterCIDR, "198.18.0.0/16");
  EXPECT_EQ(c.source.kind, "files");
  EXPECT_EQ(c.source.path, "/etc/switchyard/manifests");
  EXPECT_EQ(c.bpf.pinPath, "/sys/fs/bpf/switchyard");
  EXPECT_EQ(c.bpf.cgroupPath, "/sys/fs/cgroup/unified");
  EXPECT_TRUE(c.bpf.socketLB);
  EXPECT_THAT(c.bpf.devices, ElementsAre("veth-c"));
}

TEST(Config, DefaultsMirrorKubeProxy) {
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                          "source: {kind: files, path: /m}\n",
                          "c", c, errors));
  EXPECT_EQ(c.healthzBindAddress, "0.0.0.0:10256");
  EXPECT_EQ(c.metricsBindAddress, "127.0.0.1:10249");
  EXPECT_EQ(c.bpf.pinPath, "/sys/fs/bpf/switchyard");
  EXPECT_EQ(c.bpf.cgroupPath, "");  // auto-detected at run time
  EXPECT_TRUE(c.bpf.socketLB);
  EXPECT_EQ(c.syncPeriod, std::chrono::seconds(30));
}

TEST(Config, ConntrackLifetimesAreKubeProxysFieldNames) {
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                          "source: {kind: files, path: /m}\n"
                          "conntrack: {tcpEstablishedTimeout: 1h, tcpCloseWaitTimeout: 0s, udpTimeout: 30s}\n",
                          "c", c, errors))
      << (errors.empty() ? "" : errors.front());
  EXPECT_EQ(c.conntrack.tcpEstablishedTimeout, std::chrono::hours(1));
  EXPECT_EQ(c.conntrack.tcpCloseWaitTimeout, std::chrono::seconds(10)) << "0 is the default, as kube-proxy";
  EXPECT_EQ(c.conntrack.udpTimeout, std::chrono::seconds(30));
  Config d;
  EXPECT_EQ(d.conntrack.tcpEstablishedTimeout, std::chrono::hours(6));
  EXPECT_EQ(d.conntrack.udpTimeout, std::chrono::seconds(60));
}

// -- Maglev (issue 11 item 3) --
TEST(Config, LoadBalancerDefaultsToRandomAndTakesMaglevSettings) {
  Config def;
  EXPECT_EQ(def.loadBalancer.algorithm, "random") << "kube-proxy's choice is random";
  EXPECT_EQ(def.loadBalancer.maglev.tableSize, 16381u);
  EXPECT_EQ(def.loadBalancer.maglev.tableSize, static_cast<uint32_t>(SY_MAGLEV_TABLE_DEFAULT));
  EXPECT_EQ(def.loadBalancer.maglev.hashSeed, static_cast<uint32_t>(SY_MAGLEV_SEED_DEFAULT));
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                          "loadBalancer:\n  algorithm: maglev\n  maglev: {tableSize: 65521, hashSeed: 7}\n",
                          "c", c, errors))
      << ::testing::PrintToString(errors);
  EXPECT_EQ(c.loadBalancer.algorithm, "maglev");
  EXPECT_EQ(c.loadBalancer.maglev.tableSize, 65521u);
  EXPECT_EQ(c.loadBalancer.maglev.hashSeed, 7u);
}

// -- XDP fast path (issue 11 item 4) --
TEST(Config, AccelerationDefaultsToDisabledAndTakesDenyCIDRsOfBothFamilies) {
  Config def;
  EXPECT_EQ(def.loadBalancer.acceleration, "disabled");
  EXPECT_TRUE(def.loadBalancer.denyCIDRs.empty());
  for (const char* mode : {"native", "best-effort", "disabled"}) {
    Config c;
    std::vector<std::string> errors;
    std::string deny = std::string(mode) == "disabled" ? "" : "  denyCIDRs: [198.51.100.0/24, \"2001:db8:bad::/48\", 203.0.113.7/32]\n";
    ASSERT_TRUE(parseConfig(std::string("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                                        "loadBalancer:\n  acceleration: ") + mode + "\n" + deny,
                            "c", c, errors))
        << ::testing::PrintToString(errors);
    EXPECT_EQ(c.loadBalancer.acceleration, mode);
    if (!deny.empty()) {
      EXPECT_THAT(c.loadBalancer.denyCIDRs, ElementsAre("198.51.100.0/24", "2001:db8:bad::/48", "203.0.113.7/32"));
    }
  }
}

TEST(Config, SocketLBIsABooleanOrAMappingWithSkipCgroups) {
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                          "bpf:\n  socketLB:\n    enabled: true\n"
                          "    skipCgroups: [/sys/fs/cgroup/system.slice/nfs.service, /sys/fs/cgroup/mesh]\n",
                          "c", c, errors))
      << errors.front();
  EXPECT_TRUE(c.bpf.socketLB);
  EXPECT_THAT(c.bpf.socketLBSkipCgroups, ElementsAre("/sys/fs/cgroup/system.slice/nfs.service", "/sys/fs/cgroup/mesh"));
  Config off;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                          "bpf:\n  socketLB: {enabled: false}\n",
                          "c", off, errors));
  EXPECT_FALSE(off.bpf.socketLB);
  EXPECT_TRUE(off.bpf.socketLBSkipCgroups.empty());
}

TEST(Config, LoadBalancerModeDefaultsToSnatAndTakesDsrOrHybrid) {
  Config d;
  EXPECT_EQ(d.loadBalancer.mode, "snat");
  EXPECT_EQ(d.loadBalancer.dsrDispatch, "opt");
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                          "loadBalancer:\n  mode: hybrid\n  dsrDispatch: ipip\n",
                          "c", c, errors))
      << errors.front();
  EXPECT_EQ(c.loadBalancer.mode, "hybrid");
  EXPECT_EQ(c.loadBalancer.dsrDispatch, "ipip");
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* expected;  // the exact FILE:LINE: field: reason (or its start)
};

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, NameFileLineFieldAndReason) {
  Config c;
  std::vector<std::string> errors;
  EXPECT_FALSE(parseConfig(GetParam().yaml, "cfg.yaml", c, errors));
  ASSERT_FALSE(errors.empty());
  EXPECT_THAT(errors[0], HasSubstr(GetParam().expected)) << ::testing::PrintToString(errors);
}

constexpr const char* kHead = "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n";

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigErrors,
    ::testing::Values(
        BadCase{"unknown_top_level", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nmode: iptables\n",
                "cfg.yaml:3: mode: unknown field"},
        BadCase{"unknown_nested", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  socketLb: true\n",
                "cfg.yaml:4: bpf.socketLb: unknown field"},
        BadCase{"wrong_type_bool", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  socketLB: maybe\n",
                "cfg.yaml:4: bpf.socketLB: must be true or false"},
        BadCase{"wrong_type_list", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  devices: veth-c\n",
                "cfg.yaml:4: bpf.devices: must be a list of strings"},
        BadCase{"bad_bind_address", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nmetricsBindAddress: localhost:10249\n",
                "cfg.yaml:3: metricsBindAddress: must be IP:port"},
        BadCase{"bad_port", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nhealthzBindAddress: 0.0.0.0:70000\n",
                "cfg.yaml:3: healthzBindAddress: must be IP:port"},
        BadCase{"bad_cidr", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nclusterCIDR: 198.18.0.0/33\n",
                "cfg.yaml:3: clusterCIDR: \"198.18.0.0/33\": an IPv4 prefix length must be 0-32"},
        BadCase{"cidr_without_length", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nclusterCIDR: 198.18.0.0/16,2001:db8::/\n",
                "cfg.yaml:3: clusterCIDR: \"2001:db8::/\": must be a CIDR"},
        BadCase{"skip_cgroup_relative", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  socketLB:\n    skipCgroups: [mesh]\n",
                "cfg.yaml:5: bpf.socketLB.skipCgroups[0]: must be an absolute path, got \"mesh\""},
        BadCase{"socket_lb_unknown_field", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  socketLB:\n    skip: [/x]\n",
                "cfg.yaml:5: bpf.socketLB.skip: unknown field"},
        BadCase{"bad_lb_mode", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  mode: maglev\n",
                "cfg.yaml:4: loadBalancer.mode: must be snat, dsr or hybrid, got \"maglev\""},
        BadCase{"bad_dsr_dispatch", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  dsrDispatch: gre\n",
                "cfg.yaml:4: loadBalancer.dsrDispatch: must be opt or ipip, got \"gre\""},
        BadCase{"bad_source_kind", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nsource:\n  kind: etcd\n",
                "cfg.yaml:4: source.kind: must be files or apiserver"},
        BadCase{"files_without_path", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nsource:\n  kind: files\n",
                "cfg.yaml:3: source.path: is required"},
        BadCase{"relative_pin_path", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  pinPath: sys/fs/bpf\n",
                "cfg.yaml:4: bpf.pinPath: must be an absolute path"},
        BadCase{"bad_duration", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nsyncPeriod: soon\n",
                "cfg.yaml:3: syncPeriod: must be a duration"},
        BadCase{"wrong_api_version", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: SwitchyardConfiguration\n",
                "cfg.yaml:1: apiVersion: must be switchyard.dev/v1alpha1"},
        BadCase{"missing_kind", "apiVersion: switchyard.dev/v1alpha1\n", "cfg.yaml:1: kind: is required"},
        BadCase{"yaml_syntax", "apiVersion: switchyard.dev/v1alpha1\nkind: [unclosed\n", "cfg.yaml:3: invalid YAML"},
        BadCase{"conntrack_lifetime_too_long", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nconntrack:\n  tcpEstablishedTimeout: 24h\n",
                "cfg.yaml:4: conntrack.tcpEstablishedTimeout: must be from 1s to 6h (0: the default), got \"24h\""},
        BadCase{"conntrack_lifetime_not_a_duration", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nconntrack:\n  udpTimeout: long\n",
                "cfg.yaml:4: conntrack.udpTimeout: must be a duration"},
        BadCase{"conntrack_unknown_field", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nconntrack:\n  maxPerCore: 32768\n",
                "cfg.yaml:4: conntrack.maxPerCore: unknown field"},
        BadCase{"map_size_not_a_number", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  mapSizes:\n    services: lots\n",
                "cfg.yaml:5: bpf.mapSizes.services: must be a number"},
        // -- Maglev (issue 11 item 3) --
        BadCase{"lb_algorithm_unknown", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  algorithm: leastconn\n",
                "cfg.yaml:4: loadBalancer.algorithm: must be random or maglev, got \"leastconn\""},
        BadCase{"maglev_table_size_not_prime", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  maglev:\n    tableSize: 16384\n",
                "cfg.yaml:5: loadBalancer.maglev.tableSize: must be a prime between 3 and 65521"},
        BadCase{"maglev_table_size_too_big", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  maglev:\n    tableSize: 131071\n",
                "cfg.yaml:5: loadBalancer.maglev.tableSize: must be a prime between 3 and 65521"},
        // -- NetworkPolicy (issue 12) --
        BadCase{"policy_enabled_not_a_bool", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\npolicy:\n  enabled: yes please\n",
                "cfg.yaml:4: policy.enabled: must be true or false"},
        BadCase{"policy_log_denied_not_a_bool", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\npolicy:\n  enabled: true\n  logDenied: 1\n",
                "cfg.yaml:5: policy.logDenied: must be true or false"},
        BadCase{"policy_unknown_field", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\npolicy:\n  enable: true\n",
                "cfg.yaml:4: policy.enable: unknown field"},
        BadCase{"policy_not_a_mapping", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\npolicy: true\n",
                "cfg.yaml:3: policy: must be a mapping"},
        // -- XDP fast path (issue 11 item 4) --
        BadCase{"acceleration_unknown", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  acceleration: generic\n",
                "cfg.yaml:4: loadBalancer.acceleration: must be disabled, native or best-effort, got \"generic\""},
        BadCase{"deny_cidr_bad", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  acceleration: native\n  denyCIDRs: [198.51.100.0/24, 203.0.113.0/33]\n",
                "cfg.yaml:5: loadBalancer.denyCIDRs[1]: \"203.0.113.0/33\""},
        BadCase{"deny_cidr_not_a_list", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  acceleration: native\n  denyCIDRs: 198.51.100.0/24\n",
                "cfg.yaml:5: loadBalancer.denyCIDRs: must be a list of strings"},
        BadCase{"deny_cidr_two_in_one", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  acceleration: native\n  denyCIDRs: [\"198.51.100.0/24,2001:db8::/32\"]\n",
                "cfg.yaml:5: loadBalancer.denyCIDRs[0]: must be one CIDR"},
        BadCase{"deny_cidrs_without_acceleration", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nloadBalancer:\n  denyCIDRs: [198.51.100.0/24]\n",
                "cfg.yaml:4: loadBalancer.denyCIDRs: needs loadBalancer.acceleration native or best-effort"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Config, PolicyIsOffByDefaultAndTakesEnabledAndLogDenied) {
  Config d;
  EXPECT_FALSE(d.policy.enabled);  // a pure kube-proxy replacement unless asked
  EXPECT_FALSE(d.policy.logDenied);
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                          "policy:\n  enabled: true\n  logDenied: true\n",
                          "c", c, errors))
      << ::testing::PrintToString(errors);
  EXPECT_TRUE(c.policy.enabled);
  EXPECT_TRUE(c.policy.logDenied);
}

TEST(Config, EveryErrorIsReportedInOnePass) {
  Config c;
  std::vector<std::string> errors;
  std::string yaml = std::string(kHead) +
                     "bogus: 1\n"
                     "metricsBindAddress: nowhere\n"
                     "bpf:\n"
                     "  socketLB: 3\n";
  EXPECT_FALSE(parseConfig(yaml, "cfg.yaml", c, errors));
  EXPECT_THAT(errors, ElementsAre("cfg.yaml:3: bogus: unknown field",
                                  HasSubstr("cfg.yaml:4: metricsBindAddress: must be IP:port"),
                                  "cfg.yaml:6: bpf.socketLB: must be true or false"));
}

TEST(Config, ADuplicateFieldIsAnErrorAtItsSecondOccurrence) {
  Config c;
  std::vector<std::string> errors;
  std::string yaml = std::string(kHead) +
                     "bpf:\n"
                     "  socketLB: true\n"
                     "  socketLB: false\n"
                     "bpf:\n"
                     "  devices: [veth-c]\n";
  EXPECT_FALSE(parseConfig(yaml, "cfg.yaml", c, errors));
  // Nested and top-level: each named at the line of the repeated key.
  EXPECT_THAT(errors, ElementsAre("cfg.yaml:5: bpf.socketLB: duplicate field", "cfg.yaml:6: bpf: duplicate field"));
  // The first value stands; the repeated block is not merged in.
  EXPECT_TRUE(c.bpf.socketLB);
  EXPECT_TRUE(c.bpf.devices.empty());
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sy-config-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Config, AFileThatCannotBeReadIsOneFileLineFieldReasonLine) {
  TempDir dir;
  Config c;
  std::vector<std::string> errors;
  std::string missing = dir.path() + "/missing.yaml";
  EXPECT_FALSE(loadConfig(missing, c, errors));
  EXPECT_THAT(errors, ElementsAre(missing + ":1: config: cannot be read: No such file or directory"));
  errors.clear();
  EXPECT_FALSE(loadConfig(dir.path(), c, errors));
  EXPECT_THAT(errors, ElementsAre(dir.path() + ":1: config: cannot be read: Is a directory"));
}

TEST(Config, LoadConfigReadsAFile) {
  TempDir dir;
  std::string file = dir.path() + "/c.yaml";
  std::ofstream(file) << kIssueExample;
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(loadConfig(file, c, errors)) << ::testing::PrintToString(errors);
  EXPECT_THAT(c.bpf.devices, ElementsAre("veth-c"));
  EXPECT_EQ(c.fieldLines.at("bpf.cgroupPath"), 12);
}

// The cgroup v2 mount of this machine, from /proc/self/mountinfo.
std::string cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) {
      continue;
    }
    std::istringstream f(line.substr(0, dash));
    std::string id, parent, dev, root, mountPoint;
    f >> id >> parent >> dev >> root >> mountPoint;
    if (root == "/") {
      return mountPoint;
    }
  }
  return "";
}

TEST(Config, CgroupPathMustBeACgroupV2Directory) {
  TempDir dir;
  std::string file = dir.path() + "/regular-file";
  std::ofstream(file) << "x";
  std::string cg2 = cgroup2Mount();
  ASSERT_FALSE(cg2.empty()) << "these machines have a cgroup v2 hierarchy (issue 3)";
  struct Case {
    std::string path;
    bool socketLB;
    std::string expected;  // "" = valid
  } cases[] = {
      {dir.path() + "/nope", true,
       "cfg.yaml:5: bpf.cgroupPath: \"" + dir.path() + "/nope\": No such file or directory (must be a directory of "
       "the cgroup v2 hierarchy)"},
      {file, true, "cfg.yaml:5: bpf.cgroupPath: \"" + file + "\" is not a directory"},
      {dir.path(), true, "cfg.yaml:5: bpf.cgroupPath: \"" + dir.path() + "\" is not on a cgroup v2 filesystem"},
      {cg2, true, ""},
      // Socket LB off: the daemon never touches the cgroup, so nothing to check.
      {dir.path() + "/nope", false, ""},
  };
  for (const Case& tc : cases) {
    Config c;
    std::vector<std::string> errors;
    std::string yaml = std::string(kHead) + "bpf:\n  socketLB: " + (tc.socketLB ? "true" : "false") +
                       "\n  cgroupPath: " + tc.path + "\n";
    ASSERT_TRUE(parseConfig(yaml, "cfg.yaml", c, errors)) << ::testing::PrintToString(errors);
    bool ok = validateHostPaths(c, "cfg.yaml", errors);
    if (tc.expected.empty()) {
      EXPECT_TRUE(ok) << tc.path << ": " << ::testing::PrintToString(errors);
    } else {
      EXPECT_FALSE(ok) << tc.path;
      EXPECT_THAT(errors, ElementsAre(::testing::StartsWith(tc.expected))) << tc.path;
    }
  }
}

TEST(Config, AKubeconfigInTheFileSelectsTheApiServerSource) {
  struct Case {
    const char* name;
    std::string yaml;
    bool inCluster;
    const char* kind;
  } cases[] = {
      {"kubeconfig, no kind", std::string(kHead) + "clientConnection:\n  kubeconfig: /etc/kubeconfig\n", false, "apiserver"},
      {"nothing, outside a cluster", std::string(kHead), false, "files"},
      {"nothing, in a cluster", std::string(kHead), true, "apiserver"},
      {"kubeconfig, kind files wins", std::string(kHead) + "source: {kind: files, path: /m}\nclientConnection:\n  kubeconfig: /k\n",
       true, "files"},
  };
  for (const Case& tc : cases) {
    Config c;
    std::vector<std::string> errors;
    ASSERT_TRUE(parseConfig(tc.yaml, "cfg.yaml", c, errors)) << tc.name << ": " << ::testing::PrintToString(errors);
    resolveDefaults(c, tc.inCluster);
    EXPECT_EQ(c.source.kind, tc.kind) << tc.name;
  }
}

TEST(Config, ClientConnectionQpsAndBurst) {
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig(std::string(kHead) + "clientConnection:\n  qps: 12.5\n  burst: 40\n", "cfg.yaml", c, errors))
      << ::testing::PrintToString(errors);
  EXPECT_DOUBLE_EQ(c.clientConnection.qps, 12.5);
  EXPECT_EQ(c.clientConnection.burst, 40);

  errors.clear();
  Config bad;
  EXPECT_FALSE(parseConfig(std::string(kHead) + "clientConnection:\n  qps: fast\n  burst: 1.5\n", "cfg.yaml", bad, errors));
  EXPECT_THAT(errors, ElementsAre("cfg.yaml:4: clientConnection.qps: must be a number, got \"fast\"",
                                  "cfg.yaml:5: clientConnection.burst: must be an integer, got 1.5"));
  errors.clear();
  EXPECT_FALSE(parseConfig(std::string(kHead) + "clientConnection:\n  qps: -1\n  burst: [1]\n", "cfg.yaml", bad, errors));
  EXPECT_THAT(errors, ElementsAre("cfg.yaml:4: clientConnection.qps: must be between 0 and 1000000, got -1",
                                  "cfg.yaml:5: clientConnection.burst: must be a number"));
}

TEST(Config, HostPortAcceptsIPv6InBrackets) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(parseHostPort("[::1]:10249", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 10249);
  EXPECT_FALSE(parseHostPort("::1:10249", host, port));
  EXPECT_FALSE(parseHostPort("127.0.0.1", host, port));
}

TEST(Config, GoDurations) {
  std::chrono::milliseconds d{};
  ASSERT_TRUE(parseDuration("1m30s", d));
  EXPECT_EQ(d.count(), 90000);
  ASSERT_TRUE(parseDuration("250ms", d));
  EXPECT_EQ(d.count(), 250);
  EXPECT_FALSE(parseDuration("10", d));
  EXPECT_FALSE(parseDuration("5 minutes", d));
}

}  // namespace
}  // namespace switchyard::config
