#!/usr/bin/env bash
# tests/e2e/ct_full_test.sh: a conntrack table too small for the flows (bpf.mapSizes.conntrack
# 8: four translated flows). Held TCP connections fill it; a new connection is refused and
# counted (tc_ct_full, a warning in the log) while the held ones keep working, as Calico's
# plain-hash conntrack does (an LRU table, ct_v2 and Cilium's, would evict a live flow
# instead). Once one held connection closes, the GC removes its flow after the closing
# lifetime (10 s) and a new connection gets in. The GC's and the map's figures are read
# from /metrics.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

metric() { # NAME{LABELS}: the sum of the series that start with it
  sy_in_ns "$NODE_NS" curl -s --max-time 3 "http://$METRICS_ADDR/metrics" |
    awk -v n="$1" 'index($0, n) == 1 { sum += $NF } END { print sum + 0 }'
}
metric_is() { # NAME VALUE
  [[ $(metric "$1") == "$2" ]]
}
metric_at_least() { # NAME VALUE
  local v
  v=$(metric "$1")
  python3 -c "import sys; sys.exit(0 if float('$v') >= float('$2') else 1)"
}
new_connection() { # prints the probe's JSON; one TCP request on a new connection
  sy_probe "$CLIENT_NS" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 1 --timeout-ms 1500 || true
}
new_connection_works() {
  local out
  out=$(new_connection) || true
  sy_json_check "$out" "d['ok'] == 1"
}

sy_e2e_init ct-full
sy_topology_up 3
sy_start_backends 8080 5353
CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" false # tc translates the client's flows (socket LB would bypass ct)
sy_tune_config "$CONFIG"
printf '  mapSizes:\n    conntrack: 8\n' >>"$CONFIG"
sy_write_all_manifests
sy_daemon_start "$CONFIG"
sy_wait_for_programmed 3
metric_is 'switchyard_bpf_map_max_entries{map="ct"}' 8 ||
  sy_fail "expected switchyard_bpf_map_max_entries{map=ct} 8, got: $(sy_in_ns "$NODE_NS" curl -s --max-time 3 "http://$METRICS_ADDR/metrics" | grep -E "switchyard_(bpf_map|conntrack)" | head -20)"

# Four held connections: eight entries, the table is full.
HELD=4
HOLD_PIDS=() # HOLD_PIDS[i]: the probe of held connection i (1-based)
for ((i = 1; i <= HELD; i++)); do
  sy_probe "$CLIENT_NS" --proto tcp --hold --target "$WEB_VIP:$WEB_PORT" --stop-file "$WORK/stop-$i" \
    --interval-ms 50 >"$WORK/hold-$i.json" 2>"$WORK/hold-$i.err" &
  sy_track_pid $!
  HOLD_PIDS[i]=$!
done
sy_on_exit "touch $WORK/stop-1 $WORK/stop-2 $WORK/stop-3 $WORK/stop-4"
full_before=$(sy_counter tc_ct_full)
# Each held connection's first request creates its flow; wait until the refusals begin.
new_connection_refused() { ! new_connection_works; }
sy_wait_for "a new connection refused by the full table" 15 new_connection_refused ||
  sy_fail "expected new connections to be refused with $HELD held connections in 8 entries"
out=$(new_connection) || true
sy_json_check "$out" "d['ok'] == 0" || sy_fail "expected a new connection to be refused with conntrack full, got $out"
full_after=$(sy_counter tc_ct_full)
((full_after > full_before)) || sy_fail "expected tc_ct_full to count the refused SYNs ($full_before -> $full_after)"
sy_log "ok: a new connection refused, tc_ct_full $full_before -> $full_after"

# The refusal kicks a GC pass; it finds the table full of live flows and removes nothing.
sy_wait_for "a GC pass that saw the full table" 15 metric_is 'switchyard_conntrack_entries{map="ct"}' 8 ||
  sy_fail "expected switchyard_conntrack_entries{map=ct} 8, got $(metric 'switchyard_conntrack_entries{map="ct"}')"
metric_is 'switchyard_bpf_map_pressure{map="ct"}' 1 ||
  sy_fail "expected switchyard_bpf_map_pressure{map=ct} 1, got $(metric 'switchyard_bpf_map_pressure{map="ct"}')"
metric_at_least 'switchyard_datapath_packets_total{reason="tc_ct_full"}' "$full_after" ||
  sy_fail "expected /metrics to show tc_ct_full >= $full_after"
metric_at_least switchyard_conntrack_gc_runs_total 1 || sy_fail "expected a GC run in /metrics"
sy_status_check "d['conntrack'] == {'entries': 8, 'maxEntries': 8, 'pressure': 1.0} and \
any(m['name'] == 'services' and m['entries'] > 0 and 0 < m['pressure'] < 1 for m in d['maps'])" ||
  sy_fail "expected switchyard status to show the conntrack full (8 of 8) and the services map's fill: $(sy_status_json)"
sy_wait_for "the conntrack-full warning" 10 grep -q "conntrack ct_v3 is full" "$DAEMON_LOG" ||
  sy_fail "expected a warning naming the full conntrack; log: $(tail -5 "$DAEMON_LOG")"
grep -q "raise bpf.mapSizes.conntrack" "$DAEMON_LOG" || sy_fail "expected the warning to say what to raise"

# The held connections still work, on their own pods: nothing of theirs was evicted.
sleep 1
for ((i = 1; i <= HELD; i++)); do
  [[ -e /proc/${HOLD_PIDS[i]} ]] || sy_fail "held connection $i ended early: $(cat "$WORK/hold-$i.err")"
done

# One held connection closes (FIN both ways): its flow is closing, the GC removes it 10 s later.
touch "$WORK/stop-1"
wait "${HOLD_PIDS[1]}" || true
closed_before=$(metric 'switchyard_conntrack_gc_removed_total{map="ct",reason="closed"}')
sy_wait_for "a new connection once the GC removed the closed flow" 40 new_connection_works ||
  sy_fail "expected a new connection to work after the closed flow's lifetime; entries $(metric 'switchyard_conntrack_entries{map="ct"}'), removed $(metric switchyard_conntrack_gc_removed_total)"
closed_after=$(metric 'switchyard_conntrack_gc_removed_total{map="ct",reason="closed"}')
((closed_after >= closed_before + 2)) ||
  sy_fail "expected the GC to remove the closed flow's two entries (removed closed $closed_before -> $closed_after)"
sy_log "ok: a new connection after the GC removed the closed flow (removed closed $closed_before -> $closed_after)"

# The other held connections ran through all of it without a failure.
for ((i = 2; i <= HELD; i++)); do
  touch "$WORK/stop-$i"
  wait "${HOLD_PIDS[i]}" || true
  hold=$(<"$WORK/hold-$i.json")
  sy_json_check "$hold" "d['failed'] == 0 and d['connections'] == 1 and len(d['backends']) == 1 and d['ok'] > 20" ||
    sy_fail "expected held connection $i to keep working on one pod while the table was full, got $hold"
  sy_log "ok: held connection $i: $hold"
done
hold=$(<"$WORK/hold-1.json")
sy_json_check "$hold" "d['failed'] == 0 and d['connections'] == 1" ||
  sy_fail "expected held connection 1 to work until it closed, got $hold"
sy_log "PASS"
