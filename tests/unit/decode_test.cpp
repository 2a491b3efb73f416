// The JSON decoder shared by both sources: real API server JSON in, typed objects out,
// every problem named by its field path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "k8sclient/decode.h"

namespace switchyard::k8s {
namespace {

using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;

rapidjson::Document parse(const char* json) {
  rapidjson::Document d;
  d.Parse(json);
  EXPECT_FALSE(d.HasParseError());
  return d;
}

TEST(Decode, ServiceAsTheApiServerReturnsIt) {
  auto d = parse(R"({"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"shop",
    "uid":"u1","resourceVersion":"42","labels":{"app":"web"}},
    "spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":"http-alt"},
                     {"name":"dns","protocol":"UDP","port":53,"targetPort":5353}],
            "clusterIP":"198.19.0.10","clusterIPs":["198.19.0.10"],"type":"ClusterIP",
            "sessionAffinity":"None","ipFamilies":["IPv4"],"internalTrafficPolicy":"Cluster"},
    "status":{"loadBalancer":{}}})");
  Service s;
  std::vector<FieldError> errors;
  ASSERT_TRUE(decodeService(d, s, errors));
  EXPECT_EQ(s.metadata.key(), "shop/web");
  EXPECT_EQ(s.metadata.resourceVersion, "42");
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[0].targetPort.name, "http-alt");
  EXPECT_FALSE(s.ports[0].targetPort.number.has_value());
  EXPECT_EQ(s.ports[1].protocol, Protocol::UDP);
  EXPECT_EQ(*s.ports[1].targetPort.number, 5353);
  EXPECT_EQ(s.internalTrafficPolicy, "Cluster");
}

TEST(Decode, ListItemsWithoutKindAreAccepted) {
  // The API server omits apiVersion/kind on list items and watch objects.
  auto d = parse(R"({"metadata":{"name":"web"},"spec":{"clusterIP":"198.19.0.10","ports":[{"port":80}]}})");
  Service s;
  std::vector<FieldError> errors;
  ASSERT_TRUE(decodeService(d, s, errors));
  EXPECT_EQ(s.metadata.namespace_, "default");
  EXPECT_EQ(s.ports[0].protocol, Protocol::TCP);
  EXPECT_EQ(*s.ports[0].targetPort.number, 80);  // targetPort defaults to port
}

TEST(Decode, EveryServiceProblemIsNamedByItsPath) {
  auto d = parse(R"({"kind":"Service","apiVersion":"v1","metadata":{"name":"web"},
    "spec":{"clusterIP":"198.19.0.10","type":"Magic",
            "ports":[{"port":80},{"port":70000,"protocol":"ICMP"},{"port":"eighty"}]}})");
  Service s;
  std::vector<FieldError> errors;
  EXPECT_FALSE(decodeService(d, s, errors));
  EXPECT_THAT(errors, Contains(Field(&FieldError::field, "spec.type")));
  EXPECT_THAT(errors, Contains(Field(&FieldError::reason, HasSubstr("got 70000"))));
  EXPECT_THAT(errors, Contains(Field(&FieldError::field, "spec.ports[1].protocol")));
  EXPECT_THAT(errors, Contains(Field(&FieldError::field, "spec.ports[2].port")));
}

TEST(Decode, EndpointSliceConditionsKeepTheirNils) {
  auto d = parse(R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1",
    "metadata":{"name":"web-1","namespace":"shop","labels":{"kubernetes.io/service-name":"web"}},
    "addressType":"IPv4",
    "endpoints":[{"addresses":["198.18.16.2"],"conditions":{"ready":true}},
                 {"addresses":["198.18.16.3"],"conditions":{}},
                 {"addresses":["198.18.16.4"],"conditions":{"ready":false,"serving":true,"terminating":true},
                  "hints":{"forZones":[{"name":"zone-a"}]}}],
    "ports":[{"name":"http","port":8080,"protocol":"TCP"}]})");
  EndpointSlice s;
  std::vector<FieldError> errors;
  ASSERT_TRUE(decodeEndpointSlice(d, s, errors));
  EXPECT_EQ(s.serviceName(), "web");
  ASSERT_EQ(s.endpoints.size(), 3u);
  EXPECT_EQ(s.endpoints[0].conditions.ready, true);
  EXPECT_FALSE(s.endpoints[1].conditions.ready.has_value());
  EXPECT_EQ(s.endpoints[2].conditions.terminating, true);
  EXPECT_EQ(s.endpoints[2].hintsForZones.size(), 1u);
  EXPECT_EQ(*s.ports[0].port, 8080);
}

TEST(Decode, EndpointSliceProblems) {
  auto d = parse(R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"x"},
    "addressType":"IPv5","endpoints":[{"addresses":[]},{"addresses":["1.2.3.4"],"conditions":{"ready":"yes"}}],
    "ports":[{"port":0}]})");
  EndpointSlice s;
  std::vector<FieldError> errors;
  EXPECT_FALSE(decodeEndpointSlice(d, s, errors));
  EXPECT_THAT(errors, Contains(Field(&FieldError::field, "addressType")));
  EXPECT_THAT(errors, Contains(Field(&FieldError::field, "endpoints[0].addresses")));
  EXPECT_THAT(errors, Contains(Field(&FieldError::field, "endpoints[1].conditions.ready")));
  EXPECT_THAT(errors, Contains(Field(&FieldError::field, "ports[0].port")));
}

TEST(Decode, ObjectRefForMessages) {
  EXPECT_EQ(objectRef(parse(R"({"metadata":{"name":"a","namespace":"b"}})")), "b/a");
  EXPECT_EQ(objectRef(parse(R"({"metadata":{"name":"a"}})")), "default/a");
  EXPECT_EQ(objectRef(parse(R"({"spec":{}})")), "<unnamed>");
}

}  // namespace
}  // namespace switchyard::k8s

namespace switchyard::k8s {
namespace {

TEST(Decode, TriggerTimeAnnotationIsParsed) {
  rapidjson::Document d;
  d.Parse(R"({"metadata":{"name":"s","annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-11-23T12:00:00.25Z"}},
              "addressType":"IPv4","endpoints":[]})");
  EndpointSlice s;
  std::vector<FieldError> errors;
  ASSERT_TRUE(decodeEndpointSlice(d, s, errors));
  ASSERT_TRUE(s.lastChangeTriggerTime.has_value());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(s.lastChangeTriggerTime->time_since_epoch()).count();
  EXPECT_EQ(ms, 1795435200250LL);
}

TEST(Decode, Rfc3339Forms) {
  auto base = parseRfc3339("2026-11-23T12:00:00Z");
  ASSERT_TRUE(base);
  EXPECT_EQ(parseRfc3339("2026-11-23T13:00:00+01:00"), base);
  EXPECT_EQ(parseRfc3339("2026-11-23T11:30:00-00:30"), base);
  EXPECT_FALSE(parseRfc3339("2026-11-23 12:00:00"));
  EXPECT_FALSE(parseRfc3339("yesterday"));
  EXPECT_FALSE(parseRfc3339("2026-11-23T12:00:00Zjunk"));
}

}  // namespace
}  // namespace switchyard::k8s
