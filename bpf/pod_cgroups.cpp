#include "bpf/pod_cgroups.h"

#include <algorithm>
#include <filesystem>

namespace switchyard::bpf {
namespace {

// "disabled" -> true, "enabled" -> false; anything else is reported and ignored.
std::optional<bool> parseSwitch(const std::map<std::string, std::string>& m, const std::string& what,
                                std::optional<std::string>& problem) {
  auto it = m.find(kSocketLBOptOutKey);
  if (it == m.end()) {
    return std::nullopt;
  }
  if (it->second == "disabled") return true;
  if (it->second == "enabled") return false;
  problem = what + ": " + kSocketLBOptOutKey + ": must be disabled or enabled, got \"" + it->second +
            "\" (ignored)";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> SocketLBOptOut::onPod(const k8s::Pod& pod) {
  if (pod.nodeName != node_) {
    pods_.erase(pod.metadata.key());  // it moved away, or was never here
    return std::nullopt;
  }
  std::optional<std::string> problem;
  PodState st;
  st.uid = pod.metadata.uid;
  st.disabled = parseSwitch(pod.metadata.annotations, "Pod " + pod.metadata.key() + " annotation", problem);
  pods_[pod.metadata.key()] = st;
  return problem;
}

std::optional<std::string> SocketLBOptOut::onNamespace(const k8s::Namespace& ns) {
  std::optional<std::string> problem;
  auto v = parseSwitch(ns.metadata.labels, "Namespace " + ns.metadata.name + " label", problem);
  if (v) {
    namespaces_[ns.metadata.name] = *v;
  } else {
    namespaces_.erase(ns.metadata.name);
  }
  return problem;
}

std::vector<OptedOutPod> SocketLBOptOut::optedOut() const {
  std::vector<OptedOutPod> out;
  for (const auto& [key, st] : pods_) {
    if (st.uid.empty()) {
      continue;  // no UID, no cgroup to find
    }
    if (st.disabled) {
      if (*st.disabled) out.push_back({key, st.uid, "annotation"});
      continue;  // the pod's own word wins over its namespace's
    }
    auto ns = namespaces_.find(key.substr(0, key.find('/')));
    if (ns != namespaces_.end() && ns->second) {
      out.push_back({key, st.uid, "namespace label"});
    }
  }
  return out;
}

std::optional<std::string> findPodCgroup(const std::string& root, const std::string& uid) {
  namespace fs = std::filesystem;
  std::string systemdUid = uid;
  std::replace(systemdUid.begin(), systemdUid.end(), '-', '_');
  const std::string cgroupfsName = "pod" + uid;
  const std::string systemdPart = "-pod" + systemdUid + ".slice";
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it.depth() >= 4) {
      it.disable_recursion_pending();
    }
    if (!it->is_directory(ec)) {
      continue;
    }
    std::string name = it->path().filename().string();
    if (name == cgroupfsName ||
        (name.size() > systemdPart.size() && name.ends_with(systemdPart))) {
      return it->path().string();
    }
  }
  return std::nullopt;
}

}  // namespace switchyard::bpf
