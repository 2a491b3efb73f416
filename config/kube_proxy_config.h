// kube-proxy's own configuration file (kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration),
// accepted as-is by `switchyard run --config`: the fields that mean something here are mapped
// onto Config, every other field is accepted with one warning naming it (the file an operator
// already has must load), and a mapped field of the wrong type is an error, FILE:LINE: field:
// reason, as for SwitchyardConfiguration. docs/configuration.md has the table.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace YAML {
class Node;
}

namespace switchyard::config {

inline constexpr const char* kKubeProxyKind = "KubeProxyConfiguration";
inline constexpr const char* kKubeProxyApiVersion = "kubeproxy.config.k8s.io/v1alpha1";

// True if `root` is a mapping whose kind is KubeProxyConfiguration.
bool isKubeProxyConfiguration(const YAML::Node& root);

// Translates a parsed KubeProxyConfiguration document into `out` (starting from its
// defaults). Errors go to `errors`, warnings (fields accepted but not applied, one per field)
// to out.warnings, both as "NAME:LINE: field: text". Returns false if there was an error.
bool translateKubeProxyConfiguration(const YAML::Node& root, const std::string& name, Config& out,
                                     std::vector<std::string>& errors);

}  // namespace switchyard::config
