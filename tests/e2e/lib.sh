# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the test scripts that source this
# tests/e2e/lib.sh: a cluster in a box for switchyard's end-to-end tests, built from network
# namespaces and veth pairs, and torn down again whatever happens.
#
# Source it from a test script, then:
#   sy_e2e_init NAME              root check (exit 77 when not root), cleanup trap, WORK, PIN, CG
#   sy_topology_up K              node ns, client ns, K backend pod namespaces, veths, routes
#   sy_start_backends [TCP UDP]   `sy-testpeer serve --name podI` in every pod
#   sy_write_config / sy_write_service / sy_write_slice (lib_manifests.sh) / sy_daemon_start ...
#
# Ground rules, all enforced here so that a test cannot forget them:
#   - Traffic stays inside namespaces the test made; IPv4 addresses come from 198.18.0.0/15.
#   - Nothing is attached to the root cgroup or a root-namespace device: socket LB applies to
#     the test's own cgroup $CG, and every device lives inside a test namespace.
#   - Everything the test made (processes, namespaces, cgroup, bpffs pins, WORK) is removed on
#     exit, on failure and on SIGINT/SIGTERM, by one idempotent trap. Do not set your own EXIT
#     trap (it would replace this one); register extra steps with sy_on_exit instead.
#     Processes are the script's descendants, tracked or not, and whatever runs in the test's
#     namespaces or cgroup; the trap waits until each is really gone. What it cannot remove it
#     names in a "WARNING [test]:" line, and a clean run prints none.
#   - Every wait is bounded in attempts and time.
#   - A test skips (exit 77) only when it is not root.
#
# Addresses (pod i is 1-based):
#   node side of every veth 198.18.0.1/32   client 198.18.1.2/32   pod i 198.18.16.(i+1)/32
# ClusterIPs are free to use from 198.19.0.0/16 (e.g. 198.19.0.10); they are routed to the node
# through the pods' and client's default route.
#
# Variables set for the test: SY_TEST_NAME PREFIX SY_ROOT SY_BUILD_DIR SY_BIN SY_PEER WORK PIN CG
#   NODE_NS CLIENT_NS CLIENT_IP POD_NS[] POD_IPS[] POD_NAMES[] (0-based arrays: POD_NS[0] is pod1)
#   MANIFEST_DIR HEALTHZ_ADDR METRICS_ADDR (after sy_write_config) DAEMON_PID DAEMON_LOG
#   SY_DAEMON_RAN (1 after sy_daemon_start)
# Functions that set variables must run in the test's own shell, not in $(...) or a pipeline.

SY_E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SY_ROOT=$(cd "$SY_E2E_DIR/../.." && pwd)

readonly SY_NODE_ADDR=198.18.0.1
readonly SY_CLIENT_ADDR=198.18.1.2
readonly SY_POD_NET=198.18.16
readonly SY_MAX_PODS=64
SY_NODE_NAME=${SY_NODE_NAME:-node-a}

# shellcheck source=tests/e2e/lib_manifests.sh
source "$SY_E2E_DIR/lib_manifests.sh"

SY_PIDS=()       # every background process the library started, killed by the cleanup trap
SY_EXIT_HOOKS=() # commands registered with sy_on_exit, run first by the cleanup trap
SY__CLEANED=0
# 1 once a daemon was started on $PIN: the cleanup trap then runs `switchyard cleanup` on it.
# sy_daemon_start sets it; a test that starts `switchyard run` on $PIN by hand sets it too.
SY_DAEMON_RAN=0
SY__OURS=()
SY__SURVIVORS=()

# ---------------------------------------------------------------------------------------------
# Messages, assertions, waiting

sy_log() {
  printf '[%s %s] %s\n' "${SY_TEST_NAME:-e2e}" "$(date +%H:%M:%S.%3N)" "$*" >&2
}

# sy_fail MSG: the test failed; MSG names the broken expectation. Exits the current shell, so
# call it from the test's own shell (not inside $(...)) for the test to stop.
sy_fail() {
  printf 'FAIL [%s]: %s\n' "${SY_TEST_NAME:-e2e}" "$*" >&2
  exit 1
}

# sy_assert DESCRIPTION CMD...: runs CMD; if it fails, fails the test with "expected DESCRIPTION".
sy_assert() {
  local description=$1
  shift
  if ! "$@"; then
    sy_fail "expected $description (check failed: $*)"
  fi
}

# sy_wait_for DESCRIPTION TIMEOUT_S CMD...: runs CMD every 100 ms until it succeeds. Returns 1 and
# prints DESCRIPTION once TIMEOUT_S seconds (at most 10*TIMEOUT_S+1 attempts) have passed.
sy_wait_for() {
  local description=$1 timeout_s=$2
  shift 2
  local deadline=$((${EPOCHREALTIME//[.,]/} / 1000 + timeout_s * 1000))
  local attempts=$((timeout_s * 10 + 1)) attempt
  for ((attempt = 0; attempt < attempts; attempt++)); do
    if "$@"; then
      return 0
    fi
    if ((${EPOCHREALTIME//[.,]/} / 1000 >= deadline)); then
      break
    fi
    sleep 0.1
  done
  printf 'TIMEOUT [%s]: %s (waited %ss for: %s)\n' "${SY_TEST_NAME:-e2e}" "$description" "$timeout_s" "$*" >&2
  return 1
}

# sy_on_exit CMD...: runs CMD (one string, eval'd) at the start of cleanup, before processes die.
sy_on_exit() {
  SY_EXIT_HOOKS+=("$*")
}

# sy_track_pid PID: have the cleanup trap kill PID (for processes the test starts itself).
sy_track_pid() {
  SY_PIDS+=("$1")
}

# ---------------------------------------------------------------------------------------------
# Setup

# Picks a prefix no namespace, cgroup or pin dir uses yet. Short, because names derived from it
# ("$PREFIX-node", "$PREFIX-p12") are kept within the kernel's 15-character name limit.
sy__pick_prefix() {
  local try candidate
  for ((try = 0; try < 50; try++)); do
    candidate=$(printf 'sy%04x' $((RANDOM ^ ($$ & 0x7fff))))
    if [[ ! -e /run/netns/$candidate-node && ! -e /sys/fs/cgroup/unified/$candidate &&
          ! -e /sys/fs/cgroup/$candidate && ! -e /sys/fs/bpf/$candidate ]] &&
       ! ip netns list 2>/dev/null | grep -q "^$candidate-"; then
      PREFIX=$candidate
      return 0
    fi
  done
  sy_fail "no free name prefix after 50 tries"
}

# The cgroup v2 mount: the unified hierarchy of a hybrid setup, or /sys/fs/cgroup itself.
sy__cgroup2_root() {
  local dir
  for dir in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [[ -d $dir && $(stat -f -c %T "$dir" 2>/dev/null) == cgroup2fs ]]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

# sy_e2e_init NAME: must be the first call of every test.
sy_e2e_init() {
  SY_TEST_NAME=${1:?sy_e2e_init needs a test name}
  if [[ $(id -u) != 0 ]]; then
    echo "SKIP [$SY_TEST_NAME]: needs root (network namespaces, cgroups, bpffs)" >&2
    exit 77
  fi
  trap sy__cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  SY_BUILD_DIR=${SY_BUILD_DIR:-$SY_ROOT/build}
  SY_BIN=${SY_BIN:-$SY_BUILD_DIR/cmd/switchyard}
  SY_PEER=${SY_PEER:-$SY_BUILD_DIR/tests/tools/sy-testpeer}
  sy__pick_prefix
  NODE_NS=$PREFIX-node
  CLIENT_NS=$PREFIX-c
  CLIENT_IP=$SY_CLIENT_ADDR
  POD_NS=()
  POD_IPS=()
  POD_NAMES=()
  WORK=$(mktemp -d -t "$PREFIX.XXXXXX") || sy_fail "mktemp -d failed"

  if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) != bpf_fs ]]; then
    mount -t bpf bpf /sys/fs/bpf || sy_fail "cannot mount bpffs at /sys/fs/bpf"
  fi
  PIN=/sys/fs/bpf/$PREFIX

  local cgroot
  cgroot=$(sy__cgroup2_root) || sy_fail "no cgroup v2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup"
  CG=$cgroot/$PREFIX
  mkdir "$CG" || sy_fail "cannot create cgroup $CG"
  sy_log "prefix $PREFIX, work dir $WORK, cgroup $CG, pins $PIN"
}

# sy_in_ns NS CMD...: runs CMD in network namespace NS. Keeps the mount namespace (unlike
# `ip netns exec`), so bpffs and cgroupfs look the same as outside.
sy_in_ns() {
  local ns=$1
  shift
  nsenter --net="/run/netns/$ns" "$@"
}

# Runs "$@" in NS with sysctl; `ip netns exec` remounts /sys so per-netns sysctls land right.
sy__sysctl() {
  local ns=$1
  shift
  ip netns exec "$ns" sysctl -qw "$@" >/dev/null || sy_fail "sysctl $* in $ns"
}

# One veth pair: HOST_DEV in the node namespace, eth0 in POD_NS_NAME with address POD_ADDR.
sy__plug_pod() {
  local pod_ns=$1 host_dev=$2 pod_addr=$3
  ip netns add "$pod_ns" || sy_fail "ip netns add $pod_ns"
  sy__sysctl "$pod_ns" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  sy_plug_veth "$pod_ns" "$host_dev" "$pod_addr"
}

# sy_plug_veth POD_NS HOST_DEV POD_ADDR: the veth pair of a pod namespace that exists (again,
# after `ip -n $NODE_NS link del HOST_DEV`), addressed and routed as sy_topology_up does.
sy_plug_veth() {
  local pod_ns=$1 host_dev=$2 pod_addr=$3
  ip -n "$NODE_NS" link add "$host_dev" type veth peer name eth0 netns "$pod_ns" ||
    sy_fail "veth $host_dev <-> $pod_ns/eth0"
  ip -n "$NODE_NS" addr add "$SY_NODE_ADDR/32" dev "$host_dev"
  ip -n "$NODE_NS" link set "$host_dev" up
  ip -n "$NODE_NS" route add "$pod_addr/32" dev "$host_dev" || sy_fail "node route to $pod_addr"
  sy__sysctl "$NODE_NS" "net.ipv4.conf.$host_dev.rp_filter=0"

  ip -n "$pod_ns" link set lo up
  ip -n "$pod_ns" addr add "$pod_addr/32" dev eth0
  ip -n "$pod_ns" link set eth0 up
  ip -n "$pod_ns" route add "$SY_NODE_ADDR" dev eth0 || sy_fail "$pod_ns route to node"
  ip -n "$pod_ns" route add default via "$SY_NODE_ADDR" || sy_fail "$pod_ns default route"
  sy__sysctl "$pod_ns" net.ipv4.conf.eth0.rp_filter=0
}

# sy_topology_up K: the node, the client pod and K backend pods (1 <= K <= 64).
sy_topology_up() {
  local k=${1:?sy_topology_up needs the number of backend pods}
  [[ -n ${PREFIX:-} ]] || sy_fail "sy_topology_up before sy_e2e_init"
  ((k >= 1 && k <= SY_MAX_PODS)) || sy_fail "sy_topology_up: K=$k must be in 1..$SY_MAX_PODS"
  [[ ! -e /run/netns/$NODE_NS ]] || sy_fail "sy_topology_up called twice"

  ip netns add "$NODE_NS" || sy_fail "ip netns add $NODE_NS"
  ip -n "$NODE_NS" link set lo up
  sy__sysctl "$NODE_NS" net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0

  sy__plug_pod "$CLIENT_NS" veth-c "$CLIENT_IP"
  # The client opens a connection per request; let it reuse ports in TIME_WAIT (the servers
  # close first, so few land there anyway) and give it a wide port range.
  sy__sysctl "$CLIENT_NS" net.ipv4.tcp_tw_reuse=1 "net.ipv4.ip_local_port_range=10000 60999"

  local i
  for ((i = 1; i <= k; i++)); do
    POD_NS+=("$PREFIX-p$i")
    POD_IPS+=("$SY_POD_NET.$((i + 1))")
    POD_NAMES+=("pod$i")
    sy__plug_pod "$PREFIX-p$i" "veth-p$i" "$SY_POD_NET.$((i + 1))"
  done
  sy_log "topology up: node $NODE_NS, client $CLIENT_NS ($CLIENT_IP), pods ${POD_IPS[*]}"
}

# Background a command, log its output to WORK, remember its pid in SY__LAST_PID.
sy__spawn() {
  local log=$1
  shift
  "$@" >"$log.out" 2>"$log.err" &
  SY__LAST_PID=$!
  SY_PIDS+=("$SY__LAST_PID")
}

sy__printed_ready() {
  grep -qx ready "$1" 2>/dev/null
}

# sy_start_backends [TCP_PORT=8080] [UDP_PORT=5353]: one sy-testpeer server per pod, named podI.
sy_start_backends() {
  local tcp_port=${1:-8080} udp_port=${2:-5353} i
  [[ -x $SY_PEER ]] ||
    sy_fail "no sy-testpeer at $SY_PEER (build it: cmake --build $SY_BUILD_DIR --target sy-testpeer)"
  ((${#POD_NS[@]} > 0)) || sy_fail "sy_start_backends before sy_topology_up"
  for ((i = 0; i < ${#POD_NS[@]}; i++)); do
    sy__spawn "$WORK/${POD_NAMES[i]}" ip netns exec "${POD_NS[i]}" \
      "$SY_PEER" serve --name "${POD_NAMES[i]}" --tcp-port "$tcp_port" --udp-port "$udp_port"
  done
  for ((i = 0; i < ${#POD_NS[@]}; i++)); do
    if ! sy_wait_for "${POD_NAMES[i]} server ready" 5 sy__printed_ready "$WORK/${POD_NAMES[i]}.out"; then
      sy_fail "backend ${POD_NAMES[i]} did not start: $(cat "$WORK/${POD_NAMES[i]}.err" 2>/dev/null)"
    fi
  done
  sy_log "backends serving on tcp/$tcp_port udp/$udp_port in ${#POD_NS[@]} pods"
}

# sy_in_cgroup_ns NS CMD...: runs CMD inside netns NS as a member of the test cgroup $CG, so the
# socket-LB hooks attached to $CG apply to it. The process joins $CG before it execs anything.
# Run in the background (`sy_in_cgroup_ns NS cmd & pid=$!`), $! is CMD's own pid.
sy_in_cgroup_ns() {
  local ns=$1
  shift
  [[ -d ${CG:-} ]] || sy_fail "sy_in_cgroup_ns before sy_e2e_init"
  # shellcheck disable=SC2016 # expanded by the inner sh, on purpose
  local script='cg=$1 ns=$2; shift 2; echo $$ >"$cg/cgroup.procs" || exit 125; exec nsenter --net="/run/netns/$ns" "$@"'
  if [[ $BASHPID != "$$" ]]; then
    # Already in a subshell (backgrounded or $(...)): exec, so the caller's pid is CMD's pid.
    exec sh -c "$script" sy-in-cgroup "$CG" "$ns" "$@"
  fi
  sh -c "$script" sy-in-cgroup "$CG" "$ns" "$@"
}

# sy_probe NS PROBE_ARGS...: `sy-testpeer probe PROBE_ARGS` from NS inside the test cgroup.
# Prints the probe's JSON line; returns its exit code (1 when anything failed), so under set -e
# write `out=$(sy_probe ...) || true`.
sy_probe() {
  local ns=$1
  shift
  sy_in_cgroup_ns "$ns" "$SY_PEER" probe "$@"
}

# ---------------------------------------------------------------------------------------------
# JSON

# sy_json JSON EXPR: prints the Python expression EXPR evaluated with d = the parsed JSON
# (dicts and lists as JSON). Example: sy_json "$out" 'd["backends"].get("pod1", 0)'
sy_json() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
r = eval(sys.argv[2])
print(json.dumps(r, sort_keys=True) if isinstance(r, (dict, list, bool)) or r is None else r)
' "$1" "$2"
}

# sy_json_check JSON EXPR: succeeds iff the Python expression EXPR is true for d = the JSON.
sy_json_check() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if eval(sys.argv[2]) else 1)
' "$1" "$2"
}

# ---------------------------------------------------------------------------------------------
# Daemon

# sy_daemon_start CONFIGFILE [LOGFILE=$WORK/daemon.log]: `switchyard run` in the node namespace,
# in the background, in the test script's cgroup (never $CG: the daemon is not a client).
sy_daemon_start() {
  local config=${1:?sy_daemon_start needs a config file}
  DAEMON_LOG=${2:-$WORK/daemon.log}
  [[ -x $SY_BIN ]] || sy_fail "no switchyard binary at $SY_BIN (set SY_BUILD_DIR or SY_BIN)"
  [[ -e /run/netns/$NODE_NS ]] || sy_fail "sy_daemon_start before sy_topology_up"
  nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" run --config "$config" >>"$DAEMON_LOG" 2>&1 &
  DAEMON_PID=$!
  SY_PIDS+=("$DAEMON_PID")
  SY_DAEMON_RAN=1
  sy_log "daemon started, pid $DAEMON_PID, log $DAEMON_LOG"
}

# sy_daemon_kill9: SIGKILL the daemon, as a crash would; pins and attachments stay behind.
sy_daemon_kill9() {
  [[ -n ${DAEMON_PID:-} ]] || sy_fail "sy_daemon_kill9: no daemon started"
  kill -KILL "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null || true  # 137 is the expected status; do not trip set -e
  sy_log "daemon $DAEMON_PID killed with SIGKILL"
  DAEMON_PID=
  return 0
}

# sy_daemon_stop [TIMEOUT_S=10]: SIGTERM, then wait. Returns the daemon's exit status, or 124
# (after a SIGKILL) when it did not exit in time.
sy_daemon_stop() {
  local timeout_s=${1:-10} status
  [[ -n ${DAEMON_PID:-} ]] || sy_fail "sy_daemon_stop: no daemon started"
  kill -TERM "$DAEMON_PID" 2>/dev/null
  if ! sy_wait_for "daemon $DAEMON_PID exits after SIGTERM" "$timeout_s" sy__gone "$DAEMON_PID"; then
    kill -KILL "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
    return 124
  fi
  status=0
  wait "$DAEMON_PID" 2>/dev/null || status=$?
  sy_log "daemon $DAEMON_PID exited with status $status"
  DAEMON_PID=
  return "$status"
}

# sy_status_json: the daemon's view of the pinned maps, as JSON:
# {"services":[{"address":"198.19.0.10","port":80,"protocol":"TCP","backends":[{"address":..,"port":..}]}]}
sy_status_json() {
  timeout 20 nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" status --pin-path "$PIN" -o json
}

# ---------------------------------------------------------------------------------------------
# Cleanup: idempotent, bounded, never fails the script by itself, keeps the script's exit code.
# What it cannot remove it names in a WARNING line; a clean run prints none.

# True once PID has exited. A child that exited stays a zombie until `wait`, and kill -0 still
# succeeds on a zombie, so the process state decides. Builtins only (see sy__scan_processes).
sy__gone() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }
  [[ ${stat:0:1} == [ZX] ]]
}

# Our namespaces: exactly "$PREFIX-..." (PREFIX is never empty here).
sy__our_netns() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-" || true
}

# Sets SY__OURS to every live process this test owns, found afresh each call: the script's
# descendants (its background jobs, whether or not they were tracked, and what they started),
# the tracked pids, and whatever runs in the test's namespaces or cgroup (nobody else runs
# there), whoever started it. Uses builtins only, reading /proc directly: a helper process
# forked here would be a descendant of the script and count itself. Never the script itself.
sy__scan_processes() {
  local -A children=() in_cgroup=() ours=()
  local -a netns_files=() queue=()
  local f dir pid stat state ppid child i
  for f in /run/netns/"$PREFIX"-*; do
    [[ -e $f ]] && netns_files+=("$f")
  done
  if [[ -n ${CG:-} && -d $CG ]]; then
    for f in "$CG"/cgroup.procs "$CG"/*/cgroup.procs "$CG"/*/*/cgroup.procs; do
      [[ -f $f ]] || continue
      while read -r pid; do
        in_cgroup[$pid]=1
      done 2>/dev/null <"$f"
    done
  fi
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    { read -r stat <"$dir/stat"; } 2>/dev/null || continue
    stat=${stat##*) } # "STATE PPID ...": the command name before ") " may hold spaces
    state=${stat%% *}
    stat=${stat#* }
    ppid=${stat%% *}
    [[ $state == [ZX] ]] && continue
    children[$ppid]+=" $pid"
    if [[ -n ${in_cgroup[$pid]:-} ]]; then
      ours[$pid]=1
      continue
    fi
    for f in "${netns_files[@]}"; do
      if [[ $dir/ns/net -ef $f ]]; then
        ours[$pid]=1
        break
      fi
    done
  done
  queue=("$$")
  for ((i = 0; i < ${#queue[@]}; i++)); do
    for child in ${children[${queue[i]}]:-}; do
      ours[$child]=1
      queue+=("$child")
    done
  done
  for pid in "${SY_PIDS[@]}"; do
    sy__gone "$pid" || ours[$pid]=1
  done
  unset "ours[$$]"
  SY__OURS=("${!ours[@]}")
}

# Stops every process the test owns: SIGTERM once to each, then, for whatever is still there
# after 3 s, SIGKILL and cgroup.kill. Processes can appear while this runs (a background
# sy_probe that had not yet joined the cgroup or netns when the test failed, a child forked
# just before its parent died), and SIGKILL and cgroup.kill take effect asynchronously, so every
# round scans afresh and signals what it finds; it returns once two scans in a row, 100 ms
# apart, find nothing, or after 8 s (at most 81 rounds). Whatever survived is left in
# SY__SURVIVORS for the caller to report. stderr is the caller's to silence: bash reports
# every killed background job there.
sy__cleanup_processes() {
  local -A termed=()
  local -a signal_now=()
  local pid round empty_scans=0 elapsed_ms
  local start_ms=$((${EPOCHREALTIME//[.,]/} / 1000))
  SY__SURVIVORS=()
  for ((round = 0; round < 81; round++)); do
    sy__scan_processes
    if ((${#SY__OURS[@]} == 0)); then
      ((++empty_scans >= 2)) && break
    else
      empty_scans=0
      elapsed_ms=$((${EPOCHREALTIME//[.,]/} / 1000 - start_ms))
      if ((elapsed_ms < 3000)); then
        signal_now=()
        for pid in "${SY__OURS[@]}"; do
          [[ -n ${termed[$pid]:-} ]] || signal_now+=("$pid")
          termed[$pid]=1
        done
        ((${#signal_now[@]} == 0)) || kill -TERM "${signal_now[@]}"
      elif ((elapsed_ms < 8000)); then
        kill -KILL "${SY__OURS[@]}"
        if [[ -n ${CG:-} && -f $CG/cgroup.kill ]]; then
          echo 1 >"$CG/cgroup.kill"
        fi
      else
        break
      fi
    fi
    sleep 0.1
  done
  ((empty_scans >= 2)) || SY__SURVIVORS=("${SY__OURS[@]}")
  # Reap what has exited; never block on a process that has not (wait has no timeout).
  for pid in "${SY_PIDS[@]}" $(jobs -p); do
    sy__gone "$pid" && wait "$pid"
  done
  return 0
}

# "PID (command line)" for each pid that is still there.
sy__describe_pids() {
  local pid
  for pid in "$@"; do
    [[ -e /proc/$pid ]] && printf ' %s (%s)' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  done
}

sy__cgroup_empty() {
  ! grep -qx 'populated 1' "$CG/cgroup.events" 2>/dev/null
}

sy__cleanup_cgroup() {
  [[ -n ${CG:-} && -d $CG ]] || return 0
  local parent pid sub try left=()
  parent=$(dirname "$CG")
  if ! sy_wait_for "cgroup $CG empties" 2 sy__cgroup_empty 2>/dev/null; then
    # Not ours to leave behind, and not to hide either: name it, then move it out so the
    # cgroup can go.
    mapfile -t left < <(find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null)
    echo "WARNING [${SY_TEST_NAME:-e2e}]: cgroup $CG still holds processes after cleanup:$(sy__describe_pids "${left[@]}")" >&2
    while read -r sub; do
      while read -r pid; do
        echo "$pid" >"$parent/cgroup.procs" 2>/dev/null
      done <"$sub/cgroup.procs"
    done < <(find "$CG" -depth -type d 2>/dev/null)
  fi
  for ((try = 0; try < 20; try++)); do
    find "$CG" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
    rmdir "$CG" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "WARNING [${SY_TEST_NAME:-e2e}]: could not remove cgroup $CG" >&2
}

sy__dump_logs() {
  local log
  for log in "$WORK"/*.log "$WORK"/*.err; do
    [[ -s $log ]] || continue
    echo "----- last lines of $log -----" >&2
    tail -n 30 "$log" >&2
  done
}

sy__cleanup() {
  local rc=$?
  if ((SY__CLEANED)); then
    return 0
  fi
  SY__CLEANED=1
  set +e +u
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  local hook ns
  for hook in "${SY_EXIT_HOOKS[@]}"; do
    eval "$hook"
  done
  if [[ -z ${PREFIX:-} ]]; then
    exit "$rc"
  fi
  if ((rc != 0)) && [[ -d ${WORK:-} ]]; then
    sy__dump_logs
  fi
  sy__cleanup_processes 2>/dev/null
  if ((${#SY__SURVIVORS[@]} > 0)); then
    echo "WARNING [$SY_TEST_NAME]: still running after SIGTERM and SIGKILL:$(sy__describe_pids "${SY__SURVIVORS[@]}")" >&2
  fi
  # The daemon's own cleanup detaches what it attached (tc on veth-c in the node namespace,
  # cgroup hooks on $CG) while those still exist, and unpins its maps. Only after a daemon ran:
  # otherwise $PIN holds only what the test pinned itself, which switchyard rightly refuses to
  # call its own; the rm -rf below removes that. A failure here is a real one and says so.
  if ((SY_DAEMON_RAN)) && [[ -x ${SY_BIN:-} && -e /run/netns/$NODE_NS && -d ${PIN:-} ]]; then
    timeout 20 nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" \
      >"$WORK/cleanup.log" 2>&1 ||
      { echo "WARNING [$SY_TEST_NAME]: switchyard cleanup failed:" >&2; cat "$WORK/cleanup.log" >&2; }
  fi
  for ns in $(sy__our_netns); do
    ip netns del "$ns" 2>/dev/null || echo "WARNING [$SY_TEST_NAME]: could not delete netns $ns" >&2
  done
  sy__cleanup_cgroup
  if [[ -n ${PIN:-} && $PIN == /sys/fs/bpf/"$PREFIX" && -e $PIN ]]; then
    rm -rf "$PIN" 2>/dev/null || echo "WARNING [$SY_TEST_NAME]: could not remove $PIN" >&2
  fi
  if [[ -n ${WORK:-} && -d $WORK && $WORK == */"$PREFIX".* ]]; then
    if [[ ${SY_KEEP_WORK:-0} == 1 ]]; then
      echo "kept work dir $WORK" >&2
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
