// sy-fake-apiserver: the tests' fake Kubernetes API server as a program, for kubectl, for
// the end-to-end tests and for trying switchyard by hand.
//
//   sy-fake-apiserver --pki-dir DIR [--listen 127.0.0.1:0] [--token T] [--fixtures PATH]...
//                     [--kubeconfig-out FILE] [--port-file FILE] [--plain-http]
//
// With --pki-dir, the CA and certificates in DIR are used, or made there when missing
// (ca.crt, server.crt, client.crt and their keys). --kubeconfig-out writes a kubeconfig
// for kubectl or `switchyard run --kubeconfig`. Fixtures are JSON files (an object or a
// List) or directories of *.json. Runs until SIGINT or SIGTERM.
#include <algorithm>
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tests/fake_apiserver/fake_apiserver.h"
#include "tests/fake_apiserver/test_pki.h"

namespace {

namespace fs = std::filesystem;
using namespace switchyard::fake;

const char* kUsage =
    "Usage: sy-fake-apiserver [--listen HOST:PORT] [--pki-dir DIR | --plain-http] [--token T]\n"
    "                         [--fixtures PATH]... [--kubeconfig-out FILE] [--port-file FILE]\n";

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool loadFixtures(FakeApiServer& server, const std::string& path) {
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path)) {
      if (e.path().extension() == ".json") {
        files.push_back(e.path().string());
      }
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  bool ok = true;
  for (const auto& f : files) {
    std::vector<std::string> errors;
    std::string text = readFile(f);
    server.withState([&](FakeState& s) { s.applyAll(text, errors); });
    for (const auto& e : errors) {
      std::cerr << f << ": " << e << "\n";
      ok = false;
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  FakeApiServerOptions opts;
  std::string pkiDir, kubeconfigOut, portFile, listen = "127.0.0.1:0";
  std::vector<std::string> fixtures;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--listen") {
      listen = value();
    } else if (a == "--pki-dir") {
      pkiDir = value();
    } else if (a == "--plain-http") {
      opts.tls = false;
    } else if (a == "--token") {
      opts.token = value();
    } else if (a == "--fixtures") {
      fixtures.push_back(value());
    } else if (a == "--kubeconfig-out") {
      kubeconfigOut = value();
    } else if (a == "--port-file") {
      portFile = value();
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "unknown option " << a << "\n" << kUsage;
      return 2;
    }
  }
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "--listen must be HOST:PORT\n";
    return 2;
  }
  opts.bindAddress = listen.substr(0, colon);
  if (opts.bindAddress.size() > 2 && opts.bindAddress.front() == '[') {
    opts.bindAddress = opts.bindAddress.substr(1, opts.bindAddress.size() - 2);
  }
  opts.port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));

  TestPki pki;
  if (opts.tls) {
    if (pkiDir.empty()) {
      std::cerr << "--pki-dir DIR is required (or --plain-http)\n" << kUsage;
      return 2;
    }
    if (!readTestPki(pkiDir, pki)) {
      fs::create_directories(pkiDir);
      // The certificate names the address it listens on too (a test fabric address that
      // other network namespaces dial), besides loopback.
      std::vector<std::string> ips = {"127.0.0.1", "::1"};
      if (std::find(ips.begin(), ips.end(), opts.bindAddress) == ips.end() && opts.bindAddress != "0.0.0.0" &&
          opts.bindAddress != "::") {
        ips.push_back(opts.bindAddress);
      }
      pki = generateTestPki(ips);
      std::string error;
      if (!writeTestPki(pki, pkiDir, error)) {
        std::cerr << error << "\n";
        return 1;
      }
    }
    opts.certPem = pki.serverCertPem;
    opts.keyPem = pki.serverKeyPem;
    opts.clientCaPem = pki.caCertPem;
  }

  // Block the signals before the server's thread starts, so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  FakeApiServer server(opts);
  std::string error;
  if (!server.start(error)) {
    std::cerr << "sy-fake-apiserver: " << error << "\n";
    return 1;
  }
  for (const auto& f : fixtures) {
    if (!loadFixtures(server, f)) {
      return 1;
    }
  }
  if (!kubeconfigOut.empty()) {
    std::ofstream out(kubeconfigOut, std::ios::trunc);
    out << "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        << "clusters:\n- name: fake\n  cluster:\n    server: " << server.url() << "\n";
    if (opts.tls) {
      out << "    certificate-authority-data: " << base64(pki.caCertPem) << "\n";
    }
    out << "users:\n- name: fake\n  user:\n";
    if (!opts.token.empty()) {
      out << "    token: " << opts.token << "\n";
    } else if (opts.tls) {
      out << "    client-certificate-data: " << base64(pki.clientCertPem) << "\n"
          << "    client-key-data: " << base64(pki.clientKeyPem) << "\n";
    }
    out << "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n";
  }
  if (!portFile.empty()) {
    std::ofstream(portFile, std::ios::trunc) << server.port() << "\n";
  }
  std::cout << "sy-fake-apiserver: listening on " << server.url() << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  server.stop();
  return 0;
}
