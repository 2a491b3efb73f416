#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test (unit, BPF program
# tests, end-to-end tests in network namespaces). Needs root: the BPF and namespace tests
# run for real, and a skipped test fails the run.
#   bash scripts/test.sh            # everything
#   SY_CTEST_ARGS="-R unit" bash scripts/test.sh   # a subset (ctest -R regex)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SY_BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"

log=$build/ctest.log
set +e
(cd "$build" && ctest --output-on-failure --timeout 600 ${SY_CTEST_ARGS:-}) 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

if grep -q "(Skipped)" "$log"; then
  echo "test.sh: some tests were skipped (see above); every test must run here (are you root?)" >&2
  grep "(Skipped)" "$log" >&2
  exit 1
fi
exit "$rc"
