#!/usr/bin/env python3
"""The YAML files of the multi-node cluster in a box (tests/e2e/lib_multinode.sh).

Called by lib_multinode_manifests.sh, never by tests directly:

  service NAME RV KEY=VALUE...                 a Service, as `kubectl get -o yaml` prints it
  slice NAME SERVICE FAMILY PORTS RV CONTEXT ENDPOINT...   an EndpointSlice
  node INDEX RV CONTEXT ZONE TAINTS DELETING   a Node
  config DEFAULTS EXTRA...                     the daemon's configuration: DEFAULTS (YAML)
                                               deep-merged with each EXTRA (YAML) in turn

Prints the document on stdout. A bad argument exits 2 with one line on stderr naming the
argument and what it must be; the shell wrapper turns that into sy_fail.

kubectl's layout: keys sorted, lists not indented under their key, `{}` for empty objects,
strings double-quoted only where YAML would read them as something else ("1001", timestamps).
"""

import hashlib
import json
import re
import sys

NAMESPACE = "default"
CREATED = "2024-01-01T00:00:00Z"
DELETED = "2024-01-01T01:00:00Z"
PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
TRAFFIC_POLICIES = ("Cluster", "Local")
FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")
IP_MODES = ("VIP", "Proxy")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# ready, serving, terminating for each endpoint state (the conditions kube-proxy reads).
ENDPOINT_STATES = {
    "ready": (True, True, False),
    "notready": (False, False, False),
    "terminating": (False, True, True),  # serving while terminating: kube-proxy's fallback
    "terminating-notserving": (False, False, True),
}


class Usage(Exception):
    pass


def uid(text):
    """The same stable uid as lib_manifests.sh's sy__uid: md5 of "Kind/namespace/name"."""
    h = hashlib.md5(text.encode()).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# ---------------------------------------------------------------------------------------------
# The emitter

# Plain (unquoted) only with these characters, not starting with "-" (a list item) nor ending
# with ":" (a key).
_PLAIN = re.compile(r"[A-Za-z0-9/._][A-Za-z0-9/._:+-]*(?<!:)\Z")
# What a YAML 1.1 reader (PyYAML's implicit resolvers, go-yaml's) takes for something other
# than a string: such strings are quoted. Written out rather than asking PyYAML, so that the
# manifests need no import beyond the standard library (python3 -S starts twice as fast).
_NOT_A_STRING = re.compile(r"""(?x)
    (?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|y|Y|n|N)
  | (?:~|null|Null|NULL)
  | [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
  | \.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
  | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
  | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
  | [-+]?0b[0-1_]+ | [-+]?0o[0-7_]+ | [-+]?0x[0-9a-fA-F_]+ | [-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
  | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
      (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?
  | <<|=
""")


def _scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list) and not value:
        return "[]"
    text = str(value)
    if _PLAIN.match(text) and not _NOT_A_STRING.fullmatch(text):
        return text
    return json.dumps(text)


def _lines(value, indent):
    pad = " " * indent
    out = []
    if isinstance(value, dict):
        for key in sorted(value):
            item = value[key]
            if isinstance(item, dict) and item:
                out.append(f"{pad}{key}:")
                out += _lines(item, indent + 2)
            elif isinstance(item, list) and item:
                out.append(f"{pad}{key}:")
                out += _lines(item, indent)  # kubectl: "- " at the key's own indent
            else:
                out.append(f"{pad}{key}: {_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub = _lines(item, indent + 2)
                sub[0] = f"{pad}- {sub[0][indent + 2:]}"
                out += sub
            else:
                out.append(f"{pad}- {_scalar(item)}")
    return out


def emit(document):
    return "\n".join(_lines(document, 0)) + "\n"


# ---------------------------------------------------------------------------------------------
# Arguments

def _family(address):
    return "IPv6" if ":" in address else "IPv4"


def _number(text, what, low, high):
    if not re.fullmatch(r"[0-9]+", text or "") or not low <= int(text) <= high:
        raise Usage(f"{what}: '{text}' must be a number in {low}..{high}")
    return int(text)


def _one_of(text, what, allowed):
    if text not in allowed:
        raise Usage(f"{what}: '{text}' must be one of {', '.join(allowed)}")
    return text


def _list(text):
    return [part for part in text.split(",") if part]


def _boolean(text, what):
    if text not in ("true", "false"):
        raise Usage(f"{what}: '{text}' must be true or false")
    return text == "true"


def _metadata(name, rv, kind, labels=None, annotations=None):
    meta = {
        "creationTimestamp": CREATED,
        "name": name,
        "namespace": NAMESPACE,
        "resourceVersion": rv,
        "uid": uid(f"{kind}/{NAMESPACE}/{name}"),
    }
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return meta


# ---------------------------------------------------------------------------------------------
# Service

SERVICE_KEYS = (
    "clusterIP", "type", "port", "externalIPs", "lbIngress", "externalTrafficPolicy",
    "healthCheckNodePort", "internalTrafficPolicy", "sessionAffinity", "affinityTimeout",
    "sourceRanges", "ipFamilyPolicy", "trafficDistribution", "allocateLoadBalancerNodePorts",
    "annotation", "label",
)


def _service_port(text, svc_type):
    parts = text.split(",")
    if not 3 <= len(parts) <= 5:
        raise Usage(f"port={text}: must be NAME,PORT,TARGETPORT[,PROTO[,NODEPORT]]")
    port = {"port": _number(parts[1], f"port={text}: PORT", 1, 65535)}
    if parts[0]:
        port["name"] = parts[0]
    target = parts[2]
    port["targetPort"] = int(target) if re.fullmatch(r"[0-9]+", target) else target
    if isinstance(port["targetPort"], int):
        _number(target, f"port={text}: TARGETPORT", 1, 65535)
    elif not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", target):
        raise Usage(f"port={text}: TARGETPORT '{target}' must be a number or a port name")
    port["protocol"] = _one_of(parts[3] if len(parts) > 3 and parts[3] else "TCP",
                               f"port={text}: PROTO", PROTOCOLS)
    if len(parts) > 4 and parts[4]:
        if svc_type == "ClusterIP":
            raise Usage(f"port={text}: a nodePort needs type=NodePort or type=LoadBalancer")
        port["nodePort"] = _number(parts[4], f"port={text}: NODEPORT", 1, 65535)
    return port


def _pairs(values, what):
    out = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise Usage(f"{what}={text}: must be KEY=VALUE")
        out[key] = value
    return out


def service(name, rv, args):
    opts = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in SERVICE_KEYS:
            raise Usage(f"'{arg}': must be KEY=VALUE with KEY one of {', '.join(SERVICE_KEYS)}")
        if key in ("port", "annotation", "label"):
            opts.setdefault(key, []).append(value)
        elif key in opts:
            raise Usage(f"{key}= given twice")
        else:
            opts[key] = value

    svc_type = _one_of(opts.get("type", "ClusterIP"), "type", SERVICE_TYPES)
    if "clusterIP" not in opts:
        raise Usage("clusterIP= is required (one address, two for dual-stack, or None)")
    cluster_ips = _list(opts["clusterIP"])
    headless = cluster_ips == ["None"]
    if not headless and not 1 <= len(cluster_ips) <= 2:
        raise Usage(f"clusterIP={opts['clusterIP']}: must be one or two addresses")
    families = ["IPv4"] if headless else [_family(ip) for ip in cluster_ips]
    if len(set(families)) != len(families):
        raise Usage(f"clusterIP={opts['clusterIP']}: two addresses must be one IPv4 and one IPv6")
    if not opts.get("port"):
        raise Usage("port=NAME,PORT,TARGETPORT[,PROTO[,NODEPORT]] is required at least once")
    ports = [_service_port(p, svc_type) for p in opts["port"]]
    if len(ports) > 1 and any("name" not in p for p in ports):
        raise Usage("a Service with several ports needs a NAME for each (port=NAME,...)")

    spec = {
        "clusterIP": cluster_ips[0],
        "clusterIPs": cluster_ips,
        "internalTrafficPolicy": _one_of(opts.get("internalTrafficPolicy", "Cluster"),
                                         "internalTrafficPolicy", TRAFFIC_POLICIES),
        "ipFamilies": families,
        "ipFamilyPolicy": _one_of(
            opts.get("ipFamilyPolicy", "RequireDualStack" if len(families) == 2 else "SingleStack"),
            "ipFamilyPolicy", FAMILY_POLICIES),
        "ports": ports,
        "selector": {"app": name},
        "sessionAffinity": _one_of(opts.get("sessionAffinity", "None"), "sessionAffinity",
                                   ("None", "ClientIP")),
        "type": svc_type,
    }
    if spec["sessionAffinity"] == "ClientIP":
        timeout = _number(opts.get("affinityTimeout", "10800"), "affinityTimeout", 1, 86400)
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": timeout}}
    elif "affinityTimeout" in opts:
        raise Usage("affinityTimeout= needs sessionAffinity=ClientIP")

    external = svc_type in ("NodePort", "LoadBalancer")
    if "externalIPs" in opts:
        spec["externalIPs"] = _list(opts["externalIPs"])
    # The API server defaults externalTrafficPolicy to Cluster for NodePort and LoadBalancer
    # Services only; on others it is shown only when set.
    if external or "externalTrafficPolicy" in opts:
        spec["externalTrafficPolicy"] = _one_of(opts.get("externalTrafficPolicy", "Cluster"),
                                                "externalTrafficPolicy", TRAFFIC_POLICIES)
    if svc_type == "LoadBalancer":
        allocate = _boolean(opts.get("allocateLoadBalancerNodePorts", "true"),
                            "allocateLoadBalancerNodePorts")
        spec["allocateLoadBalancerNodePorts"] = allocate
        if spec["externalTrafficPolicy"] == "Local":
            if "healthCheckNodePort" not in opts:
                raise Usage("type=LoadBalancer with externalTrafficPolicy=Local needs "
                            "healthCheckNodePort= (the API server would allocate one)")
    elif "allocateLoadBalancerNodePorts" in opts:
        raise Usage("allocateLoadBalancerNodePorts= needs type=LoadBalancer")
    if "healthCheckNodePort" in opts:
        if svc_type != "LoadBalancer" or spec["externalTrafficPolicy"] != "Local":
            raise Usage("healthCheckNodePort= needs type=LoadBalancer and externalTrafficPolicy=Local")
        spec["healthCheckNodePort"] = _number(opts["healthCheckNodePort"], "healthCheckNodePort", 1, 65535)
    allocates = svc_type == "NodePort" or (svc_type == "LoadBalancer" and spec["allocateLoadBalancerNodePorts"])
    if allocates and any("nodePort" not in p for p in ports):
        raise Usage(f"type={svc_type}: every port needs its NODEPORT (port=NAME,PORT,TARGET,PROTO,NODEPORT), "
                    "as the API server would have allocated one")
    if "sourceRanges" in opts:
        spec["loadBalancerSourceRanges"] = _list(opts["sourceRanges"])
    if "trafficDistribution" in opts:
        spec["trafficDistribution"] = _one_of(opts["trafficDistribution"], "trafficDistribution",
                                              TRAFFIC_DISTRIBUTIONS)

    status = {"loadBalancer": {}}
    if "lbIngress" in opts:
        if svc_type != "LoadBalancer":
            raise Usage("lbIngress= needs type=LoadBalancer")
        ingress = []
        for entry in _list(opts["lbIngress"]):
            ip, _, mode = entry.partition("@")
            item = {"ip": ip}
            if mode:
                item["ipMode"] = _one_of(mode, f"lbIngress {entry}: MODE", IP_MODES)
            ingress.append(item)
        status["loadBalancer"] = {"ingress": ingress}

    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, rv, "Service", _pairs(opts.get("label", []), "label"),
                              _pairs(opts.get("annotation", []), "annotation")),
        "spec": spec,
        "status": status,
    }


# ---------------------------------------------------------------------------------------------
# EndpointSlice

ENDPOINT_KEYS = ("zone", "forZones", "forNodes", "nodeName", "ready", "serving", "terminating")


def _slice_ports(text):
    ports = []
    for entry in _list(text):
        m = re.fullmatch(r"([a-z0-9-]*):([0-9]+)/([A-Z]+)", entry)
        if not m:
            raise Usage(f"PORTS {text}: '{entry}' must be NAME:PORT/PROTO (NAME may be empty)")
        ports.append({"name": m.group(1),
                      "port": _number(m.group(2), f"PORTS {entry}: PORT", 1, 65535),
                      "protocol": _one_of(m.group(3), f"PORTS {entry}: PROTO", PROTOCOLS)})
    if not ports:
        raise Usage("PORTS must name at least one port (NAME:PORT/PROTO)")
    return ports


def _endpoint(text, family, context):
    pod, *options = text.split(":")
    where = context["pods"].get(pod)
    if where is None:
        raise Usage(f"endpoint '{text}': '{pod}' is not a pod (n<I>p<J>) or node (node-<I>) "
                    f"of this cluster; known: {', '.join(sorted(context['pods']))}")
    ready, serving, terminating = ENDPOINT_STATES["ready"]
    node = where["node"]
    zone = context["zones"].get(node, "")
    hints = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            if key not in ENDPOINT_STATES:
                raise Usage(f"endpoint '{text}': state '{key}' must be one of {', '.join(ENDPOINT_STATES)}")
            ready, serving, terminating = ENDPOINT_STATES[key]
            continue
        if key not in ENDPOINT_KEYS:
            raise Usage(f"endpoint '{text}': '{option}' must be a state or KEY=VALUE with KEY one of "
                        f"{', '.join(ENDPOINT_KEYS)}")
        if key == "zone":
            zone = value
        elif key == "nodeName":
            node = value
        elif key in ("forZones", "forNodes"):
            hints[key] = [{"name": name} for name in value.split("+") if name]
        elif key == "ready":
            ready = _boolean(value, f"endpoint '{text}': ready")
        elif key == "serving":
            serving = _boolean(value, f"endpoint '{text}': serving")
        else:
            terminating = _boolean(value, f"endpoint '{text}': terminating")
    endpoint = {
        "addresses": [where["ip4" if family == "IPv4" else "ip6"]],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    if node:
        endpoint["nodeName"] = node
    if zone:
        endpoint["zone"] = zone
    if hints:
        endpoint["hints"] = hints
    if where.get("pod"):
        endpoint["targetRef"] = {"kind": "Pod", "name": pod, "namespace": NAMESPACE,
                                 "uid": uid(f"Pod/{NAMESPACE}/{pod}")}
    return endpoint


def endpoint_slice(name, svc, family, ports, rv, context, endpoints):
    _one_of(family, "FAMILY", ("IPv4", "IPv6"))
    meta = _metadata(name, rv, "EndpointSlice", {
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        "kubernetes.io/service-name": svc,
    })
    meta["generateName"] = f"{svc}-"
    meta["generation"] = 1
    meta["ownerReferences"] = [{"apiVersion": "v1", "blockOwnerDeletion": True, "controller": True,
                                "kind": "Service", "name": svc,
                                "uid": uid(f"Service/{NAMESPACE}/{svc}")}]
    return {
        "addressType": family,
        "apiVersion": "discovery.k8s.io/v1",
        # kubectl shows a slice without endpoints as `endpoints: null`
        "endpoints": [_endpoint(e, family, context) for e in endpoints] or None,
        "kind": "EndpointSlice",
        "metadata": meta,
        "ports": _slice_ports(ports),
    }


# ---------------------------------------------------------------------------------------------
# Node

def node(index, rv, context, zone, taints, deleting):
    info = context["nodes"].get(index)
    if info is None:
        raise Usage(f"node {index}: not a node of this cluster (1..{len(context['nodes'])})")
    name = info["name"]
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    meta = _metadata(name, rv, "Node", labels)
    del meta["namespace"]  # Nodes are cluster-scoped
    meta["uid"] = uid(f"Node//{name}")
    if deleting:
        meta["deletionTimestamp"] = DELETED
    spec = {"podCIDR": info["podCIDR4"], "podCIDRs": [info["podCIDR4"], info["podCIDR6"]]}
    parsed = []
    for taint in _list(taints):
        m = re.fullmatch(r"([A-Za-z0-9./_-]+)(?:=([A-Za-z0-9._-]*))?:([A-Za-z]+)", taint)
        if not m:
            raise Usage(f"TAINT '{taint}' must be KEY[=VALUE]:EFFECT")
        item = {"key": m.group(1), "effect": _one_of(m.group(3), f"TAINT {taint}: EFFECT", TAINT_EFFECTS)}
        if m.group(2) is not None:
            item["value"] = m.group(2)
        parsed.append(item)
    if parsed:
        spec["taints"] = parsed
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta,
        "spec": spec,
        "status": {"addresses": [{"address": info["ip4"], "type": "InternalIP"},
                                 {"address": info["ip6"], "type": "InternalIP"},
                                 {"address": name, "type": "Hostname"}]},
    }


# ---------------------------------------------------------------------------------------------
# Daemon configuration

def _merge(base, extra, path):
    if not isinstance(extra, dict):
        raise Usage(f"extra configuration{path or ''}: must be a YAML mapping, got {extra!r}")
    for key, value in extra.items():
        where = f"{path}.{key}" if path else key
        if value is None:
            base.pop(key, None)  # `key: null` drops a default
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, where)
        else:
            base[key] = value
    return base


def config(defaults, extras):
    import yaml  # only here: the manifests need nothing beyond the standard library

    merged = yaml.safe_load(defaults)
    for extra in extras:
        try:
            parsed = yaml.safe_load(extra)
        except yaml.YAMLError as error:
            raise Usage(f"extra configuration is not YAML: {error}".replace("\n", " "))
        if parsed is not None:
            _merge(merged, parsed, "")
    return yaml.safe_dump(merged, sort_keys=False, default_flow_style=False)


def main(argv):
    if len(argv) < 2:
        raise Usage("usage: lib_multinode_manifests.py service|slice|node|config ARGS...")
    kind, args = argv[1], argv[2:]
    if kind == "service" and len(args) >= 2:
        return emit(service(args[0], args[1], args[2:]))
    if kind == "slice" and len(args) >= 6:
        return emit(endpoint_slice(args[0], args[1], args[2], args[3], args[4], json.loads(args[5]), args[6:]))
    if kind == "node" and len(args) == 6:
        return emit(node(args[0], args[1], json.loads(args[2]), args[3], args[4], args[5] == "deleting"))
    if kind == "config" and len(args) >= 1:
        return config(args[0], args[1:])
    raise Usage(f"bad arguments for {kind}: {' '.join(args)}")


if __name__ == "__main__":
    try:
        sys.stdout.write(main(sys.argv))
    except Usage as problem:
        print(problem, file=sys.stderr)
        sys.exit(2)
