#!/usr/bin/env bash
# tests/e2e/socklb_pod_optout_test.sh: bpf.socketLB.podOptOut. Pods of this node opt out of
# socket LB by the annotation switchyard.dev/socket-lb: disabled, or by living in a namespace
# with that label (a service mesh's namespace); the daemon finds each pod's cgroup by its UID
# as the kubelet names it (cgroupfs driver: pod<uid>; systemd driver: ...-pod<uid_>.slice), and
# their clients reach ClusterIPs through tc (counted sock_skipped), TCP and UDP, while other
# pods keep socket LB. Removing the annotation gives the pod socket LB back; a bad value is a
# warning naming the pod. Pods and Namespaces come from the files source here.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

sy_e2e_init socklb-podopt
sy_topology_up 3
sy_start_backends 8080 5353
CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" true
sy_tune_config "$CONFIG"
KUBEPODS=$CG/kubepods
sed -i "s|^  socketLB: true$|  socketLB:\n    enabled: true\n    podOptOut: true\n    podCgroupRoot: $KUBEPODS|" "$CONFIG"
grep -q "podCgroupRoot: $KUBEPODS" "$CONFIG" || sy_fail "could not set bpf.socketLB.podOptOut in $CONFIG"

UID_ANNOTATED=0b7e2d9c-1111-4a5b-9c8d-0123456789ab
UID_MESH=0b7e2d9c-2222-4a5b-9c8d-0123456789ab
UID_PLAIN=0b7e2d9c-3333-4a5b-9c8d-0123456789ab
CG_ANNOTATED=$KUBEPODS/besteffort/pod$UID_ANNOTATED                                  # cgroupfs driver
CG_MESH=$KUBEPODS/kubepods-burstable.slice/kubepods-burstable-pod${UID_MESH//-/_}.slice  # systemd driver
CG_PLAIN=$KUBEPODS/besteffort/pod$UID_PLAIN
mkdir -p "$CG_ANNOTATED" "$CG_MESH" "$CG_PLAIN"

# write_pods ANNOTATION: the three pods of this node, and one of another node that is annotated
# and (on purpose) names the plain pod's UID: were other nodes' pods not ignored, plain would be skipped.
write_pods() {
  local annotation=$1
  cat >"$MANIFEST_DIR/.pods.yaml.tmp" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: mesh, labels: {switchyard.dev/socket-lb: disabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: apps
  uid: $UID_ANNOTATED
  annotations: {switchyard.dev/socket-lb: "$annotation"}
spec: {nodeName: $SY_NODE_NAME}
---
apiVersion: v1
kind: Pod
metadata: {name: sidecar, namespace: mesh, uid: $UID_MESH}
spec: {nodeName: $SY_NODE_NAME}
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: apps, uid: $UID_PLAIN}
spec: {nodeName: $SY_NODE_NAME}
---
apiVersion: v1
kind: Pod
metadata:
  name: elsewhere
  namespace: apps
  uid: $UID_PLAIN
  annotations: {switchyard.dev/socket-lb: disabled}
spec: {nodeName: some-other-node}
YAML
  mv "$MANIFEST_DIR/.pods.yaml.tmp" "$MANIFEST_DIR/pods.yaml"
}

sy_write_all_manifests
write_pods disabled
sy_daemon_start "$CONFIG"
sy_wait_for_programmed 3
sy_wait_for "the daemon to skip the annotated pod" 12 \
  grep -q "socket LB skips pod apps/client (annotation): cgroup $CG_ANNOTATED (id " "$DAEMON_LOG" ||
  sy_fail "expected 'socket LB skips pod apps/client'; log: $(cat "$DAEMON_LOG")"
sy_wait_for "the daemon to skip the mesh namespace's pod" 12 \
  grep -q "socket LB skips pod mesh/sidecar (namespace label): cgroup $CG_MESH (id " "$DAEMON_LOG" ||
  sy_fail "expected 'socket LB skips pod mesh/sidecar'; log: $(cat "$DAEMON_LOG")"
entries() { bpftool -j map dump pinned "$PIN/sockskip_v1" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
# Two cgroups, plus the entry (key 0) holding the levels in use.
n=$(entries)
((n == 3)) || sy_fail "expected sockskip_v1 to hold the two opted-out pods' cgroups and the levels entry, found $n entries"
! grep -q "apps/plain\|apps/elsewhere" <(grep "socket LB skips pod" "$DAEMON_LOG") ||
  sy_fail "a pod that did not opt out, or another node's, was skipped: $(grep 'socket LB skips pod' "$DAEMON_LOG")"

counters() {
  sy_json "$(sy_status_json)" "' '.join(str(d['counters'][k]) for k in ('sock_skipped', 'sock_xlate', 'tc_dnat_new'))"
}

for cg in "$CG_ANNOTATED" "$CG_MESH"; do
  read -r skipped0 xlate0 dnat0 <<<"$(counters)"
  CG=$cg sy_expect_probe "TCP from $(basename "$cg") answered by every pod through tc" \
    "$(sy_all_pods_expr 20)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 20
  CG=$cg sy_expect_probe "UDP from $(basename "$cg") answered, reply from the ClusterIP" \
    "d['sent'] == 20 and d['ok'] == 20 and d['peer_mismatch'] == 0" \
    --proto udp --target "$DNS_VIP:$DNS_PORT" --count 20
  read -r skipped1 xlate1 dnat1 <<<"$(counters)"
  sy_log "$(basename "$cg"): sock_skipped $skipped0 -> $skipped1, sock_xlate $xlate0 -> $xlate1, tc_dnat_new $dnat0 -> $dnat1"
  ((skipped1 - skipped0 >= 40)) || sy_fail "expected >= 40 sock_skipped from $cg, got $((skipped1 - skipped0))"
  ((xlate1 == xlate0)) || sy_fail "expected no socket-LB translation from $cg, got $((xlate1 - xlate0))"
  ((dnat1 - dnat0 >= 21)) || sy_fail "expected tc to DNAT $cg's flows, got $((dnat1 - dnat0))"
done

# The pod that did not opt out keeps socket LB.
read -r skipped0 xlate0 _ <<<"$(counters)"
CG=$CG_PLAIN sy_expect_probe "TCP from the plain pod through socket LB" "$(sy_all_pods_expr 20)" \
  --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 20
read -r skipped1 xlate1 _ <<<"$(counters)"
((xlate1 - xlate0 >= 20)) || sy_fail "expected socket LB for the plain pod, got $((xlate1 - xlate0)) translations"
((skipped1 == skipped0)) || sy_fail "expected no sock_skipped for the plain pod, got $((skipped1 - skipped0))"

# A bad value: a warning naming the pod, and the pod is served by socket LB again (treated as absent).
write_pods off
sy_wait_for "the daemon to warn about the bad annotation" 12 \
  grep -q 'Pod apps/client annotation: switchyard.dev/socket-lb: must be disabled or enabled, got "off"' "$DAEMON_LOG" ||
  sy_fail "expected a warning naming apps/client's bad annotation; log: $(cat "$DAEMON_LOG")"
sy_wait_for "the daemon to give apps/client socket LB back" 12 \
  grep -q "socket LB serves the pod of cgroup $CG_ANNOTATED again" "$DAEMON_LOG" ||
  sy_fail "expected apps/client's cgroup to leave sockskip_v1; log: $(cat "$DAEMON_LOG")"
read -r skipped0 xlate0 _ <<<"$(counters)"
CG=$CG_ANNOTATED sy_expect_probe "TCP from apps/client through socket LB again" "$(sy_all_pods_expr 20)" \
  --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 20
read -r skipped1 xlate1 _ <<<"$(counters)"
((xlate1 - xlate0 >= 20)) || sy_fail "expected socket LB for apps/client once opted back in, got $((xlate1 - xlate0))"
((skipped1 == skipped0)) || sy_fail "expected no sock_skipped for apps/client once opted back in, got $((skipped1 - skipped0))"
n=$(entries)
((n == 2)) || sy_fail "expected sockskip_v1 to hold only mesh/sidecar's cgroup and the levels entry, found $n"
rmdir "$CG_ANNOTATED" "$CG_MESH" "$CG_PLAIN" "$KUBEPODS/besteffort" "$KUBEPODS/kubepods-burstable.slice" "$KUBEPODS"
sy_log "PASS"
