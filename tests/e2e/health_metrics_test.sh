#!/usr/bin/env bash
# tests/e2e/health_metrics_test.sh: /healthz, /livez and /metrics of a synced daemon.
#   - /healthz answers 200 with kube-proxy's JSON body (lastUpdated, currentTime, nodeEligible);
#   - /livez answers 200;
#   - /metrics has kube-proxy's sync metrics with sensible values, switchyard's programmed
#     gauges equal to what the maps hold (and follow a change), no map errors, and the datapath
#     packet counters follow the traffic.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

# http URL: sets CODE and BODY (curl inside the node namespace, where the daemon listens).
http() {
  local raw
  raw=$(sy_in_ns "$NODE_NS" curl -s --max-time 5 -w '\n%{http_code}' "$1") || raw=$'\n000'
  CODE=${raw##*$'\n'}
  BODY=${raw%$'\n'*}
}
healthz_ok() {
  http "http://$HEALTHZ_ADDR/healthz"
  [[ $CODE == 200 ]]
}
scrape() {
  http "http://$METRICS_ADDR/metrics"
  [[ $CODE == 200 ]] || sy_fail "expected GET /metrics to answer 200, got $CODE: $BODY"
  METRICS=$BODY
}
# metric NAME{LABELS}: the value of one sample of the last scrape, or nothing.
metric() {
  awk -v m="$1" '$1 == m {print $2}' <<<"$METRICS"
}
metric_sum() { # NAME: the sum of all samples of NAME (any labels) in the last scrape
  awk -v m="$1" '($1 == m || index($1, m "{") == 1) {s += $2} END {print s + 0}' <<<"$METRICS"
}
# check DESCRIPTION PYTHON_EXPR: EXPR over v (a dict of the values asked for) must hold.
num_check() {
  local description=$1 expr=$2
  shift 2
  python3 -c '
import sys
v = {}
for kv in sys.argv[2:]:
    k, _, x = kv.partition("=")
    v[k] = float(x) if x else None
try:
    ok = eval(sys.argv[1])
except TypeError:
    ok = False
sys.exit(0 if ok else 1)
' "$expr" "$@" || sy_fail "expected $description; values: $*"
}
programmed_is() { # SERVICES BACKENDS
  scrape
  [[ $(metric switchyard_services_programmed) == "$1" && $(metric switchyard_backends_programmed) == "$2" ]]
}

sy_e2e_init health-metrics
sy_cluster_up socklb

sy_wait_for "/healthz to answer 200 after the first sync" 10 healthz_ok ||
  sy_fail "expected GET /healthz to answer 200 once synced, got $CODE: $BODY"
sy_json_check "$BODY" "set(d) >= {'lastUpdated', 'currentTime', 'nodeEligible'} and d['nodeEligible'] is True and \
isinstance(d['lastUpdated'], str) and isinstance(d['currentTime'], str) and d['lastUpdated'] <= d['currentTime']" ||
  sy_fail "expected kube-proxy's healthz JSON (lastUpdated <= currentTime, nodeEligible true), got: $BODY"
ctype=$(sy_in_ns "$NODE_NS" curl -s --max-time 5 -o /dev/null -w '%{content_type}' "http://$HEALTHZ_ADDR/healthz")
[[ $ctype == application/json* ]] || sy_fail "expected /healthz to be served as application/json, got '$ctype'"
sy_log "ok: /healthz 200 $BODY"
http "http://$HEALTHZ_ADDR/livez"
[[ $CODE == 200 ]] || sy_fail "expected GET /livez to answer 200, got $CODE: $BODY"
sy_log "ok: /livez 200"

# Traffic first, so the packet counters have something to show.
sy_expect_probe "20 TCP connections to $WEB_VIP:$WEB_PORT" "$(sy_all_pods_expr 20)" \
  --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 20

status=$(sy_status_json)
frontends=$(sy_json "$status" "len(d['services'])")
backends=$(sy_json "$status" "d['backendCount']")
xlate_status=$(sy_json "$status" "d['counters']['sock_xlate']")
scrape
now=$(date +%s)
for name in kubeproxy_sync_proxy_rules_duration_seconds kubeproxy_network_programming_duration_seconds \
  kubeproxy_sync_proxy_rules_last_timestamp_seconds switchyard_services_programmed \
  switchyard_backends_programmed switchyard_datapath_packets_total; do
  grep -q "^# TYPE $name " <<<"$METRICS" || sy_fail "expected /metrics to declare $name (# TYPE line), it does not"
done
num_check "kubeproxy_sync_proxy_rules_duration_seconds to be a histogram with >= 1 sync and a sum below 10 s" \
  "v['count'] >= 1 and 0 < v['sum'] < 10 and v['inf'] == v['count']" \
  "count=$(metric kubeproxy_sync_proxy_rules_duration_seconds_count)" \
  "sum=$(metric kubeproxy_sync_proxy_rules_duration_seconds_sum)" \
  "inf=$(metric 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"}')"
num_check "kubeproxy_network_programming_duration_seconds to have observed the first programming" \
  "v['count'] >= 1 and v['sum'] >= 0" \
  "count=$(metric kubeproxy_network_programming_duration_seconds_count)" \
  "sum=$(metric kubeproxy_network_programming_duration_seconds_sum)"
num_check "kubeproxy_sync_proxy_rules_last_timestamp_seconds to be a Unix time within the last 120 s" \
  "v['now'] - 120 <= v['ts'] <= v['now'] + 5" \
  "ts=$(metric kubeproxy_sync_proxy_rules_last_timestamp_seconds)" "now=$now"
num_check "switchyard_services_programmed == the frontends in status ($frontends) and backends_programmed == backendCount ($backends)" \
  "v['svc'] == v['frontends'] == 2 and v['be'] == v['backends'] == 6" \
  "svc=$(metric switchyard_services_programmed)" "be=$(metric switchyard_backends_programmed)" \
  "frontends=$frontends" "backends=$backends"
num_check "switchyard_bpf_map_operation_errors_total to be 0 (absent until an error happens)" \
  "v['errors'] == 0" "errors=$(metric_sum switchyard_bpf_map_operation_errors_total)"
num_check "switchyard_datapath_packets_total{reason=\"sock_xlate\"} to count the 20 connections (status says $xlate_status)" \
  "v['xlate'] >= 20 and v['xlate'] == v['status']" \
  "xlate=$(metric 'switchyard_datapath_packets_total{reason="sock_xlate"}')" "status=$xlate_status"
num_check "switchyard_datapath_packets_total{reason=\"tc_dnat_new\"} to be 0 with socket LB" \
  "v['dnat'] == 0" "dnat=$(metric 'switchyard_datapath_packets_total{reason="tc_dnat_new"}')"
sy_log "ok: /metrics values"

# The gauges follow a change: a third Service with one new backend (pod1 on port 9090: a backend
# is an address, port and protocol, so pod1:8080 would be shared with web and not counted again).
syncs_before=$(metric kubeproxy_sync_proxy_rules_duration_seconds_count)
sy_write_service "$MANIFEST_DIR" extra 198.19.0.30 80 9090 TCP
sy_write_slice "$MANIFEST_DIR" extra-xyz extra 9090 TCP "${POD_IPS[0]}"
sy_wait_for "switchyard_services_programmed 3 and backends_programmed 7" 10 programmed_is 3 7 ||
  sy_fail "expected the gauges to follow a new Service (3 services, 7 backends), got $(metric switchyard_services_programmed) and $(metric switchyard_backends_programmed)"
num_check "kubeproxy_sync_proxy_rules_duration_seconds_count to grow with the new sync" \
  "v['after'] > v['before']" "before=$syncs_before" "after=$(metric kubeproxy_sync_proxy_rules_duration_seconds_count)"
num_check "kube-proxy's change counters to count the 3 Services and 3 slices received, none pending" \
  "v['svc'] >= 3 and v['eps'] >= 3 and v['svcp'] == 0 and v['epsp'] == 0" \
  "svc=$(metric kubeproxy_sync_proxy_rules_service_changes_total)" \
  "eps=$(metric kubeproxy_sync_proxy_rules_endpoint_changes_total)" \
  "svcp=$(metric kubeproxy_sync_proxy_rules_service_changes_pending)" \
  "epsp=$(metric kubeproxy_sync_proxy_rules_endpoint_changes_pending)"
status=$(sy_status_json)
sy_json_check "$status" "len(d['services']) == 3 and d['backendCount'] == 7" ||
  sy_fail "expected status to agree with the gauges (3 services, backendCount 7), got $status"
sy_assert "/healthz to stay 200 after the change" healthz_ok
sy_log "PASS"
