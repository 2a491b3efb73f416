// Watch streams that cannot be decoded: an event cut off mid-object, bytes that are not
// JSON between events, an event that never ends. As client-go's StreamWatcher does
// ("unable to decode an event from the watch stream"), the reflector ends such a watch at
// the first byte that cannot be decoded, counts it in switchyard_k8s_decode_errors_total,
// logs the kind and the byte's offset in the stream, and watches again from the last
// event it decoded, so the server sends the lost change again. It does not skip to the
// next event, which would lose the cut one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>

#include "tests/k8sclient/harness.h"

namespace switchyard::k8s::apiserver::testing {
namespace {

using ::testing::ElementsAre;
using Failure = fake::InjectedFailure;

constexpr const char* kServiceWatch = "GET /api/v1/services?allowWatchBookmarks=true&watch=true";

const fake::Resource& servicesResource() { return *fake::findResource("", "v1", "services"); }

// The daemon's log while it lives: the tests read the warning lines themselves.
class LogCapture {
 public:
  LogCapture() {
    logging::setLevel(logging::Level::Warning);
    ::testing::internal::CaptureStderr();
  }
  ~LogCapture() { take(); }
  const std::string& take() {
    if (!taken_) {
      taken_ = true;
      text_ = ::testing::internal::GetCapturedStderr();
      logging::setLevel(logging::Level::Error);
    }
    return text_;
  }

 private:
  bool taken_ = false;
  std::string text_;
};

// The log line that has every needle, or "".
std::string lineWith(const std::string& log, const std::vector<std::string>& needles) {
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    std::string line = log.substr(start, end == std::string::npos ? std::string::npos : end - start);
    bool all = true;
    for (const auto& n : needles) {
      all = all && line.find(n) != std::string::npos;
    }
    if (all) {
      return line;
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return "";
}

struct StreamCase {
  const char* name;
  int goodEvents;  // events the watch delivers before the bad bytes
};

class UndecodableWatchTest : public SourceTest, public ::testing::WithParamInterface<StreamCase> {
 protected:
  // A request backoff far above the 1 s the tests allow: a change that arrives within 1 s
  // came through a watch started at once, not after a backoff.
  static ApiServerSourceOptions slowBackoffOptions() {
    ApiServerSourceOptions o = fastOptions();
    o.reflector.backoff = BackoffPolicy{5s, 10s, 2.0, 0.0};
    return o;
  }

  // The bytes of the ADDED event of Service ns/name, as the watch carried them.
  size_t addedLineLength(const std::string& ns, const std::string& name) {
    size_t n = 0;
    server->withState([&](fake::FakeState& s) {
      n = fake::watchEventJson("ADDED", s.get(servicesResource(), ns, name).body).size();
    });
    return n;
  }

  // Starts the source and has its Service watch deliver goodEvents ADDED events; returns
  // how many bytes that watch has carried.
  size_t startWithGoodEvents(int goodEvents) {
    startSource(connection(), slowBackoffOptions());
    EXPECT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
    size_t offset = 0;
    for (int i = 0; i < goodEvents; ++i) {
      std::string name = "good-" + std::to_string(i);
      server->apply(serviceJson("shop", name, 80));
      EXPECT_TRUE(runUntil([&] { return handler.services.count("shop/" + name) > 0; }));
      offset += addedLineLength("shop", name);
    }
    return offset;
  }

  // The change made after the bad bytes reaches the handler within 1 s, through one watch
  // restarted from the last good resourceVersion, without a relist.
  void expectResumedAtOnce(const std::string& lastGood, const std::string& after) {
    auto changed = std::chrono::steady_clock::now();
    server->apply(serviceJson("shop", after, 80));
    ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/" + after) > 0; }, 1s,
                         "the change after the bad bytes, within 1 s"))
        << problemList();
    std::cout << "[   info   ] the change arrived "
              << std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           changed).count()
              << " ms after it was made\n";
    EXPECT_EQ(source->metrics().decodeErrors("Service"), 1);
    EXPECT_EQ(source->metrics().watchRestarts("Service"), 1);
    EXPECT_EQ(source->metrics().relists("Service"), 0) << "the resourceVersion is still good";
    EXPECT_EQ(server->countRequests(std::string(kServiceWatch) + "&resourceVersion=" + lastGood +
                                    "&"),
              1u)
        << "one watch, from the last event decoded";
    EXPECT_EQ(source->metrics().decodeErrors("EndpointSlice"), 0) << "its stream was good";
  }
};

// The API server (or a proxy) cuts an event off mid-object; the next event follows at
// once. The cut change must not be lost: the watch restarts from the version before it
// and the server sends it again, then the change after it.
TEST_P(UndecodableWatchTest, TruncatedEventRestartsTheWatchFromTheLastGoodVersionAtOnce) {
  startServer();
  size_t offset = startWithGoodEvents(GetParam().goodEvents);
  std::string lastGood = source->serviceReflector().resourceVersion();
  size_t mark = handler.events.size();
  server->clearRequestLog();
  LogCapture log;

  // Cut inside the string "Service": the next event's '{' continues that string, its '"'
  // ends it, and its 't' cannot follow a value: the first byte the framer can refuse.
  const std::string cutAfter = R"({"type":"ADDED","object":{"kind":"Serv)";
  server->truncateNextWatchEvent("Service", cutAfter.size());
  server->apply(serviceJson("shop", "cut", 80));
  runFor(100ms);
  EXPECT_FALSE(handler.services.count("shop/cut")) << "half an event delivers nothing";
  server->withState([&](fake::FakeState& s) {
    std::string line = fake::watchEventJson("ADDED", s.get(servicesResource(), "shop", "cut").body);
    ASSERT_EQ(line.rfind(cutAfter, 0), 0u) << "the cut falls elsewhere: " << line;
  });

  expectResumedAtOnce(lastGood, "after-cut");
  EXPECT_THAT(handler.since(mark), ElementsAre("+Service shop/cut", "+Service shop/after-cut"))
      << "the cut change is sent again, not skipped; nothing twice";
  size_t badByte = offset + cutAfter.size() + 2;
  std::string line = lineWith(log.take(), {"watch Service: unable to decode an event from the watch stream",
                                           "at offset " + std::to_string(badByte) + " "});
  EXPECT_NE(line, "") << "no warning names the kind and offset " << badByte << " in:\n"
                      << log.take();
  EXPECT_NE(line.find("expected ',' or '}', got character 't'"), std::string::npos) << line;
  std::cout << "[   info   ] " << line << "\n";
}

// Bytes that are not JSON between two events (a proxy's error page, a TLS record in the
// body): the watch restarts at once, and the change made after them arrives.
TEST_P(UndecodableWatchTest, GarbageBetweenEventsRestartsTheWatchAtOnce) {
  startServer();
  size_t offset = startWithGoodEvents(GetParam().goodEvents);
  std::string lastGood = source->serviceReflector().resourceVersion();
  size_t mark = handler.events.size();
  server->clearRequestLog();
  LogCapture log;

  ASSERT_EQ(server->injectRawWatchBytes("Service", "\x16\x03\x01\x00\x02proxy error\r\n"), 1u);
  expectResumedAtOnce(lastGood, "after-garbage");
  EXPECT_THAT(handler.since(mark), ElementsAre("+Service shop/after-garbage"));
  std::string line = lineWith(log.take(), {"watch Service: unable to decode an event from the watch stream",
                                           "at offset " + std::to_string(offset) + ": unexpected byte 0x16"});
  EXPECT_NE(line, "") << "no warning names the kind and offset " << offset << " in:\n"
                      << log.take();
  std::cout << "[   info   ] " << line << "\n";
}

INSTANTIATE_TEST_SUITE_P(
    Streams, UndecodableWatchTest,
    ::testing::Values(StreamCase{"FirstOnTheWatch", 0}, StreamCase{"AfterEvents", 2}),
    [](const ::testing::TestParamInfo<StreamCase>& info) { return info.param.name; });

// An event that never ends (client-go: "object to decode was longer than maximum allowed
// size", 16 MiB): the client stops reading at the bound, counts the error and watches
// again. The fake counts what it could write before the client closed the connection:
// the bound plus what the kernel's socket buffers hold, far below what an unbounded
// buffer would have taken.
TEST_F(SourceTest, EndlessEventStopsAtTheBoundAndTheWatchRestartsAtOnce) {
  startServer();
  auto o = fastOptions();
  o.reflector.backoff = BackoffPolicy{5s, 10s, 2.0, 0.0};
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  std::string lastGood = source->serviceReflector().resourceVersion();
  server->clearRequestLog();

  ASSERT_EQ(server->streamEndlessWatchEvent("Service"), 1u);
  // The error is counted where the byte is refused; the warning follows when the watch
  // has ended, one turn of the io_context later.
  ASSERT_TRUE(runUntil([&] { return source->metrics().decodeErrors("Service") >= 1 &&
                                    hasProblem("unable to decode an event") &&
                                    server->endlessEventStats().ended == 1; },
                       30s, "the client to give up on the endless event"))
      << problemList();
  const uint64_t bound = 16u << 20;
  uint64_t written = server->endlessEventStats().bytes;
  EXPECT_GE(written, bound) << "it stopped before the bound";
  EXPECT_LT(written, 2 * bound) << "the client read far past the bound of " << bound;
  EXPECT_TRUE(hasProblem("the event is larger than 16777216 bytes")) << problemList();

  server->apply(serviceJson("shop", "after-endless", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-endless") > 0; }, 1s,
                       "the change after the endless event, within 1 s"))
      << problemList();
  EXPECT_EQ(source->metrics().decodeErrors("Service"), 1);
  EXPECT_EQ(source->metrics().relists("Service"), 0);
  EXPECT_EQ(server->countRequests(std::string(kServiceWatch) + "&resourceVersion=" + lastGood + "&"),
            1u);
}

// A stream that breaks again and again with nothing decoded in between (a proxy that
// mangles every watch) must not be re-read as fast as the server answers: only the first
// restart is at once, the next ones wait on the request backoff.
TEST_F(SourceTest, UndecodableWatchesInARowBackOff) {
  startServer();
  startSource(connection());
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));
  server->clearRequestLog();
  Failure f;
  f.prefix = kServiceWatch;
  f.kind = Failure::Kind::RawWatch;
  f.body = "<html>502 Bad Gateway</html>\n";
  f.times = -1;
  server->injectFailure(f);
  ASSERT_EQ(server->injectRawWatchBytes("Service", f.body), 1u);

  ASSERT_TRUE(runUntil([&] { return server->countRequests(kServiceWatch) >= 5; }, 10s,
                       "five watches"))
      << problemList();
  std::vector<double> gaps;
  auto times = requestTimes(kServiceWatch);
  for (size_t i = 1; i < 5; ++i) {
    gaps.push_back(std::chrono::duration<double, std::milli>(times[i] - times[i - 1]).count());
  }
  // Backoff 50ms doubling (jitter fixed at 0): the first restart at once, then 50, 100,
  // 200, 400 between watches. Checked from below only: a timer never fires early.
  const double want[] = {50, 100, 200, 400};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GE(gaps[i], want[i] - 5) << "gap " << i;
  }
  EXPECT_GE(source->metrics().decodeErrors("Service"), 5);
  EXPECT_TRUE(hasProblem("unexpected character '<' between watch events")) << problemList();
  EXPECT_EQ(source->metrics().relists("Service"), 0);

  server->clearInjectedFailures();
  ASSERT_TRUE(runUntil([&] { return server->activeWatches() == 2; }, 5s, "a watch again"));
  server->apply(serviceJson("shop", "after-mangling", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-mangling") > 0; }));
}

}  // namespace
}  // namespace switchyard::k8s::apiserver::testing
