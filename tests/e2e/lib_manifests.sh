# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the test scripts
# tests/e2e/lib_manifests.sh: the files the daemon reads in end-to-end tests: its configuration
# and Kubernetes manifests. Sourced by lib.sh; uses its WORK, PIN, CG, POD_IPS and sy_fail.

# ---------------------------------------------------------------------------------------------
# Daemon configuration

# sy_write_config FILE [SOCKET_LB=true] [MANIFEST_DIR=$WORK/manifests]: the daemon's YAML config.
# healthz and metrics listen on the node namespace's loopback, so the fixed ports cannot clash
# with anything outside; reach them with `sy_in_ns "$NODE_NS" curl -s http://$HEALTHZ_ADDR/healthz`.
sy_write_config() {
  local file=${1:?sy_write_config needs a file} socket_lb=${2:-true} manifests=${3:-$WORK/manifests}
  [[ $socket_lb == true || $socket_lb == false ]] || sy_fail "sy_write_config: socketLB must be true or false"
  mkdir -p "$manifests"
  MANIFEST_DIR=$manifests
  HEALTHZ_ADDR=127.0.0.1:10256
  METRICS_ADDR=127.0.0.1:10249
  sy__write_atomically "$file" <<EOF
apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
hostnameOverride: $SY_NODE_NAME
healthzBindAddress: $HEALTHZ_ADDR
metricsBindAddress: $METRICS_ADDR
clusterCIDR: 198.18.0.0/16
source:
  kind: files
  path: $manifests
bpf:
  pinPath: $PIN
  cgroupPath: $CG
  socketLB: $socket_lb
  devices: [veth-c]
EOF
}

# ---------------------------------------------------------------------------------------------
# Manifests, written exactly as `kubectl get -o yaml` prints them (keys sorted, lists unindented)

# Writes stdin to FILE through a temp file in the same directory and a rename, so a reader
# never sees half a file. The temp name starts with "." and does not end in .yaml, so the
# daemon's directory scan ignores it.
sy__write_atomically() {
  local file=$1
  local tmp
  tmp="$(dirname "$file")/.$(basename "$file").tmp.$$"
  if ! cat >"$tmp" || ! mv -f "$tmp" "$file"; then
    rm -f "$tmp"
    sy_fail "cannot write $file"
  fi
}

# A stable uid per object, like the API server's (but reproducible from the name).
sy__uid() {
  local h
  h=$(printf '%s' "$1" | md5sum | cut -c1-32)
  echo "${h:0:8}-${h:8:4}-${h:12:4}-${h:16:4}-${h:20:12}"
}

# A new resourceVersion for every write, as the API server gives one per change.
sy__next_resource_version() {
  local file=$WORK/resource-version rv=1000
  [[ -f $file ]] && rv=$(<"$file")
  rv=$((rv + 1))
  echo "$rv" >"$file"
  echo "$rv"
}

sy__port_name() {
  case $1 in
    TCP) echo http ;;
    UDP) echo dns ;;
    *) echo "$1" | tr '[:upper:]' '[:lower:]' ;;
  esac
}

sy__family_of() {
  if [[ $1 == *:* ]]; then echo IPv6; else echo IPv4; fi
}

# sy_write_service DIR NAME CLUSTERIP PORT TARGETPORT PROTO -> DIR/svc-NAME.yaml
sy_write_service() {
  (($# == 6)) || sy_fail "sy_write_service DIR NAME CLUSTERIP PORT TARGETPORT PROTO (got: $*)"
  local dir=$1 name=$2 cluster_ip=$3 port=$4 target_port=$5 proto=$6
  local rv
  rv=$(sy__next_resource_version)
  sy__write_atomically "$dir/svc-$name.yaml" <<EOF
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: "2024-01-01T00:00:00Z"
  name: $name
  namespace: default
  resourceVersion: "$rv"
  uid: $(sy__uid "Service/default/$name")
spec:
  clusterIP: $cluster_ip
  clusterIPs:
  - $cluster_ip
  internalTrafficPolicy: Cluster
  ipFamilies:
  - $(sy__family_of "$cluster_ip")
  ipFamilyPolicy: SingleStack
  ports:
  - name: $(sy__port_name "$proto")
    port: $port
    protocol: $proto
    targetPort: $target_port
  selector:
    app: $name
  sessionAffinity: None
  type: ClusterIP
status:
  loadBalancer: {}
EOF
}

# The pod name behind a pod IP of the topology, or nothing.
sy__pod_of() {
  local i
  for ((i = 0; i < ${#POD_IPS[@]}; i++)); do
    if [[ ${POD_IPS[i]} == "$1" ]]; then
      echo "${POD_NAMES[i]}"
      return
    fi
  done
}

# sy_write_slice DIR NAME SVCNAME PORT PROTO [IP[=STATE]...] -> DIR/slice-NAME.yaml
# STATE is ready (default), terminating (serving, not ready) or notready (neither). No IP at all
# writes `endpoints: null`, as kubectl shows a slice without endpoints.
sy_write_slice() {
  (($# >= 5)) || sy_fail "sy_write_slice DIR NAME SVCNAME PORT PROTO [IP...] (got: $*)"
  local dir=$1 name=$2 svc=$3 port=$4 proto=$5
  shift 5
  local rv entry ip state ready serving terminating pod endpoints="" family=IPv4
  rv=$(sy__next_resource_version)
  if (($# == 0)); then
    endpoints="endpoints: null"$'\n'
  else
    family=$(sy__family_of "${1%%=*}")
    endpoints="endpoints:"$'\n'
    for entry in "$@"; do
      ip=${entry%%=*}
      state=ready
      [[ $entry == *=* ]] && state=${entry#*=}
      case $state in
        ready) ready=true serving=true terminating=false ;;
        terminating) ready=false serving=true terminating=true ;;
        notready) ready=false serving=false terminating=false ;;
        *) sy_fail "sy_write_slice: endpoint state '$state' must be ready, terminating or notready" ;;
      esac
      endpoints+="- addresses:
  - $ip
  conditions:
    ready: $ready
    serving: $serving
    terminating: $terminating
  nodeName: $SY_NODE_NAME
"
      pod=$(sy__pod_of "$ip")
      if [[ -n $pod ]]; then
        endpoints+="  targetRef:
    kind: Pod
    name: $pod
    namespace: default
    uid: $(sy__uid "Pod/default/$pod")
"
      fi
    done
  fi
  sy__write_atomically "$dir/slice-$name.yaml" <<EOF
addressType: $family
apiVersion: discovery.k8s.io/v1
${endpoints}kind: EndpointSlice
metadata:
  creationTimestamp: "2024-01-01T00:00:00Z"
  generateName: $svc-
  generation: 1
  labels:
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
    kubernetes.io/service-name: $svc
  name: $name
  namespace: default
  ownerReferences:
  - apiVersion: v1
    blockOwnerDeletion: true
    controller: true
    kind: Service
    name: $svc
    uid: $(sy__uid "Service/default/$svc")
  resourceVersion: "$rv"
  uid: $(sy__uid "EndpointSlice/default/$name")
ports:
- name: $(sy__port_name "$proto")
  port: $port
  protocol: $proto
EOF
}

# sy_remove_service DIR NAME / sy_remove_slice DIR NAME: delete what sy_write_* wrote.
sy_remove_service() {
  rm -f "$1/svc-$2.yaml"
}

sy_remove_slice() {
  rm -f "$1/slice-$2.yaml"
}
