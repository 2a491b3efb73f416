// Where the client connects and with what credentials: kubeconfig, --master, in-cluster.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "k8sclient/apiserver/bearer_token.h"
#include "k8sclient/apiserver/connection_config.h"

namespace switchyard::k8s::apiserver {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sy-k8s-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::trunc) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ServerUrl, Forms) {
  struct Case {
    std::string in;
    std::string scheme, host;
    uint16_t port;
    std::string base;
  } cases[] = {
      {"https://198.18.0.1:6443", "https", "198.18.0.1", 6443, ""},
      {"https://api.example", "https", "api.example", 443, ""},
      {"http://localhost:8080/", "http", "localhost", 8080, ""},
      {"https://[2001:db8::1]:6443/k8s/clusters/c-1/", "https", "2001:db8::1", 6443,
       "/k8s/clusters/c-1"},
      {"198.18.0.1:6443", "https", "198.18.0.1", 6443, ""},
  };
  for (const auto& c : cases) {
    ServerUrl u;
    std::string error;
    ASSERT_TRUE(parseServerUrl(c.in, u, error)) << c.in << ": " << error;
    EXPECT_EQ(u.scheme, c.scheme) << c.in;
    EXPECT_EQ(u.host, c.host) << c.in;
    EXPECT_EQ(u.port, c.port) << c.in;
    EXPECT_EQ(u.basePath, c.base) << c.in;
  }
  for (const char* bad : {"ftp://x", "https://:443", "https://x:99999", "https://[::1"}) {
    ServerUrl u;
    std::string error;
    EXPECT_FALSE(parseServerUrl(bad, u, error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(Base64, DecodesAndRejects) {
  std::string out;
  ASSERT_TRUE(decodeBase64("aGVsbG8gd29ybGQ=", out));
  EXPECT_EQ(out, "hello world");
  ASSERT_TRUE(decodeBase64("aGVs\nbG8=", out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(decodeBase64("aGVs*G8=", out));
}

TEST(Kubeconfig, CurrentContextPicksClusterAndUserWithInlineData) {
  // "LS0tQ0EtLS0=" is base64 of "---CA---".
  std::string text = R"(
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: dev
  cluster: {server: "https://198.18.0.9:6443"}
- name: prod
  cluster:
    server: https://198.18.0.1:6443
    certificate-authority-data: LS0tQ0EtLS0=
    tls-server-name: kubernetes
users:
- name: admin
  user:
    token: abc.def
    client-certificate-data: LS0tQ0VSVC0tLQ==
    client-key-data: LS0tS0VZLS0t
contexts:
- name: dev
  context: {cluster: dev, user: admin}
- name: prod
  context: {cluster: prod, user: admin, namespace: shop}
)";
  ConnectionConfig c;
  std::string error;
  ASSERT_TRUE(parseKubeconfig(text, "/nowhere", c, error)) << error;
  EXPECT_EQ(c.server.str(), "https://198.18.0.1:6443");
  EXPECT_EQ(c.caPem, "---CA---");
  EXPECT_EQ(c.clientCertPem, "---CERT---");
  EXPECT_EQ(c.clientKeyPem, "---KEY---");
  EXPECT_EQ(c.token, "abc.def");
  EXPECT_EQ(c.tlsServerName, "kubernetes");
  EXPECT_FALSE(c.insecureSkipTlsVerify);
}

TEST(Kubeconfig, FilePathsAreRelativeToTheKubeconfig) {
  TempDir dir;
  dir.file("ca.crt", "CA-FROM-FILE");
  dir.file("client.crt", "CERT-FROM-FILE");
  dir.file("client.key", "KEY-FROM-FILE");
  std::string path = dir.file("config", R"(
current-context: c
clusters:
- name: k
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: ca.crt}
users:
- name: u
  user: {client-certificate: client.crt, client-key: client.key, tokenFile: token}
contexts:
- name: c
  context: {cluster: k, user: u}
)");
  ConnectionConfig c;
  std::string error;
  ASSERT_TRUE(loadKubeconfig(path, c, error)) << error;
  EXPECT_EQ(c.caPem, "CA-FROM-FILE");
  EXPECT_EQ(c.clientCertPem, "CERT-FROM-FILE");
  EXPECT_EQ(c.clientKeyPem, "KEY-FROM-FILE");
  EXPECT_EQ(c.tokenFile, dir.path() + "/token");
  EXPECT_NE(c.origin.find(path), std::string::npos);
}

TEST(Kubeconfig, ErrorsNameTheField) {
  struct Case {
    const char* name;
    std::string text;
    std::string error;
  } cases[] = {
      {"no current context", "clusters: []\n", "current-context: is not set"},
      {"unknown context", "current-context: x\ncontexts: []\n", "context \"x\" is not in contexts"},
      {"unknown cluster",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: []\n",
       "cluster \"k\" is not in clusters"},
      {"no server",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {}}]\n",
       "clusters[k].cluster.server: is required"},
      {"bad base64",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://a', certificate-authority-data: '%%'}}]\n",
       "certificate-authority-data: is not valid base64"},
      {"exec plugin",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://a'}}]\n"
       "users: [{name: u, user: {exec: {command: aws}}}]\n",
       "exec, auth-provider and basic auth are not supported"},
      {"cert without key",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://a'}}]\n"
       "users: [{name: u, user: {client-certificate-data: QQ==}}]\n",
       "client-certificate and client-key must be given together"},
      {"missing CA file",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://a', certificate-authority: /no/such}}]\n",
       "certificate-authority: /no/such: cannot be read"},
      {"insecure not a boolean",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://a', insecure-skip-tls-verify: maybe}}]\n",
       "clusters[k].cluster.insecure-skip-tls-verify: \"maybe\" is not a boolean"},
      {"insecure with CA data",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://a', insecure-skip-tls-verify: true, "
       "certificate-authority-data: LS0tQ0EtLS0=}}]\n",
       "clusters[k].cluster: insecure-skip-tls-verify with certificate-authority(-data): "
       "specifying a root certificates file with the insecure flag is not allowed"},
      {"insecure with CA file",
       "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://a', insecure-skip-tls-verify: TRUE, "
       "certificate-authority: /no/such}}]\n",
       "specifying a root certificates file with the insecure flag is not allowed"},
  };
  for (const auto& c : cases) {
    ConnectionConfig out;
    std::string error;
    EXPECT_FALSE(parseKubeconfig(c.text, "/", out, error)) << c.name;
    EXPECT_NE(error.find(c.error), std::string::npos) << c.name << ": " << error;
  }
}

// kubectl reads the flag as a YAML boolean, so any spelling of true means true (the old
// parser compared with the string "true" and took True for false).
TEST(Kubeconfig, InsecureSkipTlsVerifyIsAYamlBoolean) {
  struct Case {
    std::string value;  // "" = the field is absent
    bool want;
  } cases[] = {
      {"true", true},   {"True", true},   {"TRUE", true}, {"yes", true}, {"on", true},
      {"false", false}, {"False", false}, {"FALSE", false}, {"no", false}, {"", false},
  };
  for (const auto& c : cases) {
    std::string field = c.value.empty() ? "" : ", insecure-skip-tls-verify: " + c.value;
    std::string text = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                       "clusters: [{name: k, cluster: {server: 'https://198.18.0.1:6443'" +
                       field + "}}]\n";
    ConnectionConfig out;
    out.insecureSkipTlsVerify = !c.want;
    std::string error;
    ASSERT_TRUE(parseKubeconfig(text, "/", out, error)) << c.value << ": " << error;
    EXPECT_EQ(out.insecureSkipTlsVerify, c.want) << "insecure-skip-tls-verify: " << c.value;
  }
}

TEST(ResolveConnection, KubeProxyOrder) {
  TempDir dir;
  dir.file("token", "sa-token\n");
  dir.file("ca.crt", "SA-CA");
  InClusterEnvironment env{"198.19.0.1", "443", dir.path()};
  std::string kubeconfig = dir.file("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://198.18.0.1:6443"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  ConnectionConfig c;
  std::string error;

  // Neither flag: the service account.
  ASSERT_TRUE(resolveConnection("", "", env, c, error)) << error;
  EXPECT_EQ(c.server.str(), "https://198.19.0.1:443");
  EXPECT_EQ(c.caPem, "SA-CA");
  EXPECT_EQ(c.tokenFile, dir.path() + "/token");
  EXPECT_EQ(c.origin, "in-cluster (https://198.19.0.1:443)");

  // A kubeconfig.
  ASSERT_TRUE(resolveConnection(kubeconfig, "", env, c, error)) << error;
  EXPECT_EQ(c.server.str(), "https://198.18.0.1:6443");
  EXPECT_TRUE(c.tokenFile.empty());

  // --master overrides the kubeconfig's server and keeps its credentials.
  ASSERT_TRUE(resolveConnection(kubeconfig, "https://198.18.0.2:7443", env, c, error)) << error;
  EXPECT_EQ(c.server.str(), "https://198.18.0.2:7443");

  // --master alone.
  ASSERT_TRUE(resolveConnection("", "http://127.0.0.1:8080", env, c, error)) << error;
  EXPECT_EQ(c.server.str(), "http://127.0.0.1:8080");
  EXPECT_EQ(c.origin, "--master http://127.0.0.1:8080");

  // Outside a pod, without flags: a clear error.
  EXPECT_FALSE(resolveConnection("", "", InClusterEnvironment{"", "", dir.path()}, c, error));
  EXPECT_NE(error.find("KUBERNETES_SERVICE_HOST"), std::string::npos) << error;

  // IPv6 service host.
  ASSERT_TRUE(inClusterConfig(InClusterEnvironment{"2001:db8::1", "443", dir.path()}, c, error));
  EXPECT_EQ(c.server.host, "2001:db8::1");
}

TEST(BearerToken, TokenFileIsReReadWhenItRotates) {
  TempDir dir;
  std::string path = dir.file("token", "first\n");
  BearerToken t("static-ignored", path);
  EXPECT_EQ(t.current(), "first");
  EXPECT_EQ(t.current(), "first");
  EXPECT_EQ(t.reads(), 1u) << "an unchanged file is not read again";
  // The kubelet swaps a symlink to a new file: a new inode.
  std::string next = dir.file("token.new", "second");
  fs::rename(next, path);
  EXPECT_EQ(t.current(), "second");
  EXPECT_EQ(t.reads(), 2u);
  // A file that vanishes keeps the last good token.
  fs::remove(path);
  EXPECT_EQ(t.current(), "second");
  EXPECT_NE(t.lastError().find("No such file"), std::string::npos);
}

TEST(BearerToken, StaticTokenWithoutFile) {
  BearerToken t("abc", "");
  EXPECT_EQ(t.current(), "abc");
}

}  // namespace
}  // namespace switchyard::k8s::apiserver
