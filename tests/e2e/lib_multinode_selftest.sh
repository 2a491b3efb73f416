#!/usr/bin/env bash
# tests/e2e/lib_multinode_selftest.sh: checks tests/e2e/lib_multinode.sh itself.
#
# Runs each scenario as a child process sourcing lib.sh and lib_multinode.sh, and checks after
# each that it left nothing behind (namespaces, cgroups, per-node pins, work dir, processes),
# with lib_selftest.sh's run_scenario and leftovers:
#   plain    3 nodes x 2 pods, bridge fabric, no switchyard: the addressing, devices, cgroups and
#            routes; pod -> pod across nodes over TCP and UDP, IPv4 and IPv6; ext -> each node's
#            address; node -> pod; the sources the servers report are the clients' addresses;
#            ext has no route to pods or ClusterIPs; sy-testpeer's --report-peer and --bind;
#            device counters; the manifest and config writers (parsed back with python3 yaml)
#   vxlan    2 nodes x 1 pod over a VXLAN fabric: the node addresses on vx0, the same traffic,
#            and it crosses vx0 and the underlay
#   daemons  2 nodes x 2 pods, a daemon per node (node-1 socket LB, node-2 tc only) and a
#            dual-stack ClusterIP Service (TCP and UDP ports) whose endpoints are one pod on each
#            node: pods on both nodes and node-1 itself reach both backends through the ClusterIP
#            with the ClusterIP as peer and their own address as source; then node-2's daemon is
#            stopped and node-1's killed with SIGKILL, and the trap must still clean up both:
#            a last exit step reports to the parent whether each node's `switchyard cleanup`
#            detached its cgroup hooks and tc filters and unpinned its maps (before lib.sh's
#            namespace and cgroup removal would hide anything left attached)
#   fail     a daemon running and a probe in its node's cgroup when the test fails
#   term     a daemon running when the test is killed with SIGTERM (VXLAN fabric)
# Needs switchyard and sy-testpeer: SY_BUILD_DIR=/path/to/build (default: <repo>/build).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib_selftest.sh
source "$HERE/lib_selftest.sh" # record_state, leftovers, run_scenario, stop_scenarios
SCRIPT=$HERE/$(basename "${BASH_SOURCE[0]}") # what run_scenario runs: this script's scenarios

mn_init() {
  # shellcheck source=tests/e2e/lib.sh
  source "$HERE/lib.sh"
  # shellcheck source=tests/e2e/lib_multinode.sh
  source "$HERE/lib_multinode.sh"
  # shellcheck source=tests/e2e/lib_cluster.sh
  source "$HERE/lib_cluster.sh" # sy_svc_has
  sy_e2e_init "$1"
}

# expect_direct DESC EXPECTED_BACKEND EXPECTED_SOURCE FROM... -- PROBE_ARGS...: 5 requests, all
# answered by EXPECTED_BACKEND, which saw EXPECTED_SOURCE as the client, with the target as peer.
expect_direct() {
  local desc=$1 backend=$2 source=$3
  shift 3
  sy_mn_expect_probe "$desc" "d['ok'] == 5 and d['peer_mismatch'] == 0 and d['backends'] == {'$backend': 5} \
and d['sources'] == {'$source': 5}" "$@" --count 5
}

# The devices of node I's namespace matching the glob p*, sorted, one line.
pod_facing_devices() {
  ip -n "${SY_MN_NODE_NS[$1]}" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^p' | sort | tr '\n' ' '
}

scenario_plain() {
  local state=$1 i j
  mn_init mn-selftest-plain
  sy_mn_up 3 2
  sy_mn_start_servers 8080 5353
  sy_mn_start_host_servers 9080 9053
  record_state "$state"

  # --- the layout ---------------------------------------------------------------------------
  for ((i = 1; i <= 3; i++)); do
    local node_ns=${SY_MN_NODE_NS[i]}
    sy_assert "node-$i to hold ${SY_MN_NODE_IP4[i]}/24 and ${SY_MN_NODE_IP6[i]}/64 on eth0" \
      grep -qE "^eth0@[^ ]+ +UP +${SY_MN_NODE_IP4[i]}/24 ${SY_MN_NODE_IP6[i]}/64 " <(ip -n "$node_ns" -br addr show dev eth0)
    [[ $(pod_facing_devices "$i") == "p1 p2 " && ${SY_MN_POD_DEVS[i]} == "p1 p2" ]] ||
      sy_fail "expected node-$i's devices matching p* to be its pod veths p1 p2 (SY_MN_POD_DEVS '${SY_MN_POD_DEVS[i]}'), got '$(pod_facing_devices "$i")'"
    sy_assert "node-$i to forward IPv4 and IPv6" \
      test "$(sy_in_ns "$node_ns" cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding | tr -d '\n')" = 11
    sy_assert "node-$i's processes to run in its own cgroup" \
      grep -qx "0::/$PREFIX/n$i" <(sy_mn_run node "$i" cat /proc/self/cgroup)
    sy_assert "pod n${i}p2's processes to run in node-$i's cgroup" \
      grep -qx "0::/$PREFIX/n$i" <(sy_mn_run pod "$i" 2 cat /proc/self/cgroup)
    for ((j = 1; j <= 2; j++)); do
      sy_assert "pod n${i}p$j to hold ${SY_MN_POD_IP4[$i,$j]}/32 and ${SY_MN_POD_IP6[$i,$j]}/128" \
        grep -qE "^eth0@[^ ]+ +UP +${SY_MN_POD_IP4[$i,$j]}/32 ${SY_MN_POD_IP6[$i,$j]}/128 " <(ip -n "${SY_MN_POD_NS[$i,$j]}" -br addr show dev eth0)
      sy_assert "pod n${i}p$j's default route through its gateway ${SY_MN_GW4[i]}" \
        grep -q "^default via ${SY_MN_GW4[i]} dev eth0" <(ip -n "${SY_MN_POD_NS[$i,$j]}" route show default)
      sy_assert "pod n${i}p$j's IPv6 default route through its gateway ${SY_MN_GW6[i]}" \
        grep -q "^default via ${SY_MN_GW6[i]} dev eth0" <(ip -n "${SY_MN_POD_NS[$i,$j]}" -6 route show default)
    done
  done
  sy_assert "node-1 to route node-3's pods via node-3 (native routing)" \
    grep -q "^${SY_MN_POD_CIDR6[3]} via ${SY_MN_NODE_IP6[3]} dev eth0" <(ip -n "${SY_MN_NODE_NS[1]}" -6 route)
  sy_assert "ext to be in no test cgroup" grep -qx "0::/" <(sy_mn_run ext cat /proc/self/cgroup)
  sy_assert "ext's LoadBalancer route via node-1 by default" \
    grep -q "via ${SY_MN_NODE_IP4[1]} " <(ip -n "$SY_MN_EXT_NS" route get 198.19.100.7)
  sy_mn_route_external_via 2
  sy_assert "ext's externalIP routes via node-2 after sy_mn_route_external_via 2" \
    grep -q "via ${SY_MN_NODE_IP6[2]} " <(ip -n "$SY_MN_EXT_NS" -6 route get 2001:db8:e::7)
  sy_assert "ext's LoadBalancer IPv6 route via node-2 too" \
    grep -q "via ${SY_MN_NODE_IP6[2]} " <(ip -n "$SY_MN_EXT_NS" -6 route get 2001:db8:b::7)
  sy_mn_route_external_via 1

  # --- traffic without switchyard -----------------------------------------------------------
  local p11_4=${SY_MN_POD_IP4[1,1]} p11_6=${SY_MN_POD_IP6[1,1]}
  expect_direct "TCP/IPv4 n1p1 -> n2p1 across the fabric" n2p1 "$p11_4" \
    pod 1 1 --proto tcp --target "${SY_MN_POD_IP4[2,1]}:8080"
  expect_direct "UDP/IPv4 n1p1 -> n2p1" n2p1 "$p11_4" pod 1 1 --proto udp --target "${SY_MN_POD_IP4[2,1]}:5353"
  expect_direct "TCP/IPv6 n1p1 -> n2p1" n2p1 "$p11_6" pod 1 1 --proto tcp --target "[${SY_MN_POD_IP6[2,1]}]:8080"
  expect_direct "UDP/IPv6 n1p1 -> n2p1" n2p1 "$p11_6" pod 1 1 --proto udp --target "[${SY_MN_POD_IP6[2,1]}]:5353"
  expect_direct "TCP/IPv4 n1p1 -> n3p2 (third node)" n3p2 "$p11_4" pod 1 1 --proto tcp --target "${SY_MN_POD_IP4[3,2]}:8080"
  expect_direct "UDP/IPv6 n3p2 -> n1p2" n1p2 "${SY_MN_POD_IP6[3,2]}" \
    pod 3 2 --proto udp --target "[${SY_MN_POD_IP6[1,2]}]:5353"
  expect_direct "TCP/IPv4 n2p1 -> n2p2 (same node)" n2p2 "${SY_MN_POD_IP4[2,1]}" \
    pod 2 1 --proto tcp --target "${SY_MN_POD_IP4[2,2]}:8080"
  expect_direct "TCP/IPv4 ext -> node-1's address" node-1 "$SY_MN_EXT_IP4" ext --proto tcp --target "${SY_MN_NODE_IP4[1]}:9080"
  expect_direct "UDP/IPv6 ext -> node-1's address" node-1 "$SY_MN_EXT_IP6" ext --proto udp --target "[${SY_MN_NODE_IP6[1]}]:9053"
  expect_direct "TCP/IPv6 ext -> node-2's address" node-2 "$SY_MN_EXT_IP6" ext --proto tcp --target "[${SY_MN_NODE_IP6[2]}]:9080"
  expect_direct "UDP/IPv4 ext -> node-2's address" node-2 "$SY_MN_EXT_IP4" ext --proto udp --target "${SY_MN_NODE_IP4[2]}:9053"
  expect_direct "TCP/IPv4 node-2 -> n1p2, from node-2's fabric address" n1p2 "${SY_MN_NODE_IP4[2]}" \
    node 2 --proto tcp --target "${SY_MN_POD_IP4[1,2]}:8080"
  expect_direct "TCP/IPv6 node-2 -> its own pod n2p1, from its fabric address" n2p1 "${SY_MN_NODE_IP6[2]}" \
    node 2 --proto tcp --target "[${SY_MN_POD_IP6[2,1]}]:8080"
  sy_mn_expect_probe "ext to have no route to pod addresses" "d['ok'] == 0 and d['errors'] == {'ENETUNREACH': 2}" \
    ext --proto tcp --target "$p11_4:8080" --count 2
  sy_mn_expect_probe "ext to have no route to pod IPv6 addresses" "d['ok'] == 0 and d['errors'] == {'ENETUNREACH': 2}" \
    ext --proto udp --target "[$p11_6]:5353" --count 2
  sy_mn_expect_probe "ext to have no route to ClusterIPs" "d['ok'] == 0 and d['errors'] == {'ENETUNREACH': 2}" \
    ext --proto tcp --target "198.19.0.10:80" --count 2

  # --- sy-testpeer: --report-peer, --bind, and the answer without --report-peer ---------------
  local err=$WORK/bind.err
  ip -n "$SY_MN_EXT_NS" addr add 198.18.0.101/24 dev eth0
  ip -n "$SY_MN_EXT_NS" addr add 2001:db8:f::101/64 dev eth0 nodad
  expect_direct "probe --bind to make ext's requests come from 198.18.0.101" node-2 198.18.0.101 \
    ext --proto tcp --target "${SY_MN_NODE_IP4[2]}:9080" --bind 198.18.0.101
  expect_direct "probe --bind to work for IPv6 UDP" node-2 2001:db8:f::101 \
    ext --proto udp --target "[${SY_MN_NODE_IP6[2]}]:9053" --bind 2001:db8:f::101
  local rc=0
  sy_mn_probe ext --proto tcp --target "${SY_MN_NODE_IP4[2]}:9080" --bind 2001:db8:f::101 >/dev/null 2>"$err" || rc=$?
  if ((rc != 2)) || ! grep -q "not the address family of --target" "$err"; then
    sy_fail "expected probe --bind with an IPv6 address for an IPv4 target to exit 2 naming the family, got $rc: $(cat "$err")"
  fi
  rc=0
  "$SY_PEER" serve --name "two words" >/dev/null 2>"$err" || rc=$?
  if ((rc != 2)) || ! grep -q "must not contain spaces" "$err"; then
    sy_fail "expected serve --name 'two words' to exit 2 (the answer is NAME PEER), got $rc: $(cat "$err")"
  fi
  sy__spawn "$WORK/quiet" ip netns exec "${SY_MN_POD_NS[1,1]}" "$SY_PEER" serve --name quiet --tcp-port 8081 --udp-port 5354
  sy_mn__wait_served quiet
  sy_mn_expect_probe "a server without --report-peer to answer with its name only (no sources)" \
    "d['ok'] == 3 and d['backends'] == {'quiet': 3} and d['sources'] == {}" \
    pod 2 1 --proto tcp --target "$p11_4:8081" --count 3
  sy_mn_expect_probe "a UDP server without --report-peer to answer with its name only" \
    "d['ok'] == 3 and d['backends'] == {'quiet': 3} and d['sources'] == {}" \
    pod 2 1 --proto udp --target "[$p11_6]:5354" --count 3

  # --- device counters: node-2 sees the datagrams to its pod, node-3 (bridge learnt) does not -
  local rx2 rx3 tx1 n=30
  rx2=$(sy_mn_dev_packets 2 eth0 rx)
  rx3=$(sy_mn_dev_packets 3 eth0 rx)
  tx1=$(sy_mn_dev_packets 1 eth0 tx)
  sy_mn_expect_probe "$n UDP datagrams n1p1 -> n2p1" "d['ok'] == $n" pod 1 1 --proto udp --target "${SY_MN_POD_IP4[2,1]}:5353" --count $n
  rx2=$(($(sy_mn_dev_packets 2 eth0 rx) - rx2))
  rx3=$(($(sy_mn_dev_packets 3 eth0 rx) - rx3))
  tx1=$(($(sy_mn_dev_packets 1 eth0 tx) - tx1))
  ((rx2 >= n && tx1 >= n)) || sy_fail "expected node-1 eth0 tx and node-2 eth0 rx to count the $n datagrams, got tx $tx1, rx $rx2"
  ((rx3 < n)) || sy_fail "expected node-3's eth0 not to see node-1 -> node-2 unicast, got $rx3 packets"
  sy_log "ok: device counters: node-1 eth0 tx +$tx1, node-2 eth0 rx +$rx2, node-3 eth0 rx +$rx3"

  # --- the fabric MTU: every node's and ext's fabric device, and DF traffic feels it ---------
  sy_mn_set_fabric_mtu 1280
  local i mtu
  for i in 1 2 3 ext; do
    mtu=$(ip netns exec "$(sy_mn_ns "$i")" cat "/sys/class/net/$SY_MN_FABRIC_DEV/mtu")
    ((mtu == 1280)) || sy_fail "expected sy_mn_set_fabric_mtu 1280 to set $SY_MN_FABRIC_DEV of $i to 1280, got $mtu"
  done
  # A DF datagram of 1281 bytes on the wire cannot leave ext, one of 1280 can.
  local df='import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER: IP_PMTUDISC_DO
try:
    s.sendto(b"x" * (int(sys.argv[2]) - 28), (sys.argv[1], 9))
except OSError:
    sys.exit(1)'
  sy_in_ns "$SY_MN_EXT_NS" "${SY_MN_PYTHON:-python3}" -c "$df" "${SY_MN_NODE_IP4[1]}" 1281 &&
    sy_fail "expected a 1281-byte DF datagram from ext to fail at fabric MTU 1280"
  sy_in_ns "$SY_MN_EXT_NS" "${SY_MN_PYTHON:-python3}" -c "$df" "${SY_MN_NODE_IP4[1]}" 1280 ||
    sy_fail "expected a 1280-byte DF datagram from ext to leave at fabric MTU 1280"
  ( sy_mn_set_fabric_mtu 1501 ) 2>/dev/null && sy_fail "expected sy_mn_set_fabric_mtu 1501 to fail on a bridge fabric"
  sy_mn_set_fabric_mtu 1500
  sy_log "ok: sy_mn_set_fabric_mtu"

  check_writers
  sy_log "plain scenario done"
}

# The config and manifest writers, parsed back the way a Kubernetes client reads them.
check_writers() {
  local m=$SY_MN_MANIFEST_DIR
  SY_MN_EXTRA_CONFIG='bpf: {hostDevices: [eth0]}'
  sy_mn_write_config 2 false $'nodePortAddresses: [198.18.0.0/24]\nbpf: {mapSizes: {services: 128}}\nclusterCIDR: null'
  SY_MN_EXTRA_CONFIG=
  sy_assert "node-2's config to hold its defaults and both extras" python3 -c '
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
assert c["hostnameOverride"] == "node-2" and c["healthzBindAddress"] == "127.0.0.1:10256", c
assert "clusterCIDR" not in c and c["nodePortAddresses"] == ["198.18.0.0/24"], c
assert c["source"] == {"kind": "files", "path": sys.argv[2], "pollInterval": "100ms"}, c
assert c["bpf"] == {"pinPath": sys.argv[3], "cgroupPath": sys.argv[4], "socketLB": False,
                    "devices": ["p1", "p2"], "hostDevices": ["eth0"], "mapSizes": {"services": 128}}, c
' "${SY_MN_CONFIG[2]}" "$m" "${SY_MN_PIN[2]}" "${SY_MN_CG[2]}"
  sy_mn_write_config 1
  sy_assert "node-1's default config to name its dual-stack cluster CIDR and socket LB on" python3 -c '
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
assert c["clusterCIDR"] == "198.18.16.0/20,2001:db8:1::/48" and c["bpf"]["socketLB"] is True, c
assert "hostDevices" not in c["bpf"] and "nodePortAddresses" not in c, c
' "${SY_MN_CONFIG[1]}"

  sy_mn_write_node 1 zone-a
  sy_mn_write_node 2 zone-b ToBeDeletedByClusterAutoscaler=1700000000:NoSchedule,example.com/drain:NoExecute deleting
  sy_mn_write_service lb clusterIP=198.19.0.20,2001:db8:c::20 type=LoadBalancer \
    port=http,80,http,TCP,30080 port=dns,53,5353,UDP,30053 port=dns-tcp,53,5353,TCP,30054 \
    lbIngress=198.19.100.1,2001:db8:b::1@VIP,198.19.100.2@Proxy externalTrafficPolicy=Local \
    healthCheckNodePort=32000 sourceRanges=198.18.0.0/24,2001:db8:f::/64 \
    sessionAffinity=ClientIP affinityTimeout=30 annotation=switchyard.dev/lb-mode=dsr
  sy_mn_write_service np clusterIP=198.19.0.21 type=NodePort port=,80,8080,TCP,30081 \
    externalIPs=198.19.200.1 internalTrafficPolicy=Local trafficDistribution=PreferClose
  sy_mn_write_service ext clusterIP=2001:db8:c::22 port=web,8443,8080 externalIPs=2001:db8:e::1 \
    externalTrafficPolicy=Local
  sy_mn_write_slice lb-v4 lb IPv4 http:8080/TCP,dns:5353/UDP,dns-tcp:5353/TCP \
    n1p1 n2p1:terminating:forZones=zone-a+zone-b n2p2:notready:zone=:forNodes=node-2 node-3
  sy_mn_write_slice lb-v6 lb IPv6 http:8080/TCP n3p2:ready=false:serving=true:terminating=false:nodeName=node-9
  sy_mn_write_slice np-empty np IPv4 :8080/TCP
  sy_assert "the manifests to parse as kubectl prints them" python3 - "$m" <<'EOF'
import sys, yaml
d = sys.argv[1]
load = lambda f: yaml.safe_load(open(f"{d}/{f}"))
n1, n2 = load("node-node-1.yaml"), load("node-node-2.yaml")
assert n1["kind"] == "Node" and n1["metadata"]["name"] == "node-1", n1
assert n1["metadata"]["labels"] == {"kubernetes.io/hostname": "node-1", "kubernetes.io/os": "linux",
                                    "topology.kubernetes.io/zone": "zone-a"}, n1
assert "taints" not in n1["spec"] and "deletionTimestamp" not in n1["metadata"], n1
assert n1["spec"]["podCIDRs"] == ["198.18.17.0/24", "2001:db8:1:1::/64"], n1
assert n2["spec"]["taints"] == [
    {"key": "ToBeDeletedByClusterAutoscaler", "value": "1700000000", "effect": "NoSchedule"},
    {"key": "example.com/drain", "effect": "NoExecute"}], n2
assert n2["metadata"]["deletionTimestamp"] == "2024-01-01T01:00:00Z", n2

lb = load("svc-lb.yaml")
s = lb["spec"]
assert lb["metadata"]["annotations"] == {"switchyard.dev/lb-mode": "dsr"}, lb
assert s["type"] == "LoadBalancer" and s["clusterIPs"] == ["198.19.0.20", "2001:db8:c::20"], s
assert s["ipFamilies"] == ["IPv4", "IPv6"] and s["ipFamilyPolicy"] == "RequireDualStack", s
assert s["ports"] == [
    {"name": "http", "nodePort": 30080, "port": 80, "protocol": "TCP", "targetPort": "http"},
    {"name": "dns", "nodePort": 30053, "port": 53, "protocol": "UDP", "targetPort": 5353},
    {"name": "dns-tcp", "nodePort": 30054, "port": 53, "protocol": "TCP", "targetPort": 5353}], s
assert s["externalTrafficPolicy"] == "Local" and s["healthCheckNodePort"] == 32000, s
assert s["allocateLoadBalancerNodePorts"] is True and s["internalTrafficPolicy"] == "Cluster", s
assert s["loadBalancerSourceRanges"] == ["198.18.0.0/24", "2001:db8:f::/64"], s
assert s["sessionAffinity"] == "ClientIP" and s["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 30}}, s
assert lb["status"] == {"loadBalancer": {"ingress": [
    {"ip": "198.19.100.1"}, {"ip": "2001:db8:b::1", "ipMode": "VIP"},
    {"ip": "198.19.100.2", "ipMode": "Proxy"}]}}, lb

np = load("svc-np.yaml")["spec"]
assert np["type"] == "NodePort" and np["ports"] == [{"nodePort": 30081, "port": 80, "protocol": "TCP", "targetPort": 8080}], np
assert np["externalIPs"] == ["198.19.200.1"] and np["externalTrafficPolicy"] == "Cluster", np
assert np["internalTrafficPolicy"] == "Local" and np["trafficDistribution"] == "PreferClose", np
assert np["ipFamilies"] == ["IPv4"] and np["ipFamilyPolicy"] == "SingleStack" and np["sessionAffinity"] == "None", np
ext = load("svc-ext.yaml")["spec"]
assert ext["type"] == "ClusterIP" and ext["ipFamilies"] == ["IPv6"] and ext["externalTrafficPolicy"] == "Local", ext
assert "allocateLoadBalancerNodePorts" not in ext and load("svc-ext.yaml")["status"] == {"loadBalancer": {}}, ext

v4 = load("slice-lb-v4.yaml")
assert v4["addressType"] == "IPv4" and v4["metadata"]["labels"]["kubernetes.io/service-name"] == "lb", v4
assert v4["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"},
                       {"name": "dns-tcp", "port": 5353, "protocol": "TCP"}], v4
e = v4["endpoints"]
assert [x["addresses"] for x in e] == [["198.18.17.2"], ["198.18.18.2"], ["198.18.18.3"], ["198.18.0.13"]], e
assert e[0] == {"addresses": ["198.18.17.2"], "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": "node-1", "zone": "zone-a",
                "targetRef": {"kind": "Pod", "name": "n1p1", "namespace": "default", "uid": e[0]["targetRef"]["uid"]}}, e[0]
assert e[1]["conditions"] == {"ready": False, "serving": True, "terminating": True}, e[1]
assert e[1]["hints"] == {"forZones": [{"name": "zone-a"}, {"name": "zone-b"}]} and e[1]["zone"] == "zone-b", e[1]
assert e[2]["conditions"] == {"ready": False, "serving": False, "terminating": False}, e[2]
assert "zone" not in e[2] and e[2]["hints"] == {"forNodes": [{"name": "node-2"}]} and e[2]["nodeName"] == "node-2", e[2]
assert e[3]["nodeName"] == "node-3" and "targetRef" not in e[3] and "zone" not in e[3], e[3]
v6 = load("slice-lb-v6.yaml")["endpoints"]
assert v6 == [{"addresses": ["2001:db8:1:3::3"], "conditions": {"ready": False, "serving": True, "terminating": False},
               "nodeName": "node-9", "targetRef": v6[0]["targetRef"]}], v6
empty = load("slice-np-empty.yaml")
assert empty["endpoints"] is None and empty["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}], empty
EOF
  # The files as written: kubectl's quoting and layout, not only what a parser makes of them.
  sy_assert "resourceVersion and timestamps double-quoted, lists unindented, {} for an empty status" \
    grep -qzP 'resourceVersion: "[0-9]+"\n(.|\n)*  - 198.19.200.1\n(.|\n)*status:\n  loadBalancer: \{\}\n' "$m/svc-np.yaml"
  sy_assert "a slice without endpoints written as 'endpoints: null'" grep -qx 'endpoints: null' "$m/slice-np-empty.yaml"
  sy_assert "no temp files beside the manifests" test -z "$(find "$m" -name '.*')"

  # Bad arguments fail the test with a message naming them (in a subshell: sy_fail exits it).
  local out
  out=$( (sy_mn_write_service bad clusterIP=198.19.0.30 type=NodePort port=http,80,8080) 2>&1) &&
    sy_fail "expected a NodePort Service without a nodePort to be refused"
  grep -q "every port needs its NODEPORT" <<<"$out" || sy_fail "expected the refusal to say the nodePort is missing, got: $out"
  out=$( (sy_mn_write_slice bad lb IPv4 http:8080/TCP n9p9) 2>&1) && sy_fail "expected an endpoint of an unknown pod to be refused"
  grep -q "'n9p9' is not a pod" <<<"$out" || sy_fail "expected the refusal to name the unknown pod, got: $out"
  out=$( (sy_mn_write_config 1 true 'bpf: [oops') 2>&1) && sy_fail "expected extra configuration that is not YAML to be refused"
  grep -q "extra configuration is not YAML" <<<"$out" || sy_fail "expected the refusal to say the extra is not YAML, got: $out"
  [[ ! -e $m/svc-bad.yaml && ! -e $m/slice-bad.yaml ]] || sy_fail "expected no file written for refused arguments"
  sy_log "ok: config and manifest writers"
}

scenario_vxlan() {
  local state=$1
  SY_MN_FABRIC=vxlan
  mn_init mn-selftest-vxlan
  sy_mn_up 2 1
  sy_mn_start_servers 8080 5353
  sy_mn_start_host_servers 9080 9053
  record_state "$state"
  [[ $SY_MN_FABRIC_DEV == vx0 ]] || sy_fail "expected SY_MN_FABRIC_DEV=vx0 on a VXLAN fabric, got $SY_MN_FABRIC_DEV"
  sy_assert "node-2's fabric addresses on vx0 (VNI 42) over eth0" \
    grep -q "vxlan id 42 local ${SY_MN_UNDERLAY_IP4[2]} dev eth0" <(ip -n "${SY_MN_NODE_NS[2]}" -d link show dev vx0)
  sy_assert "node-2's vx0 to hold ${SY_MN_NODE_IP4[2]}/24 and ${SY_MN_NODE_IP6[2]}/64" \
    grep -q "${SY_MN_NODE_IP4[2]}/24 ${SY_MN_NODE_IP6[2]}/64" <(ip -n "${SY_MN_NODE_NS[2]}" -br addr show dev vx0)
  sy_assert "node-2's eth0 to hold only its underlay address" \
    grep -q "inet ${SY_MN_UNDERLAY_IP4[2]}/24" <(ip -n "${SY_MN_NODE_NS[2]}" -4 -o addr show dev eth0)
  sy_assert "node-1 to route node-2's pods over vx0" \
    grep -q "^${SY_MN_POD_CIDR4[2]} via ${SY_MN_NODE_IP4[2]} dev vx0" <(ip -n "${SY_MN_NODE_NS[1]}" route)

  local vx_before eth_before n=20
  vx_before=$(sy_mn_dev_packets 2 vx0 rx)
  eth_before=$(sy_mn_dev_packets 2 eth0 rx)
  sy_mn_expect_probe "$n TCP/IPv4 connections n1p1 -> n2p1 over VXLAN, n1p1 as source" \
    "d['ok'] == $n and d['backends'] == {'n2p1': $n} and d['sources'] == {'${SY_MN_POD_IP4[1,1]}': $n}" \
    pod 1 1 --proto tcp --target "${SY_MN_POD_IP4[2,1]}:8080" --count $n
  ((  $(sy_mn_dev_packets 2 vx0 rx) - vx_before >= 2 * n && $(sy_mn_dev_packets 2 eth0 rx) - eth_before >= 2 * n )) ||
    sy_fail "expected the connections to cross node-2's vx0 and its underlay eth0 (rx counters)"
  expect_direct "UDP/IPv6 n1p1 -> n2p1 over VXLAN" n2p1 "${SY_MN_POD_IP6[1,1]}" \
    pod 1 1 --proto udp --target "[${SY_MN_POD_IP6[2,1]}]:5353"
  expect_direct "TCP/IPv6 ext -> node-2's address over VXLAN" node-2 "$SY_MN_EXT_IP6" \
    ext --proto tcp --target "[${SY_MN_NODE_IP6[2]}]:9080"
  expect_direct "UDP/IPv4 ext -> node-1's address over VXLAN" node-1 "$SY_MN_EXT_IP4" \
    ext --proto udp --target "${SY_MN_NODE_IP4[1]}:9053"
  sy_log "vxlan scenario done"
}

# The dual-stack ClusterIP Service "web" (TCP 80 -> 8080, UDP 53 -> 5353) on n1p1 and n2p1.
readonly WEB4=198.19.0.10 WEB6=2001:db8:c::10

web_programmed() {
  echo "$(sy_svc_has "$WEB4" 80 TCP 2) and $(sy_svc_has "$WEB6" 80 TCP 2) and \
$(sy_svc_has "$WEB4" 53 UDP 2) and $(sy_svc_has "$WEB6" 53 UDP 2)"
}

write_web() {
  sy_mn_write_service web clusterIP=$WEB4,$WEB6 port=http,80,8080,TCP port=dns,53,5353,UDP
  sy_mn_write_slice web-v4 web IPv4 http:8080/TCP,dns:5353/UDP n1p1 n2p1
  sy_mn_write_slice web-v6 web IPv6 http:8080/TCP,dns:5353/UDP n1p1 n2p1
}

# expect_both_backends DESC SOURCE TARGET FROM...: TCP: 20 connections reach n1p1 and n2p1.
# UDP: up to 20 probes of 2 datagrams each (one socket each: tc conntrack keeps a socket on one
# backend) reach both between them. Always: the ClusterIP as peer and SOURCE as the client.
expect_both_backends() {
  local desc=$1 source=$2 proto=$3 target=$4 run backend
  shift 4
  if [[ $proto == tcp ]]; then
    sy_mn_expect_probe "$desc" "d['ok'] == 20 and d['peer_mismatch'] == 0 and sorted(d['backends']) == ['n1p1', 'n2p1'] \
and d['sources'] == {'$source': 20}" "$@" --proto tcp --target "$target" --count 20
    return
  fi
  local -A seen=()
  local out answered
  for ((run = 1; run <= 20 && ${#seen[@]} < 2; run++)); do
    out=$(sy_mn_probe "$@" --proto udp --target "$target" --count 2) || true
    # One python3 per socket: the backends when the answer is right, else nothing.
    answered=$(sy_json "${out:-null}" "' '.join(d['backends']) if d and d['ok'] == 2 and d['peer_mismatch'] == 0 \
and set(d['backends']) <= {'n1p1', 'n2p1'} and d['sources'] == {'$source': 2} else ''")
    [[ -n $answered ]] ||
      sy_fail "expected $desc: socket $run to get both answers from n1p1 or n2p1, peer = $target, source $source; got $out"
    for backend in $answered; do
      seen[$backend]=1
    done
  done
  ((${#seen[@]} == 2)) || sy_fail "expected $desc: 20 UDP sockets to reach n1p1 and n2p1 between them, reached only ${!seen[*]}"
  sy_log "ok: $desc: $((run - 1)) sockets reached ${!seen[*]}"
}

# What each node's `switchyard cleanup` left behind, seen from the last exit step of a scenario:
# after lib_multinode.sh's cleanup step, before lib.sh deletes the namespaces and cgroups (which
# would hide a hook or filter left attached). Prints "ok" or the problems.
node_cleanup_report() {
  local i dev log problems=""
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    log=$WORK/cleanup-n$i.log
    [[ ! -e ${SY_MN_PIN[i]} ]] || problems+=" node-$i: pins ${SY_MN_PIN[i]} remain;"
    [[ -z $(bpftool cgroup show "${SY_MN_CG[i]}" 2>&1) ]] ||
      problems+=" node-$i: hooks left on ${SY_MN_CG[i]}: $(bpftool cgroup show "${SY_MN_CG[i]}" 2>&1);"
    for dev in ${SY_MN_POD_DEVS[i]}; do
      [[ -z $(tc -n "${SY_MN_NODE_NS[i]}" filter show dev "$dev" ingress; tc -n "${SY_MN_NODE_NS[i]}" filter show dev "$dev" egress) ]] ||
        problems+=" node-$i: tc filters left on $dev;"
      ! tc -n "${SY_MN_NODE_NS[i]}" qdisc show dev "$dev" | grep -q clsact || problems+=" node-$i: clsact left on $dev;"
    done
    grep -qE "^cleanup ${SY_MN_PIN[i]}: removed [1-9][0-9]* tc filters, .* [1-9][0-9]* pinned maps" "$log" 2>/dev/null ||
      problems+=" node-$i: cleanup did not report removing its filters and maps: $(cat "$log" 2>&1);"
  done
  grep -qE " [1-9][0-9]* cgroup links" "$WORK/cleanup-n1.log" 2>/dev/null ||
    problems+=" node-1: cleanup did not report removing its socket-LB links;"
  echo "${problems:-ok}"
}

scenario_daemons() {
  local state=$1
  mn_init mn-selftest-daemons
  sy_mn_up 2 2
  if [[ -n ${MN_CHECKS:-} ]]; then
    sy_on_exit "node_cleanup_report >'$MN_CHECKS/daemons-cleanup'" # after sy_mn_up's cleanup step
  fi
  sy_mn_start_servers 8080 5353
  sy_mn_write_node 1 zone-a
  sy_mn_write_node 2 zone-b
  write_web
  sy_mn_write_config 1 true
  sy_mn_write_config 2 false
  sy_mn_daemon_start 1
  sy_mn_daemon_start 2
  record_state "$state"
  sy_mn_wait_programmed 1 "$(web_programmed)"
  sy_mn_wait_programmed 2 "$(web_programmed)"
  [[ ${SY_MN_DAEMON_LOG[1]} == "$WORK/daemon-n1.log" && -s ${SY_MN_DAEMON_LOG[1]} ]] ||
    sy_fail "expected node-1's daemon log at $WORK/daemon-n1.log"
  sy_assert "node-1's socket-LB hooks on its own cgroup only" grep -q connect4 <(bpftool cgroup show "${SY_MN_CG[1]}")
  sy_assert "no socket-LB hooks on node-2's cgroup (socketLB false)" test -z "$(bpftool cgroup show "${SY_MN_CG[2]}")"
  sy_assert "no hooks on the test's own cgroup" test -z "$(bpftool cgroup show "$CG")"

  local p12_4=${SY_MN_POD_IP4[1,2]} p12_6=${SY_MN_POD_IP6[1,2]} p22_4=${SY_MN_POD_IP4[2,2]} p22_6=${SY_MN_POD_IP6[2,2]}
  expect_both_backends "n1p2 (socket LB) -> ClusterIP $WEB4:80 to reach pods on both nodes" "$p12_4" tcp "$WEB4:80" pod 1 2
  expect_both_backends "n1p2 (socket LB) -> [$WEB6]:80" "$p12_6" tcp "[$WEB6]:80" pod 1 2
  expect_both_backends "n1p2 (socket LB) -> UDP $WEB4:53" "$p12_4" udp "$WEB4:53" pod 1 2
  expect_both_backends "n2p2 (tc) -> ClusterIP $WEB4:80 to reach pods on both nodes" "$p22_4" tcp "$WEB4:80" pod 2 2
  expect_both_backends "n2p2 (tc) -> [$WEB6]:80" "$p22_6" tcp "[$WEB6]:80" pod 2 2
  expect_both_backends "n2p2 (tc) -> UDP [$WEB6]:53" "$p22_6" udp "[$WEB6]:53" pod 2 2
  expect_both_backends "node-1 itself (socket LB) -> ClusterIP $WEB4:80, from its fabric address" \
    "${SY_MN_NODE_IP4[1]}" tcp "$WEB4:80" node 1

  local xlate1 xlate2 dnat2 revnat2
  xlate1=$(sy_mn_counter 1 sock_xlate)
  xlate2=$(sy_mn_counter 2 sock_xlate)
  dnat2=$(sy_mn_counter 2 tc_dnat_new)
  revnat2=$(sy_mn_counter 2 tc_revnat)
  ((xlate1 >= 60)) || sy_fail "expected node-1's socket LB to translate the 60+ connections of its clients, sock_xlate $xlate1"
  ((xlate2 == 0)) || sy_fail "expected no socket-LB translation on node-2 (socketLB false), sock_xlate $xlate2"
  ((dnat2 >= 40 && revnat2 > 0)) || sy_fail "expected node-2's tc to DNAT its pod's 40+ flows and reverse them, tc_dnat_new $dnat2, tc_revnat $revnat2"
  sy_log "ok: counters: node-1 sock_xlate $xlate1; node-2 sock_xlate $xlate2, tc_dnat_new $dnat2, tc_revnat $revnat2"

  # Leave one daemon stopped and one crashed, with their pins: the trap's per-node cleanup must
  # still remove both (the parent checks).
  local rc=0
  sy_mn_daemon_stop 2 || rc=$?
  ((rc == 0)) || sy_fail "expected node-2's daemon to exit 0 on SIGTERM, got $rc"
  [[ -z ${SY_MN_DAEMON_PID[2]} ]] || sy_fail "expected SY_MN_DAEMON_PID[2] cleared after sy_mn_daemon_stop"
  expect_both_backends "n2p2 -> ClusterIP with node-2's daemon stopped (programs stay attached)" "$p22_4" tcp "$WEB4:80" pod 2 2
  sy_mn_daemon_kill9 1
  [[ -d ${SY_MN_PIN[1]} && -d ${SY_MN_PIN[2]} ]] || sy_fail "expected both nodes' pins ${SY_MN_PIN[1]} ${SY_MN_PIN[2]} to stay after stop and SIGKILL"
  sy_log "daemons scenario done"
}

scenario_fail() {
  local state=$1
  mn_init mn-selftest-fail
  sy_mn_up 2 1
  sy_mn_start_servers 8080 5353
  sy_mn_write_service web clusterIP=$WEB4 port=http,80,8080,TCP
  sy_mn_write_slice web-v4 web IPv4 http:8080/TCP n1p1 n2p1
  sy_mn_write_config 1 true
  sy_mn_daemon_start 1
  sy_mn_wait_programmed 1 "$(sy_svc_has "$WEB4" 80 TCP 2)"
  # A client in node-1's cgroup, through its socket LB, still running when the test fails.
  sy_mn_probe pod 1 1 --proto tcp --target "$WEB4:80" --duration-s 60 --interval-ms 50 >"$WORK/background-probe.json" &
  local probe_pid=$!
  record_state "$state" "$probe_pid"
  sy_fail "deliberate failure, with node-1's daemon and probe $probe_pid still running"
}

scenario_term() {
  local state=$1
  SY_MN_FABRIC=vxlan
  mn_init mn-selftest-term
  sy_mn_up 2 1
  sy_mn_start_servers 8080 5353
  sy_mn_write_config 2 false
  sy_mn_daemon_start 2
  sy_wait_for "node-2's daemon to pin its maps" 15 test -d "${SY_MN_PIN[2]}" || sy_fail "expected ${SY_MN_PIN[2]}"
  sleep 60 &
  local sleeper=$!
  sy_track_pid "$sleeper"
  record_state "$state"
  wait "$sleeper" # returns as soon as the TERM trap fires
}

case ${1:-all} in
  inner-plain) scenario_plain "$2" ;;
  inner-vxlan) scenario_vxlan "$2" ;;
  inner-daemons) scenario_daemons "$2" ;;
  inner-fail) scenario_fail "$2" ;;
  inner-term) scenario_term "$2" ;;
  all)
    if [[ $(id -u) != 0 ]]; then
      echo "SKIP [lib_multinode_selftest]: needs root" >&2
      exit 77
    fi
    # Scenarios leave reports here for checks only the parent can make.
    MN_CHECKS=$(mktemp -d -t sy-mn-selftest.XXXXXX)
    export MN_CHECKS
    finish() {
      local rc=$?
      rm -rf "$MN_CHECKS"
      (exit "$rc")
      stop_scenarios # a scenario still running when this script dies cleans up after itself
    }
    trap finish EXIT
    failures=0
    started=$SECONDS
    run_scenario plain 0 || failures=$((failures + 1))
    run_scenario vxlan 0 || failures=$((failures + 1))
    run_scenario daemons 0 || failures=$((failures + 1))
    report=$(cat "$MN_CHECKS/daemons-cleanup" 2>/dev/null) || report="no report"
    if [[ $report != ok ]]; then
      echo "FAIL: scenario daemons: expected each node's switchyard cleanup to detach and unpin everything: $report" >&2
      failures=$((failures + 1))
    else
      echo "ok: scenario daemons: each node's switchyard cleanup detached its hooks and filters and unpinned its maps" >&2
    fi
    run_scenario fail 1 || failures=$((failures + 1))
    run_scenario term 143 || failures=$((failures + 1))
    if ((failures > 0)); then
      echo "lib_multinode_selftest: $failures scenario(s) failed" >&2
      exit 1
    fi
    echo "lib_multinode_selftest: all scenarios passed in $((SECONDS - started)) s" >&2
    ;;
  *)
    echo "usage: $0 [all]" >&2
    exit 2
    ;;
esac
