// policy.logDenied: the tc programs' denied-flow events (pol_events_v1, a ring buffer, at
// most SY_POL_LOG_PER_SEC per CPU per second) as log lines naming the pods, at most
// kLinesPerSecond of them; the rest are summed into one line per second.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "bpf/policy_abi.h"
#include "lb/types.h"

struct ring_buffer;

namespace switchyard::cmd {

// "namespace/name" of the pod holding an address, "" when no pod does.
using PodNamer = std::function<std::string(const lb::IpAddr&)>;

// One event as a log line: "denied ingress TCP x/b (198.18.18.2) -> x/a (198.18.17.2) port
// 8080 on p1: no rule allows it". For an ingress flow the peer is the source, for egress
// the local pod.
std::string describeDeniedFlow(const sy_pol_event& ev, const PodNamer& name);

// At most `perSecond` lines per one-second window; what is held back is reported when the
// next window opens. The clock is injected (tests).
class LineBudget {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LineBudget(unsigned perSecond) : perSecond_(perSecond) {}
  // True: log this one. `heldBack` gets the count held back in the window that just
  // closed (0 if none), once, when a new window opens.
  bool take(Clock::time_point now, uint64_t& heldBack);

 private:
  unsigned perSecond_;
  Clock::time_point start_{};
  unsigned used_ = 0;
  uint64_t held_ = 0;
};

class DeniedFlowLog {
 public:
  static constexpr unsigned kLinesPerSecond = 20;

  // Reads the ring `ringFd` (the daemon's pol_events_v1) on `io`. nullptr with a message
  // when libbpf cannot open it.
  static std::unique_ptr<DeniedFlowLog> open(boost::asio::io_context& io, int ringFd, PodNamer name,
                                             std::string& error);
  ~DeniedFlowLog();

 private:
  DeniedFlowLog(boost::asio::io_context& io, PodNamer name);
  static int onEvent(void* ctx, void* data, size_t size);
  void waitReadable();

  PodNamer name_;
  ring_buffer* ring_ = nullptr;
  boost::asio::posix::stream_descriptor descriptor_;  // the ring's epoll fd, owned by libbpf
  LineBudget budget_{kLinesPerSecond};
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace switchyard::cmd
