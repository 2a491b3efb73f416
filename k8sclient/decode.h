// Decoding of Kubernetes JSON (as the API server returns it, or a manifest converted to
// JSON) into the typed objects of objects.h. One decoder serves both sources.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "k8sclient/objects.h"

namespace switchyard::k8s {

// One decode problem: the JSON path of the field and what is wrong with it,
// e.g. {"spec.ports[1].port", "must be between 1 and 65535, got 70000"}.
struct FieldError {
  std::string field;
  std::string reason;
  std::string str() const { return field + ": " + reason; }
};

// Each returns false and fills errors (every problem found, in one pass) when the object
// is unusable; unknown fields are ignored, as the API server's clients do.
bool decodeService(const rapidjson::Value& obj, Service& out, std::vector<FieldError>& errors);
bool decodeEndpointSlice(const rapidjson::Value& obj, EndpointSlice& out,
                         std::vector<FieldError>& errors);
bool decodeNode(const rapidjson::Value& obj, Node& out, std::vector<FieldError>& errors);
// For policy/ (networking.k8s.io/v1 NetworkPolicy, v1 Pod and Namespace). A NetworkPolicy
// without policyTypes gets the API server's defaults (Ingress; Egress too when it has egress
// rules), so a manifest file reads as the API server would have stored it.
bool decodePod(const rapidjson::Value& obj, Pod& out, std::vector<FieldError>& errors);
bool decodeNamespace(const rapidjson::Value& obj, Namespace& out, std::vector<FieldError>& errors);
bool decodeNetworkPolicy(const rapidjson::Value& obj, NetworkPolicy& out,
                         std::vector<FieldError>& errors);

// RFC 3339 time as the API server writes it ("2026-11-23T12:00:00Z", optional fraction
// and offset); nullopt when it is not one.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& text);

// metadata.namespace/name of any object, for error messages: "ns/name", or "<unnamed>".
std::string objectRef(const rapidjson::Value& obj);

}  // namespace switchyard::k8s
