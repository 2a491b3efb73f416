#!/usr/bin/env bash
# tests/e2e/endpoints_test.sh [socklb|tc]: EndpointSlice and Service changes reach the dataplane.
#   1. pod3 leaves the EndpointSlices: new connections never reach it;
#   2. the web Service keeps no endpoint (endpoints: null): connections fail (ECONNREFUSED from
#      the socket hook, a drop in tc) and the no-backend counter rises;
#   3. the web Service file goes: its entries leave the maps, its backends too, the ClusterIP
#      is no longer translated, and the other Service (dns) keeps working.
# Without an argument, runs both modes, one after the other, each in its own topology.
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

sy_e2e_init "endpoints-$MODE"
sy_cluster_up "$MODE"
if [[ $MODE == socklb ]]; then no_backend=sock_no_backend; xlate=sock_xlate; else no_backend=tc_no_backend; xlate=tc_dnat_new; fi

sy_expect_probe "30 TCP connections to $WEB_VIP:$WEB_PORT to reach pod1..pod3 before any change" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30
status=$(sy_status_json)
sy_json_check "$status" "d['backendCount'] == 6" || sy_fail "expected backendCount 6 (3 pods x 2 services), status: $status"

# --- 1. pod3 leaves both slices ------------------------------------------------------------
pod3_ip=${POD_IPS[2]}
sy_write_slice "$MANIFEST_DIR" web-abc12 web 8080 TCP "${POD_IPS[0]}" "${POD_IPS[1]}"
sy_write_slice "$MANIFEST_DIR" dns-def34 dns 5353 UDP "${POD_IPS[0]}" "${POD_IPS[1]}"
sy_wait_for "web and dns to drop pod3 ($pod3_ip)" 15 sy_status_check \
  "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 2) and $(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP 2) and \
all(b['address'] != '$pod3_ip' for s in d['services'] for b in s['backends']) and d['backendCount'] == 4" ||
  sy_fail "expected status to show web and dns with 2 backends, none of them $pod3_ip, and backendCount 4; got $(sy_status_json)"

sy_expect_probe "60 new TCP connections after pod3 left the slice to reach only pod1 and pod2" \
  "d['ok'] == 60 and d['peer_mismatch'] == 0 and sorted(d['backends']) == ['pod1', 'pod2']" \
  --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 60
for ((i = 1; i <= 3; i++)); do
  sy_expect_probe "UDP socket $i after pod3 left the slice to reach only pod1 or pod2" \
    "d['ok'] == 5 and d['peer_mismatch'] == 0 and 'pod3' not in d['backends']" \
    --proto udp --target "$DNS_VIP:$DNS_PORT" --count 5
done

# --- 2. no endpoint at all -----------------------------------------------------------------
sy_write_slice "$MANIFEST_DIR" web-abc12 web 8080 TCP
sy_wait_for "web to keep its frontend with 0 backends" 15 sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 0)" ||
  sy_fail "expected status to show web with no backend after its slice went empty; got $(sy_status_json)"
before=$(sy_counter "$no_backend")
if [[ $MODE == socklb ]]; then
  sy_expect_probe "connect() to $WEB_VIP:$WEB_PORT without endpoints to fail with ECONNREFUSED from the socket hook" \
    "d['ok'] == 0 and d['errors'] == {'ECONNREFUSED': 5}" \
    --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 5 --timeout-ms 500
else
  sy_expect_probe "TCP to $WEB_VIP:$WEB_PORT without endpoints to fail (tc drops it)" \
    "d['ok'] == 0 and d['failed'] == 3" \
    --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 3 --timeout-ms 500
fi
after=$(sy_counter "$no_backend")
((after > before)) || sy_fail "expected $no_backend to rise after connections to a Service without endpoints, stayed at $before -> $after"
sy_log "ok: $no_backend $before -> $after"

# --- 3. the Service goes -------------------------------------------------------------------
sy_remove_service "$MANIFEST_DIR" web
sy_remove_slice "$MANIFEST_DIR" web-abc12
sy_wait_for "web ($WEB_VIP) to leave the maps" 15 sy_status_check \
  "$(sy_svc_absent "$WEB_VIP") and $(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP 2) and d['backendCount'] == 2" ||
  sy_fail "expected status without $WEB_VIP, dns still with 2 backends, and backendCount 2 after the web Service file was removed; got $(sy_status_json)"

status=$(sy_status_json)
x_before=$(sy_json "$status" "d['counters']['$xlate']")
nb_before=$(sy_json "$status" "d['counters']['$no_backend']")
# Nothing owns the ClusterIP now: the node has no route for it, so the connection fails
# without ever reaching a pod, and no switchyard program touches it.
sy_expect_probe "TCP to the removed ClusterIP $WEB_VIP:$WEB_PORT not to be translated to any pod" \
  "d['ok'] == 0 and d['failed'] == 3 and d['backends'] == {}" \
  --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 3 --timeout-ms 300
status=$(sy_status_json)
x_after=$(sy_json "$status" "d['counters']['$xlate']")
nb_after=$(sy_json "$status" "d['counters']['$no_backend']")
((x_after == x_before && nb_after == nb_before)) ||
  sy_fail "expected traffic to the removed ClusterIP to be left alone, but $xlate went $x_before -> $x_after and $no_backend $nb_before -> $nb_after"

for ((i = 1; i <= 2; i++)); do
  sy_expect_probe "dns ($DNS_VIP) to keep answering from pod1/pod2 after web was removed (socket $i)" \
    "d['ok'] == 5 and d['peer_mismatch'] == 0 and set(d['backends']) <= {'pod1', 'pod2'}" \
    --proto udp --target "$DNS_VIP:$DNS_PORT" --count 5
done
sy_log "PASS"
