#!/usr/bin/env bash
# tests/e2e/restart_test.sh [socklb|tc]: kill -9 of the daemon while clients loop over the
# ClusterIPs, then a new daemon with the same config: no request fails, replies keep the
# ClusterIP as their source, the new daemon adopts the pinned maps and its first sync rewrites
# none of them, and backend IDs and rev-NAT IDs survive (no flush). Without an argument, runs
# both modes one after the other.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if (($# == 0)); then
  for mode in socklb tc; do
    bash "${BASH_SOURCE[0]}" "$mode" || exit $?
  done
  exit 0
fi
MODE=$1

# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

# What must not change across a restart: every frontend with its rev-NAT ID and its backends
# with their IDs and slots.
ids_of() {
  sy_json "$1" "sorted((s['address'], s['port'], s['protocol'], s['revNatId'], \
sorted((b['address'], b['port'], b['id'], b['slot']) for b in s['backends'])) for s in d['services'])"
}

adopted_all() {
  grep -q 'adopted pinned maps: 2 frontends, 6 backends' "$WORK/daemon2.log"
}

sy_e2e_init "restart-$MODE"
sy_cluster_up "$MODE"
before=$(sy_status_json)
ids_before=$(ids_of "$before")
sy_log "before the restart: $ids_before"

DURATION=8
sy_probe "$CLIENT_NS" --proto tcp --target "$WEB_VIP:$WEB_PORT" --duration-s $DURATION --interval-ms 10 \
  >"$WORK/probe-tcp.json" 2>"$WORK/probe-tcp.err" &
tcp_probe=$!
sy_probe "$CLIENT_NS" --proto udp --target "$DNS_VIP:$DNS_PORT" --duration-s $DURATION --interval-ms 10 \
  >"$WORK/probe-udp.json" 2>"$WORK/probe-udp.err" &
udp_probe=$!
sy_track_pid "$tcp_probe"
sy_track_pid "$udp_probe"

# Timed on purpose: the crash must fall inside the probes' run, with traffic before and after.
sleep 2
# `|| true`: under set -e, the `wait` inside sy_daemon_kill9 (status 137) would end the script.
sy_daemon_kill9 || true
sy_log "no daemon for 1 s: the pinned maps and attached programs must carry the traffic alone"
sleep 1
sy_daemon_start "$CONFIG" "$WORK/daemon2.log"
sy_wait_for "the new daemon to adopt the pinned maps" 10 adopted_all ||
  sy_fail "expected the new daemon to log 'adopted pinned maps: 2 frontends, 6 backends'; log: $(cat "$WORK/daemon2.log")"
sy_wait_for "the new daemon to sync" 10 grep -q 'source synced' "$WORK/daemon2.log" ||
  sy_fail "expected the new daemon to sync its source; log: $(cat "$WORK/daemon2.log")"

# The probes' exit codes say the same as their reports (1 when a request failed).
wait "$tcp_probe" || true
tcp=$(<"$WORK/probe-tcp.json")
wait "$udp_probe" || true
udp=$(<"$WORK/probe-udp.json")
sy_log "TCP probe across the restart: $tcp"
sy_log "UDP probe across the restart: $udp"
[[ -n $tcp && -n $udp ]] || sy_fail "expected both probes to report; stderr: $(cat "$WORK"/probe-*.err)"
sy_json_check "$tcp" "d['failed'] == 0 and d['peer_mismatch'] == 0 and d['ok'] > 100" ||
  sy_fail "expected zero failed TCP requests and zero peer mismatches across kill -9 + restart (and > 100 requests), got $tcp"
sy_json_check "$udp" "d['failed'] == 0 and d['peer_mismatch'] == 0 and d['ok'] > 100" ||
  sy_fail "expected zero failed UDP requests and zero peer mismatches across kill -9 + restart (and > 100 requests), got $udp"
sy_json_check "$tcp" "sorted(d['backends']) == ['pod1', 'pod2', 'pod3']" ||
  sy_fail "expected the TCP loop (a new connection per request) to keep spreading over pod1..pod3, got $tcp"
if [[ $MODE == tc ]]; then
  # One UDP socket is one flow: its conntrack entry lives in the pinned map, so the flow stays on
  # its backend through the restart.
  sy_json_check "$udp" "len(d['backends']) == 1" ||
    sy_fail "expected the UDP flow (one socket) to stay on one backend across the restart (conntrack kept), got $udp"
fi

after=$(sy_status_json)
sy_json_check "$after" "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 3) and $(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP 3)" ||
  sy_fail "expected status after the restart to show web and dns with 3 backends each, got $after"
ids_after=$(ids_of "$after")
[[ $ids_after == "$ids_before" ]] ||
  sy_fail "expected backend IDs, slots and revNatIds unchanged across the restart (no flush); before $ids_before, after $ids_after"
# The new daemon's first sync compares the manifests with what it adopted: nothing changed
# while it was down, so it must write and delete nothing (a rewrite would be a window where a
# slot changes under live traffic). The daemon logs every full sync with its counts.
first_sync() { grep -m1 'full sync of' "$WORK/daemon2.log"; }
sy_wait_for "the new daemon's first full sync" 10 first_sync >/dev/null ||
  sy_fail "expected the new daemon to log its first full sync; log: $(cat "$WORK/daemon2.log")"
first=$(first_sync)
sy_log "first sync after the restart: $first"
grep -q ': 0 frontends written, 0 deleted, 0 backends written, 0 deleted; now 2 frontends, 6 backends$' <<<"$first" ||
  sy_fail "expected the new daemon's first sync to adopt every entry (0 written, 0 deleted; 2 frontends, 6 backends), got: $first"
sy_log "PASS"
