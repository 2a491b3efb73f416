#!/usr/bin/env bash
# Installs what is missing, builds everything in two trees, and runs the tests. Needs root: the
# BPF and namespace tests run for real, and a skipped test fails the run.
#   build/          RelWithDebInfo: every test (unit, BPF program tests, end-to-end tests in
#                   network namespaces, the benchmark smoke test)
#   build-release/  Release (-O3, NDEBUG: what a packager builds): the daemon and the unit, API
#                   client, netlink, BPF and policy tests (-O3 has shown undefined behaviour -O2
#                   hid); the fuzzer runs in build/ only (its corpus is the same at -O3)
# Both trees build with -DSY_WERROR=ON: here, and so in CI, a warning is an error. A plain
# `cmake` build leaves it off (docs/testing.md).
#   bash scripts/test.sh                           # everything (what CI runs)
#   SY_CTEST_ARGS="-R unit" bash scripts/test.sh   # a subset of build/'s tests (ctest -R regex)
#   SY_RELEASE=0 bash scripts/test.sh              # without the Release tree (a quicker local loop)
# shellcheck disable=SC2317 # the functions below run through `timed`
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SY_BUILD_DIR:-$root/build}
release_build=${SY_RELEASE_BUILD_DIR:-$root/build-release}
release=${SY_RELEASE:-1}

# timed NAME CMD...: runs CMD and says how long it took (docs/testing.md quotes these).
timed() {
  local name=$1 start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  echo "test.sh: $name: $((SECONDS - start)) s (exit $rc)"
  return "$rc"
}

# ctest_run BUILD_DIR CTEST_ARGS...: runs ctest there, logs to BUILD_DIR/ctest.log; fails if any
# test failed or was skipped.
ctest_run() {
  local dir=$1 rc
  shift
  set +e
  (cd "$dir" && ctest --output-on-failure --timeout 600 "$@") 2>&1 | tee "$dir/ctest.log"
  rc=${PIPESTATUS[0]}
  set -e
  if grep -q "(Skipped)" "$dir/ctest.log"; then
    echo "test.sh: some tests in $dir were skipped (see above); every test must run here (are you root?)" >&2
    grep "(Skipped)" "$dir/ctest.log" >&2
    return 1
  fi
  return "$rc"
}

timed "install-deps" bash "$root/scripts/install-deps.sh"

# configure_and_build DIR TYPE [TARGET...]: every target unless some are named.
configure_and_build() {
  local dir=$1 type=$2 targets=()
  shift 2
  (($# == 0)) || targets=(--target "$@")
  # Explicit returns: set -e does not apply inside a function called as `timed ... || ...`.
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DSY_WERROR=ON >/dev/null || return 1
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}" || return 1
}
# What the Release tree's tests run (and the daemon, what a packager ships).
release_targets=(switchyard sy_unit_tests sy_k8sclient_tests sy-fake-apiserver sy_netlink_unit_tests
  sy_netlink_tests sy_bpf_tests sy_policy_tests sy_policy_sync_tests)
timed "build RelWithDebInfo ($build)" configure_and_build "$build" RelWithDebInfo
if [[ $release == 1 ]]; then
  timed "build Release ($release_build)" configure_and_build "$release_build" Release "${release_targets[@]}"
fi

rc=0
# shellcheck disable=SC2086 # SY_CTEST_ARGS is a list of ctest arguments
timed "ctest RelWithDebInfo" ctest_run "$build" ${SY_CTEST_ARGS:-} || rc=1
if [[ $release == 1 ]]; then
  timed "ctest Release (unit, API client, netlink, BPF and policy tests)" ctest_run "$release_build" -R '^(unit|k8sclient|netlink|bpf|policy)\.' -E '^k8sclient\.fuzz_watch_event$' || rc=1
fi
exit "$rc"
