#!/usr/bin/env bash
# tests/e2e/monitoring_test.sh: the Grafana dashboard and the Prometheus alert rules in
# manifests/monitoring/ name only metrics a running daemon exports (as promtool and Grafana
# would find out only against a live cluster). A daemon in a test namespace watches
# sy-fake-apiserver (so the API client's metrics exist too), /metrics is scraped once it has
# programmed the Services and listed every kind, and monitoring_check.py
# checks every PromQL expression against the scrape: metric names, functions, labels, datapath
# reasons, and that prometheusrule.yaml holds the rules file's groups. A copy of the rules with
# a misspelt metric must fail the same check.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"

MON=$SY_ROOT/manifests/monitoring
CHECK=$HERE/monitoring_check.py
TOKEN=mon-$RANDOM$RANDOM
FAKE_ADDR=127.0.0.1:16443

scrape() {
  sy_in_ns "$NODE_NS" curl -sf --max-time 5 "http://$METRICS_ADDR/metrics" >"$WORK/metrics.txt"
}
# The fixtures' Node carries the autoscaler's ToBeDeleted taint, so /healthz is 503 by design:
# wait for the maps instead.
programmed() {
  scrape && grep -q '^switchyard_services_programmed [1-9]' "$WORK/metrics.txt"
}
has_sample() { # NAME_PREFIX: a sample of it is in a fresh scrape
  scrape && grep -q "^$1" "$WORK/metrics.txt"
}

sy_e2e_init monitoring
sy_topology_up 1
fake=$SY_BUILD_DIR/tests/fake_apiserver/sy-fake-apiserver
[[ -x $fake ]] || sy_fail "no sy-fake-apiserver at $fake"
sy_in_ns "$NODE_NS" "$fake" --listen "$FAKE_ADDR" --pki-dir "$WORK/pki" --token "$TOKEN" \
  --fixtures "$SY_ROOT/tests/fixtures/k8s" --kubeconfig-out "$WORK/kubeconfig" >"$WORK/fake-apiserver.log" 2>&1 &
sy_track_pid $!
sy_wait_for "the fake API server to write its kubeconfig" 10 test -s "$WORK/kubeconfig" ||
  sy_fail "sy-fake-apiserver did not start: $(cat "$WORK/fake-apiserver.log")"

CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" true
# The API server source instead of the manifest files.
python3 - "$CONFIG" "$WORK/kubeconfig" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
c["source"] = {"kind": "apiserver"}
c["clientConnection"] = {"kubeconfig": sys.argv[2]}
open(sys.argv[1], "w").write(yaml.safe_dump(c))
PY
sy_daemon_start "$CONFIG"
sy_wait_for "the Services from the API server to be programmed" 20 programmed ||
  sy_fail "expected the daemon to sync from sy-fake-apiserver; log: $(tail -20 "$DAEMON_LOG")"

# A bookmark on every watch: switchyard_k8s_events_total has series only once events came.
sy_in_ns "$NODE_NS" curl -sf --max-time 5 -k -X POST -H "Authorization: Bearer $TOKEN" \
  "https://$FAKE_ADDR/fake/bookmark" >/dev/null || sy_fail "POST /fake/bookmark failed"
sy_wait_for "switchyard_k8s_events_total to have a series" 20 has_sample 'switchyard_k8s_events_total{' ||
  sy_fail "expected switchyard_k8s_events_total after /fake/bookmark; log: $(tail -20 "$DAEMON_LOG")"
sy_wait_for "switchyard_k8s_last_sync_timestamp_seconds to have a series" 20 has_sample 'switchyard_k8s_last_sync_timestamp_seconds{' ||
  sy_fail "expected switchyard_k8s_last_sync_timestamp_seconds after the first list"
scrape || sy_fail "GET /metrics failed"

out=$(python3 "$CHECK" "$WORK/metrics.txt" "$MON/switchyard-rules.yaml" "$MON/prometheusrule.yaml" \
  "$MON/switchyard-dashboard.json" 2>&1) || sy_fail "expected every expression to name exported metrics: $out"
sy_log "$out"

# The check catches a wrong name, a wrong reason and rules files that drifted apart.
sed 's/kubeproxy_sync_proxy_rules_last_timestamp_seconds/kubeproxy_sync_proxy_rules_last_timestamp/' \
  "$MON/switchyard-rules.yaml" >"$WORK/bad-rules.yaml"
sed 's/kubeproxy_sync_proxy_rules_last_timestamp_seconds/kubeproxy_sync_proxy_rules_last_timestamp/' \
  "$MON/prometheusrule.yaml" >"$WORK/bad-prometheusrule.yaml"
if out=$(python3 "$CHECK" "$WORK/metrics.txt" "$WORK/bad-rules.yaml" "$WORK/bad-prometheusrule.yaml" \
  "$MON/switchyard-dashboard.json" 2>&1); then
  sy_fail "expected the check to reject a metric the daemon does not export, it passed: $out"
fi
grep -q 'metric kubeproxy_sync_proxy_rules_last_timestamp is not exported' <<<"$out" ||
  sy_fail "expected the check to name the unexported metric, got: $out"
sed 's/tc_snat_no_port/tc_snat_no_ports/' "$MON/switchyard-dashboard.json" >"$WORK/bad-dashboard.json"
if out=$(python3 "$CHECK" "$WORK/metrics.txt" "$MON/switchyard-rules.yaml" "$MON/prometheusrule.yaml" \
  "$WORK/bad-dashboard.json" 2>&1); then
  sy_fail "expected the check to reject an unknown datapath reason, it passed: $out"
fi
grep -q "reason='tc_snat_no_ports'.*no such datapath reason" <<<"$out" ||
  sy_fail "expected the check to name the unknown reason, got: $out"
if out=$(python3 "$CHECK" "$WORK/metrics.txt" "$WORK/bad-rules.yaml" "$MON/prometheusrule.yaml" \
  "$MON/switchyard-dashboard.json" 2>&1); then
  sy_fail "expected the check to reject a PrometheusRule that differs from the rules file: $out"
fi
grep -q 'spec is not the groups of' <<<"$out" || sy_fail "expected the drift to be named, got: $out"
sy_log "ok: the check rejects an unexported metric, an unknown reason and drifted rules"
sy_log "PASS"
