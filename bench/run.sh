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

  --quick             N = 1 and 1000, 2 rounds of 1 s per tool, 3 changes (< 3 minutes)
  (default)           N = 1 and 10000, 5 rounds of 8 s per tool, 20 changes, and the
                      one-endpoint control service measured with short connections too
  --json FILE         also write the results as JSON (one record per mode and N)
  --services "A B"    service counts N to run (each includes the measured service)
  --endpoints M       endpoints per synthetic service (default 10)
  --backends K        backend pods (default 4)
  --rounds R          rounds; each round runs every mode once, order alternating
  --duration S        seconds per wrk / sockperf / iperf3 sample
  --changes C         one-endpoint changes timed per rule set and N
  --control, --no-control
                      also measure short connections through the one-endpoint control
                      service (one backend, like direct, but translated)
  --modes "..."       subset of: direct iptables nftables switchyard-socklb switchyard-tc
  --load-timeout S    bound for one rule-set load (iptables-restore, nft -f, daemon start)
  --switchyard PATH   daemon binary (default: build/cmd/switchyard)
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
KEEP=0
IPT_COLD_FLAGS=()
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
NGINX_WORKERS=${NGINX_WORKERS:-2}

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
    --keep) KEEP=1 ;;
    --iptables-noflush-cold) IPT_COLD_FLAGS=(--noflush) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $QUICK == 1 ]]; then
  : "${SERVICES:=1 1000}" "${ROUNDS:=2}" "${DUR:=1}" "${CHANGES:=3}" "${LOAD_TIMEOUT:=120}"
  : "${CONTROL:=0}"
else
  : "${SERVICES:=1 10000}" "${ROUNDS:=5}" "${DUR:=8}" "${CHANGES:=20}" "${LOAD_TIMEOUT:=1800}"
  : "${CONTROL:=1}"
fi
for m in $MODES; do
  case "$m" in direct|iptables|nftables|switchyard-socklb|switchyard-tc) ;;
    *) echo "run.sh: unknown mode $m" >&2; exit 2 ;; esac
done
if [[ -n $JSON_OUT ]]; then JSON_OUT=$(realpath -m "$JSON_OUT"); fi

if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: needs root (network namespaces, rule loads)" >&2
  exit 1
fi
missing=()
for t in ip wrk nginx sockperf iperf3 nft iptables-restore python3 curl timeout; do
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
  switchyard_stop
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
  local bound=$((DUR + 10)) ts=$EPOCHREALTIME
  step() { echo "$1 $(secs_since "$ts")" >>"$out/timing"; ts=$EPOCHREALTIME; }
  # Kernel counters around the short-connection test, for diagnosing stalls.
  counters() { local ns; for ns in "$CL" "$NODE" "$TAG-be0"; do
      echo "== $ns"; nsx "$ns" nstat -asz 2>/dev/null | grep -vE ' 0 +0.0$'; done >"$out/counters-$1"; }
  counters before
  client timeout "$bound" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DUR}s" --latency \
    -H 'Connection: close' "http://$HTTP_T:$HTTP_PORT/" >"$out/short.txt" 2>&1 ||
    echo "exit status $?" >>"$out/short.txt"
  step short
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
  # goes through the one-endpoint control service.
  client timeout "$bound" iperf3 -c "$ONE_T" -p "$IPERF_PORT" -t "$DUR" -J --connect-timeout 3000 \
    >"$out/iperf.json" 2>"$out/iperf.err" || echo "exit status $?" >>"$out/iperf.err"
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
  CLIENT_CGROUP=""
  log "  N=$n $mode round $r: $(python3 "$HERE/report.py" --sample "$out")"
}

# ---------------------------------------------------------------- kube-proxy rule sets
declare -A LOADED=()
load_iptables() {  # load_iptables N -> LOADED[iptables]
  local n=$1
  local d="$WORK/rules/n$n" t0 rc=0
  mkdir -p "$d" "$RAW/n$n/cp"
  python3 "$HERE/gen_iptables.py" --services "$n" --endpoints "$M" --backends "$K" \
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
  python3 "$HERE/gen_nftables.py" --services "$n" --endpoints "$M" --backends "$K" \
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
  switchyard_time_changes "$n"
}

unload_rules() {
  # Everything in the node namespace's netfilter (iptables-nft tables and table ip
  # kube-proxy); the root namespace is not affected.
  timeout "$LOAD_TIMEOUT" ip netns exec "$NODE" nft flush ruleset || log "warning: flush ruleset failed"
  LOADED=()
}

# ================================================================ HOOK: switchyard modes
# Modes switchyard-socklb and switchyard-tc share ONE daemon per N, started here in the
# node namespace with `source: files` manifests from bench/gen_manifests.py. The modes
# differ only on the client side: socklb runs the client's tools inside $SY_CGROUP (the
# daemon's cgroupPath, so connect() is translated), tc runs them outside it (packets to the
# ClusterIP reach the tc program on the node side of the client's veth, "vcl").
#
# switchyard_start and switchyard_programmed work with today's daemon (files source,
# readiness = `switchyard status -o json` lists every service port). TO FILL IN (lead):
#   * a second start path with `source: apiserver` against tests/fake_apiserver, for the
#     cold time "from the API" and the watch-event change latency;
#   * peak RSS and CPU seconds of the daemon (e.g. /proc/$SY_PID/status VmHWM, stat) and
#     BPF map memory (bpftool map show under the pin path) per N.
#   * switchyard_time_changes: done for the files source (file rename -> `status` shows the
#     new endpoint, and the daemon's sync histogram); the apiserver-source measurement of
#     "watch event -> map write" is still to add.
# Cold programming time goes to $RAW/n$N/cp/switchyard_cold_s.
SY_PID=""
SY_CGROUP=""
SY_DIR=""
SY_CONF=""
switchyard_wanted() { [[ " $MODES " == *" switchyard-socklb "* || " $MODES " == *" switchyard-tc "* ]]; }

switchyard_programmed() {  # switchyard_programmed EXPECTED_FRONTENDS
  local got
  got=$("$SWITCHYARD_BIN" status --config "$SY_CONF" -o json 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("services", [])))' 2>/dev/null) || return 1
  [[ $got -ge $1 ]]
}

switchyard_start() {  # switchyard_start N: returns 0 when the daemon has programmed N services
  local n=$1 t0 tries expected
  if [[ ! -x $SWITCHYARD_BIN ]]; then
    log "N=$n: switchyard-socklb, switchyard-tc skipped: build/cmd/switchyard missing"
    mkdir -p "$RAW/n$n/cp"
    echo "build/cmd/switchyard missing" >"$RAW/n$n/cp/switchyard_skipped"
    return 1
  fi
  SY_DIR="$WORK/switchyard/n$n"
  mkdir -p "$SY_DIR/manifests" "$RAW/n$n/cp"
  python3 "$HERE/gen_manifests.py" --services "$n" --endpoints "$M" --backends "$K" \
    --node-name "$NODE" --out-dir "$SY_DIR/manifests" --changes "$CHANGES" --change-dir "$SY_DIR/changes"
  if [[ -z $SY_CGROUP ]]; then
    SY_CGROUP="/sys/fs/cgroup/unified/$TAG-client"
    mkdir -p "$SY_CGROUP"
  fi
  SY_CONF="$SY_DIR/config.yaml"
  cat >"$SY_CONF" <<EOF
apiVersion: switchyard.dev/v1alpha1
kind: SwitchyardConfiguration
hostnameOverride: $NODE
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: 198.18.0.0/16
source:
  kind: files
  path: $SY_DIR/manifests
  pollInterval: 50ms
bpf:
  pinPath: /sys/fs/bpf/$TAG
  cgroupPath: $SY_CGROUP
  socketLB: true
  devices: [vcl]
EOF
  # nsenter keeps this mount namespace (bpffs, cgroup2); `ip netns exec` would not.
  t0=$EPOCHREALTIME
  nsenter --net="/run/netns/$NODE" "$SWITCHYARD_BIN" run --config "$SY_CONF" >"$SY_DIR/daemon.log" 2>&1 &
  SY_PID=$!
  expected=$((n - 1 + 4))  # service ports: synthetic ones, real-one (2), real (2)
  for ((tries = 0; ; tries++)); do
    if switchyard_programmed "$expected"; then break; fi
    if ! kill -0 "$SY_PID" 2>/dev/null || awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$LOAD_TIMEOUT" 'BEGIN { exit !(b - a > l) }'; then
      log "N=$n: switchyard did not program $expected service ports; see $SY_DIR/daemon.log"
      tail -5 "$SY_DIR/daemon.log" >&2 || true
      echo "daemon failed or timed out" >"$RAW/n$n/cp/switchyard_error"
      switchyard_stop
      return 1
    fi
    sleep 0.05
  done
  secs_since "$t0" >"$RAW/n$n/cp/switchyard_cold_s"
  log "N=$n: switchyard programmed in $(cat "$RAW/n$n/cp/switchyard_cold_s") s (includes process start)"
  return 0
}

sy_metric() {  # sy_metric NAME: prints "SUM COUNT" of a histogram from the daemon's /metrics
  ip netns exec "$NODE" curl -s --max-time 2 "http://127.0.0.1:10249/metrics" 2>/dev/null |
    awk -v n="$1" '$1 == n "_sum" { s = $2 } $1 == n "_count" { c = $2 } END { print s + 0, c + 0 }'
}

switchyard_time_changes() {  # switchyard_time_changes N
  # Each change rewrites one manifest file (atomic rename) and waits until
  # `switchyard status` shows the new endpoint: the wall time includes the files source's
  # poll interval (50 ms here) and the status process, so it is an upper bound. The
  # daemon's own sync time for the change comes from the delta of
  # kubeproxy_sync_proxy_rules_duration_seconds around it.
  # TO FILL IN (lead): "watch event -> map write" needs the apiserver source
  # (kubeproxy_network_programming_duration_seconds); the files source has no watch event.
  local n=$1 c dir f name newip t0 before after ok tries
  [[ -n $SY_PID ]] || return 0
  : >"$RAW/n$n/cp/switchyard_change_ms"
  : >"$RAW/n$n/cp/switchyard_sync_ms"
  for ((c = 1; c <= CHANGES; c++)); do
    dir=$(printf '%s/changes/%04d' "$SY_DIR" "$c")
    f=$(ls "$dir"/*.yaml) name=$(basename "$f")
    newip=$(grep -m1 -oE '198\.18\.2(4[0-9]|5[0-5])\.[0-9]+' "$f")
    before=$(sy_metric kubeproxy_sync_proxy_rules_duration_seconds)
    cp "$f" "$SY_DIR/manifests/$name.tmp"
    t0=$EPOCHREALTIME
    mv -f "$SY_DIR/manifests/$name.tmp" "$SY_DIR/manifests/$name"
    ok=0
    for ((tries = 0; tries < 3000; tries++)); do
      if "$SWITCHYARD_BIN" status --config "$SY_CONF" -o json 2>/dev/null | grep -q "\"$newip\""; then
        ok=1
        break
      fi
      awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 30) }' && break
    done
    if [[ $ok != 1 ]]; then
      echo "change $c: $newip not in the maps after 30 s" >>"$RAW/n$n/cp/switchyard_error"
      break
    fi
    awk -v s="$(secs_since "$t0")" 'BEGIN { printf "%.3f\n", s * 1000 }' >>"$RAW/n$n/cp/switchyard_change_ms"
    sleep 0.1  # let the sync's histogram observation land
    after=$(sy_metric kubeproxy_sync_proxy_rules_duration_seconds)
    awk -v a="$before" -v b="$after" 'BEGIN { split(a, x, " "); split(b, y, " ");
      if (y[2] > x[2]) printf "%.3f\n", (y[1] - x[1]) * 1000 / (y[2] - x[2]) }' \
      >>"$RAW/n$n/cp/switchyard_sync_ms"
  done
}

switchyard_stop() {
  [[ -n $SY_PID ]] || return 0
  kill "$SY_PID" 2>/dev/null || true
  wait "$SY_PID" 2>/dev/null || true
  SY_PID=""
  # Programs and pins outlive the daemon by design: remove them explicitly.
  "$SWITCHYARD_BIN" cleanup --config "$SY_CONF" >/dev/null 2>&1 || true
  rm -rf "/sys/fs/bpf/$TAG" 2>/dev/null || true
}

switchyard_teardown_cgroup() {
  [[ -n $SY_CGROUP && -d $SY_CGROUP ]] && rmdir "$SY_CGROUP" 2>/dev/null
  SY_CGROUP=""
}
# ================================================================ end of HOOK

# ---------------------------------------------------------------- main
python3 - "$WORK/meta.json" "$QUICK" "$SERVICES" "$M" "$K" "$ROUNDS" "$DUR" "$CHANGES" \
  "$WRK_THREADS" "$WRK_CONNS" "$NGINX_WORKERS" "$CONTROL" <<'EOF'
import json, os, platform, subprocess, sys, time
out, quick, services, m, k, rounds, dur, changes, wt, wc, nw, control = sys.argv[1:]
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
    "tools": {"iptables": ver(["iptables", "--version"]), "nft": ver(["nft", "--version"]),
              "wrk": ver(["wrk", "--version"]), "nginx": ver(["nginx", "-v"]),
              "sockperf": ver(["sockperf", "--version"]), "iperf3": ver(["iperf3", "--version"])},
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
  switchyard_stop
  unload_rules
done
switchyard_teardown_cgroup

log "done; results:"
report_args=("$RAW" --meta "$WORK/meta.json" --modes "$MODES")
[[ -n $JSON_OUT ]] && report_args+=(--json "$JSON_OUT")
python3 "$HERE/report.py" "${report_args[@]}"
log "total run time $(elapsed) s"
