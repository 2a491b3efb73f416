#!/usr/bin/env python3
"""Generate an `nft -f` input with the structure kube-proxy's nftables proxier writes.

table ip kube-proxy:
  base chains nat-prerouting / nat-output (dstnat) jump "services"; nat-postrouting
  (srcnat) jumps "masquerading" (mark-based, "masquerade fully-random");
  services: ip daddr . meta l4proto . th dport vmap @service-ips, then the NodePort vmap;
  service-ips: map ipv4_addr . inet_proto . inet_service : verdict -> goto service-<hash>-ns/name/tcp/port;
  service-*: masquerade-mark off-cluster sources, then numgen random mod M vmap {i : goto endpoint-*};
  endpoint-*: hairpin masquerade mark, then meta l4proto tcp dnat to IP:PORT;
  (--nodeport) service-nodeports: map inet_proto . inet_service : verdict -> goto external-<hash>-...;
  external-*: masquerade mark (externalTrafficPolicy Cluster), then goto the service chain.
Chain names follow kube-proxy: "service-" / "endpoint-" + base32(sha256(name))[:8] + "-" + name.
Statements are written one per line, as knftables does (one "add element" per element).

As for iptables, the jumps from the nat base chains carry "ip daddr <nftables mode /24>",
so the other benchmark modes' traffic never enters "services". The filter-hook chains
(firewall-check, endpoints-check: reject for services without endpoints) are left out,
as in gen_iptables.py; see docs/benchmarks.md.

Outputs:
  --out FILE   full transaction for a namespace with no kube-proxy table
  --changes C --change-prefix P
               P0001.nft ...: the incremental transaction of a kube-proxy that syncs only what
               changed (1.31+ partial sync): add the new endpoint chain, rewrite the service
               chain's numgen vmap, flush the stale endpoint chain now and delete it in the
               next transaction (kube-proxy's staleChains, for kernels before 6.2).
"""

import argparse
import sys

import benchlib

TABLE = "ip kube-proxy"
MASQ_MARK = "0x00004000"


def svc_chain(svc, port):
    name = "%s/%s/tcp/%s" % (svc.namespace, svc.name, port.name)
    return "service-%s-%s" % (benchlib.b32hash(name, 8), name)


def ext_chain(svc, port):
    """kube-proxy's external chain: "external-" and the service chain's hash and name."""
    name = "%s/%s/tcp/%s" % (svc.namespace, svc.name, port.name)
    return "external-%s-%s" % (benchlib.b32hash(name, 8), name)


def ext_rules(s, p):
    """externalTrafficPolicy Cluster: mark for masquerade, then the service chain."""
    chain = ext_chain(s, p)
    return ["add chain %s %s" % (TABLE, chain), "flush chain %s %s" % (TABLE, chain),
            "add rule %s %s jump mark-for-masquerade" % (TABLE, chain),
            "add rule %s %s goto %s" % (TABLE, chain, svc_chain(s, p))]


def ep_chain(svc, port, ep):
    name = "%s/%s/tcp/%s__%s/%d" % (svc.namespace, svc.name, port.name, ep, port.target)
    return "endpoint-%s-%s" % (benchlib.b32hash(name, 8), name)


def header(gate):
    out = ['add table %s { comment "rules for kube-proxy" ; }' % TABLE]
    for name, typ, hook, prio in (("nat-prerouting", "nat", "prerouting", "dstnat"),
                                  ("nat-output", "nat", "output", "-100"),  # = dstnat; nft 1.0.6 rejects the name here
                                  ("nat-postrouting", "nat", "postrouting", "srcnat")):
        out.append("add chain %s %s { type %s hook %s priority %s ; }" % (TABLE, name, typ, hook, prio))
        out.append("flush chain %s %s" % (TABLE, name))
    for c in ("services", "masquerading", "mark-for-masquerade"):
        out.append("add chain %s %s" % (TABLE, c))
        out.append("flush chain %s %s" % (TABLE, c))
    match = "ip daddr %s " % gate if gate else ""
    out += [
        "add rule %s nat-output %sjump services" % (TABLE, match),
        "add rule %s nat-prerouting %sjump services" % (TABLE, match),
        "add rule %s nat-postrouting jump masquerading" % TABLE,
        "add rule %s mark-for-masquerade mark set mark or %s" % (TABLE, MASQ_MARK),
        "add rule %s masquerading mark and %s == 0 return" % (TABLE, MASQ_MARK),
        "add rule %s masquerading mark set mark xor %s" % (TABLE, MASQ_MARK),
        "add rule %s masquerading masquerade fully-random" % TABLE,
        'add map %s service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; '
        'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }' % TABLE,
        'add map %s service-nodeports { type inet_proto . inet_service : verdict ; '
        'comment "NodePort traffic" ; }' % TABLE,
        "add rule %s services ip daddr . meta l4proto . th dport vmap @service-ips" % TABLE,
        "add rule %s services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
        "vmap @service-nodeports" % TABLE,
    ]
    return out


def svc_rules(s, p):
    chain = svc_chain(s, p)
    out = ["add chain %s %s" % (TABLE, chain), "flush chain %s %s" % (TABLE, chain),
           "add rule %s %s ip daddr %s tcp dport %d ip saddr != %s jump mark-for-masquerade"
           % (TABLE, chain, s.cluster_ip, p.port, benchlib.CLUSTER_CIDR)]
    elems = " , ".join("%d : goto %s" % (i, ep_chain(s, p, ep)) for i, ep in enumerate(s.endpoints))
    out.append("add rule %s %s numgen random mod %d vmap { %s }" % (TABLE, chain, len(s.endpoints), elems))
    return out


def ep_rules(s, p, ep):
    chain = ep_chain(s, p, ep)
    return ["add chain %s %s" % (TABLE, chain), "flush chain %s %s" % (TABLE, chain),
            "add rule %s %s ip saddr %s jump mark-for-masquerade" % (TABLE, chain, ep),
            "add rule %s %s meta l4proto tcp dnat to %s:%d" % (TABLE, chain, ep, p.target)]


def full(svcs, gate):
    out = header(gate)
    for s in svcs:
        for p in s.ports:
            # Endpoint chains first: the service chain's vmap refers to them.
            for ep in s.endpoints:
                out += ep_rules(s, p, ep)
            out += svc_rules(s, p)
            out.append("add element %s service-ips { %s . tcp . %d : goto %s }"
                       % (TABLE, s.cluster_ip, p.port, svc_chain(s, p)))
            if p.node_port:
                out += ext_rules(s, p)
                out.append("add element %s service-nodeports { tcp . %d : goto %s }"
                           % (TABLE, p.node_port, ext_chain(s, p)))
    return out + [""]


def change(s, old, new, stale):
    out = ["delete chain %s %s" % (TABLE, c) for c in stale]
    for p in s.ports:
        out += ep_rules(s, p, new)
        out += svc_rules(s, p)
        out.append("flush chain %s %s" % (TABLE, ep_chain(s, p, old)))
    return out + [""]


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
                         "and no gate on the jumps from the nat base chains (bench/nodeport.sh "
                         "loads one mode per cluster)")
    a = ap.parse_args()
    if a.nodeport:
        remote, local = a.nodeport.split(",")
        svcs = benchlib.nodeport_world("nftables", a.services, a.endpoints, remote, local)
        gate = None
    else:
        svcs = benchlib.world("nftables", a.services, a.endpoints, a.backends)
        gate = benchlib.MODE_BLOCK["nftables"]
    with open(a.out, "w") as f:
        f.write("\n".join(full(svcs, gate)))
    if a.changes:
        if not a.change_prefix:
            sys.exit("--changes needs --change-prefix")
        stale = []
        for c, (s, old, new) in enumerate(benchlib.change_plan(svcs, a.changes), 1):
            with open("%s%04d.nft" % (a.change_prefix, c), "w") as f:
                f.write("\n".join(change(s, old, new, stale)))
            stale = [ep_chain(s, p, old) for p in s.ports]


if __name__ == "__main__":
    main()
