#!/usr/bin/env bash
# tests/e2e/two_daemons_test.sh: two daemons on one machine, each with its own topology (node,
# client and pod namespaces), pinPath and cgroupPath, and different ClusterIPs, must not disturb
# each other: each client reaches only its own Service's backends, each status shows only its
# own Services, and `switchyard cleanup` of one leaves the other attached, pinned and working.
#
# Topology A is this script's; topology B is a child process (this script with `inner-b`), with
# its own lib.sh state and cleanup trap, that reports its names in a state file and then waits
# until it is told to stop (SIGTERM).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT=$HERE/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

A_WEB=198.19.0.10
A_DNS=198.19.0.11
B_WEB=198.19.0.20
B_DNS=198.19.0.21

inner_b() {
  local state=$1
  sy_e2e_init two-daemons-b
  WEB_VIP=$B_WEB DNS_VIP=$B_DNS
  sy_topology_up 3
  POD_NAMES=(bpod1 bpod2 bpod3) # B's servers answer with other names than A's
  sy_cluster_start socklb
  {
    echo "B_PREFIX=$PREFIX"
    echo "B_NODE_NS=$NODE_NS"
    echo "B_CLIENT_NS=$CLIENT_NS"
    echo "B_CG=$CG"
    echo "B_PIN=$PIN"
    echo "B_WORK=$WORK"
    echo "B_MANIFEST_DIR=$MANIFEST_DIR"
    echo "B_DAEMON_PID=$DAEMON_PID"
    echo "B_DAEMON_LOG=$DAEMON_LOG"
  } >"$state.tmp"
  mv "$state.tmp" "$state"
  sleep 300 &
  sy_track_pid $!
  wait $! # returns when the parent sends SIGTERM; the trap cleans B up
}

if [[ ${1:-} == inner-b ]]; then
  inner_b "$2"
  exit 0
fi

# --- the parent: topology A ----------------------------------------------------------------
sy_e2e_init two-daemons
B_STATE=$WORK/b.state
bash "$SCRIPT" inner-b "$B_STATE" 2>"$WORK/b.err" &
B_CHILD=$!

stop_b() {
  [[ -n ${B_CHILD:-} ]] || return 0
  kill -TERM "$B_CHILD" 2>/dev/null
  # B's own trap removes its namespaces, cgroup and pins; give it the time for that.
  sy_wait_for "topology B to clean up and exit" 40 sy__gone "$B_CHILD" 2>/dev/null ||
    { echo "WARNING [two-daemons]: topology B did not exit in 40 s" >&2; kill -KILL "$B_CHILD" 2>/dev/null; }
  wait "$B_CHILD" 2>/dev/null
  B_CHILD=
  return 0
}
sy_on_exit stop_b
b_ready() {
  [[ -s $B_STATE ]] || { sy__gone "$B_CHILD" && sy_fail "topology B failed to start: $(tail -20 "$WORK/b.err")"; return 1; }
}

WEB_VIP=$A_WEB DNS_VIP=$A_DNS
sy_cluster_up socklb
sy_wait_for "topology B to be up" 60 b_ready || sy_fail "expected topology B within 60 s: $(tail -20 "$WORK/b.err")"
# shellcheck disable=SC1090
source "$B_STATE"
sy_log "topology B: node $B_NODE_NS, client $B_CLIENT_NS, cgroup $B_CG, pins $B_PIN"
[[ $B_PIN != "$PIN" && $B_CG != "$CG" && $B_NODE_NS != "$NODE_NS" ]] || sy_fail "test bug: A and B share names"

# Run a lib.sh function against topology B.
in_b() {
  NODE_NS=$B_NODE_NS CLIENT_NS=$B_CLIENT_NS CG=$B_CG PIN=$B_PIN WORK=$B_WORK "$@"
}
expect_b_probe() {
  in_b sy_expect_probe "$@"
}
b_status_check() {
  in_b sy_status_check "$1"
}
a_status_check() {
  sy_status_check "$1"
}

check_isolation() { # WHEN
  local when=$1
  sy_expect_probe "client A ($when) to reach A's pods pod1..pod3 through $A_WEB" \
    "$(sy_all_pods_expr 30)" --proto tcp --target "$A_WEB:80" --count 30
  expect_b_probe "client B ($when) to reach B's pods bpod1..bpod3 through $B_WEB" \
    "d['ok'] == 30 and d['peer_mismatch'] == 0 and sorted(d['backends']) == ['bpod1', 'bpod2', 'bpod3']" \
    --proto tcp --target "$B_WEB:80" --count 30
  expect_b_probe "client B ($when) to reach B's pods over UDP through $B_DNS" \
    "d['ok'] == 30 and d['peer_mismatch'] == 0 and sorted(d['backends']) == ['bpod1', 'bpod2', 'bpod3']" \
    --proto udp --target "$B_DNS:53" --count 30
  expect_b_probe "client B ($when) not to be translated by daemon A: $A_WEB is not B's Service" \
    "d['ok'] == 0 and d['backends'] == {}" --proto tcp --target "$A_WEB:80" --count 2 --timeout-ms 300
}

check_isolation "both daemons running"
sy_expect_probe "client A not to be translated by daemon B: $B_WEB is not A's Service" \
  "d['ok'] == 0 and d['backends'] == {}" --proto tcp --target "$B_WEB:80" --count 2 --timeout-ms 300
a_status_check "$(sy_svc_has "$A_WEB" 80 TCP 3) and {s['address'] for s in d['services']} == {'$A_WEB', '$A_DNS'}" ||
  sy_fail "expected status A to list only A's Services ($A_WEB, $A_DNS), got $(sy_status_json)"
b_status_check "$(sy_svc_has "$B_WEB" 80 TCP 3) and {s['address'] for s in d['services']} == {'$B_WEB', '$B_DNS'}" ||
  sy_fail "expected status B to list only B's Services ($B_WEB, $B_DNS), got $(in_b sy_status_json)"
b_cg_before=$(bpftool cgroup show "$B_CG")
b_tc_before=$(sy_in_ns "$B_NODE_NS" tc filter show dev veth-c ingress)

# --- cleanup of A ------------------------------------------------------------------------
rc=0
sy_daemon_stop || rc=$?
((rc == 0)) || sy_fail "expected daemon A to exit 0 on SIGTERM, got $rc"

# A's cleanup run by mistake in B's node namespace. veth-c exists there too, most likely with
# the ifindex A recorded, and carries B's filter at the handle and priority every daemon uses:
# cleanup must see that the filter is not A's, change nothing, and say where to run it.
b_tc_both=$(sy_in_ns "$B_NODE_NS" tc filter show dev veth-c ingress; sy_in_ns "$B_NODE_NS" tc filter show dev veth-c egress)
sy_log "veth-c ifindex: A $(ip -n "$NODE_NS" -o link show veth-c | cut -d: -f1), B $(ip -n "$B_NODE_NS" -o link show veth-c | cut -d: -f1)"
rc=0
out=$(sy_in_ns "$B_NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" 2>&1) || rc=$?
sy_log "cleanup of A in B's namespace (exit $rc): $out"
((rc == 1)) || sy_fail "expected cleanup of A in B's network namespace to exit 1, got $rc: $out"
grep -q "run \`switchyard cleanup\` in the network namespace the daemon ran in" <<<"$out" ||
  sy_fail "expected cleanup in the wrong namespace to say where to run it, got: $out"
grep -q "^cleanup $PIN: removed 0 tc filters, 0 clsact qdiscs, 0 cgroup links, 0 pinned maps" <<<"$out" ||
  sy_fail "expected cleanup in the wrong namespace to remove nothing, got: $out"
[[ $(sy_in_ns "$B_NODE_NS" tc filter show dev veth-c ingress; sy_in_ns "$B_NODE_NS" tc filter show dev veth-c egress) == "$b_tc_both" ]] ||
  sy_fail "expected B's tc filters untouched by A's cleanup in B's namespace"
[[ -e $PIN/services_v2 && -e $PIN/tc_attach_v1 && -e $PIN/links/connect4 ]] ||
  sy_fail "expected A's pins and links kept for a cleanup in the right namespace, $PIN holds: $(ls -R "$PIN" 2>&1)"
expect_b_probe "client B to keep reaching bpod1..bpod3 after A's cleanup ran in B's namespace" \
  "d['ok'] == 30 and d['peer_mismatch'] == 0 and sorted(d['backends']) == ['bpod1', 'bpod2', 'bpod3']" \
  --proto tcp --target "$B_WEB:80" --count 30
out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" 2>&1) || sy_fail "expected cleanup of A to succeed: $out"
sy_log "cleanup A: $out"
[[ ! -e $PIN ]] || sy_fail "expected A's pins $PIN gone after its cleanup"
[[ -z $(bpftool cgroup show "$CG") ]] || sy_fail "expected no program left on A's cgroup $CG: $(bpftool cgroup show "$CG")"

# B is untouched: its pins, its cgroup hooks, its tc filters, its daemon, its traffic.
[[ -e $B_PIN/services_v2 ]] || sy_fail "expected B's pins to survive A's cleanup, $B_PIN holds: $(ls "$B_PIN" 2>&1)"
[[ $(bpftool cgroup show "$B_CG") == "$b_cg_before" ]] ||
  sy_fail "expected B's cgroup hooks unchanged by A's cleanup; before: $b_cg_before; after: $(bpftool cgroup show "$B_CG")"
[[ $(sy_in_ns "$B_NODE_NS" tc filter show dev veth-c ingress) == "$b_tc_before" ]] ||
  sy_fail "expected B's tc filter unchanged by A's cleanup"
sy__gone "$B_DAEMON_PID" && sy_fail "expected daemon B to keep running after A's cleanup, log: $(tail "$B_DAEMON_LOG")"
expect_b_probe "client B to keep reaching bpod1..bpod3 through $B_WEB after A's cleanup" \
  "d['ok'] == 30 and d['peer_mismatch'] == 0 and sorted(d['backends']) == ['bpod1', 'bpod2', 'bpod3']" \
  --proto tcp --target "$B_WEB:80" --count 30
sy_expect_probe "client A's traffic to $A_WEB not to be translated any more after A's cleanup" \
  "d['ok'] == 0 and d['backends'] == {}" --proto tcp --target "$A_WEB:80" --count 2 --timeout-ms 300

# Daemon B still programs changes: bpod3 leaves B's web slice.
in_b sy_write_slice "$B_MANIFEST_DIR" web-abc12 web 8080 TCP 198.18.16.2 198.18.16.3
sy_wait_for "daemon B to drop bpod3 after A's cleanup" 10 b_status_check "$(sy_svc_has "$B_WEB" 80 TCP 2)" ||
  sy_fail "expected daemon B to keep programming changes after A's cleanup, status B: $(in_b sy_status_json)"
expect_b_probe "client B to reach only bpod1 and bpod2 after the change" \
  "d['ok'] == 30 and sorted(d['backends']) == ['bpod1', 'bpod2']" --proto tcp --target "$B_WEB:80" --count 30
sy_log "PASS"
