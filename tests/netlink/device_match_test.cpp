// bpf.devices patterns: exact names and fnmatch(3) globs against a made-up node's links.
#include "netlink/device_match.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace switchyard::netlink {
namespace {

std::vector<Link> nodeLinks() {
  std::vector<Link> links;
  int ifindex = 0;
  for (const char* name :
       {"lo", "eth0", "eth1", "veth1a2b", "cali0c9d", "lxc_health", "lxc12ab", "vethx", "br-pods", "weird[0]"}) {
    Link l;
    l.ifindex = ++ifindex;
    l.name = name;
    links.push_back(l);
  }
  // Out of ifindex order on purpose: the result is in ifindex order whatever the input's.
  std::swap(links[1], links[8]);
  return links;
}

std::vector<std::string> names(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const Link& l : matchDevices(patterns, nodeLinks())) {
    out.push_back(l.name);
  }
  return out;
}

struct MatchCase {
  const char* name;
  std::vector<std::string> patterns;
  std::vector<std::string> matched;  // in ifindex order
};

class DeviceMatch : public ::testing::TestWithParam<MatchCase> {};

TEST_P(DeviceMatch, NamesTheLinksThePatternsMatch) {
  EXPECT_EQ(names(GetParam().patterns), GetParam().matched) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, DeviceMatch,
    ::testing::Values(MatchCase{"AnExactName", {"eth1"}, {"eth1"}},
                      // A plain name is not a prefix: "eth" names no device.
                      MatchCase{"APlainNameIsNotAPrefix", {"eth"}, {}},
                      MatchCase{"AStarGlob", {"veth*"}, {"veth1a2b", "vethx"}},
                      MatchCase{"SeveralGlobsInIfindexOrder", {"lxc*", "cali*"}, {"cali0c9d", "lxc_health", "lxc12ab"}},
                      MatchCase{"ACharacterClass", {"eth[01]"}, {"eth0", "eth1"}},
                      MatchCase{"AQuestionMarkIsOneCharacter", {"veth?"}, {"vethx"}},
                      // A link matched by two patterns is listed once.
                      MatchCase{"OverlappingPatternsListALinkOnce", {"veth*", "vethx", "*x"}, {"veth1a2b", "vethx"}},
                      // A name equal to the pattern matches even where fnmatch would read it as a glob.
                      MatchCase{"ANameWithGlobCharactersMatchesItself", {"weird[0]"}, {"weird[0]"}},
                      // Nothing is left out for its kind: "*" names lo too.
                      MatchCase{"StarNamesEveryLink",
                                {"*"},
                                {"lo", "eth0", "eth1", "veth1a2b", "cali0c9d", "lxc_health", "lxc12ab", "vethx",
                                 "br-pods", "weird[0]"}},
                      MatchCase{"NoPatternsNameNothing", {}, {}}),
    [](const ::testing::TestParamInfo<MatchCase>& info) { return std::string(info.param.name); });

TEST(DevicePatternError, RefusesPatternsThatCanNeverMatch) {
  EXPECT_EQ(devicePatternError(""), "must not be empty");
  EXPECT_EQ(devicePatternError("eth 0"), "no interface name has '/', ':' or whitespace in it");
  EXPECT_EQ(devicePatternError("eth0:1"), "no interface name has '/', ':' or whitespace in it");
  EXPECT_EQ(devicePatternError("a/b"), "no interface name has '/', ':' or whitespace in it");
  EXPECT_EQ(devicePatternError("averyverylongname"), "longer than an interface name can be (15 characters)");
}

TEST(DevicePatternError, AcceptsNamesAndGlobs) {
  for (const char* p : {"eth0", "veth*", "cali*", "lxc*", "eth[01]", "fifteen_chars_x", "[abcdefghij][klmnop]*"}) {
    EXPECT_EQ(devicePatternError(p), std::nullopt) << p;
  }
}

}  // namespace
}  // namespace switchyard::netlink
