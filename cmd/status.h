// `switchyard status`: what the pinned maps hold, like `cilium bpf lb list`.
#pragma once

#include <string>
#include <vector>

namespace switchyard::cmd {

// Prints the services of the maps pinned under pinPath, and the tc hooks recorded there
// (with `devices` from --config listed even where nothing is recorded); json selects
// `-o json`.
int printStatus(const std::string& pinPath, bool json, const std::vector<std::string>& devices = {});

}  // namespace switchyard::cmd
