# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the test scripts
# tests/e2e/lib_cluster.sh: the standard cluster of the *_test.sh scripts, on top of lib.sh.
#
#   source lib.sh; source lib_cluster.sh; sy_e2e_init NAME
#   sy_cluster_up MODE      MODE = socklb (socketLB true) or tc (socketLB false): 3 backend pods,
#                           Service web (TCP $WEB_VIP:80 -> 8080) and dns (UDP $DNS_VIP:53 ->
#                           5353) with all 3 pods ready, the daemon running and the maps
#                           programmed.
#   sy_cluster_start MODE   the same on a topology that is already up (sy_topology_up 3)
#   sy_counter NAME         one datapath counter from `switchyard status -o json`
#   sy_status_check EXPR    EXPR (Python, d = status JSON) holds
#   sy_expect_probe DESC EXPR PROBE_ARGS...   runs sy_probe from the client; fails the test
#                           with DESC and the probe's output unless EXPR (d = probe JSON) holds
# Must be sourced after lib.sh.

WEB_VIP=198.19.0.10
DNS_VIP=198.19.0.11
WEB_PORT=80
DNS_PORT=53
CONFIG=

# sy_tune_config FILE: faster manifest polling than the 500 ms default, so the tests react
# quickly to file edits.
sy_tune_config() {
  local file=$1
  sed -i 's/^  kind: files$/  kind: files\n  pollInterval: 100ms/' "$file"
  grep -q 'pollInterval: 100ms' "$file" || sy_fail "could not add source.pollInterval to $file"
}

sy_status_check() {
  local out
  out=$(sy_status_json 2>/dev/null) || return 1
  sy_json_check "$out" "$1"
}

# sy_counter NAME: prints the datapath counter NAME (fails the test when status has none).
sy_counter() {
  local out value
  out=$(sy_status_json) || sy_fail "switchyard status -o json failed"
  value=$(sy_json "$out" "d['counters']['$1']") || sy_fail "status has no counter $1: $out"
  echo "$value"
}

# The status expression for "service VIP:PORT/PROTO has N backends".
sy_svc_has() {
  local vip=$1 port=$2 proto=$3 n=$4
  echo "any(s['address'] == '$vip' and s['port'] == $port and s['protocol'] == '$proto' and \
len(s['backends']) == $n for s in d['services'])"
}

sy_svc_absent() {
  echo "all(s['address'] != '$1' for s in d['services'])"
}

# sy_expect_probe DESC EXPR PROBE_ARGS...: prints the probe's JSON on success.
sy_expect_probe() {
  local desc=$1 expr=$2
  shift 2
  local out
  out=$(sy_probe "$CLIENT_NS" "$@") || true
  [[ -n $out ]] || sy_fail "expected $desc: the probe printed nothing (args: $*)"
  if ! sy_json_check "$out" "$expr"; then
    sy_fail "expected $desc; probe $* answered $out"
  fi
  sy_log "ok: $desc: $out"
  SY_PROBE_OUT=$out
}

# The expression for "all COUNT requests answered, by each of pod1..pod3, with the VIP as peer".
sy_all_pods_expr() {
  local count=$1
  echo "d['sent'] == $count and d['ok'] == $count and d['failed'] == 0 and \
d['peer_mismatch'] == 0 and sorted(d['backends']) == ['pod1', 'pod2', 'pod3']"
}

# sy_write_all_manifests: Service web and dns and their slices, every pod ready.
sy_write_all_manifests() {
  sy_write_service "$MANIFEST_DIR" web "$WEB_VIP" "$WEB_PORT" 8080 TCP
  sy_write_slice "$MANIFEST_DIR" web-abc12 web 8080 TCP "${POD_IPS[@]}"
  sy_write_service "$MANIFEST_DIR" dns "$DNS_VIP" "$DNS_PORT" 5353 UDP
  sy_write_slice "$MANIFEST_DIR" dns-def34 dns 5353 UDP "${POD_IPS[@]}"
}

# sy_cluster_up MODE: see the header.
sy_cluster_up() {
  sy_topology_up 3
  sy_cluster_start "$1"
}

# sy_cluster_start MODE: sy_cluster_up on a topology that is already up.
sy_cluster_start() {
  local mode=$1 socket_lb
  case $mode in
    socklb) socket_lb=true ;;
    tc) socket_lb=false ;;
    *) sy_fail "sy_cluster_up: mode '$mode' must be socklb or tc" ;;
  esac
  sy_start_backends 8080 5353
  CONFIG=$WORK/config.yaml
  sy_write_config "$CONFIG" "$socket_lb"
  sy_tune_config "$CONFIG"
  sy_write_all_manifests
  sy_daemon_start "$CONFIG"
  sy_wait_for_programmed 3
}

# sy_wait_for_programmed N: both services are in the maps with N backends each.
sy_wait_for_programmed() {
  local n=$1
  sy_wait_for "web and dns programmed with $n backends each" 15 sy_status_check \
    "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP "$n") and $(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP "$n")" ||
    sy_fail "expected the daemon to program web ($WEB_VIP:$WEB_PORT/TCP) and dns ($DNS_VIP:$DNS_PORT/UDP) \
with $n backends each within 15 s; status: $(sy_status_json 2>&1)"
}

# sy_expect_pods_by_socket DESC PROBE_ARGS...: for traffic that sticks to one backend per socket
# (connected UDP; any UDP through tc conntrack): up to 40 probes, a new socket each, two requests
# each; every probe must get both answers from one pod with no peer mismatch, and between them
# the probes must reach pod1..pod3.
sy_expect_pods_by_socket() {
  local desc=$1 run backend
  shift
  local -A seen=()
  for ((run = 1; run <= 40 && ${#seen[@]} < 3; run++)); do
    sy_expect_probe "$desc: socket $run to get both answers from one pod, peer = ClusterIP" \
      "d['sent'] == 2 and d['ok'] == 2 and d['peer_mismatch'] == 0 and len(d['backends']) == 1" \
      "$@" --count 2 2>/dev/null
    backend=$(sy_json "$SY_PROBE_OUT" 'list(d["backends"])[0]')
    seen[$backend]=1
  done
  ((${#seen[@]} == 3)) || sy_fail "expected $desc: 40 sockets to reach pod1..pod3 between them, reached only: ${!seen[*]}"
  SY_SOCKETS_USED=$((run - 1))
  sy_log "ok: $desc: $SY_SOCKETS_USED sockets reached ${!seen[*]}"
}
