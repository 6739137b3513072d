// The Observer on a scripted lock: the test answers its reads and plays its
// watch, replays included.
#include "leasehold/observer.h"
#include "support/manual_runtime.h"

#include <gtest/gtest.h>

#include <deque>
#include <mutex>

namespace leasehold {
namespace {

using namespace std::chrono_literals;

class ScriptedLock final : public Lock {
 public:
  const std::string& describe() const override { return name_; }
  void get(Completion<Versioned> done) override { gets.push_back(std::move(done)); }
  void create(const LeaseRecord&, Completion<Versioned>) override { ADD_FAILURE() << "an observer wrote"; }
  void update(const std::string&, const LeaseRecord&, Completion<Versioned>) override {
    ADD_FAILURE() << "an observer wrote";
  }
  bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
             std::function<void(bool)> on_health) override {
    change = std::move(on_change);
    health = std::move(on_health);
    return true;
  }
  // Answers the oldest read.
  void answer(const Result<Versioned>& r) {
    ASSERT_FALSE(gets.empty()) << "no read in flight";
    auto done = std::move(gets.front());
    gets.pop_front();
    done(r);
  }

  std::deque<Completion<Versioned>> gets;
  std::function<void(const std::optional<Versioned>&)> change;
  std::function<void(bool)> health;

 private:
  std::string name_ = "scripted://lease";
};

Versioned rec(std::string version, std::string holder, int32_t transitions) {
  Versioned v;
  v.version = std::move(version);
  v.record.holder_identity = std::move(holder);
  v.record.lease_transitions = transitions;
  v.record.lease_duration_seconds = v.record.holder_identity.empty() ? 1 : 15;
  return v;
}

class ObserverTest : public ::testing::Test {
 protected:
  ObserverTest() : rt_(options(&clock_)) {}
  static Runtime::Options options(Clock* clock) { return testing::manual_runtime_options(clock); }
  std::vector<std::string> seen() {
    rt_.run_ready();
    rt_.drain_notifications();
    std::lock_guard<std::mutex> g(mu_);
    return seen_;
  }

  SimulatedClock clock_;
  Runtime rt_;
  std::shared_ptr<ScriptedLock> lock_ = std::make_shared<ScriptedLock>();
  std::mutex mu_;
  std::vector<std::string> seen_;  // GUARDED_BY(mu_)
};

TEST_F(ObserverTest, AReplayedWatchNeverReportsAnOlderHolder) {
  auto obs = Observer::create(rt_, lock_);
  ASSERT_TRUE(obs.ok());
  (*obs)->start([this](const LeaseView& v) {
    std::lock_guard<std::mutex> g(mu_);
    seen_.push_back(v.holder.empty() ? "-" : v.holder);
  });
  rt_.run_ready();
  ASSERT_EQ(lock_->gets.size(), 1u);
  lock_->health(true);
  lock_->answer(rec("10", "c", 5));
  EXPECT_EQ(seen(), std::vector<std::string>{"c"});
  // The watch resumes from an older version and replays b's term.
  lock_->change(rec("6", "b", 3));
  EXPECT_EQ(seen(), std::vector<std::string>{"c"}) << "reported an older holder";
  ASSERT_EQ(lock_->gets.size(), 1u) << "a change of holder on the watch is read first";
  lock_->change(rec("7", "", 3));  // b's release, while that read is in flight
  lock_->answer(rec("10", "c", 5));
  EXPECT_EQ(seen(), std::vector<std::string>{"c"});
  ASSERT_EQ(lock_->gets.size(), 1u) << "the answer may predate the release: read once more";
  lock_->answer(rec("10", "c", 5));
  EXPECT_TRUE(lock_->gets.empty());
  lock_->change(rec("11", "c", 5));  // c renews: applied without a read
  EXPECT_TRUE(lock_->gets.empty());
  lock_->change(rec("12", "d", 6));  // a real change: read, then reported
  ASSERT_EQ(lock_->gets.size(), 1u);
  lock_->answer(rec("12", "d", 6));
  EXPECT_EQ(seen(), (std::vector<std::string>{"c", "d"}));
  (*obs)->stop();
  rt_.run_ready();
}

}  // namespace
}  // namespace leasehold
