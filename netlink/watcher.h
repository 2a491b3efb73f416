// Follows this node's links and addresses (node_network.h) in the network namespace the
// calling thread is in when start() runs, on one Boost.Asio io_context, never blocking it
// on the kernel's events.
//
// Underneath, libnl-3's cache manager keeps a route/link and a route/addr cache and applies
// the kernel's RTNLGRP_LINK / IPV4_IFADDR / IPV6_IFADDR notifications to them; its socket is
// watched with an asio descriptor. When the kernel drops notifications (ENOBUFS: the socket's
// receive buffer overran) both caches are refilled from a dump, so nothing missed stays
// missed; overruns() counts these for a metric.
//
// Consumers get the whole picture, not a diff: after a burst of changes (the first change
// arms a timer of `debounce`; the changes until it fires fold into one call) the callback
// receives the complete NodeNetwork, and only when it differs from the last one delivered.
// A consumer therefore recomputes what it derives (NodePort addresses, matching devices) and
// diffs that against what it last applied.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "netlink/node_network.h"

namespace switchyard::netlink {

struct WatcherOptions {
  std::chrono::milliseconds debounce{50};
  // SO_RCVBUF of the notification socket; 0 keeps libnl's default (32 KiB; the kernel
  // doubles it and caps it at net.core.rmem_max). Tests set it small to provoke an overrun.
  int receiveBufferBytes = 0;
};

// Move-only owner of the netlink sockets, the cache manager and its caches; the destructor
// releases them. Outstanding handlers on the io_context stay safe after it is gone.
class NodeNetworkWatcher {
 public:
  using Callback = std::function<void(const NodeNetwork&)>;

  // Opens the sockets, subscribes, and fills both caches with a dump (synchronously: a dump
  // of the kernel's own tables, answered at once). On failure returns nullopt and says why
  // in `error`.
  static std::optional<NodeNetworkWatcher> start(boost::asio::io_context& io, const WatcherOptions& options,
                                                 std::string& error);

  NodeNetworkWatcher(NodeNetworkWatcher&&) noexcept;
  NodeNetworkWatcher& operator=(NodeNetworkWatcher&&) noexcept;
  NodeNetworkWatcher(const NodeNetworkWatcher&) = delete;
  NodeNetworkWatcher& operator=(const NodeNetworkWatcher&) = delete;
  ~NodeNetworkWatcher();

  // The picture as last delivered (right after start(): as dumped). Changes not delivered yet
  // (within the debounce) are not in it.
  const NodeNetwork& current() const;

  // Called on the io_context after each change, with the new picture; not called for the
  // picture start() found (read current() for that). Replaces an earlier callback. It must
  // not destroy the watcher.
  void onChange(Callback callback);

  // Times the kernel dropped notifications and the caches were refilled.
  uint64_t overruns() const;

 private:
  struct Impl;
  explicit NodeNetworkWatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchyard::netlink
