# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the test scripts
# tests/e2e/lib_netpol.sh: NetworkPolicy truth tables on the multi-node cluster in a box
# (lib_multinode.sh), in the style of the upstream netpol e2e suite and Cyclonus: a grid of pods
# x/a x/b x/c y/a ... z/c (namespaces x, y, z labelled ns=NAME; pods labelled pod=NAME), every
# pod probing every other on TCP, UDP and a named port, the observed matrix compared cell by
# cell with the expected one, written in a compact reachability DSL (lib_netpol.py's header).
#
#   source lib.sh; source lib_cluster.sh; source lib_multinode.sh; source lib_netpol.sh
#   sy_e2e_init NAME
#   np_up 2|1                  the grid on two nodes (alternating: x/a node-1, x/b node-2, ...)
#                              or all on node-1; servers started, Pods and Namespaces written,
#                              daemons started with policy.enabled (node-1 socket LB, node-2 tc)
#   np_policy NS NAME SPEC     writes NetworkPolicy NS/NAME, SPEC its spec as YAML (flow style
#                              is fine); np_unpolicy NS NAME removes it
#                              (np_unpolicy_all: every policy written)
#   np_relabel POD LABELS      a Pod's new labels ("pod=b,role=client"), written to its manifest
#   np_service BACKEND IP4 IP6 a ClusterIP Service (port 80 -> 80/TCP) whose one endpoint is
#                              BACKEND, both families; columns svc and svctc probe it
#   np_sync                    waits until every daemon programmed the manifests written so far
#   np_expect DESC DSL [COLS=tcp,udp,named] [FAMS=4,6]
#                              probes every pod -> every pod on COLS in FAMS, in parallel, and
#                              fails the test with the tables of the mismatched cells unless the
#                              observed matrix is DSL's; a cell that mismatches is probed once
#                              more (slow machines) before it counts
#   np_rules I POD DIR         node I's rules map entries of POD's endpoint (ingress|egress), one
#                              "PEER WHAT" a line (PEER: pods sharing the identity, any, cidr:N)
#   np_endpoint I POD          node I's pol_ep_v1 entry of POD: "endpoint=N identity=N flags=..."
#   np_expect_rules DESC I POD DIR "PEER WHAT; ..."   fails the test unless np_rules prints
#                              exactly those entries (any order)
#   np_hold_start FROM TO / np_hold_received / np_hold_stop   one held TCP connection FROM ->
#                              TO:80 (IPv4) with a request every 100 ms, never reconnected: the
#                              answers it got so far; np_hold_stop fails unless it ended cleanly
#
# Columns: tcp (TCP/80), udp (UDP/81), named (TCP to the pod's own "serve" port: x/a 82, x/b 83,
# ... z/c 90, declared in containers[].ports), other (TCP to the next pod's "serve" number, which
# every pod also serves, unnamed: a named-port rule must not open it), svc (the ClusterIP from
# the client pod, in its node's cgroup: socket LB on node-1, tc on node-2), svctc (the ClusterIP
# from the client pod outside the socket-LB cgroup: the tc programs translate on every node).
#
# Waiting for the daemons (np_sync): every change also moves a marker Pod (np-marker/step, on no
# node, 198.18.31.N) to a new address, in a file that sorts after every other; once each node's
# pol_ipcache_v1 holds the new address as a pod, and its pol_state_v1 revision moved (bumped
# after a complete write: additions come before removals), that node has read and programmed
# everything written before it.
#
# Variables: NP_NODES (1 or 2), NP_GRID (the grid's JSON file), NP_NODE_OF[POD] (node index),
# NP_NS_OF[POD] (the pod's network namespace), NP_TIMEOUT_MS (per probe, default 1000),
# NP_EXTRA_CONFIG (YAML merged into both daemons' configuration; default policy: {enabled: true}).

NP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NP_PY=$NP_DIR/lib_netpol.py
NP_PODS=(x/a x/b x/c y/a y/b y/c z/a z/b z/c)
NP_NODES=0
NP_GRID=
NP_STEP=0
NP_TIMEOUT_MS=${NP_TIMEOUT_MS:-1000}
NP_PROBE_RUN=0
declare -gA NP_NODE_OF=() NP_NS_OF=() NP_SLOT_OF=()

# np__py WHAT ARGS...: lib_netpol.py, or fail the test with its complaint.
np__py() {
  local what=$1 out rc=0
  shift
  out=$(python3 -S "$NP_PY" "$@" 2>&1) || rc=$?
  ((rc == 0)) || sy_fail "$what: $out"
  [[ -z $out ]] || printf '%s\n' "$out"
}

# np__file NAME: writes stdin to the manifest NAME atomically.
np__file() {
  sy__write_atomically "$SY_MN_MANIFEST_DIR/$1"
}

np__pod_file() {
  local pod=$1 rv
  rv=$(sy__next_resource_version)
  np__py "pod $pod" pod "$NP_GRID" "$pod" "$rv" | np__file "np-pod-${pod/\//-}.yaml"
}

# np_up NODES: see the header.
np_up() {
  local nodes=${1:-2} i=0 pod node slot lines=""
  [[ $nodes == 1 || $nodes == 2 ]] || sy_fail "np_up: NODES '$nodes' must be 1 or 2"
  NP_NODES=$nodes
  if ((nodes == 2)); then
    sy_mn_up 2 5
  else
    sy_mn_up 2 9 # node-2 stays without pods of the grid and without a daemon
  fi
  for pod in "${NP_PODS[@]}"; do
    if ((nodes == 2)); then
      node=$((i % 2 + 1)) slot=$((i / 2 + 1))
    else
      node=1 slot=$((i + 1))
    fi
    NP_NODE_OF[$pod]=$node
    NP_SLOT_OF[$pod]=$slot
    NP_NS_OF[$pod]=${SY_MN_POD_NS[$node,$slot]}
    lines+="$pod $node ${SY_MN_POD_IP4[$node,$slot]} ${SY_MN_POD_IP6[$node,$slot]} ${SY_MN_POD_NS[$node,$slot]}"$'\n'
    i=$((i + 1))
  done
  NP_GRID=$WORK/np-grid.json
  np__py "the grid" grid "$NP_GRID" <<<"$lines"
  np__start_servers
  np__py "the namespaces" namespaces "$(sy__next_resource_version)" | np__file np-namespaces.yaml
  for pod in "${NP_PODS[@]}"; do
    np__pod_file "$pod"
  done
  np__marker
  local extra=${NP_EXTRA_CONFIG-"policy: {enabled: true}"}
  sy_mn_write_config 1 true "$extra"
  sy_mn_daemon_start 1
  if ((nodes == 2)); then
    sy_mn_write_config 2 false "$extra"
    sy_mn_daemon_start 2
  fi
  np_sync 20
  sy_log "netpol grid up on $nodes node(s): $(for p in "${NP_PODS[@]}"; do printf '%s@node-%s ' "$p" "${NP_NODE_OF[$p]}"; done)"
}

# Three servers per pod, all answering "POD PEER": TCP 80 + UDP 81, the named port, the other.
np__start_servers() {
  local pod ns named other names=() log
  [[ -x $SY_PEER ]] || sy_fail "no sy-testpeer at $SY_PEER (build it: cmake --build $SY_BUILD_DIR --target sy-testpeer)"
  for pod in "${NP_PODS[@]}"; do
    ns=${NP_NS_OF[$pod]}
    read -r named other < <(python3 -S -c 'import json,sys; p=json.load(open(sys.argv[1]))["pods"][sys.argv[2]]; print(p["named"], p["other"])' "$NP_GRID" "$pod")
    log=$WORK/np-srv-${pod/\//-}
    sy__spawn "$log-main" ip netns exec "$ns" "$SY_PEER" serve --name "$pod" --tcp-port 80 --udp-port 81 --report-peer
    sy__spawn "$log-named" ip netns exec "$ns" "$SY_PEER" serve --name "$pod" --tcp-port "$named" --udp-port 0 --report-peer
    sy__spawn "$log-other" ip netns exec "$ns" "$SY_PEER" serve --name "$pod" --tcp-port "$other" --udp-port 0 --report-peer
    names+=("$log-main" "$log-named" "$log-other")
  done
  for log in "${names[@]}"; do
    sy_wait_for "server $log ready" 5 sy__printed_ready "$log.out" ||
      sy_fail "server $log did not start: $(cat "$log.err" 2>/dev/null)"
  done
}

np__marker() {
  NP_STEP=$((NP_STEP + 1))
  np__py "the step marker" marker "$NP_STEP" "$(sy__next_resource_version)" | np__file zzz-np-step.yaml
}

# np_policy NS NAME SPEC: see the header.
np_policy() {
  local ns=$1 name=$2 spec=$3 rv
  rv=$(sy__next_resource_version)
  {
    cat <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: $name
  namespace: $ns
  resourceVersion: "$rv"
  uid: $(sy__uid "NetworkPolicy/$ns/$name")
spec:
EOF
    # shellcheck disable=SC2001 # every line, not one substitution
    sed 's/^/  /' <<<"$spec"
  } | np__file "np-pol-$ns-$name.yaml"
}

np_unpolicy() {
  [[ -f $SY_MN_MANIFEST_DIR/np-pol-$1-$2.yaml ]] || sy_fail "np_unpolicy $1 $2: no such policy written"
  rm -f "$SY_MN_MANIFEST_DIR/np-pol-$1-$2.yaml"
}

# np_unpolicy_all: removes every policy written.
np_unpolicy_all() {
  rm -f "$SY_MN_MANIFEST_DIR"/np-pol-*.yaml
}

# np_relabel POD LABELS: see the header.
np_relabel() {
  np__py "np_relabel $1" relabel "$NP_GRID" "$1" "$2"
  np__pod_file "$1"
}

# np_service BACKEND IP4 IP6: see the header.
np_service() {
  local backend=$1 ip4=$2 ip6=$3 node slot pod
  np__py "np_service" service "$NP_GRID" "$backend" "$ip4" "$ip6" 80
  node=${NP_NODE_OF[$backend]} slot=${NP_SLOT_OF[$backend]}
  pod=${SY_MN_POD_NAME[$node,$slot]}
  sy_mn_write_service np-web "clusterIP=$ip4,$ip6" port=http,80,80,TCP
  sy_mn_write_slice np-web-4 np-web IPv4 http:80/TCP "$pod"
  sy_mn_write_slice np-web-6 np-web IPv6 http:80/TCP "$pod"
  local i expr
  expr="$(sy_svc_has "$ip4" 80 TCP 1) and $(sy_svc_has "$ip6" 80 TCP 1)"
  for ((i = 1; i <= NP_NODES; i++)); do
    sy_mn_wait_programmed "$i" "$expr"
  done
}

# np__marker_programmed I KEY_BYTE...: node I's ipcache has the marker's address as a pod's.
np__marker_programmed() {
  local out
  out=$(bpftool -j map lookup pinned "${SY_MN_PIN[$1]}/pol_ipcache_v1" key "${@:2}" 2>/dev/null) || return 1
  python3 -S -c '
import json, sys
v = json.loads(sys.argv[1])["value"]
sys.exit(0 if int.from_bytes(bytes(int(b, 16) for b in v[0:4]), "little") >= 256 else 1)' "$out"
}

# np_sync [TIMEOUT_S=10]: see the header.
# np__revision I: node I's pol_state_v1 revision ("none" before the daemon made the map).
np__revision() {
  local out
  if out=$(bpftool -j map lookup pinned "${SY_MN_PIN[$1]}/pol_state_v1" key 0 0 0 0 2>/dev/null); then
    python3 -S -c '
import json, sys
v = json.loads(sys.argv[1])["value"]
print(int.from_bytes(bytes(int(b, 16) for b in v[0:4]), "little"))' "$out"
  else
    echo none
  fi
}

np__revision_moved() {
  [[ $(np__revision "$1") != "$2" ]]
}

np_sync() {
  local timeout_s=${1:-10} i key
  local -a before=()
  for ((i = 1; i <= NP_NODES; i++)); do
    before[i]=$(np__revision "$i")
  done
  np__marker
  read -ra key < <(np__py "marker key" marker-key "$NP_STEP")
  for ((i = 1; i <= NP_NODES; i++)); do
    sy_wait_for "node-$i's policy maps to hold step $NP_STEP" "$timeout_s" np__marker_programmed "$i" "${key[@]}" ||
      sy_fail "expected node-$i's daemon to program the policy manifests (step marker $NP_STEP) within ${timeout_s}s;" \
        "pol_ipcache_v1: $(bpftool map lookup pinned "${SY_MN_PIN[i]}/pol_ipcache_v1" key "${key[@]}" 2>&1 | head -5);" \
        "log: $(tail -5 "${SY_MN_DAEMON_LOG[i]}" 2>/dev/null)"
    # The writer adds before it removes and bumps the revision once the write is complete.
    sy_wait_for "node-$i's policy revision to move past ${before[i]}" "$timeout_s" np__revision_moved "$i" "${before[i]}" ||
      sy_fail "expected node-$i's pol_state_v1 revision to move past ${before[i]} once step $NP_STEP was written"
  done
}

# np__probe_from POD COLS FAMS OUT [RETRY]: every probe from POD, in parallel, one line each in
# OUT: "SRC DST COL FAM RC JSON". svctc probes run outside the node's cgroup. With RETRY, only
# the cells listed there for POD ("SRC DST COL FAM" lines), with twice the timeout.
np__probe_from() {
  local src=$1 cols=$2 fams=$3 out=$4 retry=${5:-} node lines timeout=$NP_TIMEOUT_MS
  node=${NP_NODE_OF[$src]}
  lines=$(np__py "probes from $src" targets "$NP_GRID" "$src" "$cols" "$fams")
  if [[ -n $retry ]]; then
    lines=$(awk -v src="$src" 'NR == FNR { if ($1 == src) want[$2 " " $3 " " $4] = 1; next }
                               ($1 " " $2 " " $3) in want' "$retry" - <<<"$lines")
    timeout=$((NP_TIMEOUT_MS * 2))
  fi
  [[ -n $lines ]] || return 0
  # shellcheck disable=SC2016 # expanded by the inner bash
  local script='src=$1 peer=$2 timeout=$3 which=$4
    while read -r dst col fam target proto; do
      case $which/$col in all/* | tc/svctc | cg/tcp | cg/udp | cg/named | cg/other | cg/svc) ;; *) continue ;; esac
      {
        r=$("$peer" probe --proto "$proto" --target "$target" --count 1 --timeout-ms "$timeout" 2>/dev/null)
        echo "$src $dst $col $fam $? $r"
      } &
    done
    wait'
  if [[ $lines != *svctc* ]]; then
    sy_mn_run pod "$node" "${NP_SLOT_OF[$src]}" bash -c "$script" np-probe "$src" "$SY_PEER" "$timeout" all <<<"$lines" >>"$out"
  else
    sy_mn_run pod "$node" "${NP_SLOT_OF[$src]}" bash -c "$script" np-probe "$src" "$SY_PEER" "$timeout" cg <<<"$lines" >>"$out" &
    local pid=$!
    nsenter --net="/run/netns/${NP_NS_OF[$src]}" bash -c "$script" np-probe "$src" "$SY_PEER" "$timeout" tc <<<"$lines" >>"$out"
    wait "$pid"
  fi
}

# np__probe_all COLS FAMS OUT [RETRY]: every source at once.
np__probe_all() {
  local pod pids=()
  for pod in "${NP_PODS[@]}"; do
    np__probe_from "$pod" "$@" &
    pids+=($!)
  done
  wait "${pids[@]}" || true
}

# np_expect DESC DSL [COLS] [FAMS]: see the header.
np_expect() {
  local desc=$1 dsl=$2 cols=${3:-tcp,udp,named} fams=${4:-4,6} out retry report t0
  np__py "np_expect $desc: the reachability" expected-check "$dsl" >/dev/null
  NP_PROBE_RUN=$((NP_PROBE_RUN + 1))
  out=$WORK/np-probe-$NP_PROBE_RUN.txt retry=$WORK/np-retry-$NP_PROBE_RUN.txt
  : >"$out"
  t0=${EPOCHREALTIME/[.,]/}
  np__probe_all "$cols" "$fams" "$out"
  if report=$(python3 -S "$NP_PY" compare "$NP_GRID" "$dsl" "$out" "$cols" "$fams" "$retry" 2>&1); then
    sy_log "ok: $desc: $report ($(((${EPOCHREALTIME/[.,]/} - t0) / 1000)) ms)"
    return 0
  fi
  [[ -s $retry ]] || sy_fail "expected $desc: $report"
  local first=$report
  sy_log "$desc: $(wc -l <"$retry") cell(s) not as expected, probing them once more"
  local again=$WORK/np-probe-$NP_PROBE_RUN-again.txt
  : >"$again"
  np__probe_all "$cols" "$fams" "$again" "$retry"
  # The second answer of a cell replaces the first.
  awk 'NR == FNR { seen[$1 " " $2 " " $3 " " $4] = 1; print; next } !(($1 " " $2 " " $3 " " $4) in seen)' \
    "$again" "$out" >"$out.merged"
  if report=$(python3 -S "$NP_PY" compare "$NP_GRID" "$dsl" "$out.merged" "$cols" "$fams" 2>&1); then
    sy_log "ok: $desc (after probing again): $report; the first probe differed in: $(grep -E '^  ([a-z]/[a-z]|\.\.\.)' <<<"$first" | tr -s ' \n' ' ')"
    return 0
  fi
  sy_fail "expected $desc ($cols, IPv${fams//,/ and IPv}); reachability: $dsl
$report"
}

# np__map_dump I MAP: the JSON dump of node I's pinned map MAP into a file; prints its path.
np__map_dump() {
  local file=$WORK/np-map-n$1-$2.json
  bpftool -j map dump pinned "${SY_MN_PIN[$1]}/$2" >"$file" 2>"$file.err" ||
    sy_fail "bpftool map dump pinned ${SY_MN_PIN[$1]}/$2: $(cat "$file.err")"
  echo "$file"
}

# np_rules I POD DIR: see the header.
np_rules() {
  local i=$1 ipcache ep rules
  ipcache=$(np__map_dump "$i" pol_ipcache_v1)
  ep=$(np__map_dump "$i" pol_ep_v1)
  rules=$(np__map_dump "$i" pol_rules_v1)
  np__py "np_rules $*" rules "$NP_GRID" "$ipcache" "$ep" "$rules" "$2" "$3"
}

# np_endpoint I POD: see the header.
np_endpoint() {
  local ep
  ep=$(np__map_dump "$1" pol_ep_v1)
  np__py "np_endpoint $*" endpoint "$NP_GRID" "$ep" "$2"
}

# np_expect_rules DESC I POD DIR EXPECTED: node I's rules of POD in DIR are exactly EXPECTED
# (lines "PEER WHAT" as np_rules prints them, sorted, separated by ";").
np_expect_rules() {
  local desc=$1 got want
  got=$(np_rules "$2" "$3" "$4")
  want=$(tr ';' '\n' <<<"$5" | sed 's/^ *//; s/ *$//' | grep -v '^$' | sort)
  [[ $got == "$want" ]] || sy_fail "expected $desc: node-$2's pol_rules_v1 for $3 $4 to be
$want
but it holds
$got"
  sy_log "ok: $desc: node-$2's rules for $3 $4: ${got//$'\n'/; }"
}

# np_hold_start FROM TO: one held TCP connection from pod FROM to pod TO's port 80 (IPv4),
# requests every 100 ms (lib_netpol.py hold), in FROM's node cgroup; waits until it is answered.
np_hold_start() {
  local from=$1 to=$2 ip
  NP_HOLD_LOG=$WORK/np-hold.log NP_HOLD_STOP=$WORK/np-hold.stop
  rm -f "$NP_HOLD_LOG" "$NP_HOLD_STOP"
  ip=$(python3 -S -c 'import json,sys; print(json.load(open(sys.argv[1]))["pods"][sys.argv[2]]["ip4"])' "$NP_GRID" "$to")
  sy_mn_run pod "${NP_NODE_OF[$from]}" "${NP_SLOT_OF[$from]}" python3 -S "$NP_PY" hold "$ip:80" "$NP_HOLD_LOG" "$NP_HOLD_STOP" \
    >"$WORK/np-hold.out" 2>&1 &
  NP_HOLD_PID=$!
  sy_track_pid "$NP_HOLD_PID"
  sy_wait_for "the held connection $from -> $to to be answered" 5 np__hold_at_least 3 ||
    sy_fail "expected the held connection $from -> $to:80 to be answered: $(tail -3 "$NP_HOLD_LOG" 2>/dev/null) $(cat "$WORK/np-hold.out")"
}

# np_hold_received: the answers the held connection got so far (fails the test if it broke).
np_hold_received() {
  local last
  last=$(tail -1 "$NP_HOLD_LOG" 2>/dev/null) || true
  [[ $last != error* ]] || sy_fail "the held connection failed: $last"
  [[ $last =~ ^[0-9]+\ [0-9]+\ ([0-9]+)$ ]] || sy_fail "the held connection's log ends in '$last'"
  echo "${BASH_REMATCH[1]}"
}

np__hold_at_least() {
  local last
  last=$(tail -1 "$NP_HOLD_LOG" 2>/dev/null) || return 1
  [[ $last =~ ^[0-9]+\ [0-9]+\ ([0-9]+)$ ]] && ((BASH_REMATCH[1] >= $1))
}

# np_hold_stop: ends the held connection; fails the test unless it ended cleanly (same socket).
np_hold_stop() {
  local rc=0
  touch "$NP_HOLD_STOP"
  wait "$NP_HOLD_PID" || rc=$?
  ((rc == 0)) || sy_fail "the held connection ended with status $rc: $(tail -2 "$NP_HOLD_LOG") $(cat "$WORK/np-hold.out")"
}
