// `switchyard status`: what the pinned maps hold, like `cilium bpf lb list`.
#pragma once

#include <string>

namespace switchyard::cmd {

// Prints the services of the maps pinned under pinPath; json selects `-o json`.
int printStatus(const std::string& pinPath, bool json);

}  // namespace switchyard::cmd
