// source: apiserver — Services and EndpointSlices listed and watched from the Kubernetes
// API server, delivered to the same ServiceEventHandler the manifest source feeds, plus
// this node's Node object (labels for topology, taints for healthz).
//
// The handler's onSynced() comes once, after Services and EndpointSlices have both
// completed their first list: the dataplane is never programmed from a partial picture.
#pragma once

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <string>

#include "k8sclient/apiserver/api_client.h"
#include "k8sclient/apiserver/client_metrics.h"
#include "k8sclient/apiserver/connection_config.h"
#include "k8sclient/apiserver/reflector.h"
#include "k8sclient/apiserver/store.h"
#include "k8sclient/events.h"
#include "k8sclient/objects.h"

namespace switchyard::k8s::apiserver {

// kube-proxy's selector, applied to Services and EndpointSlices alike: skip what another
// proxy owns (service-proxy-name) and headless services' slices.
inline constexpr const char* kProxyLabelSelector =
    "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";

// The taint the cluster autoscaler puts on a node it is about to remove: kube-proxy's
// healthz then reports the node ineligible so load balancers drain it.
inline constexpr const char* kToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler";

struct SourceProblem {
  enum class Type { Decode, Request };
  Type type = Type::Request;
  std::string kind;     // Service | EndpointSlice | Node
  std::string message;  // the whole message, object and field included

  std::string str() const { return message; }
};

struct ApiServerSourceOptions {
  std::string nodeName;  // this node; "" = no Node watch
  // Also list and watch Pods (every node's: peers need their labels), Namespaces and
  // NetworkPolicies for policy/ (policy.enabled); onSynced() then waits for them too.
  bool policy = false;
  // Pods of this node only (field selector spec.nodeName) and Namespaces, for
  // bpf.socketLB.podOptOut; implied by policy, which needs every node's pods.
  bool localPods = false;
  double qps = 50;
  int burst = 100;
  ReflectorOptions reflector;
};

class ApiServerSource {
 public:
  using ProblemSink = std::function<void(const SourceProblem&)>;
  // The Node object changed; nullptr when it does not exist (or was deleted).
  using NodeObserver = std::function<void(const Node*)>;

  ApiServerSource(boost::asio::io_context& io, ConnectionConfig connection,
                  ServiceEventHandler& handler, ProblemSink problems,
                  prometheus::Registry& registry, ApiServerSourceOptions options = {});
  ~ApiServerSource();

  void setNodeObserver(NodeObserver observer) { nodeObserver_ = std::move(observer); }

  void start();
  void stop();

  bool synced() const { return synced_; }
  const Store<Service>& services() const { return services_; }
  const Store<EndpointSlice>& endpointSlices() const { return slices_; }
  // This node's object, nullptr until seen.
  const Node* node() const;
  // True when the Node carries the ToBeDeletedByClusterAutoscaler taint.
  bool nodeToBeDeleted() const;

  const ClientMetrics& metrics() const { return metrics_; }
  const Reflector& serviceReflector() const { return *serviceReflector_; }
  const Reflector& sliceReflector() const { return *sliceReflector_; }
  const ConnectionConfig& connection() const { return client_.config(); }

 private:
  void onListed();
  void decodeProblem(const DecodeProblem& p);
  void requestProblem(const RequestProblem& p);
  void nodeChanged();

  ServiceEventHandler& handler_;
  ProblemSink problems_;
  ApiServerSourceOptions options_;
  ClientMetrics metrics_;
  ApiClient client_;
  Store<Service> services_;
  Store<EndpointSlice> slices_;
  Store<Node, KeepObjects::Yes> nodes_;
  std::unique_ptr<Reflector> serviceReflector_;
  std::unique_ptr<Reflector> sliceReflector_;
  std::unique_ptr<Reflector> nodeReflector_;
  // policy kinds (options_.policy)
  Store<Pod> pods_;
  Store<Namespace> namespaces_;
  Store<NetworkPolicy> policies_;
  std::vector<std::unique_ptr<Reflector>> policyReflectors_;
  NodeObserver nodeObserver_;
  bool synced_ = false;
};

}  // namespace switchyard::k8s::apiserver
