#!/usr/bin/env python3
"""One-endpoint changes on a running switchyard daemon, timed up to the map write.

Runs in the node namespace (nsenter, so that bpffs pins stay visible) next to the daemon,
whose objects are the benchmark world of gen_manifests.py (N services x M endpoints).
Change c replaces endpoint 0 of one synthetic service (benchlib.change_plan, the plan every
rule set uses):

  --source apiserver  writes the whole EndpointSlice with POST /fake/apply to
                      sy-fake-apiserver over one kept-alive HTTPS connection. The slice's
                      endpoints.kubernetes.io/last-change-trigger-time is stamped just
                      before the write, so the daemon's
                      kubeproxy_network_programming_duration_seconds measures API write ->
                      watch event -> decode -> sync -> map write, as kube-proxy's does
                      from the endpointslice controller.
  --source files      renames the service's new manifest (gen_manifests.py --change-dir)
                      over the old one in --manifest-dir. The daemon starts that clock when
                      its poll finds the change, so programming_ms leaves out the wait for
                      the poll (up to pollInterval) and seen_ms includes it.

For each change, after the daemon's debug log shows the partial sync:
  programming_ms  the change's observation in kubeproxy_network_programming_duration_seconds
                  (delta of _sum / delta of _count around the change; count must grow by 1)
  event_ms        the same for switchyard_event_to_programmed_seconds: from the daemon
                  receiving the change (watch event, or the poll that found the file) to
                  the end of the sync that wrote it (the issue's "watch event to map write")
  sync_ms         the same for kubeproxy_sync_partial_proxy_rules_duration_seconds (the
                  sync alone: diff and map writes)
  seen_ms         wall time from just before the write until this script saw the log line
                  (an upper bound of programming_ms; polled every millisecond)
The last --e2e of the changes also poll `switchyard status -o json` from the write until it
lists the new endpoint (e2e_ms), and time that last status call (status_ms): an end-to-end
figure as a user would see it. They run after the others so that the status dumps, which
take seconds at large N, do not disturb the metric samples.

Changes are spaced by --gap seconds after each sync (more than minSyncPeriod), so no
change waits for the rate limit of the one before; the periodic tick can still delay one.
Writes one JSON object per change to --out.
"""

import argparse
import datetime
import http.client
import json
import os
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import gen_manifests  # noqa: E402

PROG = "kubeproxy_network_programming_duration_seconds"
PARTIAL = "kubeproxy_sync_partial_proxy_rules_duration_seconds"
EVENT = "switchyard_event_to_programmed_seconds"
STAMP = "2000-01-01T00:00:00.000000Z"  # placeholder replaced by the write's time


def metrics(conn):
    """{name: value} of the _sum and _count lines of the histograms."""
    for attempt in (0, 1):
        try:
            conn.request("GET", "/metrics")
            body = conn.getresponse().read().decode()
            break
        except (OSError, http.client.HTTPException):
            conn.close()
            if attempt:
                raise
    out = {}
    for line in body.splitlines():
        if line.startswith((PROG + "_", PARTIAL + "_", EVENT + "_")):
            name, _, value = line.partition(" ")
            if name.endswith("_sum") or name.endswith("_count"):
                out[name] = float(value)
    return out


def delta(before, after, hist):
    n = after.get(hist + "_count", 0) - before.get(hist + "_count", 0)
    s = after.get(hist + "_sum", 0) - before.get(hist + "_sum", 0)
    return (s * 1000 / n if n > 0 else None), int(n)


def status_has(binary, pin_path, ip):
    p = subprocess.run([binary, "status", "--pin-path", pin_path, "-o", "json"],
                       capture_output=True, text=True, timeout=120)
    return ('"%s"' % ip) in p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=("apiserver", "files"), required=True)
    ap.add_argument("--api", help="host:port of sy-fake-apiserver (HTTPS)")
    ap.add_argument("--ca")
    ap.add_argument("--token")
    ap.add_argument("--manifest-dir")
    ap.add_argument("--change-dir", help="DIR/0001/NAME.yaml ...: gen_manifests.py --change-dir")
    ap.add_argument("--metrics", default="127.0.0.1:10249")
    ap.add_argument("--log", required=True, help="the daemon's log (verbosity >= 4)")
    ap.add_argument("--switchyard", required=True)
    ap.add_argument("--pin-path", required=True)
    ap.add_argument("--services", type=int, required=True)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--backends", type=int, default=4)
    ap.add_argument("--node-name", required=True)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--e2e", type=int, default=10, help="further changes timed through `status`")
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between a sync and the next change")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    svcs = benchlib.world("switchyard", a.services, a.endpoints, a.backends)
    total = a.changes + a.e2e
    api = None
    if a.source == "apiserver":
        if not (a.api and a.ca and a.token):
            sys.exit("cp_driver: --source apiserver needs --api, --ca and --token")
        host, port = a.api.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=a.ca)
        api = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=a.timeout)
    elif not (a.manifest_dir and a.change_dir):
        sys.exit("cp_driver: --source files needs --manifest-dir and --change-dir")
    mhost, mport = a.metrics.rsplit(":", 1)
    mconn = http.client.HTTPConnection(mhost, int(mport), timeout=a.timeout)
    headers = {"Authorization": "Bearer " + (a.token or ""), "Content-Type": "application/json"}
    log = open(a.log, errors="replace")
    log.seek(0, os.SEEK_END)
    failures = 0
    with open(a.out, "w") as out:
        for c, (s, _old, new) in enumerate(benchlib.change_plan(svcs, total), 1):
            if api:
                body = json.dumps(gen_manifests.slice_obj(s, 100000 + 2 * c, a.node_name, STAMP),
                                  separators=(",", ":"))
            else:
                src = os.path.join(a.change_dir, "%04d" % c, s.name + ".yaml")
                dst = os.path.join(a.manifest_dir, s.name + ".yaml")
                with open(src) as f, open(dst + ".tmp", "w") as g:
                    g.write(f.read())
            before = metrics(mconn)
            log.seek(0, os.SEEK_END)
            e2e = c > a.changes
            if api:
                stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                t0 = time.perf_counter()
                api.request("POST", "/fake/apply", body=body.replace(STAMP, stamp), headers=headers)
                resp = api.getresponse()
                resp.read()
                if resp.status != 200:
                    print("cp_driver: change %d: POST /fake/apply -> %d" % (c, resp.status), file=sys.stderr)
                    failures += 1
                    break
            else:
                t0 = time.perf_counter()
                os.rename(dst + ".tmp", dst)
            rec = {"c": c, "service": s.name, "new": new}
            seen = None
            buf = ""
            while time.perf_counter() - t0 < a.timeout:
                buf += log.read()
                if "partial sync of" in buf or "full sync of" in buf:
                    seen = time.perf_counter()
                    break
                time.sleep(0.001)
            if seen is None:
                print("cp_driver: change %d: no sync in the daemon's log after %ds" % (c, a.timeout),
                      file=sys.stderr)
                failures += 1
                break
            rec["seen_ms"] = round((seen - t0) * 1000, 3)
            rec["full_sync"] = "full sync of" in buf
            if e2e:
                ok = False
                while time.perf_counter() - t0 < a.timeout + 120:
                    ts = time.perf_counter()
                    if status_has(a.switchyard, a.pin_path, new):
                        ok = True
                        break
                rec["e2e_ms"] = round((time.perf_counter() - t0) * 1000, 3) if ok else None
                rec["status_ms"] = round((time.perf_counter() - ts) * 1000, 3)
            after = metrics(mconn)
            for _ in range(100):  # the log line follows the observation; be safe anyway
                if after.get(PROG + "_count", 0) > before.get(PROG + "_count", 0):
                    break
                time.sleep(0.01)
                after = metrics(mconn)
            rec["programming_ms"], rec["programming_observations"] = delta(before, after, PROG)
            rec["sync_ms"], rec["partial_syncs"] = delta(before, after, PARTIAL)
            rec["event_ms"], _ = delta(before, after, EVENT)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            time.sleep(a.gap)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
