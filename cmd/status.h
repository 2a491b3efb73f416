// `switchyard status`: what the pinned maps hold, like `cilium bpf lb list`.
#pragma once

#include <string>
#include <vector>

namespace switchyard::cmd {

// Prints the services of the maps pinned under pinPath, and the tc hooks recorded there
// (with `devices` from --config listed even where nothing is recorded); json selects
// `-o json`.
int printStatus(const std::string& pinPath, bool json, const std::vector<std::string>& devices = {});

// `switchyard status policy`: pol_state_v1, the identities, and each endpoint with its rules,
// from the policy maps pinned under pinPath; pods and labels named from the daemon's names
// file (null where it has none). docs/policy.md has the JSON's shape.
int printPolicyStatus(const std::string& pinPath, bool json);

}  // namespace switchyard::cmd
