// Runtime timers that can be withdrawn, and core::WakeBatch (coalesced
// wake-ups between the I/O thread and the Kubernetes client's thread).
// Simulated clock, manual runtime: no sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "core/runtime_access.h"
#include "core/wake_batch.h"
#include "leasehold/elector.h"
#include "leasehold/runtime.h"
#include "support/manual_runtime.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;

TEST(RuntimeTimerTest, ACancelledTimerNeverRunsAndLeavesNothingPending) {
  SimulatedClock clock;
  Runtime rt(testing::manual_runtime_options(&clock));
  int ran = 0;
  uint64_t a = rt.post_timer(clock.now() + 1s, [&] { ran += 1; });
  uint64_t b = rt.post_timer(clock.now() + 2s, [&] { ran += 10; });
  ASSERT_NE(a, 0u);
  ASSERT_NE(b, 0u);
  ASSERT_NE(a, b);
  EXPECT_EQ(RuntimeAccess::pending_tasks(rt), 2u);
  EXPECT_TRUE(rt.cancel_timer(a));
  EXPECT_FALSE(rt.cancel_timer(a));  // already withdrawn
  EXPECT_EQ(RuntimeAccess::pending_tasks(rt), 1u);
  clock.advance(3s);
  EXPECT_EQ(rt.run_ready(), 1u);  // only b
  EXPECT_EQ(ran, 10);
  EXPECT_FALSE(rt.cancel_timer(b));  // it ran
  EXPECT_EQ(RuntimeAccess::pending_tasks(rt), 0u);
}

TEST(RuntimeTimerTest, ACancelledTimerBehindOthersLeavesAtOnceAndNeverRuns) {
  SimulatedClock clock;
  Runtime rt(testing::manual_runtime_options(&clock));
  std::vector<int> order;
  rt.post_at(clock.now() + 1s, [&] { order.push_back(1); });
  uint64_t two = rt.post_timer(clock.now() + 2s, [&] { order.push_back(2); });
  rt.post_at(clock.now() + 3s, [&] { order.push_back(3); });
  EXPECT_TRUE(rt.cancel_timer(two));
  EXPECT_EQ(RuntimeAccess::pending_tasks(rt), 2u);
  clock.advance(1500ms);
  EXPECT_EQ(rt.run_ready(), 1u);
  clock.advance(2s);
  EXPECT_EQ(rt.run_ready(), 1u);
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_EQ(RuntimeAccess::pending_tasks(rt), 0u);
}

TEST(RuntimeTimerTest, AnIdWhoseTimerIsGoneCancelsNothingThatReusedItsPlace) {
  SimulatedClock clock;
  Runtime rt(testing::manual_runtime_options(&clock));
  int ran = 0;
  uint64_t first = rt.post_timer(clock.now() + 1s, [&] { ran += 1; });
  clock.advance(1s);
  EXPECT_EQ(rt.run_ready(), 1u);
  // The next timer may take the first one's place; the old id must not
  // reach it.
  uint64_t second = rt.post_timer(clock.now() + 1s, [&] { ran += 10; });
  EXPECT_NE(first, second);
  EXPECT_FALSE(rt.cancel_timer(first));
  uint64_t cancelled = rt.post_timer(clock.now() + 1s, [&] { ran += 100; });
  EXPECT_TRUE(rt.cancel_timer(cancelled));
  clock.advance(1s);
  EXPECT_EQ(rt.run_ready(), 1u);
  EXPECT_EQ(ran, 11);
  // Neither the place of a cancelled timer, once dropped, nor ids never
  // issued reach anything.
  uint64_t third = rt.post_timer(clock.now() + 1s, [&] { ran += 1000; });
  EXPECT_FALSE(rt.cancel_timer(cancelled));
  EXPECT_FALSE(rt.cancel_timer(0));
  EXPECT_FALSE(rt.cancel_timer(third + 1));
  EXPECT_FALSE(rt.cancel_timer(third ^ (uint64_t{1} << 32)));
  clock.advance(1s);
  EXPECT_EQ(rt.run_ready(), 1u);
  EXPECT_EQ(ran, 1011);
  EXPECT_EQ(RuntimeAccess::pending_tasks(rt), 0u);
}

// Many timers and tasks at random instants (ties included), a random third
// of the timers withdrawn: the rest run in (instant, posting) order, each
// once, and a withdrawn one never.
TEST(RuntimeTimerTest, TimersRunInOrderWhateverIsWithdrawn) {
  SimulatedClock clock;
  Runtime rt(testing::manual_runtime_options(&clock));
  std::mt19937 rng(7);
  struct Posted {
    Instant at;
    int n;
    uint64_t id;  // 0: a plain task
  };
  std::vector<Posted> posted;
  std::vector<int> ran;
  Instant t0 = clock.now();
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 50; ++i) {
      int n = static_cast<int>(posted.size());
      Instant at = t0 + std::chrono::milliseconds(rng() % 40);
      uint64_t id = 0;
      if (rng() % 4 == 0) {
        rt.post_at(at, [&ran, n] { ran.push_back(n); });
      } else {
        id = rt.post_timer(at, [&ran, n] { ran.push_back(n); });
        ASSERT_NE(id, 0u);
      }
      posted.push_back({at, n, id});
    }
    std::vector<int> expected;
    for (Posted& p : posted) {
      if (p.id && rng() % 3 == 0) {
        EXPECT_TRUE(rt.cancel_timer(p.id));
        EXPECT_FALSE(rt.cancel_timer(p.id));
        continue;
      }
      expected.push_back(p.n);
    }
    std::stable_sort(expected.begin(), expected.end(),
                     [&](int a, int b) { return posted[a].at < posted[b].at; });
    EXPECT_EQ(RuntimeAccess::pending_tasks(rt), expected.size());
    ran.clear();
    clock.advance(50ms);
    EXPECT_EQ(rt.run_ready(), expected.size());
    EXPECT_EQ(ran, expected) << "round " << round;
    for (Posted& p : posted) {
      if (p.id) {
        EXPECT_FALSE(rt.cancel_timer(p.id));  // ran or withdrawn
      }
    }
    posted.clear();
    t0 = clock.now();
  }
}

TEST(RuntimeLockUrlTest, BadEtcdUrlsNameWhatIsWrong) {
  SimulatedClock clock;
  Runtime rt(testing::manual_runtime_options(&clock));
  struct Case {
    const char* url;
    const char* says;
  } cases[] = {
      {"etcd://127.0.0.1:2379", "no PREFIX"},
      {"etcd://127.0.0.1:2379/", "empty PREFIX"},
      {"etcd://127.0.0.1:2379/jobs/", "ends with '/'"},
      {"etcd:///jobs", "no endpoints"},
      {"etcd://127.0.0.1/jobs", "\"127.0.0.1\" is not HOST:PORT"},
      {"etcd://a:1,,b:2/jobs", "\"\" is not HOST:PORT"},
      {"etcds://h:99999/jobs", "has no valid port"},
      {"etcd://[::1]/jobs", "is not HOST:PORT"},
  };
  for (const auto& c : cases) {
    auto l = rt.open_lock(c.url);
    ASSERT_FALSE(l.ok()) << c.url;
    EXPECT_NE(l.error().message().find(c.says), std::string::npos) << c.url << ": " << l.error().message();
    EXPECT_NE(l.error().message().find(c.url), std::string::npos) << l.error().message();
  }
}

TEST(RuntimeLockUrlTest, ACredentialInAnEtcdUrlIsRefusedWithoutShowingIt) {
  SimulatedClock clock;
  Runtime rt(testing::manual_runtime_options(&clock));
  for (const char* url : {"etcd://root:s3cret@127.0.0.1:2379/x", "etcd://root:s3cret@127.0.0.1/x"}) {
    auto l = rt.open_lock(url);
    ASSERT_FALSE(l.ok()) << url;
    EXPECT_NE(l.error().message().find("a user or password in the URL is not supported"), std::string::npos)
        << l.error().message();
    EXPECT_EQ(l.error().message().find("s3cret"), std::string::npos) << l.error().message();
  }
}

TEST(RuntimeLockUrlTest, EtcdTlsFilesNeedEtcds) {
  SimulatedClock clock;
  auto opt = testing::manual_runtime_options(&clock);
  opt.etcd.ca_file = "/nonexistent/ca.crt";
  Runtime rt(opt);
  auto plain = rt.open_lock("etcd://127.0.0.1:2379/jobs");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.error().message().find("use etcds://"), std::string::npos) << plain.error().message();
  auto tls = rt.open_lock("etcds://127.0.0.1:2379/jobs");
  ASSERT_FALSE(tls.ok());
  EXPECT_NE(tls.error().message().find("cannot read /nonexistent/ca.crt"), std::string::npos) << tls.error().message();
}

TEST(RuntimeLockUrlTest, OneEtcdElectionPerPrefixAndOneSessionTimingPerProcess) {
  SimulatedClock clock;
  Runtime rt(testing::manual_runtime_options(&clock));
  ElectorConfig cfg;
  cfg.lock = "etcd://127.0.0.1:1/leasehold/a";
  cfg.identity = "me";
  auto first = Elector::create(rt, cfg);
  ASSERT_TRUE(first.ok()) << first.error().message();
  auto again = Elector::create(rt, cfg);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("already campaigns in it"), std::string::npos) << again.error().message();
  ElectorConfig other = cfg;
  other.lock = "etcd://127.0.0.1:1/leasehold/b";
  other.lease_duration = std::chrono::seconds(30);
  auto different = Elector::create(rt, other);
  ASSERT_FALSE(different.ok());
  EXPECT_NE(different.error().message().find("share one session lease"), std::string::npos)
      << different.error().message();
  other.lease_duration = cfg.lease_duration;
  EXPECT_TRUE(Elector::create(rt, other).ok());
  first->reset();  // never started: its claim on the prefix goes with it
  EXPECT_TRUE(Elector::create(rt, cfg).ok());
  ElectorConfig keep = cfg;
  keep.lock = "etcd://127.0.0.1:1/leasehold/c";
  keep.release_on_cancel = false;
  auto refused = Elector::create(rt, keep);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("release_on_cancel=false is not possible"), std::string::npos)
      << refused.error().message();
}

std::vector<std::string>* g_woken = nullptr;
void record_a(void*) { g_woken->push_back("a"); }
void record_b(void*) { g_woken->push_back("b"); }

TEST(WakeBatchTest, WakesOncePerKeyWhenTheOutermostBatchEnds) {
  std::vector<std::string> woken;
  g_woken = &woken;
  int ka = 0, kb = 0;
  core::request_wake(&ka, &record_a);  // no batch: at once
  EXPECT_EQ(woken, (std::vector<std::string>{"a"}));
  woken.clear();
  {
    core::WakeBatch outer;
    core::request_wake(&ka, &record_a);
    {
      core::WakeBatch inner;
      core::request_wake(&ka, &record_a);
      core::request_wake(&kb, &record_b);
    }
    EXPECT_TRUE(woken.empty());  // the inner batch's end is not the outermost
    core::request_wake(&kb, &record_b);
    EXPECT_TRUE(woken.empty());
  }
  EXPECT_EQ(woken, (std::vector<std::string>{"a", "b"}));
  g_woken = nullptr;
}

TEST(WakeBatchTest, FlushWakesNowAndForgetDropsAWake) {
  std::vector<std::string> woken;
  g_woken = &woken;
  int ka = 0, kb = 0;
  {
    core::WakeBatch batch;
    core::request_wake(&ka, &record_a);
    core::WakeBatch::flush();
    EXPECT_EQ(woken, (std::vector<std::string>{"a"}));
    core::request_wake(&ka, &record_a);  // recorded afresh after the flush
    core::request_wake(&kb, &record_b);
    core::WakeBatch::forget(&kb);  // kb is being destroyed
  }
  EXPECT_EQ(woken, (std::vector<std::string>{"a", "a"}));
  g_woken = nullptr;
}

}  // namespace
}  // namespace leasehold
