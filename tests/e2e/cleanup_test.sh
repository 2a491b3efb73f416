#!/usr/bin/env bash
# tests/e2e/cleanup_test.sh: after a daemon ran with socket LB and a tc device, and exited
# (programs stay attached and maps pinned when it exits), `switchyard cleanup --pin-path` in the
# node namespace removes every pin, cgroup link, tc filter and the clsact qdisc it created; the
# programs are freed and the ClusterIP is no longer translated. A second cleanup is a no-op.
# While a process holds the pin path's lock (the daemon, then a stand-in flock(1)), cleanup
# refuses, names its pid and changes nothing; --force cleans up anyway.
# Before it, `status -o json` shows a backend missing from the backends map in the issue's
# shape (address and port null).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

sy_e2e_init cleanup
sy_topology_up 3
qdisc_before=$(sy_in_ns "$NODE_NS" tc qdisc show dev veth-c)
if grep -q clsact <<<"$qdisc_before"; then
  sy_fail "expected no clsact qdisc on veth-c before the daemon ran, got: $qdisc_before"
fi
sy_cluster_start socklb

tc_filters() { # DIRECTION
  sy_in_ns "$NODE_NS" tc filter show dev veth-c "$1"
}
# Program IDs of what switchyard attached: cgroup hooks on $CG and tc filters on veth-c.
attached_prog_ids() {
  {
    bpftool -j cgroup show "$CG" | python3 -c 'import json,sys; [print(p["id"]) for p in json.load(sys.stdin)]'
    tc_filters ingress | grep -o ' id [0-9]*' | awk '{print $2}'
    tc_filters egress | grep -o ' id [0-9]*' | awk '{print $2}'
  } | sort -un
}
progs_gone() {
  local id
  for id in "$@"; do
    bpftool prog show id "$id" >/dev/null 2>&1 && return 1
  done
  return 0
}

sy_expect_probe "TCP through the ClusterIP to work before the cleanup" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

pin_list() { find "$PIN" | sort; }
pins_before=$(pin_list)
rc=0
out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" 2>&1) || rc=$?
sy_log "cleanup with the daemon running said: $out"
((rc == 1)) || sy_fail "expected cleanup to refuse (exit 1) while daemon $DAEMON_PID runs, got $rc: $out"
grep -qF "pin path $PIN is held by a switchyard daemon (pid $DAEMON_PID)" <<<"$out" ||
  sy_fail "expected cleanup's refusal to name the pin path and daemon pid $DAEMON_PID, got: $out"
grep -q -- "--force" <<<"$out" || sy_fail "expected the refusal to mention --force, got: $out"
[[ $(pin_list) == "$pins_before" ]] || sy_fail "expected a refused cleanup to leave every pin, got: $(pin_list)"
sy_expect_probe "TCP through the ClusterIP to keep working after a refused cleanup" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

rc=0
sy_daemon_stop || rc=$?
((rc == 0)) || sy_fail "expected the daemon to exit 0 on SIGTERM, got $rc"

# Exiting leaves everything in place (a restart must not interrupt traffic).
[[ -d $PIN ]] || sy_fail "expected $PIN to stay after the daemon exited"
mapfile -t prog_ids < <(attached_prog_ids)
((${#prog_ids[@]} >= 6)) ||
  sy_fail "expected the 4 socket-LB hooks and 2 tc programs to stay attached after the daemon exited, found program IDs: ${prog_ids[*]:-none}"
sy_expect_probe "TCP through the ClusterIP to keep working with the daemon gone" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

# A slot naming a backend the backends map lacks (deleted by hand here): status keeps the
# issue's shape, address and port null, state "missing".
status=$(sy_status_json) || sy_fail "switchyard status -o json failed"
gone_id=$(sy_json "$status" "[s for s in d['services'] if s['address'] == '$WEB_VIP'][0]['backends'][0]['id']")
key=$(printf '%02x %02x %02x %02x' $((gone_id & 255)) $(((gone_id >> 8) & 255)) $(((gone_id >> 16) & 255)) $(((gone_id >> 24) & 255)))
# shellcheck disable=SC2086 # four separate hex bytes
bpftool map delete pinned "$PIN/backends_v2" key hex $key || sy_fail "could not delete backend $gone_id"
status=$(sy_status_json) || sy_fail "switchyard status -o json failed with a missing backend"
sy_json_check "$status" "[b for s in d['services'] for b in s['backends'] if b['id'] == $gone_id] == \
[{'address': None, 'port': None, 'state': 'missing', 'local': False, 'id': $gone_id, 'slot': 1}]" ||
  sy_fail "expected backend $gone_id shown as {address: null, port: null, state: missing}, got: $status"
sy_json_check "$status" "all(set(b) >= {'address', 'port', 'state'} for s in d['services'] for b in s['backends'])" ||
  sy_fail "expected every backend with address, port and state: $status"

# A lock holder that is not a daemon (flock(1) takes the same exclusive flock on the
# directory): refused again, naming it; --force goes ahead.
flock -x "$PIN" sleep 60 &
holder=$!
sy_track_pid "$holder"
held() { grep -q "FLOCK.* $holder " /proc/locks; }
sy_wait_for "flock $holder to hold $PIN" 5 held || sy_fail "flock(1) did not take the lock on $PIN"
rc=0
out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" 2>&1) || rc=$?
((rc == 1)) && grep -qF "(pid $holder)" <<<"$out" ||
  sy_fail "expected cleanup to refuse while pid $holder holds $PIN, got $rc: $out"
out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" --force 2>&1) || sy_fail "expected switchyard cleanup --force to exit 0, output: $out"
sy_log "cleanup --force said: $out"
grep -qF "is held by a switchyard daemon (pid $holder); --force: cleaning up anyway" <<<"$out" ||
  sy_fail "expected cleanup --force to say whose lock it overrode, got: $out"
# flock(1) runs sleep as its child, which inherits the lock: end both, or the orphaned sleep
# holds the test's cleanup up for its whole minute.
pkill -P "$holder" 2>/dev/null || true
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
grep -qE "^cleanup $PIN: removed 2 tc filters, 1 clsact qdiscs, 8 cgroup links, [1-9][0-9]* pinned maps" <<<"$out" ||
  sy_fail "expected cleanup to report 2 tc filters, 1 clsact qdisc, 8 cgroup links (4 hooks x 2 families) and the pinned maps removed, got: $out"

[[ ! -e $PIN ]] || sy_fail "expected $PIN to be gone after cleanup, it holds: $(ls -R "$PIN")"
cg_progs=$(bpftool cgroup show "$CG")
[[ -z $cg_progs ]] || sy_fail "expected no program left on cgroup $CG after cleanup, bpftool cgroup show: $cg_progs"
for dir in ingress egress; do
  filters=$(tc_filters $dir)
  [[ -z $filters ]] || sy_fail "expected no tc filter left on veth-c $dir after cleanup, got: $filters"
done
qdisc_after=$(sy_in_ns "$NODE_NS" tc qdisc show dev veth-c)
if grep -q clsact <<<"$qdisc_after"; then
  sy_fail "expected the clsact qdisc switchyard created on veth-c to be removed, got: $qdisc_after"
fi
sy_wait_for "programs ${prog_ids[*]} to be freed" 5 progs_gone "${prog_ids[@]}" ||
  sy_fail "expected the kernel to free switchyard's programs (IDs ${prog_ids[*]}) once nothing holds them"

sy_expect_probe "TCP to the ClusterIP after cleanup not to be translated to any pod" \
  "d['ok'] == 0 and d['backends'] == {}" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 3 --timeout-ms 300
sy_expect_probe "UDP to the ClusterIP after cleanup not to be answered by any pod" \
  "d['ok'] == 0 and d['backends'] == {}" --proto udp --target "$DNS_VIP:$DNS_PORT" --count 3 --timeout-ms 300
sy_expect_probe "the pods themselves to stay reachable after cleanup" \
  "d['ok'] == 5 and d['backends'] == {'pod1': 5}" --proto tcp --target "${POD_IPS[0]}:8080" --count 5

out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" 2>&1) ||
  sy_fail "expected a second cleanup (nothing left) to exit 0, output: $out"
grep -qE "removed 0 tc filters, 0 clsact qdiscs, 0 cgroup links, 0 pinned maps" <<<"$out" ||
  sy_fail "expected a second cleanup to remove nothing, got: $out"
[[ ! -e $PIN ]] || sy_fail "expected a second cleanup not to recreate $PIN"
sy_log "PASS"
