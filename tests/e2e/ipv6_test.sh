#!/usr/bin/env bash
# tests/e2e/ipv6_test.sh MODE: an IPv6 ClusterIP (2001:db8:ff::10) over TCP and UDP, through
# the socket hooks (MODE socklb: connect6/sendmsg6/recvmsg6/getpeername6) or the tc path
# (MODE tc: IPv6 DNAT and reverse NAT with its checksum updates). Every backend is reached
# and the client only ever sees the ClusterIP as its peer.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

MODE=${1:-socklb}
case $MODE in
  socklb) SOCKET_LB=true ;;
  tc) SOCKET_LB=false ;;
  *) echo "usage: $0 socklb|tc" >&2; exit 2 ;;
esac

sy_e2e_init "ipv6-$MODE"
sy_topology_up 3

# IPv6 beside the IPv4 topology, with the same scheme: the node side of every veth holds
# 2001:db8::1/128, each pod one /128 and a default route through it.
NODE6=2001:db8::1
CLIENT6=2001:db8:1::2
POD6=(2001:db8:16::2 2001:db8:16::3 2001:db8:16::4)
ip netns exec "$NODE_NS" sysctl -qw net.ipv6.conf.all.forwarding=1
add_ipv6() {
  local ns=$1 dev=$2 addr=$3
  ip -n "$NODE_NS" -6 addr add "$NODE6/128" dev "$dev" nodad
  ip -n "$NODE_NS" -6 route add "$addr/128" dev "$dev"
  ip -n "$ns" -6 addr add "$addr/128" dev eth0 nodad
  ip -n "$ns" -6 route add "$NODE6" dev eth0
  ip -n "$ns" -6 route add default via "$NODE6" dev eth0
}
add_ipv6 "$CLIENT_NS" veth-c "$CLIENT6"
for i in 0 1 2; do
  add_ipv6 "${POD_NS[i]}" "veth-p$((i + 1))" "${POD6[i]}"
done
sy_start_backends 8080 5353

# The pods answer over IPv6 before switchyard is involved (or the test proves nothing). The
# first packets wait for neighbour discovery: let one probe get through first.
for i in 0 1 2; do
  sy_wait_for "pod$((i + 1)) reachable over IPv6" 10 \
    sy_probe "$CLIENT_NS" --proto tcp --target "[${POD6[i]}]:8080" --count 1 >/dev/null ||
    sy_fail "expected pod$((i + 1)) to answer at [${POD6[i]}]:8080 directly"
done
sy_expect_probe "direct IPv6 TCP to pod1" \
  "d['ok'] == 5 and d['backends'] == {'pod1': 5}" --proto tcp --target "[${POD6[0]}]:8080" --count 5

VIP6=2001:db8:ff::10
DNS6=2001:db8:ff::53
sy_write_config "$WORK/switchyard.yaml" "$SOCKET_LB"
sy_write_service "$MANIFEST_DIR" web6 "$VIP6" 80 8080 TCP
sy_write_slice "$MANIFEST_DIR" web6-abc12 web6 8080 TCP "${POD6[@]}"
sy_write_service "$MANIFEST_DIR" dns6 "$DNS6" 53 5353 UDP
sy_write_slice "$MANIFEST_DIR" dns6-abc12 dns6 5353 UDP "${POD6[@]}"
sy_daemon_start "$WORK/switchyard.yaml"
sy_wait_for "both IPv6 services with 3 backends in status" 20 \
  sy_status_check "$(sy_svc_has "$VIP6" 80 TCP 3) and $(sy_svc_has "$DNS6" 53 UDP 3)" ||
  sy_fail "expected the IPv6 services to be programmed; status: $(sy_status_json 2>&1)"

N=60
sy_expect_probe "$N IPv6 TCP connections to [$VIP6]:80 to reach pod1..pod3 with the ClusterIP as peer" \
  "$(sy_all_pods_expr $N)" --proto tcp --target "[$VIP6]:80" --count $N
sy_expect_probe "IPv6 UDP to [$DNS6]:53 answered from the ClusterIP" \
  "d['ok'] == 20 and d['failed'] == 0 and d['peer_mismatch'] == 0" --proto udp --target "[$DNS6]:53" --count 20

if [[ $MODE == socklb ]]; then
  xlate=$(sy_counter sock_xlate)
  ((xlate >= N)) || sy_fail "expected sock_xlate >= $N with socket LB on, got $xlate"
  sy_assert "the IPv6 socket hooks attached to $CG" grep -q 'connect6' <(bpftool cgroup show "$CG")
else
  dnat=$(sy_counter tc_dnat_new)
  revnat=$(sy_counter tc_revnat)
  csum=$(sy_counter tc_csum_error)
  ((dnat >= N)) || sy_fail "expected tc_dnat_new >= $N on the tc path, got $dnat"
  ((revnat > 0)) || sy_fail "expected tc_revnat > 0 on the tc path, got $revnat"
  ((csum == 0)) || sy_fail "expected no checksum errors, got $csum"
  ((  $(sy_counter sock_xlate) == 0 )) || sy_fail "expected no socket LB translation with socketLB false"
fi
sy_log "PASS"
