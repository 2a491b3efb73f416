// nodePortAddresses as kube-proxy applies it (pkg/proxy/util/nodeport_addresses.go:
// NewNodePortAddresses per family, GetNodeIPs), on a made-up node's addresses.
#include "netlink/nodeport_addresses.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace switchyard::netlink {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Address addr(int ifindex, const std::string& ip, uint8_t prefixLen) {
  Address a;
  a.ifindex = ifindex;
  a.prefixLen = prefixLen;
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    uint8_t b[4];
    std::memcpy(b, &v4, 4);
    a.ip = ipv4Mapped(b);
    a.family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), a.ip.data()), 1) << ip;
    a.family = AF_INET6;
  }
  return a;
}

// A node: lo (1) with loopback and a /32 service address, eth0 (2) dual-stack with a
// link-local, eth1 (3) in another IPv4 network, and 198.18.1.2 also on a second link (4).
std::vector<Address> nodeAddresses() {
  return {addr(1, "127.0.0.1", 8),   addr(1, "::1", 128),          addr(1, "198.18.200.1", 32),
          addr(2, "198.18.1.2", 24), addr(2, "2001:db8:1::2", 64), addr(2, "fe80::1", 64),
          addr(3, "198.19.7.9", 16), addr(3, "2001:db8:7::9", 64), addr(4, "198.18.1.2", 24)};
}

std::vector<std::string> select(const std::vector<std::string>& entries) {
  std::vector<std::string> errors;
  auto npa = NodePortAddresses::parse(entries, errors);
  EXPECT_TRUE(npa) << ::testing::PrintToString(errors);
  if (!npa) {
    return {"<parse failed>"};
  }
  std::vector<std::string> out;
  for (const IpBytes& ip : npa->select(nodeAddresses())) {
    out.push_back(ipString(ip));
  }
  return out;
}

struct SelectCase {
  const char* name;
  std::vector<std::string> entries;
  std::vector<std::string> selected;  // sorted by bytes: IPv4 (::ffff:...) before 2001:db8::
};

class NodePortAddressesSelect : public ::testing::TestWithParam<SelectCase> {};

TEST_P(NodePortAddressesSelect, SelectsTheAddressesKubeProxyWould) {
  EXPECT_EQ(select(GetParam().entries), GetParam().selected) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, NodePortAddressesSelect,
    ::testing::Values(
        // kube-proxy MatchAll (addrtype LOCAL without localhost NodePorts): every address but
        // 127.0.0.0/8 and ::1; link-local fe80::/10 is left out too (see the header).
        SelectCase{"EmptyListMatchesAllButLoopbackAndLinkLocal",
                   {},
                   {"198.18.1.2", "198.18.200.1", "198.19.7.9", "2001:db8:1::2", "2001:db8:7::9"}},
        // NewNodePortAddresses: a family without a CIDR gets 0.0.0.0/0 or ::/0.
        SelectCase{"AnIpv4CidrLeavesIpv6MatchingAll",
                   {"198.18.0.0/16"},
                   {"198.18.1.2", "198.18.200.1", "2001:db8:1::2", "2001:db8:7::9"}},
        SelectCase{"AnIpv6CidrLeavesIpv4MatchingAll",
                   {"2001:db8:7::/48"},
                   {"198.18.1.2", "198.18.200.1", "198.19.7.9", "2001:db8:7::9"}},
        SelectCase{
            "CidrsOfBothFamiliesRestrictBoth", {"198.19.0.0/16", "2001:db8:1::/64"}, {"198.19.7.9", "2001:db8:1::2"}},
        SelectCase{"AnAddressInAnyOfSeveralCidrs",
                   {"198.18.1.0/24", "198.19.0.0/16"},
                   {"198.18.1.2", "198.19.7.9", "2001:db8:1::2", "2001:db8:7::9"}},
        // IsZeroCIDR: the zero CIDR wins over everything else of its family.
        SelectCase{"TheZeroCidrBesideAnotherMatchesAll",
                   {"198.19.0.0/16", "0.0.0.0/0", "::/0"},
                   {"198.18.1.2", "198.18.200.1", "198.19.7.9", "2001:db8:1::2", "2001:db8:7::9"}},
        // GetNodeIPs: loopback is selected only when a CIDR covers it.
        SelectCase{"ACidrCoveringLoopbackSelectsIt", {"127.0.0.0/8", "::1/128"}, {"::1", "127.0.0.1"}},
        SelectCase{"ACidrCoveringLinkLocalSelectsIt", {"fe80::/10", "198.18.200.1/32"}, {"198.18.200.1", "fe80::1"}},
        // net.ParseCIDR: the host bits of "198.18.1.7/24" are dropped.
        SelectCase{"HostBitsInACidrAreIgnored", {"198.18.1.7/24", "2001:db8:1::7/64"}, {"198.18.1.2", "2001:db8:1::2"}},
        SelectCase{"ACidrWithNoNodeAddressInItSelectsNone", {"203.0.113.0/24", "2001:db8:99::/48"}, {}}),
    [](const ::testing::TestParamInfo<SelectCase>& info) { return std::string(info.param.name); });

// GetNodeIPs dedups: an address on two links (198.18.1.2 on 2 and 4) is listed once.
TEST(NodePortAddresses, AnAddressOnTwoLinksIsSelectedOnce) {
  auto selected = select({"198.18.1.2/32"});
  EXPECT_EQ(std::count(selected.begin(), selected.end(), "198.18.1.2"), 1) << ::testing::PrintToString(selected);
}

TEST(NodePortAddresses, MatchesAllPerFamily) {
  std::vector<std::string> errors;
  auto npa = NodePortAddresses::parse({"198.18.0.0/15"}, errors);
  ASSERT_TRUE(npa);
  EXPECT_FALSE(npa->matchesAll(AF_INET));
  EXPECT_TRUE(npa->matchesAll(AF_INET6));
  EXPECT_EQ(npa->str(), "[198.18.0.0/15, all IPv6]");
}

struct ParseErrorCase {
  const char* name;
  std::vector<std::string> entries;
  std::vector<std::string> errors;
};

class NodePortAddressesParse : public ::testing::TestWithParam<ParseErrorCase> {};

TEST_P(NodePortAddressesParse, RefusesWithAnErrorNamingTheEntry) {
  std::vector<std::string> errors;
  EXPECT_FALSE(NodePortAddresses::parse(GetParam().entries, errors));
  EXPECT_EQ(errors, GetParam().errors);
}

INSTANTIATE_TEST_SUITE_P(
    Table, NodePortAddressesParse,
    ::testing::Values(
        // kube-proxy validation: "must be a valid CIDR" for an address without a length.
        ParseErrorCase{
            "AnAddressIsNotACidr",
            {"198.18.0.1"},
            {"nodePortAddresses[0]: \"198.18.0.1\": must be a CIDR (such as 198.18.0.0/15 or 2001:db8::/32)"}},
        ParseErrorCase{"AWordIsNotACidr",
                       {"198.18.0.0/15", "foo"},
                       {"nodePortAddresses[1]: \"foo\": must be a CIDR (such as 198.18.0.0/15 or 2001:db8::/32)"}},
        ParseErrorCase{
            "PrefixLengthsOutOfRange",
            {"198.18.0.0/33", "2001:db8::/129", "198.18.0.0/x"},
            {"nodePortAddresses[0]: \"198.18.0.0/33\": an IPv4 prefix length must be 0-32",
             "nodePortAddresses[1]: \"2001:db8::/129\": an IPv6 prefix length must be 0-128",
             "nodePortAddresses[2]: \"198.18.0.0/x\": must be a CIDR (such as 198.18.0.0/15 or 2001:db8::/32)"}},
        ParseErrorCase{"AnIpv4MappedPrefix",
                       {"::ffff:198.18.0.0/112"},
                       {"nodePortAddresses[0]: \"::ffff:198.18.0.0/112\": an IPv4-mapped IPv6 prefix is ambiguous: "
                        "write the IPv4 CIDR"}},
        ParseErrorCase{"AnEmptyEntry",
                       {""},
                       {"nodePortAddresses[0]: \"\": must be a CIDR (such as 198.18.0.0/15 or 2001:db8::/32)"}}),
    [](const ::testing::TestParamInfo<ParseErrorCase>& info) { return std::string(info.param.name); });

// kube-proxy's "primary" (the Node object's primary IPs) needs Node addresses switchyard does
// not read: it is refused, saying what to write instead.
TEST(NodePortAddresses, PrimaryIsRefusedWithWhatToWriteInstead) {
  std::vector<std::string> errors;
  EXPECT_FALSE(NodePortAddresses::parse({"primary"}, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("nodePortAddresses[0]: \"primary\": not supported"));
  EXPECT_THAT(errors[0], HasSubstr("ADDR/32, ADDR/128"));
}

TEST(NodePortAddresses, NoNodeAddressesSelectNone) {
  std::vector<std::string> errors;
  auto npa = NodePortAddresses::parse({}, errors);
  ASSERT_TRUE(npa);
  EXPECT_THAT(npa->select({}), IsEmpty());
  EXPECT_THAT(npa->select({addr(1, "127.0.0.1", 8), addr(1, "::1", 128)}), IsEmpty());
  EXPECT_THAT(errors, IsEmpty());
}

TEST(IpString, PrintsBothFamilies) {
  EXPECT_EQ(addr(1, "198.18.0.1", 24).str(), "198.18.0.1/24");
  EXPECT_EQ(addr(1, "2001:db8::1", 64).str(), "2001:db8::1/64");
  EXPECT_THAT(std::vector<std::string>{ipString(addr(1, "198.18.0.1", 24).ip)}, ElementsAre("198.18.0.1"));
}

}  // namespace
}  // namespace switchyard::netlink
