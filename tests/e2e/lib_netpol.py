#!/usr/bin/env python3
"""The NetworkPolicy truth tables of tests/e2e/lib_netpol.sh: the grid's manifests, the probe
list, the expected matrix from a compact reachability DSL, the comparison with what the probes
observed, and the policy map entries decoded from `bpftool -j map dump`.

Called by lib_netpol.sh, never by tests directly:

  grid FILE                       the grid (JSON) from lines "POD NODE IP4 IP6 NETNS" on stdin
  relabel FILE POD LABELS         a pod's labels become LABELS (k=v,k=v; "" for none)
  pod FILE POD RV                 the Pod's manifest (YAML, as kubectl prints it)
  namespaces FILE RV              the grid's Namespaces (and the marker's)
  marker STEP RV                  the step marker Pod (see lib_netpol.sh)
  marker-key STEP                 its ipcache key (hex bytes for bpftool)
  targets FILE SRC COLS FAMS      the probes from SRC: "DST COL FAM ADDR:PORT PROTO" lines
  compare FILE DSL RESULTS COLS FAMS [RETRY]   exit 0 iff every probed cell is as expected,
                                  else prints the tables of the mismatched cells (and writes
                                  "SRC DST COL FAM" lines to RETRY)
  rules FILE IPCACHE EP RULES POD DIR   the rules map entries of POD's endpoint in direction DIR
                                  (ingress|egress), one per line, peers named by the pods whose
                                  identity they are ("x/b", "any", "cidr:...")
  endpoint FILE EP POD            POD's pol_ep_v1 entry: "endpoint=N flags=ingress-isolated,..."
  hold ADDR:PORT LOG STOP         one held TCP connection to a sy-testpeer server ("HOLD"), a
                                  request line every 100 ms; after each tick LOG gets "MS SENT
                                  RECEIVED"; never reconnects; ends when STOP exists (or after
                                  60 s), exit 1 with "error ..." in LOG if the socket fails

The DSL: rules separated by ";" or newlines, applied in order over a matrix that starts all
allowed (upstream's NewReachability(pods, true)); each rule is
  allow|deny FROM -> TO [COLS] [v4|v6]
FROM and TO are pod patterns: x/a, x/*, */a or *; COLS a comma list of the columns (tcp, udp,
named, other, svc, svctc; default: every column); the family restricts the rule to IPv4 or IPv6.
A pod to itself is always allowed afterwards (upstream's AllowLoopback): loopback traffic never
leaves the pod.
"""

import json
import re
import sys

import lib_multinode_manifests as mm

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
GRID = [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]
# The ports every pod serves (lib_netpol.sh): TCP 80, UDP 81, the named port "serve" (TCP,
# 82 + the pod's index in GRID) and "other" (TCP: the next pod's "serve" number, unnamed here).
TCP_PORT = 80
UDP_PORT = 81
NAMED_BASE = 82
POD_COLUMNS = ("tcp", "udp", "named", "other")
SVC_COLUMNS = ("svc", "svctc")
COLUMNS = POD_COLUMNS + SVC_COLUMNS
MARKER_NS = "np-marker"
MARKER_NET = "198.18.31."  # inside the cluster CIDR, on no node


class Usage(Exception):
    pass


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, grid):
    with open(path + ".tmp", "w") as f:
        json.dump(grid, f, sort_keys=True)
    import os
    os.replace(path + ".tmp", path)


def labels_of(text):
    out = {}
    for pair in filter(None, text.split(",")):
        k, sep, v = pair.partition("=")
        if not sep or not k:
            raise Usage(f"label '{pair}' must be KEY=VALUE")
        out[k] = v
    return out


def make_grid(lines):
    pods = {}
    for line in lines:
        if not line.strip():
            continue
        key, node, ip4, ip6, netns = line.split()
        if key not in GRID:
            raise Usage(f"pod {key}: not one of {' '.join(GRID)}")
        index = GRID.index(key)
        ns, name = key.split("/")
        pods[key] = {"ns": ns, "name": name, "node": int(node), "ip4": ip4, "ip6": ip6, "netns": netns,
                     "named": NAMED_BASE + index, "other": NAMED_BASE + (index + 1) % len(GRID),
                     "labels": {"pod": name}}
    missing = [p for p in GRID if p not in pods]
    if missing:
        raise Usage(f"grid without {' '.join(missing)}")
    return {"pods": pods, "svc": None}


# ---------------------------------------------------------------------------------------------
# Manifests

def meta(kind, ns, name, rv, labels):
    m = {"creationTimestamp": mm.CREATED, "name": name, "resourceVersion": rv,
         "uid": mm.uid(f"{kind}/{ns}/{name}")}
    if ns:
        m["namespace"] = ns
    if labels:
        m["labels"] = labels
    return m


def pod_doc(ns, name, rv, labels, node, ips, ports):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta("Pod", ns, name, rv, labels),
        "spec": {"containers": [{"image": "sy-testpeer", "name": "serve", "ports": ports}],
                 "nodeName": node},
        "status": {"phase": "Running", "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]},
    }


def pod(grid, key, rv):
    p = grid["pods"].get(key)
    if p is None:
        raise Usage(f"pod {key}: not in the grid")
    ports = [{"containerPort": TCP_PORT, "name": "http", "protocol": "TCP"},
             {"containerPort": UDP_PORT, "name": "dns", "protocol": "UDP"},
             {"containerPort": p["named"], "name": "serve", "protocol": "TCP"},
             {"containerPort": p["other"], "protocol": "TCP"}]
    return mm.emit(pod_doc(p["ns"], p["name"], rv, p["labels"], f"node-{p['node']}", [p["ip4"], p["ip6"]], ports))


def namespaces(rv):
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": meta("Namespace", "", ns, rv, {"ns": ns}),
             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            for ns in NAMESPACES + (MARKER_NS,)]
    return "---\n".join(mm.emit(d) for d in docs)


def marker_ip(step):
    return MARKER_NET + str(1 + int(step) % 250)


def marker(step, rv):
    return mm.emit(pod_doc(MARKER_NS, "step", rv, {"np-marker": "step"}, "node-none", [marker_ip(step)], []))


def marker_key(step):
    # struct sy_pol_ipcache_key: prefixlen (host order, little endian here), IPv4-mapped address
    octets = [int(o) for o in marker_ip(step).split(".")]
    key = [128, 0, 0, 0] + [0] * 10 + [0xFF, 0xFF] + octets
    return " ".join(str(b) for b in key)


# ---------------------------------------------------------------------------------------------
# Probes

def split_list(text, allowed, what):
    items = [i for i in text.split(",") if i]
    for i in items:
        if i not in allowed:
            raise Usage(f"{what} '{i}' must be one of {', '.join(allowed)}")
    if not items:
        raise Usage(f"no {what}")
    return items


def families(text):
    return split_list(text, ("4", "6"), "family")


def address(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def targets(grid, src, cols, fams):
    """One line per probe from src: DST COL FAM ADDR:PORT PROTO."""
    out = []
    for fam in fams:
        for col in cols:
            if col in SVC_COLUMNS:
                svc = grid.get("svc")
                if not svc:
                    raise Usage(f"column {col} without a Service (np_service)")
                if svc["backend"] == src:
                    continue  # a pod reaching itself through a Service: hairpin, no verdict here
                out.append(f"{svc['backend']} {col} {fam} {address(svc['ip' + fam], svc['port'])} tcp")
                continue
            for dst in GRID:
                p = grid["pods"][dst]
                if dst == src:
                    continue  # loopback: always allowed, never leaves the pod
                port = {"tcp": TCP_PORT, "udp": UDP_PORT, "named": p["named"], "other": p["other"]}[col]
                proto = "udp" if col == "udp" else "tcp"
                out.append(f"{dst} {col} {fam} {address(p['ip' + fam], port)} {proto}")
    return out


# ---------------------------------------------------------------------------------------------
# Expected matrices

def matches(pattern, key):
    if pattern == "*":
        return True
    pns, _, ppod = pattern.partition("/")
    if not ppod:
        raise Usage(f"pattern '{pattern}' must be NS/POD (either may be *) or *")
    ns, name = key.split("/")
    return pns in ("*", ns) and ppod in ("*", name)


def expected(dsl):
    """{(src, dst, col, fam): allowed} for every cell of every column."""
    cells = {(s, d, c, f): True for s in GRID for d in GRID for c in COLUMNS for f in ("4", "6")}
    for raw in re.split(r"[;\n]", dsl):
        words = raw.split()
        if not words:
            continue
        m = re.fullmatch(r"(allow|deny) (\S+) -> (\S+)((?: \S+)*)", " ".join(words))
        if not m:
            raise Usage(f"reachability rule '{raw.strip()}' must be: allow|deny FROM -> TO [COLS] [v4|v6]")
        allow = m.group(1) == "allow"
        for pat in (m.group(2), m.group(3)):
            if pat != "*" and not any(matches(pat, k) for k in GRID):
                raise Usage(f"reachability rule '{raw.strip()}': '{pat}' matches no pod of the grid")
        cols, fams = list(COLUMNS), ["4", "6"]
        for opt in m.group(4).split():
            if opt in ("v4", "v6"):
                fams = [opt[1]]
            else:
                cols = split_list(opt, COLUMNS, "column")
        for (s, d, c, f) in cells:
            if c in cols and f in fams and matches(m.group(2), s) and matches(m.group(3), d):
                cells[(s, d, c, f)] = allow
    for (s, d, c, f) in cells:
        if s == d:
            cells[(s, d, c, f)] = True
    return cells


def observed(grid, path):
    """{(src, dst, col, fam): (allowed, detail)} from the runner's lines."""
    cells = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 5)
            if len(parts) < 5:
                continue
            src, dst, col, fam, rc = parts[:5]
            out = parts[5] if len(parts) > 5 else ""
            try:
                d = json.loads(out)
            except ValueError:
                d = None
            ok = rc == "0" and d is not None and d.get("ok") == 1 and d.get("backends") == {dst: 1}
            if d is None:
                detail = f"rc {rc}, no report: {out.strip()[:120]}"
            elif ok:
                detail = "answered"
            elif d.get("backends") and d.get("backends") != {dst: 1}:
                detail = f"answered by {sorted(d['backends'])}, not {dst}"
            else:
                detail = ", ".join(f"{k} x{v}" for k, v in sorted(d.get("errors", {}).items())) or f"rc {rc}"
            cells[(src, dst, col, fam)] = (ok, detail)
    return cells


DETAILS = 6  # mismatched cells listed with their probe's outcome, per table

COLUMN_TITLES = {"tcp": f"TCP/{TCP_PORT}", "udp": f"UDP/{UDP_PORT}", "named": "TCP named port 'serve'",
                 "other": "TCP another pod's 'serve' number", "svc": "ClusterIP (client's node LB)",
                 "svctc": "ClusterIP (client outside the socket-LB cgroup: tc)"}


def compare(grid, dsl, results, cols, fams, retry):
    want = expected(dsl)
    got = observed(grid, results)
    bad = []
    missing = []
    for fam in fams:
        for col in cols:
            for src in GRID:
                for line in targets(grid, src, [col], [fam]):
                    dst = line.split()[0]
                    cell = (src, dst, col, fam)
                    if cell not in got:
                        missing.append(cell)
                    elif got[cell][0] != want[cell]:
                        bad.append(cell)
    if retry:
        with open(retry, "w") as f:
            for cell in bad + missing:
                f.write(" ".join(cell) + "\n")
    if not bad and not missing:
        n = sum(1 for c in got if c[2] in cols and c[3] in fams)
        print(f"all {n} probed cells as expected")
        return 0
    width = max(len(p) for p in GRID)
    for fam in fams:
        for col in cols:
            cells = [c for c in bad if c[2] == col and c[3] == fam]
            if not cells:
                continue
            print(f"{COLUMN_TITLES[col]}, IPv{fam}: {len(cells)} cell(s) not as expected"
                  " (rows: from, columns: to; . allowed as expected, X denied as expected,"
                  " + allowed but expected denied, - denied but expected allowed, blank: not probed)")
            print(" " * (width + 2) + " ".join(d.rjust(width) for d in GRID))
            for src in GRID:
                row = []
                for dst in GRID:
                    cell = (src, dst, col, fam)
                    if cell not in got:
                        mark = "." if src == dst and col in POD_COLUMNS else " "
                    elif got[cell][0] == want[cell]:
                        mark = "." if want[cell] else "X"
                    else:
                        mark = "+" if got[cell][0] else "-"
                    row.append(mark.rjust(width))
                print(src.ljust(width + 2) + " ".join(row))
            for cell in cells[:DETAILS]:
                print(f"  {cell[0]} -> {cell[1]} {col} IPv{fam}: expected "
                      f"{'allowed' if want[cell] else 'denied'}, observed {got[cell][1]}")
            if len(cells) > DETAILS:
                print(f"  ... and {len(cells) - DETAILS} more")
    for cell in missing:
        print(f"  {cell[0]} -> {cell[1]} {cell[2]} IPv{cell[3]}: no probe result")
    return 1


# ---------------------------------------------------------------------------------------------
# Policy maps, decoded from `bpftool -j map dump pinned ...`

def hexbytes(items):
    return bytes(int(b, 16) for b in items)


def dump(path):
    with open(path) as f:
        text = f.read().strip()
    if not text:
        return []
    entries = json.loads(text)
    out = []
    for e in entries:
        if "key" in e and "value" in e:
            out.append((hexbytes(e["key"]), hexbytes(e["value"])))
    return out


def addr16(ip):
    import ipaddress
    a = ipaddress.ip_address(ip)
    if a.version == 4:
        return b"\0" * 10 + b"\xff\xff" + a.packed
    return a.packed


def u32le(b, off):
    return int.from_bytes(b[off:off + 4], "little")


def u32be(b, off):
    return int.from_bytes(b[off:off + 4], "big")


def identities(grid, ipcache_path):
    """{identity: [pods]} of the grid's pods, from their exact ipcache entries."""
    by_addr = {}
    for key, value in dump(ipcache_path):
        by_addr[(u32le(key, 0), key[4:20])] = (u32le(value, 0), u32le(value, 4))
    names = {}
    marker = addr16(MARKER_NET + "0")[:15]
    for (plen, addr), (ident, _) in by_addr.items():
        if plen == 128 and addr[:15] == marker:
            names.setdefault(ident, set()).add("marker")  # np-marker/step (lib_netpol.sh's np_sync)
    for k, p in grid["pods"].items():
        for fam in ("ip4", "ip6"):
            entry = by_addr.get((128, addr16(p[fam])))
            if entry:
                names.setdefault(entry[0], set()).add(k)
    return {i: sorted(v) for i, v in names.items()}


EP_FLAGS = ((1, "ingress-isolated"), (2, "egress-isolated"), (4, "ingress-rules"), (8, "egress-rules"))


def endpoint_entry(grid, ep_path, key):
    p = grid["pods"].get(key)
    if p is None:
        raise Usage(f"pod {key}: not in the grid")
    want = addr16(p["ip4"])
    for k, v in dump(ep_path):
        if k[:16] == want:
            flags = u32le(v, 8)
            names = [n for bit, n in EP_FLAGS if flags & bit]
            return u32le(v, 0), u32le(v, 4), ",".join(names) or "none"
    return None


def endpoint(grid, ep_path, key):
    e = endpoint_entry(grid, ep_path, key)
    if e is None:
        return f"{key}: no endpoint"
    return f"endpoint={e[0]} identity={e[1]} flags={e[2]}"


def rules(grid, ipcache_path, ep_path, rules_path, key, direction):
    e = endpoint_entry(grid, ep_path, key)
    if e is None:
        raise Usage(f"{key} has no pol_ep_v1 entry (not a local pod of this node?)")
    ids = identities(grid, ipcache_path)
    want_dir = {"ingress": 0, "egress": 1}[direction]
    lines = []
    for k, _ in dump(rules_path):
        plen = u32le(k, 0)
        ep, ident, d, proto, port = u32be(k, 4), u32be(k, 8), k[12], k[13], int.from_bytes(k[14:16], "big")
        if ep != e[0] or d != want_dir:
            continue
        if ident == 0:
            peer = "any"
        elif ident in ids:
            peer = "+".join(ids[ident])
        elif ident >= 1 << 24:
            peer = f"cidr:{ident}"
        else:
            peer = f"identity:{ident}"
        if plen <= 72:
            what = "any"
        else:
            name = {6: "tcp", 17: "udp", 132: "sctp"}.get(proto, str(proto))
            bits = plen - 80
            what = name if bits <= 0 else (f"{name}/{port}" if bits == 16 else f"{name}/{port}/{bits}")
        lines.append(f"{peer} {what}")
    return "\n".join(sorted(lines))


def hold(target, log, stop):
    import os
    import socket
    import time
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + 60
    sent = received = 0
    buffer = b""
    with open(log, "w", buffering=1) as out:
        try:
            sock = socket.create_connection((host, int(port)), timeout=5) if family == socket.AF_INET \
                else socket.create_connection((host, int(port), 0, 0), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(b"HOLD\n")
            sock.setblocking(False)
            while time.monotonic() < deadline and not os.path.exists(stop):
                sock.send(b"x\n")  # a few bytes a tick: never more than the socket buffer holds
                sent += 1
                end = time.monotonic() + 0.1
                while True:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    import select
                    ready, _, _ = select.select([sock], [], [], left)
                    if ready:
                        chunk = sock.recv(65536)
                        if not chunk:
                            raise OSError("the server closed the connection")
                        buffer += chunk
                        received += buffer.count(b"\n")
                        buffer = buffer[buffer.rfind(b"\n") + 1:]
                out.write(f"{int(time.monotonic() * 1000)} {sent} {received}\n")
        except OSError as e:
            out.write(f"error {e}\n")
            return 1
    return 0


def main(argv):
    if len(argv) < 2:
        raise Usage("usage: lib_netpol.py grid|relabel|pod|namespaces|marker|marker-key|targets|compare|rules|endpoint ARGS...")
    cmd, args = argv[1], argv[2:]
    if cmd == "grid" and len(args) == 1:
        save(args[0], make_grid(sys.stdin))
        return 0
    if cmd == "relabel" and len(args) == 3:
        grid = load(args[0])
        if args[1] not in grid["pods"]:
            raise Usage(f"pod {args[1]}: not in the grid")
        grid["pods"][args[1]]["labels"] = labels_of(args[2])
        save(args[0], grid)
        return 0
    if cmd == "service" and len(args) == 5:
        grid = load(args[0])
        if args[1] not in grid["pods"]:
            raise Usage(f"backend {args[1]}: not in the grid")
        grid["svc"] = {"backend": args[1], "ip4": args[2], "ip6": args[3], "port": int(args[4])}
        save(args[0], grid)
        return 0
    if cmd == "pod" and len(args) == 3:
        sys.stdout.write(pod(load(args[0]), args[1], args[2]))
        return 0
    if cmd == "namespaces" and len(args) == 1:
        sys.stdout.write(namespaces(args[0]))
        return 0
    if cmd == "marker" and len(args) == 2:
        sys.stdout.write(marker(args[0], args[1]))
        return 0
    if cmd == "marker-key" and len(args) == 1:
        print(marker_key(args[0]))
        return 0
    if cmd == "targets" and len(args) == 4:
        grid = load(args[0])
        if args[1] not in grid["pods"]:
            raise Usage(f"pod {args[1]}: not in the grid")
        for line in targets(grid, args[1], split_list(args[2], COLUMNS, "column"), families(args[3])):
            print(line)
        return 0
    if cmd == "compare" and len(args) in (5, 6):
        grid = load(args[0])
        return compare(grid, args[1], args[2], split_list(args[3], COLUMNS, "column"), families(args[4]),
                       args[5] if len(args) == 6 else None)
    if cmd == "expected-check" and len(args) == 1:
        expected(args[0])
        return 0
    if cmd == "rules" and len(args) == 6:
        print(rules(load(args[0]), args[1], args[2], args[3], args[4], args[5]))
        return 0
    if cmd == "endpoint" and len(args) == 3:
        print(endpoint(load(args[0]), args[1], args[2]))
        return 0
    if cmd == "hold" and len(args) == 3:
        return hold(args[0], args[1], args[2])
    raise Usage(f"bad arguments for {cmd}: {' '.join(args)}")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Usage as problem:
        print(f"lib_netpol.py: {problem}", file=sys.stderr)
        sys.exit(2)
