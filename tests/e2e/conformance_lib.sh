# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the rows
# tests/e2e/conformance_lib.sh: the Service conformance table's cluster and helpers, on the
# multi-node cluster in a box (lib_multinode.sh). Two nodes with two pods each, a daemon per
# node (node-1 with socket LB, node-2 without: pods there go through the tc programs), the
# host-facing device eth0 on both, zones zone-a and zone-b, and an external client beyond the
# fabric. The objects come from manifest files (source files) or, with CF_SOURCE=apiserver, from
# sy-fake-apiserver through kubectl, which every daemon watches: rows write manifests with the
# lib_multinode writers and then call cf_apply / cf_remove, whatever the source.
#
#   cf_setup                      the cluster, the daemons, the Nodes; CF_SOURCE=files|apiserver
#   cf_apply FILE...              hands manifests to the source (files: already there)
#   cf_remove NAME...             deletes svc-NAME / slice-NAME objects from the source
#   cf_service NAME ARGS...       sy_mn_write_service + cf_apply
#   cf_slice NAME SVC FAMILY PORTS EP...   sy_mn_write_slice + cf_apply
#   cf_node I ZONE [TAINTS] [deleting]     sy_mn_write_node + cf_apply
#   cf_programmed EXPR [NODES="1 2"]       waits until every node's status satisfies EXPR
#   cf_has ADDR PORT PROTO N [TYPE]        a status expression: that frontend with N backends
#   cf_absent ADDR PORT PROTO              a status expression: no such frontend
#   cf_probe FROM ARGS...         sy_mn_probe, output in CF_OUT (never fails by itself)
#   cf_expect DESC EXPR FROM ARGS...       sy_mn_expect_probe
#   cf_metric I NAME              a metric of node I's /metrics (0 when absent)
# Must be sourced after lib.sh, lib_cluster.sh and lib_multinode.sh.

CF_SOURCE=${CF_SOURCE:-files}
CF_OUT=
readonly CF_FAKE_IP=198.18.0.250  # the fake API server, on the fabric bridge

cf_setup() {
  sy_mn_up 2 2
  sy_mn_start_servers 8080 5353
  # A second address of the external client, for source ranges that admit one and not the other.
  ip -n "$SY_MN_EXT_NS" addr add 198.18.0.101/24 dev eth0 || sy_fail "second ext address"
  local extra=""
  if [[ $CF_SOURCE == apiserver ]]; then
    cf__start_fake
    extra="source: {kind: apiserver, path: null, pollInterval: null}
clientConnection: {kubeconfig: $WORK/kubeconfig}"
  fi
  SY_MN_EXTRA_CONFIG=$extra
  cf_node 1 zone-a
  cf_node 2 zone-b
  # node-1 names its host-facing device; node-2 leaves bpf.hostDevices unset: the device
  # holding its NodePort address on a subnet is found.
  sy_mn_write_config 1 true "bpf: {hostDevices: [$SY_MN_FABRIC_DEV]}"
  sy_mn_write_config 2 false
  sy_mn_daemon_start 1
  sy_mn_daemon_start 2
  local i
  for i in 1 2; do
    grep -q "starting: source $CF_SOURCE," "${SY_MN_DAEMON_LOG[i]}" ||
      sy_wait_for "node-$i's daemon to start with source $CF_SOURCE" 10 grep -q "starting: source $CF_SOURCE," "${SY_MN_DAEMON_LOG[i]}" ||
      sy_fail "expected node-$i's daemon to run with source $CF_SOURCE: $(head -3 "${SY_MN_DAEMON_LOG[i]}")"
    sy_wait_for "node-$i's daemon to see its NodePort addresses" 15 \
      sy_mn_status_check "$i" "any(a['nodePort'] and a['address'] == '${SY_MN_NODE_IP4[i]}' for a in d['nodeAddresses'])" ||
      sy_fail "expected node-$i's daemon to serve NodePorts on ${SY_MN_NODE_IP4[i]}; status: $(sy_mn_status_json "$i" 2>&1)"
    sy_wait_for "node-$i's host-facing device to get the programs" 10 sy_mn_status_check "$i" \
      "sorted(h['direction'] for h in d['tc'] if h['device'] == '$SY_MN_FABRIC_DEV' and h['state'] == 'attached') == ['egress', 'ingress']" ||
      sy_fail "expected $SY_MN_FABRIC_DEV of node-$i attached; status: $(sy_mn_status_json "$i" 2>&1)"
  done
}

# sy-fake-apiserver in the fabric namespace, on an address of the bridge every node reaches.
cf__start_fake() {
  local fake=$SY_BUILD_DIR/tests/fake_apiserver/sy-fake-apiserver
  [[ -x $fake ]] || sy_fail "no sy-fake-apiserver at $fake"
  command -v kubectl >/dev/null || sy_fail "kubectl is not installed"
  ip -n "$SY_MN_FABRIC_NS" addr add "$CF_FAKE_IP/24" dev br0 || sy_fail "address for the fake API server"
  CF_TOKEN=cf-$RANDOM$RANDOM
  sy_in_ns "$SY_MN_FABRIC_NS" "$fake" --listen "$CF_FAKE_IP:6443" --pki-dir "$WORK/pki" --token "$CF_TOKEN" \
    --kubeconfig-out "$WORK/kubeconfig" >"$WORK/fake-apiserver.log" 2>&1 &
  sy_track_pid $!
  sy_wait_for "the fake API server to write its kubeconfig" 10 test -s "$WORK/kubeconfig" ||
    sy_fail "sy-fake-apiserver did not start: $(cat "$WORK/fake-apiserver.log")"
}

cf_kubectl() {
  sy_in_ns "$SY_MN_FABRIC_NS" kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kubectl-cache" \
    --request-timeout=10s "$@"
}

cf_apply() {
  [[ $CF_SOURCE == apiserver ]] || return 0
  local f out
  for f in "$@"; do
    out=$(cf_kubectl apply -f "$f" 2>&1) || sy_fail "kubectl apply -f $f: $out"
  done
}

# cf_remove NAME...: the Service svc-NAME.yaml or slice slice-NAME.yaml (whichever exists).
cf_remove() {
  local name f out
  for name in "$@"; do
    for f in "$SY_MN_MANIFEST_DIR/svc-$name.yaml" "$SY_MN_MANIFEST_DIR/slice-$name.yaml"; do
      [[ -e $f ]] || continue
      if [[ $CF_SOURCE == apiserver ]]; then
        out=$(cf_kubectl delete -f "$f" 2>&1) || sy_fail "kubectl delete -f $f: $out"
      fi
      rm -f "$f"
    done
  done
}

cf_service() {
  sy_mn_write_service "$@"
  cf_apply "$SY_MN_MANIFEST_DIR/svc-$1.yaml"
}

cf_slice() {
  sy_mn_write_slice "$@"
  cf_apply "$SY_MN_MANIFEST_DIR/slice-$1.yaml"
}

cf_node() {
  sy_mn_write_node "$@"
  cf_apply "$SY_MN_MANIFEST_DIR/node-node-$1.yaml"
}

# cf_has ADDR PORT PROTO N [TYPE]: a status expression (Python, d = status JSON).
cf_has() {
  local addr=$1 port=$2 proto=$3 n=$4 type=${5:-}
  echo "any(s['address'] == '$addr' and s['port'] == $port and s['protocol'] == '$proto' and \
s['scope'] == 'external' and len(s['backends']) == $n${type:+ and s['type'] == '$type'} for s in d['services'])"
}

cf_absent() {
  echo "all(not (s['address'] == '$1' and s['port'] == $2 and s['protocol'] == '$3') for s in d['services'])"
}

cf_programmed() {
  local expr=$1 nodes=${2:-1 2} i
  for i in $nodes; do
    sy_mn_wait_programmed "$i" "$expr"
  done
}

cf_probe() {
  CF_OUT=$(sy_mn_probe "$@") || true
}

cf_expect() {
  sy_mn_expect_probe "$@"
  CF_OUT=$SY_MN_PROBE_OUT
}

# cf_expect_spread DESC "B1 B2..." SOURCES_EXPR FROM PROBE_ARGS...: for flows that stick to one
# backend per socket (UDP through conntrack, or affinity): up to 30 probes, a new socket each,
# two requests each; each probe answered twice by one backend without peer mismatch and with
# SOURCES_EXPR true (Python, d = that probe's JSON, b = the backend that answered), and between
# them the probes reach exactly the backends listed.
cf_expect_spread() {
  local desc=$1 want=$2 sources=$3 run backend
  shift 3
  local -A seen=()
  local n=0 w
  for w in $want; do n=$((n + 1)); done
  for ((run = 1; run <= 30 && ${#seen[@]} < n; run++)); do
    cf_expect "$desc: socket $run answered twice by one backend" \
      "d['sent'] == 2 and d['ok'] == 2 and d['peer_mismatch'] == 0 and len(d['backends']) == 1 and \
(lambda b: $sources)(list(d['backends'])[0])" "$@" --count 2 2>/dev/null
    backend=$(sy_json "$CF_OUT" 'list(d["backends"])[0]')
    [[ " $want " == *" $backend "* ]] || sy_fail "expected $desc: $backend answered, not one of: $want"
    seen[$backend]=1
  done
  ((${#seen[@]} == n)) || sy_fail "expected $desc: 30 sockets to reach $want between them, reached only: ${!seen[*]}"
  sy_log "ok: $desc: reached ${!seen[*]}"
}

cf_metric() {
  sy_in_ns "${SY_MN_NODE_NS[$1]}" curl -s "http://$SY_MN_METRICS_ADDR/metrics" |
    awk -v m="$2" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}
