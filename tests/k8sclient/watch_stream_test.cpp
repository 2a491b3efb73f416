// The watch body framer and event parser: events cut anywhere by TCP and HTTP chunking
// must come out whole, in order, however the bytes arrive.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "k8sclient/apiserver/watch_stream.h"

namespace switchyard::k8s::apiserver {
namespace {

// Three events as the API server writes them, with the characters that could fool a
// naive splitter: braces and escaped quotes inside strings, nested objects and arrays.
const std::string kStream =
    R"({"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"a}{","namespace":"x","resourceVersion":"11","annotations":{"note":"say \"}\" and \\"}},"spec":{"ports":[{"port":80}]}}})"
    "\n"
    R"({"type":"MODIFIED","object":{"kind":"Service","metadata":{"name":"b","resourceVersion":"12"},"spec":{"ports":[]}}})"
    "\n"
    R"({"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"13"}}})"
    "\n";

std::vector<std::string> feedPieces(const std::vector<std::string>& pieces) {
  JsonFramer framer;
  std::vector<std::string> frames;
  for (const auto& p : pieces) {
    EXPECT_TRUE(framer.feed(p, [&](std::string_view f) { frames.emplace_back(f); }))
        << framer.error();
  }
  EXPECT_EQ(framer.buffered(), 0u);
  return frames;
}

void expectThreeEvents(const std::vector<std::string>& frames, const std::string& how) {
  ASSERT_EQ(frames.size(), 3u) << how;
  const char* types[] = {"ADDED", "MODIFIED", "BOOKMARK"};
  const char* rvs[] = {"11", "12", "13"};
  for (size_t i = 0; i < 3; ++i) {
    WatchEvent ev;
    std::string error;
    ASSERT_TRUE(parseWatchEvent(frames[i], ev, error)) << how << ": " << error;
    EXPECT_STREQ(watchEventTypeName(ev.type), types[i]) << how;
    EXPECT_EQ(resourceVersionOf(*ev.object), rvs[i]) << how;
  }
  WatchEvent first;
  std::string error;
  ASSERT_TRUE(parseWatchEvent(frames[0], first, error));
  EXPECT_STREQ((*first.object)["metadata"]["annotations"]["note"].GetString(), "say \"}\" and \\");
}

TEST(JsonFramer, AllEventsInOneRead) { expectThreeEvents(feedPieces({kStream}), "one read"); }

TEST(JsonFramer, SplitInTwoAtEveryByteBoundary) {
  for (size_t k = 1; k < kStream.size(); ++k) {
    expectThreeEvents(feedPieces({kStream.substr(0, k), kStream.substr(k)}),
                      "split at " + std::to_string(k));
  }
}

TEST(JsonFramer, SplitInThreeAtEveryPairOfBoundaries) {
  // Every (i, j) pair: catches state (string, escape, depth) lost across two cuts.
  for (size_t i = 1; i < kStream.size(); ++i) {
    for (size_t j = i + 1; j < kStream.size(); ++j) {
      expectThreeEvents(
          feedPieces({kStream.substr(0, i), kStream.substr(i, j - i), kStream.substr(j)}),
          "split at " + std::to_string(i) + "," + std::to_string(j));
    }
  }
}

TEST(JsonFramer, OneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : kStream) {
    bytes.emplace_back(1, c);
  }
  expectThreeEvents(feedPieces(bytes), "byte by byte");
}

TEST(JsonFramer, EventsWithoutNewlinesBetweenThem) {
  // client-go's JSON framer needs no separator either.
  std::string joined;
  for (char c : kStream) {
    if (c != '\n') {
      joined.push_back(c);
    }
  }
  expectThreeEvents(feedPieces({joined}), "no newlines");
}

TEST(JsonFramer, GarbageBetweenEventsBreaksTheStream) {
  JsonFramer framer;
  int frames = 0;
  EXPECT_FALSE(framer.feed("{\"a\":1}\nHTTP/1.1 500", [&](std::string_view) { ++frames; }));
  EXPECT_EQ(frames, 1);
  EXPECT_NE(framer.error().find("unexpected character 'H'"), std::string::npos);
  EXPECT_FALSE(framer.feed("{}", [&](std::string_view) { ++frames; })) << "stays broken";
}

TEST(JsonFramer, OversizedEventIsAnError) {
  JsonFramer framer(64);
  EXPECT_FALSE(framer.feed("{\"a\":\"" + std::string(100, 'x') + "\"}", [](std::string_view) {}));
  EXPECT_NE(framer.error().find("larger than 64 bytes"), std::string::npos);
}

TEST(WatchEvent, RejectsWhatIsNotAnEvent) {
  struct Case {
    const char* name;
    std::string frame;
    std::string error;
  } cases[] = {
      {"not JSON", "{\"type\":", "invalid JSON"},
      {"not an object", "[1,2]", "must be a JSON object"},
      {"unknown type", R"({"type":"RENAMED","object":{}})", "unknown watch event type"},
      {"type missing", R"({"object":{}})", "type: must be a string"},
      {"object missing", R"({"type":"ADDED"})", "object: must be an object"},
      {"object not an object", R"({"type":"ADDED","object":"x"})", "object: must be an object"},
  };
  for (const auto& c : cases) {
    WatchEvent ev;
    std::string error;
    EXPECT_FALSE(parseWatchEvent(c.frame, ev, error)) << c.name;
    EXPECT_NE(error.find(c.error), std::string::npos) << c.name << ": " << error;
  }
}

TEST(WatchEvent, ErrorEventCarriesTheStatus) {
  WatchEvent ev;
  std::string error;
  ASSERT_TRUE(parseWatchEvent(
      R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (20)","reason":"Expired","code":410}})json",
      ev, error));
  ASSERT_EQ(ev.type, WatchEventType::Error);
  ApiStatus st;
  ASSERT_TRUE(parseStatus(*ev.object, st));
  EXPECT_EQ(st.code, 410);
  EXPECT_EQ(st.reason, "Expired");
  EXPECT_EQ(st.message, "too old resource version: 5 (20)");
}

TEST(WatchEvent, DeeplyNestedInputDoesNotRecurse) {
  // The parser runs iteratively: a hostile depth is an error or a value, never a crash.
  std::string deep = R"({"type":"ADDED","object":)" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  WatchEvent ev;
  std::string error;
  EXPECT_FALSE(parseWatchEvent(deep, ev, error));
}

}  // namespace
}  // namespace switchyard::k8s::apiserver
