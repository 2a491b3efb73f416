// Where the API server is and how to authenticate to it, resolved in kube-proxy's order:
// the --kubeconfig / --master flags (clientConnection.kubeconfig in the config file), then
// the in-cluster service account. Plain data: the HTTPS client (http_client.h) consumes it.
#pragma once

#include <cstdint>
#include <string>

namespace switchyard::k8s::apiserver {

// "https://host:port" split up. IPv6 hosts are kept without brackets.
struct ServerUrl {
  std::string scheme;  // https | http
  std::string host;
  uint16_t port = 0;
  std::string basePath;  // "" or a path prefix such as "/k8s/clusters/c-1", no trailing '/'

  std::string str() const;
};

// Parses "https://10.0.0.1:6443", "https://[2001:db8::1]", "http://localhost:8080/prefix".
// A missing port defaults to 443 (https) or 80 (http); a bare "host:port" means https.
bool parseServerUrl(const std::string& text, ServerUrl& out, std::string& error);

struct ConnectionConfig {
  ServerUrl server;
  std::string caPem;  // trusted CA bundle (PEM); "" = the system's default trust store
  std::string clientCertPem;
  std::string clientKeyPem;
  std::string token;      // static bearer token
  std::string tokenFile;  // when set, re-read when it changes; wins over token, as in client-go
  bool insecureSkipTlsVerify = false;
  std::string tlsServerName;  // overrides the name checked in the server certificate
  std::string origin;         // for logs: "kubeconfig FILE (context C)" or "in-cluster"
};

// The in-cluster environment; fromProcess() reads the real one. Tests substitute a
// directory for the service account mount.
struct InClusterEnvironment {
  std::string serviceHost;  // KUBERNETES_SERVICE_HOST
  std::string servicePort;  // KUBERNETES_SERVICE_PORT
  std::string serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

  static InClusterEnvironment fromProcess();
};

// Parses a kubeconfig's text. Relative file paths in it are resolved against baseDir (the
// kubeconfig's directory), as kubectl does. The *-data fields are base64 PEM.
bool parseKubeconfig(const std::string& text, const std::string& baseDir, ConnectionConfig& out,
                     std::string& error);
bool loadKubeconfig(const std::string& path, ConnectionConfig& out, std::string& error);

bool inClusterConfig(const InClusterEnvironment& env, ConnectionConfig& out, std::string& error);

// kube-proxy's order: with neither a kubeconfig nor a master, the in-cluster config; else
// the kubeconfig (if any) with its server replaced by master (if any).
bool resolveConnection(const std::string& kubeconfig, const std::string& master,
                       const InClusterEnvironment& env, ConnectionConfig& out, std::string& error);

// RFC 4648 base64 (whitespace ignored); false on any other character or bad padding.
bool decodeBase64(const std::string& in, std::string& out);

}  // namespace switchyard::k8s::apiserver
