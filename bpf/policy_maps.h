// Writes policy/'s entries into the policy maps (bpf/policy_abi.h). policy/ decides what the
// maps must hold; this turns a policy::Diff into map updates, in an order that never denies
// a flow both the old and the new state allow.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "policy/compiler.h"

namespace switchyard::bpf {

struct PolicyMapFds {
  int ipcache = -1;
  int endpoints = -1;
  int rules = -1;
};

struct PolicyWriteResult {
  size_t written = 0;
  size_t failed = 0;
  std::string firstError;  // "pol_rules_v1: endpoint 3 ingress peer 300 TCP 80: No space left on device"
  std::map<std::string, size_t> failedByMap;  // map name -> failed operations
  bool ok() const { return failed == 0; }
};

// Order: ipcache upserts and rule additions, then endpoints (isolation switches on only once
// its rules are in), then rule, endpoint and ipcache removals. When an addition fails (a full
// map), nothing is removed and no endpoint changes: the previous rules stay in force, the
// caller keeps the old state as the written one and reports the error.
PolicyWriteResult writePolicyDiff(const PolicyMapFds& fds, const policy::Diff& diff);

// What the maps hold, as a State: ipcache, endpoints (Endpoint.pod empty: the maps do not
// name pods) and rules; identities and cidrIdentities stay empty. For a restarted daemon
// (adopt the pinned entries, diff against them) and after a failed write. False, with the
// map and errno in `error`, when a map cannot be walked.
bool readPolicyMaps(const PolicyMapFds& fds, policy::State& out, std::string& error);

// An endpoint's value as pol_ep_v1 holds it (the pod's name is not in the map).
bool sameEndpointValue(const policy::Endpoint& a, const policy::Endpoint& b);

}  // namespace switchyard::bpf
