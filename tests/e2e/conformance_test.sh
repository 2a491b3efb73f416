#!/usr/bin/env bash
# tests/e2e/conformance_test.sh ROW: one row of the Service conformance table
# (conformance_rows.sh) on a multi-node cluster in a box fed from manifest files; ctest runs
# each row as a test of its own (e2e_conformance_ROW). `all` runs every row in one cluster.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"
# shellcheck source=tests/e2e/lib_multinode.sh
source "$HERE/lib_multinode.sh"
# shellcheck source=tests/e2e/conformance_lib.sh
source "$HERE/conformance_lib.sh"
# shellcheck source=tests/e2e/conformance_rows.sh
source "$HERE/conformance_rows.sh"

row=${1:?usage: conformance_test.sh ROW|all|list}
mapfile -t rows < <(declare -F | awk '{print $3}' | grep '^row_' | sed 's/^row_//')
if [[ $row == list ]]; then
  printf '%s\n' "${rows[@]}"
  exit 0
fi
if [[ $row != all ]] && ! declare -F "row_$row" >/dev/null; then
  echo "conformance_test.sh: no row $row; rows: ${rows[*]}" >&2
  exit 2
fi

sy_e2e_init "cf-${row:0:20}"
cf_setup
if [[ $row == all ]]; then
  for r in "${rows[@]}"; do
    sy_log "=== row $r"
    "row_$r"
  done
else
  "row_$row"
fi
sy_log "PASS"
