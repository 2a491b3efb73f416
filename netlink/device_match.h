// Which links a list of device patterns names (bpf.devices): exact names ("eth0") or shell
// globs matched with fnmatch(3) ("veth*", "cali*", "lxc*", "eth[01]"). Pure: the links come
// from NodeNetwork (node_network.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "netlink/node_network.h"

namespace switchyard::netlink {

// The links whose name equals or matches any pattern, in ifindex order, each once. A name
// equal to a pattern matches even when the pattern has glob characters in it. Nothing is
// left out for its kind or state (loopback, down): "*" names every link, lo included.
std::vector<Link> matchDevices(const std::vector<std::string>& patterns, const std::vector<Link>& links);

// Why a pattern can never name a device, or nullopt: it is empty, has a character no
// interface name has ('/', ':', whitespace), or is a plain name longer than the kernel's
// 15 characters (IFNAMSIZ - 1). For config validation.
std::optional<std::string> devicePatternError(const std::string& pattern);

}  // namespace switchyard::netlink
