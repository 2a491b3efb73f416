#!/usr/bin/env python3
"""Turn bench/run.sh's raw tool outputs into a table of medians and ratios, and JSON.

  report.py RAW_DIR [--meta META.json] [--modes "..."] [--json OUT]
  report.py --sample DIR      one line summarising one mode/round (progress output)
  report.py --markdown RESULTS.json   the tables of docs/benchmarks.md from a run's JSON

RAW_DIR layout (written by run.sh):
  n<N>/<mode>/r<round>/{short.txt,keepalive.txt,sockperf.txt,iperf.json,backends.txt,timing}
  n<N>/cp/{iptables,nftables,switchyard}_cold_s, {iptables,nftables}_change_ms (one value a
          line), *_error, switchyard_skipped, switchyard_daemon.json (cold figures of the
          dataplane daemon, cp_stats.py), switchyard_final.json (its CPU and peak RSS at
          the end)
  scale/n<N>/{files-yaml,files-json,apiserver}{.json,_final.json}, *_changes.jsonl
          (cp_driver.py), error: the switchyard control-plane runs
"""

import argparse
import json
import math
import os
import re
import statistics
import sys

MODES = ["direct", "iptables", "nftables", "switchyard-socklb", "switchyard-tc"]
CP_OF_MODE = {"iptables": "iptables", "nftables": "nftables",
              "switchyard-socklb": "switchyard", "switchyard-tc": "switchyard"}
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def parse_wrk(text):
    """wrk --latency output -> dict(rps, p50_ms, p99_ms, requests, errors) or None."""
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        return None
    out = {"rps": float(m.group(1))}
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        lm = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m|h)\s*$" % pct, text, re.M)
        out[key] = float(lm.group(1)) * UNIT_MS[lm.group(2)] if lm else None
    rq = re.search(r"(\d+) requests in", text)
    out["requests"] = int(rq.group(1)) if rq else 0
    errors = 0
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if se:
        errors += sum(int(x) for x in se.groups())
    nx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if nx:
        errors += int(nx.group(1))
    out["errors"] = errors
    # A run where nothing succeeded is a failure, whatever wrk's rate says.
    if out["requests"] == 0 or (nx and int(nx.group(1)) >= out["requests"]):
        return None
    return out


def parse_sockperf(text):
    """sockperf ping-pong (--full-rtt) -> dict(p50_us, p99_us) or None."""
    vals = {}
    for pct, v in re.findall(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)", text):
        vals[float(pct)] = float(v)
    if 50.0 not in vals or 99.0 not in vals:
        return None
    return {"p50_us": vals[50.0], "p99_us": vals[99.0]}


def parse_iperf(text):
    try:
        j = json.loads(text)
        bps = j["end"]["sum_received"]["bits_per_second"]
    except (ValueError, KeyError, TypeError):
        return None
    return {"gbps": bps / 1e9} if bps > 0 else None


def parse_backends(text):
    counts = {}
    for name in re.findall(r"^(be\d+)$", text, re.M):
        counts[name] = counts.get(name, 0) + 1
    return counts


def parse_opens(before, after):
    """bench/run.sh's passive_opens() before and after a run -> {pod: connections accepted}."""
    def load(text):
        out = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                out[parts[0]] = int(parts[1])
        return out
    b, a = load(before), load(after)
    return {k: a[k] - b.get(k, 0) for k in sorted(a)}


def parse_sample(d):
    return {
        "short": parse_wrk(_read(os.path.join(d, "short.txt"))),
        "keepalive": parse_wrk(_read(os.path.join(d, "keepalive.txt"))),
        "sockperf": parse_sockperf(_read(os.path.join(d, "sockperf.txt"))),
        "iperf": parse_iperf(_read(os.path.join(d, "iperf.json"))),
        "backends": parse_backends(_read(os.path.join(d, "backends.txt"))),
        "control": parse_wrk(_read(os.path.join(d, "control.txt"))),
        "random_pod": parse_wrk(_read(os.path.join(d, "random_pod.txt"))),
        "random_pod_opens": parse_opens(_read(os.path.join(d, "random_pod.opens-before")),
                                        _read(os.path.join(d, "random_pod.opens-after"))),
    }


def fmt(v, nd=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "%.0f" % v
    return ("%." + str(nd) + "f") % v


def sample_line(d):
    s = parse_sample(d)
    parts = []
    parts.append("short %s rps p99 %s ms" % (fmt(s["short"]["rps"]) if s["short"] else "FAIL",
                                            fmt(s["short"]["p99_ms"], 2) if s["short"] else "-"))
    if s["random_pod"] or os.path.exists(os.path.join(d, "random_pod.txt")):
        parts.append("random pod %s rps" % (fmt(s["random_pod"]["rps"]) if s["random_pod"] else "FAIL"))
    parts.append("keepalive %s rps" % (fmt(s["keepalive"]["rps"]) if s["keepalive"] else "FAIL"))
    if s["sockperf"] or os.path.exists(os.path.join(d, "sockperf.txt")):
        parts.append("sockperf p50 %s us" % (fmt(s["sockperf"]["p50_us"]) if s["sockperf"] else "FAIL"))
    parts.append("iperf %s Gb/s" % (fmt(s["iperf"]["gbps"], 2) if s["iperf"] else "FAIL"))
    parts.append("backends %s" % (",".join("%s:%d" % kv for kv in sorted(s["backends"].items())) or "none"))
    return "; ".join(parts)


def pctl(vals, q):
    """Nearest-rank percentile: the smallest value with at least q % of the values at or
    below it (p99 of 100 values is the 99th, of 20 values the 20th)."""
    if not vals:
        return None
    v = sorted(vals)
    k = max(0, min(len(v) - 1, math.ceil(q / 100.0 * len(v) - 1e-9) - 1))
    return v[k]


def aggregate(raw, n, mode, m_endpoints):
    base = os.path.join(raw, "n%d" % n, mode)
    rounds = sorted(d for d in os.listdir(base) if d.startswith("r")) if os.path.isdir(base) else []
    series = {k: [] for k in ("short_conn_rps", "short_p50_ms", "short_p99_ms", "keepalive_rps",
                              "sockperf_p50_us", "sockperf_p99_us", "iperf_gbps",
                              "control_short_conn_rps", "random_pod_short_conn_rps",
                              "random_pod_short_p99_ms")}
    failed = {"short_conn": 0, "keepalive": 0, "sockperf": 0, "iperf": 0}
    backends = {}
    random_pod_opens = {}
    short_errors = 0
    loads, daemon_cpu = [], 0.0
    for r in rounds:
        for line in _read(os.path.join(base, r, "timing")).splitlines():
            k, _, v = line.partition(" ")
            if k == "loadavg":
                loads.append(float(v))
            elif k == "daemon_cpu_s":
                daemon_cpu += float(v)
        s = parse_sample(os.path.join(base, r))
        if s["short"]:
            series["short_conn_rps"].append(s["short"]["rps"])
            if s["short"]["p50_ms"] is not None:
                series["short_p50_ms"].append(s["short"]["p50_ms"])
            if s["short"]["p99_ms"] is not None:
                series["short_p99_ms"].append(s["short"]["p99_ms"])
            short_errors += s["short"]["errors"]
        else:
            failed["short_conn"] += 1
        if s["keepalive"]:
            series["keepalive_rps"].append(s["keepalive"]["rps"])
        else:
            failed["keepalive"] += 1
        if s["sockperf"]:
            series["sockperf_p50_us"].append(s["sockperf"]["p50_us"])
            series["sockperf_p99_us"].append(s["sockperf"]["p99_us"])
        elif os.path.exists(os.path.join(base, r, "sockperf.txt")):  # --quick skips rounds > 1
            failed["sockperf"] += 1
        if s["iperf"]:
            series["iperf_gbps"].append(s["iperf"]["gbps"])
        else:
            failed["iperf"] += 1
        if s["control"]:
            series["control_short_conn_rps"].append(s["control"]["rps"])
        if s["random_pod"]:
            series["random_pod_short_conn_rps"].append(s["random_pod"]["rps"])
            if s["random_pod"]["p99_ms"] is not None:
                series["random_pod_short_p99_ms"].append(s["random_pod"]["p99_ms"])
        for b, c in s["backends"].items():
            backends[b] = backends.get(b, 0) + c
        for b, c in s["random_pod_opens"].items():
            random_pod_opens[b] = random_pod_opens.get(b, 0) + c
    rec = {"mode": mode, "services": n, "endpoints": m_endpoints}
    for k, vals in series.items():
        if k in ("control_short_conn_rps", "random_pod_short_conn_rps", "random_pod_short_p99_ms") and not vals:
            continue  # not measured for this mode, or in this run (--quick)
        rec[k] = round(statistics.median(vals), 3) if vals else None
    rec["backends_reached"] = dict(sorted(backends.items()))
    if random_pod_opens:
        # Connections each pod accepted during the random-pod reference (its spread).
        rec["random_pod_connections"] = random_pod_opens
    rec["rounds"] = len(rounds)
    rec["spread"] = {k: [round(min(v), 3), round(max(v), 3)] for k, v in series.items() if v}
    rec["failed_samples"] = failed
    rec["short_conn_errors"] = short_errors
    if loads:
        rec["loadavg_1m"] = [min(loads), max(loads)]
    if mode.startswith("switchyard") and rounds:
        rec["daemon_cpu_s_during_traffic"] = round(daemon_cpu, 2)
    return rec


def _json(path):
    text = _read(path).strip()
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def _jsonl(path):
    out = []
    for line in _read(path).splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _stats(vals, prefix):
    vals = [v for v in vals if v is not None]
    if not vals:
        return {}
    return {prefix + "_p50": round(statistics.median(vals), 3), prefix + "_p99": round(pctl(vals, 99), 3),
            prefix + "_max": round(max(vals), 3)}


def change_stats(changes):
    """cp_driver.py records -> p50/p99/max of each figure. The changes timed through
    `switchyard status` (e2e_ms) come last and are kept apart from the metric samples."""
    plain = [c for c in changes if "e2e_ms" not in c]
    e2e = [c for c in changes if "e2e_ms" in c]
    out = {"changes": len(plain)}
    out.update(_stats([c.get("programming_ms") for c in plain], "programming_ms"))
    out.update(_stats([c.get("sync_ms") for c in plain], "sync_ms"))
    out.update(_stats([c.get("event_ms") for c in plain], "event_ms"))
    out.update(_stats([c.get("seen_ms") for c in plain], "seen_ms"))
    # A change whose histogram did not grow by exactly one observation, or that landed in
    # a full sync, is counted here (its figures are still in the lists above).
    out["irregular_changes"] = sum(1 for c in plain if c.get("programming_observations") != 1
                                   or c.get("partial_syncs") != 1)
    if e2e:
        out["e2e_changes"] = len(e2e)
        out.update(_stats([c.get("e2e_ms") for c in e2e], "e2e_ms"))
        out.update(_stats([c.get("status_ms") for c in e2e], "status_ms"))
    return out


def daemon_record(n, m_endpoints, source, cold, final, changes, error="", fake=None):
    rec = {"services": n, "endpoints": m_endpoints, "source": source}
    if not cold:
        rec["skipped"] = error or "not run"
        return rec
    if fake:  # sy-fake-apiserver: its load time, and the CPU it spent serving the lists
        rec.update(fake)
    for k in ("cold_s", "loaded_s", "source_synced_s", "full_sync_s", "frontends", "backends",
              "cold_cpu_s", "cold_rss_peak_mib", "bpf_map_memlock_mib", "bpf_maps"):
        if k in cold:
            rec[k] = cold[k]
    if final:
        rec["cpu_s"] = final.get("cpu_s")
        rec["rss_peak_mib"] = final.get("rss_peak_mib")
    if changes:
        rec.update(change_stats(changes))
    if error:
        rec["error"] = error
    return rec


def control_plane_records(raw, ns, m_endpoints):
    """Switchyard's control plane: the dataplane daemon (files, YAML, one file per service)
    at each dataplane N, and the scale runs (files: one JSON List; apiserver)."""
    out = []
    for n in ns:
        d = os.path.join(raw, "n%d" % n, "cp")
        cold = _json(os.path.join(d, "switchyard_daemon.json"))
        if cold or os.path.exists(os.path.join(d, "switchyard_error")):
            rec = daemon_record(n, m_endpoints, "apiserver", cold,
                                _json(os.path.join(d, "switchyard_final.json")), [],
                                _read(os.path.join(d, "switchyard_error")).strip(),
                                _json(os.path.join(d, "switchyard_fake.json")))
            rec["dataplane_daemon"] = True  # ran through the traffic rounds; CPU includes them
            out.append(rec)
    sd = os.path.join(raw, "scale")
    scale_ns = sorted(int(x[1:]) for x in os.listdir(sd) if re.match(r"n\d+$", x)) if os.path.isdir(sd) else []
    for n in scale_ns:
        d = os.path.join(sd, "n%d" % n)
        err = _read(os.path.join(d, "error")).strip()
        for src in ("files-yaml", "files-json", "apiserver"):
            cold = _json(os.path.join(d, src + ".json"))
            e = "\n".join(x for x in err.splitlines() if x.startswith(src + ":"))
            if not cold and not e:
                continue  # files-yaml above --yaml-max
            out.append(daemon_record(n, m_endpoints, src, cold,
                                     _json(os.path.join(d, src + "_final.json")),
                                     _jsonl(os.path.join(d, src + "_changes.jsonl")), e,
                                     _json(os.path.join(d, src + "_fake.json"))))
    return out


def control_plane(raw, n, which):
    d = os.path.join(raw, "n%d" % n, "cp")
    out = {}
    cold = _read(os.path.join(d, which + "_cold_s")).strip()
    out["cold_load_s"] = round(float(cold), 3) if cold else None
    if which == "switchyard":
        # One change at this N comes from the scale run at the same N, if there was one:
        # kubeproxy_network_programming_duration_seconds per change through the API, and
        # the partial sync alone.
        cs = change_stats(_jsonl(os.path.join(raw, "scale", "n%d" % n, "apiserver_changes.jsonl")))
        out["changes"] = cs["changes"]
        out["change_ms_p50"] = cs.get("programming_ms_p50")
        out["change_ms_p99"] = cs.get("programming_ms_p99")
        out["change_sync_ms_p50"] = cs.get("sync_ms_p50")
        out["change_sync_ms_p99"] = cs.get("sync_ms_p99")
        out["change_event_ms_p50"] = cs.get("event_ms_p50")
        out["change_event_ms_p99"] = cs.get("event_ms_p99")
        daemon = _json(os.path.join(d, "switchyard_daemon.json"))
        final = _json(os.path.join(d, "switchyard_final.json"))
        if daemon:
            out["bpf_map_memlock_mib"] = daemon.get("bpf_map_memlock_mib")
        if final:
            out["daemon_rss_peak_mib"] = final.get("rss_peak_mib")
            out["daemon_cpu_s"] = final.get("cpu_s")
    else:
        ch = [float(x) for x in _read(os.path.join(d, which + "_change_ms")).split()]
        out["change_ms_p50"] = round(statistics.median(ch), 3) if ch else None
        out["change_ms_p99"] = round(pctl(ch, 99), 3) if ch else None
        out["changes"] = len(ch)
    err = _read(os.path.join(d, which + "_error")).strip()
    if err:
        out["control_plane_error"] = err
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw", nargs="?")
    ap.add_argument("--sample")
    ap.add_argument("--meta")
    ap.add_argument("--modes", default=" ".join(MODES))
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    if a.sample:
        print(sample_line(a.sample))
        return
    if a.markdown:
        print_markdown(json.load(open(a.markdown)))
        return
    if not a.raw:
        ap.error("RAW_DIR needed")
    meta = json.load(open(a.meta)) if a.meta else {}
    m_endpoints = meta.get("endpoints")
    wanted = [m for m in MODES if m in a.modes.split()]
    ns = sorted(int(d[1:]) for d in os.listdir(a.raw) if re.match(r"n\d+$", d))
    records = []
    for n in ns:
        cp_dir = os.path.join(a.raw, "n%d" % n, "cp")
        for mode in wanted:
            rec = aggregate(a.raw, n, mode, m_endpoints)
            if mode in CP_OF_MODE:
                rec.update(control_plane(a.raw, n, CP_OF_MODE[mode]))
            if rec["rounds"] == 0:
                why = _read(os.path.join(cp_dir, "switchyard_skipped")).strip() if mode.startswith("switchyard") else ""
                if not why and mode in CP_OF_MODE:
                    why = _read(os.path.join(cp_dir, CP_OF_MODE[mode] + "_error")).strip()
                rec["skipped"] = why or "not run"
            records.append(rec)
        direct = next((r for r in records if r["services"] == n and r["mode"] == "direct"), None)
        for r in records:
            if r["services"] != n or not direct or r.get("skipped"):
                continue
            ratios = {}
            for k in ("short_conn_rps", "keepalive_rps", "iperf_gbps", "short_p99_ms",
                      "sockperf_p50_us", "control_short_conn_rps"):
                if r.get(k) is not None and direct.get(k):
                    ratios[k] = round(r[k] / direct[k], 3)
            r["ratio_to_direct"] = ratios
            # The same short connections against the limit for a service of K pods: the client
            # itself sending each connection to a random pod (direct mode's random_pod sample).
            if r.get("short_conn_rps") is not None and direct.get("random_pod_short_conn_rps"):
                r["ratio_to_random_pod"] = {
                    "short_conn_rps": round(r["short_conn_rps"] / direct["random_pod_short_conn_rps"], 3)}
            # Short-connection rate relative to every other mode that ran at this N.
            r["short_conn_ratio_to"] = {
                o["mode"]: round(r["short_conn_rps"] / o["short_conn_rps"], 3)
                for o in records
                if o["services"] == n and o is not r and not o.get("skipped")
                and o.get("short_conn_rps") and r.get("short_conn_rps") is not None}

    cp = control_plane_records(a.raw, ns, m_endpoints)
    print_table(records, meta)
    print_control_plane(cp)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": records, "control_plane": cp}, f, indent=1)
            f.write("\n")
        print("JSON written to %s" % a.json)


def print_table(records, meta):
    if meta:
        print("machine: %s, %s CPUs, kernel %s; %s rounds x %s s per tool; K=%s backends, M=%s"
              % (meta.get("cpu_model"), meta.get("cpus"), meta.get("kernel"), meta.get("rounds"),
                 meta.get("duration_s"), meta.get("backends"), meta.get("endpoints")))
    print("medians over rounds, [min..max] of the short-connection rate; xdir = mode / direct;"
          " sp = sockperf TCP round trip; Gb/s = iperf3 through the one-endpoint service")
    hdr = "%-18s %20s %6s %7s %7s %9s %6s %7s %7s %6s %6s  %s" % (
        "mode", "short conn/s", "xdir", "p50 ms", "p99 ms", "keepalive", "xdir", "sp50 us",
        "sp99 us", "Gb/s", "xdir", "backends reached")
    for n in sorted({r["services"] for r in records}):
        print("\nN = %d services" % n)
        print(hdr)
        for r in (x for x in records if x["services"] == n):
            if r.get("skipped"):
                print("%-18s skipped: %s" % (r["mode"], r["skipped"]))
                continue
            sp = r["spread"].get("short_conn_rps")
            short = "%s [%s..%s]" % (fmt(r["short_conn_rps"]), fmt(sp[0]), fmt(sp[1])) if sp else "FAIL"
            rt = r.get("ratio_to_direct", {})
            print("%-18s %20s %6s %7s %7s %9s %6s %7s %7s %6s %6s  %s" % (
                r["mode"], short, fmt(rt.get("short_conn_rps"), 2), fmt(r["short_p50_ms"], 2),
                fmt(r["short_p99_ms"], 2), fmt(r["keepalive_rps"]), fmt(rt.get("keepalive_rps"), 2),
                fmt(r["sockperf_p50_us"]), fmt(r["sockperf_p99_us"]), fmt(r["iperf_gbps"], 1),
                fmt(rt.get("iperf_gbps"), 2),
                " ".join("%s:%d" % kv for kv in r["backends_reached"].items()) or "none"))
        direct = next((r for r in records if r["services"] == n and r["mode"] == "direct"
                       and r.get("random_pod_short_conn_rps")), None)
        if direct:
            sp = direct["spread"].get("random_pod_short_conn_rps")
            print("  direct to a random one of the %s pods per connection (no translation; the limit for this service): "
                  "short conn/s %s [%s..%s], p99 %s ms; each mode x random pod: %s" % (
                      meta.get("backends", "K"), fmt(direct["random_pod_short_conn_rps"]), fmt(sp[0]), fmt(sp[1]),
                      fmt(direct.get("random_pod_short_p99_ms"), 2),
                      ", ".join("%s %s" % (r["mode"], fmt(r["ratio_to_random_pod"]["short_conn_rps"], 2))
                                for r in records if r["services"] == n and r.get("ratio_to_random_pod"))))
        ctl = [r for r in records if r["services"] == n and r.get("control_short_conn_rps")]
        if ctl:
            print("  one-endpoint control service, short conn/s: " + ", ".join(
                "%s %s (x%s)" % (r["mode"], fmt(r["control_short_conn_rps"]),
                                 fmt(r.get("ratio_to_direct", {}).get("control_short_conn_rps"), 2))
                for r in ctl))
        cps = [r for r in records if r["services"] == n and r["mode"] in ("iptables", "nftables", "switchyard-socklb")]
        for r in cps:
            if r.get("cold_load_s") is None and not r.get("changes"):
                continue
            name = "switchyard" if r["mode"].startswith("switchyard") else r["mode"]
            extra = ""
            if r.get("change_sync_ms_p50") is not None:
                extra = "; watch event to map write p50 %s ms, p99 %s ms; daemon sync p50 %s ms, p99 %s ms" % (
                    fmt(r.get("change_event_ms_p50"), 2), fmt(r.get("change_event_ms_p99"), 2),
                    fmt(r["change_sync_ms_p50"], 2), fmt(r["change_sync_ms_p99"], 2))
            print("  control plane %-10s cold load %s s; one endpoint change p50 %s ms, p99 %s ms (%d changes)%s"
                  % (name, fmt(r.get("cold_load_s"), 2), fmt(r.get("change_ms_p50"), 1),
                     fmt(r.get("change_ms_p99"), 1), r.get("changes", 0), extra))


def print_control_plane(cp):
    if not cp:
        return
    print("\nswitchyard control plane: cold = daemon start to the full sync's map writes (loaded ="
          " BPF objects loaded, listed = source synced); CPU s and peak RSS at the end of the"
          " daemon's run; change = p50/p99 of kubeproxy_network_programming_duration_seconds per"
          " change (API write or file poll -> map write), event = the daemon's receipt of the change"
          " (watch event or poll) -> map write, sync = the partial sync alone,"
          " e2e = write -> `switchyard status` lists it (status = one status call);"
          " +dp = the dataplane daemon (its CPU includes the traffic rounds)")
    print("%7s %-10s %7s %7s %7s %7s %6s %8s %7s %16s %15s %14s %12s %9s" % (
        "N", "source", "cold s", "loaded", "listed", "sync s", "CPU s", "RSS MiB", "maps MiB",
        "change p50/p99", "event p50/p99", "sync p50/p99", "e2e p50", "status"))
    for r in cp:
        if r.get("skipped"):
            print("%7d %-10s skipped: %s" % (r["services"], r["source"], r["skipped"]))
            continue
        ch = ("%s/%s ms" % (fmt(r.get("programming_ms_p50"), 2), fmt(r.get("programming_ms_p99"), 2))
              if r.get("changes") else "-")
        sy = ("%s/%s ms" % (fmt(r.get("sync_ms_p50"), 2), fmt(r.get("sync_ms_p99"), 2))
              if r.get("changes") else "-")
        ev = ("%s/%s ms" % (fmt(r.get("event_ms_p50"), 2), fmt(r.get("event_ms_p99"), 2))
              if r.get("changes") else "-")
        print("%7d %-10s %7s %7s %7s %7s %6s %8s %7s %16s %15s %14s %12s %9s" % (
            r["services"], r["source"] + ("+dp" if r.get("dataplane_daemon") else ""), fmt(r.get("cold_s"), 2), fmt(r.get("loaded_s"), 2),
            fmt(r.get("source_synced_s"), 2), fmt(r.get("full_sync_s"), 2), fmt(r.get("cpu_s"), 1),
            fmt(r.get("rss_peak_mib"), 0), fmt(r.get("bpf_map_memlock_mib"), 1), ch, ev, sy,
            ("%s ms" % fmt(r.get("e2e_ms_p50"), 0)) if r.get("e2e_changes") else "-",
            ("%s ms" % fmt(r.get("status_ms_p50"), 0)) if r.get("e2e_changes") else "-"))
        if r.get("error"):
            print("        error: %s" % r["error"])


def md_table(headers):
    """Prints a markdown table's header; returns the row printer for a skipped record."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    return lambda n, name, why: "| %d | %s | skipped: %s |%s" % (n, name, why, " |" * (len(headers) - 3))


def print_markdown(doc):
    """docs/benchmarks.md's result tables, from the JSON of one run."""
    meta, results, cp = doc.get("meta", {}), doc.get("results", []), doc.get("control_plane", [])
    print("Machine: %s, %s vCPUs, kernel %s; %s; command: `%s`; %s rounds x %s s per tool, K = %s pods, M = %s.\n"
          % (meta.get("cpu_model"), meta.get("cpus"), meta.get("kernel"), meta.get("date"),
             meta.get("command"), meta.get("rounds"), meta.get("duration_s"), meta.get("backends"),
             meta.get("endpoints")))
    skipped = md_table(["N", "mode", "short conn/s [min..max]", "× direct", "× direct to a random pod",
                        "p50 / p99 ms", "one-endpoint service conn/s (× direct)",
                        "keep-alive req/s (× direct)", "sockperf p50 / p99 µs", "iperf3 Gb/s"])
    for r in results:
        if r.get("skipped"):
            print(skipped(r["services"], r["mode"], r["skipped"]))
            continue
        sp = r["spread"].get("short_conn_rps", [None, None])
        rt = r.get("ratio_to_direct", {})
        rs = r.get("ratio_to_random_pod", {})
        ctl = "%s (%s)" % (fmt(r.get("control_short_conn_rps")), fmt(rt.get("control_short_conn_rps"), 2)) \
            if r.get("control_short_conn_rps") else "-"
        print("| %d | %s | %s [%s..%s] | %s | %s | %s / %s | %s | %s (%s) | %s / %s | %s |" % (
            r["services"], r["mode"], fmt(r.get("short_conn_rps")), fmt(sp[0]), fmt(sp[1]),
            fmt(rt.get("short_conn_rps"), 2), fmt(rs.get("short_conn_rps"), 2),
            fmt(r.get("short_p50_ms"), 2), fmt(r.get("short_p99_ms"), 2), ctl,
            fmt(r.get("keepalive_rps")), fmt(rt.get("keepalive_rps"), 2),
            fmt(r.get("sockperf_p50_us")), fmt(r.get("sockperf_p99_us")), fmt(r.get("iperf_gbps"), 1)))
    for r in results:
        if r["mode"] == "direct" and r.get("random_pod_short_conn_rps"):
            sp = r["spread"].get("random_pod_short_conn_rps")
            print("\nN = %d, direct to a random one of the %s pods per connection: %s conn/s [%s..%s], p99 %s ms."
                  % (r["services"], meta.get("backends"), fmt(r["random_pod_short_conn_rps"]), fmt(sp[0]),
                     fmt(sp[1]), fmt(r.get("random_pod_short_p99_ms"), 2)))
    print("\n| N | rule set | cold load s | one endpoint change p50 / p99 ms (changes) |")
    print("|---|---|---|---|")
    for r in results:
        if r["mode"] in ("iptables", "nftables") and not r.get("skipped"):
            print("| %d | %s | %s | %s / %s (%s) |" % (r["services"], r["mode"], fmt(r.get("cold_load_s"), 2),
                                                      fmt(r.get("change_ms_p50"), 1), fmt(r.get("change_ms_p99"), 1),
                                                      r.get("changes", 0)))
    print()
    skipped = md_table(["N", "switchyard source", "cold s (loaded / listed / full sync)", "CPU s", "peak RSS MiB",
                        "BPF maps MiB", "change p50 / p99 ms", "event → map p50 / p99 ms", "sync p50 / p99 ms",
                        "status e2e p50 ms"])
    for r in cp:
        if r.get("skipped"):
            print(skipped(r["services"], r["source"], r["skipped"]))
            continue
        pair = lambda k: ("%s / %s" % (fmt(r.get(k + "_p50"), 2), fmt(r.get(k + "_p99"), 2))) if r.get("changes") else "-"
        print("| %d | %s | %s (%s / %s / %s) | %s | %s | %s | %s | %s | %s | %s |" % (
            r["services"], r["source"] + (" (dataplane daemon)" if r.get("dataplane_daemon") else ""),
            fmt(r.get("cold_s"), 2), fmt(r.get("loaded_s"), 2), fmt(r.get("source_synced_s"), 2),
            fmt(r.get("full_sync_s"), 2), fmt(r.get("cpu_s"), 1), fmt(r.get("rss_peak_mib"), 0),
            fmt(r.get("bpf_map_memlock_mib"), 1), pair("programming_ms"), pair("event_ms"), pair("sync_ms"),
            fmt(r.get("e2e_ms_p50"), 0) if r.get("e2e_changes") else "-"))


if __name__ == "__main__":
    sys.exit(main())
