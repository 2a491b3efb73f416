# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the test scripts
# tests/e2e/lib_multinode_manifests.sh: the files the daemons of the multi-node cluster read:
# each node's configuration and the Kubernetes manifests they all share (one directory,
# $SY_MN_MANIFEST_DIR, as if from one API server). Sourced by lib_multinode.sh; the YAML is made
# by lib_multinode_manifests.py, as `kubectl get -o yaml` prints it, and written atomically with
# lib_manifests.sh's sy__write_atomically. lib_manifests.sh's own writers (sy_write_service,
# sy_write_slice, sy_remove_*) work on the same directory for the simple cases.
#
#   sy_mn_write_config I [SOCKET_LB=true] [EXTRA_YAML]
#       $WORK/config-n<I>.yaml, path in SY_MN_CONFIG[I]. The defaults (sy_mn__config_defaults,
#       the one place they live): hostnameOverride node-<I>; healthz and metrics on 127.0.0.1 of
#       the node's namespace; clusterCIDR 198.18.16.0/20,2001:db8:1::/48; the files source on
#       $SY_MN_MANIFEST_DIR, polled every 100 ms; bpf.pinPath /sys/fs/bpf/$PREFIX-n<I>,
#       bpf.cgroupPath $CG/n<I>, bpf.socketLB SOCKET_LB, bpf.devices the node's pod veths.
#       Then $SY_MN_EXTRA_CONFIG (all nodes) and EXTRA_YAML (this node) are merged in, each a
#       YAML mapping: mappings merge key by key, anything else replaces, `key: null` removes a
#       default. E.g. SY_MN_EXTRA_CONFIG='bpf: {hostDevices: [eth0]}'.
#   sy_mn_write_service NAME KEY=VALUE...   -> svc-NAME.yaml (namespace default, selector app=NAME)
#       clusterIP=IP[,IP6]        required; two addresses make a dual-stack Service (ipFamilies
#                                 both, RequireDualStack); None for headless
#       port=NAME,PORT,TARGETPORT[,PROTO=TCP[,NODEPORT]]   repeat for several ports; NAME may be
#                                 empty for a single port; TARGETPORT a number or a port name;
#                                 NodePort and LoadBalancer types need every NODEPORT
#       type=ClusterIP|NodePort|LoadBalancer   externalIPs=IP,...
#       lbIngress=IP[@VIP|@Proxy],...          status.loadBalancer.ingress (ip, ipMode)
#       externalTrafficPolicy=Cluster|Local    healthCheckNodePort=N (LoadBalancer + Local)
#       internalTrafficPolicy=Cluster|Local    sessionAffinity=None|ClientIP  affinityTimeout=S
#       sourceRanges=CIDR,...                  ipFamilyPolicy=...  allocateLoadBalancerNodePorts=B
#       trafficDistribution=PreferClose|PreferSameZone|PreferSameNode
#       annotation=KEY=VALUE  label=KEY=VALUE  (repeatable)
#   sy_mn_write_slice NAME SERVICE FAMILY PORTS [ENDPOINT...]   -> slice-NAME.yaml
#       FAMILY IPv4|IPv6 (the pods' addresses of that family); PORTS NAME:PORT/PROTO,...
#       (NAME may be empty); ENDPOINT is POD[:OPTION...] with POD n<I>p<J> (a pod) or node-<I>
#       (the node's own address, a hostNetwork endpoint); nodeName is the pod's node, zone that
#       node's zone from sy_mn_write_node. OPTIONs: a state ready (default) | notready |
#       terminating (serving) | terminating-notserving; ready=B serving=B terminating=B;
#       zone=Z (empty: none); nodeName=N; forZones=A+B; forNodes=node-1+node-2.
#       No ENDPOINT writes `endpoints: null`. Example: n1p1 n2p1:terminating:forZones=zone-b
#   sy_mn_write_node I ZONE [TAINTS] [deleting]   -> node-node-<I>.yaml, kind Node, sets SY_MN_ZONE[I]
#       labels topology.kubernetes.io/zone=ZONE (none if empty) and kubernetes.io/hostname;
#       TAINTS KEY[=VALUE]:EFFECT,...; `deleting` sets metadata.deletionTimestamp.
#       (The files source does not read Nodes yet: nothing here depends on them.)
#   sy_mn_remove_node I                     deletes node-node-<I>.yaml
# Remove Services and slices with lib_manifests.sh's sy_remove_service / sy_remove_slice
# "$SY_MN_MANIFEST_DIR" NAME. A bad argument fails the test naming the argument.

SY_MN_MANIFEST_PY=${SY_MN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/lib_multinode_manifests.py
SY_MN_EXTRA_CONFIG=${SY_MN_EXTRA_CONFIG:-}

# sy_mn__yaml WHAT OUTFILE ARGS...: runs the generator, writes its output to OUTFILE atomically,
# or fails the test with the generator's complaint.
sy_mn__yaml() {
  local what=$1 file=$2 out err rc=0 python=(python3 -S)
  shift 2
  # -S (no site packages) starts in half the time; only the config merge needs PyYAML.
  [[ $1 != config ]] || python=(python3)
  err=$WORK/.manifest-error
  out=$("${python[@]}" "$SY_MN_MANIFEST_PY" "$@" 2>"$err") || rc=$?
  ((rc == 0)) || sy_fail "$what: $(cat "$err")"
  rm -f "$err"
  sy__write_atomically "$file" <<<"$out"
}

# The cluster as the generator needs it: every pod and node address, node names, zones.
sy_mn__context() {
  ((SY_MN_NODES > 0)) || sy_fail "manifests of the multi-node cluster before sy_mn_up"
  local i j key node pods="" nodes="" zones=""
  local endpoint='"%s": {"ip4": "%s", "ip6": "%s", "node": "%s", "pod": %s}, '
  for ((i = 1; i <= SY_MN_NODES; i++)); do
    node=${SY_MN_NODE_NAME[i]}
    for ((j = 1; j <= SY_MN_PODS_PER_NODE; j++)); do
      key="$i,$j"
      # shellcheck disable=SC2059 # the format is the local above
      pods+=$(printf "$endpoint" "${SY_MN_POD_NAME[$key]}" "${SY_MN_POD_IP4[$key]}" "${SY_MN_POD_IP6[$key]}" "$node" true)
    done
    # shellcheck disable=SC2059
    pods+=$(printf "$endpoint" "$node" "${SY_MN_NODE_IP4[i]}" "${SY_MN_NODE_IP6[i]}" "$node" false) # hostNetwork
    nodes+=$(printf '"%s": {"name": "%s", "ip4": "%s", "ip6": "%s", "podCIDR4": "%s", "podCIDR6": "%s"}, ' "$i" \
      "$node" "${SY_MN_NODE_IP4[i]}" "${SY_MN_NODE_IP6[i]}" "${SY_MN_POD_CIDR4[i]}" "${SY_MN_POD_CIDR6[i]}")
    [[ -z ${SY_MN_ZONE[i]:-} ]] || zones+="\"$node\": \"${SY_MN_ZONE[i]}\", "
  done
  echo "{\"pods\": {${pods%, }}, \"nodes\": {${nodes%, }}, \"zones\": {${zones%, }}}"
}

# ---------------------------------------------------------------------------------------------
# Daemon configuration

# The defaults of node I's configuration, the one place they are written down.
sy_mn__config_defaults() {
  local i=$1 socket_lb=$2 devices
  devices=${SY_MN_POD_DEVS[i]// /, }
  cat <<EOF
apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
hostnameOverride: ${SY_MN_NODE_NAME[i]}
healthzBindAddress: $SY_MN_HEALTHZ_ADDR
metricsBindAddress: $SY_MN_METRICS_ADDR
clusterCIDR: $SY_MN_CLUSTER_CIDR4,$SY_MN_CLUSTER_CIDR6
source:
  kind: files
  path: $SY_MN_MANIFEST_DIR
  pollInterval: 100ms
bpf:
  pinPath: ${SY_MN_PIN[i]}
  cgroupPath: ${SY_MN_CG[i]}
  socketLB: $socket_lb
  devices: [$devices]
EOF
}

# sy_mn_write_config I [SOCKET_LB=true] [EXTRA_YAML]: see the header.
sy_mn_write_config() {
  local i=${1:-} socket_lb=${2:-true} extra=${3:-}
  sy_mn__node "$i" sy_mn_write_config
  [[ $socket_lb == true || $socket_lb == false ]] ||
    sy_fail "sy_mn_write_config $i: socketLB '$socket_lb' must be true or false"
  SY_MN_CONFIG[i]=$WORK/config-n$i.yaml
  sy_mn__yaml "sy_mn_write_config $i" "${SY_MN_CONFIG[i]}" config \
    "$(sy_mn__config_defaults "$i" "$socket_lb")" "$SY_MN_EXTRA_CONFIG" "$extra"
}

# ---------------------------------------------------------------------------------------------
# Manifests

# sy_mn_write_service NAME KEY=VALUE...: see the header.
sy_mn_write_service() {
  local name=${1:?sy_mn_write_service needs a name} rv
  shift
  [[ $name =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]] || sy_fail "sy_mn_write_service: '$name' is not a Service name"
  ((SY_MN_NODES > 0)) || sy_fail "sy_mn_write_service before sy_mn_up"
  rv=$(sy__next_resource_version)
  sy_mn__yaml "sy_mn_write_service $name" "$SY_MN_MANIFEST_DIR/svc-$name.yaml" service "$name" "$rv" "$@"
}

# sy_mn_write_slice NAME SERVICE FAMILY PORTS [ENDPOINT...]: see the header.
sy_mn_write_slice() {
  (($# >= 4)) || sy_fail "sy_mn_write_slice NAME SERVICE FAMILY PORTS [ENDPOINT...] (got: $*)"
  local name=$1 svc=$2 family=$3 ports=$4 rv context
  shift 4
  context=$(sy_mn__context) || sy_fail "sy_mn_write_slice before sy_mn_up"
  rv=$(sy__next_resource_version)
  sy_mn__yaml "sy_mn_write_slice $name" "$SY_MN_MANIFEST_DIR/slice-$name.yaml" \
    slice "$name" "$svc" "$family" "$ports" "$rv" "$context" "$@"
}

# sy_mn_write_node I ZONE [TAINTS] [deleting]: see the header.
sy_mn_write_node() {
  local i=${1:-} zone=${2-} taints=${3:-} deleting=${4:-} rv context
  sy_mn__node "$i" sy_mn_write_node
  [[ -z $deleting || $deleting == deleting ]] || sy_fail "sy_mn_write_node $i: 4th argument '$deleting' must be 'deleting' or empty"
  SY_MN_ZONE[i]=$zone
  context=$(sy_mn__context)
  rv=$(sy__next_resource_version)
  sy_mn__yaml "sy_mn_write_node $i" "$SY_MN_MANIFEST_DIR/node-${SY_MN_NODE_NAME[i]}.yaml" \
    node "$i" "$rv" "$context" "$zone" "$taints" "$deleting"
}

# sy_mn_remove_node I
sy_mn_remove_node() {
  sy_mn__node "${1:-}" sy_mn_remove_node
  rm -f "$SY_MN_MANIFEST_DIR/node-${SY_MN_NODE_NAME[$1]}.yaml"
}
