// Config parsing: the example of the issue works as written; every mistake is reported as
// FILE:LINE: field: reason, all of them in one pass.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

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
                "cfg.yaml:3: clusterCIDR: must be a CIDR"},
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
        BadCase{"map_size_not_a_number", "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nbpf:\n  mapSizes:\n    services: lots\n",
                "cfg.yaml:5: bpf.mapSizes.services: must be a number"}),
    [](const auto& info) { return std::string(info.param.name); });

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
