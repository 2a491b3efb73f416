#!/usr/bin/env bash
# bench/check_quick.sh: CI smoke test of the benchmark harness (not of performance).
#
# Runs `bench/run.sh --quick --json FILE` and checks, without judging any timing, that
#   * direct, iptables and nftables ran at every N (their tools are always installed);
#   * every mode that ran delivered traffic: short-connection and keep-alive rates > 0,
#     sockperf and iperf3 results present, and no tool failed in every round;
#   * direct reached backend 0 only; every service mode reached all K backends
#     (for switchyard modes this is the check that its translation spreads connections);
#   * the switchyard modes ran whenever build/cmd/switchyard exists.
# Prints "check_quick: P passed, F failed" last; exit status 1 on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
K=4

out=$(mktemp /tmp/sybench-quick.XXXXXX.json)
trap 'rm -f "$out"' EXIT

rc=0
"$HERE/run.sh" --quick --backends "$K" --json "$out" "$@" || rc=$?
if [[ $rc -ne 0 ]]; then
  echo "check_quick: bench/run.sh --quick exited with status $rc"
  echo "check_quick: 0 passed, 1 failed"
  exit 1
fi

python3 - "$out" "$K" "$ROOT/build/cmd/switchyard" <<'EOF'
import json, os, sys

path, k, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
doc = json.load(open(path))
results = doc["results"]
passed, failed = 0, 0

def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)

ns = sorted({r["services"] for r in results})
check(ns == [1, 1000], "quick run covers N = 1 and 1000 (got %s)" % ns)
for n in ns:
    for mode in ("direct", "iptables", "nftables"):
        rec = next((r for r in results if r["services"] == n and r["mode"] == mode), None)
        check(rec is not None and not rec.get("skipped"),
              "N=%d %s ran (%s)" % (n, mode, rec.get("skipped") if rec else "no record"))
    for mode in ("switchyard-socklb", "switchyard-tc"):
        rec = next((r for r in results if r["services"] == n and r["mode"] == mode), None)
        if os.access(binary, os.X_OK):
            check(rec is not None and not rec.get("skipped"),
                  "N=%d %s ran although %s exists (%s)"
                  % (n, mode, binary, rec.get("skipped") if rec else "no record"))
        elif rec is not None and rec.get("skipped"):
            print("note: N=%d %s skipped: %s" % (n, mode, rec["skipped"]))

for r in results:
    if r.get("skipped"):
        continue
    tag = "N=%d %s" % (r["services"], r["mode"])
    rounds = r["rounds"]
    check(rounds >= 1, tag + ": at least one round")
    check((r.get("short_conn_rps") or 0) > 0, tag + ": short-connection rate > 0")
    check((r.get("keepalive_rps") or 0) > 0, tag + ": keep-alive rate > 0")
    check(r.get("sockperf_p50_us") is not None, tag + ": sockperf ping-pong completed")
    check((r.get("iperf_gbps") or 0) > 0, tag + ": iperf3 throughput > 0")
    fs = r.get("failed_samples", {})
    for tool, count in fs.items():
        check(count < rounds, tag + ": %s failed in every round" % tool)
    reached = r.get("backends_reached", {})
    if r["mode"] == "direct":
        check(list(reached) == ["be0"], tag + ": direct reaches only be0 (got %s)" % reached)
    else:
        check(len(reached) == k and all(v > 0 for v in reached.values()),
              tag + ": all %d backends reached (got %s)" % (k, reached))
    if r["mode"] in ("iptables", "nftables"):
        check(r.get("cold_load_s") is not None, tag + ": cold load time recorded")
        check(r.get("changes", 0) > 0, tag + ": endpoint-change times recorded")

print("check_quick: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
