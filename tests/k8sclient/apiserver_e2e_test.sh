#!/usr/bin/env bash
# tests/k8sclient/apiserver_e2e_test.sh: the daemon with source: apiserver, against
# sy-fake-apiserver over HTTPS, programs the same ClusterIP dataplane as the manifest
# source from the same objects, and follows changes made with kubectl while its watches
# run, through a dropped connection, an expired (410) watch and a watch event cut off
# mid-object (resumed at once from the last event decoded). Real traffic through the
# maps, in the namespaces of tests/e2e/lib.sh. Needs root (exits 77 without it), kubectl,
# and SY_BUILD_DIR (switchyard, sy-testpeer, sy-fake-apiserver).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/../e2e/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/../e2e/lib_cluster.sh"

sy_e2e_init apiserver
FAKE=$SY_BUILD_DIR/tests/fake_apiserver/sy-fake-apiserver
[[ -x $FAKE ]] || sy_fail "no sy-fake-apiserver at $FAKE"
command -v kubectl >/dev/null || sy_fail "kubectl is not installed"

# The dataplane as a comparable value: services and their backend addresses, sorted.
view() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps(sorted((s["address"], s["port"], s["protocol"],
                         sorted((b["address"], b["port"]) for b in s["backends"]))
                        for s in d["services"])))'
}
metric() {
  sy_in_ns "$NODE_NS" curl -s "http://$METRICS_ADDR/metrics" |
    awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}

# 1. The manifest source's dataplane, for reference; then a clean slate.
sy_cluster_up socklb
files_view=$(sy_status_json | view)
sy_log "files source programmed: $files_view"
sy_daemon_stop 10 || sy_fail "the files-source daemon did not exit cleanly"
sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" >/dev/null ||
  sy_fail "switchyard cleanup failed"

# 2. The fake API server in the node namespace, holding the same objects.
TOKEN=e2e-$RANDOM$RANDOM
sy_in_ns "$NODE_NS" "$FAKE" --listen 127.0.0.1:6443 --pki-dir "$WORK/pki" --token "$TOKEN" \
  --kubeconfig-out "$WORK/kubeconfig" >"$WORK/fake-apiserver.log" 2>&1 &
sy_track_pid $!
sy_wait_for "the fake API server to write its kubeconfig" 10 test -s "$WORK/kubeconfig" ||
  sy_fail "sy-fake-apiserver did not start: $(cat "$WORK/fake-apiserver.log")"
k() { sy_in_ns "$NODE_NS" kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kubectl-cache" \
  --request-timeout=10s "$@"; }
fake_control() {
  sy_in_ns "$NODE_NS" curl -sf --cacert "$WORK/pki/ca.crt" -X POST \
    -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:6443/fake/$1" >/dev/null ||
    sy_fail "POST /fake/$1 failed"
}
both() { echo "($1) and ($2)"; }
k apply -f "$MANIFEST_DIR" >/dev/null || sy_fail "kubectl apply of the manifests failed"

# 3. The daemon, told where the API server is by --kubeconfig (the config names no source).
sy_write_config "$CONFIG" true
sed -i '/^source:$/d; /^  kind: files$/d; /^  path: /d' "$CONFIG"
grep -q '^source:' "$CONFIG" && sy_fail "could not remove the source block from $CONFIG"
DAEMON_LOG=$WORK/daemon.log
nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" run --config "$CONFIG" \
  --kubeconfig "$WORK/kubeconfig" >>"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!
SY_PIDS+=("$DAEMON_PID")
sy_wait_for_programmed 3
api_view=$(sy_status_json | view)
[[ $api_view == "$files_view" ]] ||
  sy_fail "expected the apiserver source to program what the files source did: $files_view, got $api_view"
sy_log "ok: the apiserver source programmed the same dataplane"
sy_wait_for "healthz 200 after the first sync" 10 \
  sh -c "nsenter --net=/run/netns/$NODE_NS curl -sf -o /dev/null http://$HEALTHZ_ADDR/healthz" ||
  sy_fail "expected /healthz to answer 200 once synced"
sy_expect_probe "30 TCP connections to $WEB_VIP:$WEB_PORT to reach pod1..pod3" "$(sy_all_pods_expr 30)" \
  --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30
sy_expect_probe "30 UDP requests to $DNS_VIP:$DNS_PORT to reach pod1..pod3" "$(sy_all_pods_expr 30)" \
  --proto udp --target "$DNS_VIP:$DNS_PORT" --count 30

# 4. A change through the watch: web keeps pod1 only.
sy_write_slice "$MANIFEST_DIR" web-abc12 web 8080 TCP "${POD_IPS[0]}"
k apply -f "$MANIFEST_DIR/slice-web-abc12.yaml" >/dev/null
sy_wait_for "web down to 1 backend" 10 sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 1)" ||
  sy_fail "expected the watch to bring web down to 1 backend; status: $(sy_status_json)"
sy_expect_probe "20 connections to reach pod1 only" \
  "d['ok'] == 20 and list(d['backends']) == ['pod1']" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 20

# 5. The watch connections drop; a change made meanwhile arrives on the resumed watch,
#    without a relist.
fake_control drop
sy_write_slice "$MANIFEST_DIR" dns-def34 dns 5353 UDP "${POD_IPS[1]}" "${POD_IPS[2]}"
k apply -f "$MANIFEST_DIR/slice-dns-def34.yaml" >/dev/null
sy_wait_for "dns down to 2 backends after the drop" 10 \
  sy_status_check "$(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP 2)" ||
  sy_fail "expected the resumed watch to bring dns down to 2 backends; status: $(sy_status_json)"
relists=$(metric 'switchyard_k8s_relists_total{kind="EndpointSlice"}')
[[ $relists == 0 ]] || sy_fail "expected no relist after a dropped connection, got $relists"
restarts=$(metric 'switchyard_k8s_watch_restarts_total{kind="EndpointSlice"}')
((restarts >= 1)) || sy_fail "expected the EndpointSlice watch to have restarted, got $restarts"
sy_log "ok: dropped watches resumed without relist ($restarts restarts)"

# 6. The watches expire (410 Gone): the daemon relists and keeps following.
fake_control expire
k delete service web >/dev/null
sy_wait_for "web removed after the expiry" 10 sy_status_check "$(sy_svc_absent "$WEB_VIP")" ||
  sy_fail "expected web to be removed from the maps; status: $(sy_status_json)"
relists=$(metric 'switchyard_k8s_relists_total{kind="Service"}')
((relists >= 1)) || sy_fail "expected a Service relist after the expiry, got $relists"
k apply -f "$MANIFEST_DIR/svc-web.yaml" >/dev/null
sy_wait_for "web back with 1 backend" 10 sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 1)" ||
  sy_fail "expected web back with 1 backend; status: $(sy_status_json)"
sy_expect_probe "20 connections to reach pod1 again" \
  "d['ok'] == 20 and list(d['backends']) == ['pod1']" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 20
for kind in Service EndpointSlice; do
  last_sync=$(metric "switchyard_k8s_last_sync_timestamp_seconds{kind=\"$kind\"}")
  python3 -c "import sys; sys.exit(0 if float('$last_sync') > 0 else 1)" ||
    sy_fail "expected switchyard_k8s_last_sync_timestamp_seconds{kind=\"$kind\"} to be set, got $last_sync"
done

# 7. The next EndpointSlice event is cut off after 100 bytes, as by a faulty proxy, and
#    another change follows: the daemon counts a decode error, logs the kind and the
#    offset, and watches again from the last event it decoded, so both changes (the cut
#    one sent again) reach the maps within 1 s of the second; no relist.
decode_errors=$(metric 'switchyard_k8s_decode_errors_total{kind="EndpointSlice"}')
relists=$(metric 'switchyard_k8s_relists_total{kind="EndpointSlice"}')
fake_control "truncate?kind=EndpointSlice&keep=100"
sy_write_slice "$MANIFEST_DIR" dns-def34 dns 5353 UDP "${POD_IPS[@]}"
k apply -f "$MANIFEST_DIR/slice-dns-def34.yaml" >/dev/null
sy_write_slice "$MANIFEST_DIR" web-abc12 web 8080 TCP "${POD_IPS[0]}" "${POD_IPS[1]}"
k apply -f "$MANIFEST_DIR/slice-web-abc12.yaml" >/dev/null
sy_wait_for "dns at 3 backends (the cut event) and web at 2 (the change after it)" 1 \
  sy_status_check "$(both "$(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP 3)" "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 2)")" ||
  sy_fail "expected both changes in the maps within 1 s of the second; status: $(sy_status_json)"
after=$(metric 'switchyard_k8s_decode_errors_total{kind="EndpointSlice"}')
((after == decode_errors + 1)) ||
  sy_fail "expected one EndpointSlice decode error for the cut event, got $decode_errors -> $after"
after=$(metric 'switchyard_k8s_relists_total{kind="EndpointSlice"}')
((after == relists)) || sy_fail "expected the watch resumed without a relist, got $relists -> $after relists"
grep -E 'watch EndpointSlice: unable to decode an event from the watch stream: at offset [0-9]+' \
  "$DAEMON_LOG" >/dev/null ||
  sy_fail "expected a warning naming EndpointSlice and the offset in $DAEMON_LOG: $(tail -5 "$DAEMON_LOG")"
sy_log "ok: a cut watch event resumed at once: $(grep -o 'watch EndpointSlice: unable to decode.*' "$DAEMON_LOG" | tail -1)"
sy_expect_probe "20 connections to reach pod1 and pod2" \
  "d['ok'] == 20 and sorted(d['backends']) == ['pod1', 'pod2']" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 20
sy_log "PASS"
