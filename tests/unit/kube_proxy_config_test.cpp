// KubeProxyConfiguration as-is: kube-proxy's files of several releases load through
// loadConfig, the fields with a meaning here land in Config, every other field is one warning
// naming it, and a mapped field of the wrong type is a FILE:LINE error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/kube_proxy_config.h"

namespace switchyard::config {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::string fixture(const std::string& name) { return std::string(SY_FIXTURES) + "/kube-proxy/" + name; }

// The warnings' field names ("FILE:LINE: FIELD: text" -> FIELD).
std::vector<std::string> warnedFields(const Config& c) {
  std::vector<std::string> out;
  for (const auto& w : c.warnings) {
    size_t a = w.find(": ");
    size_t b = w.find(": ", a + 2);
    out.push_back(w.substr(a + 2, b - a - 2));
  }
  return out;
}

Config load(const std::string& name) {
  Config c;
  std::vector<std::string> errors;
  EXPECT_TRUE(loadConfig(fixture(name), c, errors)) << ::testing::PrintToString(errors);
  return c;
}

void expectEachWarnedOnce(const Config& c) {
  auto fields = warnedFields(c);
  std::vector<std::string> sorted = fields;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end())
      << "a field warned twice: " << ::testing::PrintToString(c.warnings);
}

TEST(KubeProxyConfig, Kubeadm123LoadsWithKubeProxyDefaults) {
  Config c = load("kubeadm-1.23.yaml");
  Config defaults;
  EXPECT_EQ(c.clientConnection.kubeconfig, "/var/lib/kube-proxy/kubeconfig.conf");
  EXPECT_EQ(c.clusterCIDR, "10.244.0.0/16");
  // kubeadm writes zeros and empty strings; kube-proxy's defaulting reads them as unset.
  EXPECT_EQ(c.clientConnection.qps, defaults.clientConnection.qps);
  EXPECT_EQ(c.clientConnection.burst, defaults.clientConnection.burst);
  EXPECT_EQ(c.syncPeriod, defaults.syncPeriod);
  EXPECT_EQ(c.minSyncPeriod, defaults.minSyncPeriod);
  EXPECT_EQ(c.healthzBindAddress, "0.0.0.0:10256");
  EXPECT_EQ(c.metricsBindAddress, "127.0.0.1:10249");
  EXPECT_THAT(c.nodePortAddresses, IsEmpty());
  EXPECT_EQ(c.hostnameOverride, "");
  // The kubeconfig makes it an API server source, as kube-proxy.
  resolveDefaults(c, false);
  EXPECT_EQ(c.source.kind, "apiserver");
  auto fields = warnedFields(c);
  for (const char* f : {"udpIdleTimeout", "iptables", "ipvs", "winkernel", "mode", "portRange", "oomScoreAdj",
                        "configSyncPeriod", "enableProfiling", "showHiddenMetricsForVersion",
                        "bindAddressHardFail", "conntrack.maxPerCore", "conntrack.tcpEstablishedTimeout",
                        "clientConnection.contentType", "clientConnection.acceptContentTypes"}) {
    EXPECT_THAT(fields, Contains(f)) << ::testing::PrintToString(c.warnings);
  }
  expectEachWarnedOnce(c);
  // Mapped fields are not warned about.
  for (const char* f : {"clusterCIDR", "clientConnection.kubeconfig", "healthzBindAddress", "hostnameOverride",
                        "nodePortAddresses", "bindAddress", "detectLocalMode", "apiVersion", "kind"}) {
    EXPECT_THAT(fields, Not(Contains(f))) << ::testing::PrintToString(c.warnings);
  }
}

TEST(KubeProxyConfig, Kubeadm126DualStackClusterCIDR) {
  Config c = load("kubeadm-1.26.yaml");
  EXPECT_EQ(c.clusterCIDR, "10.244.0.0/16,fd00:10:244::/56");
  EXPECT_THAT(warnedFields(c), Contains("iptables"));
  EXPECT_THAT(warnedFields(c), Not(Contains("detectLocal.bridgeInterface")));  // "" is unset
  expectEachWarnedOnce(c);
}

TEST(KubeProxyConfig, Kubeadm129ConntrackUdpAndNftablesBlock) {
  Config c = load("kubeadm-1.29.yaml");
  EXPECT_EQ(c.clusterCIDR, "192.168.0.0/16");
  EXPECT_EQ(c.verbosity, 0);
  auto fields = warnedFields(c);
  EXPECT_THAT(fields, Contains("nftables"));
  EXPECT_THAT(fields, Contains("conntrack.udpTimeout"));
  EXPECT_THAT(fields, Contains("conntrack.udpStreamTimeout"));
  EXPECT_THAT(fields, Contains("logging.flushFrequency"));
  EXPECT_THAT(fields, Contains("logging.options"));
  expectEachWarnedOnce(c);
}

TEST(KubeProxyConfig, Kubeadm131IptablesPeriodsAndBindAddressesLand) {
  Config c = load("kubeadm-1.31.yaml");
  // mode iptables, periods only in the iptables block (no top-level ones): they apply.
  EXPECT_EQ(c.syncPeriod, std::chrono::seconds(30));
  EXPECT_EQ(c.minSyncPeriod, std::chrono::seconds(1));
  EXPECT_EQ(c.metricsBindAddress, "0.0.0.0:10249");
  EXPECT_EQ(c.healthzBindAddress, "0.0.0.0:10256");
  EXPECT_EQ(c.verbosity, 2);
  auto fields = warnedFields(c);
  EXPECT_THAT(fields, Contains("conntrack.tcpBeLiberal"));
  EXPECT_THAT(fields, Contains("windowsRunAsService"));
  EXPECT_THAT(fields, Contains("mode"));
  expectEachWarnedOnce(c);
}

TEST(KubeProxyConfig, KindIpvsModeTakesThePeriodsOfTheIpvsBlock) {
  Config c = load("kind-ipvs.yaml");
  EXPECT_EQ(c.syncPeriod, std::chrono::seconds(45));
  EXPECT_EQ(c.minSyncPeriod, std::chrono::seconds(2));
  EXPECT_EQ(c.clientConnection.qps, 20);
  EXPECT_EQ(c.clientConnection.burst, 40);
  EXPECT_EQ(c.metricsBindAddress, "0.0.0.0:10249");
  EXPECT_THAT(c.warnings, Contains(HasSubstr("kind-ipvs.yaml:3: mode: \"ipvs\" accepted")));
  EXPECT_THAT(c.warnings, Contains(HasSubstr("kind-ipvs.yaml:10: clientConnection.contentType: accepted, ignored")));
  expectEachWarnedOnce(c);
}

TEST(KubeProxyConfig, NewerTopLevelPeriodsWinAndPrimaryNodePortAddressIsBindAddress) {
  Config c = load("custom-nftables.yaml");
  EXPECT_EQ(c.hostnameOverride, "worker-7");
  EXPECT_EQ(c.syncPeriod, std::chrono::minutes(1));
  EXPECT_EQ(c.minSyncPeriod, std::chrono::milliseconds(250));
  EXPECT_THAT(c.nodePortAddresses, ElementsAre("2001:db8::7/128", "2001:db8:1::/64"));
  EXPECT_EQ(c.clusterCIDR, "2001:db8:42::/56");
  // kube-proxy's IPv6 defaults follow bindAddress.
  EXPECT_EQ(c.healthzBindAddress, "[::]:10256");
  EXPECT_EQ(c.metricsBindAddress, "[::1]:10249");
  EXPECT_EQ(c.verbosity, 4);
  auto fields = warnedFields(c);
  for (const char* f : {"featureGates", "detectLocalMode", "detectLocal.interfaceNamePrefix", "logging.format",
                        "oomScoreAdj", "enableProfiling", "somethingNew", "nftables"}) {
    EXPECT_THAT(fields, Contains(f)) << ::testing::PrintToString(c.warnings);
  }
  EXPECT_THAT(c.warnings, Contains(HasSubstr("featureGates: accepted, not applied: switchyard has none of "
                                             "kube-proxy's feature gates (NFTablesProxyMode=true)")));
  EXPECT_THAT(c.warnings, Contains(HasSubstr("custom-nftables.yaml:27: somethingNew: not a KubeProxyConfiguration field")));
  expectEachWarnedOnce(c);
}

Config parse(const std::string& text, std::vector<std::string>& errors, bool& ok) {
  Config c;
  ok = parseConfig("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n" + text,
                   "kp.yaml", c, errors);
  return c;
}

TEST(KubeProxyConfig, WrongTypesInMappedFieldsAreFileLineErrors) {
  std::vector<std::string> errors;
  bool ok = true;
  parse("clientConnection:\n  qps: fast\n  burst: 1.5\n"
        "healthzBindAddress: 10256\n"
        "metricsBindAddress: localhost:10249\n"
        "clusterCIDR: 10.244.0.0/33\n"
        "hostnameOverride: [a]\n"
        "iptables:\n  syncPeriod: often\n"
        "nodePortAddresses: 10.0.0.0/8\n"
        "detectLocalMode: Magic\n"
        "logging:\n  verbosity: loud\n"
        "conntrack:\n  udpTimeout: 30 seconds\n",
        errors, ok);
  EXPECT_FALSE(ok);
  EXPECT_THAT(errors, ElementsAre(
      HasSubstr("kp.yaml:4: clientConnection.qps: must be a number, got \"fast\""),
      HasSubstr("kp.yaml:5: clientConnection.burst: must be an integer, got 1.5"),
      HasSubstr("kp.yaml:6: healthzBindAddress: must be IP:port"),
      HasSubstr("kp.yaml:7: metricsBindAddress: must be IP:port"),
      HasSubstr("kp.yaml:8: clusterCIDR: \"10.244.0.0/33\""),
      HasSubstr("kp.yaml:9: hostnameOverride: must be a string"),
      HasSubstr("kp.yaml:11: iptables.syncPeriod: must be a duration"),
      HasSubstr("kp.yaml:12: nodePortAddresses: must be a list"),
      HasSubstr("kp.yaml:13: detectLocalMode: must be ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix"),
      HasSubstr("kp.yaml:15: logging.verbosity: must be a number, got \"loud\""),
      HasSubstr("kp.yaml:17: conntrack.udpTimeout: must be a duration")));
}

TEST(KubeProxyConfig, UnknownFieldsWarnOnceAndDoNotFail) {
  std::vector<std::string> errors;
  bool ok = false;
  Config c = parse("futureField: {a: 1}\nipvs:\n  strictARP: true\n  scheduler: rr\nwinkernel: {}\n", errors, ok);
  EXPECT_TRUE(ok) << ::testing::PrintToString(errors);
  EXPECT_THAT(warnedFields(c), ElementsAre("futureField", "ipvs", "winkernel"));
  EXPECT_THAT(c.warnings[0], HasSubstr("kp.yaml:3: futureField:"));
  EXPECT_THAT(c.warnings[1], HasSubstr("kp.yaml:4: ipvs: not applicable"));
}

TEST(KubeProxyConfig, NodePortAddressKeywords) {
  std::vector<std::string> errors;
  bool ok = false;
  // `all` is every address (our empty list), whatever else is listed.
  Config c = parse("nodePortAddresses: [10.0.0.0/8, all]\n", errors, ok);
  EXPECT_TRUE(ok);
  EXPECT_THAT(c.nodePortAddresses, IsEmpty());
  // `primary` without bindAddress: every address, with a warning naming the entry.
  c = parse("nodePortAddresses: [primary]\n", errors, ok);
  EXPECT_TRUE(ok);
  EXPECT_THAT(c.nodePortAddresses, IsEmpty());
  EXPECT_THAT(warnedFields(c), ElementsAre("nodePortAddresses[0]"));
  c = parse("bindAddress: 198.18.0.1\nnodePortAddresses: [primary, 198.19.0.0/16]\n", errors, ok);
  EXPECT_TRUE(ok);
  EXPECT_THAT(c.nodePortAddresses, ElementsAre("198.18.0.1/32", "198.19.0.0/16"));
  // Only loopback: kube-proxy would serve no external address; refusing beats opening all.
  errors.clear();
  c = parse("nodePortAddresses: [localhost]\n", errors, ok);
  EXPECT_FALSE(ok);
  EXPECT_THAT(errors, ElementsAre(HasSubstr("kp.yaml:3: nodePortAddresses: names no address")));
}

TEST(KubeProxyConfig, ForeignApiVersionForTheKindIsAnError) {
  Config c;
  std::vector<std::string> errors;
  EXPECT_FALSE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: KubeProxyConfiguration\n", "kp.yaml", c, errors));
  EXPECT_THAT(errors, ElementsAre(HasSubstr("kp.yaml:1: apiVersion: must be kubeproxy.config.k8s.io/v1alpha1")));
}

TEST(KubeProxyConfig, SwitchyardConfigurationHasNoWarnings) {
  Config c;
  std::vector<std::string> errors;
  ASSERT_TRUE(parseConfig("apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\nsource: {kind: apiserver}\n",
                          "s.yaml", c, errors));
  EXPECT_THAT(c.warnings, IsEmpty());
}

}  // namespace
}  // namespace switchyard::config
