#!/usr/bin/env bash
# tests/e2e/udp_terminate_test.sh: kube-proxy clears the conntrack entries of a UDP endpoint
# removed from a Service, so clients stop sending to it. With socket LB, a connected UDP
# socket holds the pod's address itself: when the pod leaves the EndpointSlice (its process
# still answering, as a pod that is no longer ready does), the daemon destroys that socket,
# the client (a resolver opening a new socket on ECONNABORTED, as sy-testpeer's
# --connected-udp probe does) gets a new one, and its new socket goes to a pod that is still
# an endpoint.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

sy_e2e_init udp-terminate
sy_cluster_up socklb

# The backend address:port the client's one connected UDP socket to the DNS ClusterIP holds
# (socket LB rewrote its destination at connect()), from `ss` in the client's namespace.
peer_of_probe() {
  sy_in_ns "$CLIENT_NS" ss -Hun state established 2>/dev/null | awk '{print $NF}' | grep ':5353$' | head -1
}

STOP=$WORK/stop-probe
sy_probe "$CLIENT_NS" --proto udp --connected-udp --target "$DNS_VIP:$DNS_PORT" --stop-file "$STOP" \
  --interval-ms 20 --timeout-ms 500 >"$WORK/probe.json" 2>"$WORK/probe.err" &
probe=$!
sy_track_pid "$probe"
sy_wait_for "the probe's connected socket" 5 peer_of_probe >/dev/null ||
  sy_fail "expected a connected UDP socket to a DNS backend in $CLIENT_NS; ss: $(sy_in_ns "$CLIENT_NS" ss -uan)"
first=$(peer_of_probe)
first_ip=${first%:5353}
sy_log "the probe's socket is connected to $first"

# The pod leaves the Service (it keeps running and answering).
keep=()
for ip in "${POD_IPS[@]}"; do
  [[ $ip == "$first_ip" ]] || keep+=("$ip")
done
((${#keep[@]} == 2)) || sy_fail "expected $first_ip to be one of the pods ${POD_IPS[*]}"
sy_write_slice "$MANIFEST_DIR" dns-def34 dns 5353 UDP "${keep[@]}"
sy_wait_for "the daemon to terminate the socket" 10 grep -q 'terminated 1 connected UDP sockets of 1 removed UDP backends' "$DAEMON_LOG" ||
  sy_fail "expected 'terminated 1 connected UDP sockets of 1 removed UDP backends'; log: $(cat "$DAEMON_LOG")"
moved() { local p; p=$(peer_of_probe) && [[ -n $p && $p != "$first" ]]; }
sy_wait_for "the probe's new socket" 5 moved ||
  sy_fail "expected the probe's new socket on another pod than $first, it is on '$(peer_of_probe)'"
second=$(peer_of_probe)
sy_log "the probe's new socket is connected to $second"
[[ " ${keep[*]} " == *" ${second%:5353} "* ]] || sy_fail "expected the new socket on one of the endpoints left (${keep[*]}), got $second"
sleep 1
touch "$STOP"
wait "$probe" || true
out=$(<"$WORK/probe.json")
sy_log "probe: $out"
sy_json_check "$out" "d['sockets'] == 2 and d['ok'] > 50 and d['failed'] <= 2 and d['peer_mismatch'] == 0" ||
  sy_fail "expected the probe to open exactly one new socket, lose at most the request in flight and keep the ClusterIP as peer, got $out"

metrics=$(sy_in_ns "$NODE_NS" curl -s --max-time 5 "http://$METRICS_ADDR/metrics")
grep -qx 'switchyard_udp_sockets_terminated_total 1' <<<"$metrics" ||
  sy_fail "expected switchyard_udp_sockets_terminated_total 1, got: $(grep udp_sockets_terminated <<<"$metrics")"
sy_log "PASS"
