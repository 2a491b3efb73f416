// sy-testpeer: the fake pods of the end-to-end tests.
//
//   sy-testpeer serve --name NAME [--tcp-port P] [--udp-port P] [--bind ADDR] [--report-peer]
//   sy-testpeer probe --proto tcp|udp --target ADDR:PORT [--count N] [--interval-ms MS]
//                     [--timeout-ms MS] [--duration-s S] [--stop-file PATH] [--connected-udp]
//                     [--bind ADDR] [--hold] [--sport-base PORT]
//
// Exit codes: serve 0 after SIGTERM/SIGINT; probe 0 iff every request succeeded at the expected
// peer; 1 on failure; 2 on a usage error.

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/tools/testpeer_probe.h"
#include "tests/tools/testpeer_serve.h"
#include "tests/tools/testpeer_socket.h"

namespace switchyard::testpeer {
namespace {

constexpr int usageExitCode = 2;

constexpr const char* usageText =
    "usage:\n"
    "  sy-testpeer serve --name NAME [--tcp-port P=8080] [--udp-port P=5353] [--bind ADDR]\n"
    "      [--report-peer]\n"
    "      port 0 turns that protocol off; ADDR defaults to [::] (dual stack);\n"
    "      --report-peer answers \"NAME PEER\", PEER the client address the server saw;\n"
    "      a TCP client whose first line is HOLD keeps the connection, one answer per line\n"
    "  sy-testpeer probe --proto tcp|udp --target ADDR:PORT|[ADDR6]:PORT [--count N=100]\n"
    "      [--interval-ms MS=0] [--timeout-ms MS=1000] [--duration-s S] [--stop-file PATH]\n"
    "      [--connected-udp] [--bind ADDR] [--hold] [--sport-base PORT]\n"
    "      --bind: the client socket's source address (same family as the target)\n"
    "      --hold: TCP requests as lines on one kept connection (reported: connections)\n"
    "      --sport-base: TCP, request i from source port PORT+i (reported: flows, port -> name)\n"
    "      with --duration-s or --stop-file and no --count, the count is the cap (1000000)\n";

int usageError(const std::string& message) {
  std::fprintf(stderr, "sy-testpeer: %s\n%s", message.c_str(), usageText);
  return usageExitCode;
}

// "--flag value" pairs plus bare switches. Unknown flags, missing values and repeats are errors.
struct ParsedFlags {
  std::map<std::string, std::string> values;
  std::map<std::string, bool> switches;
  std::string error;
};

ParsedFlags parseFlags(const std::vector<std::string_view>& args, const std::vector<std::string>& valueFlags,
                       const std::vector<std::string>& switchFlags) {
  ParsedFlags parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag(args[i]);
    bool takesValue = std::find(valueFlags.begin(), valueFlags.end(), flag) != valueFlags.end();
    bool isSwitch = std::find(switchFlags.begin(), switchFlags.end(), flag) != switchFlags.end();
    if (!takesValue && !isSwitch) {
      parsed.error = "unknown argument " + flag;
      return parsed;
    }
    if (parsed.values.count(flag) != 0 || parsed.switches.count(flag) != 0) {
      parsed.error = flag + " given twice";
      return parsed;
    }
    if (isSwitch) {
      parsed.switches[flag] = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      parsed.error = flag + " needs a value";
      return parsed;
    }
    parsed.values[flag] = std::string(args[++i]);
  }
  return parsed;
}

std::optional<unsigned long> numberFlag(const ParsedFlags& flags, const std::string& flag, unsigned long min,
                                        unsigned long max, std::string& error) {
  auto it = flags.values.find(flag);
  if (it == flags.values.end()) {
    return std::nullopt;
  }
  auto value = parseNumber(it->second, min, max);
  if (!value) {
    error = flag + " " + it->second + ": must be a number in " + std::to_string(min) + ".." + std::to_string(max);
  }
  return value;
}

int serveCommand(const std::vector<std::string_view>& args) {
  ParsedFlags flags = parseFlags(args, {"--name", "--tcp-port", "--udp-port", "--bind"}, {"--report-peer"});
  if (!flags.error.empty()) {
    return usageError(flags.error);
  }
  ServeOptions options;
  std::string error;
  if (flags.values.count("--name") == 0 || flags.values["--name"].empty()) {
    return usageError("serve needs --name");
  }
  options.name = flags.values["--name"];
  // The probe reads "NAME" or "NAME PEER" from one line: a name must be one word.
  if (options.name.find_first_of(" \t\r\n") != std::string::npos) {
    return usageError("--name must not contain spaces or line breaks");
  }
  options.reportPeer = flags.switches.count("--report-peer") != 0;
  if (auto port = numberFlag(flags, "--tcp-port", 0, 65535, error)) {
    options.tcpPort = static_cast<unsigned>(*port);
  }
  if (auto port = numberFlag(flags, "--udp-port", 0, 65535, error)) {
    options.udpPort = static_cast<unsigned>(*port);
  }
  if (!error.empty()) {
    return usageError(error);
  }
  if (options.tcpPort == 0 && options.udpPort == 0) {
    return usageError("serve with both ports 0 would serve nothing");
  }
  if (flags.values.count("--bind") != 0) {
    if (!parseBindAddress(flags.values["--bind"], 0)) {
      return usageError("--bind " + flags.values["--bind"] + ": not an IPv4 or IPv6 address");
    }
    options.bindAddress = flags.values["--bind"];
  }
  int stopFd = installStopHandlers();
  if (stopFd < 0) {
    std::perror("sy-testpeer serve: pipe");
    return 1;
  }
  return runServe(options, stopFd);
}

int probeCommand(const std::vector<std::string_view>& args) {
  ParsedFlags flags = parseFlags(
      args,
      {"--proto", "--target", "--count", "--interval-ms", "--timeout-ms", "--duration-s", "--stop-file", "--bind",
       "--sport-base"},
      {"--connected-udp", "--hold"});
  if (!flags.error.empty()) {
    return usageError(flags.error);
  }
  ProbeOptions options;
  const std::string proto = flags.values["--proto"];
  if (proto == "tcp") {
    options.protocol = ProbeProtocol::tcp;
  } else if (proto == "udp") {
    options.protocol = ProbeProtocol::udp;
  } else {
    return usageError("--proto must be tcp or udp");
  }
  auto target = parseHostPort(flags.values["--target"]);
  if (!target) {
    return usageError("--target must be ADDR:PORT or [ADDR6]:PORT with a literal address");
  }
  options.target = *target;

  std::string error;
  auto count = numberFlag(flags, "--count", 1, probeIterationCap, error);
  auto interval = numberFlag(flags, "--interval-ms", 0, 3'600'000, error);
  auto timeout = numberFlag(flags, "--timeout-ms", 1, 3'600'000, error);
  auto duration = numberFlag(flags, "--duration-s", 1, 86'400, error);
  auto sportBase = numberFlag(flags, "--sport-base", 1024, 65535, error);
  if (!error.empty()) {
    return usageError(error);
  }
  if (flags.values.count("--stop-file") != 0) {
    options.stopFile = flags.values["--stop-file"];
  }
  if (duration) {
    options.duration = std::chrono::seconds(*duration);
  }
  // A run bounded by time or by a stop file should not end early at the default count.
  if (count) {
    options.count = *count;
  } else if (options.duration || options.stopFile) {
    options.count = probeIterationCap;
  }
  if (interval) {
    options.interval = std::chrono::milliseconds(*interval);
  }
  if (timeout) {
    options.timeout = std::chrono::milliseconds(*timeout);
  }
  options.connectedUdp = flags.switches.count("--connected-udp") != 0;
  if (flags.values.count("--bind") != 0) {
    options.bindAddress = parseBindAddress(flags.values["--bind"], 0);
    if (!options.bindAddress) {
      return usageError("--bind " + flags.values["--bind"] + ": not an IPv4 or IPv6 address");
    }
    if (options.bindAddress->family() != options.target.family()) {
      return usageError("--bind " + flags.values["--bind"] + ": not the address family of --target");
    }
  }
  if (options.connectedUdp && options.protocol != ProbeProtocol::udp) {
    return usageError("--connected-udp needs --proto udp");
  }
  options.hold = flags.switches.count("--hold") != 0;
  if (options.hold && options.protocol != ProbeProtocol::tcp) {
    return usageError("--hold needs --proto tcp");
  }
  if (sportBase) {
    if (options.protocol != ProbeProtocol::tcp || options.hold) {
      return usageError("--sport-base needs --proto tcp without --hold");
    }
    if (!count || *sportBase + *count - 1 > 65535) {
      return usageError("--sport-base needs --count N with PORT+N-1 <= 65535");
    }
    options.sportBase = static_cast<unsigned>(*sportBase);
  }
  if (installStopHandlers() < 0) {
    std::perror("sy-testpeer probe: pipe");
    return 1;
  }
  return runProbe(options);
}

} // namespace
} // namespace switchyard::testpeer

int main(int argc, char** argv) {
  using namespace switchyard::testpeer;
  if (argc < 2) {
    return usageError("missing command");
  }
  std::string_view command = argv[1];
  std::vector<std::string_view> args(argv + 2, argv + argc);
  if (command == "serve") {
    return serveCommand(args);
  }
  if (command == "probe") {
    return probeCommand(args);
  }
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(usageText, stdout);
    return 0;
  }
  return usageError("unknown command " + std::string(command));
}
