#!/usr/bin/env bash
# bench/policy.sh: what NetworkPolicy costs an established flow and a new connection, side by
# side in one run: policy off (policy.enabled false: a pure kube-proxy replacement) against
# policy on with 0, 100 and 10,000 rules selecting the measured pod (bench/gen_policies.py).
#
#   bench/policy.sh [--quick] [--json FILE] [--rules "0 100 10000"] [--rounds R] [--duration S] [--keep]
#
# The multi-node cluster in a box (tests/e2e/lib_multinode.sh): a client pod on node 1, the
# server pod on node 2 (nginx on 8080, iperf3 on 5201), one daemon per node. Per mode the
# daemons restart with that configuration and policy set (programs and maps stay pinned
# across restarts, as in production); each round runs every mode once, in alternating order:
#   short   wrk -H 'Connection: close' (a new TCP connection per request: each is judged)
#   stream  iperf3 (one established flow: the conntrack lookup only)
# Everything runs in namespaces this script makes (198.18.0.0/15) and is removed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

QUICK=0 JSON_OUT="" RULES="0 100 10000" ROUNDS=3 DUR=5 KEEP=0
while (($#)); do
  case $1 in
    --quick) QUICK=1 RULES="0 100" ROUNDS=1 DUR=2 ;;
    --json) JSON_OUT=$(realpath -m "$2"); shift ;;
    --rules) RULES=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench/policy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for t in wrk nginx iperf3 bpftool python3; do
  command -v "$t" >/dev/null || { echo "bench/policy.sh: $t not found (bash scripts/install-deps.sh)" >&2; exit 1; }
done

# shellcheck source=../tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"
# shellcheck source=../tests/e2e/lib_multinode.sh
source "$ROOT/tests/e2e/lib_multinode.sh"
sy_e2e_init bench-policy
((KEEP == 0)) || sy_on_exit "echo 'bench/policy.sh: work directory kept: $WORK'; cp -r '$WORK' '$WORK.kept'"

sy_mn_up 2 1
CLIENT_IP=${SY_MN_POD_IP4["1,1"]}
SERVER_IP=${SY_MN_POD_IP4["2,1"]}
SRV=$WORK/server
mkdir -p "$SRV"
cat >"$SRV/nginx.conf" <<EOF
worker_processes 1;
pid $SRV/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen $SERVER_IP:8080 reuseport backlog=4096;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
EOF
sy_mn_run pod 2 1 nginx -p "$SRV/" -e "$SRV/error.log" -c "$SRV/nginx.conf" -g 'daemon off;' >"$SRV/nginx.out" 2>&1 &
sy_track_pid $!
sy_mn_run pod 2 1 iperf3 -s -B "$SERVER_IP" -p 5201 >"$SRV/iperf3.out" 2>&1 &
sy_track_pid $!
sy_wait_for "servers listening" 10 bash -c \
  "ip netns exec '${SY_MN_POD_NS["2,1"]}' ss -Hltn | grep -q ':8080' && ip netns exec '${SY_MN_POD_NS["2,1"]}' ss -Hltn | grep -q ':5201'"

# map_at_least PIN MAP N: the pinned map MAP under PIN holds N entries or more.
map_at_least() {
  local n
  n=$(bpftool -j map dump pinned "$1/$2" 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null) || return 1
  ((n >= $3))
}

MODES=(off)
for n in $RULES; do MODES+=("on-$n"); done

# start_mode MODE: daemons of both nodes with MODE's configuration and objects.
start_mode() {
  local mode=$1 n=0 enabled=false i
  if [[ $mode == on-* ]]; then enabled=true n=${mode#on-}; fi
  python3 "$HERE/gen_policies.py" "$SY_MN_MANIFEST_DIR/policy.yaml" "$n" \
    "$CLIENT_IP" "${SY_MN_NODE_NAME[1]}" "$SERVER_IP" "${SY_MN_NODE_NAME[2]}"
  for i in 1 2; do
    sy_mn_write_config "$i" true "policy: {enabled: $enabled}"
    sy_mn_daemon_start "$i" "$WORK/daemon-n$i-$mode.log"
  done
  local want=$n
  ((n == 0)) || want=$((n + 1))  # the first policy opens two ports
  sy_wait_for "node 2 programmed $n rules ($mode)" 120 map_at_least "${SY_MN_PIN[2]}" pol_rules_v1 "$want" ||
    sy_fail "node 2 did not program the $mode rules (log: $WORK/daemon-n2-$mode.log)"
  # Node 1 selects nothing, but its daemon compiles the same objects: wait until its ipcache
  # holds every peer pod, so no control-plane work overlaps the measurement.
  if [[ $enabled == true ]]; then
    for i in 1 2; do
      sy_wait_for "node $i holds the $mode peers" 120 map_at_least "${SY_MN_PIN[i]}" pol_ipcache_v1 "$((n + 2))" ||
        sy_fail "node $i did not program the $mode ipcache (log: $WORK/daemon-n$i-$mode.log)"
    done
  fi
  # Every pod-to-pod connection is judged once policy is on: let the first ones through.
  sy_wait_for "client reaches server ($mode)" 20 sy_mn_run pod 1 1 \
    curl -s --max-time 1 -o /dev/null "http://$SERVER_IP:8080/" ||
    sy_fail "the client does not reach the server ($mode)"
}

stop_mode() {
  local i
  for i in 1 2; do sy_mn_daemon_stop "$i" >/dev/null || true; done
}

RESULTS=$WORK/results
mkdir -p "$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${MODES[@]}")
  if ((r % 2 == 0)); then
    order=()
    for ((k = ${#MODES[@]} - 1; k >= 0; k--)); do order+=("${MODES[k]}"); done
  fi
  for mode in "${order[@]}"; do
    sy_log "round $r: $mode"
    start_mode "$mode"
    out=$RESULTS/$mode-r$r
    mkdir -p "$out"
    sy_mn_run pod 1 1 timeout $((DUR + 20)) wrk -t1 -c16 -d"${DUR}s" --latency -H 'Connection: close' \
      "http://$SERVER_IP:8080/" >"$out/short.txt" 2>&1 || echo "exit status $?" >>"$out/short.txt"
    sy_mn_run pod 1 1 timeout $((DUR + 20)) iperf3 -c "$SERVER_IP" -p 5201 -t "$DUR" -J --connect-timeout 3000 \
      >"$out/iperf.json" 2>"$out/iperf.err" || echo "exit status $?" >>"$out/iperf.err"
    # How many judgements the round took (new connections; established packets add none).
    for c in policy_allowed policy_denied policy_denied_default; do
      echo "$c $(sy_mn_counter 2 $c)"
    done >"$out/counters.txt"
    stop_mode
  done
done

python3 - "$RESULTS" "$ROUNDS" "$JSON_OUT" "${MODES[@]}" <<'EOF'
import json, os, re, statistics, sys
results, rounds, json_out, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def short(path):
    txt = open(path).read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", txt)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
    return (float(m.group(1)) if m else None), (sum(map(int, errs.groups())) if errs else 0)
def stream(path):
    try:
        d = json.load(open(path))
        return d["end"]["sum_received"]["bits_per_second"] / 1e9
    except Exception:
        return None
rows, failed = {}, []
for mode in modes:
    s, t = [], []
    for r in range(1, rounds + 1):
        d = os.path.join(results, f"{mode}-r{r}")
        rate, errs = short(os.path.join(d, "short.txt"))
        gbps = stream(os.path.join(d, "iperf.json"))
        if rate is None or gbps is None or gbps <= 0:
            failed.append(f"{mode} round {r}: short={rate} stream={gbps}")
        s.append(rate or 0.0); t.append(gbps or 0.0)
    rows[mode] = {"short_conn_per_s": statistics.median(s), "stream_gbps": statistics.median(t),
                  "short_rounds": s, "stream_rounds": t}
base = rows["off"]
print(f"{'mode':10} {'short conn/s':>13} {'ratio':>6} {'stream Gb/s':>12} {'ratio':>6}   rounds (conn/s | Gb/s)")
for mode in modes:
    r = rows[mode]
    r["short_ratio"] = r["short_conn_per_s"] / base["short_conn_per_s"] if base["short_conn_per_s"] else None
    r["stream_ratio"] = r["stream_gbps"] / base["stream_gbps"] if base["stream_gbps"] else None
    fmt = lambda v: f"{v:.2f}" if v is not None else "n/a"
    print(f"{mode:10} {r['short_conn_per_s']:13.0f} {fmt(r['short_ratio']):>6} {r['stream_gbps']:12.2f} {fmt(r['stream_ratio']):>6}   "
          + " ".join(f"{x:.0f}" for x in r["short_rounds"]) + " | " + " ".join(f"{x:.2f}" for x in r["stream_rounds"]))
if json_out:
    json.dump({"rounds": rounds, "modes": rows, "failed": failed}, open(json_out, "w"), indent=1)
if failed:
    print("bench/policy.sh: failed samples (not averaged away):", *failed, sep="\n  ", file=sys.stderr)
    sys.exit(1)
EOF
