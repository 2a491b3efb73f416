// The XDP fast path's attachments (issue 11 item 4): one pinned bpf link per host-facing
// device under PIN/links/xdp_DEVICE, so they outlive the daemon like the socket hooks'
// links, a restarted daemon swaps the program in place, and `switchyard cleanup` removes
// them with the other links. Also the deny list (loadBalancer.denyCIDRs) written to its map.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lb/types.h"

namespace switchyard::bpf {

inline constexpr const char* kXdpLinkPrefix = "xdp_";

// "xdp_eth0": the pin name of a device's XDP link under PIN/links/.
std::string xdpLinkPin(const std::string& device);

// How XDP runs on a device now ("native", "generic", "offload", "none"), from the kernel.
std::string xdpAttachMode(unsigned ifindex);

struct XdpLinkInfo {
  std::string pin;     // path
  std::string device;  // from the pin name
  unsigned ifindex = 0;  // 0: the link is defunct (its device went away)
  uint32_t progId = 0;
  std::string mode;    // xdpAttachMode(ifindex), "" when defunct
};
// The XDP links pinned under pinPath/links/ (status, the daemon's sweep).
std::vector<XdpLinkInfo> listXdpLinks(const std::string& pinPath);

// Makes the deny map hold exactly `cidrs` (fd: the pinned xdpdeny map). False with a
// message naming the prefix that could not be written.
bool writeDenyCidrs(int fd, const std::vector<lb::Cidr>& cidrs, std::string& error);
// What the deny map holds, sorted (status).
std::vector<lb::Cidr> readDenyCidrs(int fd);

}  // namespace switchyard::bpf
