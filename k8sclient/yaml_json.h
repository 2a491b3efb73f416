// YAML (as kubectl prints it) to RapidJSON, so manifests go through the same decoder as
// the API server's JSON. Plain scalars get YAML 1.2 core-schema types (null, bool, int,
// float); quoted scalars stay strings.
#pragma once

#include <rapidjson/document.h>
#include <yaml-cpp/yaml.h>

#include <string>

namespace switchyard::k8s {

void yamlToJson(const YAML::Node& node, rapidjson::Value& out,
                rapidjson::Document::AllocatorType& alloc);

// 1-based line of the YAML node a JSON path like "spec.ports[1].port" names; falls back to
// the deepest node that exists on the way, then to the document's own line.
int yamlLineOf(const YAML::Node& doc, const std::string& jsonPath);

}  // namespace switchyard::k8s
