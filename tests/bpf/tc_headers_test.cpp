// The tc programs' parse stage: IPv4 options and IPv6 extension headers are walked (the
// L4 header found behind them, the packet translated), and what must not be translated
// (source routing, a chain longer than the programs walk) passes untouched and counted.
#include "tc_fixture.h"

namespace switchyard::bpftest {
namespace {

PacketShape ipv4Options(std::vector<uint8_t> opts) {
  PacketShape s;
  s.ipv4Options = std::move(opts);
  return s;
}

PacketShape v6Ext(std::vector<std::pair<uint8_t, std::vector<uint8_t>>> ext) {
  PacketShape s;
  s.v6Ext = std::move(ext);
  return s;
}

// PadN filling an options header body of n bytes (hop-by-hop, destination options).
std::vector<uint8_t> padN(size_t n) {
  std::vector<uint8_t> body(n, 0);
  body[0] = 1;  // PadN
  body[1] = static_cast<uint8_t>(n - 2);
  return body;
}

struct HeaderCase {
  const char* name;
  const char* client;
  const char* vip;
  PacketShape shape;
  bool translated;  // false: must pass byte for byte, counted as tc_pass_headers
};

class TcHeaders : public TcProgramTest, public ::testing::WithParamInterface<HeaderCase> {};

TEST_P(TcHeaders, Packet) {
  const HeaderCase& c = GetParam();
  for (uint8_t proto : {uint8_t{IPPROTO_TCP}, uint8_t{IPPROTO_UDP}}) {
    SCOPED_TRACE(proto == IPPROTO_TCP ? "TCP" : "UDP");
    bool v6 = std::strchr(c.client, ':');
    const char* vip = proto == IPPROTO_TCP ? c.vip : (v6 ? "2001:db8:1::53" : "198.19.0.53");
    uint16_t port = proto == IPPROTO_TCP ? 80 : 53;
    Packet in = makePacket(proto, c.client, 40500, vip, port, 0x02, "payload", c.shape);
    ASSERT_TRUE(in.l4ChecksumOk()) << "the crafted packet itself";
    uint64_t passed = counter(SY_REASON_TC_PASS_HEADERS);
    Result r = run(Program::TcFromPod, in);
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    if (!c.translated) {
      EXPECT_EQ(r.out.bytes, in.bytes) << "a packet we must not translate was modified";
      EXPECT_EQ(counter(SY_REASON_TC_PASS_HEADERS), passed + 1);
      continue;
    }
    EXPECT_NE(r.out.dst(), in.dst()) << "the L4 header behind the options was not found";
    EXPECT_EQ(r.out.l3len(), in.l3len()) << "options and extension headers are kept";
    EXPECT_EQ(0, std::memcmp(r.out.bytes.data() + r.out.l3off + (v6 ? 40 : 20),
                             in.bytes.data() + in.l3off + (v6 ? 40 : 20), in.l3len() - (v6 ? 40 : 20)))
        << "options or extension headers changed";
    EXPECT_TRUE(r.out.ipChecksumOk());
    EXPECT_TRUE(r.out.l4ChecksumOk());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, TcHeaders,
    ::testing::Values(
        // Record route (type 7, length 7, pointer 4, one slot) + end of list.
        HeaderCase{"ipv4_record_route_option", "198.18.1.2", "198.19.0.10",
                   ipv4Options({7, 7, 4, 0, 0, 0, 0, 0}), true},
        HeaderCase{"ipv4_nops", "198.18.1.2", "198.19.0.10", ipv4Options({1, 1, 1, 0}), true},
        // Loose source route: the destination is not the final one.
        HeaderCase{"ipv4_loose_source_route", "198.18.1.2", "198.19.0.10",
                   ipv4Options({0x83, 7, 4, 198, 18, 16, 9, 0}), false},
        HeaderCase{"ipv4_malformed_option_length", "198.18.1.2", "198.19.0.10",
                   ipv4Options({7, 1, 0, 0}), false},
        HeaderCase{"ipv6_hop_by_hop", "2001:db8:1::2", "2001:db8:1::10", v6Ext({{0, padN(6)}}), true},
        HeaderCase{"ipv6_hop_by_hop_and_destination_options", "2001:db8:1::2", "2001:db8:1::10",
                   v6Ext({{0, padN(6)}, {60, padN(14)}}), true},
        // Routing header type 4 (segment routing) with segments left 1: not the final
        // destination. Body: type, segments left, last entry, flags, tag(2), one segment.
        HeaderCase{"ipv6_routing_with_segments_left", "2001:db8:1::2", "2001:db8:1::10",
                   v6Ext({{43, {4, 1, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}}}),
                   false},
        HeaderCase{"ipv6_routing_done", "2001:db8:1::2", "2001:db8:1::10",
                   v6Ext({{43, {4, 0, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}}}),
                   true},
        HeaderCase{"ipv6_nine_extension_headers", "2001:db8:1::2", "2001:db8:1::10",
                   v6Ext({{60, padN(6)}, {60, padN(6)}, {60, padN(6)}, {60, padN(6)}, {60, padN(6)},
                          {60, padN(6)}, {60, padN(6)}, {60, padN(6)}, {60, padN(6)}}),
                   false}),
    [](const auto& info) { return std::string(info.param.name); });

// The reply of a flow whose request carried extension headers comes back plain; the flow
// is the same.
TEST_F(TcProgramTest, AFlowWithExtensionHeadersIsReverseNated) {
  Packet req = makePacket(IPPROTO_TCP, "2001:db8:1::2", 40501, "2001:db8:1::10", 80, 0x02, "p",
                          v6Ext({{60, padN(6)}}));
  ASSERT_EQ(run(Program::TcFromPod, req).out.dst(), "[2001:db8:16::2]:8080");
  Packet reply = makePacket(IPPROTO_TCP, "2001:db8:16::2", 8080, "2001:db8:1::2", 40501, 0x12, "r");
  Result r = run(Program::TcToPod, reply);
  EXPECT_EQ(r.out.src(), "[2001:db8:1::10]:80");
  EXPECT_TRUE(r.out.l4ChecksumOk());
}

}  // namespace
}  // namespace switchyard::bpftest
