#include "netlink/device_match.h"

#include <fnmatch.h>
#include <net/if.h>

#include <algorithm>
#include <cctype>

namespace switchyard::netlink {

std::vector<Link> matchDevices(const std::vector<std::string>& patterns, const std::vector<Link>& links) {
  std::vector<Link> out;
  for (const Link& l : links) {
    bool matched = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
      return p == l.name || ::fnmatch(p.c_str(), l.name.c_str(), 0) == 0;
    });
    if (matched) {
      out.push_back(l);
    }
  }
  std::sort(out.begin(), out.end(), [](const Link& a, const Link& b) { return a.ifindex < b.ifindex; });
  return out;
}

std::optional<std::string> devicePatternError(const std::string& pattern) {
  if (pattern.empty()) {
    return "must not be empty";
  }
  // The kernel's dev_valid_name() refuses these in a name, so a pattern holding one literally
  // matches nothing.
  for (char c : pattern) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) {
      return "no interface name has '/', ':' or whitespace in it";
    }
  }
  bool glob = pattern.find_first_of("*?[") != std::string::npos;
  if (!glob && pattern.size() >= IFNAMSIZ) {
    return "longer than an interface name can be (" + std::to_string(IFNAMSIZ - 1) + " characters)";
  }
  return std::nullopt;
}

}  // namespace switchyard::netlink
