#!/usr/bin/env python3
"""Write the benchmark's services as Kubernetes manifests for switchyard's `source: files`.

Service (v1) and EndpointSlice (discovery.k8s.io/v1) documents shaped as
`kubectl get -o yaml` prints them (keys sorted, server-set metadata present), as
multi-document YAML. Same world as gen_iptables.py / gen_nftables.py (see benchlib.py):
N - 1 synthetic services with M unanswered endpoints each, the control service "real-one"
(one endpoint), and the measured service "real" (the K backend pods), with ClusterIPs in
the switchyard block 198.19.253.0/24 for the two real services.

  --out FILE        everything in one file
  --out-dir DIR     one file per service (NAME.yaml: the Service and its EndpointSlice),
                    so that a change rewrites one small file
  --changes C --change-dir DIR
                    DIR/0001/NAME.yaml ...: the new content of the one file that each
                    one-endpoint change rewrites (same plan as the rule generators)
"""

import argparse
import hashlib
import os
import sys
import uuid

import benchlib

CREATED = "2025-01-01T00:00:00Z"


def _uid(*parts):
    return str(uuid.UUID(hashlib.md5("/".join(parts).encode()).hexdigest()))


def _suffix(name):
    # Like the endpointslice controller's generateName suffix: 5 lowercase alphanumerics.
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    h = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    out = ""
    for _ in range(5):
        h, r = divmod(h, len(alphabet))
        out += alphabet[r]
    return out


def service_yaml(s, rv):
    lines = [
        "apiVersion: v1",
        "kind: Service",
        "metadata:",
        '  creationTimestamp: "%s"' % CREATED,
        "  labels:",
        "    app: %s" % s.name,
        "  name: %s" % s.name,
        "  namespace: %s" % s.namespace,
        '  resourceVersion: "%d"' % rv,
        "  uid: %s" % _uid("svc", s.namespace, s.name),
        "spec:",
        "  clusterIP: %s" % s.cluster_ip,
        "  clusterIPs:",
        "  - %s" % s.cluster_ip,
        "  internalTrafficPolicy: Cluster",
        "  ipFamilies:",
        "  - IPv4",
        "  ipFamilyPolicy: SingleStack",
        "  ports:",
    ]
    for p in s.ports:
        lines += ["  - name: %s" % p.name, "    port: %d" % p.port, "    protocol: TCP",
                  "    targetPort: %d" % p.target]
    lines += ["  selector:", "    app: %s" % s.name, "  sessionAffinity: None", "  type: ClusterIP",
              "status:", "  loadBalancer: {}"]
    return lines


def slice_yaml(s, rv, node):
    lines = ["addressType: IPv4", "apiVersion: discovery.k8s.io/v1", "endpoints:"]
    for i, ep in enumerate(s.endpoints):
        lines += ["- addresses:", "  - %s" % ep, "  conditions:", "    ready: true",
                  "    serving: true", "    terminating: false", "  nodeName: %s" % node,
                  "  targetRef:", "    kind: Pod", "    name: %s-%d" % (s.name, i),
                  "    namespace: %s" % s.namespace, "    uid: %s" % _uid("pod", s.name, ep)]
    name = "%s-%s" % (s.name, _suffix(s.name))
    lines += [
        "kind: EndpointSlice",
        "metadata:",
        "  annotations:",
        '    endpoints.kubernetes.io/last-change-trigger-time: "%s"' % CREATED,
        '  creationTimestamp: "%s"' % CREATED,
        "  generateName: %s-" % s.name,
        "  generation: %d" % rv,
        "  labels:",
        "    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io",
        "    kubernetes.io/service-name: %s" % s.name,
        "  name: %s" % name,
        "  namespace: %s" % s.namespace,
        "  ownerReferences:",
        "  - apiVersion: v1",
        "    blockOwnerDeletion: true",
        "    controller: true",
        "    kind: Service",
        "    name: %s" % s.name,
        "    uid: %s" % _uid("svc", s.namespace, s.name),
        '  resourceVersion: "%d"' % (rv + 1),
        "  uid: %s" % _uid("slice", s.namespace, name),
        "ports:",
    ]
    for p in s.ports:
        lines += ["- name: %s" % p.name, "  port: %d" % p.target, "  protocol: TCP"]
    return lines


def docs_for(s, rv, node):
    return "---\n" + "\n".join(service_yaml(s, rv)) + "\n---\n" + "\n".join(slice_yaml(s, rv, node)) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, required=True, help="N, including the measured one")
    ap.add_argument("--endpoints", type=int, default=10, help="M endpoints per synthetic service")
    ap.add_argument("--backends", type=int, default=4, help="K real backend pods")
    ap.add_argument("--node-name", default="bench-node")
    ap.add_argument("--out")
    ap.add_argument("--out-dir")
    ap.add_argument("--changes", type=int, default=0)
    ap.add_argument("--change-dir")
    a = ap.parse_args()
    if bool(a.out) == bool(a.out_dir):
        sys.exit("give exactly one of --out and --out-dir")
    svcs = benchlib.world("switchyard", a.services, a.endpoints, a.backends)
    rv = 1000
    if a.out:
        with open(a.out, "w") as f:
            for s in svcs:
                f.write(docs_for(s, rv, a.node_name))
                rv += 2
    else:
        os.makedirs(a.out_dir, exist_ok=True)
        for s in svcs:
            with open(os.path.join(a.out_dir, s.name + ".yaml"), "w") as f:
                f.write(docs_for(s, rv, a.node_name))
            rv += 2
    if a.changes:
        if not a.change_dir:
            sys.exit("--changes needs --change-dir")
        for c, (s, _old, _new) in enumerate(benchlib.change_plan(svcs, a.changes), 1):
            d = os.path.join(a.change_dir, "%04d" % c)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, s.name + ".yaml"), "w") as f:
                f.write(docs_for(s, rv, a.node_name))
            rv += 2


if __name__ == "__main__":
    main()
