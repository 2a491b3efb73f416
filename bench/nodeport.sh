#!/usr/bin/env bash
# bench/nodeport.sh: NodePort from an external client, switchyard side by side with kube-proxy's
# iptables and nftables NodePort rules and with the topology's limit (direct to the pod), on the
# multi-node cluster in a box of the end-to-end tests (tests/e2e/lib_multinode.sh).
#
#   bench/nodeport.sh [--quick] [--json FILE] [options]      (root; see --help, docs/benchmarks.md)
#
#   ext ──► node-1:NodePort ──► pod n2p1 on node-2   ("remote": SNAT, DSR or masquerade)
#                          └──► pod n1p1 on node-1   ("local")
#
# Every mode of every round runs in a cluster of its own, built for it and torn down after it
# (one child process per setup, with lib.sh's cleanup trap), so nothing one mode leaves behind
# (conntrack, masquerade rules, pinned maps, SNAT ports) can disturb the next. Everything lives
# in network namespaces (198.18.0.0/15); the root namespace's netfilter is never touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
ALL_MODES="direct iptables nftables sy-snat sy-dsr-opt sy-dsr-ipip"

usage() {
  cat <<EOF
usage: bench/nodeport.sh [--quick] [--json FILE] [options]

  --quick            1 round, wrk 1 s, iperf3 200 MB (CI smoke: every mode carries traffic)
  (default)          5 rounds of 5 s per tool
  --json FILE        also write the results as JSON
  --rounds R         rounds; each runs every mode once, each in a fresh cluster, the order
                     alternating from round to round
  --duration S       seconds per wrk / iperf3 sample
  --modes "..."      subset of: $ALL_MODES
  --switchyard PATH  daemon binary (default: build/cmd/switchyard)
  --keep             keep the raw tool outputs and print their directory
EOF
}

# ---------------------------------------------------------------- one setup (child process)
# nodeport.sh --one MODE OUT_DIR: one cluster, one mode, both targets measured, outputs in
# OUT_DIR: {remote,local}-short.txt (wrk), {remote,local}-iperf.json, setup_error when the
# cluster did not come up or the NodePort did not answer from the right pod.
one_setup() {
  local mode=$1 out=$2
  # shellcheck source=tests/e2e/lib.sh
  source "$ROOT/tests/e2e/lib.sh"
  # shellcheck source=tests/e2e/lib_cluster.sh
  source "$ROOT/tests/e2e/lib_cluster.sh"
  # shellcheck source=tests/e2e/lib_multinode.sh
  source "$ROOT/tests/e2e/lib_multinode.sh"
  mkdir -p "$out"
  # A failure before the measurements leaves its reason for the report (lib.sh's sy_fail
  # exits; its message goes to stderr, which the parent saves as setup.log).
  echo "setup did not finish (see setup.log)" >"$out/setup_error"
  sy_e2e_init "np-$mode"
  sy_mn_up 2 1
  local n1=${SY_MN_NODE_IP4[1]} remote_ep=${SY_MN_POD_IP4[2,1]} local_ep=${SY_MN_POD_IP4[1,1]} i
  # Pods close first (Connection: close): no TIME_WAIT there, or reused client ports meet it
  # (as in bench/run.sh). Netfilter's TIME_WAIT entries: see load_rules.
  for key in 1,1 2,1; do
    ip netns exec "${SY_MN_POD_NS[$key]}" sysctl -qw net.ipv4.tcp_max_tw_buckets=0 net.core.somaxconn=4096 \
      net.ipv4.tcp_max_syn_backlog=4096 || sy_fail "pod sysctls"
  done
  start_pod_servers 1,1
  start_pod_servers 2,1
  case $mode in
    direct)
      # No service at all: ext reaches the pods through node-1, as NodePort traffic enters.
      ip -n "$SY_MN_EXT_NS" route add "${SY_MN_POD_CIDR4[1]}" via "$n1" || sy_fail "ext route"
      ip -n "$SY_MN_EXT_NS" route add "${SY_MN_POD_CIDR4[2]}" via "$n1" || sy_fail "ext route"
      ;;
    iptables | nftables) load_rules "$mode" "$remote_ep,$local_ep" ;;
    sy-*) start_switchyard "$mode" ;;
    *) sy_fail "unknown mode $mode" ;;
  esac
  local t_remote t_local # (address, HTTP port, iperf3 port)
  if [[ $mode == direct ]]; then
    t_remote=("$remote_ep" 80 5201) t_local=("$local_ep" 80 5201)
  else
    t_remote=("$n1" "$NP_REMOTE_HTTP" "$NP_REMOTE_IPERF") t_local=("$n1" "$NP_LOCAL_HTTP" "$NP_LOCAL_IPERF")
  fi
  # The right pod answers, or this setup is broken (and the report fails on it).
  check_answer "${t_remote[0]}" "${t_remote[1]}" n2p1
  check_answer "${t_local[0]}" "${t_local[1]}" n1p1
  rm -f "$out/setup_error"
  # The machine's load as the samples start (2 cores are easily shared with other work).
  cut -d' ' -f1 /proc/loadavg >"$out/loadavg"
  measure "$out" remote "${t_remote[@]}"
  measure "$out" local "${t_local[@]}"
  if [[ $mode == sy-* ]]; then
    for i in 1 2; do sy_mn_status_json "$i" >"$out/status-n$i.json" 2>/dev/null || true; done
  fi
  ip netns exec "$SY_MN_EXT_NS" nstat -asz 2>/dev/null | grep -E 'Retrans|TCPTimeouts|ActiveOpens' >"$out/ext-nstat.txt" || true
}

NP_REMOTE_HTTP=30080 NP_REMOTE_IPERF=30201 NP_LOCAL_HTTP=30081 NP_LOCAL_IPERF=30202 # benchlib.NODEPORTS

# start_pod_servers I,J: nginx on :80 answering the pod's name, iperf3 on :5201.
start_pod_servers() {
  local key=$1 ns=${SY_MN_POD_NS[$1]} name=${SY_MN_POD_NAME[$1]} dir
  dir=$WORK/srv-$name
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
    listen 80 reuseport backlog=4096;
    location / { default_type text/plain; return 200 "$name\n"; }
  }
}
EOF
  sy__spawn "$dir/nginx" ip netns exec "$ns" nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
  sy__spawn "$dir/iperf3" ip netns exec "$ns" iperf3 -s -p 5201
  sy_wait_for "nginx and iperf3 in $name" 10 pod_listens "$ns" ||
    sy_fail "servers in $name did not start: $(cat "$dir"/*.err 2>/dev/null)"
}

# shellcheck disable=SC2317 # called through sy_wait_for
pod_listens() {
  local l
  l=$(ip netns exec "$1" ss -Hltn 2>/dev/null)
  grep -q ':80 ' <<<"$l" && grep -q ':5201 ' <<<"$l"
}

# load_rules iptables|nftables REMOTE_EP,LOCAL_EP: kube-proxy's NodePort layout on both nodes
# (every node of a kube-proxy cluster has the same rules; node-2 forwards, and its conntrack
# runs as on any kube-proxy node).
load_rules() {
  local mode=$1 eps=$2 i f err
  if [[ $mode == iptables ]]; then
    f=$WORK/np.rules
    "$PY" "$HERE/gen_iptables.py" --services 1 --nodeport "$eps" --out "$f" || sy_fail "gen_iptables.py"
  else
    f=$WORK/np.nft
    "$PY" "$HERE/gen_nftables.py" --services 1 --nodeport "$eps" --out "$f" || sy_fail "gen_nftables.py"
  fi
  for i in 1 2; do
    if [[ $mode == iptables ]]; then
      err=$(timeout 60 ip netns exec "${SY_MN_NODE_NS[i]}" iptables-restore <"$f" 2>&1) || sy_fail "iptables-restore on node-$i: $err"
    else
      err=$(timeout 60 ip netns exec "${SY_MN_NODE_NS[i]}" nft -f "$f" 2>&1) || sy_fail "nft -f on node-$i: $err"
    fi
    # As bench/run.sh: closed connections' entries go after 5 s, so thousands of short
    # connections a second do not fill the table.
    ip netns exec "${SY_MN_NODE_NS[i]}" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=5 \
      net.netfilter.nf_conntrack_tcp_timeout_close_wait=5 net.netfilter.nf_conntrack_tcp_timeout_fin_wait=5 ||
      sy_fail "conntrack sysctls on node-$i"
  done
}

# start_switchyard sy-snat|sy-dsr-opt|sy-dsr-ipip: a daemon on each node, the two services.
start_switchyard() {
  local lb i
  case $1 in
    sy-snat) lb="loadBalancer: {mode: snat}" ;;
    sy-dsr-opt) lb="loadBalancer: {mode: dsr, dsrDispatch: opt}" ;;
    sy-dsr-ipip) lb="loadBalancer: {mode: dsr, dsrDispatch: ipip}" ;;
  esac
  sy_mn_write_node 1 zone-a
  sy_mn_write_node 2 zone-b
  # benchlib.nodeport_world: ClusterIPs .1 / .2 of switchyard's /24.
  sy_mn_write_service np-remote clusterIP=198.19.253.1 type=NodePort \
    port=http,80,80,TCP,$NP_REMOTE_HTTP port=iperf,5201,5201,TCP,$NP_REMOTE_IPERF
  sy_mn_write_slice np-remote np-remote IPv4 http:80/TCP,iperf:5201/TCP n2p1
  sy_mn_write_service np-local clusterIP=198.19.253.2 type=NodePort \
    port=http,80,80,TCP,$NP_LOCAL_HTTP port=iperf,5201,5201,TCP,$NP_LOCAL_IPERF
  sy_mn_write_slice np-local np-local IPv4 http:80/TCP,iperf:5201/TCP n1p1
  for i in 1 2; do
    sy_mn_write_config "$i" false "bpf: {hostDevices: [$SY_MN_FABRIC_DEV]}
$lb"
    sy_mn_daemon_start "$i"
  done
  for i in 1 2; do
    sy_mn_wait_programmed "$i" "$(sy_svc_has 0.0.0.0 $NP_REMOTE_HTTP TCP 1) and $(sy_svc_has 0.0.0.0 $NP_LOCAL_IPERF TCP 1)" 20
    sy_wait_for "node-$i's host-facing device to get the programs" 10 sy_mn_status_check "$i" \
      "sorted(h['direction'] for h in d['tc'] if h['device'] == '$SY_MN_FABRIC_DEV' and h['state'] == 'attached') == ['egress', 'ingress']" ||
      sy_fail "node-$i's $SY_MN_FABRIC_DEV has no tc programs"
  done
}

# check_answer ADDR HTTP_PORT POD: one request answered by POD.
check_answer() {
  local addr=$1 port=$2 body
  body=$(nsenter --net="/run/netns/$SY_MN_EXT_NS" curl -s --max-time 3 "http://$addr:$port/") || true
  [[ $body == "$3" ]] || sy_fail "http://$addr:$port/ from ext answered '$body', not $3"
}

# measure OUT NAME ADDR HTTP_PORT IPERF_PORT: short connections (wrk, Connection: close), then
# bulk throughput (iperf3), each bounded in time.
measure() {
  local out=$1 name=$2 addr=$3 http=$4 iperf=$5 bound=$((DUR + 15))
  nsenter --net="/run/netns/$SY_MN_EXT_NS" timeout "$bound" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DUR}s" \
    --latency -H 'Connection: close' "http://$addr:$http/" >"$out/$name-short.txt" 2>&1 ||
    echo "exit status $?" >>"$out/$name-short.txt"
  # shellcheck disable=SC2086 # IPERF_LEN is "-t S" or "-n BYTES"
  nsenter --net="/run/netns/$SY_MN_EXT_NS" timeout "$bound" iperf3 -c "$addr" -p "$iperf" $IPERF_LEN -J \
    --connect-timeout 3000 >"$out/$name-iperf.json" 2>"$out/$name-iperf.err" ||
    echo "exit status $?" >>"$out/$name-iperf.err"
}

PY=$(command -v python3 || true)
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
NGINX_WORKERS=${NGINX_WORKERS:-2}

if [[ ${1:-} == --one ]]; then
  DUR=${NP_DURATION:?}
  IPERF_LEN=${NP_IPERF_LEN:-"-t $DUR"}
  one_setup "$2" "$3"
  exit 0
fi

# ---------------------------------------------------------------- the run (parent)
QUICK=0 JSON_OUT="" ROUNDS="" DUR="" MODES=$ALL_MODES KEEP=0
SWITCHYARD_BIN="$ROOT/build/cmd/switchyard"
ORIG_ARGS="$*"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --json) JSON_OUT=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --switchyard) SWITCHYARD_BIN=$2; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "nodeport.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
IPERF_LEN=""
if [[ $QUICK == 1 ]]; then
  : "${ROUNDS:=1}" "${DUR:=1}"
  # iperf3 -t takes whole seconds; a fixed amount takes a fraction of one here.
  IPERF_LEN="-n 200M"
else
  : "${ROUNDS:=5}" "${DUR:=5}"
fi
for m in $MODES; do
  [[ " $ALL_MODES " == *" $m "* ]] || { echo "nodeport.sh: unknown mode $m" >&2; exit 2; }
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $DUR =~ ^[1-9][0-9]*$ ]] || { echo "nodeport.sh: --rounds and --duration must be positive integers" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
  echo "nodeport.sh: needs root (network namespaces, rule loads, BPF)" >&2
  exit 1
fi
missing=()
for t in ip wrk nginx iperf3 nft iptables-restore curl timeout nsenter python3; do
  command -v "$t" >/dev/null || missing+=("$t")
done
if [[ " $MODES " == *" sy-"* && ! -x $SWITCHYARD_BIN ]]; then missing+=("$SWITCHYARD_BIN"); fi
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "nodeport.sh: missing ${missing[*]}; run scripts/install-deps.sh and build switchyard" >&2
  exit 1
fi
if [[ -n $JSON_OUT ]]; then JSON_OUT=$(realpath -m "$JSON_OUT"); fi

WORK=$(mktemp -d /tmp/synp.XXXXXX)
RAW=$WORK/raw
mkdir -p "$RAW"
CHILD=""
# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # A child cleans up after itself (lib.sh's trap); on Ctrl-C it gets the signal too.
  if [[ -n $CHILD ]]; then kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; fi
  if [[ $KEEP == 1 ]]; then echo "nodeport.sh: raw outputs kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T_START=$EPOCHREALTIME
log() { printf '[%6.1fs] %s\n' "$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" "$*"; }

"$PY" - "$WORK/meta.json" "$QUICK" "$ROUNDS" "$DUR" "$MODES" "$WRK_THREADS" "$WRK_CONNS" "$NGINX_WORKERS" \
  "$SWITCHYARD_BIN" "$ORIG_ARGS" "${IPERF_LEN:--t $DUR}" <<'EOF'
import json, os, platform, subprocess, sys, time
out, quick, rounds, dur, modes, wt, wc, nw, sybin, args, iperf_len = sys.argv[1:]
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
    "quick": quick == "1", "rounds": int(rounds), "duration_s": int(dur), "modes": modes.split(),
    "wrk_threads": int(wt), "wrk_connections": int(wc), "nginx_workers": int(nw),
    "iperf3_length": iperf_len, "command": "bench/nodeport.sh " + args,
    "switchyard_version": ver([sybin, "version"]) if os.access(sybin, os.X_OK) else None,
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "tools": {"iptables": ver(["iptables", "--version"]), "nft": ver(["nft", "--version"]),
              "wrk": ver(["wrk", "--version"]), "nginx": ver(["nginx", "-v"]),
              "iperf3": ver(["iperf3", "--version"])},
}, open(out, "w"), indent=1)
EOF

read -r -a active <<<"$MODES"
log "NodePort benchmark: modes ${active[*]}; $ROUNDS rounds of ${DUR}s per tool, a fresh cluster per mode and round"
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${active[@]}")
  if ((r % 2 == 0)); then
    order=()
    for ((j = ${#active[@]} - 1; j >= 0; j--)); do order+=("${active[$j]}"); done
  fi
  for mode in "${order[@]}"; do
    out=$RAW/$mode/r$r
    mkdir -p "$out"
    NP_DURATION=$DUR NP_IPERF_LEN=$IPERF_LEN SY_BIN=$SWITCHYARD_BIN WRK_THREADS=$WRK_THREADS WRK_CONNS=$WRK_CONNS \
      NGINX_WORKERS=$NGINX_WORKERS bash "$HERE/nodeport.sh" --one "$mode" "$out" >"$out/setup.log" 2>&1 &
    CHILD=$!
    wait "$CHILD" || echo "setup exited with status $?" >>"$out/setup_error"
    CHILD=""
    log "round $r $mode: $("$PY" "$HERE/np_report.py" --sample "$out")"
  done
done

log "done; results:"
report_args=("$RAW" --meta "$WORK/meta.json" --modes "$MODES")
[[ -n $JSON_OUT ]] && report_args+=(--json "$JSON_OUT")
rc=0
"$PY" "$HERE/np_report.py" "${report_args[@]}" || rc=$?
((rc == 0)) || KEEP=1 # a collapsed round: keep its raw outputs for a look
log "total run time $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
exit "$rc"
