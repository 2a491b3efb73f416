#!/usr/bin/env bash
# tests/e2e/manifests_test.sh: the manifest source with bad input. A file holding an invalid
# Service (port 0), a document of another kind (ConfigMap) and a valid Service + EndpointSlice:
# the valid objects are programmed, the invalid one is not, the log names file, line, document
# and field, and switchyard_source_errors_total counts it. An invalid edit of a working Service
# keeps its last good version (traffic still flows); a later valid edit is applied.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

BROKEN_VIP=198.19.0.20
EXTRA_VIP=198.19.0.30

metric_value() { # NAME_WITH_LABELS: prints the sample's value, or nothing
  sy_in_ns "$NODE_NS" curl -sf --max-time 5 "http://$METRICS_ADDR/metrics" |
    awk -v m="$1" '$1 == m {print $2}'
}
source_errors() {
  local v
  v=$(sy_in_ns "$NODE_NS" curl -sf --max-time 5 "http://$METRICS_ADDR/metrics" |
    awk '$1 ~ /^switchyard_source_errors_total\{/ && $1 ~ /source="files"/ {s += $2} END {print s + 0}')
  echo "${v:-0}"
}
source_errors_above() {
  local v
  v=$(source_errors)
  [[ ${v%.*} -gt $1 ]]
}

sy_e2e_init manifests
sy_topology_up 3
sy_start_backends 8080 5353
CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" true
sy_tune_config "$CONFIG"
sy_write_all_manifests

# One file, three documents: an invalid Service, a ConfigMap, a valid Service. Its slice follows
# in a fourth document.
BAD=$MANIFEST_DIR/mixed.yaml
cat >"$BAD" <<EOM
apiVersion: v1
kind: Service
metadata:
  name: broken
  namespace: default
  resourceVersion: "7"
  uid: 0b0b0b0b-0000-4000-8000-000000000001
spec:
  clusterIP: $BROKEN_VIP
  clusterIPs:
  - $BROKEN_VIP
  ports:
  - name: http
    port: 0
    protocol: TCP
    targetPort: 8080
  type: ClusterIP
---
apiVersion: v1
data:
  key: value
kind: ConfigMap
metadata:
  name: unrelated
  namespace: default
---
apiVersion: v1
kind: Service
metadata:
  name: extra
  namespace: default
  resourceVersion: "8"
  uid: 0b0b0b0b-0000-4000-8000-000000000002
spec:
  clusterIP: $EXTRA_VIP
  clusterIPs:
  - $EXTRA_VIP
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
  type: ClusterIP
---
addressType: IPv4
apiVersion: discovery.k8s.io/v1
endpoints:
- addresses:
  - ${POD_IPS[0]}
  conditions:
    ready: true
kind: EndpointSlice
metadata:
  labels:
    kubernetes.io/service-name: extra
  name: extra-xyz
  namespace: default
ports:
- name: http
  port: 8080
  protocol: TCP
EOM
port0_line=$(grep -n '    port: 0$' "$BAD" | cut -d: -f1)

sy_daemon_start "$CONFIG"
sy_wait_for_programmed 3
sy_wait_for "Service extra ($EXTRA_VIP) from the mixed file to be programmed" 10 sy_status_check \
  "$(sy_svc_has "$EXTRA_VIP" 80 TCP 1)" ||
  sy_fail "expected the valid Service after an invalid one in $BAD to be programmed with 1 backend; status: $(sy_status_json)"
status=$(sy_status_json)
sy_json_check "$status" "$(sy_svc_absent "$BROKEN_VIP")" ||
  sy_fail "expected the invalid Service (port 0) not to be programmed, status: $status"
sy_expect_probe "the valid Service from the mixed file to reach pod1" \
  "d['ok'] == 10 and d['backends'] == {'pod1': 10}" --proto tcp --target "$EXTRA_VIP:80" --count 10

expected="manifest: $BAD:$port0_line: document 1: Service default/broken: spec.ports[0].port: must be between 1 and 65535, got 0"
sy_wait_for "the log to report the invalid Service" 5 grep -qF "$expected" "$DAEMON_LOG" ||
  sy_fail "expected the log to say '$expected'; manifest lines in the log: $(grep manifest: "$DAEMON_LOG" || echo none)"
if grep 'manifest:' "$DAEMON_LOG" | grep -q -i 'ConfigMap\|document 2:'; then
  sy_fail "expected the ConfigMap (another kind) to be ignored without an error, log: $(grep manifest: "$DAEMON_LOG")"
fi
errors=$(source_errors)
[[ ${errors%.*} -gt 0 ]] ||
  sy_fail "expected switchyard_source_errors_total{source=\"files\"} > 0 on /metrics after an invalid document, got '$errors'"
sy_log "ok: log names $BAD:$port0_line, switchyard_source_errors_total = $errors"

# An invalid edit of the working web Service: its last good version stays.
sed -i 's/^    port: 80$/    port: 0/' "$MANIFEST_DIR/svc-web.yaml"
grep -q '^    port: 0$' "$MANIFEST_DIR/svc-web.yaml" || sy_fail "test bug: could not break svc-web.yaml"
sy_wait_for "the invalid edit of svc-web.yaml to be reported" 10 \
  grep -qF "$MANIFEST_DIR/svc-web.yaml:" "$DAEMON_LOG" ||
  sy_fail "expected the log to report the invalid edit of $MANIFEST_DIR/svc-web.yaml; manifest lines: $(grep manifest: "$DAEMON_LOG")"
grep -F "$MANIFEST_DIR/svc-web.yaml:" "$DAEMON_LOG" | grep -q 'Service default/web: spec.ports\[0\].port' ||
  sy_fail "expected the report of svc-web.yaml to name Service default/web and spec.ports[0].port, got: $(grep -F svc-web.yaml "$DAEMON_LOG")"
source_errors_above "${errors%.*}" ||
  sy_fail "expected switchyard_source_errors_total to rise after the invalid edit, stayed at $errors"
sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 3)" ||
  sy_fail "expected web to stay programmed ($WEB_VIP:$WEB_PORT, 3 backends) after an invalid edit, status: $(sy_status_json)"
sy_expect_probe "web to keep working after an invalid edit of its Service" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

# A valid edit afterwards is applied: the Service moves to port 81.
sy_write_service "$MANIFEST_DIR" web "$WEB_VIP" 81 8080 TCP
sy_wait_for "web to move to port 81" 10 sy_status_check \
  "$(sy_svc_has "$WEB_VIP" 81 TCP 3) and not any(s['address'] == '$WEB_VIP' and s['port'] == 80 for s in d['services'])" ||
  sy_fail "expected a valid edit after an invalid one to be applied (web on port 81, not 80), status: $(sy_status_json)"
sy_expect_probe "web on its new port 81 to reach pod1..pod3" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:81" --count 30
sy_log "PASS"
