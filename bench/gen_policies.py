#!/usr/bin/env python3
"""bench/gen_policies.py: the NetworkPolicy benchmark's objects (bench/policy.sh).

  gen_policies.py OUT.yaml RULES CLIENT_IP4 CLIENT_NODE SERVER_IP4 SERVER_NODE

Namespaces bench and other, the pods bench/client and bench/server (addresses and nodes as
given), and RULES NetworkPolicies that select the server, each with one ingress rule: the
first allows the client on the measured ports (TCP 8080, 5201), the others allow pods of
namespace `other` with label peer=pI on TCP port 10000 + I. RULES = 0 writes no policy (the
server is then open). Every policy selects the measured pod, so its ingress rules map holds
about RULES entries and each of its new flows is judged among them."""
import sys


def main(argv):
    if len(argv) != 7:
        sys.exit(__doc__)
    out, rules, cip, cnode, sip, snode = argv[1], int(argv[2]), argv[3], argv[4], argv[5], argv[6]
    docs = []
    for ns in ("bench", "other"):
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{kubernetes.io/metadata.name: {ns}}}}}\n")
    for name, ip, node in (("client", cip, cnode), ("server", sip, snode)):
        docs.append(
            "apiVersion: v1\nkind: Pod\n"
            f"metadata: {{namespace: bench, name: {name}, labels: {{app: {name}}}}}\n"
            f"spec: {{nodeName: {node}, containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]}}\n"
            f"status: {{phase: Running, podIP: {ip}, podIPs: [{{ip: {ip}}}]}}\n")
    for i in range(rules):
        if i == 0:
            peer = "{podSelector: {matchLabels: {app: client}}}"
            ports = "[{protocol: TCP, port: 8080}, {protocol: TCP, port: 5201}]"
        else:
            peer = f"{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: other}}}}, podSelector: {{matchLabels: {{peer: p{i}}}}}}}"
            ports = f"[{{protocol: TCP, port: {10000 + i}}}]"
        docs.append(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{namespace: bench, name: p{i}}}\n"
            "spec:\n  podSelector: {matchLabels: {app: server}}\n  policyTypes: [Ingress]\n"
            f"  ingress:\n  - from: [{peer}]\n    ports: {ports}\n")
    # A peer pod per rule, so every rule names a real identity (pods of namespace other,
    # on no node of the benchmark: they are peers, never endpoints).
    for i in range(1, rules):
        a = 10 + (i >> 8)
        docs.append(
            "apiVersion: v1\nkind: Pod\n"
            f"metadata: {{namespace: other, name: p{i}, labels: {{peer: p{i}}}}}\n"
            f"spec: {{nodeName: elsewhere, containers: [{{name: c}}]}}\n"
            f"status: {{phase: Running, podIP: 198.19.{a}.{i & 255}, podIPs: [{{ip: 198.19.{a}.{i & 255}}}]}}\n")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("---\n".join(docs))
    import os
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv)
