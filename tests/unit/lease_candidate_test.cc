// Which kube-apiserver pings a coordinated elector's LeaseCandidate answers:
// server times (pingTime) are compared only with server times.
#include "core/lease_candidate.h"

#include <gtest/gtest.h>

namespace leasehold::core {
namespace {

using namespace std::chrono_literals;

kube::LeaseCandidateSpec seen(std::optional<WallTime> ping, std::optional<WallTime> renew) {
  kube::LeaseCandidateSpec s;
  s.ping_time = ping;
  s.renew_time = renew;
  return s;
}

const WallTime kServerNow = WallTime{} + 1'800'000'000s;

TEST(PingAnswersTest, APingIsAnsweredOnceEvenWhenOurClockIsBehind) {
  PingAnswers p;
  const WallTime ping = kServerNow;
  const WallTime our_renew = kServerNow - 30s;  // our wall clock runs 30 s behind the server's
  ASSERT_TRUE(p.wants_answer(seen(ping, our_renew - 10s)));
  p.answered(ping);  // our write carried the ping and landed
  // The watch shows our own write: the ping with our (earlier) renewTime.
  EXPECT_FALSE(p.wants_answer(seen(ping, our_renew))) << "answering the same ping again loops PUTs";
  EXPECT_FALSE(p.wants_answer(seen(ping, our_renew + 1s)));
}

TEST(PingAnswersTest, ANewPingIsAnsweredWhateverOurClockSays) {
  PingAnswers p;
  p.answered(kServerNow);
  // Our clock is ahead: renewTime after the new ping must not hide it.
  EXPECT_TRUE(p.wants_answer(seen(kServerNow + 5s, kServerNow + 60s)));
  p.answered(kServerNow + 5s);
  EXPECT_FALSE(p.wants_answer(seen(kServerNow + 5s, kServerNow + 60s)));
}

TEST(PingAnswersTest, NoPingNoAnswer) {
  PingAnswers p;
  EXPECT_FALSE(p.wants_answer(seen(std::nullopt, kServerNow)));
  p.answered(std::nullopt);  // a write without a ping answers nothing
  EXPECT_TRUE(p.wants_answer(seen(kServerNow, std::nullopt)));
}

}  // namespace
}  // namespace leasehold::core
