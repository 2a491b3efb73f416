#!/usr/bin/env bash
# tests/e2e/devices_test.sh: a restart with a device dropped from bpf.devices removes
# switchyard's tc hooks (and the clsact qdisc it created) from that device, and keeps
# everything else: the socket hooks, the maps, the traffic.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

has_filter() {
  sy_in_ns "$NODE_NS" tc filter show dev veth-c "$1" 2>/dev/null | grep -q "handle 0x5359"
}
has_clsact() {
  sy_in_ns "$NODE_NS" tc qdisc show dev veth-c | grep -q clsact
}

sy_e2e_init devices
sy_cluster_up socklb
has_filter ingress || sy_fail "expected switchyard's ingress filter on veth-c at first"
has_filter egress || sy_fail "expected switchyard's egress filter on veth-c at first"

sy_daemon_stop
sed -i 's/^  devices: \[veth-c\]$/  devices: []/' "$CONFIG"
grep -q 'devices: \[\]' "$CONFIG" || sy_fail "could not drop veth-c from $CONFIG"
sy_daemon_start "$CONFIG"
sy_wait_for "veth-c without switchyard's filters" 10 \
  bash -c "! ip netns exec '$NODE_NS' tc filter show dev veth-c ingress | grep -q 'handle 0x5359' && \
           ! ip netns exec '$NODE_NS' tc filter show dev veth-c egress | grep -q 'handle 0x5359'" ||
  sy_fail "expected the restarted daemon to remove its tc filters from veth-c, which bpf.devices no longer names"
! has_clsact || sy_fail "expected the clsact qdisc switchyard created on veth-c to be gone"
grep -q "removed 2 tc filters from devices no longer in bpf.devices" "$DAEMON_LOG" ||
  sy_fail "expected the daemon to say it removed the dropped device's filters"
sy_expect_probe "the ClusterIP to keep working through the socket hooks" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30
sy_log "PASS"
