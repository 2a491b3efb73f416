#include "tests/fake_apiserver/selectors.h"

#include <algorithm>

namespace switchyard::fake {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits at commas outside parentheses.
std::vector<std::string> splitTerms(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    }
    if (c == ',' && depth == 0) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!trim(cur).empty() || !out.empty()) {
    out.push_back(trim(cur));
  }
  return out;
}

}  // namespace

bool LabelSelector::parse(const std::string& text, std::string& error) {
  reqs_.clear();
  if (trim(text).empty()) {
    return true;
  }
  for (const std::string& term : splitTerms(text)) {
    if (term.empty()) {
      error = "empty requirement in label selector \"" + text + "\"";
      return false;
    }
    Requirement r;
    if (term[0] == '!') {
      r.key = trim(term.substr(1));
      r.op = Requirement::Op::NotExists;
    } else if (auto p = term.find(" notin "); p != std::string::npos) {
      r.key = trim(term.substr(0, p));
      r.op = Requirement::Op::NotIn;
    } else if (auto q = term.find(" in "); q != std::string::npos) {
      r.key = trim(term.substr(0, q));
      r.op = Requirement::Op::In;
    } else if (auto ne = term.find("!="); ne != std::string::npos) {
      r.key = trim(term.substr(0, ne));
      r.op = Requirement::Op::NotEquals;
      r.values.push_back(trim(term.substr(ne + 2)));
    } else if (auto eq = term.find('='); eq != std::string::npos) {
      r.key = trim(term.substr(0, eq));
      r.op = Requirement::Op::Equals;
      size_t v = term.compare(eq, 2, "==") == 0 ? eq + 2 : eq + 1;
      r.values.push_back(trim(term.substr(v)));
    } else {
      r.key = term;
      r.op = Requirement::Op::Exists;
    }
    if (r.op == Requirement::Op::In || r.op == Requirement::Op::NotIn) {
      auto open = term.find('('), close = term.rfind(')');
      if (open == std::string::npos || close == std::string::npos || close < open) {
        error = "expected (values) in \"" + term + "\"";
        return false;
      }
      std::string inner = term.substr(open + 1, close - open - 1);
      size_t start = 0;
      while (start <= inner.size()) {
        size_t comma = inner.find(',', start);
        std::string v = trim(inner.substr(start, comma == std::string::npos ? std::string::npos
                                                                            : comma - start));
        if (!v.empty()) {
          r.values.push_back(v);
        }
        if (comma == std::string::npos) {
          break;
        }
        start = comma + 1;
      }
    }
    if (r.key.empty() || r.key.find_first_of(" ()!=") != std::string::npos) {
      error = "invalid label key in \"" + term + "\"";
      return false;
    }
    reqs_.push_back(std::move(r));
  }
  return true;
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const Requirement& r : reqs_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool inValues = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    switch (r.op) {
      case Requirement::Op::Exists:
        if (!has) return false;
        break;
      case Requirement::Op::NotExists:
        if (has) return false;
        break;
      case Requirement::Op::Equals:
      case Requirement::Op::In:
        if (!inValues) return false;
        break;
      case Requirement::Op::NotEquals:
      case Requirement::Op::NotIn:
        if (inValues) return false;
        break;
    }
  }
  return true;
}

bool FieldSelector::parse(const std::string& text, std::string& error) {
  reqs_.clear();
  if (trim(text).empty()) {
    return true;
  }
  for (const std::string& term : splitTerms(text)) {
    Requirement r;
    size_t opPos, valPos;
    if ((opPos = term.find("!=")) != std::string::npos) {
      r.negate = true;
      valPos = opPos + 2;
    } else if ((opPos = term.find("==")) != std::string::npos) {
      valPos = opPos + 2;
    } else if ((opPos = term.find('=')) != std::string::npos) {
      valPos = opPos + 1;
    } else {
      error = "invalid field selector \"" + term + "\": expected field=value";
      return false;
    }
    r.field = trim(term.substr(0, opPos));
    r.value = trim(term.substr(valPos));
    if (r.field != "metadata.name" && r.field != "metadata.namespace" && r.field != "spec.nodeName") {
      error = "field label not supported: " + r.field;
      return false;
    }
    reqs_.push_back(std::move(r));
  }
  return true;
}

bool FieldSelector::matches(const std::string& ns, const std::string& name,
                            const std::string& nodeName) const {
  for (const Requirement& r : reqs_) {
    const std::string& v = r.field == "metadata.name" ? name : r.field == "spec.nodeName" ? nodeName : ns;
    if ((v == r.value) == r.negate) {
      return false;
    }
  }
  return true;
}

}  // namespace switchyard::fake
