#!/usr/bin/env bash
# tests/e2e/tc_test.sh: tc ClusterIP DNAT (socketLB: false). A new TCP connection per request
# reaches every backend, UDP replies come back from the ClusterIP (reverse NAT), the work is
# done by the tc programs on veth-c, and no socket-LB program is attached to the cgroup.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

sy_e2e_init tc
sy_cluster_up tc

cg_progs=$(bpftool cgroup show "$CG")
[[ -z $cg_progs ]] || sy_fail "expected no program on cgroup $CG with socketLB false, bpftool cgroup show: $cg_progs"
tc_in=$(sy_in_ns "$NODE_NS" tc filter show dev veth-c ingress)
grep -q 'handle 0x5359' <<<"$tc_in" ||
  sy_fail "expected a switchyard tc filter (handle 0x5359) on veth-c ingress, got: $tc_in"

N=60
sy_expect_probe "$N TCP connections to $WEB_VIP:$WEB_PORT via tc DNAT to reach pod1..pod3, replies from the ClusterIP" \
  "$(sy_all_pods_expr $N)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count $N
# tc conntrack keeps a UDP flow (one socket, one source port) on one backend; the probe's
# sockets each get a new source port.
sy_expect_pods_by_socket "UDP via tc DNAT to $DNS_VIP:$DNS_PORT" --proto udp --target "$DNS_VIP:$DNS_PORT"
sy_expect_pods_by_socket "connected UDP via tc DNAT to $DNS_VIP:$DNS_PORT" \
  --proto udp --connected-udp --target "$DNS_VIP:$DNS_PORT"

status=$(sy_status_json) || sy_fail "switchyard status -o json failed"
xlate=$(sy_json "$status" "d['counters']['sock_xlate']")
dnat=$(sy_json "$status" "d['counters']['tc_dnat_new']")
ct=$(sy_json "$status" "d['counters']['tc_dnat_ct']")
revnat=$(sy_json "$status" "d['counters']['tc_revnat']")
csum=$(sy_json "$status" "d['counters']['tc_csum_error']")
sy_log "counters: tc_dnat_new=$dnat tc_dnat_ct=$ct tc_revnat=$revnat sock_xlate=$xlate tc_csum_error=$csum"
# One new flow per TCP connection and per UDP request from a fresh source port at least.
((dnat >= N)) || sy_fail "expected tc_dnat_new >= $N after $N new TCP connections through tc, got $dnat"
((revnat > 0)) || sy_fail "expected tc_revnat > 0 after replies came back through tc, got $revnat"
((xlate == 0)) || sy_fail "expected sock_xlate == 0 with socketLB false, got $xlate"
((csum == 0)) || sy_fail "expected tc_csum_error == 0, got $csum"
sy_log "PASS"
