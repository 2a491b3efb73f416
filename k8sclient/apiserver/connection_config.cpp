#include "k8sclient/apiserver/connection_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace switchyard::k8s::apiserver {
namespace {

namespace fs = std::filesystem;

bool readFile(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot be read";
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

std::string resolvePath(const std::string& baseDir, const std::string& p) {
  if (p.empty() || p[0] == '/' || baseDir.empty()) {
    return p;
  }
  return (fs::path(baseDir) / p).string();
}

// The named entry of a kubeconfig list (clusters, users, contexts): its inner map.
YAML::Node findNamed(const YAML::Node& list, const char* inner, const std::string& name) {
  if (!list || !list.IsSequence()) {
    return YAML::Node();
  }
  for (const auto& item : list) {
    if (item.IsMap() && item["name"] && item["name"].as<std::string>("") == name) {
      return item[inner];
    }
  }
  return YAML::Node();
}

std::string scalar(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap() || !map[key] || !map[key].IsScalar()) {
    return "";
  }
  return map[key].as<std::string>("");
}

// A boolean field, read as kubectl reads it: a YAML boolean (true, True, TRUE, and YAML
// 1.1's yes/on, as go-yaml v2 does). Absent = false; anything else is an error.
bool boolField(const YAML::Node& map, const char* key, const std::string& where, bool& out,
               std::string& error) {
  out = false;
  if (!map || !map.IsMap() || !map[key]) {
    return true;
  }
  const YAML::Node& v = map[key];
  if (v.IsScalar()) {
    try {
      out = v.as<bool>();
      return true;
    } catch (const YAML::BadConversion&) {
    }
  }
  error = where + "." + key + ": \"" + (v.IsScalar() ? v.Scalar() : std::string("...")) +
          "\" is not a boolean (true or false)";
  return false;
}

// A "*-data" field (base64 PEM) or its file-path sibling; the data wins, as in client-go.
bool pemField(const YAML::Node& map, const char* dataKey, const char* fileKey,
              const std::string& baseDir, const std::string& where, std::string& out,
              std::string& error) {
  std::string data = scalar(map, dataKey);
  if (!data.empty()) {
    if (!decodeBase64(data, out)) {
      error = where + "." + dataKey + ": is not valid base64";
      return false;
    }
    return true;
  }
  std::string file = scalar(map, fileKey);
  if (!file.empty()) {
    std::string readError;
    if (!readFile(resolvePath(baseDir, file), out, readError)) {
      error = where + "." + fileKey + ": " + readError;
      return false;
    }
  }
  return true;
}

}  // namespace

std::string ServerUrl::str() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port) + basePath;
}

bool parseServerUrl(const std::string& text, ServerUrl& out, std::string& error) {
  std::string rest = text;
  out = ServerUrl();
  if (auto p = rest.find("://"); p != std::string::npos) {
    out.scheme = rest.substr(0, p);
    rest = rest.substr(p + 3);
  } else {
    out.scheme = "https";
  }
  if (out.scheme != "https" && out.scheme != "http") {
    error = "server \"" + text + "\": scheme must be https or http";
    return false;
  }
  std::string hostPort = rest;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    hostPort = rest.substr(0, slash);
    out.basePath = rest.substr(slash);
    while (!out.basePath.empty() && out.basePath.back() == '/') {
      out.basePath.pop_back();
    }
  }
  std::string portText;
  if (!hostPort.empty() && hostPort[0] == '[') {
    auto close = hostPort.find(']');
    if (close == std::string::npos) {
      error = "server \"" + text + "\": unterminated [IPv6] host";
      return false;
    }
    out.host = hostPort.substr(1, close - 1);
    if (close + 1 < hostPort.size()) {
      if (hostPort[close + 1] != ':') {
        error = "server \"" + text + "\": expected ':' after ]";
        return false;
      }
      portText = hostPort.substr(close + 2);
    }
  } else if (auto colon = hostPort.rfind(':'); colon != std::string::npos) {
    out.host = hostPort.substr(0, colon);
    portText = hostPort.substr(colon + 1);
  } else {
    out.host = hostPort;
  }
  if (out.host.empty()) {
    error = "server \"" + text + "\": host is empty";
    return false;
  }
  if (portText.empty()) {
    out.port = out.scheme == "https" ? 443 : 80;
    return true;
  }
  char* end = nullptr;
  long port = std::strtol(portText.c_str(), &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) {
    error = "server \"" + text + "\": port must be 1-65535";
    return false;
  }
  out.port = static_cast<uint16_t>(port);
  return true;
}

bool decodeBase64(const std::string& in, std::string& out) {
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      ++pad;
      continue;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      return false;
    }
    if (pad > 0) {
      return false;  // data after padding
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return pad <= 2;
}

InClusterEnvironment InClusterEnvironment::fromProcess() {
  InClusterEnvironment env;
  if (const char* h = std::getenv("KUBERNETES_SERVICE_HOST")) {
    env.serviceHost = h;
  }
  if (const char* p = std::getenv("KUBERNETES_SERVICE_PORT")) {
    env.servicePort = p;
  }
  return env;
}

bool parseKubeconfig(const std::string& text, const std::string& baseDir, ConnectionConfig& out,
                     std::string& error) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    error = "invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return false;
  }
  if (!root.IsMap()) {
    error = "not a kubeconfig (expected a map with clusters, users and contexts)";
    return false;
  }
  std::string contextName = scalar(root, "current-context");
  if (contextName.empty()) {
    error = "current-context: is not set";
    return false;
  }
  YAML::Node context = findNamed(root["contexts"], "context", contextName);
  if (!context || !context.IsMap()) {
    error = "current-context: context \"" + contextName + "\" is not in contexts";
    return false;
  }
  std::string clusterName = scalar(context, "cluster");
  YAML::Node cluster = findNamed(root["clusters"], "cluster", clusterName);
  if (!cluster || !cluster.IsMap()) {
    error = "contexts[" + contextName + "].cluster: cluster \"" + clusterName +
            "\" is not in clusters";
    return false;
  }
  std::string where = "clusters[" + clusterName + "].cluster";
  std::string server = scalar(cluster, "server");
  if (server.empty()) {
    error = where + ".server: is required";
    return false;
  }
  std::string urlError;
  if (!parseServerUrl(server, out.server, urlError)) {
    error = where + ".server: " + urlError;
    return false;
  }
  if (!boolField(cluster, "insecure-skip-tls-verify", where, out.insecureSkipTlsVerify, error)) {
    return false;
  }
  if (out.insecureSkipTlsVerify && (!scalar(cluster, "certificate-authority-data").empty() ||
                                    !scalar(cluster, "certificate-authority").empty())) {
    // client-go refuses the pair too: a CA that is then not checked is a mistake.
    error = where + ": insecure-skip-tls-verify with certificate-authority(-data): specifying "
                    "a root certificates file with the insecure flag is not allowed";
    return false;
  }
  if (!pemField(cluster, "certificate-authority-data", "certificate-authority", baseDir, where,
                out.caPem, error)) {
    return false;
  }
  out.tlsServerName = scalar(cluster, "tls-server-name");

  std::string userName = scalar(context, "user");
  if (!userName.empty()) {
    YAML::Node user = findNamed(root["users"], "user", userName);
    if (!user) {
      error = "contexts[" + contextName + "].user: user \"" + userName + "\" is not in users";
      return false;
    }
    std::string uwhere = "users[" + userName + "].user";
    if (user.IsMap()) {
      if (user["exec"] || user["auth-provider"] || user["username"]) {
        error = uwhere + ": exec, auth-provider and basic auth are not supported; use a token, "
                         "tokenFile or a client certificate";
        return false;
      }
      if (!pemField(user, "client-certificate-data", "client-certificate", baseDir, uwhere,
                    out.clientCertPem, error) ||
          !pemField(user, "client-key-data", "client-key", baseDir, uwhere, out.clientKeyPem,
                    error)) {
        return false;
      }
      if (out.clientCertPem.empty() != out.clientKeyPem.empty()) {
        error = uwhere + ": client-certificate and client-key must be given together";
        return false;
      }
      out.token = scalar(user, "token");
      std::string tokenFile = scalar(user, "tokenFile");
      out.tokenFile = tokenFile.empty() ? "" : resolvePath(baseDir, tokenFile);
    }
  }
  out.origin = "context " + contextName;
  return true;
}

bool loadKubeconfig(const std::string& path, ConnectionConfig& out, std::string& error) {
  std::string text;
  if (!readFile(path, text, error)) {
    return false;
  }
  std::string baseDir = fs::path(path).parent_path().string();
  if (!parseKubeconfig(text, baseDir, out, error)) {
    error = "kubeconfig " + path + ": " + error;
    return false;
  }
  out.origin = "kubeconfig " + path + " (" + out.origin + ")";
  return true;
}

bool inClusterConfig(const InClusterEnvironment& env, ConnectionConfig& out, std::string& error) {
  if (env.serviceHost.empty() || env.servicePort.empty()) {
    error = "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set "
            "(not running in a pod?); give a kubeconfig instead";
    return false;
  }
  std::string host = env.serviceHost.find(':') != std::string::npos ? "[" + env.serviceHost + "]"
                                                                     : env.serviceHost;
  std::string urlError;
  if (!parseServerUrl("https://" + host + ":" + env.servicePort, out.server, urlError)) {
    error = "in-cluster config: " + urlError;
    return false;
  }
  out.tokenFile = env.serviceAccountDir + "/token";
  std::string token;
  if (!readFile(out.tokenFile, token, error)) {
    error = "in-cluster config: service account token " + error;
    return false;
  }
  if (!readFile(env.serviceAccountDir + "/ca.crt", out.caPem, error)) {
    error = "in-cluster config: CA bundle " + error;
    return false;
  }
  out.origin = "in-cluster (" + out.server.str() + ")";
  return true;
}

bool resolveConnection(const std::string& kubeconfig, const std::string& master,
                       const InClusterEnvironment& env, ConnectionConfig& out, std::string& error) {
  out = ConnectionConfig();
  if (kubeconfig.empty() && master.empty()) {
    return inClusterConfig(env, out, error);
  }
  if (!kubeconfig.empty() && !loadKubeconfig(kubeconfig, out, error)) {
    return false;
  }
  if (!master.empty()) {
    if (!parseServerUrl(master, out.server, error)) {
      error = "--master: " + error;
      return false;
    }
    out.origin = kubeconfig.empty() ? "--master " + master : out.origin + ", --master " + master;
  }
  return true;
}

}  // namespace switchyard::k8s::apiserver
