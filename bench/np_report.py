#!/usr/bin/env python3
"""bench/nodeport.sh's raw outputs -> medians, spreads and ratios, and JSON; fails on a
collapsed round instead of averaging it away.

  np_report.py RAW_DIR [--meta META.json] [--modes "..."] [--json OUT]
  np_report.py --sample DIR      one line summarising one mode/round (progress output)
  np_report.py --markdown RESULTS.json   the tables of docs/benchmarks.md from a run's JSON

RAW_DIR layout (written by nodeport.sh): <mode>/r<round>/{remote,local}-short.txt (wrk),
{remote,local}-iperf.json, loadavg (the 1-minute load average as the samples start),
setup_error (the round's cluster did not come up, or the NodePort did not answer from the
right pod), setup.log, status-n<I>.json (switchyard modes: the nodes' counters at the end).

A round collapses when its setup failed, when a tool produced no figure (wrk: no request
answered; iperf3: an error or 0 b/s), when wrk saw errors (connect, read, write, timeout,
non-2xx) on more than 1 % of its requests, or, with 3 rounds or more, when its figure is below
half the median of that mode's rounds. Any collapsed round: the table is printed (failed
samples left out of its figures, slow ones in them), then the collapsed rounds, and the exit
status is 1.
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import _read, fmt, parse_iperf, parse_wrk  # noqa: E402  (bench/report.py)

MODES = ["direct", "iptables", "nftables", "sy-snat", "sy-dsr-opt", "sy-dsr-ipip"]
TARGETS = ["remote", "local"]
BASELINES = ["direct", "iptables", "nftables"]
WATCHED_COUNTERS = ["tc_snat_no_port", "tc_ct_reclaimed", "tc_ct_full", "tc_fib_failed", "tc_mtu_icmp"]
ERROR_SHARE = 0.01
COLLAPSE_SHARE = 0.5


def parse_round(d):
    """-> {"setup_error": str|None, "remote": {...}, "local": {...}} for one mode/round dir."""
    err = _read(os.path.join(d, "setup_error")).strip() or None
    load = _read(os.path.join(d, "loadavg")).strip()
    out = {"setup_error": err, "loadavg": float(load) if load else None, "counters": {}}
    # switchyard modes: node-1's drops and reclaims over the whole setup (both targets).
    try:
        c = json.loads(_read(os.path.join(d, "status-n1.json")))["counters"]
        out["counters"] = {k: c[k] for k in WATCHED_COUNTERS if k in c}
    except (ValueError, KeyError, TypeError):
        pass
    for t in TARGETS:
        out[t] = {"short": parse_wrk(_read(os.path.join(d, "%s-short.txt" % t))),
                  "iperf": parse_iperf(_read(os.path.join(d, "%s-iperf.json" % t)))}
    return out


def sample_line(d):
    s = parse_round(d)
    if s["setup_error"]:
        return "SETUP FAILED: " + s["setup_error"].splitlines()[-1]
    parts = []
    for t in TARGETS:
        sh, ip = s[t]["short"], s[t]["iperf"]
        parts.append("%s: %s conn/s, %s Gb/s" % (t, fmt(sh["rps"]) if sh else "FAIL",
                                                 fmt(ip["gbps"], 2) if ip else "FAIL"))
    drops = ", ".join("%s %d" % kv for kv in s["counters"].items() if kv[1])
    return "; ".join(parts) + ("; node-1: " + drops if drops else "")


def spread(values):
    return [min(values), max(values)] if values else None


def collect(raw, modes):
    """-> (records, collapsed): one record per mode and target; collapsed rounds as strings."""
    records, collapsed = [], []
    for mode in modes:
        mdir = os.path.join(raw, mode)
        rounds = sorted((d for d in os.listdir(mdir) if d.startswith("r")), key=lambda d: int(d[1:])) \
            if os.path.isdir(mdir) else []
        parsed = [(r, parse_round(os.path.join(mdir, r))) for r in rounds]
        for r, p in parsed:
            if p["setup_error"]:
                collapsed.append("%s %s: setup failed: %s" % (mode, r, p["setup_error"].splitlines()[-1]))
        for t in TARGETS:
            short, gbps, p50, p99 = [], [], [], []
            per_round = []
            for r, p in parsed:
                if p["setup_error"]:
                    per_round.append({"round": r, "setup_error": p["setup_error"]})
                    continue
                sh, ip = p[t]["short"], p[t]["iperf"]
                per_round.append({"round": r, "loadavg": p["loadavg"], "node1_counters": p["counters"],
                                  "short_conn_rps": sh["rps"] if sh else None,
                                  "short_errors": sh["errors"] if sh else None,
                                  "iperf_gbps": ip["gbps"] if ip else None})
                if not sh:
                    collapsed.append("%s %s %s: wrk answered no request" % (mode, r, t))
                elif sh["errors"] > ERROR_SHARE * max(sh["requests"], 1):
                    collapsed.append("%s %s %s: wrk errors on %d of %d requests"
                                     % (mode, r, t, sh["errors"], sh["requests"]))
                else:
                    short.append(sh["rps"])
                    p50.append(sh["p50_ms"])
                    p99.append(sh["p99_ms"])
                if not ip:
                    collapsed.append("%s %s %s: iperf3 failed or carried nothing" % (mode, r, t))
                else:
                    gbps.append(ip["gbps"])
            # Against the median of the mode's rounds: a round at a fraction of the others is
            # a stall, not a slow round.
            if len(parsed) >= 3:
                for key, values in (("short_conn_rps", short), ("iperf_gbps", gbps)):
                    if not values:
                        continue
                    med = statistics.median(values)
                    for pr in per_round:
                        v = pr.get(key)
                        if v is not None and v < COLLAPSE_SHARE * med:
                            collapsed.append("%s %s %s: %s %.2f is below half the median %.2f"
                                             % (mode, pr["round"], t, key, v, med))
            rec = {"mode": mode, "target": t, "rounds": len(parsed),
                   "short_conn_rps": statistics.median(short) if short else None,
                   "short_p50_ms": statistics.median([x for x in p50 if x is not None]) if short else None,
                   "short_p99_ms": statistics.median([x for x in p99 if x is not None]) if short else None,
                   "iperf_gbps": statistics.median(gbps) if gbps else None,
                   "spread": {"short_conn_rps": spread(short), "iperf_gbps": spread(gbps)},
                   "per_round": per_round}
            records.append(rec)
    by = {(r["mode"], r["target"]): r for r in records}
    for r in records:
        r["ratio_to"] = {}
        for base in BASELINES:
            b = by.get((base, r["target"]))
            if not b or b is r:
                continue
            ratios = {}
            for key in ("short_conn_rps", "iperf_gbps"):
                if r[key] is not None and b[key]:
                    ratios[key] = round(r[key] / b[key], 3)
            if ratios:
                r["ratio_to"][base] = ratios
    return records, collapsed


def ratio(rec, base, key):
    v = rec["ratio_to"].get(base, {}).get(key)
    return "%.2f" % v if v is not None else "-"


def table(records):
    lines = ["| target | mode | short conn/s [min..max] | × direct | × iptables | × nftables | p50 / p99 ms "
             "| iperf3 Gb/s [min..max] | × direct | × iptables | × nftables |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {m: i for i, m in enumerate(MODES)}
    for r in sorted(records, key=lambda r: (TARGETS.index(r["target"]), order.get(r["mode"], 99))):
        sp, gp = r["spread"]["short_conn_rps"], r["spread"]["iperf_gbps"]
        lines.append("| %s | %s | %s [%s..%s] | %s | %s | %s | %s / %s | %s [%s..%s] | %s | %s | %s |" % (
            r["target"], r["mode"], fmt(r["short_conn_rps"]), fmt(sp[0]) if sp else "-",
            fmt(sp[1]) if sp else "-", ratio(r, "direct", "short_conn_rps"),
            ratio(r, "iptables", "short_conn_rps"), ratio(r, "nftables", "short_conn_rps"),
            fmt(r["short_p50_ms"], 2), fmt(r["short_p99_ms"], 2), fmt(r["iperf_gbps"], 2),
            fmt(gp[0], 2) if gp else "-", fmt(gp[1], 2) if gp else "-",
            ratio(r, "direct", "iperf_gbps"), ratio(r, "iptables", "iperf_gbps"),
            ratio(r, "nftables", "iperf_gbps")))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw", nargs="?")
    ap.add_argument("--sample")
    ap.add_argument("--markdown")
    ap.add_argument("--meta")
    ap.add_argument("--modes", default=" ".join(MODES))
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.sample:
        print(sample_line(a.sample))
        return 0
    if a.markdown:
        doc = json.load(open(a.markdown))
        print(table(doc["results"]))
        return 1 if doc.get("collapsed") else 0
    if not a.raw:
        ap.error("RAW_DIR, --sample or --markdown")
    modes = a.modes.split()
    records, collapsed = collect(a.raw, modes)
    meta = json.load(open(a.meta)) if a.meta else {}
    if meta:
        print("%s, %s CPUs (%s), kernel %s; %d rounds of %d s per tool, wrk -t%d -c%d"
              % (meta.get("date"), meta.get("cpus"), meta.get("cpu_model"), meta.get("kernel"),
                 meta.get("rounds"), meta.get("duration_s"), meta.get("wrk_threads"),
                 meta.get("wrk_connections")))
    print(table(records))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": records, "collapsed": collapsed}, f, indent=1)
    if collapsed:
        print("\nCOLLAPSED ROUNDS (%d), so the run fails (failed samples are left out of the figures "
              "above, slow ones are in them):" % len(collapsed))
        for c in collapsed:
            print("  " + c)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
