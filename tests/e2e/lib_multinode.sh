# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the test scripts that source this
# tests/e2e/lib_multinode.sh: a multi-node cluster in a box, on top of lib.sh: two or three node
# namespaces joined by a fabric, each with its own daemon, cgroup and pins, pods behind each node,
# and an external client beyond the fabric. Dual-stack always.
#
#   source lib.sh; source lib_multinode.sh; sy_e2e_init NAME
#   sy_mn_up 2 2                     2 nodes, 2 pods each
#   sy_mn_start_servers              sy-testpeer serve --report-peer in every pod, named n<I>p<J>
#   sy_mn_write_service / sy_mn_write_slice / sy_mn_write_node   (lib_multinode_manifests.sh)
#   sy_mn_write_config 1 true; sy_mn_daemon_start 1; sy_mn_wait_programmed 1 EXPR
#   out=$(sy_mn_probe pod 2 1 --proto tcp --target 198.19.0.10:80 --count 20) || true
#
#        ext (198.18.0.100, 2001:db8:f::100)         external client, no cgroup
#             |
#   fabric: bridge br0 in $SY_MN_FABRIC_NS (SY_MN_FABRIC=bridge), or VXLAN vx0 over that
#             |   bridge as underlay (SY_MN_FABRIC=vxlan)
#      +------+-----------------+
#    node-1 (198.18.0.11)     node-2 (198.18.0.12)  ... node addresses on $SY_MN_FABRIC_DEV
#      p1  p2                   p1  p2              pod-facing veths (glob p*), gateway .1 / ::1
#    n1p1 n1p2                n2p1 n2p2             pods, eth0 198.18.(16+I).(J+1), 2001:db8:1:I::(J+1)
#
# Addresses (I = node 1..N, J = pod 1..K), all exported below:
#   fabric            198.18.0.0/24, 2001:db8:f::/64: node I .(10+I) / ::(10+I), ext .100 / ::100
#   VXLAN underlay    198.18.2.0/24 on eth0 (node I .(10+I), ext .100), VNI 42, UDP 4789; the
#                     fabric addresses then live on vx0 (MTU 1450)
#   pod CIDR of I     198.18.(16+I).0/24, 2001:db8:1:I::/64; pod J .(J+1) / ::(J+1) as /32, /128
#   gateway of I      198.18.(16+I).1/32, 2001:db8:1:I::1/128 on every pod veth of node I; the
#                     pods' default routes go through it
#   cluster CIDR      198.18.16.0/20, 2001:db8:1::/48 (every node's pod CIDR is inside)
#   ClusterIPs        198.19.0.0/16, 2001:db8:c::/64 (reached through the pods' default routes;
#                     keep clear of the two /24s below, which lie inside the IPv4 range)
#   LoadBalancer IPs  198.19.100.0/24, 2001:db8:b::/64   } routed by ext via one node
#   externalIPs       198.19.200.0/24, 2001:db8:e::/64   } (sy_mn_route_external_via)
# Routing is native: node I routes node K's pod CIDR via node K's fabric address; pod /32 and
# /128 routes on the node prefer the node's fabric address as source (so a node's own clients
# talk from it). ext has routes to the node addresses (on link), to the LB and externalIP ranges
# via one node, and never to the pod CIDRs or ClusterIPs. Nodes have no default route.
# ip_forward and IPv6 forwarding are on in node namespaces; rp_filter is off and IPv6 DAD is
# disabled (nodad, accept_dad=0) everywhere, so addresses work at once.
#
# Names: namespaces $PREFIX-fab, $PREFIX-ext, $PREFIX-n<I>, $PREFIX-n<I>p<J>; node I's cgroup
# $CG/n<I> (socket LB of node I applies to node I's processes only), pins /sys/fs/bpf/$PREFIX-n<I>.
#
# Functions (FROM is `ext` | `node I` | `pod I J`; I and J 1-based):
#   sy_mn_up NODES [PODS_PER_NODE=1]     the topology (NODES 2 or 3, PODS_PER_NODE 1..32)
#   sy_mn_route_external_via I           ext's LB and externalIP routes via node I (default 1)
#   sy_mn_start_servers [TCP=8080] [UDP=5353]       a server per pod, named n<I>p<J>
#   sy_mn_start_host_servers [TCP=8080] [UDP=5353]  a server per node namespace, named node-<I>
#                                        (a hostNetwork pod); both answer "NAME PEER"
#   sy_mn_run FROM CMD...                runs CMD as a client FROM: ext in its namespace (no
#                                        cgroup); node I in node I's namespace and cgroup; pod I J
#                                        in that pod's namespace and node I's cgroup. Exec's in a
#                                        subshell, so `sy_mn_run ... & pid=$!` is CMD's pid.
#   sy_mn_probe FROM PROBE_ARGS...       sy-testpeer probe as a client FROM; prints its JSON line
#                                        (with "sources"), returns its exit code: write
#                                        `out=$(sy_mn_probe ...) || true` under set -e
#   sy_mn_expect_probe DESC EXPR FROM PROBE_ARGS...  fails the test with DESC unless the probe's
#                                        JSON satisfies EXPR (Python, d = JSON); sets SY_MN_PROBE_OUT
#   sy_mn_write_config I [SOCKET_LB=true] [EXTRA_YAML]   node I's config
#   sy_mn_write_service NAME KEY=VALUE... / sy_mn_write_slice NAME SERVICE FAMILY PORTS EP... /
#   sy_mn_write_node I ZONE [TAINTS] [deleting] / sy_mn_remove_node I: the shared manifests
#                                        (these five: lib_multinode_manifests.sh, sourced here)
#   sy_mn_daemon_start I [LOG]           `switchyard run` in node I's namespace
#   sy_mn_daemon_stop I [TIMEOUT_S=10]   SIGTERM and wait; returns its exit status (124: killed)
#   sy_mn_daemon_kill9 I                 SIGKILL, as a crash: pins and attachments stay
#   sy_mn_status_json I                  `switchyard status -o json` of node I's pins
#   sy_mn_status_check I EXPR            EXPR (Python, d = status JSON) holds for node I
#   sy_mn_counter I NAME                 datapath counter NAME of node I (fails the test if none)
#   sy_mn_wait_programmed I EXPR [TIMEOUT_S=15]  waits until node I's status satisfies EXPR,
#                                        else fails the test (sy_svc_has of lib_cluster.sh
#                                        builds such expressions)
#   sy_mn_set_fabric_mtu MTU             the MTU of every node's and ext's fabric device (eth0, or
#                                        vx0 with VXLAN), at once; SY_MN_FABRIC_MTU before sy_mn_up
#                                        sets it from the start
#   sy_mn_dev_packets WHO DEV rx|tx      packet counter of DEV in WHO's namespace (WHO: a node
#                                        index, ext or fab): n=$(sy_mn_dev_packets 1 eth0 rx)
#   sy_mn_ns WHO                         prints WHO's namespace (a node index, ext, fab, or I,J)
# Cleanup is lib.sh's trap, extended with one sy_on_exit step: stop every daemon, run
# `switchyard cleanup` for each node's pin path in that node's namespace, remove the pin dirs.
# The node cgroups (under $CG) and namespaces ($PREFIX-*) go with lib.sh's own cleanup.
#
# Variables (arrays indexed by node I; associative arrays by "I,J", e.g. ${SY_MN_POD_IP4[2,1]}):
#   SY_MN_FABRIC (bridge|vxlan, set before sy_mn_up) SY_MN_FABRIC_MTU (unset: the device's
#   default, 1500 or 1450 with VXLAN; set before sy_mn_up) SY_MN_NODES SY_MN_PODS_PER_NODE
#   SY_MN_FABRIC_NS SY_MN_FABRIC_DEV (eth0 or vx0: the node's host-facing device) SY_MN_EXT_NS
#   SY_MN_EXT_IP4 SY_MN_EXT_IP6 SY_MN_EXT_VIA
#   SY_MN_FABRIC_NET4 SY_MN_FABRIC_NET6 SY_MN_UNDERLAY_NET4 SY_MN_CLUSTER_CIDR4 SY_MN_CLUSTER_CIDR6
#   SY_MN_CLUSTERIP_NET4 SY_MN_CLUSTERIP_NET6 SY_MN_LB_NET4 SY_MN_LB_NET6 SY_MN_EXTIP_NET4
#   SY_MN_EXTIP_NET6
#   SY_MN_NODE_NAME[I] SY_MN_NODE_NS[I] SY_MN_NODE_IP4[I] SY_MN_NODE_IP6[I] SY_MN_UNDERLAY_IP4[I]
#   SY_MN_POD_CIDR4[I] SY_MN_POD_CIDR6[I] SY_MN_GW4[I] SY_MN_GW6[I] SY_MN_POD_DEVS[I] ("p1 p2")
#   SY_MN_CG[I] SY_MN_PIN[I] SY_MN_CONFIG[I] SY_MN_DAEMON_PID[I] SY_MN_DAEMON_LOG[I] SY_MN_ZONE[I]
#   SY_MN_POD_NS[I,J] SY_MN_POD_NAME[I,J] SY_MN_POD_IP4[I,J] SY_MN_POD_IP6[I,J] SY_MN_POD_DEV[I,J]
#   SY_MN_MANIFEST_DIR (also lib.sh's MANIFEST_DIR) SY_MN_HEALTHZ_ADDR SY_MN_METRICS_ADDR SY_MN_EXTRA_CONFIG
#   SY_MN_PYTHON (the interpreter `python3` names; a function python3 runs it, see below)
#   SY_MN_PROBE_OUT (after sy_mn_expect_probe)
# Functions that set variables must run in the test's own shell, not in $(...) or a pipeline.

SY_MN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

readonly SY_MN_FABRIC_NET4=198.18.0.0/24
readonly SY_MN_FABRIC_NET6=2001:db8:f::/64
readonly SY_MN_UNDERLAY_NET4=198.18.2.0/24
readonly SY_MN_CLUSTER_CIDR4=198.18.16.0/20
readonly SY_MN_CLUSTER_CIDR6=2001:db8:1::/48
readonly SY_MN_CLUSTERIP_NET4=198.19.0.0/16
readonly SY_MN_CLUSTERIP_NET6=2001:db8:c::/64
readonly SY_MN_LB_NET4=198.19.100.0/24
readonly SY_MN_LB_NET6=2001:db8:b::/64
readonly SY_MN_EXTIP_NET4=198.19.200.0/24
readonly SY_MN_EXTIP_NET6=2001:db8:e::/64
readonly SY_MN_EXT_IP4=198.18.0.100
readonly SY_MN_EXT_IP6=2001:db8:f::100
readonly SY_MN_EXT_UNDERLAY_IP4=198.18.2.100
readonly SY_MN_VXLAN_ID=42
readonly SY_MN_VXLAN_PORT=4789
readonly SY_MN_MAX_PODS_PER_NODE=32
SY_MN_HEALTHZ_ADDR=127.0.0.1:10256 # in each node's own namespace
SY_MN_METRICS_ADDR=127.0.0.1:10249

SY_MN_FABRIC=${SY_MN_FABRIC:-bridge}
SY_MN_FABRIC_MTU=${SY_MN_FABRIC_MTU:-}
SY_MN_NODES=0
SY_MN_PODS_PER_NODE=0
SY_MN_FABRIC_DEV=
SY_MN_EXT_VIA=
SY_MN_MANIFEST_DIR=
SY_MN_PROBE_OUT=
# -g: the library may be sourced inside a function (as the selftest's scenarios do).
declare -ga SY_MN_NODE_NAME=() SY_MN_NODE_NS=() SY_MN_NODE_IP4=() SY_MN_NODE_IP6=() SY_MN_UNDERLAY_IP4=()
declare -ga SY_MN_POD_CIDR4=() SY_MN_POD_CIDR6=() SY_MN_GW4=() SY_MN_GW6=() SY_MN_POD_DEVS=()
declare -ga SY_MN_CG=() SY_MN_PIN=() SY_MN_CONFIG=() SY_MN_DAEMON_PID=() SY_MN_DAEMON_LOG=() SY_MN_ZONE=()
declare -gA SY_MN_POD_NS=() SY_MN_POD_NAME=() SY_MN_POD_IP4=() SY_MN_POD_IP6=() SY_MN_POD_DEV=()

# python3 resolved once, not through a version manager's shim on every call: pyenv puts a shell
# script first on PATH that costs up to 0.3 s a call on a loaded 2-core machine, and a multi-node
# test calls python3 (lib.sh's JSON helpers, the manifest writers) a hundred times. The function
# runs the very interpreter `python3` names, so which Python runs does not change.
SY_MN_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || SY_MN_PYTHON=
if [[ -x $SY_MN_PYTHON && $SY_MN_PYTHON != "$(command -v python3)" ]]; then
  python3() { "$SY_MN_PYTHON" "$@"; }
fi

# shellcheck source=tests/e2e/lib_multinode_manifests.sh
source "$SY_MN_DIR/lib_multinode_manifests.sh"

# ---------------------------------------------------------------------------------------------
# Topology

# sy_mn__node I CALLER: fails the test unless I is a node of the topology.
sy_mn__node() {
  ((SY_MN_NODES > 0)) || sy_fail "$2 before sy_mn_up"
  if [[ ! $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > SY_MN_NODES)); then
    sy_fail "$2: node '$1' must be a node index in 1..$SY_MN_NODES"
  fi
}

# Building the topology takes a few processes, not hundreds: every namespace's devices,
# addresses and routes go in through one `ip -batch`, and all sysctls through one python3 that
# enters each namespace in turn (hundreds of `ip` calls cost seconds on a loaded 2-core box).

# sy_mn__batch NS WHAT: runs the `ip` commands on stdin (one a line, no leading "ip", no -4/-6:
# ip tells the family from the addresses) in namespace NS ("" for the root one, for `netns add`
# only); fails the test naming WHAT and the command that failed.
sy_mn__batch() {
  local ns=$1 what=$2 err rc=0
  if [[ -n $ns ]]; then
    err=$(ip -n "$ns" -batch - 2>&1 >/dev/null) || rc=$?
  else
    err=$(ip -batch - 2>&1 >/dev/null) || rc=$?
  fi
  ((rc == 0)) || sy_fail "$what: ip -batch${ns:+ in $ns} failed: $err"
}

# sy_mn__sysctls: sets the sysctls on stdin, lines "NAMESPACE KEY=VALUE..." (a "," in VALUE
# stands for a space), each inside its network namespace: /proc/sys/net belongs to the netns of
# the process that opens it.
sy_mn__sysctls() {
  local err
  err=$(python3 -S -c '
import ctypes, os, sys
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
for line in sys.stdin:
    ns, *settings = line.split()
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        sys.exit(f"setns {ns}: {os.strerror(ctypes.get_errno())}")
    os.close(fd)
    for setting in settings:
        key, value = setting.split("=", 1)
        try:
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value.replace(",", " "))
        except OSError as e:
            sys.exit(f"{ns}: {key}={value}: {e.strerror}")
' 2>&1) || sy_fail "sysctls of the multi-node topology: $err"
}

# Fails the test (it does not skip) when the kernel cannot make VXLAN devices.
sy_mn__check_vxlan() {
  local ns=$PREFIX-vxcheck out
  ip netns add "$ns" || sy_fail "ip netns add $ns"
  if ! out=$(ip -n "$ns" link add vxcheck type vxlan id "$SY_MN_VXLAN_ID" dstport "$SY_MN_VXLAN_PORT" 2>&1); then
    ip netns del "$ns"
    sy_fail "SY_MN_FABRIC=vxlan: this kernel cannot create VXLAN devices (ip link add type vxlan: $out)"
  fi
  ip netns del "$ns"
}

# The variables of node I.
sy_mn__node_vars() {
  local i=$1
  SY_MN_NODE_NAME[i]=node-$i
  SY_MN_NODE_NS[i]=$PREFIX-n$i
  SY_MN_NODE_IP4[i]=198.18.0.$((10 + i))
  SY_MN_NODE_IP6[i]=2001:db8:f::$((10 + i))
  SY_MN_UNDERLAY_IP4[i]=198.18.2.$((10 + i))
  SY_MN_POD_CIDR4[i]=198.18.$((16 + i)).0/24
  SY_MN_POD_CIDR6[i]=2001:db8:1:$i::/64
  SY_MN_GW4[i]=198.18.$((16 + i)).1
  SY_MN_GW6[i]=2001:db8:1:$i::1
  SY_MN_POD_DEVS[i]=
  SY_MN_CG[i]=$CG/n$i
  SY_MN_PIN[i]=/sys/fs/bpf/$PREFIX-n$i
}

# The variables of pod J of node I.
sy_mn__pod_vars() {
  local i=$1 j=$2
  SY_MN_POD_NS[$i,$j]=$PREFIX-n${i}p$j
  SY_MN_POD_NAME[$i,$j]=n${i}p$j
  SY_MN_POD_IP4[$i,$j]=198.18.$((16 + i)).$((j + 1))
  SY_MN_POD_IP6[$i,$j]=2001:db8:1:$i::$((j + 1))
  SY_MN_POD_DEV[$i,$j]=p$j
  SY_MN_POD_DEVS[i]=${SY_MN_POD_DEVS[i]:+${SY_MN_POD_DEVS[i]} }p$j
}

# sy_mn__fabric_lines UNDERLAY ADDR4 ADDR6: the fabric side of a node or ext: ADDR4/24 and
# ADDR6/64 on eth0 (the bridge port), or with a VXLAN fabric on vx0 over eth0, which then holds
# UNDERLAY/24.
sy_mn__fabric_lines() {
  local underlay=$1 addr4=$2 addr6=$3 dev=eth0
  echo "link set lo up"
  echo "link set eth0 up"
  if [[ $SY_MN_FABRIC == vxlan ]]; then
    echo "addr add $underlay/24 dev eth0"
    echo "link add vx0 type vxlan id $SY_MN_VXLAN_ID dstport $SY_MN_VXLAN_PORT local $underlay dev eth0"
    echo "link set vx0 up"
    dev=vx0
  fi
  [[ -z $SY_MN_FABRIC_MTU ]] || echo "link set $dev mtu $SY_MN_FABRIC_MTU"
  echo "addr add $addr4/24 dev $dev"
  echo "addr add $addr6/64 dev $dev nodad"
}

# Node I: its fabric side, a veth pJ per pod with the gateway addresses and the pod's /32 and
# /128 routes (source: the node's fabric address), and routes to every other node's pod CIDRs.
sy_mn__node_lines() {
  local i=$1 j k key dev=$SY_MN_FABRIC_DEV
  sy_mn__fabric_lines "${SY_MN_UNDERLAY_IP4[i]}" "${SY_MN_NODE_IP4[i]}" "${SY_MN_NODE_IP6[i]}"
  for ((j = 1; j <= SY_MN_PODS_PER_NODE; j++)); do
    key="$i,$j"
    echo "link add p$j type veth peer name eth0 netns ${SY_MN_POD_NS[$key]}"
    echo "addr add ${SY_MN_GW4[i]}/32 dev p$j"
    echo "addr add ${SY_MN_GW6[i]}/128 dev p$j nodad"
    echo "link set p$j up"
    echo "route add ${SY_MN_POD_IP4[$key]}/32 dev p$j src ${SY_MN_NODE_IP4[i]}"
    echo "route add ${SY_MN_POD_IP6[$key]}/128 dev p$j src ${SY_MN_NODE_IP6[i]}"
  done
  for ((k = 1; k <= SY_MN_NODES; k++)); do
    ((k != i)) || continue
    echo "route add ${SY_MN_POD_CIDR4[k]} via ${SY_MN_NODE_IP4[k]} dev $dev"
    echo "route add ${SY_MN_POD_CIDR6[k]} via ${SY_MN_NODE_IP6[k]} dev $dev"
  done
}

# Pod J of node I: its addresses, and routes to its gateway and through it.
sy_mn__pod_lines() {
  local i=$1 key="$1,$2"
  echo "link set lo up"
  echo "addr add ${SY_MN_POD_IP4[$key]}/32 dev eth0"
  echo "addr add ${SY_MN_POD_IP6[$key]}/128 dev eth0 nodad"
  echo "link set eth0 up"
  echo "route add ${SY_MN_GW4[i]} dev eth0"
  echo "route add default via ${SY_MN_GW4[i]} dev eth0"
  echo "route add ${SY_MN_GW6[i]} dev eth0"
  echo "route add default via ${SY_MN_GW6[i]} dev eth0"
}

# Every namespace's sysctls: no reverse-path filter anywhere (replies to translated flows come
# back on other devices than requests left from), no DAD (addresses usable at once, not after a
# second as "tentative"); forwarding on nodes; the fabric namespace only switches frames, so it
# has no IPv6 of its own to chatter with; ext reuses TIME_WAIT ports and has many of them, as
# lib.sh's client does (a connection per request).
sy_mn__sysctl_lines() {
  local i j base="net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0"
  base+=" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
  echo "$SY_MN_FABRIC_NS net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    echo "${SY_MN_NODE_NS[i]} $base net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1" \
      "net.ipv6.conf.default.forwarding=1"
    for ((j = 1; j <= SY_MN_PODS_PER_NODE; j++)); do
      echo "${SY_MN_POD_NS[$i,$j]} $base"
    done
  done
  echo "$SY_MN_EXT_NS $base net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range=10000,60999"
}

# The bridge, and one port per node (n<I>) and for ext, whose other ends are their eth0. No
# multicast snooping: without a querier it could stop flooding IPv6 neighbour discovery.
sy_mn__bridge_lines() {
  local i
  echo "link set lo up"
  echo "link add br0 type bridge stp_state 0 mcast_snooping 0"
  echo "link set br0 up"
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    echo "link add n$i type veth peer name eth0 netns ${SY_MN_NODE_NS[i]}"
    echo "link set n$i master br0 up"
  done
  echo "link add ext type veth peer name eth0 netns $SY_MN_EXT_NS"
  echo "link set ext master br0 up"
}

# VXLAN head-end replication: every overlay member floods broadcast and unknown frames (ARP,
# neighbour discovery) to every other member's underlay address; unicast MACs are learnt.
sy_mn__vxlan_flood() {
  local i k members=() underlays=() err
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    members+=("${SY_MN_NODE_NS[i]}")
    underlays+=("${SY_MN_UNDERLAY_IP4[i]}")
  done
  members+=("$SY_MN_EXT_NS")
  underlays+=("$SY_MN_EXT_UNDERLAY_IP4")
  for ((i = 0; i < ${#members[@]}; i++)); do
    err=$(for ((k = 0; k < ${#members[@]}; k++)); do
      ((i == k)) || echo "fdb append 00:00:00:00:00:00 dev vx0 dst ${underlays[k]}"
    done | bridge -n "${members[i]}" -batch - 2>&1 >/dev/null) ||
      sy_fail "vx0 flood entries in ${members[i]}: $err"
  done
}

# sy_mn_route_external_via I: ext's routes to the LoadBalancer and externalIP ranges go via node
# I's fabric address (sy_mn_up makes it node 1).
sy_mn_route_external_via() {
  local i=${1:-}
  sy_mn__node "$i" sy_mn_route_external_via
  sy_mn__batch "$SY_MN_EXT_NS" "ext's routes via node-$i" < <(printf 'route replace %s via %s\n' \
    "$SY_MN_LB_NET4" "${SY_MN_NODE_IP4[i]}" "$SY_MN_EXTIP_NET4" "${SY_MN_NODE_IP4[i]}" \
    "$SY_MN_LB_NET6" "${SY_MN_NODE_IP6[i]}" "$SY_MN_EXTIP_NET6" "${SY_MN_NODE_IP6[i]}")
  SY_MN_EXT_VIA=$i
}

# sy_mn_up NODES [PODS_PER_NODE=1]: see the header.
sy_mn_up() {
  local nodes=${1:?sy_mn_up needs the number of nodes (2 or 3)} pods=${2:-1} i j
  [[ -n ${PREFIX:-} && -d ${CG:-} ]] || sy_fail "sy_mn_up before sy_e2e_init"
  ((SY_MN_NODES == 0)) || sy_fail "sy_mn_up called twice"
  [[ $nodes == 2 || $nodes == 3 ]] || sy_fail "sy_mn_up: NODES=$nodes must be 2 or 3"
  if [[ ! $pods =~ ^[0-9]+$ ]] || ((pods < 1 || pods > SY_MN_MAX_PODS_PER_NODE)); then
    sy_fail "sy_mn_up: PODS_PER_NODE=$pods must be in 1..$SY_MN_MAX_PODS_PER_NODE"
  fi
  case $SY_MN_FABRIC in
    bridge) SY_MN_FABRIC_DEV=eth0 ;;
    vxlan) SY_MN_FABRIC_DEV=vx0 ;;
    *) sy_fail "SY_MN_FABRIC=$SY_MN_FABRIC must be bridge or vxlan" ;;
  esac
  [[ $SY_MN_FABRIC != vxlan ]] || sy_mn__check_vxlan
  SY_MN_NODES=$nodes
  SY_MN_PODS_PER_NODE=$pods
  SY_MN_FABRIC_NS=$PREFIX-fab
  SY_MN_EXT_NS=$PREFIX-ext
  sy_on_exit sy_mn__cleanup # before anything exists, so a failure half-way is cleaned up too

  local all_ns=("$SY_MN_FABRIC_NS" "$SY_MN_EXT_NS")
  for ((i = 1; i <= nodes; i++)); do
    sy_mn__node_vars "$i"
    [[ ! -e ${SY_MN_PIN[i]} ]] || sy_fail "pin dir ${SY_MN_PIN[i]} exists already (left over by another run?)"
    mkdir "${SY_MN_CG[i]}" || sy_fail "cannot create node-$i's cgroup ${SY_MN_CG[i]}"
    all_ns+=("${SY_MN_NODE_NS[i]}")
    for ((j = 1; j <= pods; j++)); do
      sy_mn__pod_vars "$i" "$j"
      all_ns+=("${SY_MN_POD_NS[$i,$j]}")
    done
  done
  # Input through < <(...), not a pipe: sy_fail must run in the test's own shell to stop it.
  sy_mn__batch "" "the namespaces" < <(printf 'netns add %s\n' "${all_ns[@]}")
  sy_mn__sysctls < <(sy_mn__sysctl_lines)
  sy_mn__batch "$SY_MN_FABRIC_NS" "the fabric bridge" < <(sy_mn__bridge_lines)
  for ((i = 1; i <= nodes; i++)); do
    sy_mn__batch "${SY_MN_NODE_NS[i]}" "node-$i's devices and routes" < <(sy_mn__node_lines "$i")
    for ((j = 1; j <= pods; j++)); do
      sy_mn__batch "${SY_MN_POD_NS[$i,$j]}" "pod n${i}p$j's devices and routes" < <(sy_mn__pod_lines "$i" "$j")
    done
  done
  sy_mn__batch "$SY_MN_EXT_NS" "ext's devices" \
    < <(sy_mn__fabric_lines "$SY_MN_EXT_UNDERLAY_IP4" "$SY_MN_EXT_IP4" "$SY_MN_EXT_IP6")
  [[ $SY_MN_FABRIC != vxlan ]] || sy_mn__vxlan_flood
  sy_mn_route_external_via 1
  SY_MN_MANIFEST_DIR=$WORK/manifests
  MANIFEST_DIR=$SY_MN_MANIFEST_DIR
  mkdir -p "$SY_MN_MANIFEST_DIR" || sy_fail "mkdir $SY_MN_MANIFEST_DIR"
  sy_log "multi-node topology up ($SY_MN_FABRIC fabric): $nodes nodes x $pods pods," \
    "nodes ${SY_MN_NODE_IP4[*]}, ext $SY_MN_EXT_IP4 via node-$SY_MN_EXT_VIA"
}

# sy_mn_ns WHO: the namespace of a node index, `ext`, `fab`, or a pod as "I,J".
sy_mn_ns() {
  case $1 in
    ext) echo "$SY_MN_EXT_NS" ;;
    fab) echo "$SY_MN_FABRIC_NS" ;;
    *,*)
      [[ -n ${SY_MN_POD_NS[$1]:-} ]] || sy_fail "sy_mn_ns: '$1' is no pod of this cluster"
      echo "${SY_MN_POD_NS[$1]}"
      ;;
    *)
      sy_mn__node "$1" sy_mn_ns
      echo "${SY_MN_NODE_NS[$1]}"
      ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Servers and clients

# sy_mn__serve NS NAME TCP UDP: one sy-testpeer server answering "NAME PEER", ready or fail.
sy_mn__serve() {
  local ns=$1 name=$2 tcp=$3 udp=$4
  sy__spawn "$WORK/$name" ip netns exec "$ns" \
    "$SY_PEER" serve --name "$name" --tcp-port "$tcp" --udp-port "$udp" --report-peer
}

sy_mn__wait_served() {
  local name
  for name in "$@"; do
    sy_wait_for "$name server ready" 5 sy__printed_ready "$WORK/$name.out" ||
      sy_fail "server $name did not start: $(cat "$WORK/$name.err" 2>/dev/null)"
  done
}

# sy_mn_start_servers [TCP_PORT=8080] [UDP_PORT=5353]: a server in every pod, named n<I>p<J>.
sy_mn_start_servers() {
  local tcp=${1:-8080} udp=${2:-5353} i j names=()
  [[ -x $SY_PEER ]] || sy_fail "no sy-testpeer at $SY_PEER (build it: cmake --build $SY_BUILD_DIR --target sy-testpeer)"
  ((SY_MN_NODES > 0)) || sy_fail "sy_mn_start_servers before sy_mn_up"
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    for ((j = 1; j <= SY_MN_PODS_PER_NODE; j++)); do
      sy_mn__serve "${SY_MN_POD_NS[$i,$j]}" "${SY_MN_POD_NAME[$i,$j]}" "$tcp" "$udp"
      names+=("${SY_MN_POD_NAME[$i,$j]}")
    done
  done
  sy_mn__wait_served "${names[@]}"
  sy_log "servers on tcp/$tcp udp/$udp in pods ${names[*]}"
}

# sy_mn_start_host_servers [TCP_PORT=8080] [UDP_PORT=5353]: a server in every node namespace,
# named node-<I>, as a hostNetwork pod would be. Keep the ports clear of NodePorts under test.
sy_mn_start_host_servers() {
  local tcp=${1:-8080} udp=${2:-5353} i names=()
  [[ -x $SY_PEER ]] || sy_fail "no sy-testpeer at $SY_PEER (build it: cmake --build $SY_BUILD_DIR --target sy-testpeer)"
  ((SY_MN_NODES > 0)) || sy_fail "sy_mn_start_host_servers before sy_mn_up"
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    sy_mn__serve "${SY_MN_NODE_NS[i]}" "${SY_MN_NODE_NAME[i]}" "$tcp" "$udp"
    names+=("${SY_MN_NODE_NAME[i]}")
  done
  sy_mn__wait_served "${names[@]}"
  sy_log "host servers on tcp/$tcp udp/$udp in ${names[*]}"
}

# sy_mn_run FROM CMD...: see the header. Node and pod clients go through lib.sh's
# sy_in_cgroup_ns with CG set to the node's cgroup for this call only.
sy_mn_run() {
  local CG=$CG
  case ${1:-} in
    ext)
      shift
      ((SY_MN_NODES > 0)) || sy_fail "sy_mn_run ext before sy_mn_up"
      (($# > 0)) || sy_fail "sy_mn_run ext: no command"
      if [[ $BASHPID != "$$" ]]; then
        exec nsenter --net="/run/netns/$SY_MN_EXT_NS" "$@"
      fi
      nsenter --net="/run/netns/$SY_MN_EXT_NS" "$@"
      ;;
    node)
      sy_mn__node "${2:-}" "sy_mn_run node"
      CG=${SY_MN_CG[$2]}
      local ns=${SY_MN_NODE_NS[$2]}
      shift 2
      (($# > 0)) || sy_fail "sy_mn_run node: no command"
      sy_in_cgroup_ns "$ns" "$@"
      ;;
    pod)
      sy_mn__node "${2:-}" "sy_mn_run pod"
      [[ -n ${SY_MN_POD_NS[${2},${3:-}]:-} ]] ||
        sy_fail "sy_mn_run pod $2 ${3:-}: node-$2 has pods 1..$SY_MN_PODS_PER_NODE"
      CG=${SY_MN_CG[$2]}
      local ns=${SY_MN_POD_NS[$2,$3]}
      shift 3
      (($# > 0)) || sy_fail "sy_mn_run pod: no command"
      sy_in_cgroup_ns "$ns" "$@"
      ;;
    *) sy_fail "sy_mn_run: FROM '${1:-}' must be ext, node I or pod I J" ;;
  esac
}

# sy_mn_probe FROM PROBE_ARGS...: see the header.
sy_mn_probe() {
  case ${1:-} in
    ext) sy_mn_run "$1" "$SY_PEER" probe "${@:2}" ;;
    node) sy_mn_run "$1" "${2:-}" "$SY_PEER" probe "${@:3}" ;;
    pod) sy_mn_run "$1" "${2:-}" "${3:-}" "$SY_PEER" probe "${@:4}" ;;
    *) sy_fail "sy_mn_probe: FROM '${1:-}' must be ext, node I or pod I J" ;;
  esac
}

# sy_mn_expect_probe DESC EXPR FROM PROBE_ARGS...: see the header.
sy_mn_expect_probe() {
  local desc=$1 expr=$2 out
  shift 2
  out=$(sy_mn_probe "$@") || true
  [[ -n $out ]] || sy_fail "expected $desc: the probe printed nothing (from/args: $*)"
  sy_json_check "$out" "$expr" || sy_fail "expected $desc; probe from $* answered $out"
  sy_log "ok: $desc: $out"
  SY_MN_PROBE_OUT=$out
}

# ---------------------------------------------------------------------------------------------
# Daemons: lib.sh's daemon functions, run with NODE_NS, PIN and DAEMON_PID of node I (locals
# of the wrapper, which those functions see and set in place of the globals).

# sy_mn_daemon_start I [LOGFILE=$WORK/daemon-n<I>.log]
sy_mn_daemon_start() {
  local i=${1:-}
  sy_mn__node "$i" sy_mn_daemon_start
  [[ -f ${SY_MN_CONFIG[i]:-} ]] || sy_fail "sy_mn_daemon_start $i before sy_mn_write_config $i"
  [[ -z ${SY_MN_DAEMON_PID[i]:-} ]] || sy_fail "sy_mn_daemon_start $i: daemon ${SY_MN_DAEMON_PID[i]} runs already"
  local NODE_NS=${SY_MN_NODE_NS[i]} DAEMON_PID='' DAEMON_LOG=
  sy_daemon_start "${SY_MN_CONFIG[i]}" "${2:-$WORK/daemon-n$i.log}"
  SY_MN_DAEMON_PID[i]=$DAEMON_PID
  SY_MN_DAEMON_LOG[i]=$DAEMON_LOG
}

# sy_mn_daemon_stop I [TIMEOUT_S=10]: returns the daemon's exit status (124: SIGKILLed).
sy_mn_daemon_stop() {
  local i=${1:-} status=0
  sy_mn__node "$i" sy_mn_daemon_stop
  [[ -n ${SY_MN_DAEMON_PID[i]:-} ]] || sy_fail "sy_mn_daemon_stop $i: no daemon runs on node-$i"
  local DAEMON_PID=${SY_MN_DAEMON_PID[i]}
  sy_daemon_stop "${2:-10}" || status=$?
  SY_MN_DAEMON_PID[i]=
  return "$status"
}

# sy_mn_daemon_kill9 I
sy_mn_daemon_kill9() {
  local i=${1:-}
  sy_mn__node "$i" sy_mn_daemon_kill9
  [[ -n ${SY_MN_DAEMON_PID[i]:-} ]] || sy_fail "sy_mn_daemon_kill9 $i: no daemon runs on node-$i"
  local DAEMON_PID=${SY_MN_DAEMON_PID[i]}
  sy_daemon_kill9
  SY_MN_DAEMON_PID[i]=
}

# sy_mn_status_json I
sy_mn_status_json() {
  sy_mn__node "${1:-}" sy_mn_status_json
  local NODE_NS=${SY_MN_NODE_NS[$1]} PIN=${SY_MN_PIN[$1]}
  sy_status_json
}

# sy_mn_status_check I EXPR
sy_mn_status_check() {
  local out
  out=$(sy_mn_status_json "$1" 2>/dev/null) || return 1
  sy_json_check "$out" "$2"
}

# sy_mn_counter I NAME: prints the counter; use as `n=$(sy_mn_counter 1 sock_xlate)` (set -e
# stops the test when it fails).
sy_mn_counter() {
  local out value
  out=$(sy_mn_status_json "$1") || sy_fail "switchyard status -o json of node-$1 failed"
  value=$(sy_json "$out" "d['counters']['$2']" 2>/dev/null) || sy_fail "node-$1's status has no counter $2: $out"
  echo "$value"
}

# sy_mn_wait_programmed I EXPR [TIMEOUT_S=15]
sy_mn_wait_programmed() {
  local i=$1 expr=$2 timeout_s=${3:-15}
  sy_mn__node "$i" sy_mn_wait_programmed
  sy_wait_for "node-$i's maps to satisfy: $expr" "$timeout_s" sy_mn_status_check "$i" "$expr" ||
    sy_fail "expected node-$i's daemon to program $expr within $timeout_s s; status: $(sy_mn_status_json "$i" 2>&1)"
}

# ---------------------------------------------------------------------------------------------
# Device counters

# sy_mn_set_fabric_mtu MTU: every node's and ext's fabric device gets MTU (68-1500; with
# VXLAN at most 1450, the underlay's 1500 less the encapsulation), so tests can shrink the path
# under traffic.
sy_mn_set_fabric_mtu() {
  local mtu=${1:-} max=1500 i
  [[ $SY_MN_FABRIC == vxlan ]] && max=1450
  [[ $mtu =~ ^[0-9]+$ ]] && ((mtu >= 68 && mtu <= max)) || sy_fail "sy_mn_set_fabric_mtu: MTU '$mtu' must be 68-$max"
  ((SY_MN_NODES > 0)) || sy_fail "sy_mn_set_fabric_mtu before sy_mn_up"
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    sy_mn__batch "${SY_MN_NODE_NS[i]}" "node-$i's fabric MTU" <<<"link set $SY_MN_FABRIC_DEV mtu $mtu"
  done
  sy_mn__batch "$SY_MN_EXT_NS" "ext's fabric MTU" <<<"link set $SY_MN_FABRIC_DEV mtu $mtu"
  SY_MN_FABRIC_MTU=$mtu
}

# sy_mn_dev_packets WHO DEV rx|tx: prints the packet counter (WHO: a node index, ext or fab),
# read from sysfs as `ip netns exec` mounts it for the namespace (the same numbers as
# `ip -s -j link`'s stats64, without a JSON parser per read). Use as n=$(sy_mn_dev_packets ...).
sy_mn_dev_packets() {
  local who=$1 dev=$2 dir=$3 ns
  [[ $dir == rx || $dir == tx ]] || sy_fail "sy_mn_dev_packets: direction '$dir' must be rx or tx"
  ns=$(sy_mn_ns "$who") || sy_fail "sy_mn_dev_packets: '$who' is not a node index, ext or fab"
  ip netns exec "$ns" cat "/sys/class/net/$dev/statistics/${dir}_packets" 2>/dev/null ||
    sy_fail "sy_mn_dev_packets: no device $dev in $ns"
}

# ---------------------------------------------------------------------------------------------
# Cleanup: one sy_on_exit step, run by lib.sh's trap before it kills processes and deletes the
# namespaces and cgroups: the daemons go first (a running daemon holds its pins), then each
# node's own `switchyard cleanup` runs in its namespace while its devices and cgroup still exist.

sy_mn__cleanup() {
  local i pid
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    pid=${SY_MN_DAEMON_PID[i]:-}
    [[ -n $pid ]] || continue
    kill -TERM "$pid" 2>/dev/null
    if ! sy_wait_for "node-$i's daemon exits" 5 sy__gone "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null
      sy_wait_for "node-$i's daemon dies" 2 sy__gone "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    SY_MN_DAEMON_PID[i]=
  done
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    local pin=${SY_MN_PIN[i]:-} ns=${SY_MN_NODE_NS[i]:-} log=$WORK/cleanup-n$i.log
    [[ -n $pin && $pin == /sys/fs/bpf/"$PREFIX"-n* && -e $pin ]] || continue
    if [[ -x ${SY_BIN:-} && -e /run/netns/$ns ]]; then
      timeout 20 nsenter --net="/run/netns/$ns" "$SY_BIN" cleanup --pin-path "$pin" >"$log" 2>&1 ||
        { echo "WARNING [$SY_TEST_NAME]: switchyard cleanup of node-$i failed:" >&2; cat "$log" >&2; }
    fi
    rm -rf "$pin" 2>/dev/null || echo "WARNING [$SY_TEST_NAME]: could not remove $pin" >&2
  done
  return 0
}
