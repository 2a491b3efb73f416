#!/usr/bin/env bash
# tests/e2e/socklb_skip_test.sh: bpf.socketLB.skipCgroups. Socket LB is on, and one cgroup
# (a stand-in for a service mesh's or an NFS client's) opts out; it does not exist yet when
# the daemon starts. Once it is made, the daemon finds it within a tick (at most 5 s): its clients reach the
# ClusterIPs through the tc programs instead (the connection's peer is the ClusterIP on the wire,
# counted sock_skipped and DNATed by tc), TCP and UDP, while clients of any other cgroup keep
# socket LB. Cilium's socket-LB bypass, kube-proxy's behaviour for the skipped cgroup.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

sy_e2e_init socklb-skip
sy_topology_up 3
sy_start_backends 8080 5353
CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" true
sy_tune_config "$CONFIG"
MESH=$CG/mesh
sed -i "s|^  socketLB: true$|  socketLB:\n    enabled: true\n    skipCgroups: [$MESH]|" "$CONFIG"
grep -q "skipCgroups: \[$MESH\]" "$CONFIG" || sy_fail "could not set bpf.socketLB.skipCgroups in $CONFIG"
sy_write_all_manifests
sy_daemon_start "$CONFIG"
sy_wait_for_programmed 3
sy_wait_for "the daemon to say the skipped cgroup is missing" 5 \
  grep -q "bpf.socketLB.skipCgroups: $MESH: " "$DAEMON_LOG" ||
  sy_fail "expected a warning naming the missing cgroup $MESH; log: $(cat "$DAEMON_LOG")"

mkdir "$MESH"
sy_wait_for "the daemon to find the new cgroup" 12 grep -q "socket LB skips cgroup $MESH (id " "$DAEMON_LOG" ||
  sy_fail "expected 'socket LB skips cgroup $MESH' once the cgroup exists; log: $(cat "$DAEMON_LOG")"

counters() {
  sy_json "$(sy_status_json)" "' '.join(str(d['counters'][k]) for k in ('sock_skipped', 'sock_xlate', 'tc_dnat_new'))"
}

# From the opted-out cgroup: served by tc.
read -r skipped0 xlate0 dnat0 <<<"$(counters)"
CG=$MESH sy_expect_probe "TCP from the skipped cgroup answered by every pod, peer = ClusterIP" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30
CG=$MESH sy_expect_probe "UDP from the skipped cgroup answered, reply from the ClusterIP" \
  "d['sent'] == 30 and d['ok'] == 30 and d['peer_mismatch'] == 0" \
  --proto udp --target "$DNS_VIP:$DNS_PORT" --count 30
read -r skipped1 xlate1 dnat1 <<<"$(counters)"
sy_log "skipped cgroup: sock_skipped $skipped0 -> $skipped1, sock_xlate $xlate0 -> $xlate1, tc_dnat_new $dnat0 -> $dnat1"
((skipped1 - skipped0 >= 60)) || sy_fail "expected >= 60 sock_skipped (30 connects + 30 sends), got $((skipped1 - skipped0))"
((xlate1 == xlate0)) || sy_fail "expected no socket-LB translation for the skipped cgroup, got $((xlate1 - xlate0))"
((dnat1 - dnat0 >= 31)) || sy_fail "expected tc to DNAT the skipped cgroup's flows (30 TCP connections, 1 UDP socket), got $((dnat1 - dnat0)) new flows"

# From the test cgroup itself: socket LB as before.
sy_expect_probe "TCP from another cgroup through socket LB" "$(sy_all_pods_expr 30)" \
  --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30
read -r skipped2 xlate2 dnat2 <<<"$(counters)"
sy_log "other cgroup: sock_skipped $skipped1 -> $skipped2, sock_xlate $xlate1 -> $xlate2, tc_dnat_new $dnat1 -> $dnat2"
((xlate2 - xlate1 >= 30)) || sy_fail "expected socket LB to translate the other cgroup's 30 connects, got $((xlate2 - xlate1))"
((skipped2 == skipped1)) || sy_fail "expected no sock_skipped for the other cgroup, got $((skipped2 - skipped1))"
((dnat2 == dnat1)) || sy_fail "expected no tc DNAT for socket-LB traffic, got $((dnat2 - dnat1))"

# The cgroup goes (the pod ended): its entry goes too.
rmdir "$MESH"
missing_said() { (($(grep -c "bpf.socketLB.skipCgroups: $MESH: " "$DAEMON_LOG") >= 2)); }
sy_wait_for "the daemon to say the removed cgroup is missing again" 12 missing_said ||
  sy_fail "expected the daemon to notice $MESH was removed; log: $(cat "$DAEMON_LOG")"
left=$(bpftool -j map dump pinned "$PIN/sockskip_v1" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
((left == 0)) || sy_fail "expected sockskip_v1 empty once the only skipped cgroup is gone, found $left entries"
sy_log "PASS"
