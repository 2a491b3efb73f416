// bench/xdp_pps: packets per second per core of the XDP fast path (bpf/xdp_lb.bpf.c, issue 11
// item 4) with BPF_PROG_RUN, on the real program and maps, against Katran's ~5 Mpps per core.
//
//   sudo build/bench/sy_xdp_pps [--packets N] [--rounds R] [--json]
//
// Three paths, each a frame of 64 bytes on the wire (an Ethernet + IPv4 + TCP ACK):
//   deny   a source in loadBalancer.denyCIDRs: one LPM lookup, XDP_DROP
//   pass   a NodePort packet of no tracked flow: deny miss, conntrack miss, XDP_PASS to tc
//   fast   an established SNATed flow: deny miss, conntrack hit, rewrite of addresses, ports
//          and checksums, FIB lookup, XDP_TX (its entries map the frame onto itself: below)
// Two ways to run each:
//   repeat the kernel runs the program N times on one frame (BPF_PROG_RUN repeat=N), timed
//          by the wall clock around the call: the program's own cost, nothing after it
//   live   BPF_F_TEST_XDP_LIVE_FRAMES: N frames from a page pool, their verdicts carried out
//          (XDP_TX and XDP_PASS really transmit to / enter the stack of the device; here a
//          veth, whose peer runs no XDP, so the transmitted frames end at its queue), timed by
//          the wall clock around the call. Skipped where the kernel lacks it.
// Everything runs on one CPU (pinned), in a network namespace of its own with a pin path of its
// own, both removed at the end. Every path's verdict is checked by the datapath counters.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bpf/cleanup.h"
#include "bpf/datapath.h"
#include "bpf/map_writer.h"
#include "bpf/node_maps.h"
#include "bpf/xdp_links.h"
#include "lb/syncer.h"
#include "metrics/datapath_counters.h"
#include "packets.h"

namespace sy = switchyard;

namespace {

constexpr double kKatranMppsPerCore = 5.0;  // Katran's published figure (docs/benchmarks.md)
#ifndef BPF_F_TEST_XDP_LIVE_FRAMES
#define BPF_F_TEST_XDP_LIVE_FRAMES (1U << 1)
#endif

int run(const char* cmd) {
  int rc = std::system((std::string(cmd) + " >/dev/null 2>&1").c_str());
  if (rc != 0) {
    std::fprintf(stderr, "sy_xdp_pps: `%s` failed\n", cmd);
  }
  return rc;
}

uint64_t counter(int fd, uint32_t reason) {
  sy::metrics::DatapathCounters::Totals t;
  return sy::metrics::DatapathCounters::read(fd, t) ? t.packets.at(reason) : 0;
}

struct Measure {
  double mpps = 0;        // by the wall clock around the call
  double kernelMpps = 0;  // repeat: by the kernel's mean time of a run (opts.duration, whole ns),
                          // which leaves out the time the CPU spent on other tasks
  bool ok = false;
  std::string why;
};

// BPF_PROG_RUN repeat=n on one frame.
Measure repeatRun(int prog, const std::vector<uint8_t>& frame, int ifindex, uint32_t n) {
  Measure m;
  std::vector<uint8_t> out(frame.size() + 256);
  struct xdp_md ctx {};
  ctx.data_end = static_cast<__u32>(frame.size());
  ctx.ingress_ifindex = static_cast<__u32>(ifindex);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .data_size_out = static_cast<uint32_t>(out.size()),
              .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(n));
  auto t0 = std::chrono::steady_clock::now();
  int err = bpf_prog_test_run_opts(prog, &opts);
  auto t1 = std::chrono::steady_clock::now();
  if (err) {
    m.why = std::string("BPF_PROG_RUN: ") + std::strerror(-err);
    return m;
  }
  // The wall clock around the call (the kernel's own mean, opts.duration, is whole ns).
  double s = std::chrono::duration<double>(t1 - t0).count();
  m.mpps = s > 0 ? n / s / 1e6 : 0;
  m.kernelMpps = opts.duration ? 1000.0 / opts.duration : 0;
  m.ok = true;
  return m;
}

// BPF_F_TEST_XDP_LIVE_FRAMES: n frames, verdicts carried out, timed by the wall clock.
Measure liveRun(int prog, const std::vector<uint8_t>& frame, int ifindex, uint32_t n) {
  Measure m;
  struct xdp_md ctx {};
  ctx.data_end = static_cast<__u32>(frame.size());
  ctx.ingress_ifindex = static_cast<__u32>(ifindex);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
              .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(n),
              .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
  auto t0 = std::chrono::steady_clock::now();
  int err = bpf_prog_test_run_opts(prog, &opts);
  auto t1 = std::chrono::steady_clock::now();
  if (err) {
    m.why = std::string("live frames: ") + std::strerror(-err);
    return m;
  }
  double s = std::chrono::duration<double>(t1 - t0).count();
  m.mpps = s > 0 ? n / s / 1e6 : 0;
  m.ok = true;
  return m;
}

sy::lb::Frontend nodePort(uint16_t port, const char* backend) {
  sy::lb::Frontend f;
  f.key = {sy::lb::wildcardOf(*sy::lb::IpAddr::parse("198.18.0.11")), port, sy::lb::kProtoTCP};
  f.head.kind = sy::lb::FrontendKind::NodePort;
  f.backends.push_back({{*sy::lb::IpAddr::parse(backend), 8080, sy::lb::kProtoTCP}, false, false});
  return f;
}

// A 64-byte frame on the wire (60 without the FCS): Ethernet + IPv4 + TCP + 6 bytes.
std::vector<uint8_t> frame(const char* src, uint16_t sport, uint8_t flags) {
  return sy::bpftest::makePacket(IPPROTO_TCP, src, sport, "198.18.0.11", 30080, flags, "xxxxxx").bytes;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t packets = 5'000'000, rounds = 3;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--packets" && i + 1 < argc) {
      packets = static_cast<uint32_t>(std::stoul(argv[++i]));
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = static_cast<uint32_t>(std::stoul(argv[++i]));
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: sy_xdp_pps [--packets N=5000000] [--rounds R=3] [--json]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "sy_xdp_pps: needs root (BPF, a network namespace)\n");
    return 77;
  }
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  sched_setaffinity(0, sizeof(cpus), &cpus);
  if (unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "sy_xdp_pps: unshare(CLONE_NEWNET): %s\n", std::strerror(errno));
    return 1;
  }
  for (const char* cmd : {"ip link set lo up", "ip link add fab0 address 02:00:00:00:00:11 type veth peer name fab1",
                          "ip link set fab1 up", "ip link set fab0 up", "ip addr add 198.18.0.11/24 dev fab0",
                          "ip route add 198.18.18.0/24 via 198.18.0.12",
                          "ip neigh add 198.18.0.12 lladdr 02:00:00:00:00:12 dev fab0",
                          "ip neigh add 198.18.0.100 lladdr 02:00:00:00:01:00 dev fab0",
                          "sysctl -qw net.ipv4.ip_forward=1"}) {
    if (run(cmd) != 0) {
      return 1;
    }
  }
  int ifindex = static_cast<int>(if_nametoindex("fab0"));
  std::string pin = "/sys/fs/bpf/sy-xdp-pps-" + std::to_string(getpid());
  int rc = 0;
  {
    sy::bpf::DatapathOptions o;
    o.pinPath = pin;
    std::string error;
    std::unique_ptr<sy::bpf::Datapath> dp = sy::bpf::Datapath::load(o, error);
    if (!dp) {
      std::fprintf(stderr, "sy_xdp_pps: %s\n", error.c_str());
      return 1;
    }
    sy::bpf::MapWriter writer(dp->maps());
    sy::lb::Syncer syncer(writer);
    sy::bpf::NodeMaps node(dp->maps());
    bool ok = node.setNodeAddresses({{*sy::lb::IpAddr::parse("198.18.0.11"), SY_NODE_ADDR_F_NODEPORT}}, error) &&
              syncer.syncOwner("bench/np", {nodePort(30080, "198.18.18.2")}).errors == 0 &&
              sy::bpf::writeDenyCidrs(dp->maps().xdpDeny, {*sy::lb::Cidr::parse("203.0.113.0/24")}, error);
    // The established flow: its first packet through the tc program, which writes the entries.
    std::vector<uint8_t> syn = frame("198.18.0.100", 40000, 0x02), out(syn.size() + 256);
    struct __sk_buff skb {};
    skb.ifindex = static_cast<__u32>(ifindex);
    LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = syn.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(syn.size()), .data_size_out = static_cast<uint32_t>(out.size()),
                .ctx_in = &skb, .ctx_size_in = sizeof(skb), .repeat = 1);
    ok = ok && bpf_prog_test_run_opts(dp->programFd(sy::bpf::Datapath::Program::TcFromNet), &t) == 0 &&
         t.retval == 7 /* TC_ACT_REDIRECT */;
    if (!ok) {
      std::fprintf(stderr, "sy_xdp_pps: setup failed %s\n", error.c_str());
      rc = 1;
    }
    // BPF_PROG_RUN runs one buffer again and again (live frames reuse their pages), so the
    // fast path's frame must survive its own rewrite: its flow's entries (written here, as tc
    // writes a SNATed flow's pair) translate it onto itself, client -> remote backend, SNATed
    // to the client's own address and port. The program does the work of any tracked flow:
    // both lookups, the rewrite and checksums (a zero difference), the FIB lookup, XDP_TX.
    {
      uint32_t id = 0;
      for (const auto& [bid, b] : writer.read().backends) {
        if (b.key.addr == *sy::lb::IpAddr::parse("198.18.18.2")) {
          id = bid;
        }
      }
      auto addr = [](const char* a) { return sy::bpf::toSyAddr(*sy::lb::IpAddr::parse(a)); };
      sy_ct_key fk{}, rk{};
      fk.saddr = addr("198.18.0.100");
      fk.daddr = addr("198.18.18.2");
      fk.sport = htons(40002);
      fk.dport = htons(8080);
      fk.proto = IPPROTO_TCP;
      rk = fk;
      std::swap(rk.saddr, rk.daddr);
      std::swap(rk.sport, rk.dport);
      timespec ts{};
      clock_gettime(CLOCK_MONOTONIC, &ts);
      sy_ct_entry fe{}, re{};
      fe.last_seen_ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
      fe.nat_addr = fk.daddr;
      fe.nat_port = fk.dport;
      fe.nat2_addr = fk.saddr;
      fe.nat2_port = fk.sport;
      fe.backend_id = id;
      fe.rev_nat_id = 1;
      fe.dir = SY_CT_FORWARD;
      fe.flags = SY_CT_F_SNAT | SY_CT_F_REDIRECT | SY_CT_F_REPLY_REDIRECT | SY_CT_F_EXTERNAL;
      re = fe;
      re.dir = SY_CT_REPLY;
      re.flags = SY_CT_F_SNAT | SY_CT_F_REDIRECT | SY_CT_F_EXTERNAL;
      if (id == 0 || bpf_map_update_elem(dp->maps().ct, &fk, &fe, BPF_ANY) != 0 ||
          bpf_map_update_elem(dp->maps().ct, &rk, &re, BPF_ANY) != 0) {
        std::fprintf(stderr, "sy_xdp_pps: could not write the fast path's flow\n");
        rc = 1;
      }
    }
    std::vector<uint8_t> fast =
        sy::bpftest::makePacket(IPPROTO_TCP, "198.18.0.100", 40002, "198.18.18.2", 8080, 0x10, "xxxxxx").bytes;
    struct Path {
      const char* name;
      std::vector<uint8_t> frame;
      uint32_t reason;
    } paths[] = {
        {"deny", frame("203.0.113.7", 40000, 0x10), SY_REASON_XDP_DENY},
        {"pass", frame("198.18.0.100", 40001, 0x10), SY_REASON_XDP_PASS_NEW},
        {"fast", fast, SY_REASON_XDP_FORWARD},
    };
    int prog = dp->programFd(sy::bpf::Datapath::Program::XdpFromNet);
    int cfd = dp->maps().counters;
    if (!json && rc == 0) {
      std::printf("XDP fast path, BPF_PROG_RUN on CPU 0, %u packets x %u rounds (median), 64-byte frames\n", packets,
                  rounds);
      std::printf("%-5s %-7s %10s %12s %14s %11s %6s\n", "PATH", "MODE", "Mpps/core", "vs Katran 5", "[min..max]",
                  "kernel Mpps", "path");
    }
    for (Path& p : paths) {
      if (rc != 0) {
        break;
      }
      for (const char* mode : {"repeat", "live"}) {
        bool live = std::string(mode) == "live";
        std::vector<double> r, kr;
        std::string why;
        uint64_t before = counter(cfd, p.reason);
        for (uint32_t i = 0; i < rounds; ++i) {
          Measure m = live ? liveRun(prog, p.frame, ifindex, packets) : repeatRun(prog, p.frame, ifindex, packets);
          if (!m.ok) {
            why = m.why;
            break;
          }
          r.push_back(m.mpps);
          kr.push_back(m.kernelMpps);
        }
        double onPath = static_cast<double>(counter(cfd, p.reason) - before) / (static_cast<double>(packets) * rounds);
        if (r.empty()) {
          if (json) {
            std::printf("{\"path\":\"%s\",\"mode\":\"%s\",\"skipped\":\"%s\"}\n", p.name, mode, why.c_str());
          } else {
            std::printf("%-5s %-7s %10s %12s %s\n", p.name, mode, "-", "-", why.c_str());
          }
          continue;
        }
        std::sort(r.begin(), r.end());
        std::sort(kr.begin(), kr.end());
        double med = r[r.size() / 2], kmed = kr[kr.size() / 2];
        if (json) {
          std::printf("{\"path\":\"%s\",\"mode\":\"%s\",\"mpps_per_core\":%.3f,\"ratio_to_katran\":%.3f,"
                      "\"min\":%.3f,\"max\":%.3f,\"kernel_mpps\":%.3f,\"share_on_path\":%.3f,\"packets\":%u,"
                      "\"rounds\":%u}\n",
                      p.name, mode, med, med / kKatranMppsPerCore, r.front(), r.back(), kmed, onPath, packets, rounds);
        } else {
          std::string k = live ? std::string("-") : std::to_string(kmed).substr(0, 5);
          std::printf("%-5s %-7s %10.2f %11.2fx [%5.2f..%5.2f] %11s %5.0f%%\n", p.name, mode, med,
                      med / kKatranMppsPerCore, r.front(), r.back(), k.c_str(), 100 * onPath);
        }
        if (onPath < 0.99) {
          std::fprintf(stderr, "sy_xdp_pps: only %.1f%% of the %s packets (%s) took the %s path; counters:", 100 * onPath,
                       p.name, mode, p.name);
          sy::metrics::DatapathCounters::Totals all;
          if (sy::metrics::DatapathCounters::read(cfd, all)) {
            for (size_t k = 0; k < all.packets.size(); ++k) {
              if (all.packets[k]) {
                std::fprintf(stderr, " %s=%llu", sy::metrics::reasonNames()[k].c_str(),
                             static_cast<unsigned long long>(all.packets[k]));
              }
            }
          }
          std::fprintf(stderr, "\n");
          rc = 1;
        }
      }
    }
    dp->detachXdpExcept({});
  }
  auto report = sy::bpf::cleanupPinPath(pin);
  for (const std::string& e : report.errors) {
    std::fprintf(stderr, "sy_xdp_pps: cleanup: %s\n", e.c_str());
  }
  return rc;
}
