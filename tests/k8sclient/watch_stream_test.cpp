// The watch body framer and event parser: events cut anywhere by TCP and HTTP chunking
// must come out whole, in order, however the bytes arrive.
#include <gtest/gtest.h>

#include <algorithm>
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

// The events of kStream, each with its newline.
std::vector<std::string> streamLines() {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl = kStream.find('\n'); nl != std::string::npos; nl = kStream.find('\n', start)) {
    lines.push_back(kStream.substr(start, nl + 1 - start));
    start = nl + 1;
  }
  return lines;
}

// Feeds pieces in order until the framer fails; returns the frames it delivered.
struct FeedResult {
  std::vector<std::string> frames;
  bool failed = false;
  size_t failedInPiece = 0;  // index of the piece whose feed returned false
  std::string error;
};

FeedResult feedUntilError(JsonFramer& framer, const std::vector<std::string>& pieces) {
  FeedResult r;
  for (size_t i = 0; i < pieces.size() && !r.failed; ++i) {
    if (!framer.feed(pieces[i], [&](std::string_view f) { r.frames.emplace_back(f); })) {
      r.failed = true;
      r.failedInPiece = i;
      r.error = framer.error();
    }
  }
  return r;
}

// client-go's decoder (Go's json.Decoder) stops at the first byte that cannot continue
// the value; counting braces alone would swallow every later event into the cut one.
// Each event is cut at every byte (its rest, newline included, lost, as by a faulty
// proxy) and followed by the next event: the framer fails by the end of that next line
// (its newline cannot be inside an event) and never delivers a frame with the cut one.
TEST(JsonFramer, EventCutOffAtAnyByteIsAnErrorByTheEndOfTheNextLine) {
  auto lines = streamLines();
  ASSERT_EQ(lines.size(), 3u);
  for (size_t e = 0; e + 1 < lines.size(); ++e) {
    for (size_t cut = 1; cut + 1 < lines[e].size(); ++cut) {
      std::string how = "event " + std::to_string(e) + " cut at " + std::to_string(cut);
      std::vector<std::string> pieces(lines.begin(), lines.begin() + static_cast<long>(e));
      pieces.push_back(lines[e].substr(0, cut));
      pieces.push_back(lines[e + 1]);
      JsonFramer framer;
      FeedResult r = feedUntilError(framer, pieces);
      ASSERT_TRUE(r.failed) << how << ": " << framer.buffered() << " bytes buffered, no error";
      EXPECT_EQ(r.frames.size(), e) << how << ": only the events before the cut one";
      for (size_t i = 0; i < r.frames.size(); ++i) {
        EXPECT_EQ(r.frames[i] + "\n", lines[i]) << how;
      }
      EXPECT_NE(r.error.find("at offset "), std::string::npos) << how << ": " << r.error;
    }
  }
}

// Without newlines only the grammar can tell: a cut event followed by two others fails
// by the end of them (a cut right before a value can take one whole event as that value,
// not two).
TEST(JsonFramer, EventCutOffWithoutNewlinesIsAnErrorBeforeTwoMoreEventsHaveEnded) {
  auto lines = streamLines();
  for (auto& l : lines) {
    l.pop_back();
  }
  for (size_t cut = 1; cut + 1 < lines[0].size(); ++cut) {
    std::string how = "cut at " + std::to_string(cut);
    JsonFramer framer;
    FeedResult r = feedUntilError(framer, {lines[0].substr(0, cut), lines[1], lines[2]});
    EXPECT_TRUE(r.failed) << how << ": " << framer.buffered() << " bytes buffered, no error";
    EXPECT_TRUE(r.frames.empty()) << how << ": delivered " << r.frames.front();
  }
}

// The offset in the message is the offending byte's, counted from the stream's first
// byte, so that a log line points at it (here the case's bytes begin at offset 9, after
// an 8-byte event and its newline).
TEST(JsonFramer, ErrorsNameTheOffendingByteAndItsOffset) {
  struct Case {
    const char* name;
    std::string event;  // fed after "{\"ok\":1}\n" (9 bytes)
    size_t offset;      // of the offending byte in the whole stream
    std::string error;
  } cases[] = {
      {"a raw newline in a string", "{\"a\":\"x\ny\"}", 16, "a newline inside an event"},
      {"a newline between members", "{\"a\":1,\n\"b\":2}", 16, "a newline inside an event"},
      {"a raw tab in a string", "{\"a\":\"x\ty\"}", 16, "a raw control character in a string: byte 0x09"},
      {"an unknown escape", "{\"a\":\"\\q\"}", 16, "invalid escape in a string: character 'q'"},
      {"a short unicode escape", "{\"a\":\"\\u12g4\"}", 19, "expected a hex digit in a \\u escape, got character 'g'"},
      {"a missing colon", "{\"a\" 1}", 14, "expected ':' after an object key, got character '1'"},
      {"the next event inside a key", "{\"a{\"type\":1}", 14, "expected ':' after an object key, got character 't'"},
      {"a key that is not a string", "{a:1}", 10, "expected an object key or '}', got character 'a'"},
      {"a trailing comma", "{\"a\":1,}", 16, "expected an object key, got character '}'"},
      {"a value missing", "{\"a\":}", 14, "expected a value, got character '}'"},
      {"a trailing comma in an array", "{\"a\":[1,]}", 17, "expected a value, got character ']'"},
      {"mismatched brackets", "{\"a\":[1}", 16, "expected ',' or ']', got character '}'"},
      {"a bad literal", "{\"a\":tru}", 17, "expected 'e' in a literal, got character '}'"},
      {"a lone minus", "{\"a\":-}", 15, "expected a digit in a number, got character '}'"},
      {"an exponent without digits", "{\"a\":1e}", 16, "expected a digit in a number, got character '}'"},
      {"a dot without digits", "{\"a\":1.}", 16, "expected a digit in a number, got character '}'"},
      {"a leading zero", "{\"a\":01}", 15, "expected ',' or '}', got character '1'"},
      {"a byte that is not JSON between events", "\x16\x03\x01", 9, "unexpected byte 0x16 between watch events"},
  };
  for (const auto& c : cases) {
    JsonFramer framer;
    FeedResult r = feedUntilError(framer, {"{\"ok\":1}\n", c.event});
    ASSERT_TRUE(r.failed) << c.name;
    EXPECT_EQ(r.frames, std::vector<std::string>{"{\"ok\":1}"}) << c.name;
    EXPECT_NE(r.error.find("at offset " + std::to_string(c.offset)), std::string::npos)
        << c.name << ": " << r.error;
    EXPECT_NE(r.error.find(c.error), std::string::npos) << c.name << ": " << r.error;
  }
}

// What the grammar allows must all pass, whichever way the bytes are cut.
TEST(JsonFramer, EveryJsonConstructPassesSplitAtEveryByte) {
  const std::string event =
      R"({"type":"ADDED","object":{"n":[0,-0,12,-3.25,1e9,1E+2,2.5e-3,0.0],"l":[true,false,null],)"
      R"("s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00 ü {[,:]}","e":{},"a":[],"w":[ 1 ,)" "\t" R"(2 ],)"
      "\"cr\":\r{ \"k\" : \"v\" } }}";
  for (size_t k = 1; k < event.size(); ++k) {
    JsonFramer framer;
    std::vector<std::string> frames;
    for (const std::string& piece : {event.substr(0, k), event.substr(k), std::string("\n")}) {
      ASSERT_TRUE(framer.feed(piece, [&](std::string_view f) { frames.emplace_back(f); }))
          << "split at " << k << ": " << framer.error();
    }
    ASSERT_EQ(frames, std::vector<std::string>{event}) << "split at " << k;
    WatchEvent ev;
    std::string error;
    EXPECT_TRUE(parseWatchEvent(frames[0], ev, error)) << error;
  }
}

// client-go's streaming decoder refuses an object larger than 16 MiB; so does the
// framer by default, and it stops buffering there.
TEST(JsonFramer, EndlessEventStopsAtTheDefaultBoundOf16MiB) {
  JsonFramer framer;
  const size_t bound = 16u << 20;
  const std::string piece(64 * 1024, 'x');
  const std::string head = R"({"type":"ADDED","object":{"metadata":{"name":")";
  bool ok = framer.feed(head, [](std::string_view) {});
  size_t fed = head.size(), mostBuffered = 0;
  while (ok && fed < 4 * bound) {
    ok = framer.feed(piece, [](std::string_view) {});
    fed += piece.size();
    mostBuffered = std::max(mostBuffered, framer.buffered());
  }
  ASSERT_FALSE(ok) << "no error after " << fed << " bytes of one event";
  EXPECT_LE(mostBuffered, bound);
  EXPECT_LE(fed, bound + piece.size()) << "it failed at the bound, not later";
  EXPECT_NE(framer.error().find("at offset 16777216"), std::string::npos) << framer.error();
  EXPECT_NE(framer.error().find("larger than 16777216 bytes"), std::string::npos) << framer.error();
  EXPECT_EQ(framer.buffered(), 0u) << "a dead stream's partial event is released";
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
