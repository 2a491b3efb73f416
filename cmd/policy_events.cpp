#include "cmd/policy_events.h"

#include <bpf/libbpf.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>

#include "bpf/abi.h"
#include "logging/log.h"

namespace switchyard::cmd {
namespace {

std::string who(const uint8_t* addr, const PodNamer& name) {
  lb::IpAddr a;
  std::memcpy(a.bytes.data(), addr, 16);
  std::string pod = name ? name(a) : "";
  std::string s = pod.empty() ? std::string("(no pod)") : pod;
  return s.append(" (").append(a.str()).append(")");
}

}  // namespace

std::string describeDeniedFlow(const sy_pol_event& ev, const PodNamer& name) {
  bool ingress = ev.dir == SY_POL_INGRESS;
  std::string local = who(ev.local, name), peer = who(ev.peer, name);
  std::string s = "denied ";
  s.append(ingress ? "ingress " : "egress ");
  s.append(lb::protoName(ev.proto)).append(" ");
  s.append(ingress ? peer : local).append(" -> ").append(ingress ? local : peer);
  s.append(" port ").append(std::to_string(ev.port));
  char dev[IF_NAMESIZE] = {};
  s.append(" on ");
  if (if_indextoname(ev.ifindex, dev)) {
    s.append(dev);
  } else {
    s.append("ifindex ").append(std::to_string(ev.ifindex));
  }
  s.append(ev.reason == SY_REASON_POL_DENIED_DEFAULT
               ? ": only policies without rules for this direction select the pod (default deny)"
               : ": no rule of the policies selecting the pod allows it");
  return s;
}

bool LineBudget::take(Clock::time_point now, uint64_t& heldBack) {
  heldBack = 0;
  if (now - start_ >= std::chrono::seconds(1)) {
    heldBack = held_;
    held_ = 0;
    used_ = 0;
    start_ = now;
  }
  if (used_ < perSecond_) {
    ++used_;
    return true;
  }
  ++held_;
  return false;
}

DeniedFlowLog::DeniedFlowLog(boost::asio::io_context& io, PodNamer name)
    : name_(std::move(name)), descriptor_(io) {}

std::unique_ptr<DeniedFlowLog> DeniedFlowLog::open(boost::asio::io_context& io, int ringFd, PodNamer name,
                                                   std::string& error) {
  std::unique_ptr<DeniedFlowLog> log(new DeniedFlowLog(io, std::move(name)));
  log->ring_ = ring_buffer__new(ringFd, &DeniedFlowLog::onEvent, log.get(), nullptr);
  if (!log->ring_) {
    error = std::string(SY_STRINGIFY(SY_MAP_POL_EVENTS)) + ": cannot read the ring: " + std::strerror(errno);
    return nullptr;
  }
  log->descriptor_.assign(ring_buffer__epoll_fd(log->ring_));
  log->waitReadable();
  return log;
}

DeniedFlowLog::~DeniedFlowLog() {
  alive_.reset();
  if (descriptor_.is_open()) {
    boost::system::error_code ec;
    descriptor_.cancel(ec);
    descriptor_.release();  // libbpf closes its epoll fd
  }
  if (ring_) {
    ring_buffer__free(ring_);
  }
}

void DeniedFlowLog::waitReadable() {
  descriptor_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                         [this, token = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
                           if (token.expired() || ec == boost::asio::error::operation_aborted) {
                             return;
                           }
                           if (ec) {
                             SY_LOG(Warning) << "denied-flow log: " << ec.message() << "; no more lines";
                             return;
                           }
                           ring_buffer__consume(ring_);
                           waitReadable();
                         });
}

int DeniedFlowLog::onEvent(void* ctx, void* data, size_t size) {
  auto* self = static_cast<DeniedFlowLog*>(ctx);
  if (size < sizeof(sy_pol_event)) {
    return 0;
  }
  sy_pol_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  uint64_t heldBack = 0;
  bool log = self->budget_.take(LineBudget::Clock::now(), heldBack);
  if (heldBack > 0) {
    SY_LOG(Warning) << "policy: " << heldBack << " more denied flows not logged (at most "
                    << kLinesPerSecond << " lines a second; all are counted in policy_denied*)";
  }
  if (log) {
    SY_LOG(Warning) << "policy: " << describeDeniedFlow(ev, self->name_);
  }
  return 0;
}

}  // namespace switchyard::cmd
