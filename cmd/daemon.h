// `switchyard run`: wires config -> source -> proxier -> maps, plus metrics and health, on
// one Boost.Asio io_context.
#pragma once

#include <string>

#include "config/config.h"

namespace switchyard::cmd {

// Runs until SIGTERM/SIGINT. Returns the process exit code. master (--master) overrides
// the API server address of the kubeconfig (source.kind apiserver).
int runDaemon(const config::Config& cfg, const std::string& master = "");

}  // namespace switchyard::cmd
