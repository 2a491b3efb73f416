#!/usr/bin/env bash
# Installs every Debian package switchyard needs to build, test, demo and benchmark.
# Idempotent: installs only what is missing; safe to run on every invocation.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install needs it)" >&2
  exit 1
fi

# Every command and Python module a build step, test, tool, demo or benchmark runs, by package
# (docs/testing.md says how the list was checked on a fresh Debian 12 root). Beyond these, the
# scripts use only what every Debian system has (Essential: yes): bash, dash, coreutils
# (timeout, md5sum, od, mktemp, stat, realpath, ...), findutils, grep, sed, mawk, libc-bin
# (getconf).
PACKAGES=(
  # toolchain
  build-essential cmake pkg-config clang llvm
  # BPF: libbpf for loading, bpftool for skeletons and for the tests' map/link/cgroup checks,
  # libelf/zlib for libbpf
  libbpf-dev bpftool libelf-dev zlib1g-dev
  # netlink
  libnl-3-dev libnl-route-3-dev
  # control plane libraries
  libboost-dev libboost-system-dev libssl-dev rapidjson-dev libyaml-cpp-dev prometheus-cpp-dev
  # tests and micro-benchmarks; clang's sanitizer/libFuzzer runtime for the decoder fuzzer;
  # openssl (the kubectl test's second CA)
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev openssl
  # runtime tools of the demo and the tests: ip/tc/ss/nstat, sysctl, curl, mount (bpffs),
  # nsenter; python3 with yaml for the tests' JSON and YAML checks (e2e_lib_selftest) and
  # bench/*.py (standard library otherwise)
  iproute2 procps curl mount util-linux python3 python3-yaml
  # benchmarks (bench/run.sh, and so the bench_quick test): load generators, servers,
  # kube-proxy baseline rule loaders (nft, iptables-restore)
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
# The tests run whatever `python3` is first on the PATH; python3-yaml serves Debian's. A
# python3 of a version manager or a virtualenv needs its own yaml: say so here, not as a
# failed test later.
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "install-deps: $(command -v python3) cannot import yaml (python3-yaml is installed for" \
    "/usr/bin/python3); put /usr/bin first on the PATH or install PyYAML for that python3" >&2
  exit 1
fi
echo "install-deps: all ${#PACKAGES[@]} packages present, and kubectl"
