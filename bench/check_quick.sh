#!/usr/bin/env bash
# bench/check_quick.sh: CI smoke test of the benchmark harness (not of performance).
#
# Runs `bench/run.sh --quick --json FILE` and checks, without judging any timing, that
#   * direct, iptables and nftables ran at every N (their tools are always installed);
#   * every mode that ran delivered traffic: short-connection and keep-alive rates > 0,
#     sockperf and iperf3 results present, and no tool failed in every round;
#   * direct reached backend 0 only; every service mode reached all K backends
#     (for switchyard modes this is the check that its translation spreads connections);
#   * the switchyard modes ran whenever the daemon and sy-fake-apiserver are built, and
#     its control-plane figures were recorded (cold start from each source, changes
#     through the API and through files, RSS, CPU, BPF map memory).
# Then `bench/nodeport.sh --quick --json FILE` (about 40 s): it must exit 0 (no collapsed
# round), and every NodePort mode must carry short connections and iperf3 to both the remote
# and the local pod (the switchyard modes when the daemon is built).
# Prints "check_quick: P passed, F failed" for each part, the NodePort part last; exit status 1
# on any failure, 77 (skipped) without root. ctest runs it as bench_quick (tests/bench/CMakeLists.txt), with
# SY_BUILD_DIR naming the build tree whose binaries to use.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${SY_BUILD_DIR:-$ROOT/build}
K=4

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: bench/check_quick.sh needs root (network namespaces, BPF)"
  exit 77
fi

out=$(mktemp /tmp/sybench-quick.XXXXXX.json)
npout=$(mktemp /tmp/sybench-np-quick.XXXXXX.json)
trap 'rm -f "$out" "$npout"' EXIT

rc=0
"$HERE/run.sh" --quick --backends "$K" --json "$out" --switchyard "$BUILD/cmd/switchyard" \
  --fake-apiserver "$BUILD/tests/fake_apiserver/sy-fake-apiserver" "$@" || rc=$?
if [[ $rc -ne 0 ]]; then
  echo "check_quick: bench/run.sh --quick exited with status $rc"
  echo "check_quick: 0 passed, 1 failed"
  exit 1
fi

cp_rc=0
python3 - "$out" "$K" "$BUILD/cmd/switchyard" "$BUILD/tests/fake_apiserver/sy-fake-apiserver" <<'EOF' || cp_rc=$?
import json, os, sys

path, k, binary, fake = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
built = os.access(binary, os.X_OK) and os.access(fake, os.X_OK)
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
        if built:
            check(rec is not None and not rec.get("skipped"),
                  "N=%d %s ran although %s and %s exist (%s)"
                  % (n, mode, binary, fake, rec.get("skipped") if rec else "no record"))
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
        check((r.get("random_pod_short_conn_rps") or 0) > 0,
              tag + ": the random-pod reference over the %d pods delivered traffic" % k)
        opens = r.get("random_pod_connections", {})
        check(len(opens) == k and all(v > 0 for v in opens.values()),
              tag + ": the random-pod reference reached all %d pods (got %s)" % (k, opens))
    else:
        check(len(reached) == k and all(v > 0 for v in reached.values()),
              tag + ": all %d backends reached (got %s)" % (k, reached))
    if r["mode"] in ("iptables", "nftables"):
        check(r.get("cold_load_s") is not None, tag + ": cold load time recorded")
        check(r.get("changes", 0) > 0, tag + ": endpoint-change times recorded")

# The switchyard control plane: the dataplane daemon at each N, and the scale runs at
# N = 1000 (files: one YAML file per service, and one JSON List; the API server).
cp = doc.get("control_plane", [])
def cp_rec(n, source, dataplane=False):
    return next((r for r in cp if r["services"] == n and r["source"] == source
                 and bool(r.get("dataplane_daemon")) == dataplane), None)
if built:
    for n in ns:
        r = cp_rec(n, "apiserver", dataplane=True)
        check(r is not None and r.get("cold_s") is not None,
              "N=%d: the dataplane daemon's cold start was recorded (%s)" % (n, r))
    for source in ("files-yaml", "files-json", "apiserver"):
        r = cp_rec(1000, source)
        tag = "control plane N=1000 %s" % source
        check(r is not None and not r.get("skipped"), tag + " ran (%s)" % (r and r.get("skipped")))
        if not r or r.get("skipped"):
            continue
        check(r.get("frontends") == 1003, tag + ": 1003 frontends programmed (got %s)" % r.get("frontends"))
        for key in ("cold_s", "full_sync_s", "cpu_s", "rss_peak_mib", "bpf_map_memlock_mib"):
            check(r.get(key) is not None, tag + ": %s recorded" % key)
        if source != "files-json":
            check(r.get("changes", 0) > 0 and r.get("programming_ms_p50") is not None
                  and r.get("sync_ms_p50") is not None and r.get("event_ms_p50") is not None,
                  tag + ": one-endpoint changes timed")
            check(r.get("e2e_changes", 0) > 0 and r.get("e2e_ms_p50") is not None,
                  tag + ": changes seen through `switchyard status`")
            check(r.get("irregular_changes", 0) == 0,
                  tag + ": every change made one partial sync and one observation")

print("check_quick: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF

# NodePort: bench/nodeport.sh --quick, one round of every mode, each in a fresh cluster.
np_modes="direct iptables nftables"
[[ ! -x $BUILD/cmd/switchyard ]] || np_modes+=" sy-snat sy-dsr-opt sy-dsr-ipip"
np_rc=0
"$HERE/nodeport.sh" --quick --json "$npout" --modes "$np_modes" --switchyard "$BUILD/cmd/switchyard" || np_rc=$?
python3 - "$npout" "$np_rc" "$np_modes" <<'EOF' || cp_rc=1
import json, sys

path, rc, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
passed, failed = 0, 0

def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)

check(rc == 0, "bench/nodeport.sh --quick exited 0 (got %d: a collapsed round or a failed setup)" % rc)
try:
    doc = json.load(open(path))
except ValueError:
    doc = {"results": [], "collapsed": ["no JSON written"]}
check(not doc.get("collapsed"), "no collapsed NodePort round (%s)" % doc.get("collapsed"))
for mode in modes:
    for target in ("remote", "local"):
        r = next((x for x in doc["results"] if x["mode"] == mode and x["target"] == target), None)
        tag = "NodePort %s to the %s pod" % (mode, target)
        check(r is not None and (r.get("short_conn_rps") or 0) > 0, tag + ": short-connection rate > 0")
        check(r is not None and (r.get("iperf_gbps") or 0) > 0, tag + ": iperf3 throughput > 0")
print("check_quick: nodeport: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
exit "$cp_rc"
