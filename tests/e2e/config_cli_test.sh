#!/usr/bin/env bash
# tests/e2e/config_cli_test.sh: the command line and configuration errors, no namespace needed.
#   - `switchyard --help` and `switchyard COMMAND --help` exit 0 with that command's usage;
#     an unknown command or option exits 2;
#   - `switchyard run --config BAD` exits 2 and prints FILE:LINE: field: reason for an unknown
#     field, a wrong type and a bad address (each alone, and all of them in one pass), without
#     touching the dataplane (no pin directory made); a duplicate field and a bpf.cgroupPath that
#     is not a cgroup v2 directory too; an unreadable file exits 2 with one such line.
# Runs as any user.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SY_BUILD_DIR=${SY_BUILD_DIR:-$ROOT/build}
SY_BIN=${SY_BIN:-$SY_BUILD_DIR/cmd/switchyard}
NAME=config_cli

fail() {
  printf 'FAIL [%s]: %s\n' "$NAME" "$*" >&2
  exit 1
}
log() {
  printf '[%s] %s\n' "$NAME" "$*" >&2
}

[[ -x $SY_BIN ]] || fail "no switchyard binary at $SY_BIN (set SY_BUILD_DIR or SY_BIN)"
TMP=$(mktemp -d -t sy-config-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# run_sy ARGS...: runs switchyard with a timeout, sets RC and OUT (stdout and stderr).
run_sy() {
  RC=0
  OUT=$(timeout 10 "$SY_BIN" "$@" 2>&1) || RC=$?
}

# --- help and usage ----------------------------------------------------------------------
run_sy --help
((RC == 0)) || fail "expected 'switchyard --help' to exit 0, got $RC: $OUT"
top_help=$OUT
for cmd in run status cleanup version; do
  grep -qE "^  $cmd " <<<"$top_help" || fail "expected 'switchyard --help' to list the $cmd command, got: $top_help"
  run_sy "$cmd" --help
  ((RC == 0)) || fail "expected 'switchyard $cmd --help' to exit 0, got $RC: $OUT"
  grep -q "^Usage: switchyard $cmd" <<<"$OUT" || fail "expected 'switchyard $cmd --help' to print its usage, got: $OUT"
done
run_sy no-such-command
((RC == 2)) || fail "expected an unknown command to exit 2, got $RC: $OUT"
run_sy run --no-such-option
((RC == 2)) || fail "expected an unknown option of run to exit 2, got $RC: $OUT"
run_sy run
((RC == 2)) || fail "expected 'switchyard run' without --config to exit 2, got $RC: $OUT"
run_sy version
{ ((RC == 0)) && grep -q '^switchyard ' <<<"$OUT"; } || fail "expected 'switchyard version' to exit 0 and print the version, got $RC: $OUT"
log "ok: --help of every command, usage errors exit 2"

# --- configuration errors ----------------------------------------------------------------
PINS=$TMP/pins
# good_config > FILE: a valid configuration; the cases below change one line of it.
good_config() {
  cat <<EOC
apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
hostnameOverride: node-a
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: 198.18.0.0/16
source:
  kind: files
  path: $TMP/manifests
bpf:
  pinPath: $PINS
  socketLB: true
  devices: [veth-c]
EOC
}

# expect_errors FILE EXPECTED_LINE...: run --config FILE exits 2 and prints exactly these lines
# (FILE: is prefixed here), in any order, and makes no pin directory.
expect_errors() {
  local file=$1 line
  shift
  run_sy run --config "$file"
  ((RC == 2)) || fail "expected 'switchyard run --config $file' to exit 2, got $RC: $OUT"
  for line in "$@"; do
    grep -qxF "$file:$line" <<<"$OUT" || fail "expected the output to contain the line '$file:$line', got: $OUT"
  done
  local count
  count=$(grep -c "^$file:" <<<"$OUT" || true)
  ((count == $#)) || fail "expected exactly $# FILE:LINE problems for $file, got $count: $OUT"
  [[ ! -e $PINS ]] || fail "expected a rejected configuration to leave the dataplane alone, but $PINS was created"
}

# mutate FILE SED_SCRIPT: the good config, edited by SED_SCRIPT, into FILE.
mutate() {
  good_config | sed "$2" >"$1"
}
line_of() { # FILE TEXT
  grep -nF "$2" "$1" | head -1 | cut -d: -f1
}

good_config >"$TMP/good.yaml"
[[ $(wc -l <"$TMP/good.yaml") -eq 13 ]] || fail "test bug: the good config changed shape"

f=$TMP/unknown-field.yaml
mutate "$f" 's/^  path: .*/&\n  colour: blue/'
expect_errors "$f" "$(line_of "$f" 'colour: blue'): source.colour: unknown field"
f=$TMP/unknown-top.yaml
mutate "$f" 's/^clusterCIDR: .*/&\nproxyMode: iptables/'
expect_errors "$f" "$(line_of "$f" 'proxyMode:'): proxyMode: unknown field"
log "ok: unknown fields"

f=$TMP/wrong-type-bool.yaml
mutate "$f" 's/socketLB: true/socketLB: maybe/'
expect_errors "$f" "$(line_of "$f" 'socketLB: maybe'): bpf.socketLB: must be true or false"
f=$TMP/wrong-type-list.yaml
mutate "$f" 's/devices: \[veth-c\]/devices: veth-c/'
expect_errors "$f" "$(line_of "$f" 'devices: veth-c'): bpf.devices: must be a list of strings"
f=$TMP/wrong-type-duration.yaml
mutate "$f" 's/^clusterCIDR: .*/&\nsyncPeriod: fast/'
expect_errors "$f" "$(line_of "$f" 'syncPeriod: fast'): syncPeriod: must be a duration like 30s, 500ms or 1m, got \"fast\""
log "ok: wrong types"

f=$TMP/bad-port.yaml
mutate "$f" 's/^metricsBindAddress: .*/metricsBindAddress: 127.0.0.1:99999/'
expect_errors "$f" "$(line_of "$f" '127.0.0.1:99999'): metricsBindAddress: must be IP:port (e.g. 127.0.0.1:10249 or [::1]:10249), got \"127.0.0.1:99999\""
f=$TMP/bad-host.yaml
mutate "$f" 's/^healthzBindAddress: .*/healthzBindAddress: localhost:10256/'
expect_errors "$f" "$(line_of "$f" 'localhost:10256'): healthzBindAddress: must be IP:port (e.g. 127.0.0.1:10249 or [::1]:10249), got \"localhost:10256\""
f=$TMP/bad-cidr.yaml
mutate "$f" 's|^clusterCIDR: .*|clusterCIDR: 198.18.0.0/33|'
expect_errors "$f" "$(line_of "$f" '198.18.0.0/33'): clusterCIDR: \"198.18.0.0/33\": an IPv4 prefix length must be 0-32"
log "ok: bad addresses"

# All three kinds in one file: every problem, each with its own line, in one pass.
f=$TMP/all.yaml
mutate "$f" 's/^metricsBindAddress: .*/metricsBindAddress: 127.0.0.1:99999/; s/^  path: .*/&\n  colour: blue/; s/socketLB: true/socketLB: maybe/'
expect_errors "$f" \
  "$(line_of "$f" '127.0.0.1:99999'): metricsBindAddress: must be IP:port (e.g. 127.0.0.1:10249 or [::1]:10249), got \"127.0.0.1:99999\"" \
  "$(line_of "$f" 'colour: blue'): source.colour: unknown field" \
  "$(line_of "$f" 'socketLB: maybe'): bpf.socketLB: must be true or false"
log "ok: three problems reported in one pass"

# status and cleanup read the same file and reject it the same way.
for cmd in status cleanup; do
  run_sy "$cmd" --config "$f"
  ((RC == 2)) || fail "expected 'switchyard $cmd --config BAD' to exit 2, got $RC: $OUT"
  grep -qF "$f:$(line_of "$f" 'colour: blue'): source.colour: unknown field" <<<"$OUT" ||
    fail "expected 'switchyard $cmd --config BAD' to print FILE:LINE: field: reason, got: $OUT"
done

# A field given twice: reported at its second occurrence, not merged.
f=$TMP/duplicate.yaml
mutate "$f" 's/^bpf:$/bpf:\n  socketLB: false/'
expect_errors "$f" "$(grep -n 'socketLB: true' "$f" | cut -d: -f1): bpf.socketLB: duplicate field"
f=$TMP/duplicate-block.yaml
good_config >"$f"
printf 'source:\n  kind: apiserver\n' >>"$f"
expect_errors "$f" "14: source: duplicate field"
log "ok: duplicate fields"

# bpf.cgroupPath must be a cgroup v2 directory (checked by run only: cleanup must work when
# the cgroup is gone).
f=$TMP/cgroup-not-v2.yaml
mutate "$f" "s|^  socketLB: true|  cgroupPath: $TMP\n&|"
expect_errors "$f" "$(line_of "$f" 'cgroupPath:'): bpf.cgroupPath: \"$TMP\" is not on a cgroup v2 filesystem (socket LB hooks attach to cgroup v2 only; use the directory where cgroup2 is mounted, e.g. /sys/fs/cgroup/unified)"
f=$TMP/cgroup-missing.yaml
mutate "$f" "s|^  socketLB: true|  cgroupPath: $TMP/no-such-cgroup\n&|"
expect_errors "$f" "$(line_of "$f" 'cgroupPath:'): bpf.cgroupPath: \"$TMP/no-such-cgroup\": No such file or directory (must be a directory of the cgroup v2 hierarchy)"
log "ok: bpf.cgroupPath checked"

# A file that cannot be read is one FILE:LINE: field: reason line too, for run, status and cleanup.
for cmd in run status cleanup; do
  run_sy "$cmd" --config "$TMP/does-not-exist.yaml"
  ((RC == 2)) || fail "expected $cmd with a missing config file to exit 2, got $RC: $OUT"
  grep -qxF "$TMP/does-not-exist.yaml:1: config: cannot be read: No such file or directory" <<<"$OUT" ||
    fail "expected '$cmd' to print FILE:1: config: cannot be read: REASON for a missing file, got: $OUT"
done
log "PASS"
