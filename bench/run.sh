#!/usr/bin/env bash
# bench/run.sh: switchyard side by side with kube-proxy's iptables and nftables layouts,
# and with the limit of the topology (direct to a pod), in one run on one machine.
#
#   bench/run.sh [--quick] [--json FILE] [options]      (root; see --help and docs/benchmarks.md)
#
# Everything runs in network namespaces this script creates (addresses in 198.18.0.0/15
# only) and is removed on exit, failure or Ctrl-C. Rule sets are loaded only inside the
# benchmark's node namespace; the root namespace's iptables/nftables are never touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

usage() {
  cat <<'EOF'
usage: bench/run.sh [--quick] [--json FILE] [options]

  --quick             N = 1 and 1000, 2 rounds of 1 s per tool, 3 rule-set changes,
                      switchyard control plane at N = 1000 with 20 changes (< 3 minutes)
  (default)           N = 1 and 10000, 5 rounds of 8 s per tool, 20 rule-set changes, the
                      one-endpoint control service measured with short connections too, and
                      the switchyard control plane at N = 1000 10000 30000 100000 with 100
                      changes each
  --json FILE         also write the results as JSON (one record per mode and N)
  --services "A B"    service counts N to run (each includes the measured service);
                      "none": no dataplane rounds, only the --cp-services runs
  --endpoints M       endpoints per synthetic service (default 10)
  --backends K        backend pods (default 4)
  --rounds R          rounds; each round runs every mode once, order alternating
  --duration S        seconds per wrk / sockperf / iperf3 sample
  --changes C         one-endpoint changes timed per rule set (iptables, nftables) and N
  --sy-changes C      one-endpoint changes timed per switchyard daemon (files source at
                      the dataplane N, API server source at the --cp-services N)
  --e2e-changes E     further changes timed until `switchyard status` shows them
  --cp-services "A B" N for the switchyard control-plane scale runs (daemon alone: cold
                      from a JSON file, cold from sy-fake-apiserver, changes through the
                      API); "" skips them
  --yaml-max N        largest N of the scale runs that also get the one-YAML-file-per-
                      service run of the files source (default 10000)
  --control, --no-control
                      also measure short connections through the one-endpoint control
                      service (one backend, like direct, but translated)
  --modes "..."       subset of: direct iptables nftables switchyard-socklb switchyard-tc
  --load-timeout S    bound for one rule-set load (iptables-restore, nft -f, daemon start)
  --switchyard PATH   daemon binary (default: build/cmd/switchyard)
  --fake-apiserver PATH
                      default: build/tests/fake_apiserver/sy-fake-apiserver
  --iptables-noflush-cold
                      cold-load iptables exactly as kube-proxy calls it (--noflush); with
                      iptables 1.8.9 (nf_tables) this is quadratic in chains: minutes at N=2000+
  --keep              keep the work directory (raw tool outputs) and print its path
EOF
}

# ---------------------------------------------------------------- options
QUICK=0
JSON_OUT=""
SERVICES=""
M=10
K=4
ROUNDS=""
DUR=""
CHANGES=""
CONTROL=""
MODES="direct iptables nftables switchyard-socklb switchyard-tc"
LOAD_TIMEOUT=""
SWITCHYARD_BIN="$ROOT/build/cmd/switchyard"
FAKE_APISERVER_BIN="$ROOT/build/tests/fake_apiserver/sy-fake-apiserver"
SY_CHANGES=""
E2E_CHANGES=""
CP_SERVICES="unset"
YAML_MAX=10000
KEEP=0
IPT_COLD_FLAGS=()
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
NGINX_WORKERS=${NGINX_WORKERS:-2}

ORIG_ARGS="$*"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --json) JSON_OUT=$2; shift ;;
    --services) SERVICES=$2; shift ;;
    --endpoints) M=$2; shift ;;
    --backends) K=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --changes) CHANGES=$2; shift ;;
    --control) CONTROL=1 ;;
    --no-control) CONTROL=0 ;;
    --modes) MODES=$2; shift ;;
    --load-timeout) LOAD_TIMEOUT=$2; shift ;;
    --switchyard) SWITCHYARD_BIN=$2; shift ;;
    --fake-apiserver) FAKE_APISERVER_BIN=$2; shift ;;
    --sy-changes) SY_CHANGES=$2; shift ;;
    --e2e-changes) E2E_CHANGES=$2; shift ;;
    --cp-services) CP_SERVICES=$2; shift ;;
    --yaml-max) YAML_MAX=$2; shift ;;
    --keep) KEEP=1 ;;
    --iptables-noflush-cold) IPT_COLD_FLAGS=(--noflush) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $QUICK == 1 ]]; then
  : "${SERVICES:=1 1000}" "${ROUNDS:=2}" "${DUR:=1}" "${CHANGES:=3}" "${LOAD_TIMEOUT:=120}"
  : "${CONTROL:=0}" "${SY_CHANGES:=20}" "${E2E_CHANGES:=2}"
  [[ $CP_SERVICES != unset ]] || CP_SERVICES="1000"
else
  : "${SERVICES:=1 10000}" "${ROUNDS:=5}" "${DUR:=8}" "${CHANGES:=20}" "${LOAD_TIMEOUT:=1800}"
  : "${CONTROL:=1}" "${SY_CHANGES:=100}" "${E2E_CHANGES:=5}"
  [[ $CP_SERVICES != unset ]] || CP_SERVICES="1000 10000 30000 100000"
fi
[[ $SERVICES != none ]] || SERVICES=""  # --services none: only the control-plane scale runs
for m in $MODES; do
  case "$m" in direct|iptables|nftables|switchyard-socklb|switchyard-tc) ;;
    *) echo "run.sh: unknown mode $m" >&2; exit 2 ;; esac
done
if [[ -n $JSON_OUT ]]; then JSON_OUT=$(realpath -m "$JSON_OUT"); fi

if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: needs root (network namespaces, rule loads)" >&2
  exit 1
fi
# The scripts need only the standard library; a distribution's python3 starts in 60 ms,
# a version manager's shim (pyenv) can take 0.5 s, which adds up over hundreds of calls.
PY=$(command -v python3 || true)
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3
missing=()
for t in ip wrk nginx sockperf iperf3 nft iptables-restore python3 curl timeout nsenter bpftool; do
  command -v "$t" >/dev/null || missing+=("$t")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "run.sh: missing ${missing[*]}; run scripts/install-deps.sh" >&2
  exit 1
fi

# ---------------------------------------------------------------- names and addresses
TAG="syb$$"
NODE="$TAG-node"
CL="$TAG-client"
CLIENT_IP=198.18.1.2
GW=198.18.0.1
BE_IPS=()
for ((i = 0; i < K; i++)); do BE_IPS+=("198.18.16.$((i + 1))"); done
HTTP_PORT=80 SOCKPERF_PORT=11111 IPERF_PORT=5201
# The measured service is host .1 and the one-endpoint control service host .2 of each
# mode's /24 (bench/benchlib.py MODE_BLOCK).
declare -A VIP_NET=([iptables]=198.19.255 [nftables]=198.19.254 [switchyard-socklb]=198.19.253
                    [switchyard-tc]=198.19.253)

WORK=$(mktemp -d /tmp/sybench.XXXXXX)
RAW="$WORK/raw"
mkdir -p "$RAW"
NAMESPACES=()
PIDS=()
T_START=$EPOCHREALTIME

log() { printf '[%6.1fs] %s\n' "$(elapsed)" "$*"; }
elapsed() { awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }'; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- cleanup (always)
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  sy_stop
  fake_stop
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  switchyard_teardown_cgroup
  local ns p
  for ns in "${NAMESPACES[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
  done
  sleep 0.3
  for ns in "${NAMESPACES[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [[ $KEEP == 1 ]]; then
    echo "run.sh: raw outputs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- topology
add_pod() {  # add_pod NETNS IP HOST_IFNAME TW_BUCKETS
  local ns=$1 ip=$2 hif=$3 tw=$4
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip link add "$hif" netns "$NODE" type veth peer name eth0 netns "$ns"
  nsx "$ns" ip link set lo up
  nsx "$ns" ip link set eth0 up
  nsx "$ns" ip addr add "$ip/32" dev eth0
  nsx "$ns" ip route add "$GW" dev eth0 scope link
  nsx "$ns" ip route add default via "$GW" dev eth0 onlink
  nsx "$NODE" ip link set "$hif" up
  nsx "$NODE" ip route add "$ip/32" dev "$hif" scope link src "$GW"
  # One client making tens of thousands of short connections a second from at most 64k
  # ports: the servers close first (Connection: close), so their TIME_WAIT sockets would
  # meet reused client ports within seconds, and a SYN refused by TIME_WAIT costs a 1 s
  # retransmit. Backends keep no TIME_WAIT sockets at all (tcp_max_tw_buckets=0).
  nsx "$ns" sysctl -qw net.ipv4.tcp_max_tw_buckets="$tw" net.ipv4.tcp_tw_reuse=1 \
    net.ipv4.ip_local_port_range="1024 65000" net.core.somaxconn=4096 \
    net.ipv4.tcp_max_syn_backlog=4096
}

setup_topology() {
  ip netns add "$NODE"
  NAMESPACES+=("$NODE")
  nsx "$NODE" ip link set lo up
  nsx "$NODE" ip addr add "$GW/32" dev lo
  nsx "$NODE" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0
  # Short connections leave conntrack entries in TIME_WAIT for 120 s by default; at tens of
  # thousands of connections per second that fills the table. Only this namespace's value.
  nsx "$NODE" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=5 \
    net.netfilter.nf_conntrack_tcp_timeout_close_wait=5 net.netfilter.nf_conntrack_tcp_timeout_fin_wait=5
  add_pod "$CL" "$CLIENT_IP" vcl 4096
  for ((i = 0; i < K; i++)); do add_pod "$TAG-be$i" "${BE_IPS[$i]}" "vbe$i" 0; done
}

start_backends() {
  local i ns ip dir
  for ((i = 0; i < K; i++)); do
    ns="$TAG-be$i" ip=${BE_IPS[$i]} dir="$WORK/be$i"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir/tmp_body;
  proxy_temp_path $dir/tmp_proxy;
  fastcgi_temp_path $dir/tmp_fastcgi;
  uwsgi_temp_path $dir/tmp_uwsgi;
  scgi_temp_path $dir/tmp_scgi;
  server {
    listen $ip:$HTTP_PORT reuseport backlog=4096;
    location / {
      default_type text/plain;
      add_header X-Backend be$i always;
      return 200 "be$i\n";
    }
  }
}
EOF
    nsx "$ns" nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
      >"$dir/nginx.out" 2>&1 &
    PIDS+=($!)
    nsx "$ns" sockperf server --tcp -i "$ip" -p "$SOCKPERF_PORT" >"$dir/sockperf.out" 2>&1 &
    PIDS+=($!)
    nsx "$ns" iperf3 -s -B "$ip" -p "$IPERF_PORT" >"$dir/iperf3.out" 2>&1 &
    PIDS+=($!)
  done
  # Wait (bounded) until every server listens.
  local tries
  for ((i = 0; i < K; i++)); do
    for ((tries = 0; ; tries++)); do
      local l
      l=$(nsx "$TAG-be$i" ss -Hltn 2>/dev/null)
      if grep -q ":$HTTP_PORT " <<<"$l" && grep -q ":$SOCKPERF_PORT " <<<"$l" &&
         grep -q ":$IPERF_PORT " <<<"$l"; then break; fi
      if ((tries > 100)); then
        echo "run.sh: servers in $TAG-be$i did not start; see $WORK/be$i" >&2
        cat "$WORK/be$i"/*.out "$WORK/be$i/error.log" >&2 2>/dev/null
        KEEP=1
        exit 1
      fi
      sleep 0.1
    done
  done
  local body
  body=$(nsx "$CL" curl -s --max-time 3 "http://${BE_IPS[0]}/") || true
  if [[ $body != be0 ]]; then
    echo "run.sh: client cannot reach backend 0 directly (got '$body')" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------- client side
# Socket LB acts on connect() of processes in the daemon's cgroup: in mode
# switchyard-socklb the client's tools run inside that cgroup, in every other mode outside.
CLIENT_CGROUP=""
client() {
  if [[ -n $CLIENT_CGROUP ]]; then
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CLIENT_CGROUP" ip netns exec "$CL" "$@"
  else
    ip netns exec "$CL" "$@"
  fi
}

targets() {  # sets HTTP_T SOCK_T ONE_T for a mode
  case "$1" in
    direct) HTTP_T=${BE_IPS[0]} SOCK_T=${BE_IPS[0]} ONE_T=${BE_IPS[0]} ;;
    *) HTTP_T=${VIP_NET[$1]}.1 SOCK_T=${VIP_NET[$1]}.1 ONE_T=${VIP_NET[$1]}.2 ;;
  esac
}

measure() {  # measure MODE N ROUND
  local mode=$1 n=$2 r=$3 out
  out="$RAW/n$n/$mode/r$r"
  mkdir -p "$out"
  targets "$mode"
  CLIENT_CGROUP=""
  [[ $mode == switchyard-socklb ]] && CLIENT_CGROUP=$SY_CGROUP
  local bound=$((DUR + 10)) ts=$EPOCHREALTIME cpu0=""
  step() { echo "$1 $(secs_since "$ts")" >>"$out/timing"; ts=$EPOCHREALTIME; }
  # The machine's load when the sample starts, and the daemon's CPU seconds during it
  # (it should be idle: nothing changes while traffic runs).
  echo "loadavg $(cut -d' ' -f1 /proc/loadavg)" >>"$out/timing"
  [[ -n $SY_PID ]] && cpu0=$(awk '{ print $14 + $15 }' "/proc/$SY_PID/stat" 2>/dev/null)
  # Kernel counters around the short-connection test, for diagnosing stalls.
  counters() {
    local ns
    for ns in "$CL" "$NODE" "$TAG-be0"; do
      echo "== $ns"; nsx "$ns" nstat -asz 2>/dev/null | grep -vE ' 0 +0.0$'
    done >"$out/counters-$1"
    if [[ -n $SY_PID ]]; then  # the datapath's own counters (drops and their reasons)
      echo "== switchyard"
      nsx "$NODE" curl -s --max-time 2 http://127.0.0.1:10249/metrics | grep '^switchyard_datapath_packets' || true
    fi >>"$out/counters-$1"
  }
  counters before
  client timeout "$bound" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DUR}s" --latency \
    -H 'Connection: close' "http://$HTTP_T:$HTTP_PORT/" >"$out/short.txt" 2>&1 ||
    echo "exit status $?" >>"$out/short.txt"
  step short
  if [[ $mode == direct ]]; then
    # The limit for a service of K pods that balances at random: the client itself sends
    # each new connection to a random pod (bench/random_pod.lua), with no translation.
    passive_opens() {  # passive TCP opens of each backend pod so far ("beI COUNT" lines)
      local i
      for ((i = 0; i < K; i++)); do
        echo "be$i $(nsx "$TAG-be$i" nstat -az TcpPassiveOpens 2>/dev/null | awk '$1 == "TcpPassiveOpens" { print $2 }')"
      done
    }
    passive_opens >"$out/random_pod.opens-before"
    SY_BACKENDS="${BE_IPS[*]}" SY_PORT=$HTTP_PORT client timeout "$bound" wrk -t"$WRK_THREADS" \
      -c"$WRK_CONNS" -d"${DUR}s" --latency -s "$HERE/random_pod.lua" -H 'Connection: close' \
      "http://${BE_IPS[0]}:$HTTP_PORT/" >"$out/random_pod.txt" 2>&1 ||
      echo "exit status $?" >>"$out/random_pod.txt"
    passive_opens >"$out/random_pod.opens-after"
    step random_pod
  fi
  counters after
  client timeout "$bound" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DUR}s" --latency \
    "http://$HTTP_T:$HTTP_PORT/" >"$out/keepalive.txt" 2>&1 ||
    echo "exit status $?" >>"$out/keepalive.txt"
  step keepalive
  # sockperf has a fixed ~2.3 s start-up on top of -t; --quick runs it in round 1 only.
  [[ $QUICK == 1 && $r -gt 1 ]] || client timeout "$bound" sockperf ping-pong --tcp --full-rtt -i "$SOCK_T" -p "$SOCKPERF_PORT" \
    -t "$DUR" >"$out/sockperf.txt" 2>&1 || echo "exit status $?" >>"$out/sockperf.txt"
  step sockperf
  # iperf3 opens a control and a data connection that must reach the same server, so it
  # goes through the one-endpoint control service. Counters around it too: a rare failure
  # ("control socket has closed unexpectedly") has been seen on the first tc-mode sample.
  counters iperf-before
  client timeout "$bound" iperf3 -c "$ONE_T" -p "$IPERF_PORT" -t "$DUR" -J --connect-timeout 3000 \
    >"$out/iperf.json" 2>"$out/iperf.err" || echo "exit status $?" >>"$out/iperf.err"
  counters iperf-after
  step iperf
  if [[ $CONTROL == 1 ]]; then
    client timeout "$bound" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DUR}s" --latency \
      -H 'Connection: close' "http://$ONE_T:$HTTP_PORT/" >"$out/control.txt" 2>&1 ||
      echo "exit status $?" >>"$out/control.txt"
    step control
  fi
  # Which backends answer: new connections, one request each, bounded.
  client timeout 20 curl -s --max-time 1 -H 'Connection: close' \
    "http://$HTTP_T:$HTTP_PORT/c[1-$((10 * K))]" >"$out/backends.txt" 2>&1 || true
  step backends
  if [[ -n $cpu0 ]]; then
    awk -v a="$cpu0" -v t="$(getconf CLK_TCK)" '{ printf "daemon_cpu_s %.2f\n", ($14 + $15 - a) / t }' \
      "/proc/$SY_PID/stat" >>"$out/timing" 2>/dev/null || true
  fi
  CLIENT_CGROUP=""
  log "  N=$n $mode round $r: $("$PY" "$HERE/report.py" --sample "$out")"
}

# ---------------------------------------------------------------- kube-proxy rule sets
declare -A LOADED=()
load_iptables() {  # load_iptables N -> LOADED[iptables]
  local n=$1
  local d="$WORK/rules/n$n" t0 rc=0
  mkdir -p "$d" "$RAW/n$n/cp"
  "$PY" "$HERE/gen_iptables.py" --services "$n" --endpoints "$M" --backends "$K" \
    --out "$d/iptables.rules" --changes "$CHANGES" --change-prefix "$d/iptables-change-"
  log "N=$n: iptables-restore ${IPT_COLD_FLAGS[*]} of $(wc -l <"$d/iptables.rules") lines (bound ${LOAD_TIMEOUT}s)"
  t0=$EPOCHREALTIME
  # Into an empty namespace a whole-table restore is the same state as kube-proxy's first
  # sync; see --iptables-noflush-cold for the exact kube-proxy invocation.
  timeout "$LOAD_TIMEOUT" ip netns exec "$NODE" iptables-restore "${IPT_COLD_FLAGS[@]}" \
    <"$d/iptables.rules" || rc=$?
  if [[ $rc == 0 ]]; then
    secs_since "$t0" >"$RAW/n$n/cp/iptables_cold_s"
    log "N=$n: iptables loaded in $(cat "$RAW/n$n/cp/iptables_cold_s") s"
    LOADED[iptables]=1
  else
    echo "iptables-restore failed or timed out (exit $rc)" >"$RAW/n$n/cp/iptables_error"
    log "N=$n: iptables load FAILED (exit $rc): mode skipped for this N"
    LOADED[iptables]=0
  fi
}

load_nftables() {
  local n=$1
  local d="$WORK/rules/n$n" t0 rc=0
  mkdir -p "$d" "$RAW/n$n/cp"
  "$PY" "$HERE/gen_nftables.py" --services "$n" --endpoints "$M" --backends "$K" \
    --out "$d/nftables.nft" --changes "$CHANGES" --change-prefix "$d/nftables-change-"
  log "N=$n: nft -f of $(wc -l <"$d/nftables.nft") lines (bound ${LOAD_TIMEOUT}s)"
  t0=$EPOCHREALTIME
  timeout "$LOAD_TIMEOUT" ip netns exec "$NODE" nft -f "$d/nftables.nft" || rc=$?
  if [[ $rc == 0 ]]; then
    secs_since "$t0" >"$RAW/n$n/cp/nftables_cold_s"
    log "N=$n: nftables loaded in $(cat "$RAW/n$n/cp/nftables_cold_s") s"
    LOADED[nftables]=1
  else
    echo "nft -f failed or timed out (exit $rc)" >"$RAW/n$n/cp/nftables_error"
    log "N=$n: nftables load FAILED (exit $rc): mode skipped for this N"
    LOADED[nftables]=0
  fi
}

time_changes() {  # time_changes N: one-endpoint changes on top of the loaded rule sets
  local n=$1
  local d="$WORK/rules/n$n" c f t0 rc
  [[ $CHANGES -gt 0 ]] || return 0
  if [[ ${LOADED[iptables]:-0} == 1 ]]; then
    : >"$RAW/n$n/cp/iptables_change_ms"
    for ((c = 1; c <= CHANGES; c++)); do
      f=$(printf '%s/iptables-change-%04d.rules' "$d" "$c")
      t0=$EPOCHREALTIME rc=0
      timeout "$LOAD_TIMEOUT" ip netns exec "$NODE" iptables-restore --noflush <"$f" || rc=$?
      if [[ $rc != 0 ]]; then echo "change $c failed (exit $rc)" >>"$RAW/n$n/cp/iptables_error"; break; fi
      awk -v s="$(secs_since "$t0")" 'BEGIN { printf "%.3f\n", s * 1000 }' >>"$RAW/n$n/cp/iptables_change_ms"
    done
  fi
  if [[ ${LOADED[nftables]:-0} == 1 ]]; then
    : >"$RAW/n$n/cp/nftables_change_ms"
    for ((c = 1; c <= CHANGES; c++)); do
      f=$(printf '%s/nftables-change-%04d.nft' "$d" "$c")
      t0=$EPOCHREALTIME rc=0
      timeout "$LOAD_TIMEOUT" ip netns exec "$NODE" nft -f "$f" || rc=$?
      if [[ $rc != 0 ]]; then echo "change $c failed (exit $rc)" >>"$RAW/n$n/cp/nftables_error"; break; fi
      awk -v s="$(secs_since "$t0")" 'BEGIN { printf "%.3f\n", s * 1000 }' >>"$RAW/n$n/cp/nftables_change_ms"
    done
  fi
}

unload_rules() {
  # Everything in the node namespace's netfilter (iptables-nft tables and table ip
  # kube-proxy); the root namespace is not affected.
  timeout "$LOAD_TIMEOUT" ip netns exec "$NODE" nft flush ruleset || log "warning: flush ruleset failed"
  LOADED=()
}

# ================================================================ switchyard
# Modes switchyard-socklb and switchyard-tc share ONE daemon per N, started here in the
# node namespace with `source: apiserver` against sy-fake-apiserver, which holds the world
# of bench/gen_manifests.py (as in production, the daemon is idle while nothing changes;
# the files source would stat every file each pollInterval, about 5 us a file). The modes
# differ only on the client side: socklb runs the client's tools inside $SY_CGROUP (the
# daemon's cgroupPath, so connect() is translated), tc runs them outside it (packets to
# the ClusterIP reach the tc program on the node side of the client's veth, "vcl").
#
# Control plane (docs/benchmarks.md, "Control plane"): every daemon runs with
# logging.verbosity 4, so its log times the start ("adopted pinned maps"), the source's
# first complete picture ("source synced") and every sync with its duration; cp_stats.py
# turns those lines, /proc/PID and `bpftool map show` into cold time, CPU seconds, peak
# RSS and BPF map memory. cp_driver.py applies and times one-endpoint changes. After the
# dataplane rounds, switchyard_scale runs the daemon alone for each N of --cp-services.
SY_PID=""
SY_T0=""
SY_CGROUP=""
SY_DIR=""
SY_CONF=""
SY_LOG=""
SY_PIN="/sys/fs/bpf/$TAG"
FAKE_PID=""
FAKE_PORT=""
FAKE_TOKEN=""
FAKE_LOAD_S=""
switchyard_wanted() { [[ " $MODES " == *" switchyard-socklb "* || " $MODES " == *" switchyard-tc "* ]]; }

switchyard_cgroup() {  # the client's cgroup for socket LB, under the cgroup v2 mount
  local root dir
  [[ -z $SY_CGROUP ]] || return 0
  for dir in /sys/fs/cgroup/unified /sys/fs/cgroup; do  # hybrid hierarchy, or v2 only
    if [[ -d $dir && $(stat -f -c %T "$dir" 2>/dev/null) == cgroup2fs ]]; then root=$dir; break; fi
  done
  if [[ -z ${root:-} ]]; then
    echo "run.sh: no cgroup v2 mount (/sys/fs/cgroup/unified or /sys/fs/cgroup)" >&2
    exit 1
  fi
  SY_CGROUP="$root/$TAG-client"
  mkdir "$SY_CGROUP"
}

# sy_write_config FILE N files PATH [POLL] | sy_write_config FILE N apiserver KUBECONFIG
sy_write_config() {
  local f=$1 n=$2 kind=$3 path=$4 poll=${5:-500ms}
  # Map sizes grow with N where the defaults (bpf/abi.h) would not hold the world: the
  # services map has 1 + M entries per frontend (slot 0 and one per backend), backends are
  # distinct (benchlib.synthetic), one rev-NAT entry per frontend; 25 % headroom.
  local fe=$((n + 3)) svc be rn
  svc=$((fe * (M + 1) * 5 / 4)) be=$(((n * M + K) * 5 / 4)) rn=$((fe * 5 / 4))
  ((svc > 262144)) || svc=262144
  ((be > 131072)) || be=131072
  ((rn > 262144)) || rn=262144
  {
    cat <<EOF
apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
hostnameOverride: $NODE
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: 198.18.0.0/16
logging:
  verbosity: 4
EOF
    if [[ $kind == files ]]; then
      printf 'source:\n  kind: files\n  path: %s\n  pollInterval: %s\n' "$path" "$poll"
    else
      printf 'source:\n  kind: apiserver\nclientConnection:\n  kubeconfig: %s\n' "$path"
    fi
    cat <<EOF
bpf:
  pinPath: $SY_PIN
  cgroupPath: $SY_CGROUP
  socketLB: true
  devices: [vcl]
  mapSizes:
    services: $svc
    backends: $be
    revNat: $rn
EOF
  } >"$f"
}

sy_launch() {  # sy_launch CONFIG LOG: the daemon, in the node namespace
  SY_CONF=$1 SY_LOG=$2
  # nsenter keeps this mount namespace (bpffs, cgroup2); `ip netns exec` would not. It
  # execs the daemon, so $! is the daemon's PID (for /proc/PID).
  SY_T0=$EPOCHREALTIME
  nsenter --net="/run/netns/$NODE" "$SWITCHYARD_BIN" run --config "$SY_CONF" >"$SY_LOG" 2>&1 &
  SY_PID=$!
}

# sy_wait_programmed EXPECTED_FRONTENDS OUT_JSON: waits (bounded) for the daemon's first full
# sync that leaves EXPECTED frontends, then writes the cold figures: times from the log,
# CPU seconds and peak RSS so far, BPF map memory.
sy_wait_programmed() {
  local expected=$1 out=$2 line
  while :; do
    line=$(grep -a "full sync of" "$SY_LOG" 2>/dev/null | tail -1) || true
    if [[ $line =~ now\ ([0-9]+)\ frontends ]] && ((BASH_REMATCH[1] >= expected)); then break; fi
    if ! kill -0 "$SY_PID" 2>/dev/null ||
       awk -v a="$SY_T0" -v b="$EPOCHREALTIME" -v l="$LOAD_TIMEOUT" 'BEGIN { exit !(b - a > l) }'; then
      return 1
    fi
    sleep 0.02
  done
  local proc cold mem
  proc=$("$PY" "$HERE/cp_stats.py" proc "$SY_PID")
  cold=$("$PY" "$HERE/cp_stats.py" cold "$SY_LOG" "$SY_T0" "$expected")
  mem=$("$PY" "$HERE/cp_stats.py" mapmem "$SY_PIN")
  "$PY" -c 'import json, sys
d = json.loads(sys.argv[1]); d.update({"cold_" + k: v for k, v in json.loads(sys.argv[2]).items()})
d.update(json.loads(sys.argv[3])); print(json.dumps(d, sort_keys=True))' "$cold" "$proc" "$mem" >"$out"
}

# fake_start WORLD_JSON DIR: sy-fake-apiserver in the node namespace, preloaded with the
# objects of WORLD_JSON; writes DIR/kubeconfig; sets FAKE_PID FAKE_PORT FAKE_TOKEN.
fake_start() {
  local world=$1 d=$2 t0=$EPOCHREALTIME
  FAKE_TOKEN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  rm -f "$d/port"
  nsenter --net="/run/netns/$NODE" "$FAKE_APISERVER_BIN" --listen 127.0.0.1:0 --pki-dir "$WORK/pki" \
    --token "$FAKE_TOKEN" --fixtures "$world" --kubeconfig-out "$d/kubeconfig" \
    --port-file "$d/port" >"$d/fake.log" 2>&1 &
  FAKE_PID=$!
  PIDS+=("$FAKE_PID")
  until [[ -s $d/port ]]; do
    if ! kill -0 "$FAKE_PID" 2>/dev/null ||
       awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$LOAD_TIMEOUT" 'BEGIN { exit !(b - a > l) }'; then
      fake_stop
      return 1
    fi
    sleep 0.1
  done
  FAKE_PORT=$(cat "$d/port")
  FAKE_LOAD_S=$(secs_since "$t0")
}

# fake_cpu: the fake API server's CPU seconds so far (utime + stime)
fake_cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$FAKE_PID/stat"; }

# fake_record OUT_JSON CPU_BEFORE: how long the fake took to load the world, and the CPU it
# spent serving the daemon's lists (the cold start's "source synced" is partly its time)
fake_record() {
  "$PY" - "$1" "$FAKE_LOAD_S" "$2" "$(fake_cpu)" "$FAKE_PID" <<'EOF'
import json, sys
out, load, c0, c1, pid = sys.argv[1:]
hwm = next((int(l.split()[1]) for l in open("/proc/%s/status" % pid) if l.startswith("VmHWM:")), 0)
json.dump({"fake_load_s": round(float(load), 3), "fake_cpu_during_cold_s": round(float(c1) - float(c0), 2),
           "fake_rss_peak_mib": round(hwm / 1024, 1)}, open(out, "w"))
EOF
}

fake_stop() {
  [[ -n $FAKE_PID ]] || return 0
  kill "$FAKE_PID" 2>/dev/null || true
  wait "$FAKE_PID" 2>/dev/null || true
  FAKE_PID=""
}

# sy_summary JSON: one line of cold figures for the progress log
sy_summary() {
  "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print("%ss (BPF loaded %ss, source synced %ss, full sync %ss), %s CPU s, %s MiB peak RSS, %s MiB BPF maps" % (
    d["cold_s"], d.get("loaded_s"), d.get("source_synced_s"), d["full_sync_s"], d["cold_cpu_s"],
    d["cold_rss_peak_mib"], d["bpf_map_memlock_mib"]))' "$1"
}

# switchyard_start N: the dataplane daemon for N, with `source: apiserver` against
# sy-fake-apiserver preloaded with the world (production's path; idle while traffic runs).
# Returns 0 when the daemon has programmed the world.
switchyard_start() {
  local n=$1
  local expected=$((n + 3))  # service ports: N-1 synthetic, real-one (2), real (2)
  if [[ ! -x $SWITCHYARD_BIN || ! -x $FAKE_APISERVER_BIN ]]; then
    log "N=$n: switchyard-socklb, switchyard-tc skipped: $SWITCHYARD_BIN or $FAKE_APISERVER_BIN missing"
    mkdir -p "$RAW/n$n/cp"
    echo "build/cmd/switchyard or sy-fake-apiserver missing" >"$RAW/n$n/cp/switchyard_skipped"
    return 1
  fi
  SY_DIR="$WORK/switchyard/n$n"
  mkdir -p "$SY_DIR" "$RAW/n$n/cp"
  "$PY" "$HERE/gen_manifests.py" --services "$n" --endpoints "$M" --backends "$K" \
    --node-name "$NODE" --json-list "$SY_DIR/world.json"
  switchyard_cgroup
  if ! fake_start "$SY_DIR/world.json" "$SY_DIR"; then
    log "N=$n: sy-fake-apiserver did not start; see $SY_DIR/fake.log"
    echo "sy-fake-apiserver did not start" >"$RAW/n$n/cp/switchyard_error"
    return 1
  fi
  sy_write_config "$SY_DIR/config.yaml" "$n" apiserver "$SY_DIR/kubeconfig"
  local fc0
  fc0=$(fake_cpu)
  sy_launch "$SY_DIR/config.yaml" "$SY_DIR/daemon.log"
  if ! sy_wait_programmed "$expected" "$RAW/n$n/cp/switchyard_daemon.json"; then
    log "N=$n: switchyard did not program $expected service ports; see $SY_DIR/daemon.log"
    tail -5 "$SY_DIR/daemon.log" >&2 || true
    echo "daemon failed or timed out" >"$RAW/n$n/cp/switchyard_error"
    switchyard_stop
    return 1
  fi
  fake_record "$RAW/n$n/cp/switchyard_fake.json" "$fc0"
  "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["cold_s"])' \
    "$RAW/n$n/cp/switchyard_daemon.json" >"$RAW/n$n/cp/switchyard_cold_s"
  log "N=$n: switchyard (source: apiserver) programmed in $(sy_summary "$RAW/n$n/cp/switchyard_daemon.json")"
  return 0
}

# sy_changes SOURCE N OUT_JSONL [driver options]: one-endpoint changes on the running daemon
sy_changes() {
  local src=$1 n=$2 out=$3
  shift 3
  timeout $((LOAD_TIMEOUT + 60 * (SY_CHANGES + E2E_CHANGES))) \
    nsenter --net="/run/netns/$NODE" "$PY" "$HERE/cp_driver.py" --source "$src" --log "$SY_LOG" \
    --switchyard "$SWITCHYARD_BIN" --pin-path "$SY_PIN" --services "$n" --endpoints "$M" \
    --backends "$K" --node-name "$NODE" --changes "$SY_CHANGES" --e2e "$E2E_CHANGES" \
    --out "$out" "$@"
}

# sy_stop [OUT_JSON]: stops the daemon (after writing its final CPU seconds and peak RSS)
sy_stop() {
  [[ -n $SY_PID ]] || return 0
  if [[ -n ${1:-} ]]; then "$PY" "$HERE/cp_stats.py" proc "$SY_PID" >"$1" 2>/dev/null || true; fi
  kill "$SY_PID" 2>/dev/null || true
  wait "$SY_PID" 2>/dev/null || true
  SY_PID=""
  # Programs and pins outlive the daemon by design: remove them explicitly, in the
  # namespace the daemon ran in (cleanup refuses to touch devices of another namespace).
  if ! nsenter --net="/run/netns/$NODE" "$SWITCHYARD_BIN" cleanup --pin-path "$SY_PIN" \
       >"$WORK/cleanup.out" 2>&1; then
    log "warning: switchyard cleanup failed: $(tail -2 "$WORK/cleanup.out")"
    rm -rf "$SY_PIN" 2>/dev/null || true  # no pins left behind; hooks go with vcl and the cgroup
  fi
}
switchyard_stop() {  # switchyard_stop [N]: the dataplane daemon and its API server
  local n=${1:-}
  if [[ -n $n ]]; then sy_stop "$RAW/n$n/cp/switchyard_final.json"; else sy_stop; fi
  fake_stop
  [[ -z $SY_DIR ]] || rm -f "$SY_DIR/world.json"
}

# switchyard_scale N: the daemon alone (no traffic) with N services x M endpoints:
#  files-yaml  (N <= YAML_MAX) one YAML file per service, pollInterval 50ms: cold, then
#              one-endpoint changes by renaming one file (each re-parses that file only)
#  files-json  one JSON List file (kubectl get -o json): cold
#  apiserver   sy-fake-apiserver preloaded with the same objects: cold, then one-endpoint
#              changes through the API
switchyard_scale() {
  local n=$1 rc
  local d="$WORK/scale/n$n" out="$RAW/scale/n$n" expected=$((n + 3))
  mkdir -p "$d" "$out"
  switchyard_cgroup
  if ((n <= YAML_MAX)); then
    log "scale N=$n: one YAML file per service"
    "$PY" "$HERE/gen_manifests.py" --services "$n" --endpoints "$M" --backends "$K" \
      --node-name "$NODE" --out-dir "$d/manifests" --changes "$((SY_CHANGES + E2E_CHANGES))" \
      --change-dir "$d/changes"
    sy_write_config "$d/files-yaml.yaml" "$n" files "$d/manifests" 50ms
    sy_launch "$d/files-yaml.yaml" "$d/files-yaml.log"
    if sy_wait_programmed "$expected" "$out/files-yaml.json"; then
      log "scale N=$n: files-yaml cold $(sy_summary "$out/files-yaml.json")"
      rc=0
      sy_changes files "$n" "$out/files-yaml_changes.jsonl" --manifest-dir "$d/manifests" \
        --change-dir "$d/changes" || rc=$?
      [[ $rc == 0 ]] || echo "files-yaml: changes failed (exit $rc)" >>"$out/error"
    else
      echo "files-yaml: no full sync of $expected frontends within ${LOAD_TIMEOUT}s" >>"$out/error"
      log "scale N=$n: files-yaml FAILED; see $d/files-yaml.log"
    fi
    sy_stop "$out/files-yaml_final.json"
    rm -rf "$d/manifests" "$d/changes"
  fi
  log "scale N=$n: one JSON List"
  "$PY" "$HERE/gen_manifests.py" --services "$n" --endpoints "$M" --backends "$K" \
    --node-name "$NODE" --json-list "$d/world.json"
  sy_write_config "$d/files-json.yaml" "$n" files "$d/world.json"
  sy_launch "$d/files-json.yaml" "$d/files-json.log"
  if sy_wait_programmed "$expected" "$out/files-json.json"; then
    log "scale N=$n: files-json cold $(sy_summary "$out/files-json.json")"
  else
    echo "files-json: no full sync of $expected frontends within ${LOAD_TIMEOUT}s" >>"$out/error"
    log "scale N=$n: files-json FAILED; see $d/files-json.log"
  fi
  sy_stop "$out/files-json_final.json"
  if ! fake_start "$d/world.json" "$d"; then
    echo "apiserver: sy-fake-apiserver did not start: $(tail -3 "$d/fake.log")" >>"$out/error"
    log "scale N=$n: sy-fake-apiserver FAILED; see $d/fake.log"
    rm -f "$d/world.json"
    return 0
  fi
  log "scale N=$n: sy-fake-apiserver holds the world after $FAKE_LOAD_S s"
  sy_write_config "$d/apiserver.yaml" "$n" apiserver "$d/kubeconfig"
  local fc0
  fc0=$(fake_cpu)
  sy_launch "$d/apiserver.yaml" "$d/apiserver.log"
  if sy_wait_programmed "$expected" "$out/apiserver.json"; then
    fake_record "$out/apiserver_fake.json" "$fc0"
    log "scale N=$n: apiserver cold $(sy_summary "$out/apiserver.json")"
    rc=0
    sy_changes apiserver "$n" "$out/apiserver_changes.jsonl" --api "127.0.0.1:$FAKE_PORT" \
      --ca "$WORK/pki/ca.crt" --token "$FAKE_TOKEN" || rc=$?
    [[ $rc == 0 ]] || echo "apiserver: changes failed (exit $rc)" >>"$out/error"
    log "scale N=$n: $(wc -l <"$out/apiserver_changes.jsonl") changes through the API"
  else
    echo "apiserver: no full sync of $expected frontends within ${LOAD_TIMEOUT}s" >>"$out/error"
    log "scale N=$n: apiserver FAILED; see $d/apiserver.log"
  fi
  sy_stop "$out/apiserver_final.json"
  fake_stop
  rm -f "$d/world.json"
}

switchyard_teardown_cgroup() {
  [[ -n $SY_CGROUP && -d $SY_CGROUP ]] && rmdir "$SY_CGROUP" 2>/dev/null
  SY_CGROUP=""
}
# ================================================================ end of switchyard

# ---------------------------------------------------------------- main
"$PY" - "$WORK/meta.json" "$QUICK" "$SERVICES" "$M" "$K" "$ROUNDS" "$DUR" "$CHANGES" \
  "$WRK_THREADS" "$WRK_CONNS" "$NGINX_WORKERS" "$CONTROL" "$SY_CHANGES" "$E2E_CHANGES" "$CP_SERVICES" \
  "$SWITCHYARD_BIN" "$ORIG_ARGS" <<'EOF'
import json, os, platform, subprocess, sys, time
(out, quick, services, m, k, rounds, dur, changes, wt, wc, nw, control, syc, e2e, cps,
 sybin, args) = sys.argv[1:]
def ver(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        return (p.stdout or p.stderr).splitlines()[0].strip()
    except Exception:
        return None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None)
json.dump({
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "kernel": platform.release(), "cpus": os.cpu_count(), "cpu_model": cpu,
    "quick": quick == "1", "services": [int(x) for x in services.split()],
    "endpoints": int(m), "backends": int(k), "rounds": int(rounds), "duration_s": int(dur),
    "changes": int(changes), "wrk_threads": int(wt), "wrk_connections": int(wc),
    "nginx_workers": int(nw), "control_service_measured": control == "1",
    "switchyard_changes": int(syc), "switchyard_e2e_changes": int(e2e),
    "cp_services": [int(x) for x in cps.split()], "command": "bench/run.sh " + args,
    "switchyard_version": ver([sybin, "version"]) if os.access(sybin, os.X_OK) else None,
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "tools": {"iptables": ver(["iptables", "--version"]), "nft": ver(["nft", "--version"]),
              "wrk": ver(["wrk", "--version"]), "nginx": ver(["nginx", "-v"]),
              "sockperf": ver(["sockperf", "--version"]), "iperf3": ver(["iperf3", "--version"]),
              "bpftool": ver(["bpftool", "--version"])},
}, open(out, "w"), indent=1)
EOF

log "topology: node $NODE, client $CLIENT_IP, $K backends, work dir $WORK"
setup_topology
start_backends
log "servers up; modes: $MODES; N: $SERVICES; M=$M; $ROUNDS rounds of ${DUR}s"

for n in $SERVICES; do
  active=()
  [[ " $MODES " == *" direct "* ]] && active+=(direct)
  if [[ " $MODES " == *" iptables "* ]]; then
    load_iptables "$n"
    [[ ${LOADED[iptables]} == 1 ]] && active+=(iptables)
  fi
  if [[ " $MODES " == *" nftables "* ]]; then
    load_nftables "$n"
    [[ ${LOADED[nftables]} == 1 ]] && active+=(nftables)
  fi
  if switchyard_wanted && switchyard_start "$n"; then
    [[ " $MODES " == *" switchyard-socklb "* ]] && active+=(switchyard-socklb)
    [[ " $MODES " == *" switchyard-tc "* ]] && active+=(switchyard-tc)
  fi
  # Alternate the order round by round (A B C, C B A, ...) so drift cancels.
  for ((r = 1; r <= ROUNDS; r++)); do
    order=("${active[@]}")
    if ((r % 2 == 0)); then
      order=()
      for ((j = ${#active[@]} - 1; j >= 0; j--)); do order+=("${active[$j]}"); done
    fi
    for mode in "${order[@]}"; do measure "$mode" "$n" "$r"; done
  done
  time_changes "$n"
  switchyard_stop "$n"
  unload_rules
done
if switchyard_wanted && [[ -n ${CP_SERVICES// /} ]]; then
  if [[ ! -x $SWITCHYARD_BIN || ! -x $FAKE_APISERVER_BIN ]]; then
    log "switchyard control-plane scale runs skipped: $SWITCHYARD_BIN or $FAKE_APISERVER_BIN missing"
    mkdir -p "$RAW/scale"
    echo "$SWITCHYARD_BIN or $FAKE_APISERVER_BIN missing" >"$RAW/scale/skipped"
  else
    for n in $CP_SERVICES; do switchyard_scale "$n"; done
  fi
fi
switchyard_teardown_cgroup

log "done; results:"
report_args=("$RAW" --meta "$WORK/meta.json" --modes "$MODES")
[[ -n $JSON_OUT ]] && report_args+=(--json "$JSON_OUT")
"$PY" "$HERE/report.py" "${report_args[@]}"
log "total run time $(elapsed) s"
