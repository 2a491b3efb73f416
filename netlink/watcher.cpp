#include "netlink/watcher.h"

// linux/if.h for IFF_*, as libnl's own headers include it; net/if.h beside it clashes in some orders.
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "logging/log.h"

namespace switchyard::netlink {
namespace {

constexpr const char* kLinkCacheName = "route/link";
constexpr const char* kAddrCacheName = "route/addr";
// A refill the kernel refused is tried again after this long.
constexpr std::chrono::milliseconds kResyncRetry{1000};
// At most this many queued notifications are thrown away before a refill (see resync()).
constexpr int kMaxDrainedMessages = 4096;

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct MngrFree {
  void operator()(nl_cache_mngr* m) const { nl_cache_mngr_free(m); }
};
using SockPtr = std::unique_ptr<nl_sock, SockFree>;
using MngrPtr = std::unique_ptr<nl_cache_mngr, MngrFree>;

std::string nlError(int err) { return nl_geterror(err); }

Link toLink(rtnl_link* l) {
  Link k;
  k.ifindex = rtnl_link_get_ifindex(l);
  const char* name = rtnl_link_get_name(l);
  k.name = name ? name : "";
  const char* kind = rtnl_link_get_type(l);
  k.kind = kind ? kind : "";
  k.masterIfindex = rtnl_link_get_master(l);
  k.mtu = rtnl_link_get_mtu(l);
  unsigned flags = rtnl_link_get_flags(l);
  k.up = flags & IFF_UP;
  k.running = flags & IFF_RUNNING;
  k.loopback = flags & IFF_LOOPBACK;
  k.hasL2 = rtnl_link_get_arptype(l) == ARPHRD_ETHER;
  return k;
}

std::optional<Address> toAddress(rtnl_addr* a) {
  nl_addr* local = rtnl_addr_get_local(a);
  if (!local) {
    return std::nullopt;
  }
  Address out;
  out.ifindex = rtnl_addr_get_ifindex(a);
  out.family = rtnl_addr_get_family(a);
  const auto* bin = static_cast<const uint8_t*>(nl_addr_get_binary_addr(local));
  unsigned len = nl_addr_get_len(local);
  if (out.family == AF_INET && len == 4) {
    uint8_t v4[4];
    std::memcpy(v4, bin, 4);
    out.ip = ipv4Mapped(v4);
  } else if (out.family == AF_INET6 && len == 16) {
    std::memcpy(out.ip.data(), bin, 16);
  } else {
    return std::nullopt;
  }
  out.prefixLen = static_cast<uint8_t>(rtnl_addr_get_prefixlen(a));
  out.scope = static_cast<AddressScope>(rtnl_addr_get_scope(a));
  unsigned flags = rtnl_addr_get_flags(a);
  out.tentative = flags & IFA_F_TENTATIVE;
  out.deprecated = flags & IFA_F_DEPRECATED;
  return out;
}

}  // namespace

struct NodeNetworkWatcher::Impl {
  Impl(boost::asio::io_context& io, const WatcherOptions& o) : options(o), descriptor(io), timer(io) {}
  ~Impl() {
    // Hands the fd back without closing it: the cache manager owns it and closes it below.
    if (descriptor.is_open()) {
      descriptor.release();
    }
  }

  // libnl's change callback (change_func_t), for every object the manager adds, changes or
  // removes while reading notifications.
  static void onCacheChange(nl_cache*, nl_object*, int, void* data) { static_cast<Impl*>(data)->dirty = true; }

  // Handlers hold a weak reference to `alive` and do nothing once it is gone: a handler can
  // already be queued (its operation done) when the watcher is destroyed, and then cancelling
  // no longer reaches it.
  template <typename F>
  auto guarded(F f) {
    return [this, token = std::weak_ptr<char>(alive), f](const boost::system::error_code& ec) {
      if (!token.expired()) {
        (this->*f)(ec);
      }
    };
  }

  void waitReadable() {
    descriptor.async_wait(boost::asio::posix::descriptor_base::wait_read, guarded(&Impl::onReadable));
  }

  void onReadable(const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) {
      return;
    }
    if (ec) {
      // Not seen in practice: the descriptor is a netlink socket we keep open.
      SY_LOG(Error) << "netlink: waiting on the link/address notification socket failed: " << ec.message()
                    << "; no longer following link and address changes";
      return;
    }
    int n = nl_cache_mngr_data_ready(mngr.get());
    if (n < 0) {
      if (n == -NLE_NOMEM) {  // libnl's name for ENOBUFS from recvmsg
        ++overruns;
        SY_LOG(Warning) << "netlink: the kernel dropped link/address notifications (receive buffer overrun); "
                           "refilling the link and address caches";
      } else {
        SY_LOG(Warning) << "netlink: reading link/address notifications: " << nlError(n)
                        << "; refilling the link and address caches";
      }
      resync();
    }
    if (dirty || needResync) {
      schedulePublish(needResync ? kResyncRetry : options.debounce);
    }
    waitReadable();
  }

  // Replaces both caches with a dump.
  void resync() {
    // The notifications still queued are older than the dump about to be taken, and the ones
    // the kernel dropped may have been later changes to the same objects: applied after the
    // dump, a queued one could bring back an address already deleted. So they are thrown away
    // unread. What arrives from here on is applied on top of the dump; a change that is both
    // in the dump and in a notification is applied twice, which changes nothing.
    int fd = nl_cache_mngr_get_fd(mngr.get());
    char buf[4096];
    for (int i = 0; i < kMaxDrainedMessages; ++i) {
      ssize_t r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);  // a datagram too big is cut: fine here
      if (r < 0 && (errno == EINTR || errno == ENOBUFS)) {
        continue;
      }
      if (r <= 0) {
        break;
      }
    }
    needResync = false;
    for (auto [name, cache] : {std::pair{kLinkCacheName, linkCache}, std::pair{kAddrCacheName, addrCache}}) {
      int err = nl_cache_refill(syncSock.get(), cache);
      if (err < 0) {
        SY_LOG(Warning) << "netlink: refilling the " << name << " cache: " << nlError(err) << "; trying again in "
                        << kResyncRetry.count() << "ms";
        needResync = true;
      }
    }
    dirty = true;
  }

  void schedulePublish(std::chrono::milliseconds delay) {
    if (timerArmed) {
      return;  // a burst folds into the call already scheduled
    }
    timerArmed = true;
    timer.expires_after(delay);
    timer.async_wait(guarded(&Impl::onTimer));
  }

  void onTimer(const boost::system::error_code& ec) {
    timerArmed = false;
    if (ec == boost::asio::error::operation_aborted) {
      return;
    }
    if (needResync) {
      resync();
    }
    dirty = false;
    NodeNetwork next = snapshot();
    if (needResync) {
      schedulePublish(kResyncRetry);
    }
    if (next == current) {
      return;
    }
    current = std::move(next);
    if (callback) {
      callback(current);
    }
  }

  NodeNetwork snapshot() const {
    NodeNetwork n;
    // One link per ifindex. The cache holds each link under AF_UNSPEC, except that libnl files
    // a bridge device under AF_BRIDGE (its kind names a family); beside those it keeps the
    // kernel's per-family views: AF_BRIDGE for bridge ports, AF_INET6 for IPv6 settings (never
    // removed when the link goes). So: the AF_UNSPEC entry, else an AF_BRIDGE one (a bridge).
    std::map<int, std::pair<Link, bool>> byIfindex;  // ifindex -> (link, from AF_UNSPEC)
    for (nl_object* o = nl_cache_get_first(linkCache); o; o = nl_cache_get_next(o)) {
      auto* l = reinterpret_cast<rtnl_link*>(o);
      int family = rtnl_link_get_family(l);
      if (family != AF_UNSPEC && family != AF_BRIDGE) {
        continue;
      }
      auto& [link, fromUnspec] = byIfindex[rtnl_link_get_ifindex(l)];
      if (family == AF_UNSPEC || !fromUnspec) {
        link = toLink(l);
        fromUnspec = family == AF_UNSPEC;
        if (!fromUnspec && link.kind.empty()) {
          link.kind = "bridge";  // a bridge's own AF_BRIDGE notification carries no kind
        }
      }
    }
    std::set<int> ifindexes;
    for (auto& [ifindex, entry] : byIfindex) {
      n.links.push_back(std::move(entry.first));
      ifindexes.insert(ifindex);
    }
    for (nl_object* o = nl_cache_get_first(addrCache); o; o = nl_cache_get_next(o)) {
      auto a = toAddress(reinterpret_cast<rtnl_addr*>(o));
      // The kernel announces the removal of a deleted link's addresses, but a picture never
      // lists an address of a link it does not list, whatever the order of the notifications.
      if (a && ifindexes.count(a->ifindex)) {
        n.addresses.push_back(*a);
      }
    }
    std::sort(n.addresses.begin(), n.addresses.end(), [](const Address& a, const Address& b) {
      return std::tie(a.ifindex, a.family, a.ip, a.prefixLen) < std::tie(b.ifindex, b.family, b.ip, b.prefixLen);
    });
    return n;
  }

  WatcherOptions options;
  Callback callback;
  SockPtr eventSock;  // notifications; handed to the cache manager, freed after it
  SockPtr syncSock;   // dumps for refills after an overrun
  MngrPtr mngr;       // closes eventSock's fd; owns the caches
  nl_cache* linkCache = nullptr;
  nl_cache* addrCache = nullptr;
  boost::asio::posix::stream_descriptor descriptor;  // eventSock's fd, never closed by asio
  boost::asio::steady_timer timer;
  std::shared_ptr<char> alive = std::make_shared<char>();
  NodeNetwork current;
  bool dirty = false;
  bool needResync = false;
  bool timerArmed = false;
  uint64_t overruns = 0;
};

std::optional<NodeNetworkWatcher> NodeNetworkWatcher::start(boost::asio::io_context& io, const WatcherOptions& options,
                                                            std::string& error) {
  auto impl = std::make_unique<Impl>(io, options);
  impl->eventSock.reset(nl_socket_alloc());
  impl->syncSock.reset(nl_socket_alloc());
  if (!impl->eventSock || !impl->syncSock) {
    error = "netlink: cannot allocate a libnl socket";
    return std::nullopt;
  }
  nl_cache_mngr* mngr = nullptr;
  // No NL_AUTO_PROVIDE: the caches stay this watcher's, not libnl's process-wide defaults.
  int err = nl_cache_mngr_alloc(impl->eventSock.get(), NETLINK_ROUTE, 0, &mngr);
  if (err < 0) {
    error = "netlink: cannot open a NETLINK_ROUTE socket for link/address notifications: " + nlError(err);
    return std::nullopt;
  }
  impl->mngr.reset(mngr);
  if (options.receiveBufferBytes > 0) {
    err = nl_socket_set_buffer_size(impl->eventSock.get(), options.receiveBufferBytes, 0);
    if (err < 0) {
      error = "netlink: setting SO_RCVBUF " + std::to_string(options.receiveBufferBytes) +
              " on the notification socket: " + nlError(err);
      return std::nullopt;
    }
  }
  err = nl_connect(impl->syncSock.get(), NETLINK_ROUTE);
  if (err < 0) {
    error = "netlink: cannot open a NETLINK_ROUTE socket for dumps: " + nlError(err);
    return std::nullopt;
  }
  // Each add subscribes to the cache's groups before dumping, so no change falls between.
  for (auto [name, cache] :
       {std::pair{kLinkCacheName, &impl->linkCache}, std::pair{kAddrCacheName, &impl->addrCache}}) {
    err = nl_cache_mngr_add(mngr, name, &Impl::onCacheChange, impl.get(), cache);
    if (err < 0) {
      error = std::string("netlink: cannot follow the ") + name + " cache: " + nlError(err);
      return std::nullopt;
    }
  }
  boost::system::error_code ec;
  impl->descriptor.assign(nl_cache_mngr_get_fd(mngr), ec);
  if (ec) {
    error = "netlink: cannot watch the notification socket: " + ec.message();
    return std::nullopt;
  }
  impl->current = impl->snapshot();
  impl->dirty = false;
  impl->waitReadable();
  return NodeNetworkWatcher(std::move(impl));
}

NodeNetworkWatcher::NodeNetworkWatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeNetworkWatcher::NodeNetworkWatcher(NodeNetworkWatcher&&) noexcept = default;
NodeNetworkWatcher& NodeNetworkWatcher::operator=(NodeNetworkWatcher&&) noexcept = default;
NodeNetworkWatcher::~NodeNetworkWatcher() = default;

const NodeNetwork& NodeNetworkWatcher::current() const { return impl_->current; }
void NodeNetworkWatcher::onChange(Callback callback) { impl_->callback = std::move(callback); }
uint64_t NodeNetworkWatcher::overruns() const { return impl_->overruns; }

}  // namespace switchyard::netlink
