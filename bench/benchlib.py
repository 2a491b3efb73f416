"""Shared model of the benchmark's services, used by every rule/manifest generator.

One benchmark "world" for a given N and M is:
  * N - 1 synthetic services (namespace "bench", name "svc-NNNNN", one TCP port "http"),
    each with M endpoints in 198.18.128.0/17 that nothing answers;
  * "real-one": a control service with ONE endpoint (backend 0), ports http/80 and
    iperf/5201 (iperf3 needs its control and data connections on the same server);
  * "real": the measured service, ports http/80 and sockperf/11111, endpoints = the K
    backend pods. It is the LAST service in rule order (worst case for iptables, whose
    first-packet cost is a linear walk of KUBE-SERVICES).
So "N services" counts the measured one; the control service comes on top.

Each mode gets its own /24 for the two real services so that one mode's rules never see
another mode's traffic (see docs/benchmarks.md, "How modes share one node"):
  iptables 198.19.255.0/24, nftables 198.19.254.0/24, switchyard 198.19.253.0/24.
Synthetic ClusterIPs are 198.19.0.1 upwards and stay below 198.19.253.0.
"""

import base64
import hashlib
import ipaddress

CLUSTER_CIDR = "198.18.0.0/16"  # pods and the client: traffic from here is not masqueraded
SYNTH_EP_NET = ipaddress.ip_network("198.18.128.0/17")
SYNTH_EP_COUNT = 112 * 256 - 2  # 198.18.128.1 .. 198.18.239.254: synthetic endpoints
CHANGE_EP_BASE = ipaddress.ip_address("198.18.240.0")  # endpoints introduced by changes
SYNTH_VIP_BASE = ipaddress.ip_address("198.19.0.0")
SYNTH_VIPS = 253 * 256 - 1  # 198.19.0.1 .. 198.19.252.255, then the port varies
MODE_BLOCK = {
    "iptables": "198.19.255.0/24",
    "nftables": "198.19.254.0/24",
    "switchyard": "198.19.253.0/24",
}
NAMESPACE = "bench"
SYNTH_TARGET_PORT = 8080  # synthetic endpoints' port; + 1 each time their addresses wrap
HTTP_PORT, SOCKPERF_PORT, IPERF_PORT = 80, 11111, 5201


def backend_ips(k):
    """Pod IPs of the K real backends: 198.18.16.1 .. 198.18.16.K (pod range 198.18.16.0/20)."""
    return [str(ipaddress.ip_address("198.18.16.1") + i) for i in range(k)]


def vip(mode, host):
    net = ipaddress.ip_network(MODE_BLOCK[mode])
    return str(net.network_address + host)


class Port:
    def __init__(self, name, port, target, node_port=None):
        self.name, self.port, self.target, self.protocol = name, port, target, "TCP"
        self.node_port = node_port  # None: no NodePort (a ClusterIP service)


class Service:
    def __init__(self, name, cluster_ip, ports, endpoints):
        self.namespace = NAMESPACE
        self.name = name
        self.cluster_ip = cluster_ip
        self.ports = ports
        self.endpoints = list(endpoints)  # pod IPs; every port maps to every endpoint

    def port_name(self, port):
        """kube-proxy's ServicePortName.String(): "namespace/name:port"."""
        return "%s/%s:%s" % (self.namespace, self.name, port.name)


def synthetic(i, m):
    """The i-th synthetic service (0-based).

    Its endpoints take the next M of the 28,670 synthetic addresses; once they wrap, the
    target port moves on (8080, 8081, ...), so that backends (address, port) stay distinct
    at any N, as pods of different services are in a real cluster."""
    slot = i % SYNTH_VIPS
    ip = str(SYNTH_VIP_BASE + slot + 1)
    port = HTTP_PORT + i // SYNTH_VIPS
    target = SYNTH_TARGET_PORT + (i * m) // SYNTH_EP_COUNT
    eps = []
    for j in range(m):
        idx = (i * m + j) % SYNTH_EP_COUNT + 1
        eps.append(str(SYNTH_EP_NET.network_address + idx))
    return Service("svc-%05d" % i, ip, [Port("http", port, target)], eps)


def world(mode, n, m, k):
    """All services in rule order: synthetic ones, the control service, the measured one last."""
    if n < 1:
        raise ValueError("need at least one service (the measured one)")
    bes = backend_ips(k)
    svcs = [synthetic(i, m) for i in range(n - 1)]
    svcs.append(Service("real-one", vip(mode, 2),
                        [Port("http", HTTP_PORT, HTTP_PORT), Port("iperf", IPERF_PORT, IPERF_PORT)],
                        bes[:1]))
    svcs.append(Service("real", vip(mode, 1),
                        [Port("http", HTTP_PORT, HTTP_PORT),
                         Port("sockperf", SOCKPERF_PORT, SOCKPERF_PORT)],
                        bes))
    return svcs


# The NodePort benchmark (bench/nodeport.sh, on tests/e2e/lib_multinode.sh's two nodes): two
# type=NodePort services of one endpoint each, on ports http/80 and iperf/5201 (iperf3's control
# and data connections must reach the same server), their NodePorts below.
NODEPORTS = {"np-local": {"http": 30081, "iperf": 30202},
             "np-remote": {"http": 30080, "iperf": 30201}}


def nodeport_world(mode, n, m, remote_ep, local_ep):
    """N - 1 synthetic ClusterIP services, then "np-local" (its endpoint on the node whose
    NodePort is measured) and "np-remote" (its endpoint on the other node), the measured
    services last in rule order as in world(). ClusterIPs: hosts .1 and .2 of the mode's /24."""
    if n < 1:
        raise ValueError("need at least one service (the measured one)")
    svcs = [synthetic(i, m) for i in range(n - 1)]
    for name, host, ep in (("np-local", 2, local_ep), ("np-remote", 1, remote_ep)):
        nps = NODEPORTS[name]
        svcs.append(Service(name, vip(mode, host),
                            [Port("http", HTTP_PORT, HTTP_PORT, nps["http"]),
                             Port("iperf", IPERF_PORT, IPERF_PORT, nps["iperf"])], [ep]))
    return svcs


def change_plan(svcs, count):
    """A deterministic sequence of one-endpoint changes: change c replaces endpoint 0 of one
    synthetic service (round robin; the control service when N = 1) with a new address.
    Yields (service, old_ip, new_ip) and mutates the services as it goes."""
    targets = [s for s in svcs if s.name.startswith("svc-")] or [svcs[-2]]
    for c in range(count):
        s = targets[c % len(targets)]
        old = s.endpoints[0]
        new = str(CHANGE_EP_BASE + (c % 3000) + 1)
        if new == old:
            new = str(CHANGE_EP_BASE + 3001)
        s.endpoints[0] = new
        yield s, old, new


def b32hash(text, length):
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode()[:length]
