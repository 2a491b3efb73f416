#!/usr/bin/env bash
# tests/e2e/map_full_test.sh: a services map too small for what the manifests ask. The
# failed writes are logged naming map, key and errno and counted; the services already
# programmed keep working; the one that does not fit is not half-made; the repair syncs back
# off instead of looping and do not count as successful syncs; and once the demand fits
# again, the daemon is healthy.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

metric() {
  sy_in_ns "$NODE_NS" curl -s --max-time 3 "http://$METRICS_ADDR/metrics" |
    awk -v n="$1" 'index($0, n) == 1 { sum += $NF } END { print sum + 0 }'
}
raw_metric() { # NAME: the value as exposed (no arithmetic: a timestamp needs every digit)
  sy_in_ns "$NODE_NS" curl -s --max-time 3 "http://$METRICS_ADDR/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
healthz_code() {
  sy_in_ns "$NODE_NS" curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://$HEALTHZ_ADDR/healthz" || echo 000
}

sy_e2e_init map-full
sy_topology_up 3
sy_start_backends 8080 5353
CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" true
sy_tune_config "$CONFIG"
# web and dns with 3 backends each take 2 x (1 + 3) = 8 entries: exactly full.
printf '  mapSizes:\n    services: 8\n' >>"$CONFIG"
sy_write_all_manifests
sy_daemon_start "$CONFIG"
sy_wait_for_programmed 3

EXTRA_VIP=198.19.0.30
sy_write_service "$MANIFEST_DIR" extra "$EXTRA_VIP" 80 9090 TCP
sy_write_slice "$MANIFEST_DIR" extra-xyz extra 9090 TCP "${POD_IPS[0]}"
sy_wait_for "the map-full error in the log" 10 \
  grep -q "map services_v2: update $EXTRA_VIP:80/TCP slot 1: Argument list too long (the map is full: raise bpf.mapSizes)" "$DAEMON_LOG" ||
  sy_fail "expected the log to name map, key and errno of the failed write; log: $(tail -5 "$DAEMON_LOG")"
errors=$(metric 'switchyard_bpf_map_operation_errors_total{map="services_v2",op="update"}')
((errors > 0)) || sy_fail "expected switchyard_bpf_map_operation_errors_total{map=services_v2,op=update} > 0, got $errors"

sy_status_check "$(sy_svc_absent "$EXTRA_VIP")" ||
  sy_fail "expected no half-made service for $EXTRA_VIP in the maps: $(sy_status_json)"
sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 3) and $(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP 3)" ||
  sy_fail "expected web and dns untouched by the failure: $(sy_status_json)"
sy_expect_probe "web to keep working while the map is full" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

# Backoff: over 4 s of failing, repair syncs are few (1 s, 2 s, ...), not one per minSyncPeriod.
# None of them succeeds, so the last successful sync time (kube-proxy's
# kubeproxy_sync_proxy_rules_last_timestamp_seconds) stands still.
syncs_before=$(metric kubeproxy_sync_proxy_rules_duration_seconds_count)
last_ok_before=$(raw_metric kubeproxy_sync_proxy_rules_last_timestamp_seconds)
sleep 4
syncs_after=$(metric kubeproxy_sync_proxy_rules_duration_seconds_count)
last_ok_after=$(raw_metric kubeproxy_sync_proxy_rules_last_timestamp_seconds)
((syncs_after - syncs_before <= 4)) ||
  sy_fail "expected repair syncs to back off, got $((syncs_after - syncs_before)) syncs in 4 s"
((syncs_after > syncs_before)) || sy_fail "expected at least one (failing) repair sync in 4 s"
[[ -n $last_ok_before && $last_ok_after == "$last_ok_before" ]] ||
  sy_fail "expected kubeproxy_sync_proxy_rules_last_timestamp_seconds to stay at $last_ok_before while every sync fails, got $last_ok_after"
grep -q "a full resync in 2000 ms" "$DAEMON_LOG" || sy_fail "expected the retry delay to double"

# Demand fits again: the errors stop and the daemon reports healthy.
sy_remove_service "$MANIFEST_DIR" extra
sy_remove_slice "$MANIFEST_DIR" extra-xyz
# The next repair sync (the backoff has reached 8 s or more) succeeds: only then does the
# last successful sync time move.
synced_ok_again() {
  local now
  now=$(raw_metric kubeproxy_sync_proxy_rules_last_timestamp_seconds)
  [[ -n $now ]] && python3 -c "import sys; sys.exit(0 if float('$now') > float('$last_ok_before') else 1)"
}
sy_wait_for "a successful sync once everything fits" 70 synced_ok_again ||
  sy_fail "expected kubeproxy_sync_proxy_rules_last_timestamp_seconds to advance from $last_ok_before once a sync succeeds, got $(raw_metric kubeproxy_sync_proxy_rules_last_timestamp_seconds)"
is_healthy() { [[ $(healthz_code) == 200 ]]; }
sy_wait_for "/healthz 200 once everything fits" 10 is_healthy || true
code=$(healthz_code)
[[ $code == 200 ]] || sy_fail "expected /healthz 200 after the demand fits again, got $code"
sy_log "PASS"
