#!/usr/bin/env bash
# tests/e2e/nodeport_bulk_test.sh [MODE...]: bulk TCP through a NodePort on the multi-node
# cluster in a box. ext sends a bounded 20 MB with iperf3 to node-1's NodePort (IPv4 and
# IPv6), and receives 20 MB from the pod (iperf3 -R); the backend is
# one pod on node-2 (remote: node-1 SNATs or DSRs) and, as a second service, one pod on node-1
# (local). Modes: snat dsr-opt dsr-ipip (default: all three). Each mode in its own cluster, so
# nothing of one mode's state is left for the next.
#
# Short request/answer connections pass in every mode (the conformance rows check them); a bulk
# transfer also needs full-size segments, GSO/GRO super-packets and a long-lived conntrack entry
# to survive the NAT in both directions. A stalled transfer (iperf3 times out, or the receiver
# counts less than 90 % of what was sent: more than 256 kB socket buffers can hold in flight)
# fails the test with the sender's and the receiver's figures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"
# shellcheck source=tests/e2e/lib_multinode.sh
source "$HERE/lib_multinode.sh"

modes=("$@")
((${#modes[@]} > 0)) || modes=(snat dsr-opt dsr-ipip)
for m in "${modes[@]}"; do
  case $m in snat | dsr-opt | dsr-ipip) ;; *)
    echo "nodeport_bulk_test.sh: mode '$m' must be snat, dsr-opt or dsr-ipip" >&2
    exit 2
    ;;
  esac
done
command -v iperf3 >/dev/null || {
  echo "nodeport_bulk_test.sh: iperf3 is not installed (scripts/install-deps.sh)" >&2
  exit 1
}

readonly BULK_BYTES=20M
readonly IPERF_PORT=5201
readonly NP_REMOTE=30401 NP_LOCAL=30402

# bulk_run DESC TARGET PORT [-R]: 20 MB from ext (with -R: from the pod to ext, the reply
# direction), bounded in time; fails with iperf3's figures.
bulk_run() {
  local desc=$1 target=$2 port=$3 out rc=0
  out=$(timeout 30 nsenter --net="/run/netns/$SY_MN_EXT_NS" iperf3 -c "$target" -p "$port" -n "$BULK_BYTES" \
    -w 256K --connect-timeout 3000 -J "${@:4}" 2>&1) || rc=$?
  local verdict
  verdict=$(python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    print("no JSON from iperf3: " + sys.argv[1][:300]); sys.exit(0)
if "error" in d:
    print("iperf3: " + d["error"]); sys.exit(0)
s, r = d["end"]["sum_sent"], d["end"]["sum_received"]
# iperf3 -n ends the test when the sender has written all: the receiving side stops counting
# then, short of what was still in flight. The 256 kB socket buffers (-w) bound that to well
# under 10 %; a stalled flow never gets near (the sender blocks, timeout ends iperf3).
ok = s["bytes"] >= 20 * 1024 * 1024 and r["bytes"] >= 0.9 * s["bytes"]
print(("ok " if ok else "") + "sent %d B, received %d B, %d retransmits, %.2f Gb/s" % (
    s["bytes"], r["bytes"], s.get("retransmits", -1), r["bits_per_second"] / 1e9))
' "$out")
  if ((rc != 0)) || [[ $verdict != ok* ]]; then
    sy_log "node-1 counters: $(sy_mn_status_json 1 | python3 -c 'import json,sys; print({k: v for k, v in json.load(sys.stdin)["counters"].items() if v})')"
    sy_fail "expected $desc to carry $BULK_BYTES (iperf3 exit $rc): $verdict"
  fi
  sy_log "ok: $desc: ${verdict#ok }"
}

run_mode() {
  local mode=$1 extra=""
  case $mode in
    snat) extra="loadBalancer: {mode: snat}" ;;
    dsr-opt) extra="loadBalancer: {mode: dsr, dsrDispatch: opt}" ;;
    dsr-ipip) extra="loadBalancer: {mode: dsr, dsrDispatch: ipip}" ;;
  esac
  sy_mn_up 2 1
  sy__spawn "$WORK/iperf-n2p1" ip netns exec "${SY_MN_POD_NS[2,1]}" iperf3 -s -p "$IPERF_PORT"
  sy__spawn "$WORK/iperf-n1p1" ip netns exec "${SY_MN_POD_NS[1,1]}" iperf3 -s -p "$IPERF_PORT"
  sy_mn_write_node 1 zone-a
  sy_mn_write_node 2 zone-b
  sy_mn_write_service bulkr clusterIP=198.19.4.1,2001:db8:c::4:1 type=NodePort port=,5201,5201,TCP,$NP_REMOTE
  sy_mn_write_slice bulkr-4 bulkr IPv4 :5201/TCP n2p1
  sy_mn_write_slice bulkr-6 bulkr IPv6 :5201/TCP n2p1
  sy_mn_write_service bulkl clusterIP=198.19.4.2,2001:db8:c::4:2 type=NodePort port=,5201,5201,TCP,$NP_LOCAL
  sy_mn_write_slice bulkl-4 bulkl IPv4 :5201/TCP n1p1
  sy_mn_write_slice bulkl-6 bulkl IPv6 :5201/TCP n1p1
  sy_mn_write_config 1 false "bpf: {hostDevices: [$SY_MN_FABRIC_DEV]}
$extra"
  sy_mn_write_config 2 false "bpf: {hostDevices: [$SY_MN_FABRIC_DEV]}
$extra"
  sy_mn_daemon_start 1
  sy_mn_daemon_start 2
  local i
  for i in 1 2; do
    sy_mn_wait_programmed "$i" "$(sy_svc_has 0.0.0.0 $NP_REMOTE TCP 1) and $(sy_svc_has 0.0.0.0 $NP_LOCAL TCP 1) and \
$(sy_svc_has :: $NP_REMOTE TCP 1) and $(sy_svc_has :: $NP_LOCAL TCP 1)" 20
    sy_wait_for "node-$i's host-facing device to get the programs" 10 sy_mn_status_check "$i" \
      "sorted(h['direction'] for h in d['tc'] if h['device'] == '$SY_MN_FABRIC_DEV' and h['state'] == 'attached') == ['egress', 'ingress']" ||
      sy_fail "expected $SY_MN_FABRIC_DEV of node-$i attached; status: $(sy_mn_status_json "$i" 2>&1)"
  done
  local node
  for node in "${SY_MN_NODE_IP4[1]}" "${SY_MN_NODE_IP6[1]}"; do
    bulk_run "$mode: ext -> $node:$NP_REMOTE -> pod on node-2" "$node" $NP_REMOTE
    bulk_run "$mode: pod on node-2 -> ext through $node:$NP_REMOTE" "$node" $NP_REMOTE -R
    bulk_run "$mode: ext -> $node:$NP_LOCAL -> pod on node-1" "$node" $NP_LOCAL
    bulk_run "$mode: pod on node-1 -> ext through $node:$NP_LOCAL" "$node" $NP_LOCAL -R
  done
}

if ((${#modes[@]} == 1)); then
  sy_e2e_init "npbulk-${modes[0]}"
  run_mode "${modes[0]}"
  sy_log "PASS"
  exit 0
fi
# Several modes: one child run per mode, each with its own cluster and cleanup.
rc=0
for m in "${modes[@]}"; do
  bash "$0" "$m" || rc=1
done
exit "$rc"
