#!/usr/bin/env bash
# tests/e2e/xdp_test.sh [native|best-effort]: the XDP fast path (issue 11 item 4) with real
# traffic on the multi-node cluster in a box. node-1 runs loadBalancer.acceleration (default
# best-effort; its fabric device eth0 is a veth, which has native XDP) and a denyCIDRs list
# naming ext's second address; node-2 runs without. ext -> node-1's NodePort -> the pod on
# node-2 (SNAT) over TCP and UDP, IPv4 and IPv6: every request is answered, the pod sees
# node-1's address, and node-1's XDP counters show that the established packets of those flows
# (both directions) were rewritten and sent by XDP, not tc; a DSR TCP NodePort likewise (the
# pod sees ext's address; XDP forwards the packets after the SYN); ext's denied address gets no
# answer and moves xdp_deny. switchyard status shows the acceleration; `switchyard cleanup`
# leaves no XDP program on eth0.
#
# A veth delivers what its XDP program sends (XDP_TX) only when its peer runs XDP too: the
# peer of node-1's eth0 (n1, in the fabric namespace) gets a program that passes everything
# (xdp_peer_pass.bpf.c). The senders compute their L4 checksums in full, as a wire's frames
# have them (see below, and docs/acceleration.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"
# shellcheck source=tests/e2e/lib_multinode.sh
source "$HERE/lib_multinode.sh"

MODE=${1:-best-effort}
[[ $MODE == native || $MODE == best-effort ]] || { echo "usage: xdp_test.sh [native|best-effort]" >&2; exit 2; }

sy_e2e_init "xdp-$MODE"
sy_mn_up 2 1
sy_mn_start_servers 8080 5353
EXT4=$SY_MN_EXT_IP4
N1=${SY_MN_NODE_IP4[1]}
N16=${SY_MN_NODE_IP6[1]}
DENIED=198.18.0.101
ip -n "$SY_MN_EXT_NS" addr add "$DENIED/24" dev eth0 || sy_fail "second ext address"

# An ethtool feature switch of a device in a namespace (SIOCETHTOOL; no ethtool binary here).
ETHTOOL_STXCSUM=0x17
ethtool_set() {
  local ns=$1 dev=$2 cmd=$3 on=$4
  ip netns exec "$ns" "${SY_MN_PYTHON:-python3}" - "$dev" "$cmd" "$on" <<'PY'
import array, fcntl, socket, struct, sys
val = array.array("I", [int(sys.argv[2], 0), int(sys.argv[3])])
addr, _ = val.buffer_info()
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8946, struct.pack("16sP", sys.argv[1].encode(), addr))
PY
}
PASS_OBJ=$SY_BUILD_DIR/bpf_gen/xdp_peer_pass.bpf.o
[[ -f $PASS_OBJ ]] || sy_fail "no $PASS_OBJ (build target sy_e2e_bpf_objects)"
ip -n "$SY_MN_FABRIC_NS" link set dev n1 xdpdrv obj "$PASS_OBJ" sec xdp || sy_fail "XDP pass program on n1"
# Frames from a wire carry complete L4 checksums; a local sender on a veth hands on a partial
# one (CHECKSUM_PARTIAL), which XDP cannot see. The senders here (ext, the pod on node-2)
# compute them in full, as a NIC's peer would.
ethtool_set "$SY_MN_EXT_NS" eth0 $ETHTOOL_STXCSUM 0 || sy_fail "checksum offload off on ext's eth0"
ethtool_set "${SY_MN_POD_NS[2,1]}" eth0 $ETHTOOL_STXCSUM 0 || sy_fail "checksum offload off on n2p1's eth0"

sy_mn_write_node 1 zone-a
sy_mn_write_node 2 zone-b
sy_mn_write_config 1 false "bpf: {hostDevices: [$SY_MN_FABRIC_DEV]}
loadBalancer: {acceleration: $MODE, denyCIDRs: [$DENIED/32, '2001:db8:bad::/48']}"
sy_mn_write_config 2 false
sy_mn_daemon_start 1
sy_mn_daemon_start 2
for i in 1 2; do
  sy_wait_for "node-$i's daemon to see its NodePort addresses" 15 \
    sy_mn_status_check "$i" "any(a['nodePort'] and a['address'] == '${SY_MN_NODE_IP4[i]}' for a in d['nodeAddresses'])" ||
    sy_fail "expected node-$i's daemon to serve NodePorts; status: $(sy_mn_status_json "$i" 2>&1)"
done
sy_wait_for "node-1's XDP program on $SY_MN_FABRIC_DEV" 10 sy_mn_status_check 1 \
  "any(x['device'] == '$SY_MN_FABRIC_DEV' and x['mode'] == 'native' for x in d['xdp'])" ||
  sy_fail "expected native XDP on node-1's $SY_MN_FABRIC_DEV; status: $(sy_mn_status_json 1 2>&1); log: $(tail -5 "${SY_MN_DAEMON_LOG[1]}")"
grep -q "xdp" <(ip -n "${SY_MN_NODE_NS[1]}" link show dev "$SY_MN_FABRIC_DEV") ||
  sy_fail "expected ip link to show an XDP program on node-1's $SY_MN_FABRIC_DEV"

sy_mn_write_service xnp clusterIP=198.19.1.71,2001:db8:c::71 type=NodePort port=http,80,8080,TCP,30701 port=dns,53,5353,UDP,30702
sy_mn_write_slice xnp-4 xnp IPv4 http:8080/TCP,dns:5353/UDP n2p1
sy_mn_write_slice xnp-6 xnp IPv6 http:8080/TCP,dns:5353/UDP n2p1
for i in 1 2; do
  sy_mn_wait_programmed "$i" "$(sy_svc_has 0.0.0.0 30701 TCP 1) and $(sy_svc_has :: 30702 UDP 1)"
done
XMODE=$(sy_json "$(sy_mn_status_json 1)" "d['xdp'][0]['mode']")
sy_log "node-1's $SY_MN_FABRIC_DEV runs XDP in $XMODE mode"
sy_mn_status_check 1 "d['acceleration'] == '$XMODE' and all(s.get('acceleration') == '$XMODE' for s in d['services'] if s['port'] in (30701, 30702)) and \
all('acceleration' not in s for s in d['services'] if s['address'] == '198.19.1.71') and \
sorted(d['denyCIDRs']) == ['198.18.0.101/32', '2001:db8:bad::/48']" ||
  sy_fail "expected node-1's status to show $XMODE acceleration for the NodePorts and the deny list: $(sy_mn_status_json 1)"
text=$(nsenter --net="/run/netns/${SY_MN_NODE_NS[1]}" "$SY_BIN" status --pin-path "${SY_MN_PIN[1]}" 2>&1) ||
  sy_fail "switchyard status of node-1 failed: $text"
if ! { grep -q "^acceleration of NodePort, LoadBalancer and external IP frontends: $XMODE\$" <<<"$text" &&
  grep -qE "^$SY_MN_FABRIC_DEV +2 +$XMODE " <<<"$text" &&
  grep -q "^denyCIDRs (dropped by XDP): 198.18.0.101/32 2001:db8:bad::/48\$" <<<"$text"; }; then
  sy_fail "expected node-1's status text to show the acceleration, the XDP device and the deny list: $text"
fi
sy_mn_status_check 2 "d['acceleration'] == 'disabled' and d['xdp'] == []" ||
  sy_fail "expected node-2 without acceleration: $(sy_mn_status_json 2)"

fwd0=$(sy_mn_counter 1 xdp_forward)
rev0=$(sy_mn_counter 1 xdp_revnat)
# Every request answered by the pod on node-2, which saw node-1's address (SNAT), 20 each.
trap_dump() { echo "node-1's counters: $(sy_json "$(sy_mn_status_json 1)" "{k: v for k, v in d['counters'].items() if v}" 2>&1)"; }
for target in "tcp $N1:30701 $N1" "udp $N1:30702 $N1" "tcp [$N16]:30701 $N16" "udp [$N16]:30702 $N16"; do
  read -r proto addr src <<<"$target"
  out=$(sy_mn_probe ext --proto "$proto" --target "$addr" --count 20) || true
  sy_json_check "${out:-{\}}" "d['ok'] == 20 and d['peer_mismatch'] == 0 and d['backends'] == {'n2p1': 20} and d['sources'] == {'$src': 20}" ||
    sy_fail "expected $proto to $addr through node-1's XDP answered 20 times by n2p1 from $src, got $out; $(trap_dump)"
done
fwd1=$(sy_mn_counter 1 xdp_forward)
rev1=$(sy_mn_counter 1 xdp_revnat)
sy_log "node-1 XDP: xdp_forward $fwd0 -> $fwd1, xdp_revnat $rev0 -> $rev1, pass_new $(sy_mn_counter 1 xdp_pass_new), pass_other $(sy_mn_counter 1 xdp_pass_other), pass_fib $(sy_mn_counter 1 xdp_pass_fib)"
# 80 TCP connections' ACKs and requests, and the replies to them: XDP's, not tc's.
((fwd1 - fwd0 >= 80)) || sy_fail "expected at least 80 client packets sent on by XDP, got $((fwd1 - fwd0))"
((rev1 - rev0 >= 80)) || sy_fail "expected at least 80 replies translated by XDP, got $((rev1 - rev0))"

# DSR (the option dispatch) over TCP: the pod sees ext's own address; after each SYN (tc's,
# with the option) the connection's packets to node-1 are XDP's.
sy_mn_write_service xdsr clusterIP=198.19.1.72 type=NodePort annotation=switchyard.dev/lb-mode=dsr port=http,80,8080,TCP,30703
sy_mn_write_slice xdsr-4 xdsr IPv4 http:8080/TCP n2p1
for i in 1 2; do
  sy_mn_wait_programmed "$i" "$(sy_svc_has 0.0.0.0 30703 TCP 1)"
done
fwd0=$(sy_mn_counter 1 xdp_forward)
out=$(sy_mn_probe ext --proto tcp --target "$N1:30703" --count 20) || true
sy_json_check "${out:-{\}}" "d['ok'] == 20 and d['peer_mismatch'] == 0 and d['backends'] == {'n2p1': 20} and d['sources'] == {'$EXT4': 20}" ||
  sy_fail "expected DSR TCP to $N1:30703 answered 20 times by n2p1, which sees $EXT4, got $out; $(trap_dump)"
fwd1=$(sy_mn_counter 1 xdp_forward)
sy_log "node-1 XDP, DSR: xdp_forward $fwd0 -> $fwd1"
((fwd1 - fwd0 >= 20)) || sy_fail "expected at least 20 DSR client packets sent on by XDP, got $((fwd1 - fwd0))"

# The deny list: ext's second address gets nothing; the first still does.
deny0=$(sy_mn_counter 1 xdp_deny)
out=$(sy_mn_probe ext --proto udp --target "$N1:30702" --count 3 --bind "$DENIED") || true
sy_json_check "${out:-{\}}" "d.get('sent') == 3 and d.get('ok') == 0" ||
  sy_fail "expected no answer to the 3 datagrams from the denied $DENIED, got: $out"
deny1=$(sy_mn_counter 1 xdp_deny)
((deny1 - deny0 >= 3)) || sy_fail "expected xdp_deny to count the 3 denied datagrams, got $((deny1 - deny0))"
sy_mn_expect_probe "the allowed address after the denied one" "d['ok'] == 3" ext --proto udp --target "$N1:30702" --count 3

# Cleanup leaves no XDP program on the device.
sy_mn_daemon_stop 1 || sy_fail "node-1's daemon did not stop cleanly"
nsenter --net="/run/netns/${SY_MN_NODE_NS[1]}" "$SY_BIN" cleanup --pin-path "${SY_MN_PIN[1]}" >"$WORK/cleanup.log" 2>&1 ||
  sy_fail "switchyard cleanup of node-1 failed: $(cat "$WORK/cleanup.log")"
if grep -q "xdp" <(ip -n "${SY_MN_NODE_NS[1]}" link show dev "$SY_MN_FABRIC_DEV"); then
  sy_fail "switchyard cleanup left an XDP program on node-1's $SY_MN_FABRIC_DEV: $(ip -n "${SY_MN_NODE_NS[1]}" link show dev "$SY_MN_FABRIC_DEV")"
fi
sy_log "PASS"
