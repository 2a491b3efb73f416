// bpf.socketLB.podOptOut: which pods of this node keep their ClusterIPs (socket LB skips
// them, tc serves them), and where their cgroups are. A pod opts out with the annotation
// switchyard.dev/socket-lb: disabled, or by living in a namespace with that label; the pod's
// annotation "enabled" overrides its namespace's label.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "k8sclient/objects.h"

namespace switchyard::bpf {

inline constexpr const char* kSocketLBOptOutKey = "switchyard.dev/socket-lb";

struct OptedOutPod {
  std::string pod;  // namespace/name
  std::string uid;
  std::string why;  // "annotation" or "namespace label"
  auto operator<=>(const OptedOutPod&) const = default;
};

class SocketLBOptOut {
 public:
  explicit SocketLBOptOut(std::string nodeName) : node_(std::move(nodeName)) {}

  // Pods of other nodes are ignored (a files source delivers every pod it finds). A value of
  // the annotation or label other than enabled/disabled is a problem, returned for a log line
  // naming the object, and treated as absent.
  std::optional<std::string> onPod(const k8s::Pod& pod);
  void onPodDelete(const std::string& key) { pods_.erase(key); }
  std::optional<std::string> onNamespace(const k8s::Namespace& ns);
  void onNamespaceDelete(const std::string& name) { namespaces_.erase(name); }

  std::vector<OptedOutPod> optedOut() const;

 private:
  struct PodState {
    std::string uid;
    std::optional<bool> disabled;  // the pod's annotation, if any
  };
  std::string node_;
  std::map<std::string, PodState> pods_;   // this node's pods, by namespace/name
  std::map<std::string, bool> namespaces_;  // namespaces with the label: disabled?
};

// The cgroup directory of the pod with this UID below root, as the kubelet names it with
// either cgroup driver: ".../pod<uid>" (cgroupfs) or ".../kubepods-<qos>-pod<uid with _>.slice"
// (systemd); searched to a depth of 4. nullopt when there is none (yet).
std::optional<std::string> findPodCgroup(const std::string& root, const std::string& uid);

}  // namespace switchyard::bpf
