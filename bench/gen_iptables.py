#!/usr/bin/env python3
"""Generate an iptables-restore input with the structure kube-proxy's iptables proxier writes.

nat table only (see docs/benchmarks.md for why the filter-table parts are left out):
  PREROUTING/OUTPUT -> KUBE-SERVICES (one rule per service IP:port, the nodeports rule last)
  KUBE-SVC-<hash>   -> masquerade-mark off-cluster sources, then one rule per endpoint with
                       -m statistic --mode random --probability 1/(remaining endpoints)
  KUBE-SEP-<hash>   -> hairpin masquerade mark, DNAT to the endpoint
  POSTROUTING -> KUBE-POSTROUTING masquerades packets carrying the 0x4000 mark.
Chain names are kube-proxy's: "KUBE-SVC-" + base32(sha256(portName + protocol))[:16] and
"KUBE-SEP-" + base32(sha256(portName + protocol + endpoint))[:16].

The jumps from PREROUTING/OUTPUT carry one extra match, "-d <iptables mode /24>", so that
traffic of the other benchmark modes never walks KUBE-SERVICES; traffic of this mode walks
it in full (the measured service is last).

Outputs:
  --out FILE            full ruleset for `iptables-restore --noflush` into an empty namespace
  --changes C --change-prefix P
                        P0001.rules ... : kube-proxy's partial sync after one endpoint change
                        (KUBE-SERVICES rewritten whole, the changed KUBE-SVC chain rewritten,
                        the new KUBE-SEP chain added, the stale one deleted), each applied
                        with `iptables-restore --noflush` on top of the previous state.
"""

import argparse
import sys

import benchlib

MASQ_MARK = "0x4000"


def svc_chain(svc, port):
    return "KUBE-SVC-" + benchlib.b32hash(svc.port_name(port) + "tcp", 16)


def sep_chain(svc, port, ep):
    endpoint = "%s:%d" % (ep, port.target)
    return "KUBE-SEP-" + benchlib.b32hash(svc.port_name(port) + "tcp" + endpoint, 16)


def services_rules(svcs):
    out = []
    for s in svcs:
        for p in s.ports:
            out.append('-A KUBE-SERVICES -m comment --comment "%s cluster IP" -m tcp -p tcp '
                       '-d %s/32 --dport %d -j %s' % (s.port_name(p), s.cluster_ip, p.port,
                                                     svc_chain(s, p)))
    out.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
               'must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    return out


def svc_rules(s, p):
    chain = svc_chain(s, p)
    name = s.port_name(p)
    out = ['-A %s -m comment --comment "%s cluster IP" -m tcp -p tcp -d %s/32 --dport %d '
           '! -s %s -j KUBE-MARK-MASQ' % (chain, name, s.cluster_ip, p.port, benchlib.CLUSTER_CIDR)]
    n = len(s.endpoints)
    for i, ep in enumerate(s.endpoints):
        stat = ""
        if i < n - 1:
            stat = " -m statistic --mode random --probability %0.10f" % (1.0 / (n - i))
        out.append('-A %s -m comment --comment "%s -> %s:%d"%s -j %s'
                   % (chain, name, ep, p.target, stat, sep_chain(s, p, ep)))
    return out


def sep_rules(s, p, ep):
    chain = sep_chain(s, p, ep)
    name = s.port_name(p)
    return ['-A %s -m comment --comment %s -s %s/32 -j KUBE-MARK-MASQ' % (chain, name, ep),
            '-A %s -m comment --comment %s -m tcp -p tcp -j DNAT --to-destination %s:%d'
            % (chain, name, ep, p.target)]


def full(svcs, gate):
    chains = [":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]",
              ":KUBE-MARK-MASQ - [0:0]"]
    rules = [
        '-A PREROUTING -d %s -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' % gate,
        '-A OUTPUT -d %s -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' % gate,
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-MARK-MASQ -j MARK --or-mark %s" % MASQ_MARK,
        "-A KUBE-POSTROUTING -m mark ! --mark %s/%s -j RETURN" % (MASQ_MARK, MASQ_MARK),
        "-A KUBE-POSTROUTING -j MARK --xor-mark %s" % MASQ_MARK,
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    rules += services_rules(svcs)
    for s in svcs:
        for p in s.ports:
            chains.append(":%s - [0:0]" % svc_chain(s, p))
            rules += svc_rules(s, p)
            for ep in s.endpoints:
                chains.append(":%s - [0:0]" % sep_chain(s, p, ep))
                rules += sep_rules(s, p, ep)
    return ["*nat"] + chains + rules + ["COMMIT", ""]


def change(svcs, s, old, new):
    chains = [":KUBE-SERVICES - [0:0]"]
    rules = services_rules(svcs)
    deletes = []
    for p in s.ports:
        chains.append(":%s - [0:0]" % svc_chain(s, p))
        chains.append(":%s - [0:0]" % sep_chain(s, p, new))
        rules += svc_rules(s, p)
        rules += sep_rules(s, p, new)
        # Declared (so it exists and is flushed) then deleted, as kube-proxy does.
        chains.append(":%s - [0:0]" % sep_chain(s, p, old))
        deletes.append("-X %s" % sep_chain(s, p, old))
    return ["*nat"] + chains + rules + deletes + ["COMMIT", ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, required=True, help="N, including the measured one")
    ap.add_argument("--endpoints", type=int, default=10, help="M endpoints per synthetic service")
    ap.add_argument("--backends", type=int, default=4, help="K real backend pods")
    ap.add_argument("--out", required=True)
    ap.add_argument("--changes", type=int, default=0)
    ap.add_argument("--change-prefix")
    a = ap.parse_args()
    svcs = benchlib.world("iptables", a.services, a.endpoints, a.backends)
    gate = benchlib.MODE_BLOCK["iptables"]
    with open(a.out, "w") as f:
        f.write("\n".join(full(svcs, gate)))
    if a.changes:
        if not a.change_prefix:
            sys.exit("--changes needs --change-prefix")
        for c, (s, old, new) in enumerate(benchlib.change_plan(svcs, a.changes), 1):
            with open("%s%04d.rules" % (a.change_prefix, c), "w") as f:
                f.write("\n".join(change(svcs, s, old, new)))


if __name__ == "__main__":
    main()
