#include "policy/selector.h"

#include <algorithm>

namespace switchyard::policy {

bool matches(const k8s::LabelSelector& sel, const Labels& labels) {
  for (const auto& [k, v] : sel.matchLabels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) {
      return false;
    }
  }
  for (const auto& r : sel.matchExpressions) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool in = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    if (r.op == "In") {
      if (!in) return false;
    } else if (r.op == "NotIn") {
      if (in) return false;
    } else if (r.op == "Exists") {
      if (!has) return false;
    } else if (r.op == "DoesNotExist") {
      if (has) return false;
    } else {
      return false;  // the decoder refuses other operators; never match on one
    }
  }
  return true;
}

}  // namespace switchyard::policy
