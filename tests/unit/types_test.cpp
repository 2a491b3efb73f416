// lb::IpAddr and lb::Cidr: the one address and prefix parser that lb/, netlink/ and config/
// share. Prefixes parse as Go's net.ParseCIDR does (host bits dropped), which is what
// kube-proxy applies to nodePortAddresses, clusterCIDR and loadBalancerSourceRanges.
#include "lb/types.h"

#include <gtest/gtest.h>

namespace switchyard::lb {
namespace {

TEST(Cidr, ParsesBothFamiliesAsOne128BitPrefix) {
  auto v4 = Cidr::parse("198.18.0.0/15");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->prefixLen, 96 + 15);
  EXPECT_TRUE(v4->addr.isV4());
  EXPECT_EQ(v4->str(), "198.18.0.0/15");
  auto v6 = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->prefixLen, 32);
  EXPECT_EQ(v6->str(), "2001:db8::/32");
}

TEST(Cidr, DropsHostBitsAsGoParseCIDRDoes) {
  auto c = Cidr::parse("198.18.7.9/16");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->str(), "198.18.0.0/16");
  EXPECT_TRUE(c->contains(*IpAddr::parse("198.18.255.1")));
  EXPECT_FALSE(c->contains(*IpAddr::parse("198.19.0.1")));
  EXPECT_FALSE(c->contains(*IpAddr::parse("2001:db8::1")));
}

TEST(Cidr, ZeroPrefixesMatchTheirFamilyOnly) {
  auto all4 = Cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(all4);
  EXPECT_TRUE(all4->contains(*IpAddr::parse("203.0.113.1")));
  EXPECT_FALSE(all4->contains(*IpAddr::parse("2001:db8::1")));
}

struct BadCidr {
  const char* text;
  const char* why;
};

class CidrRefuses : public ::testing::TestWithParam<BadCidr> {};

TEST_P(CidrRefuses, WithAReason) {
  std::string why;
  EXPECT_FALSE(Cidr::parse(GetParam().text, &why));
  EXPECT_EQ(why, GetParam().why);
}

constexpr const char* kNotCidr = "must be a CIDR (such as 198.18.0.0/15 or 2001:db8::/32)";

INSTANTIATE_TEST_SUITE_P(
    Texts, CidrRefuses,
    ::testing::Values(BadCidr{"198.18.0.1", kNotCidr}, BadCidr{"198.18.0.0/", kNotCidr},
                      BadCidr{"198.18.0.0/1x", kNotCidr}, BadCidr{"198.18.0.0/-1", kNotCidr},
                      BadCidr{"198.18.0.0/ 8", kNotCidr}, BadCidr{"", kNotCidr},
                      BadCidr{"foo/8", kNotCidr},
                      BadCidr{"198.18.0.0/33", "an IPv4 prefix length must be 0-32"},
                      BadCidr{"2001:db8::/129", "an IPv6 prefix length must be 0-128"},
                      BadCidr{"::ffff:198.18.0.0/112",
                              "an IPv4-mapped IPv6 prefix is ambiguous: write the IPv4 CIDR"}),
    [](const ::testing::TestParamInfo<BadCidr>& info) { return "case" + std::to_string(info.index); });

}  // namespace
}  // namespace switchyard::lb
