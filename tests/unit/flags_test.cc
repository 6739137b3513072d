#include "flags.h"

#include "command_line.h"

#include <gtest/gtest.h>

namespace leasehold::cli {
namespace {

using namespace std::chrono_literals;
using Vars = std::map<std::string, std::string>;

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

TEST(FlagsTest, ErrorsNameTheVariableAValueCameFrom) {
  Env env({{"LEASEHOLD_RETRY", "abc"}, {"LEASEHOLD_QUIET", "maybe"}});
  Flags f({{"retry", "", "2s"}, {"quiet", "", "false", true}}, env);
  ASSERT_TRUE(f.parse({}, 0).ok());
  EXPECT_EQ(f.source("retry"), "LEASEHOLD_RETRY");
  EXPECT_EQ(f.get_duration("retry").error().message(),
            "LEASEHOLD_RETRY: \"abc\" is not a duration (expected a number; use e.g. 15s, 500ms, 1m30s)");
  EXPECT_EQ(f.get_bool("quiet").error().message(), "LEASEHOLD_QUIET: \"maybe\" is not true or false");
  Flags g({{"retry", "", "2s"}}, env);
  ASSERT_TRUE(g.parse({"--retry=x"}, 0).ok());
  EXPECT_EQ(g.source("retry"), "--retry");  // the flag wins, and is named
  EXPECT_EQ(g.get_duration("retry").error().message().rfind("--retry: \"x\"", 0), 0u);
}

TEST(FlagsTest, LowerBoundsNameTheFlagAndTheBound) {
  Flags f({{"retry", "", "2s"}}, Env(Vars{}));
  ASSERT_TRUE(f.parse({"--retry=1ns"}, 0).ok());
  EXPECT_EQ(f.get_duration("retry", 100ms).error().message(), "--retry=1ns: below the minimum of 100ms");
  Flags g({{"retry", "", "2s"}}, Env(Vars{}));
  ASSERT_TRUE(g.parse({"--retry=100ms"}, 0).ok());
  EXPECT_EQ(*g.get_duration("retry", 100ms), 100ms);
}

TEST(FlagsTest, DashHIsHelp) {
  Flags f({{"help", "", "", true}}, Env(Vars{}));
  ASSERT_TRUE(f.parse({"-h"}, 0).ok());
  EXPECT_EQ(f.get("help"), "true");
}

TEST(CommandLineTest, RunChecksEverythingBeforeStarting) {
  const Env env{Vars{}};
  auto msg = [&](std::vector<std::string> args, const Env& e) {
    auto r = parse_run(args, false, e);
    return r ? std::string("ok") : r.error().message();
  };
  const std::vector<std::string> lock = {"--lock", "file:///run/x.lease"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = lock;
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.push_back("true");
    return a;
  };
  EXPECT_EQ(msg(with({"--identity", "a"}), env), "ok");
  EXPECT_EQ(msg(with({"--identity", "a\nb"}), env),
            "--identity: contains the control character \\x0a (an identity is written into log lines and the lease)");
  EXPECT_EQ(msg(with({}), Env(Vars{{"POD_NAME", "p\tq"}})),
            "POD_NAME: contains the control character \\x09 (an identity is written into log lines and the lease)");
  EXPECT_EQ(msg(with({"--identity", "a", "--leader-elect-retry-period=1ns"}), env),
            "--leader-elect-retry-period=1ns: below the minimum of 100ms");
  EXPECT_EQ(msg(with({"--identity", "a"}), Env(Vars{{"LEASEHOLD_LEADER_ELECT_RENEW_DEADLINE", "100ms"}})),
            "LEASEHOLD_LEADER_ELECT_RENEW_DEADLINE=100ms: below the minimum of 500ms");
  EXPECT_EQ(msg(with({"--identity", "a", "--leader-elect-lease-duration=0s"}), env),
            "--leader-elect-lease-duration=0s: below the minimum of 1s");
  EXPECT_EQ(msg(with({"--identity", "a", "--http-address=8090"}), env),
            "--http-address \"8090\": want HOST:PORT, :PORT or [IPV6]:PORT");
  EXPECT_EQ(msg(with({"--identity", "a", "--http-address=:http"}), env),
            "--http-address \":http\": port \"http\" is not a number from 0 to 65535");
  // The library's field names become the flag's, once (an identity that
  // contains a field name is not rewritten again: this once looped).
  EXPECT_EQ(msg(with({"--identity", "identity", "--leader-elect-renew-deadline=20s"}), env),
            "--leader-elect-lease-duration: must be greater than --leader-elect-renew-deadline (20000ms), got 15000ms");
  EXPECT_EQ(msg(with({"--identity", "a"}), Env(Vars{{"LEASEHOLD_LEADER_ELECT_RENEW_DEADLINE", "20s"}})),
            "--leader-elect-lease-duration: must be greater than LEASEHOLD_LEADER_ELECT_RENEW_DEADLINE (20000ms), "
            "got 15000ms");
  auto help = parse_run({"-h"}, true, env);
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->help);
}

TEST(CommandLineTest, ForLifeRefusesTheFlagsItHasNoUseFor) {
  const Env env{Vars{}};
  auto msg = [&](std::vector<std::string> extra, const Env& e) {
    std::vector<std::string> a = {"--mode=for-life", "--leader-elect-resource-name=app-lock"};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.push_back("true");
    auto r = parse_run(a, false, e);
    return r ? std::string("ok") : r.error().message();
  };
  const std::string takes =
      " applies to --mode=lease only; leader-for-life takes --leader-elect-resource-name, "
      "--leader-elect-resource-namespace, --node-not-ready-grace, --grace-period, --release-on-cancel, "
      "--worker-cgroup, --kubeconfig, --kube-context and --log-format";
  EXPECT_EQ(msg({}, env), "ok");
  EXPECT_EQ(msg({"--grace-period=3s", "--release-on-cancel=false", "--leader-elect-resource-lock=configmaps"}, env),
            "ok");
  // Each was read by nothing in this mode: a probe of --http-address failed
  // with no word from the command.
  EXPECT_EQ(msg({"--http-address=:8090"}, env), "--mode=for-life: --http-address" + takes);
  EXPECT_EQ(msg({"--leader-elect-lease-duration=30s"}, env), "--mode=for-life: --leader-elect-lease-duration" + takes);
  EXPECT_EQ(msg({"--label-leader-pod=leader=true"}, env), "--mode=for-life: --label-leader-pod" + takes);
  EXPECT_EQ(msg({"--leader-elect-resource-lock=leases"}, env), "--mode=for-life: --leader-elect-resource-lock" + takes);
  EXPECT_EQ(msg({}, Env(Vars{{"LEASEHOLD_ON_CHILD_EXIT", "restart"}})),
            "--mode=for-life: LEASEHOLD_ON_CHILD_EXIT" + takes);
}

TEST(CommandLineTest, AdminBoundsAndRepair) {
  const Env env{Vars{}};
  EXPECT_EQ(parse_admin("observe", {"file:///x", "--poll-period=1ms"}, env).error().message(),
            "--poll-period=1ms: below the minimum of 100ms");
  EXPECT_EQ(parse_admin("release", {"file:///x", "--repair"}, env).error().message(),
            "release: --repair needs --force too (it replaces the record)");
  EXPECT_EQ(parse_admin("status", {"file:///x"}, Env(Vars{{"LEASEHOLD_OUTPUT", "xml"}})).error().message(),
            "LEASEHOLD_OUTPUT: \"xml\" is not table, wide, json or yaml");
  EXPECT_EQ(parse_admin("status", {"file:///x"}, Env(Vars{{"LEASEHOLD_OUTPUT", "yaml"}}))->output, "yaml");
  EXPECT_FALSE(parse_admin("status", {""}, env).ok());  // found by fuzz.command_line
  EXPECT_EQ(one_line("a\nb\x1b"), "a\\x0ab\\x1b");
}

}  // namespace
}  // namespace leasehold::cli
