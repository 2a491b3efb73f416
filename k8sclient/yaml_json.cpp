#include "k8sclient/yaml_json.h"

#include <cerrno>
#include <cstdlib>

namespace switchyard::k8s {
namespace {

// YAML 1.2 core schema: [-+]?[0-9]+
bool isInteger(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) {
    return false;
  }
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
  }
  return true;
}

// YAML 1.2 core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool isFloat(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    ++i;
    ++digits;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ++i;
      ++digits;
    }
  }
  if (digits == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
      ++i;
    }
    size_t exp = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ++i;
      ++exp;
    }
    if (exp == 0) {
      return false;
    }
  }
  return i == s.size();
}

void scalarToJson(const YAML::Node& node, rapidjson::Value& out,
                  rapidjson::Document::AllocatorType& alloc) {
  const std::string& s = node.Scalar();
  const std::string& tag = node.Tag();
  bool plain = tag == "?" || tag.empty();
  if (plain) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
      out.SetNull();
      return;
    }
    if (s == "true" || s == "True" || s == "TRUE") {
      out.SetBool(true);
      return;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      out.SetBool(false);
      return;
    }
    if (isInteger(s)) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (errno == 0 && end && *end == '\0') {
        out.SetInt64(v);
        return;
      }
    } else if (isFloat(s)) {
      out.SetDouble(std::strtod(s.c_str(), nullptr));
      return;
    }
  }
  out.SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

}  // namespace

void yamlToJson(const YAML::Node& node, rapidjson::Value& out,
                rapidjson::Document::AllocatorType& alloc) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      scalarToJson(node, out, alloc);
      return;
    case YAML::NodeType::Sequence:
      out.SetArray();
      for (const YAML::Node& item : node) {
        rapidjson::Value v;
        yamlToJson(item, v, alloc);
        out.PushBack(v, alloc);
      }
      return;
    case YAML::NodeType::Map:
      out.SetObject();
      for (const auto& kv : node) {
        std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("<complex key>");
        rapidjson::Value k(key.c_str(), static_cast<rapidjson::SizeType>(key.size()), alloc);
        rapidjson::Value v;
        yamlToJson(kv.second, v, alloc);
        out.AddMember(k, v, alloc);
      }
      return;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out.SetNull();
      return;
  }
}

int yamlLineOf(const YAML::Node& doc, const std::string& jsonPath) {
  YAML::Node cur = doc;
  int line = doc.Mark().line + 1;
  size_t i = 0;
  while (i < jsonPath.size()) {
    if (jsonPath[i] == '.') {
      ++i;
      continue;
    }
    YAML::Node next;
    if (jsonPath[i] == '[') {
      size_t close = jsonPath.find(']', i);
      if (close == std::string::npos || !cur.IsSequence()) {
        break;
      }
      size_t idx = std::strtoul(jsonPath.c_str() + i + 1, nullptr, 10);
      if (idx >= cur.size()) {
        break;
      }
      next.reset(static_cast<const YAML::Node&>(cur)[idx]);
      i = close + 1;
    } else {
      size_t end = jsonPath.find_first_of(".[", i);
      std::string key = jsonPath.substr(i, end == std::string::npos ? std::string::npos : end - i);
      if (!cur.IsMap() || !static_cast<const YAML::Node&>(cur)[key]) {
        break;
      }
      next.reset(static_cast<const YAML::Node&>(cur)[key]);
      i = end == std::string::npos ? jsonPath.size() : end;
    }
    cur.reset(next);
    if (cur.Mark().line >= 0) {
      line = cur.Mark().line + 1;
    }
  }
  return line;
}

}  // namespace switchyard::k8s
