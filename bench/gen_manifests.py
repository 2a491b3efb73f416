#!/usr/bin/env python3
"""Write the benchmark's services as Kubernetes manifests for switchyard's `source: files`.

Service (v1) and EndpointSlice (discovery.k8s.io/v1) objects shaped as
`kubectl get -o yaml` / `-o json` print them (keys sorted, server-set metadata present). Same world as gen_iptables.py / gen_nftables.py (see benchlib.py):
N - 1 synthetic services with M unanswered endpoints each, the control service "real-one"
(one endpoint), and the measured service "real" (the K backend pods), with ClusterIPs in
the switchyard block 198.19.253.0/24 for the two real services.

  --out FILE        everything in one multi-document YAML file
  --json-list FILE  everything as one JSON List (`kubectl get services,endpointslices -A
                    -o json`): for the files source at scale, and the fake API server's
                    --fixtures
  --out-dir DIR     one file per service (NAME.yaml: the Service and its EndpointSlice),
                    so that a change rewrites one small file
  --changes C --change-dir DIR
                    DIR/0001/NAME.yaml ...: the new content of the one file that each
                    one-endpoint change rewrites (same plan as the rule generators)
"""

import argparse
import hashlib
import json
import os
import re
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


def service_obj(s, rv):
    """The Service as `kubectl get -o json` shows it (server-set fields included)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "creationTimestamp": CREATED,
            "labels": {"app": s.name},
            "name": s.name,
            "namespace": s.namespace,
            "resourceVersion": str(rv),
            "uid": _uid("svc", s.namespace, s.name),
        },
        "spec": {
            "clusterIP": s.cluster_ip,
            "clusterIPs": [s.cluster_ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": p.name, "port": p.port, "protocol": "TCP", "targetPort": p.target}
                      for p in s.ports],
            "selector": {"app": s.name},
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }


def slice_name(s):
    return "%s-%s" % (s.name, _suffix(s.name))


def slice_obj(s, rv, node, trigger=CREATED):
    """The EndpointSlice of s as the endpointslice controller writes it. trigger is its
    endpoints.kubernetes.io/last-change-trigger-time (RFC 3339, fractions allowed), or None
    for none."""
    name = slice_name(s)
    obj = {
        "addressType": "IPv4",
        "apiVersion": "discovery.k8s.io/v1",
        "endpoints": [{
            "addresses": [ep],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": node,
            "targetRef": {"kind": "Pod", "name": "%s-%d" % (s.name, i), "namespace": s.namespace,
                          "uid": _uid("pod", s.name, ep)},
        } for i, ep in enumerate(s.endpoints)],
        "kind": "EndpointSlice",
        "metadata": {
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": trigger},
            "creationTimestamp": CREATED,
            "generateName": "%s-" % s.name,
            "generation": rv,
            "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                       "kubernetes.io/service-name": s.name},
            "name": name,
            "namespace": s.namespace,
            "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": True, "controller": True,
                                 "kind": "Service", "name": s.name,
                                 "uid": _uid("svc", s.namespace, s.name)}],
            "resourceVersion": str(rv + 1),
            "uid": _uid("slice", s.namespace, name),
        },
        "ports": [{"name": p.name, "port": p.target, "protocol": "TCP"} for p in s.ports],
    }
    if trigger is None:
        del obj["metadata"]["annotations"]
    return obj


_PLAIN = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_./-]*$")
_NUMBER_OR_DATE = re.compile(r"^([-+]?[0-9_]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|[0-9]{4}-[0-9]{2}-[0-9]{2}.*)$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if _PLAIN.match(v) and not _NUMBER_OR_DATE.match(v) and v.lower() not in _RESERVED:
        return v
    return json.dumps(v)  # a JSON string is a YAML double-quoted scalar


def to_yaml(v, indent=""):
    """Block YAML with sorted keys, as kubectl prints it (sigs.k8s.io/yaml)."""
    lines = []
    if isinstance(v, dict):
        for k in sorted(v):
            x = v[k]
            if isinstance(x, dict) and x:
                lines.append("%s%s:" % (indent, k))
                lines += to_yaml(x, indent + "  ")
            elif isinstance(x, list) and x:
                lines.append("%s%s:" % (indent, k))
                lines += to_yaml(x, indent)
            elif isinstance(x, (dict, list)):
                lines.append("%s%s: %s" % (indent, k, "{}" if isinstance(x, dict) else "[]"))
            else:
                lines.append("%s%s: %s" % (indent, k, _scalar(x)))
    else:  # a list: items at the parent key's indentation
        for x in v:
            if isinstance(x, dict) and x:
                sub = to_yaml(x, indent + "  ")
                lines.append(indent + "- " + sub[0][len(indent) + 2:])
                lines += sub[1:]
            else:
                lines.append("%s- %s" % (indent, _scalar(x)))
    return lines


def docs_for(s, rv, node):
    return ("---\n" + "\n".join(to_yaml(service_obj(s, rv))) + "\n---\n" +
            "\n".join(to_yaml(slice_obj(s, rv, node))) + "\n")


def json_list(svcs, node, rv=1000):
    """Everything as one List, as `kubectl get services,endpointslices -A -o json` prints it.

    The slices carry no last-change-trigger-time: switchyard observes every trigger time it
    is given in kubeproxy_network_programming_duration_seconds, also those older than its
    start (kube-proxy skips those), and a cold start from slices stamped long ago would add
    N observations of months, whose sum leaves the histogram's _sum a resolution of about
    0.1 ms (a double near 1e12 s); the per-change figures come from deltas of that sum."""
    items = []
    for s in svcs:
        items.append(service_obj(s, rv))
        items.append(slice_obj(s, rv, node, trigger=None))
        rv += 2
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, required=True, help="N, including the measured one")
    ap.add_argument("--endpoints", type=int, default=10, help="M endpoints per synthetic service")
    ap.add_argument("--backends", type=int, default=4, help="K real backend pods")
    ap.add_argument("--node-name", default="bench-node")
    ap.add_argument("--out")
    ap.add_argument("--out-dir")
    ap.add_argument("--json-list")
    ap.add_argument("--changes", type=int, default=0)
    ap.add_argument("--change-dir")
    a = ap.parse_args()
    if sum(1 for x in (a.out, a.out_dir, a.json_list) if x) != 1:
        sys.exit("give exactly one of --out, --out-dir and --json-list")
    svcs = benchlib.world("switchyard", a.services, a.endpoints, a.backends)
    rv = 1000
    if a.json_list:
        with open(a.json_list, "w") as f:
            json.dump(json_list(svcs, a.node_name, rv), f, separators=(",", ":"))
        rv += 2 * len(svcs)
    elif a.out:
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
