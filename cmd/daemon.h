// `switchyard run`: wires config -> source -> proxier -> maps, plus metrics and health, on
// one Boost.Asio io_context.
#pragma once

#include "config/config.h"

namespace switchyard::cmd {

// Runs until SIGTERM/SIGINT. Returns the process exit code.
int runDaemon(const config::Config& cfg);

}  // namespace switchyard::cmd
