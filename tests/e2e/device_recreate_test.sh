#!/usr/bin/env bash
# tests/e2e/device_recreate_test.sh: a device of bpf.devices deleted and created again under
# the same name (a pod's veth after a restart) gets switchyard's tc programs back within a
# few seconds, with the record of the old ifindex dropped: traffic through tc works again and
# `switchyard status` and tc show the filter on the new device.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

ifindex_of() { # (nsenter keeps the mount namespace, so /sys/class/net would be the root's)
  ip -n "$NODE_NS" -o link show veth-c | cut -d: -f1
}
has_filter() { # DIRECTION
  sy_in_ns "$NODE_NS" tc filter show dev veth-c "$1" 2>/dev/null | grep -q "handle 0x5359"
}
# status lists veth-c's two hooks, both recorded at ifindex $1 and attached, and nothing else.
status_tc_is() {
  sy_status_check "sorted((h['device'], h['ifindex'], h['direction'], h['recorded'], h['state']) for h in d['tc']) == \
[('veth-c', $1, 'egress', True, 'attached'), ('veth-c', $1, 'ingress', True, 'attached')]"
}

sy_e2e_init device-recreate
sy_cluster_up tc # socket LB off: the ClusterIP works only through the tc programs on veth-c
old=$(ifindex_of)
status_tc_is "$old" || sy_fail "expected status to show veth-c (ifindex $old) attached at first: $(sy_status_json)"
sy_expect_probe "TCP through tc on veth-c before the device is recreated" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

ip -n "$NODE_NS" link del veth-c || sy_fail "could not delete veth-c"
sy_plug_veth "$CLIENT_NS" veth-c "$CLIENT_IP"
new=$(ifindex_of)
[[ -n $new && $new != "$old" ]] || sy_fail "test bug: the recreated veth-c should have a new ifindex (old $old, new $new)"
sy_log "veth-c recreated: ifindex $old -> $new"

sy_wait_for "switchyard's filters on the new veth-c" 12 bash -c "
  nsenter --net=/run/netns/$NODE_NS tc filter show dev veth-c ingress | grep -q 'handle 0x5359' &&
  nsenter --net=/run/netns/$NODE_NS tc filter show dev veth-c egress | grep -q 'handle 0x5359'" ||
  sy_fail "expected the daemon to attach its tc programs to the recreated veth-c (ifindex $new) within 12 s; \
tc: $(sy_in_ns "$NODE_NS" tc filter show dev veth-c ingress); log: $(tail -5 "$DAEMON_LOG")"
has_filter ingress && has_filter egress
grep -q "device veth-c (ifindex $old) was recreated as ifindex $new: dropping its tc_attach records and attaching again" "$DAEMON_LOG" ||
  sy_fail "expected the daemon to say it saw veth-c recreated; log: $(tail -5 "$DAEMON_LOG")"
status_tc_is "$new" ||
  sy_fail "expected status to show veth-c's hooks recorded at the new ifindex $new only (old $old dropped): $(sy_status_json)"
dnat_before=$(sy_counter tc_dnat_new)
sy_expect_probe "TCP through tc on the recreated veth-c to reach every pod" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30
dnat_after=$(sy_counter tc_dnat_new)
((dnat_after - dnat_before >= 30)) ||
  sy_fail "expected the 30 connections to be DNATed by tc on the new veth-c, tc_dnat_new grew by $((dnat_after - dnat_before))"
sy_log "PASS"
