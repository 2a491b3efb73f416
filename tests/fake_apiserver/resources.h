// The resources the fake API server serves, and the discovery documents that describe
// them to clients (kubectl reads /api, /apis, /api/v1, /apis/<group>/<version> and the
// OpenAPI v3 index before it does anything else).
#pragma once

#include <string>
#include <vector>

namespace switchyard::fake {

struct Resource {
  std::string group;  // "" = the core group
  std::string version;
  std::string plural;  // "services"
  std::string singular;
  std::string kind;
  bool namespaced = true;
  std::vector<std::string> shortNames;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // The collection's path prefix: "/api/v1" or "/apis/discovery.k8s.io/v1".
  std::string groupVersionPath() const {
    return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  }
};

const std::vector<Resource>& resources();
const Resource* findResource(const std::string& group, const std::string& version,
                             const std::string& plural);
const Resource* findKind(const std::string& apiVersion, const std::string& kind);

// Legacy (unaggregated) discovery, which every client version understands.
std::string versionDocument();                         // /version
std::string coreVersionsDocument();                    // /api  (APIVersions)
std::string groupListDocument();                       // /apis (APIGroupList)
std::string groupDocument(const std::string& group);   // /apis/<group> ("" if unknown)
std::string resourceListDocument(const std::string& groupVersion);  // "" if unknown
// OpenAPI v3: the index and one document per group-version, declaring for every resource
// the fieldValidation query parameter so that kubectl leaves validation to the server.
std::string openApiIndexDocument();
std::string openApiGroupVersionDocument(const std::string& groupVersion);  // "" if unknown

}  // namespace switchyard::fake
