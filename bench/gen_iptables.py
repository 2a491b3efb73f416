#!/usr/bin/env python3
"""Generate an iptables-restore input with the structure kube-proxy's iptables proxier writes.

nat table only (see docs/benchmarks.md for why the filter-table parts are left out):
  PREROUTING/OUTPUT -> KUBE-SERVICES (one rule per service IP:port, the nodeports rule last)
  KUBE-SVC-<hash>   -> masquerade-mark off-cluster sources, then one rule per endpoint with
                       -m statistic --mode random --probability 1/(remaining endpoints)
  KUBE-SEP-<hash>   -> hairpin masquerade mark, DNAT to the endpoint
  POSTROUTING -> KUBE-POSTROUTING masquerades packets carrying the 0x4000 mark.
  KUBE-NODEPORTS    -> (--nodeport) one rule per NodePort -> KUBE-EXT-<hash>: masquerade mark
                       (externalTrafficPolicy Cluster), then KUBE-SVC-<hash>
Chain names are kube-proxy's: "KUBE-SVC-"/"KUBE-EXT-" + base32(sha256(portName + protocol))[:16]
and "KUBE-SEP-" + base32(sha256(portName + protocol + endpoint))[:16].

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


def ext_chain(svc, port):
    """kube-proxy's servicePortExternalChainName: the same hash as KUBE-SVC-."""
    return "KUBE-EXT-" + benchlib.b32hash(svc.port_name(port) + "tcp", 16)


def nodeport_rules(s, p):
    """externalTrafficPolicy Cluster: KUBE-NODEPORTS jumps to KUBE-EXT-, which marks for
    masquerade (the endpoint may be on another node) and goes on to KUBE-SVC-."""
    name = s.port_name(p)
    chain = ext_chain(s, p)
    return ['-A KUBE-NODEPORTS -m comment --comment %s -m tcp -p tcp --dport %d -j %s'
            % (name, p.node_port, chain),
            '-A %s -m comment --comment "masquerade traffic for %s external destinations" '
            '-j KUBE-MARK-MASQ' % (chain, name),
            '-A %s -j %s' % (chain, svc_chain(s, p))]


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
    match = "-d %s " % gate if gate else ""
    rules = [
        '-A PREROUTING %s-m comment --comment "kubernetes service portals" -j KUBE-SERVICES' % match,
        '-A OUTPUT %s-m comment --comment "kubernetes service portals" -j KUBE-SERVICES' % match,
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
            if p.node_port:
                chains.append(":%s - [0:0]" % ext_chain(s, p))
                rules += nodeport_rules(s, p)
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
    ap.add_argument("--nodeport", metavar="REMOTE_EP,LOCAL_EP",
                    help="the NodePort world (benchlib.nodeport_world) with these two endpoints, "
                         "and no gate on the jumps from PREROUTING/OUTPUT (bench/nodeport.sh "
                         "loads one mode per cluster)")
    a = ap.parse_args()
    if a.nodeport:
        remote, local = a.nodeport.split(",")
        svcs = benchlib.nodeport_world("iptables", a.services, a.endpoints, remote, local)
        gate = None
    else:
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
