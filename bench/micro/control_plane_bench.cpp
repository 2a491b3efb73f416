// Micro-benchmarks of the control plane's hot paths (Google Benchmark):
//   - decoding an EndpointSlice from API server JSON;
//   - loading kubectl-shaped YAML manifests (YAML -> JSON -> typed objects);
//   - translating a Service and its slices into frontends;
//   - the syncer's diff for one endpoint change with N services installed (in-memory writer,
//     so this is the control plane's own cost, without syscalls);
//   - real BPF map writes (needs root; skipped otherwise), one syscall per entry.
// Run: build/bench/micro/sy_micro_bench [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <span>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "bpf/datapath.h"
#include "bpf/cleanup.h"
#include "bpf/map_writer.h"
#include "k8sclient/decode.h"
#include "k8sclient/manifest_source.h"
#include "lb/syncer.h"
#include "lb/translate.h"

namespace {

using namespace switchyard;

std::string sliceJson(int service, int endpoints) {
  std::ostringstream o;
  o << R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"svc-)" << service
    << R"(-abcde","namespace":"default","uid":"6a1f6c1e-0d43-4b57-9a0e-5f1d2c3b4a01","resourceVersion":"12345",)"
    << R"("generateName":"svc-","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io",)"
    << R"("kubernetes.io/service-name":"svc-)" << service << R"("},"annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-11-23T12:00:00Z"}},)"
    << R"("addressType":"IPv4","endpoints":[)";
  for (int e = 0; e < endpoints; ++e) {
    o << (e ? "," : "") << R"({"addresses":["198.18.)" << (16 + e / 250) << "." << (2 + e % 250)
      << R"("],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-a",)"
      << R"("targetRef":{"kind":"Pod","namespace":"default","name":"pod-)" << e << R"(","uid":"0b0e9d10-1111-4c2b-8a1a-3c2b1a0f0e01"},"zone":"zone-a"})";
  }
  o << R"(],"ports":[{"name":"http","protocol":"TCP","port":8080}]})";
  return o.str();
}

void BM_DecodeEndpointSlice(benchmark::State& state) {
  std::string json = sliceJson(1, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    rapidjson::Document d;
    d.Parse(json.c_str(), json.size());
    k8s::EndpointSlice s;
    std::vector<k8s::FieldError> errors;
    benchmark::DoNotOptimize(k8s::decodeEndpointSlice(d, s, errors));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}
BENCHMARK(BM_DecodeEndpointSlice)->Arg(10)->Arg(100);

std::string manifestYaml(int services, int endpoints) {
  std::ostringstream o;
  for (int s = 0; s < services; ++s) {
    o << "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-" << s << "\n  namespace: default\n"
      << "  resourceVersion: \"1\"\n  uid: 6a1f6c1e-0d43-4b57-9a0e-5f1d2c3b4a01\nspec:\n  clusterIP: 198.19."
      << s / 250 << "." << s % 250 + 1 << "\n  clusterIPs:\n  - 198.19." << s / 250 << "." << s % 250 + 1
      << "\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n    targetPort: 8080\n  type: ClusterIP\n---\n";
    o << "apiVersion: discovery.k8s.io/v1\naddressType: IPv4\nendpoints:\n";
    for (int e = 0; e < endpoints; ++e) {
      o << "- addresses:\n  - 198.18." << 16 + e / 250 << "." << 2 + e % 250
        << "\n  conditions:\n    ready: true\n    serving: true\n    terminating: false\n  nodeName: node-a\n";
    }
    o << "kind: EndpointSlice\nmetadata:\n  labels:\n    kubernetes.io/service-name: svc-" << s
      << "\n  name: svc-" << s << "-abcde\n  namespace: default\nports:\n- name: http\n  port: 8080\n  protocol: TCP\n---\n";
  }
  return o.str();
}

void BM_LoadManifests(benchmark::State& state) {
  int services = static_cast<int>(state.range(0));
  char path[] = "/tmp/sy-bench-manifest-XXXXXX";
  int fd = mkstemp(path);
  std::string yaml = manifestYaml(services, 10);
  (void)!write(fd, yaml.data(), yaml.size());
  close(fd);
  struct Count : k8s::ManifestVisitor {
    size_t n = 0;
    void service(const k8s::Service&, size_t) override { ++n; }
    void endpointSlice(const k8s::EndpointSlice&, size_t) override { ++n; }
  };
  for (auto _ : state) {
    std::vector<k8s::ManifestProblem> problems;
    Count count;
    k8s::parseManifestFile(path, count, problems);
    benchmark::DoNotOptimize(count.n);
  }
  unlink(path);
  state.SetItemsProcessed(state.iterations() * services);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * yaml.size()));
}
BENCHMARK(BM_LoadManifests)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

k8s::Service service(int s) {
  k8s::Service svc;
  svc.metadata.namespace_ = "default";
  svc.metadata.name = "svc-" + std::to_string(s);
  svc.clusterIP = "198.19." + std::to_string(s / 250) + "." + std::to_string(s % 250 + 1);
  svc.clusterIPs = {svc.clusterIP};
  k8s::ServicePort p;
  p.name = "http";
  p.port = 80;
  svc.ports = {p};
  return svc;
}

k8s::EndpointSlice slice(int s, int endpoints, int shift = 0) {
  k8s::EndpointSlice sl;
  sl.metadata.namespace_ = "default";
  sl.metadata.name = "svc-" + std::to_string(s) + "-abcde";
  sl.metadata.labels["kubernetes.io/service-name"] = "svc-" + std::to_string(s);
  sl.addressType = "IPv4";
  for (int e = 0; e < endpoints; ++e) {
    k8s::Endpoint ep;
    int n = e + shift;
    ep.addresses = {"198.18." + std::to_string(16 + n / 250) + "." + std::to_string(2 + n % 250)};
    sl.endpoints.push_back(ep);
  }
  sl.ports = {{"http", k8s::Protocol::TCP, 8080}};
  return sl;
}

void BM_TranslateService(benchmark::State& state) {
  auto svc = service(1);
  auto sl = slice(1, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::vector<std::string> warnings;
    benchmark::DoNotOptimize(lb::translateService(svc, {&sl}, {}, warnings).frontends);
  }
}
BENCHMARK(BM_TranslateService)->Arg(10)->Arg(100)->Arg(1000);

// Counts operations; the syncer's own cost without syscalls.
struct NullWriter : lb::DataplaneWriter {
  size_t ops = 0;
  void apply(std::span<lb::MapOp> batch) override {
    for (lb::MapOp& op : batch) {
      op.result = 0;
    }
    ops += batch.size();
  }
  lb::DataplaneState read() override { return {}; }
};

// One endpoint change with N services installed: translate + diff + the writes it causes.
void BM_OneEndpointChange(benchmark::State& state) {
  int services = static_cast<int>(state.range(0));
  NullWriter w;
  lb::Syncer syncer(w);
  std::vector<std::string> warnings;
  for (int s = 0; s < services; ++s) {
    auto svc = service(s);
    auto sl = slice(s, 10);
    syncer.syncOwner(svc.metadata.key(), lb::translateService(svc, {&sl}, {}, warnings).frontends);
  }
  auto svc = service(services / 2);
  auto a = slice(services / 2, 10, 0), b = slice(services / 2, 10, 1);
  bool flip = false;
  size_t opsBefore = w.ops;
  for (auto _ : state) {
    flip = !flip;
    syncer.syncOwner(svc.metadata.key(), lb::translateService(svc, {flip ? &b : &a}, {}, warnings).frontends);
  }
  // Map operations one change costs: constant, whatever N is.
  state.counters["map_ops_per_change"] =
      static_cast<double>(w.ops - opsBefore) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_OneEndpointChange)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);

// Real map writes through the daemon's writer (root only): N services x 10 endpoints cold,
// given to the syncer in groups of 512 services as the proxier does. Arg 1: 1 = the
// writer's batch system calls, 0 = one system call per map entry (the baseline).
void BM_ColdMapWrites(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root");
    return;
  }
  int services = static_cast<int>(state.range(0));
  bool batched = state.range(1) != 0;
  std::vector<lb::OwnerFrontends> desired;
  std::vector<std::string> warnings;
  for (int s = 0; s < services; ++s) {
    auto svc = service(s);
    auto sl = slice(s, 10, s % 200);
    desired.push_back({svc.metadata.key(), lb::translateService(svc, {&sl}, {}, warnings).frontends});
  }
  std::string pin = "/sys/fs/bpf/sy-microbench-" + std::to_string(getpid());
  size_t syscalls = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string error;
    auto dp = bpf::Datapath::load({pin, {}}, error);
    if (!dp) {
      state.SkipWithError(error.c_str());
      break;
    }
    bpf::MapWriter writer(dp->maps());
    writer.setBatching(batched);
    lb::Syncer syncer(writer);
    state.ResumeTiming();
    for (size_t i = 0; i < desired.size(); i += 512) {
      size_t n = std::min<size_t>(512, desired.size() - i);
      syncer.syncOwners(std::span<const lb::OwnerFrontends>(desired.data() + i, n));
    }
    state.PauseTiming();
    syscalls = writer.syscalls();
    dp.reset();
    bpf::cleanupPinPath(pin);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * services);
  state.counters["syscalls"] = static_cast<double>(syscalls);
}
BENCHMARK(BM_ColdMapWrites)
    ->ArgsProduct({{1000, 10000}, {0, 1}})
    ->ArgNames({"services", "batched"})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
