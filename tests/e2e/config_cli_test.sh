#!/usr/bin/env bash
# tests/e2e/config_cli_test.sh: the command line and configuration errors, no namespace needed.
#   - `switchyard --help` and `switchyard COMMAND --help` exit 0 with that command's usage;
#     an unknown command or option exits 2;
#   - `switchyard run --config BAD` exits 2 and prints FILE:LINE: field: reason for an unknown
#     field, a wrong type and a bad address (each alone, and all of them in one pass), without
#     touching the dataplane (no pin directory made); a duplicate field and a bpf.cgroupPath that
#     is not a cgroup v2 directory too; an unreadable file exits 2 with one such line.
#   - kube-proxy's KubeProxyConfiguration files of several releases (tests/fixtures/kube-proxy)
#     load as-is, with one warning per field that does not apply; kube-proxy's command line works
#     without a subcommand (`switchyard --config=FILE --hostname-override=NAME`, as kube-proxy's
#     DaemonSet runs it), its flags win over the file, a bad flag value or a wrong type in a
#     mapped field exits 2, and `--cleanup` is `switchyard cleanup`. --print-config shows the
#     effective configuration without starting the daemon.
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

# --- kube-proxy's configuration and command line -------------------------------------------
KP=$ROOT/tests/fixtures/kube-proxy
# json_check JSON EXPR: EXPR (Python, d = the JSON) holds.
json_check() {
  python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
for f in "$KP"/*.yaml; do
  RC=0
  JSON=$(timeout 10 "$SY_BIN" --config="$f" --kubeconfig=/dev/null --print-config 2>"$TMP/warnings") || RC=$?
  ((RC == 0)) || fail "expected kube-proxy's $(basename "$f") to load as-is, exit $RC: $(cat "$TMP/warnings")"
  json_check "$JSON" "d['source']['kind'] == 'apiserver'" || fail "expected $(basename "$f") to select the API server: $JSON"
  # One warning per field, each naming the file, the line and the field.
  dups=$(sed -n 's/^warning: [^:]*:[0-9]*: \([^:]*\): .*/\1/p' "$TMP/warnings" | sort | uniq -d)
  [[ -z $dups ]] || fail "expected each field of $(basename "$f") to be warned about once, twice: $dups"
  if grep -v '^warning: ' "$TMP/warnings" | grep -q .; then
    fail "expected only warnings from $(basename "$f"), got: $(cat "$TMP/warnings")"
  fi
done
kp_files=("$KP"/*.yaml)
log "ok: ${#kp_files[@]} KubeProxyConfiguration files load as-is"

# The DaemonSet's command line, unchanged from kube-proxy's.
f=$KP/kubeadm-1.31.yaml
RC=0
JSON=$(timeout 10 "$SY_BIN" --config="$f" --hostname-override=node-b --print-config 2>"$TMP/warnings") || RC=$?
((RC == 0)) || fail "expected 'switchyard --config=FILE --hostname-override=node-b' to work like kube-proxy's, exit $RC: $(cat "$TMP/warnings")"
json_check "$JSON" "d['hostnameOverride'] == 'node-b' and d['metricsBindAddress'] == '0.0.0.0:10249' and \
d['healthzBindAddress'] == '0.0.0.0:10256' and d['clusterCIDR'] == '10.244.0.0/16' and d['syncPeriodMs'] == 30000 and \
d['minSyncPeriodMs'] == 1000 and d['verbosity'] == 2 and \
d['clientConnection']['kubeconfig'] == '/var/lib/kube-proxy/kubeconfig.conf' and d['source']['kind'] == 'apiserver'" ||
  fail "expected kubeadm 1.31's values and the flag's hostname, got: $JSON"
for field in iptables ipvs nftables winkernel mode conntrack.tcpCloseWaitTimeout; do
  grep -qE "^warning: $f:[0-9]+: $field: " "$TMP/warnings" ||
    fail "expected a warning naming $field (FILE:LINE: field: ...), got: $(cat "$TMP/warnings")"
done
grep -qF "warning: $f:$(line_of "$f" 'mode: iptables'): mode: \"iptables\" accepted: switchyard programs its own eBPF dataplane" "$TMP/warnings" ||
  fail "expected the mode warning at its line, got: $(cat "$TMP/warnings")"
log "ok: switchyard --config=FILE --hostname-override=NAME (kube-proxy's DaemonSet args)"

# Flags over the file, with run and without it.
for prefix in "run" ""; do
  RC=0
  # shellcheck disable=SC2086 # an empty prefix is no argument
  JSON=$(timeout 10 "$SY_BIN" $prefix --config "$KP/kind-ipvs.yaml" --healthz-bind-address '[::1]:20256' \
    --metrics-bind-address=127.0.0.1:20249 --kubeconfig /etc/other.conf --v=5 --print-config 2>/dev/null) || RC=$?
  ((RC == 0)) || fail "expected '$prefix' with kube-proxy's flags to exit 0, got $RC"
  json_check "$JSON" "d['healthzBindAddress'] == '[::1]:20256' and d['metricsBindAddress'] == '127.0.0.1:20249' and \
d['clientConnection']['kubeconfig'] == '/etc/other.conf' and d['verbosity'] == 5 and d['syncPeriodMs'] == 45000" ||
    fail "expected the flags to win over kind-ipvs.yaml (and its ipvs periods), got: $JSON"
done
run_sy --config "$KP/kind-ipvs.yaml" --metrics-bind-address localhost:10249
{ ((RC == 2)) && grep -qF -- '--metrics-bind-address: must be IP:port' <<<"$OUT"; } ||
  fail "expected a bad --metrics-bind-address to exit 2 naming the flag, got $RC: $OUT"
log "ok: kube-proxy's flags win over the file"

# A wrong type in a mapped field is FILE:LINE: field: reason, as in our own format.
f=$TMP/kp-bad.yaml
sed 's/^  qps: 20$/  qps: twenty/' "$KP/kind-ipvs.yaml" >"$f"
expect_errors "$f" "$(line_of "$f" 'qps:'): clientConnection.qps: must be a number, got \"twenty\""
log "ok: a wrong type in a KubeProxyConfiguration is a FILE:LINE error"

# --cleanup is switchyard cleanup (kube-proxy --cleanup removes its rules and exits).
f=$TMP/cleanup.yaml
cat >"$f" <<EOC
apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
source: {kind: files, path: $TMP/manifests}
bpf:
  pinPath: $TMP/cleanup-pins
  cgroupPath: $TMP
EOC
run_sy --cleanup --config="$f"
{ ((RC == 0)) && grep -qxF "cleanup $TMP/cleanup-pins: removed 0 tc filters, 0 clsact qdiscs, 0 cgroup links, 0 pinned maps" <<<"$OUT"; } ||
  fail "expected 'switchyard --cleanup --config FILE' to clean up the file's pin path, got $RC: $OUT"
kp_out=$OUT
run_sy cleanup --config "$f"
[[ $OUT == "$kp_out" ]] || fail "expected --cleanup to print what 'switchyard cleanup' prints: '$kp_out' vs '$OUT'"
log "ok: --cleanup"

# A file that cannot be read is one FILE:LINE: field: reason line too, for run, status and cleanup.
for cmd in run status cleanup; do
  run_sy "$cmd" --config "$TMP/does-not-exist.yaml"
  ((RC == 2)) || fail "expected $cmd with a missing config file to exit 2, got $RC: $OUT"
  grep -qxF "$TMP/does-not-exist.yaml:1: config: cannot be read: No such file or directory" <<<"$OUT" ||
    fail "expected '$cmd' to print FILE:1: config: cannot be read: REASON for a missing file, got: $OUT"
done
log "PASS"
