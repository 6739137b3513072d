// RealClock counts CLOCK_BOOTTIME, and its waits end on that clock. The
// ctest entry unit.clock_boottime_namespace runs these tests again in a time
// namespace whose boot clock is 1000 s ahead of CLOCK_MONOTONIC (as after a
// long suspend), where a clock on CLOCK_MONOTONIC fails them.
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>

#include "leasehold/clock.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;

Instant boottime() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return Instant{} + std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

TEST(RealClockTest, NowIsBootTime) {
  RealClock clock;
  for (int i = 0; i < 100; ++i) {
    Instant before = boottime();
    Instant now = clock.now();
    Instant after = boottime();
    ASSERT_LE(before, now);
    ASSERT_LE(now, after);
  }
}

TEST(RealClockTest, WaitUntilEndsOnTheBootClock) {
  RealClock clock;
  std::mutex m;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lk(m);
  Instant deadline = boottime() + 600ms;  // over two wait slices
  int returns = 0;
  while (clock.now() < deadline) {
    clock.wait_until(lk, cv, deadline);
    ++returns;
    ASSERT_LT(returns, 1000) << "wait_until returns without waiting";
  }
  // A wait on the wrong clock is off by the 1000 s the time namespace adds
  // (or spins, caught above); 1 s leaves room for a thread woken late on a
  // loaded machine (make stress-test once saw more than 100 ms).
  EXPECT_LT(boottime() - deadline, 1s) << "the wait ended late";
  EXPECT_LE(returns, 10);
}

}  // namespace
}  // namespace leasehold
