// Typed Kubernetes objects: only the fields switchyard reads. Filled by decode.h from JSON
// (API server) or from YAML converted to JSON (manifest files); consumed by lb/.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace switchyard::k8s {

struct ObjectMeta {
  std::string namespace_;  // "default" when a manifest omits it
  std::string name;
  std::string uid;
  std::string resourceVersion;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  bool deleting = false;  // metadata.deletionTimestamp set

  std::string key() const { return namespace_ + "/" + name; }
};

enum class Protocol : uint8_t { TCP, UDP, SCTP };

// A Service port's targetPort: a number or a name (IntOrString).
struct IntOrString {
  std::optional<int32_t> number;
  std::string name;  // set when the value is a string
};

struct ServicePort {
  std::string name;
  Protocol protocol = Protocol::TCP;
  int32_t port = 0;
  IntOrString targetPort;
  int32_t nodePort = 0;  // 0 = none
};

struct Service {
  ObjectMeta metadata;
  std::string type = "ClusterIP";  // ClusterIP | NodePort | LoadBalancer | ExternalName
  std::string clusterIP;           // "None" for headless
  std::vector<std::string> clusterIPs;
  std::vector<ServicePort> ports;
  std::vector<std::string> externalIPs;
  std::string sessionAffinity = "None";  // None | ClientIP
  int32_t sessionAffinityTimeoutSeconds = 10800;
  std::string externalTrafficPolicy;     // Cluster | Local ("" = Cluster)
  std::string internalTrafficPolicy;     // Cluster | Local ("" = Cluster)
  std::string trafficDistribution;
  int32_t healthCheckNodePort = 0;
  // status.loadBalancer.ingress[] entries with an ip (hostname-only entries are dropped).
  struct Ingress {
    std::string ip;
    std::string ipMode;  // "" (= VIP), VIP or Proxy: a Proxy LB sends to the node, not the IP
  };
  std::vector<Ingress> loadBalancerIngress;
  std::vector<std::string> loadBalancerSourceRanges;
};

struct EndpointConditions {
  std::optional<bool> ready;        // nil = ready
  std::optional<bool> serving;      // nil = same as ready
  std::optional<bool> terminating;  // nil = not terminating
};

struct Endpoint {
  std::vector<std::string> addresses;
  EndpointConditions conditions;
  std::string nodeName;
  std::string zone;
  std::vector<std::string> hintsForZones;
  std::vector<std::string> hintsForNodes;
};

struct EndpointPort {
  std::string name;  // "" when unnamed; matches the Service port's name
  Protocol protocol = Protocol::TCP;
  std::optional<int32_t> port;  // nil = all ports (not proxied)
};

struct EndpointSlice {
  ObjectMeta metadata;
  std::string addressType;  // IPv4 | IPv6 | FQDN
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;
  // endpoints.kubernetes.io/last-change-trigger-time: when the change this slice carries
  // happened (the start of kube-proxy's network programming latency); nil if absent.
  std::optional<std::chrono::system_clock::time_point> lastChangeTriggerTime;

  // The owning Service's name, from the kubernetes.io/service-name label; "" if absent.
  std::string serviceName() const {
    auto it = metadata.labels.find("kubernetes.io/service-name");
    return it == metadata.labels.end() ? std::string() : it->second;
  }
};

struct Node {
  ObjectMeta metadata;
  struct Taint {
    std::string key, value, effect;
  };
  std::vector<Taint> taints;
};

// --- NetworkPolicy, Pod, Namespace: what policy/ reads (networking.k8s.io/v1, v1) ---

// metav1.LabelSelector. An empty selector matches everything; a selector that is absent
// (std::optional empty where it is optional) is a different thing, see NetworkPolicyPeer.
struct LabelSelectorRequirement {
  std::string key;
  std::string op;  // In | NotIn | Exists | DoesNotExist
  std::vector<std::string> values;
};
struct LabelSelector {
  std::map<std::string, std::string> matchLabels;
  std::vector<LabelSelectorRequirement> matchExpressions;
};

struct ContainerPort {
  std::string name;  // "" when unnamed; a NetworkPolicy's named port resolves against it
  Protocol protocol = Protocol::TCP;
  int32_t containerPort = 0;
};

// Only the fields policy needs, to bound memory at every pod of the cluster.
struct Pod {
  ObjectMeta metadata;
  std::string nodeName;
  bool hostNetwork = false;         // such a pod has the node's address: not a policy endpoint
  std::vector<std::string> podIPs;  // status.podIPs (or status.podIP)
  std::vector<ContainerPort> ports; // every container's ports
  std::string phase;                // status.phase: Succeeded/Failed pods hold no address
};

struct Namespace {
  ObjectMeta metadata;  // labels include kubernetes.io/metadata.name (set by the decoder if absent)
};

struct NetworkPolicyPort {
  Protocol protocol = Protocol::TCP;   // the API server defaults it to TCP
  std::optional<IntOrString> port;     // absent: every port of the protocol
  std::optional<int32_t> endPort;      // with a numeric port: the range port..endPort
};

struct IPBlock {
  std::string cidr;
  std::vector<std::string> except;
};

// One of from[]/to[]: ipBlock alone, or podSelector and/or namespaceSelector (both: AND).
struct NetworkPolicyPeer {
  std::optional<LabelSelector> podSelector;
  std::optional<LabelSelector> namespaceSelector;
  std::optional<IPBlock> ipBlock;
};

// One ingress or egress rule: traffic matching any peer (none listed: every peer) AND any
// port (none listed: every port and protocol).
struct NetworkPolicyRule {
  std::vector<NetworkPolicyPort> ports;
  std::vector<NetworkPolicyPeer> peers;
};

struct NetworkPolicy {
  ObjectMeta metadata;
  LabelSelector podSelector;  // the pods of metadata.namespace it applies to
  bool ingress = false;       // policyTypes holds Ingress (defaulted as the API server does)
  bool egress = false;        // policyTypes holds Egress
  std::vector<NetworkPolicyRule> ingressRules;
  std::vector<NetworkPolicyRule> egressRules;
};

inline const char* protocolName(Protocol p) {
  switch (p) {
    case Protocol::TCP: return "TCP";
    case Protocol::UDP: return "UDP";
    case Protocol::SCTP: return "SCTP";
  }
  return "?";
}

}  // namespace switchyard::k8s
