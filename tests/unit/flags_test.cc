#include "flags.h"

#include <gtest/gtest.h>

namespace leasehold::cli {
namespace {

using namespace std::chrono_literals;

TEST(FlagsTest, Durations) {
  EXPECT_EQ(*parse_duration("15s"), 15s);
  EXPECT_EQ(*parse_duration("500ms"), 500ms);
  EXPECT_EQ(*parse_duration("1m30s"), 90s);
  EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
  // Parts that are each fine but whose sum overflows (found by fuzz.duration).
  std::string many;
  for (int i = 0; i < 40; ++i) many += "277777h";
  for (const char* bad : {"", "15", "s", "15x", "abc", "1e99h", many.c_str()}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("not a duration"), std::string::npos) << bad;
  }
}

TEST(FlagsTest, ParsesAndNamesProblems) {
  Flags f({{"lock", "", ""}, {"quiet", "", "false", true}});
  ASSERT_TRUE(f.parse({"--lock", "file:///x", "--quiet", "--", "sleep", "1"}, 0).ok());
  EXPECT_EQ(f.get("lock"), "file:///x");
  EXPECT_EQ(f.get("quiet"), "true");
  EXPECT_EQ(f.rest(), (std::vector<std::string>{"sleep", "1"}));

  Flags g({{"lock", "", ""}});
  auto r = g.parse({"--lokc=x"}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "unknown flag --lokc (see --help)");
  Flags h({{"lock", "", ""}});
  EXPECT_EQ(h.parse({"--lock"}, 0).error().message(), "flag --lock needs a value");
  Flags k({{"lock", "", ""}});
  EXPECT_NE(k.parse({"stray"}, 0).error().message().find("unexpected argument"), std::string::npos);
}

TEST(FlagsTest, EnvironmentFallback) {
  EXPECT_EQ(env_name("leader-elect-lease-duration"), "LEASEHOLD_LEADER_ELECT_LEASE_DURATION");
  setenv("LEASEHOLD_LOCK", "mem://from-env", 1);
  Flags f({{"lock", "", ""}});
  ASSERT_TRUE(f.parse({}, 0).ok());
  EXPECT_EQ(f.get("lock"), "mem://from-env");
  Flags g({{"lock", "", ""}});
  ASSERT_TRUE(g.parse({"--lock=mem://flag"}, 0).ok());
  EXPECT_EQ(g.get("lock"), "mem://flag");  // the flag wins
  unsetenv("LEASEHOLD_LOCK");
}

}  // namespace
}  // namespace leasehold::cli
