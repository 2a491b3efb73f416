#!/usr/bin/env python3
"""Checks lib_netpol.py without a cluster: the reachability DSL, the probe list, and that the
comparison fails (with a table naming the cell) when one cell differs, passes when none does,
and counts a missing probe result as a failure. Run: python3 tests/e2e/lib_netpol_selftest.py"""

import contextlib
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_netpol as np  # noqa: E402

failures = []


def check(what, cond):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")


def grid():
    lines = [f"{p} {1 + i % 2} 198.18.{17 + i % 2}.{2 + i // 2} 2001:db8:1:{1 + i % 2}::{2 + i // 2} ns{i}"
             for i, p in enumerate(np.GRID)]
    g = np.make_grid(lines)
    g["svc"] = {"backend": "x/a", "ip4": "198.19.0.80", "ip6": "2001:db8:c::80", "port": 80}
    return g


def results(g, allowed, cols, fams):
    """Probe lines as the runner prints them, each cell answered iff allowed(cell)."""
    out = []
    for src in np.GRID:
        for line in np.targets(g, src, cols, fams):
            dst, col, fam = line.split()[:3]
            ok = allowed((src, dst, col, fam))
            report = {"sent": 1, "ok": 1 if ok else 0, "failed": 0 if ok else 1, "peer_mismatch": 0,
                      "backends": {dst: 1} if ok else {}, "sources": {},
                      "errors": {} if ok else {"timeout": 1}}
            out.append(f"{src} {dst} {col} {fam} {0 if ok else 1} {json.dumps(report)}")
    return out


def compare(g, dsl, lines, cols, fams):
    with tempfile.TemporaryDirectory() as d:
        gp, rp, retry = os.path.join(d, "g.json"), os.path.join(d, "r.txt"), os.path.join(d, "retry")
        np.save(gp, g)
        with open(rp, "w") as f:
            f.write("\n".join(lines) + "\n")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = np.compare(np.load(gp), dsl, rp, cols, fams, retry)
        with open(retry) as f:
            return rc, buf.getvalue(), f.read().split("\n")


g = grid()
# The DSL: later rules win, loopback stays allowed, families and columns restrict.
want = np.expected("deny * -> x/*; allow x/b -> x/a tcp; deny x/a -> y/c v6")
check("deny * -> x/* denies y/a -> x/b udp", want[("y/a", "x/b", "udp", "4")] is False)
check("allow x/b -> x/a tcp allows it", want[("x/b", "x/a", "tcp", "6")] is True)
check("allow x/b -> x/a tcp leaves udp denied", want[("x/b", "x/a", "udp", "4")] is False)
check("loopback allowed", want[("x/a", "x/a", "udp", "4")] is True)
check("v6 rule leaves v4", want[("x/a", "y/c", "tcp", "4")] is True and want[("x/a", "y/c", "tcp", "6")] is False)
for bad in ("deny x -> y", "block * -> *", "deny * -> q/a", "deny * -> * tcp,sctp"):
    try:
        np.expected(bad)
        check(f"'{bad}' rejected", False)
    except np.Usage:
        pass

# The probe list: no self probe, the named and other ports per pod, the Service once per client.
t = np.targets(g, "x/b", ["named", "other", "svc"], ["4", "6"])
check("8 named + 8 other + 1 svc per family", len(t) == 34)
check("x/a's named port is 82", "x/a named 4 198.18.17.2:82 tcp" in t)
check("x/a's other port is 83", "x/a other 4 198.18.17.2:83 tcp" in t)
check("IPv6 in brackets", "x/a svc 6 [2001:db8:c::80]:80 tcp" in t)
check("no Service probe from its backend", not any(" svc " in line for line in np.targets(g, "x/a", ["svc"], ["4"])))

dsl = "deny * -> x/a"
cols, fams = ["tcp", "udp", "svc"], ["4", "6"]
exact = np.expected(dsl)
rc, out, _ = compare(g, dsl, results(g, lambda c: exact[c], cols, fams), cols, fams)
check(f"the matrix as expected passes ({out.strip()})", rc == 0)

flip = ("y/b", "x/a", "udp", "6")
rc, out, retry = compare(g, dsl, results(g, lambda c: exact[c] != (c == flip), cols, fams), cols, fams)
check("one cell allowed that should not be fails", rc == 1)
check("the table names the cell", "y/b -> x/a udp IPv6: expected denied, observed answered" in out)
check("the table marks it +", any(line.startswith("y/b") and "+" in line for line in out.splitlines()))
check("the retry list holds exactly that cell", [r for r in retry if r] == ["y/b x/a udp 6"])

lines = results(g, lambda c: exact[c], cols, fams)
rc, out, _ = compare(g, dsl, [l for l in lines if not l.startswith("z/c x/a svc 4 ")], cols, fams)
check("a missing probe result fails", rc == 1 and "z/c -> x/a svc IPv4: no probe result" in out)

wrong = [l.replace('"backends": {"x/b": 1}', '"backends": {"x/c": 1}') if l.startswith("x/a x/b tcp 4 ") else l
         for l in results(g, lambda c: True, ["tcp"], ["4"])]
rc, out, _ = compare(g, "", wrong, ["tcp"], ["4"])
check("an answer from the wrong pod fails", rc == 1 and "answered by ['x/c'], not x/b" in out)

print("lib_netpol selftest:", "FAILED " + "; ".join(failures) if failures else "all checks passed")
sys.exit(1 if failures else 0)
