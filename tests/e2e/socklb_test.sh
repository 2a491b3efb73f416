#!/usr/bin/env bash
# tests/e2e/socklb_test.sh: socket LB (socketLB: true). TCP, unconnected UDP and connected UDP
# from the client to a ClusterIP reach every one of 3 backends, replies and getpeername show
# the ClusterIP, and the translation happens in the cgroup hooks, not in tc.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

sy_e2e_init socklb
sy_cluster_up socklb

N=60
sy_expect_probe "$N TCP connections to $WEB_VIP:$WEB_PORT to reach pod1..pod3 with the ClusterIP as peer" \
  "$(sy_all_pods_expr $N)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count $N
sy_expect_probe "$N unconnected UDP requests to $DNS_VIP:$DNS_PORT to reach pod1..pod3, replies from the ClusterIP" \
  "$(sy_all_pods_expr $N)" --proto udp --target "$DNS_VIP:$DNS_PORT" --count $N
# A connected UDP socket picks its backend once, at connect().
sy_expect_pods_by_socket "connected UDP to $DNS_VIP:$DNS_PORT" \
  --proto udp --connected-udp --target "$DNS_VIP:$DNS_PORT"

xlate=$(sy_counter sock_xlate)
revnat=$(sy_counter sock_revnat)
dnat=$(sy_counter tc_dnat_new)
sy_log "counters: sock_xlate=$xlate sock_revnat=$revnat tc_dnat_new=$dnat"
# Every TCP connect, every connected-UDP connect and every unconnected sendmsg is translated.
((xlate >= 2 * N + 3)) || sy_fail "expected sock_xlate >= $((2 * N + 3)) after $((2 * N)) TCP/UDP requests and $SY_SOCKETS_USED connected UDP sockets, got $xlate"
((revnat > 0)) || sy_fail "expected sock_revnat > 0 after UDP replies through recvmsg, got $revnat"
((dnat == 0)) || sy_fail "expected tc_dnat_new == 0 with socket LB on (no packet should need tc DNAT), got $dnat"
sy_assert "the socket LB programs attached to the test cgroup $CG" \
  grep -q 'cgroup_inet4_connect\|connect4' <(bpftool cgroup show "$CG")
sy_log "PASS"
