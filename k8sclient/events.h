// What a source (manifest files or the API server's reflectors) tells its consumer.
// Deletes carry the last known object, as informers do.
#pragma once

#include "k8sclient/objects.h"

namespace switchyard::k8s {

class ServiceEventHandler {
 public:
  virtual ~ServiceEventHandler() = default;
  virtual void onServiceUpsert(const Service& svc) = 0;
  virtual void onServiceDelete(const Service& last) = 0;
  virtual void onEndpointSliceUpsert(const EndpointSlice& slice) = 0;
  virtual void onEndpointSliceDelete(const EndpointSlice& last) = 0;
  // The first complete picture has been delivered: the dataplane may be programmed.
  virtual void onSynced() = 0;
  // This node's Node object (sources that know the node name deliver it; optional).
  virtual void onNodeUpsert(const Node&) {}
  virtual void onNodeDelete(const Node&) {}
  // For policy/: Pods (cluster-wide), Namespaces, NetworkPolicies. Delivered only by sources
  // asked for them (policy.enabled); the default handlers ignore them.
  virtual void onPodUpsert(const Pod&) {}
  virtual void onPodDelete(const Pod&) {}
  virtual void onNamespaceUpsert(const Namespace&) {}
  virtual void onNamespaceDelete(const Namespace&) {}
  virtual void onNetworkPolicyUpsert(const NetworkPolicy&) {}
  virtual void onNetworkPolicyDelete(const NetworkPolicy&) {}
};

}  // namespace switchyard::k8s
