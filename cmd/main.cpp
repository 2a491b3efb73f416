// switchyard: a kube-proxy replacement with an eBPF dataplane.
//   switchyard run --config FILE
//   switchyard --config FILE [kube-proxy's flags]   (as kube-proxy's DaemonSet runs it)
//   switchyard status [--config FILE | --pin-path DIR] [-o json]
//   switchyard cleanup [--config FILE | --pin-path DIR] [--force]
//   switchyard version
#include <bpf/libbpf_version.h>

#include <algorithm>
#include <cstring>
#include <unistd.h>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "bpf/abi.h"
#include "bpf/bpffs.h"
#include "bpf/cleanup.h"
#include "cmd/daemon.h"
#include "cmd/policy_sync.h"
#include "cmd/status.h"
#include "config/config.h"

namespace {

using switchyard::config::Config;

constexpr int kExitUsage = 2;

const char* kUsage =
    "switchyard: a kube-proxy replacement with an eBPF dataplane\n"
    "\n"
    "Usage: switchyard COMMAND [options]\n"
    "\n"
    "Commands:\n"
    "  run       run the daemon (programs the BPF dataplane from Services and EndpointSlices)\n"
    "  status    print the services and backends the pinned maps hold\n"
    "  cleanup   remove every pin, tc hook and cgroup link switchyard made\n"
    "  version   print the version\n"
    "\n"
    "Run 'switchyard COMMAND --help' for a command's options.\n"
    "\n"
    "Without a command, kube-proxy's command line works as-is: 'switchyard --config=FILE\n"
    "--hostname-override=NAME' is 'switchyard run ...', and '--cleanup' is 'switchyard cleanup'.\n";

const char* kRunHelp =
    "Usage: switchyard run --config FILE [--kubeconfig FILE] [--master URL]\n"
    "                      [--hostname-override NAME] [--healthz-bind-address IP:PORT]\n"
    "                      [--metrics-bind-address IP:PORT] [-v N] [--cleanup] [--print-config]\n"
    "       switchyard --config FILE [the same options]   (kube-proxy's command line)\n"
    "\n"
    "Runs the daemon. The configuration is a SwitchyardConfiguration (switchyard.dev/v1alpha1)\n"
    "or kube-proxy's KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1), described in\n"
    "docs/configuration.md; the fields of the latter that do not apply are printed as warnings.\n"
    "Flags win over the file, as kube-proxy's. Exits 2 on a configuration error, printing\n"
    "FILE:LINE: field: reason for each problem.\n"
    "\n"
    "Options:\n"
    "  --config FILE              the configuration file (required unless --kubeconfig or\n"
    "                             --master is given: then kube-proxy's defaults)\n"
    "  --kubeconfig FILE          the API server and credentials (overrides\n"
    "                             clientConnection.kubeconfig; implies source.kind apiserver\n"
    "                             when the config does not set it)\n"
    "  --master URL               the API server's address (overrides the kubeconfig's)\n"
    "  --hostname-override NAME   this node's name (overrides hostnameOverride)\n"
    "  --healthz-bind-address IP:PORT   overrides healthzBindAddress\n"
    "  --metrics-bind-address IP:PORT   overrides metricsBindAddress\n"
    "  -v N, --v N                log verbosity (overrides logging.verbosity; >= 4 logs debug)\n"
    "  --cleanup                  remove switchyard's programs and maps and exit, as\n"
    "                             'switchyard cleanup --config FILE' (kube-proxy's --cleanup)\n"
    "  --print-config             print the effective configuration as JSON and exit\n";

const char* kStatusHelp =
    "Usage: switchyard status [policy] [--config FILE | --pin-path DIR] [-o table|json]\n"
    "\n"
    "Prints the services and backends held by the maps pinned under the pin path, the\n"
    "datapath counters, and the tc attachments recorded there (each checked against the\n"
    "device in this network namespace).\n"
    "\n"
    "switchyard status policy: NetworkPolicy instead: whether it is enforced, the revision,\n"
    "the identities, and each of this node's pods with its rules (docs/policy.md).\n"
    "\n"
    "Options:\n"
    "  --config FILE    the daemon's configuration: bpf.pinPath from it, and bpf.devices\n"
    "                   are listed even where nothing is attached\n"
    "  --pin-path DIR   the pin path (default /sys/fs/bpf/switchyard)\n"
    "  -o FORMAT        table (default) or json\n";

const char* kCleanupHelp =
    "Usage: switchyard cleanup [--config FILE | --pin-path DIR] [--force]\n"
    "\n"
    "Removes every tc filter, cgroup link and pinned map switchyard made under the pin path,\n"
    "and the clsact qdiscs it created where no other filter uses them. Run it in the network\n"
    "namespace the daemon ran in (tc filters are per namespace): a recorded device that is\n"
    "missing there, has another name, or holds a filter that is not this pin path's makes\n"
    "cleanup change nothing and exit 1. While a daemon runs on the pin path (it holds the\n"
    "pin path's lock) cleanup changes nothing and exits 1, naming the daemon's pid.\n"
    "\n"
    "Options:\n"
    "  --config FILE    the daemon's configuration: bpf.pinPath, and also searches\n"
    "                   bpf.devices for switchyard's tc filters and bpf.cgroupPath (or the\n"
    "                   cgroup v2 root) for its socket hooks that no record or pin names (a\n"
    "                   crash between attach and record, pins removed by hand)\n"
    "  --pin-path DIR   the pin path (default /sys/fs/bpf/switchyard); removes what the\n"
    "                   pins and records under it name\n"
    "  --force          clean up even while a daemon holds the pin path (its Services stop\n"
    "                   being load-balanced until it is restarted)\n";

struct Args {
  std::map<std::string, std::string> opts;
  bool help = false;
  std::string error;
};

// Parses "--name value", "--name=value" and "-o value" for the names a command accepts.
// `flags` are the accepted names that take no value ("--force").
Args parseArgs(int argc, char** argv, int first, const std::vector<std::string>& accepted,
               const std::vector<std::string>& flags = {}) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      a.help = true;
      continue;
    }
    std::string name = arg, value;
    bool hasValue = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      hasValue = true;
    }
    bool known = false;
    for (const auto& n : accepted) {
      known = known || n == name;
    }
    if (!known) {
      a.error = "unknown option " + arg;
      return a;
    }
    bool isFlag = std::find(flags.begin(), flags.end(), name) != flags.end();
    if (isFlag) {
      if (hasValue && value != "true" && value != "false") {
        a.error = "option " + name + " takes no value (or =true / =false)";
        return a;
      }
      if (!hasValue || value == "true") {
        a.opts[name] = "true";
      }
      continue;
    }
    if (!hasValue) {
      if (i + 1 >= argc) {
        a.error = "option " + name + " needs a value";
        return a;
      }
      value = argv[++i];
    }
    a.opts[name] = value;
  }
  return a;
}

// The configuration of status and cleanup: --pin-path alone, or --config FILE (its pinPath,
// cgroupPath and devices), or the defaults. False after printing the config's errors.
bool configFrom(const Args& a, Config& cfg) {
  if (a.opts.count("--pin-path")) {
    cfg.bpf.pinPath = a.opts.at("--pin-path");
    return true;
  }
  if (a.opts.count("--config")) {
    std::vector<std::string> errors;
    if (!switchyard::config::loadConfig(a.opts.at("--config"), cfg, errors)) {
      for (const auto& e : errors) {
        std::cerr << e << "\n";
      }
      return false;
    }
  }
  return true;
}

// The effective configuration, for --print-config: what a KubeProxyConfiguration and the
// flags became.
void printConfig(const Config& c) {
  auto q = [](const std::string& v) {
    std::string out = "\"";
    for (char ch : v) {
      if (ch == '"' || ch == '\\') {
        out += '\\';
      }
      out += ch;
    }
    return out + "\"";
  };
  auto list = [&](const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      out += (i ? ", " : "") + q(v[i]);
    }
    return out + "]";
  };
  std::cout << "{\n"
            << "  \"hostnameOverride\": " << q(c.hostnameOverride) << ",\n"
            << "  \"healthzBindAddress\": " << q(c.healthzBindAddress) << ",\n"
            << "  \"metricsBindAddress\": " << q(c.metricsBindAddress) << ",\n"
            << "  \"clusterCIDR\": " << q(c.clusterCIDR) << ",\n"
            << "  \"nodePortAddresses\": " << list(c.nodePortAddresses) << ",\n"
            << "  \"syncPeriodMs\": " << c.syncPeriod.count() << ",\n"
            << "  \"minSyncPeriodMs\": " << c.minSyncPeriod.count() << ",\n"
            << "  \"verbosity\": " << c.verbosity << ",\n"
            << "  \"source\": {\"kind\": " << q(c.source.kind) << ", \"path\": " << q(c.source.path) << "},\n"
            << "  \"clientConnection\": {\"kubeconfig\": " << q(c.clientConnection.kubeconfig)
            << ", \"qps\": " << c.clientConnection.qps << ", \"burst\": " << c.clientConnection.burst << "},\n"
            << "  \"bpf\": {\"pinPath\": " << q(c.bpf.pinPath) << ", \"cgroupPath\": " << q(c.bpf.cgroupPath)
            << ", \"socketLB\": " << (c.bpf.socketLB ? "true" : "false") << ", \"devices\": " << list(c.bpf.devices)
            << "},\n"
            << "  \"policy\": {\"enabled\": " << (c.policy.enabled ? "true" : "false")
            << ", \"logDenied\": " << (c.policy.logDenied ? "true" : "false") << "}\n"
            << "}\n";
}

int cleanupWith(const Config& cfg, bool fromConfig, bool force);

int cmdRun(int argc, char** argv, int first, const char* who) {
  Args a = parseArgs(argc, argv, first,
                     {"--config", "-v", "--v", "--kubeconfig", "--master", "--hostname-override",
                      "--healthz-bind-address", "--metrics-bind-address", "--cleanup", "--print-config"},
                     {"--cleanup", "--print-config"});
  if (a.help) {
    std::cout << kRunHelp;
    return 0;
  }
  bool apiServerFlags = a.opts.count("--kubeconfig") || a.opts.count("--master");
  if (!a.error.empty() || (!a.opts.count("--config") && !apiServerFlags && !a.opts.count("--cleanup"))) {
    std::cerr << who << ": " << (a.error.empty() ? "--config FILE is required" : a.error)
              << "\n\n" << kRunHelp;
    return kExitUsage;
  }
  // The flags' values are checked before the file is read, as kube-proxy's flag parsing.
  for (const char* flag : {"--healthz-bind-address", "--metrics-bind-address"}) {
    std::string host;
    uint16_t port = 0;
    if (a.opts.count(flag) && !switchyard::config::parseHostPort(a.opts.at(flag), host, port)) {
      std::cerr << who << ": " << flag << ": must be IP:port (e.g. 0.0.0.0:10256 or [::]:10256), got \""
                << a.opts.at(flag) << "\"\n";
      return kExitUsage;
    }
  }
  std::string verbosity = a.opts.count("-v") ? a.opts.at("-v") : (a.opts.count("--v") ? a.opts.at("--v") : "");
  if (!verbosity.empty() && verbosity.find_first_not_of("0123456789") != std::string::npos) {
    std::cerr << who << ": -v: must be a number, got \"" << verbosity << "\"\n";
    return kExitUsage;
  }
  Config cfg;
  std::vector<std::string> errors;
  std::string file = a.opts.count("--config") ? a.opts.at("--config") : "";
  if (!file.empty() && !switchyard::config::loadConfig(file, cfg, errors)) {
    for (const auto& e : errors) {
      std::cerr << e << "\n";
    }
    return kExitUsage;
  }
  if (a.opts.count("--cleanup")) {
    // kube-proxy --cleanup removes what its modes left and exits; this is switchyard cleanup
    // with the file's pin path, devices and cgroup.
    return cleanupWith(cfg, !file.empty(), false);
  }
  for (const auto& w : cfg.warnings) {
    std::cerr << "warning: " << w << "\n";
  }
  // kube-proxy's flags win over the file; giving an API server picks the apiserver source
  // unless the file chose one.
  if (a.opts.count("--kubeconfig")) {
    cfg.clientConnection.kubeconfig = a.opts.at("--kubeconfig");
  }
  if (a.opts.count("--hostname-override")) {
    cfg.hostnameOverride = a.opts.at("--hostname-override");
  }
  if (a.opts.count("--healthz-bind-address")) {
    cfg.healthzBindAddress = a.opts.at("--healthz-bind-address");
  }
  if (a.opts.count("--metrics-bind-address")) {
    cfg.metricsBindAddress = a.opts.at("--metrics-bind-address");
  }
  if (!verbosity.empty()) {
    cfg.verbosity = std::atoi(verbosity.c_str());
  }
  if (apiServerFlags && cfg.source.kind.empty()) {
    cfg.source.kind = "apiserver";
  }
  switchyard::config::resolveDefaults(cfg);
  std::string name = file.empty() ? "<flags>" : file;
  if (cfg.source.kind == "files" && cfg.source.path.empty()) {
    std::cerr << name << ":1: source.path: is required when source.kind is files (a "
              << "KubeProxyConfiguration needs --kubeconfig, clientConnection.kubeconfig or the "
              << "in-cluster service account)\n";
    return kExitUsage;
  }
  if (a.opts.count("--print-config")) {
    printConfig(cfg);
    return 0;
  }
  if (!switchyard::config::validateHostPaths(cfg, name, errors)) {
    for (const auto& e : errors) {
      std::cerr << e << "\n";
    }
    return kExitUsage;
  }
  return switchyard::cmd::runDaemon(cfg, a.opts.count("--master") ? a.opts.at("--master") : "");
}

int cmdStatus(int argc, char** argv) {
  bool policy = argc > 2 && std::strcmp(argv[2], "policy") == 0;
  Args a = parseArgs(argc, argv, policy ? 3 : 2, {"--config", "--pin-path", "-o", "--output"});
  if (a.help) {
    std::cout << kStatusHelp;
    return 0;
  }
  std::string format = a.opts.count("-o") ? a.opts.at("-o") : (a.opts.count("--output") ? a.opts.at("--output") : "table");
  if (!a.error.empty() || (format != "json" && format != "table")) {
    std::cerr << "switchyard status: " << (a.error.empty() ? "-o must be table or json" : a.error)
              << "\n\n" << kStatusHelp;
    return kExitUsage;
  }
  Config cfg;
  if (!configFrom(a, cfg)) {
    return kExitUsage;
  }
  if (policy) {
    return switchyard::cmd::printPolicyStatus(cfg.bpf.pinPath, format == "json");
  }
  std::vector<std::string> devices;
  if (a.opts.count("--config") && !a.opts.count("--pin-path")) {
    devices = cfg.bpf.devices;
  }
  return switchyard::cmd::printStatus(cfg.bpf.pinPath, format == "json", devices);
}

int cmdCleanup(int argc, char** argv) {
  Args a = parseArgs(argc, argv, 2, {"--config", "--pin-path", "--force"}, {"--force"});
  if (a.help) {
    std::cout << kCleanupHelp;
    return 0;
  }
  if (!a.error.empty()) {
    std::cerr << "switchyard cleanup: " << a.error << "\n\n" << kCleanupHelp;
    return kExitUsage;
  }
  Config cfg;
  if (!configFrom(a, cfg)) {
    return kExitUsage;
  }
  return cleanupWith(cfg, a.opts.count("--config") && !a.opts.count("--pin-path"), a.opts.count("--force") > 0);
}

int cleanupWith(const Config& cfg, bool fromConfig, bool force) {
  switchyard::bpf::CleanupScope scope;
  if (fromConfig) {
    scope.fromConfig = true;
    scope.devices = cfg.bpf.devices;
    // The daemon attaches to the cgroup v2 root when the file names none.
    scope.cgroupPath = cfg.bpf.cgroupPath.empty() ? switchyard::bpf::findCgroup2Mount() : cfg.bpf.cgroupPath;
  }
  const std::string& pinPath = cfg.bpf.pinPath;
  // Pulling the maps and hooks from under a running daemon breaks every Service on the node
  // until it restarts; a stale leftover is what cleanup is for. The check is not a lock held
  // for the cleanup (an open directory would keep a bpffs mounted there busy): a daemon
  // started meanwhile is the operator's doing.
  if (int holder = switchyard::bpf::pinPathHolder(pinPath); holder != 0) {
    std::string who = holder > 0 ? "a switchyard daemon (pid " + std::to_string(holder) + ")"
                                 : "a switchyard daemon (pid not visible from here)";
    if (!force) {
      std::cerr << "switchyard cleanup: pin path " << pinPath << " is held by " << who
                << ": stop the daemon first, or pass --force to remove its programs and maps "
                   "while it runs\n";
      return 1;
    }
    std::cerr << "switchyard cleanup: pin path " << pinPath << " is held by " << who
              << "; --force: cleaning up anyway\n";
  }
  switchyard::bpf::CleanupReport r = switchyard::bpf::cleanupPinPath(pinPath, scope);
  // The policy names file the daemon wrote for status (cmd/policy_sync.h), and the
  // directories made for it that are empty now.
  std::string names = switchyard::cmd::policyNamesPath(pinPath);
  std::remove(names.c_str());
  for (auto slash = names.rfind('/'); slash != std::string::npos && slash > std::strlen("/run/switchyard");
       slash = names.rfind('/', slash - 1)) {
    if (::rmdir(names.substr(0, slash).c_str()) != 0) {
      break;  // not empty (another pin path's), or not there
    }
  }
  std::cout << "cleanup " << pinPath << ": removed " << r.tcFiltersRemoved << " tc filters, "
            << r.qdiscsRemoved << " clsact qdiscs, " << r.linksRemoved << " cgroup links, "
            << r.pinsRemoved << " pinned maps\n";
  if (r.unmountedBpffs) {
    std::cout << "cleanup " << pinPath << ": unmounted the bpffs mounted there\n";
  }
  for (const auto& n : r.notes) {
    std::cout << "cleanup " << pinPath << ": " << n << "\n";
  }
  for (const auto& e : r.errors) {
    std::cerr << "switchyard cleanup: " << e << "\n";
  }
  return r.errors.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "run") {
    return cmdRun(argc, argv, 2, "switchyard run");
  }
  // kube-proxy has no subcommands: a DaemonSet that swaps kube-proxy's image for switchyard's
  // keeps its args (`--config=/var/lib/kube-proxy/config.conf --hostname-override=$(NODE_NAME)`).
  if (cmd.rfind("-", 0) == 0 && cmd != "--version") {
    return cmdRun(argc, argv, 1, "switchyard");
  }
  if (cmd == "status") {
    return cmdStatus(argc, argv);
  }
  if (cmd == "cleanup") {
    return cmdCleanup(argc, argv);
  }
  if (cmd == "version" || cmd == "--version") {
    if (argc > 2 && (std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0)) {
      std::cout << "Usage: switchyard version\n\nPrints the version, the map ABI version and the libbpf version.\n";
      return 0;
    }
    std::cout << "switchyard " << SY_VERSION << " (map ABI " << SY_ABI_VERSION << ", libbpf "
              << LIBBPF_MAJOR_VERSION << "." << LIBBPF_MINOR_VERSION << ")\n";
    return 0;
  }
  std::cerr << "switchyard: unknown command \"" << cmd << "\"\n\n" << kUsage;
  return kExitUsage;
}
