// Label and field selectors as the API server parses them from the query string:
//   labelSelector=app=web,tier!=db,env in (a,b),!legacy,release
//   fieldSelector=metadata.name=node-1,metadata.namespace!=kube-system
#pragma once

#include <map>
#include <string>
#include <vector>

namespace switchyard::fake {

class LabelSelector {
 public:
  // False with a message on a syntax error (the server answers 400 Bad Request).
  bool parse(const std::string& text, std::string& error);
  bool matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return reqs_.empty(); }

 private:
  struct Requirement {
    enum class Op { Exists, NotExists, Equals, NotEquals, In, NotIn };
    std::string key;
    Op op = Op::Exists;
    std::vector<std::string> values;
  };
  std::vector<Requirement> reqs_;
};

class FieldSelector {
 public:
  // Supports metadata.name, metadata.namespace and (Pods) spec.nodeName with =, == and !=.
  bool parse(const std::string& text, std::string& error);
  bool matches(const std::string& ns, const std::string& name, const std::string& nodeName = "") const;

 private:
  struct Requirement {
    std::string field;
    bool negate = false;
    std::string value;
  };
  std::vector<Requirement> reqs_;
};

}  // namespace switchyard::fake
