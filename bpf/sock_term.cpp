#include "bpf/sock_term.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>
#include <utility>

#include "bpf/map_writer.h"
#include "sock_term.skel.h"

namespace switchyard::bpf {
namespace {

std::string errnoText(int err) { return std::strerror(err < 0 ? -err : err); }

struct sy_term_key termKey(const lb::StaleUdpBackend& s) {
  struct sy_term_key k;
  std::memset(&k, 0, sizeof(k));
  k.frontend = toSyAddr(s.frontend.addr);
  k.frontend_port = htons(s.frontend.port);
  k.backend = toSyAddr(s.backend.addr);
  k.backend_port = htons(s.backend.port);
  return k;
}

// Runs the iterator once in the calling thread's network namespace: reading the iterator's
// fd to its end runs the program over every UDP socket there.
std::string runIterator(int linkFd) {
  UniqueFd iter(bpf_iter_create(linkFd));
  if (!iter.valid()) {
    return std::string("bpf_iter_create: ") + std::strerror(errno);
  }
  char buffer[256];
  for (int guard = 0; guard < (1 << 20); ++guard) {
    ssize_t got = ::read(iter.get(), buffer, sizeof(buffer));
    if (got == 0) {
      return {};
    }
    if (got < 0 && errno != EINTR && errno != EAGAIN) {
      return std::string("read: ") + std::strerror(errno);
    }
  }
  return "the iterator did not end";
}

}  // namespace

std::unique_ptr<SocketTerminator> SocketTerminator::load(int sockRevNatFd, std::string& error) {
  std::unique_ptr<SocketTerminator> t(new SocketTerminator());
  t->skel_ = sock_term__open();
  if (!t->skel_) {
    error = "open the socket terminator: " + errnoText(errno);
    return nullptr;
  }
  if (int err = bpf_map__reuse_fd(t->skel_->maps.sy_term_rnat, sockRevNatFd); err) {
    error = "socket terminator: share sock_rnat: " + errnoText(err);
    return nullptr;
  }
  if (int err = sock_term__load(t->skel_); err) {
    error = "load the socket terminator (bpf_sock_destroy needs Linux 6.5 or later): " + errnoText(err);
    return nullptr;
  }
  struct bpf_link* link = bpf_program__attach_iter(t->skel_->progs.sy_sock_term_udp, nullptr);
  if (!link) {
    error = "attach the UDP socket iterator: " + errnoText(errno);
    return nullptr;
  }
  // The link lives as long as this object; libbpf's bpf_link wrapper is not needed for it.
  t->link_.reset(dup(bpf_link__fd(link)));
  bpf_link__destroy(link);
  if (!t->link_.valid()) {
    error = "socket terminator: dup link: " + errnoText(errno);
    return nullptr;
  }
  return t;
}

SocketTerminator::~SocketTerminator() { sock_term__destroy(skel_); }

TerminateReport SocketTerminator::terminate(std::span<const lb::StaleUdpBackend> stale,
                                            const std::vector<std::string>& netnsPaths) {
  TerminateReport report;
  if (stale.empty()) {
    return report;
  }
  const int staleFd = bpf_map__fd(skel_->maps.sy_term_stale);
  const uint64_t before = skel_->bss->sy_term_destroyed;
  for (size_t start = 0; start < stale.size(); start += SY_TERM_STALE_MAX) {
    std::vector<struct sy_term_key> keys;
    for (size_t i = start; i < std::min(stale.size(), start + SY_TERM_STALE_MAX); ++i) {
      keys.push_back(termKey(stale[i]));
    }
    for (const auto& k : keys) {
      uint32_t one = 1;
      if (bpf_map_update_elem(staleFd, &k, &one, BPF_ANY) != 0) {
        report.errors.push_back(std::string("sock_term stale map: ") + std::strerror(errno));
      }
    }
    // setns(2) changes the calling thread only: a thread of its own enters each namespace.
    std::thread worker([&] {
      for (const std::string& path : netnsPaths) {
        UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns.valid() || ::setns(ns.get(), CLONE_NEWNET) != 0) {
          report.errors.push_back(path + ": " + std::strerror(errno));
          continue;
        }
        if (std::string why = runIterator(link_.get()); !why.empty()) {
          report.errors.push_back(path + ": " + why);
          continue;
        }
        ++report.namespaces;
      }
    });
    worker.join();
    for (const auto& k : keys) {
      bpf_map_delete_elem(staleFd, &k);
    }
  }
  report.destroyed = skel_->bss->sy_term_destroyed - before;
  return report;
}

std::vector<std::string> podNetworkNamespaces(const std::string& netnsDir) {
  std::vector<std::string> out;
  std::set<std::pair<dev_t, ino_t>> seen;
  auto add = [&](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && seen.insert({st.st_dev, st.st_ino}).second) {
      out.push_back(path);
    }
  };
  add("/proc/self/ns/net");
  if (DIR* dir = ::opendir(netnsDir.c_str())) {
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') {
        names.push_back(e->d_name);
      }
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      add(netnsDir + "/" + n);
    }
  }
  return out;
}

}  // namespace switchyard::bpf
