// Runs a shell command for a BPF test's setup (ip, tc): "" on success, else the command and
// what it printed, for the assertion message.
#pragma once

#include <cstdio>
#include <string>

namespace switchyard::bpftest {

inline std::string sh(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) {
    return cmd + ": popen failed";
  }
  char buf[256];
  while (fgets(buf, sizeof(buf), f)) {
    out += buf;
  }
  int rc = pclose(f);
  return rc == 0 ? "" : cmd + ": " + out;
}

}  // namespace switchyard::bpftest
