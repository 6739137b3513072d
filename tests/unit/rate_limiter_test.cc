// The client's request budget: token bucket and the two priority queues, on
// explicit instants (no clock, no sleeps).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kube/rate_limiter.h"

namespace leasehold::kube {
namespace {

using namespace std::chrono_literals;

const Instant kT0 = Instant{} + 1h;

TEST(TokenBucketTest, BurstThenRefillAtQps) {
  TokenBucket b({10, 3}, kT0);
  EXPECT_TRUE(b.try_take(kT0));
  EXPECT_TRUE(b.try_take(kT0));
  EXPECT_TRUE(b.try_take(kT0));
  EXPECT_FALSE(b.try_take(kT0)) << "a burst of 3 allows 3 at once";
  EXPECT_FALSE(b.try_take(kT0 + 99ms)) << "10 qps: the next token after 100 ms";
  EXPECT_TRUE(b.try_take(kT0 + 100ms));
  Instant next = b.when_available(kT0 + 100ms);
  EXPECT_GE(next, kT0 + 200ms);
  EXPECT_LE(next, kT0 + 201ms);
  EXPECT_TRUE(b.try_take(next));
  // An idle bucket fills up to the burst, not beyond.
  Instant later = next + 1h;
  EXPECT_DOUBLE_EQ(b.available(later), 3.0);
}

TEST(TokenBucketTest, KeepLeavesAReserve) {
  TokenBucket b({1, 4}, kT0);
  EXPECT_TRUE(b.try_take(kT0, 1));
  EXPECT_TRUE(b.try_take(kT0, 1));
  EXPECT_TRUE(b.try_take(kT0, 1));
  EXPECT_FALSE(b.try_take(kT0, 1)) << "one token is kept";
  EXPECT_TRUE(b.try_take(kT0, 0)) << "the kept token is there for a keep=0 caller";
  EXPECT_EQ(b.when_available(kT0, 1), kT0 + 2s + 1ns);
}

TEST(TokenBucketTest, ZeroQpsIsUnlimited) {
  TokenBucket b({0, 1}, kT0);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(b.try_take(kT0));
  EXPECT_EQ(b.when_available(kT0), kT0);
}

TEST(TokenBucketTest, TimeGoingBackwardsAddsNothing) {
  TokenBucket b({1, 1}, kT0);
  EXPECT_TRUE(b.try_take(kT0));
  EXPECT_FALSE(b.try_take(kT0 - 10s));
  EXPECT_FALSE(b.try_take(kT0 + 500ms));
  EXPECT_TRUE(b.try_take(kT0 + 1s));
}

TEST(RateLimitTest, ValidationNamesTheField) {
  EXPECT_TRUE(validate_rate_limit({5000, 1000}, "kube_").ok());
  EXPECT_TRUE(validate_rate_limit({0, 0}, "kube_").ok()) << "qps 0: off, burst ignored";
  auto neg = validate_rate_limit({-1, 10}, "kube_");
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.error().message().find("kube_qps"), std::string::npos) << neg.error().message();
  auto tiny = validate_rate_limit({0.01, 10}, "kube_");
  EXPECT_FALSE(tiny.ok());
  auto nan = validate_rate_limit({std::numeric_limits<double>::quiet_NaN(), 10}, "kube_");
  EXPECT_FALSE(nan.ok());
  auto burst = validate_rate_limit({10, 0}, "kube_");
  ASSERT_FALSE(burst.ok());
  EXPECT_NE(burst.error().message().find("kube_burst"), std::string::npos) << burst.error().message();
  EXPECT_FALSE(validate_rate_limit({10, 2'000'000}, "kube_").ok());
}

// Records the order in which items start.
struct Starts {
  std::vector<std::string> order;
  std::function<bool(std::string&)> fn() {
    return [this](std::string& s) {
      order.push_back(s);
      return true;
    };
  }
};

TEST(PriorityLimiterTest, UnderBudgetEverythingStartsAtOnce) {
  PriorityLimiter<std::string> l({100, 8}, kT0);
  Starts s;
  l.push(Priority::kBackground, "b1");
  l.push(Priority::kLease, "l1");
  l.pop_ready(kT0, s.fn());
  EXPECT_EQ(s.order, (std::vector<std::string>{"l1", "b1"}));
  EXPECT_EQ(l.next_ready(kT0), std::nullopt);
}

// The client's cap on requests in flight: only `room` start, lease first;
// the rest stay queued, in order, and no token is spent on them.
TEST(PriorityLimiterTest, RoomCapsHowManyStart) {
  PriorityLimiter<std::string> l({100, 8}, kT0);
  Starts s;
  l.push(Priority::kBackground, "b1");
  l.push(Priority::kLease, "l1");
  l.push(Priority::kLease, "l2");
  l.pop_ready(kT0, s.fn(), 2);
  EXPECT_EQ(s.order, (std::vector<std::string>{"l1", "l2"}));
  EXPECT_EQ(l.queued(Priority::kBackground), 1u);
  l.pop_ready(kT0, s.fn(), 0);
  EXPECT_EQ(s.order.size(), 2u);
  l.pop_ready(kT0, s.fn(), 1);
  EXPECT_EQ(s.order, (std::vector<std::string>{"l1", "l2", "b1"}));
  EXPECT_EQ(l.next_ready(kT0), std::nullopt);
}

TEST(PriorityLimiterTest, QueuedLeaseRequestsGoBeforeQueuedBackground) {
  // 10 qps, burst 4: a reserve of 1 token is kept for lease traffic.
  PriorityLimiter<std::string> l({10, 4}, kT0);
  ASSERT_EQ(l.reserve(), 1);
  Starts s;
  for (int i = 1; i <= 6; ++i) l.push(Priority::kBackground, "b" + std::to_string(i));
  l.pop_ready(kT0, s.fn());
  EXPECT_EQ(s.order, (std::vector<std::string>{"b1", "b2", "b3"})) << "background leaves one token";
  // A lease request arriving now still starts at once: the reserve.
  l.push(Priority::kLease, "l1");
  l.pop_ready(kT0, s.fn());
  EXPECT_EQ(s.order.back(), "l1");
  // More lease requests queue behind the empty bucket; background is waiting too.
  l.push(Priority::kLease, "l2");
  l.push(Priority::kLease, "l3");
  l.pop_ready(kT0, s.fn());
  EXPECT_EQ(s.order.size(), 4u);
  EXPECT_EQ(l.queued(Priority::kLease), 2u);
  EXPECT_EQ(l.queued(Priority::kBackground), 3u);
  // Tokens come back at 10/s; each goes to the lease queue first.
  Instant t = kT0;
  while (s.order.size() < 9) {
    auto next = l.next_ready(t);
    ASSERT_TRUE(next.has_value());
    ASSERT_GT(*next, t);
    t = *next;
    l.pop_ready(t, s.fn());
  }
  EXPECT_EQ(s.order, (std::vector<std::string>{"b1", "b2", "b3", "l1", "l2", "l3", "b4", "b5", "b6"}));
  EXPECT_EQ(l.next_ready(t), std::nullopt);
  // Nothing was dropped, and the sustained rate held: 9 starts with a burst of
  // 4 and 10 qps take at least 0.5 s (+ the reserve refill for background).
  EXPECT_GE(t - kT0, 500ms);
  EXPECT_LE(t - kT0, 800ms);
}

TEST(PriorityLimiterTest, BackgroundNeverTakesTheReservedTokens) {
  PriorityLimiter<std::string> l({1, 8}, kT0);  // reserve 2
  Starts s;
  for (int i = 0; i < 20; ++i) l.push(Priority::kBackground, "b");
  l.pop_ready(kT0, s.fn());
  EXPECT_EQ(s.order.size(), 6u);
  // Over a long run background gets the refill (1/s) but never the reserve.
  Instant t = kT0;
  for (int i = 0; i < 10; ++i) {
    t = *l.next_ready(t);
    l.pop_ready(t, s.fn());
  }
  EXPECT_EQ(s.order.size(), 16u);
  for (int i = 0; i < 2; ++i) l.push(Priority::kLease, "l");
  l.pop_ready(t, s.fn());
  EXPECT_EQ(s.order.size(), 18u) << "both lease requests found a reserved token";
  EXPECT_EQ(s.order[16], "l");
  EXPECT_EQ(s.order[17], "l");
}

TEST(PriorityLimiterTest, ADiscardedItemSpendsNoToken) {
  PriorityLimiter<std::string> l({1, 1}, kT0);
  std::vector<std::string> started;
  l.push(Priority::kLease, "expired");
  l.push(Priority::kLease, "live");
  l.pop_ready(kT0, [&](std::string& s) {
    if (s == "expired") return false;
    started.push_back(s);
    return true;
  });
  EXPECT_EQ(started, (std::vector<std::string>{"live"}));
}

TEST(PriorityLimiterTest, RemoveIfAndTakeAll) {
  PriorityLimiter<std::string> l({1, 1}, kT0);
  Starts s;
  l.push(Priority::kLease, "first");
  l.pop_ready(kT0, s.fn());
  l.push(Priority::kBackground, "b");
  l.push(Priority::kLease, "cancel-me");
  l.push(Priority::kLease, "keep");
  auto removed = l.remove_if([](const std::string& x) { return x == "cancel-me"; });
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(l.queued(Priority::kLease), 1u);
  auto all = l.take_all();
  EXPECT_EQ(all, (std::deque<std::string>{"keep", "b"}));
  EXPECT_EQ(l.next_ready(kT0), std::nullopt);
}

TEST(PriorityLimiterTest, TenThousandElectorsAtTheDefaultsFitTheBudget) {
  // Defaults: 5,000 qps, burst 1,000. 10,000 leaders each renewing every 2 s
  // in an even spread: every renewal starts when it is due (no queueing).
  RateLimit defaults;
  PriorityLimiter<int> l(defaults, kT0);
  int started = 0;
  Instant t = kT0;
  for (int tick = 0; tick < 2000; ++tick) {  // 4 s in 2 ms ticks, 10 renewals per tick
    t = kT0 + std::chrono::milliseconds(2 * tick);
    for (int i = 0; i < 10; ++i) l.push(Priority::kLease, tick);
    l.pop_ready(t, [&](int&) { return ++started, true; });
    ASSERT_EQ(l.queued(Priority::kLease), 0u) << "renewals queued at tick " << tick;
  }
  EXPECT_EQ(started, 20000);
  // A cold start of 10,000 GETs at once is spread over about 2 s.
  PriorityLimiter<int> cold(defaults, kT0);
  for (int i = 0; i < 10000; ++i) cold.push(Priority::kLease, i);
  int n = 0;
  t = kT0;
  cold.pop_ready(t, [&](int&) { return ++n, true; });
  EXPECT_EQ(n, 1000);
  while (auto next = cold.next_ready(t)) {
    t = *next;
    cold.pop_ready(t, [&](int&) { return ++n, true; });
  }
  EXPECT_EQ(n, 10000);
  EXPECT_NEAR(std::chrono::duration<double>(t - kT0).count(), 1.8, 0.01);
}

}  // namespace
}  // namespace leasehold::kube
