// `switchyard cleanup`: removes every tc filter, cgroup link and pin switchyard made under
// one pin path. tc filters are found through the tc_attach map (in the caller's network
// namespace), so no config is needed.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace switchyard::bpf {

struct CleanupReport {
  int tcFiltersRemoved = 0;
  int qdiscsRemoved = 0;
  int linksRemoved = 0;
  int pinsRemoved = 0;
  std::vector<std::string> errors;  // what could not be removed, and why
};

CleanupReport cleanupPinPath(const std::string& pinPath);

// Detaches the tc hooks recorded in the tc_attach map (fd) on every device whose name is
// not in `keep`, removing their records, and the clsact qdiscs switchyard created there.
// The daemon uses it for devices dropped from bpf.devices; cleanup with an empty `keep`.
void detachTcHooks(int tcAttachFd, const std::set<std::string>& keep, CleanupReport& report);

}  // namespace switchyard::bpf
