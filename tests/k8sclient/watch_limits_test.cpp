// The bounds on what the client buffers: clientConnection.maxEventBytes (a watch event,
// 16 MiB by default as in client-go) and the LIST response bound derived from it. Past
// either, the client stops reading, counts a decode error and tries again; it never
// buffers without limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "tests/k8sclient/harness.h"

namespace switchyard::k8s::apiserver::testing {
namespace {

using ::testing::ElementsAre;

constexpr const char* kServiceList = "GET /api/v1/services?limit=";

TEST(MaxEventBytesConfig, DefaultsTo16MiBAndIsCheckedWithItsLine) {
  struct Case {
    const char* name;
    std::string value;  // "" = the field is not set
    uint64_t want;
    std::string error;  // "" = valid
  } cases[] = {
      {"unset: client-go's bound", "", 16777216, ""},
      {"the smallest", "2097152", 2097152, ""},
      {"the largest", "1073741824", 1073741824, ""},
      {"below etcd's object limit", "1048576", 0,
       "cfg.yaml:4: clientConnection.maxEventBytes: must be between 2097152 and 1073741824, got 1048576"},
      {"too large", "1073741825", 0,
       "cfg.yaml:4: clientConnection.maxEventBytes: must be between 2097152 and 1073741824, got 1073741825"},
      {"a quantity is not bytes", "16Mi", 0,
       "cfg.yaml:4: clientConnection.maxEventBytes: must be a number, got \"16Mi\""},
      {"not an integer", "4194304.5", 0,
       "cfg.yaml:4: clientConnection.maxEventBytes: must be an integer, got 4194304.5"},
      {"not a scalar", "[1]", 0, "cfg.yaml:4: clientConnection.maxEventBytes: must be a number"},
  };
  for (const auto& c : cases) {
    std::string yaml = "apiVersion: switchyard.dev/v1alpha1\nkind: SwitchyardConfiguration\n"
                       "clientConnection:\n";
    yaml += c.value.empty() ? "  qps: 5\n" : "  maxEventBytes: " + c.value + "\n";
    config::Config cfg;
    std::vector<std::string> errors;
    bool ok = config::parseConfig(yaml, "cfg.yaml", cfg, errors);
    if (c.error.empty()) {
      EXPECT_TRUE(ok) << c.name << ": " << ::testing::PrintToString(errors);
      EXPECT_EQ(cfg.clientConnection.maxEventBytes, c.want) << c.name;
    } else {
      EXPECT_FALSE(ok) << c.name;
      EXPECT_THAT(errors, ElementsAre(c.error)) << c.name;
    }
  }
}

TEST(ReflectorOptions, ListBoundIs256MiBOr16LargestEvents) {
  EXPECT_EQ(ReflectorOptions{}.maxEventBytes, 16u << 20);
  EXPECT_EQ(maxListBytesFor(2u << 20), 256u << 20);
  EXPECT_EQ(maxListBytesFor(16u << 20), 256u << 20);
  EXPECT_EQ(maxListBytesFor(64u << 20), 1024u << 20);
}

// The bound is on the memory, not only on the bytes counted: the buffer's capacity never
// passes it, and a large event's buffer is released once delivered.
TEST(JsonFramer, BufferMemoryNeverPassesTheBoundAndIsReleased) {
  const size_t bound = 1u << 20;
  JsonFramer framer(bound);
  const std::string head = R"({"type":"ADDED","object":{"metadata":{"name":")";
  std::string big = head + std::string(bound - head.size() - 4, 'x') + "\"}}}";
  ASSERT_EQ(big.size(), bound);
  size_t frames = 0, mostCapacity = 0;
  for (size_t off = 0; off < big.size(); off += 16384) {
    ASSERT_TRUE(framer.feed(big.substr(off, 16384), [&](std::string_view f) {
      ++frames;
      EXPECT_EQ(f.size(), bound);
    })) << framer.error();
    mostCapacity = std::max(mostCapacity, framer.capacity());
  }
  EXPECT_EQ(frames, 1u) << "an event of exactly the bound passes";
  EXPECT_LE(mostCapacity, bound);
  EXPECT_LE(framer.capacity(), 256u << 10) << "released after delivery";

  bool ok = framer.feed(head, [](std::string_view) {});
  const std::string piece(16384, 'x');
  for (size_t fed = head.size(); ok && fed < 4 * bound; fed += piece.size()) {
    ok = framer.feed(piece, [](std::string_view) {});
    mostCapacity = std::max(mostCapacity, framer.capacity());
  }
  EXPECT_FALSE(ok);
  EXPECT_EQ(framer.failure(), JsonFramer::Failure::TooLarge);
  EXPECT_EQ(framer.errorOffset(), big.size() + bound) << framer.error();
  EXPECT_LE(mostCapacity, bound);
  framer.reset();
  EXPECT_EQ(framer.capacity(), 0u);
  EXPECT_EQ(framer.offset(), 0u);
  EXPECT_TRUE(framer.feed("{}", [](std::string_view) {})) << "usable again after reset";
}

// clientConnection.maxEventBytes reaches the reflectors: an event just under it arrives,
// one that never ends stops there.
TEST_F(SourceTest, MaxEventBytesLetsLargeEventsThroughAndStopsEndlessOnes) {
  startServer();
  auto o = fastOptions();
  o.reflector.maxEventBytes = 2u << 20;
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return source->synced() && server->activeWatches() == 2; }));

  // 1.5 MiB of annotation: etcd's default limit for one object.
  std::string large = serviceJson("shop", "large", 80);
  large.replace(large.find(R"("metadata":{)"), 12,
                R"("metadata":{"annotations":{"big":")" + std::string(1536u << 10, 'a') + "\"},");
  ASSERT_EQ(server->apply(large).status, 201);
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/large") > 0; }));
  EXPECT_EQ(source->metrics().decodeErrors("Service"), 0);

  ASSERT_EQ(server->streamEndlessWatchEvent("Service"), 1u);
  ASSERT_TRUE(runUntil([&] { return source->metrics().decodeErrors("Service") == 1 &&
                                    hasProblem("unable to decode an event") &&
                                    server->endlessEventStats().ended == 1; },
                       20s, "the client to give up on the endless event"))
      << problemList();
  EXPECT_TRUE(hasProblem("the event is larger than 2097152 bytes (clientConnection.maxEventBytes)"))
      << problemList();
  // What the client read, plus what the kernel's socket buffers held when it closed.
  EXPECT_LT(server->endlessEventStats().bytes, uint64_t{16} << 20);
  server->apply(serviceJson("shop", "after-endless", 80));
  ASSERT_TRUE(runUntil([&] { return handler.services.count("shop/after-endless") > 0; }));
  EXPECT_EQ(source->metrics().relists("Service"), 0);
}

// A LIST response over its bound is dropped where it crosses it, counted as a decode
// error and retried after the request backoff; once it fits, the source syncs.
TEST_F(SourceTest, ListLargerThanItsBoundIsADecodeErrorRetriedWithBackoff) {
  startServer();
  for (int i = 0; i < 40; ++i) {
    server->apply(serviceJson("bulk", "svc-" + std::to_string(i), 1000 + i));
  }
  auto o = fastOptions();
  o.reflector.maxListBytes = 16u << 10;
  startSource(connection(), o);
  ASSERT_TRUE(runUntil([&] { return server->countRequests(kServiceList) >= 3; }, 10s,
                       "three LISTs of Services"))
      << problemList();
  EXPECT_FALSE(source->synced());
  EXPECT_GE(source->metrics().decodeErrors("Service"), 2);
  EXPECT_GE(source->metrics().requests("LIST", "<error>"), 2u);
  EXPECT_TRUE(hasProblem("LIST Service: the response is larger than 16384 bytes; retrying in 0.05s"))
      << problemList();
  auto gaps = gapsMs(kServiceList);
  ASSERT_GE(gaps.size(), 2u);
  EXPECT_GE(gaps[0], 50 - 5);
  EXPECT_GE(gaps[1], 100 - 5);
  EXPECT_TRUE(handler.services.empty()) << "nothing from a list that was not read whole";

  server->withState([&](fake::FakeState& s) {
    for (int i = 0; i < 40; ++i) {
      s.remove(*fake::findResource("", "v1", "services"), "bulk", "svc-" + std::to_string(i));
    }
  });
  ASSERT_TRUE(runUntil([&] { return source->synced(); }, 10s, "synced")) << problemList();
  EXPECT_EQ(handler.services.size(), 2u);
  EXPECT_EQ(handler.syncs, 1);
}

}  // namespace
}  // namespace switchyard::k8s::apiserver::testing
