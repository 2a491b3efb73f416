// Label selectors as metav1.LabelSelectorAsSelector evaluates them.
#pragma once

#include <map>
#include <string>

#include "k8sclient/objects.h"

namespace switchyard::policy {

using Labels = std::map<std::string, std::string>;

// matchLabels AND every matchExpression; an empty selector matches every label set.
// NotIn and DoesNotExist match a set without the key, as upstream's selector does.
bool matches(const k8s::LabelSelector& sel, const Labels& labels);

}  // namespace switchyard::policy
