#!/usr/bin/env bash
# Installs every Debian package switchyard needs to build, test, demo and benchmark.
# Idempotent: installs only what is missing; safe to run on every invocation.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install needs it)" >&2
  exit 1
fi

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config clang llvm
  # BPF: libbpf for loading, bpftool for skeletons, libelf/zlib for libbpf
  libbpf-dev bpftool libelf-dev zlib1g-dev
  # netlink
  libnl-3-dev libnl-route-3-dev
  # control plane libraries
  libboost-dev libboost-system-dev libssl-dev rapidjson-dev libyaml-cpp-dev prometheus-cpp-dev
  # tests and micro-benchmarks; clang's sanitizer/libFuzzer runtime for the decoder fuzzer
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev openssl
  # runtime tools used by the demo and the tests
  iproute2 procps curl util-linux python3
  # benchmarks (bench/run.sh): load generators, servers, kube-proxy baseline rule loaders
  wrk nginx-light sockperf iperf3 nftables iptables
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# kubectl, for the test that drives the fake API server with the real client: the machine's
# own kubectl when it has one, else Debian's kubernetes-client.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "install-deps: installing kubernetes-client (kubectl)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi
echo "install-deps: all ${#PACKAGES[@]} packages present, and kubectl"
