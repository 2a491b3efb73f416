#!/usr/bin/env bash
# tests/e2e/same_node_test.sh: what switchyard owns on one node, against others on the same
# node (one network namespace):
#   - one daemon per pin path: a second daemon on the same pinPath exits 1 naming the pin path
#     and the first daemon's PID, and the first keeps working;
#   - two daemons (two pin paths) naming the same device: the second refuses to replace the
#     first one's tc filter, says so naming the device, counts it, and its cleanup leaves the
#     first one's filter alone;
#   - a tc filter another tool added to a device switchyard uses: cleanup removes switchyard's
#     filters and leaves that filter and the clsact qdisc it lives on.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

# "ingress-ID egress-ID": the program IDs of the filters at switchyard's handle on veth-c.
filter_progs() {
  local dir ids=()
  for dir in ingress egress; do
    ids+=("$(sy_in_ns "$NODE_NS" tc filter show dev veth-c "$dir" | grep 'handle 0x5359' | grep -o ' id [0-9]*' | awk '{print $2}')")
  done
  echo "${ids[*]}"
}
metric_of() { # ADDR NAME{LABELS}
  sy_in_ns "$NODE_NS" curl -s --max-time 3 "http://$1/metrics" | awk -v n="$2" 'index($0, n) == 1 { print $NF }'
}

sy_e2e_init same-node
sy_cluster_up tc # socket LB off: the ClusterIP works only through the tc filter on veth-c
A_PID=$DAEMON_PID
progs=$(filter_progs)
[[ $progs =~ ^[0-9]+\ [0-9]+$ ]] || sy_fail "expected switchyard's ingress and egress filters on veth-c, got program IDs '$progs'"

# --- one daemon per pin path ---------------------------------------------------------------
rc=0
out=$(timeout 20 nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" run --config "$CONFIG" 2>&1) || rc=$?
((rc == 1)) || sy_fail "expected a second daemon on pin path $PIN to exit 1, got $rc: $out"
grep -q "pin path $PIN is in use by another switchyard daemon (pid $A_PID)" <<<"$out" ||
  sy_fail "expected the second daemon to name the pin path and the first daemon's pid $A_PID, got: $out"
sy_log "second daemon on the same pin path: $(grep 'is in use' <<<"$out")"
sy__gone "$A_PID" && sy_fail "expected the first daemon to keep running"
[[ $(filter_progs) == "$progs" ]] || sy_fail "expected the first daemon's filters untouched ($progs), got $(filter_progs)"
sy_expect_probe "the ClusterIP to keep working after a second daemon was turned away" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

# --- a second daemon (its own pin path) naming the same device ------------------------------
PIN_B=/sys/fs/bpf/$PREFIX-b
CONFIG_B=$WORK/config-b.yaml
METRICS_B=127.0.0.1:10259
mkdir -p "$WORK/manifests-b"
cat >"$CONFIG_B" <<EOC
apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
healthzBindAddress: 127.0.0.1:10258
metricsBindAddress: $METRICS_B
source:
  kind: files
  path: $WORK/manifests-b
bpf:
  pinPath: $PIN_B
  socketLB: false
  devices: [veth-c]
EOC
cleanup_b() {
  if [[ -d $PIN_B ]]; then
    timeout 20 nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN_B" >/dev/null 2>&1
    rm -rf "$PIN_B"
  fi
}
sy_on_exit cleanup_b
nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" run --config "$CONFIG_B" >"$WORK/daemon-b.log" 2>&1 &
B_PID=$!
sy_track_pid "$B_PID"
sy_wait_for "daemon B to refuse veth-c" 10 grep -q "device veth-c ingress: a filter at switchyard's tc handle and priority is program sy_tc_from_pod" "$WORK/daemon-b.log" ||
  sy_fail "expected daemon B to log that veth-c holds another daemon's filter; log: $(cat "$WORK/daemon-b.log")"
grep -qF "not this daemon's; not replacing it (does another switchyard daemon name veth-c in bpf.devices? if none does, e.g. after pins were removed by hand, remove it with \`tc filter del dev veth-c ingress pref 1 handle 0x5359 bpf\`)" "$WORK/daemon-b.log" ||
  sy_fail "expected daemon B's message to say why; log: $(cat "$WORK/daemon-b.log")"
refused() { (($(metric_of "$METRICS_B" 'switchyard_tc_attach_refused_total{device="veth-c"}' || echo 0) >= 1)); }
sy_wait_for "daemon B to count the refusal" 10 refused ||
  sy_fail "expected switchyard_tc_attach_refused_total{device=\"veth-c\"} >= 1 on daemon B"
sy__gone "$B_PID" && sy_fail "expected daemon B to keep running (other devices could work): $(cat "$WORK/daemon-b.log")"
[[ $(filter_progs) == "$progs" ]] ||
  sy_fail "expected daemon A's filters on veth-c untouched by daemon B (program IDs $progs), got $(filter_progs)"
sy_expect_probe "the ClusterIP to keep working through daemon A's filter while daemon B runs" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30
kill -TERM "$B_PID"
sy_wait_for "daemon B to exit" 10 sy__gone "$B_PID" || sy_fail "daemon B did not exit on SIGTERM"
out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN_B" 2>&1) || sy_fail "expected cleanup of B to succeed: $out"
grep -q "removed 0 tc filters, 0 clsact qdiscs" <<<"$out" || sy_fail "expected cleanup of B to remove no tc filter, got: $out"
[[ $(filter_progs) == "$progs" ]] || sy_fail "expected daemon A's filters to survive B's cleanup, got $(filter_progs)"

# --- a filter of another tool on veth-c ------------------------------------------------------
# u32, since this kernel has no matchall or gact; it matches an address nobody uses.
sy_in_ns "$NODE_NS" tc filter add dev veth-c ingress prio 10 protocol ip u32 match ip dst 198.18.255.254/32 ||
  sy_fail "could not add a u32 filter to veth-c"
sy_daemon_stop
out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" 2>&1) || sy_fail "expected cleanup of A to succeed: $out"
sy_log "cleanup A: $out"
grep -q "removed 2 tc filters, 0 clsact qdiscs" <<<"$out" ||
  sy_fail "expected cleanup to remove switchyard's 2 filters and keep the clsact qdisc, got: $out"
grep -q "kept the clsact qdisc switchyard created on veth-c: other tc filters are attached to it" <<<"$out" ||
  sy_fail "expected cleanup to say why it kept the qdisc, got: $out"
ingress=$(sy_in_ns "$NODE_NS" tc filter show dev veth-c ingress)
grep -q 'pref 10 u32' <<<"$ingress" || sy_fail "expected the u32 filter to survive cleanup, veth-c ingress: $ingress"
if grep -q 'handle 0x5359' <<<"$ingress$(sy_in_ns "$NODE_NS" tc filter show dev veth-c egress)"; then
  sy_fail "expected switchyard's filters gone from veth-c"
fi
sy_in_ns "$NODE_NS" tc qdisc show dev veth-c | grep -q clsact || sy_fail "expected the clsact qdisc to stay under the u32 filter"
sy_log "PASS"
