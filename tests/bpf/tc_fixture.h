// The fixture of the tc program tests: the real programs and maps (a pin path of the test's
// own), seeded through the daemon's syncer and map writer, run on crafted packets with
// BPF_PROG_TEST_RUN. Nothing of the programs or their maps is replaced.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpf/abi.h"
#include "bpf/cleanup.h"
#include "bpf/datapath.h"
#include "bpf/map_writer.h"
#include "lb/syncer.h"
#include "metrics/datapath_counters.h"
#include "packets.h"

namespace switchyard::bpftest {

inline lb::Frontend frontend(const char* vip, uint16_t port, uint8_t proto,
                             const std::vector<std::string>& backends, uint16_t backendPort) {
  lb::Frontend f;
  f.key = {*lb::IpAddr::parse(vip), port, proto};
  for (const auto& b : backends) {
    f.backends.push_back({{*lb::IpAddr::parse(b), backendPort, proto}, false});
  }
  std::sort(f.backends.begin(), f.backends.end());
  return f;
}

// "198.18.16.2:8080" or "[2001:db8::2]:80" -> address and port.
inline std::pair<std::string, uint16_t> splitHostPort(const std::string& s) {
  auto colon = s.rfind(':');
  std::string host = s.substr(0, colon);
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, static_cast<uint16_t>(std::stoi(s.substr(colon + 1)))};
}

inline uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

class TcProgramTest : public ::testing::Test {
 protected:
  using Program = bpf::Datapath::Program;

  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (BPF)";
    }
    static std::atomic<int> seq{0};
    pinPath_ = "/sys/fs/bpf/sy-bpftest-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    std::string error;
    options_.pinPath = pinPath_;
    dp_ = bpf::Datapath::load(options_, error);
    ASSERT_TRUE(dp_) << error;
    writer_ = std::make_unique<bpf::MapWriter>(dp_->maps());
    syncer_ = std::make_unique<lb::Syncer>(*writer_);
    sync("default/web", {frontend("198.19.0.10", 80, lb::kProtoTCP, {"198.18.16.2"}, 8080)});
    sync("default/multi", {frontend("198.19.0.11", 80, lb::kProtoTCP,
                                    {"198.18.16.2", "198.18.16.3", "198.18.16.4"}, 8080)});
    sync("default/dns", {frontend("198.19.0.53", 53, lb::kProtoUDP, {"198.18.16.3"}, 5353)});
    sync("default/empty", {frontend("198.19.0.12", 80, lb::kProtoTCP, {}, 8080),
                           frontend("198.19.0.12", 53, lb::kProtoUDP, {}, 5353),
                           frontend("2001:db8:1::12", 80, lb::kProtoTCP, {}, 8080),
                           frontend("2001:db8:1::12", 53, lb::kProtoUDP, {}, 5353)});
    sync("default/web6", {frontend("2001:db8:1::10", 80, lb::kProtoTCP, {"2001:db8:16::2"}, 8080)});
    sync("default/dns6", {frontend("2001:db8:1::53", 53, lb::kProtoUDP, {"2001:db8:16::3"}, 5353)});
  }

  void TearDown() override {
    syncer_.reset();
    writer_.reset();
    dp_.reset();
    if (!pinPath_.empty()) {
      auto report = bpf::cleanupPinPath(pinPath_);
      EXPECT_TRUE(report.errors.empty()) << report.errors.front();
      EXPECT_FALSE(std::filesystem::exists(pinPath_)) << "test pins left behind";
    }
  }

  void sync(const std::string& owner, const std::vector<lb::Frontend>& fes) {
    auto r = syncer_->syncOwner(owner, fes);
    ASSERT_EQ(r.errors, 0u) << owner;
  }

  struct Result {
    int verdict = -1;
    Packet out;
  };

  Result runFd(int progFd, const Packet& in) {
    Result r;
    r.out.l3off = in.l3off;
    r.out.bytes.assign(in.bytes.size() + 256, 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.bytes.data(), .data_out = r.out.bytes.data(),
                .data_size_in = static_cast<uint32_t>(in.bytes.size()),
                .data_size_out = static_cast<uint32_t>(r.out.bytes.size()), .repeat = 1);
    int err = bpf_prog_test_run_opts(progFd, &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN failed: " << strerror(-err);
    r.out.bytes.resize(opts.data_size_out);
    r.verdict = static_cast<int>(opts.retval);
    return r;
  }
  Result run(Program prog, const Packet& in) { return runFd(dp_->programFd(prog), in); }

  uint64_t counter(enum sy_reason reason) {
    metrics::DatapathCounters::Totals t;
    EXPECT_TRUE(metrics::DatapathCounters::read(dp_->maps().counters, t));
    return t.packets.at(reason);
  }

  // Every conntrack entry, with its key.
  std::vector<std::pair<sy_ct_key, sy_ct_entry>> ctEntries() {
    std::vector<std::pair<sy_ct_key, sy_ct_entry>> out;
    int ct = dp_->maps().ct;
    sy_ct_key key{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(ct, prev, &next) == 0) {
      sy_ct_entry e{};
      if (bpf_map_lookup_elem(ct, &next, &e) == 0) {
        out.emplace_back(next, e);
      }
      key = next;
      prev = &key;
    }
    return out;
  }

  // Moves every conntrack stamp by delta ns (negative: into the past, as if time passed).
  void ageConntrack(int64_t deltaNs) {
    for (auto& [k, e] : ctEntries()) {
      e.last_seen_ns = static_cast<uint64_t>(static_cast<int64_t>(e.last_seen_ns) + deltaNs);
      ASSERT_EQ(bpf_map_update_elem(dp_->maps().ct, &k, &e, BPF_EXIST), 0);
    }
  }

  static sy_ct_key ctKey(const Packet& p) {
    sy_ct_key k{};
    k.saddr = bpf::toSyAddr(*lb::IpAddr::parse(splitHostPort(p.src()).first));
    k.daddr = bpf::toSyAddr(*lb::IpAddr::parse(splitHostPort(p.dst()).first));
    k.sport = htons(p.sport());
    k.dport = htons(p.dport());
    k.proto = p.proto();
    return k;
  }

  // A backend ID from the maps, by address and port.
  uint32_t backendId(const std::string& addr, uint16_t port) {
    for (const auto& [id, b] : writer_->read().backends) {
      if (b.key.addr == *lb::IpAddr::parse(addr) && b.key.port == port) {
        return id;
      }
    }
    return 0;
  }

  bpf::DatapathOptions options_{};  // a test's constructor may change sizes and lifetimes
  std::string pinPath_;
  std::unique_ptr<bpf::Datapath> dp_;
  std::unique_ptr<bpf::MapWriter> writer_;
  std::unique_ptr<lb::Syncer> syncer_;
};

}  // namespace switchyard::bpftest
