// JSON merge patch (RFC 7386) and the part of Kubernetes' strategic merge patch that
// kubectl's client-side apply produces for the served kinds.
#pragma once

#include <rapidjson/document.h>

#include <string>

namespace switchyard::fake {

// Applies patch to target in place. With strategic, "$"-directives are honoured
// ($patch: delete/replace, $setElementOrder and $retainKeys are accepted) and lists
// with a merge key (Service spec.ports by "port") merge element by element.
void applyMergePatch(rapidjson::Value& target, const rapidjson::Value& patch,
                     rapidjson::Document::AllocatorType& alloc, bool strategic,
                     const std::string& path = "");

}  // namespace switchyard::fake
