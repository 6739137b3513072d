// The driver: Elector + Runtime + mem lock on a simulated clock. Time moves
// only through SimulatedClock::advance; the test pumps the manual runtime.
// Callbacks run on real library threads, so the tests wait for them with
// conditions, never by letting time pass.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "leasehold/elector.h"
#include "leasehold/mem_lock.h"
#include "leasehold/observer.h"
#include "core/runtime_access.h"
#include "support/manual_runtime.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;

struct Recorder {
  std::mutex mu;
  std::vector<std::string> events;
  std::atomic<int> working{0};
  bool throw_on_start = false;

  Callbacks callbacks(const std::string& id) {
    Callbacks c;
    c.on_started_leading = [this, id](const Term& t, std::stop_token stop) {
      add(id + " started " + t.to_string());
      if (throw_on_start) throw std::runtime_error("boom");
      ++working;
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock<std::mutex> lk(m);
      cv.wait(lk, stop, [] { return false; });
      --working;
    };
    c.on_stopped_leading = [this, id](const Term& t) { add(id + " stopped " + t.to_string()); };
    c.on_new_leader = [this, id](const std::string& l) { add(id + " sees " + l); };
    return c;
  }
  void add(std::string e) {
    std::lock_guard<std::mutex> g(mu);
    events.push_back(std::move(e));
  }
  bool has(const std::string& e) {
    std::lock_guard<std::mutex> g(mu);
    return std::find(events.begin(), events.end(), e) != events.end();
  }
  int count(const std::string& e) {
    std::lock_guard<std::mutex> g(mu);
    return static_cast<int>(std::count(events.begin(), events.end(), e));
  }
};

class ElectorTest : public ::testing::Test {
 protected:
  ElectorTest() : rt_(options(&clock_)) {}
  static Runtime::Options options(Clock* clock) { return testing::manual_runtime_options(clock); }

  std::unique_ptr<Elector> make(const std::string& id, std::shared_ptr<Lock>* lock_out = nullptr) {
    ElectorConfig c;
    c.lock = "mem://jobs";
    c.identity = id;
    c.callbacks = rec_.callbacks(id);
    auto lock = rt_.open_lock(c.lock);
    EXPECT_TRUE(lock.ok());
    if (lock_out) *lock_out = *lock;
    auto e = Elector::create(rt_, c, *lock);
    EXPECT_TRUE(e.ok()) << e.error().message();
    return std::move(*e);
  }

  // Runs everything due until `pred` holds (callbacks run on real threads).
  bool pump_until(const std::function<bool()>& pred) {
    for (int i = 0; i < 5000; ++i) {
      rt_.run_ready();
      rt_.drain_notifications();
      if (pred()) return true;
      std::this_thread::yield();
      std::unique_lock<std::mutex> lk(wait_mu_);
      wait_cv_.wait_for(lk, 1ms);  // real time: gives library threads a turn
    }
    return false;
  }
  void advance(Duration d, Duration step = 100ms) {
    for (Duration t{0}; t < d; t += step) {
      clock_.advance(step);
      rt_.run_ready();
    }
  }

  SimulatedClock clock_;
  Runtime rt_;
  Recorder rec_;
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
};

TEST_F(ElectorTest, OneLeadsTheOtherStandsBy) {
  auto a = make("a");
  a->start();
  ASSERT_TRUE(pump_until([&] { return rec_.has("a started 0/a"); }));
  auto b = make("b");
  b->start();
  ASSERT_TRUE(pump_until([&] { return rec_.has("b sees a"); }));
  EXPECT_TRUE(a->is_leader());
  EXPECT_FALSE(b->is_leader());
  EXPECT_EQ(a->term(), (Term{0, "a"}));
  EXPECT_EQ(b->leader(), "a");
  advance(60s);  // a keeps renewing; b never takes over
  EXPECT_TRUE(a->is_leader());
  EXPECT_FALSE(b->is_leader());
  EXPECT_EQ(a->status().renewals, 30u);
  EXPECT_EQ(rec_.working.load(), 1);
}

// A renewal answered in time withdraws its timeout, and a re-armed timer
// withdraws the one it replaces, so a steady leader keeps one timer in the
// I/O thread's heap (its next renewal), not one no-op per renewal waiting
// for its instant to wake the I/O thread.
TEST_F(ElectorTest, ASteadyLeaderLeavesNoStaleTimers) {
  auto a = make("a");
  a->start();
  ASSERT_TRUE(pump_until([&] { return rec_.has("a started 0/a"); }));
  advance(21s);
  EXPECT_EQ(a->status().renewals, 10u);
  EXPECT_EQ(RuntimeAccess::pending_tasks(rt_), 1u);
}

// is_leader(), term() and status().renewed_at are already true at the top of
// on_started_leading, and is_leader() is false by the time the stop token
// fires (the snapshot was once published after the work thread started).
TEST_F(ElectorTest, StatusLeadsBeforeTheWorkStartsAndNotAfterItIsStopped) {
  std::atomic<int> seen_leading{-1}, seen_after_stop{-1};
  std::optional<Term> seen_term;
  std::optional<Instant> seen_renewed_at;
  std::mutex m;
  std::atomic<Elector*> self{nullptr};
  ElectorConfig c;
  c.lock = "mem://status";
  c.identity = "a";
  c.callbacks.on_started_leading = [&](const Term&, std::stop_token stop) {
    while (!self.load()) std::this_thread::yield();
    {
      std::lock_guard<std::mutex> g(m);
      seen_leading = self.load()->is_leader();
      seen_term = self.load()->term();
      seen_renewed_at = self.load()->status().renewed_at;
    }
    std::stop_callback cb(stop, [&] { seen_after_stop = self.load()->is_leader(); });
    std::mutex wm;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lk(wm);
    cv.wait(lk, stop, [] { return false; });
  };
  auto e = Elector::create(rt_, c);
  ASSERT_TRUE(e.ok()) << e.error().message();
  self = e->get();
  Instant started = clock_.now();
  (*e)->start();
  ASSERT_TRUE(pump_until([&] { return seen_leading.load() != -1; }));
  {
    std::lock_guard<std::mutex> g(m);
    EXPECT_EQ(seen_leading.load(), 1);
    EXPECT_EQ(seen_term, (Term{0, "a"}));
    ASSERT_TRUE(seen_renewed_at.has_value());
    EXPECT_EQ(*seen_renewed_at, started);  // no simulated time passed: the create was sent now
  }
  (*e)->stop();
  ASSERT_TRUE(pump_until([&] { return seen_after_stop.load() != -1; }));
  EXPECT_EQ(seen_after_stop.load(), 0);
  (*e)->wait();
}

// While the work of a stopped term is still running the lease is renewed,
// and on_renewed reports each renewal's send time.
TEST_F(ElectorTest, RenewsWhileTheWorkStopsAndReportsEachRenewal) {
  std::mutex m;
  std::vector<Instant> renewed;
  std::atomic<bool> let_go{false}, stopping{false}, working{false};
  ElectorConfig c;
  c.lock = "mem://drain";
  c.identity = "a";
  c.callbacks.on_started_leading = [&](const Term&, std::stop_token stop) {
    working = true;
    std::mutex wm;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lk(wm);
    cv.wait(lk, stop, [] { return false; });
    stopping = true;
    while (!let_go) std::this_thread::yield();  // slow to stop
  };
  c.callbacks.on_renewed = [&](const Term& t, Instant at) {
    EXPECT_EQ(t, (Term{0, "a"}));
    std::lock_guard<std::mutex> g(m);
    renewed.push_back(at);
  };
  auto e = Elector::create(rt_, c);
  ASSERT_TRUE(e.ok());
  struct LetGo {  // the work returns however the test ends
    std::atomic<bool>& flag;
    ~LetGo() { flag = true; }
  } let_go_at_exit{let_go};
  (*e)->start();
  // The work has started (a term stopped before it does never starts it).
  ASSERT_TRUE(pump_until([&] { return (*e)->is_leader() && working.load(); }));
  advance(4s);
  ASSERT_TRUE(pump_until([&] { std::lock_guard<std::mutex> g(m); return renewed.size() == 2; }));
  (*e)->stop();
  ASSERT_TRUE(pump_until([&] { return stopping.load(); }));
  advance(12s);  // past the 10s renew deadline of the last renewal before the stop
  ASSERT_TRUE(pump_until([&] { std::lock_guard<std::mutex> g(m); return renewed.size() == 8; }));
  EXPECT_EQ((*e)->status().phase, "stopping");
  {
    std::lock_guard<std::mutex> g(m);
    for (size_t i = 1; i < renewed.size(); ++i) EXPECT_EQ(renewed[i] - renewed[i - 1], 2s);
  }
  let_go = true;
  (*e)->wait();
  EXPECT_EQ((*e)->status().phase, "stopped");
}

// A std::stop_callback on the work's token is user code: it must not run on
// the I/O thread (here the test's own thread, which pumps the manual
// runtime), and while it blocks another elector keeps renewing.
TEST_F(ElectorTest, ASlowStopCallbackDelaysNoOtherElector) {
  std::mutex m;
  std::condition_variable cv;
  bool release_callback = false;
  std::atomic<bool> callback_ran{false};
  std::thread::id callback_thread;
  std::optional<std::stop_callback<std::function<void()>>> keep;  // outlives the term
  ElectorConfig c;
  c.lock = "mem://slow-stop";
  c.identity = "slow";
  std::atomic<bool> work_started{false};
  c.callbacks.on_started_leading = [&](const Term&, std::stop_token stop) {
    // Returns at once: the term goes on, and the stop callback reports its end.
    keep.emplace(stop, std::function<void()>([&] {
      std::unique_lock<std::mutex> lk(m);
      callback_thread = std::this_thread::get_id();
      callback_ran = true;
      cv.notify_all();
      cv.wait_for(lk, 3s, [&] { return release_callback; });  // real time: a slow callback
    }));
    work_started = true;
  };
  auto slow = Elector::create(rt_, c);
  ASSERT_TRUE(slow.ok());
  auto other = make("other");
  (*slow)->start();
  other->start();
  // The work has started (a term stopped before it does never starts it).
  ASSERT_TRUE(pump_until([&] { return (*slow)->is_leader() && other->is_leader() && work_started.load(); }));
  uint64_t before = other->status().renewals;
  auto pumped_on = std::this_thread::get_id();
  RealClock real;  // the I/O thread must not have blocked in real time either
  Instant stopped_at = real.now();
  (*slow)->stop();
  ASSERT_TRUE(pump_until([&] { return callback_ran.load(); }));
  advance(4s);  // the callback still blocks: `other` renews on time meanwhile
  EXPECT_LT(real.now() - stopped_at, 2s) << "the I/O thread waited for the stop callback";
  EXPECT_EQ(other->status().renewals, before + 2);
  EXPECT_TRUE(other->is_leader());
  {
    std::lock_guard<std::mutex> g(m);
    EXPECT_NE(callback_thread, pumped_on);
    release_callback = true;
  }
  cv.notify_all();
  (*slow)->wait();
}

TEST_F(ElectorTest, GracefulStopHandsOverAtOnce) {
  auto a = make("a");
  a->start();
  ASSERT_TRUE(pump_until([&] { return a->is_leader(); }));
  auto b = make("b");
  b->start();
  ASSERT_TRUE(pump_until([&] { return b->leader() == "a"; }));
  a->stop();
  // No simulated time passes: the release is seen through b's watch.
  ASSERT_TRUE(pump_until([&] { return rec_.has("b started 1/b"); }));
  EXPECT_TRUE(rec_.has("a stopped 0/a"));
  a->wait();
  EXPECT_EQ(a->status().phase, "stopped");
  EXPECT_TRUE(b->is_leader());
}

TEST_F(ElectorTest, APartitionedLeaderStopsBeforeTheOtherStarts) {
  std::shared_ptr<Lock> lock_a;
  auto a = make("a", &lock_a);
  a->start();
  // The work has started: a term thread that first runs after the clock
  // below has passed the deadline starts no work and reports no stop.
  ASSERT_TRUE(pump_until([&] { return rec_.has("a started 0/a"); }));
  auto b = make("b");
  b->start();
  ASSERT_TRUE(pump_until([&] { return b->leader() == "a"; }));
  dynamic_cast<MemLock&>(*lock_a).set_faults({.partitioned = true});
  Instant cut = clock_.now();
  while (a->is_leader()) advance(100ms);
  ASSERT_TRUE(pump_until([&] { return rec_.has("a stopped 0/a"); }));
  EXPECT_LE(clock_.now() - cut, 10s);
  EXPECT_FALSE(rec_.has("b started 1/b"));
  while (!b->is_leader()) advance(100ms);
  ASSERT_TRUE(pump_until([&] { return rec_.has("b started 1/b"); }));
  EXPECT_GE(clock_.now() - cut, 13s);  // b saw a's last renewal at most 2s before the cut
  EXPECT_EQ(rec_.working.load(), 1);
  dynamic_cast<MemLock&>(*lock_a).set_faults({});
  ASSERT_TRUE(pump_until([&] { return a->leader() == "b"; }));
  EXPECT_FALSE(a->is_leader());
}

TEST_F(ElectorTest, AThrowingCallbackStepsDownAndReleases) {
  rec_.throw_on_start = true;
  auto a = make("a");
  a->start();
  ASSERT_TRUE(pump_until([&] { return rec_.has("a stopped 0/a"); }));
  rec_.throw_on_start = false;
  auto b = make("b");
  b->start();
  ASSERT_TRUE(pump_until([&] { return b->is_leader(); }));
  EXPECT_EQ(rec_.count("a stopped 0/a"), 1);
}

// Work that runs elsewhere: on_started_leading returns at once. The term
// goes on without a thread; its stop token and on_stopped_leading still
// report its end, once, before the lease is released to b.
TEST_F(ElectorTest, WorkThatReturnsAtOnceKeepsTheTermUntilItEnds) {
  std::atomic<int> stop_callbacks{0};
  std::mutex mu;
  std::optional<std::stop_callback<std::function<void()>>> on_stop;
  ElectorConfig c;
  c.lock = "mem://jobs";
  c.identity = "a";
  c.callbacks.on_started_leading = [&](const Term& t, std::stop_token stop) {
    rec_.add("a started " + t.to_string());
    std::lock_guard<std::mutex> g(mu);
    on_stop.emplace(stop, std::function<void()>([&] { ++stop_callbacks; }));
  };
  c.callbacks.on_stopped_leading = [&](const Term& t) { rec_.add("a stopped " + t.to_string()); };
  auto lock = rt_.open_lock(c.lock);
  ASSERT_TRUE(lock.ok());
  auto a = Elector::create(rt_, c, *lock);
  ASSERT_TRUE(a.ok());
  (*a)->start();
  ASSERT_TRUE(pump_until([&] { return rec_.has("a started 0/a"); }));
  auto b = make("b");
  b->start();
  ASSERT_TRUE(pump_until([&] { return b->leader() == "a"; }));
  advance(30s);  // renewals go on after the work returned
  EXPECT_TRUE((*a)->is_leader());
  EXPECT_FALSE(rec_.has("a stopped 0/a"));
  EXPECT_EQ(stop_callbacks.load(), 0);
  (*a)->stop();
  ASSERT_TRUE(pump_until([&] { return rec_.has("b started 1/b"); }));
  EXPECT_EQ(rec_.count("a stopped 0/a"), 1);
  EXPECT_EQ(stop_callbacks.load(), 1);
  (*a)->wait();
  EXPECT_EQ((*a)->status().phase, "stopped");
  std::lock_guard<std::mutex> g(mu);
  on_stop.reset();
}

static int threads_of_this_process() {
  int n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// 20 terms whose work returned: no thread is held for any of them.
TEST_F(ElectorTest, TermsWhoseWorkReturnedHoldNoThread) {
  std::atomic<int> started{0}, stopped{0};
  std::vector<std::unique_ptr<Elector>> electors;
  int before = threads_of_this_process();
  for (int i = 0; i < 20; ++i) {
    ElectorConfig c;
    c.lock = "mem://many-" + std::to_string(i);
    c.identity = "a";
    c.callbacks.on_started_leading = [&](const Term&, std::stop_token) { ++started; };
    c.callbacks.on_stopped_leading = [&](const Term&) { ++stopped; };
    auto lock = rt_.open_lock(c.lock);
    ASSERT_TRUE(lock.ok());
    auto e = Elector::create(rt_, c, *lock);
    ASSERT_TRUE(e.ok());
    (*e)->start();
    electors.push_back(std::move(*e));
  }
  ASSERT_TRUE(pump_until([&] { return started.load() == 20; }));
  // The work threads end right after their callback: wait until they have
  // (all of them: an exiting thread is still counted for a while on a busy
  // machine; waiting only for the first ones made this flaky under load).
  // Were a term's thread held until the term ends, this would time out.
  ASSERT_TRUE(pump_until([&] { return threads_of_this_process() <= before + 2; }))
      << threads_of_this_process() << " threads, " << before << " before";
  advance(10s);
  for (auto& e : electors) EXPECT_TRUE(e->is_leader());
  EXPECT_LE(threads_of_this_process(), before + 2);  // renewals start no thread
  for (auto& e : electors) e->stop();
  ASSERT_TRUE(pump_until([&] { return stopped.load() == 20; }));
  for (auto& e : electors) e->wait();
}

TEST_F(ElectorTest, StopTokenStopsTheElector) {
  std::stop_source src;
  auto a = make("a");
  a->start(src.get_token());
  ASSERT_TRUE(pump_until([&] { return a->is_leader(); }));
  src.request_stop();
  a->wait();
  EXPECT_TRUE(rec_.has("a stopped 0/a"));
}

TEST_F(ElectorTest, CreateRejectsBadConfigAndLocks) {
  ElectorConfig c;
  c.lock = "mem://x";
  auto e = Elector::create(rt_, c);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "identity: must not be empty");
  c.identity = "a";
  c.lock = "zk://x";
  e = Elector::create(rt_, c);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("unknown scheme"), std::string::npos);
}

}  // namespace
}  // namespace leasehold

namespace leasehold {
namespace {

TEST_F(ElectorTest, ObserverFollowsTheLeaderWithoutCompeting) {
  auto obs = Observer::create(rt_, "mem://jobs");
  ASSERT_TRUE(obs.ok());
  std::mutex m;
  std::vector<std::string> seen;
  (*obs)->start([&](const LeaseView& v) {
    std::lock_guard<std::mutex> g(m);
    seen.push_back(v.exists ? (v.holder.empty() ? (v.expired ? "expired:" + v.named_holder : "free") : v.holder)
                            : "none");
  });
  auto seen_has = [&](const std::string& s) {
    std::lock_guard<std::mutex> g(m);
    return std::find(seen.begin(), seen.end(), s) != seen.end();
  };
  ASSERT_TRUE(pump_until([&] { return seen_has("none"); }));
  std::shared_ptr<Lock> lock_a;
  auto a = make("a", &lock_a);
  a->start();
  ASSERT_TRUE(pump_until([&] { return seen_has("a"); }));
  advance(30s);  // renewals are not news
  {
    std::lock_guard<std::mutex> g(m);
    EXPECT_EQ(seen, (std::vector<std::string>{"none", "a"}));
  }
  // a is cut off; its lease runs out on the observer's clock.
  dynamic_cast<MemLock&>(*lock_a).set_faults({.partitioned = true});
  advance(20s);
  ASSERT_TRUE(pump_until([&] { return seen_has("expired:a"); }));
  EXPECT_EQ((*obs)->current()->named_holder, "a");
  EXPECT_TRUE((*obs)->current()->expired);
  dynamic_cast<MemLock&>(*lock_a).set_faults({});
  ASSERT_TRUE(pump_until([&] { return a->is_leader(); }));
  ASSERT_TRUE(pump_until([&] { return seen_has("a") && (*obs)->current()->transitions == 1; }));
  (*obs)->stop();
}

}  // namespace
}  // namespace leasehold

namespace leasehold {
namespace {

// The simulated clock, as a thread other than the test's sees it once
// `paused_for` is set: that much later (the process was paused, or starved,
// between the I/O thread's step and that thread's next instruction).
class PausedForOthers final : public Clock {
 public:
  Instant now() const override {
    Instant t = sim.now();
    return std::this_thread::get_id() == owner ? t : t + paused_for.load();
  }
  WallTime wall_now() const override { return sim.wall_now(); }
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Instant deadline) override {
    sim.wait_until(lock, cv, deadline);
  }
  SimulatedClock sim;
  std::thread::id owner = std::this_thread::get_id();
  std::atomic<Duration> paused_for{Duration::zero()};
};

// A torture run under load caught it: a candidate SIGSTOPped between the
// write that won the lease and its work thread's first instruction printed
// "started" seconds later, after another had taken the expired lease. A term
// whose work thread comes to run past the renew deadline starts no work and
// reports no stop; the elector campaigns on.
TEST(ElectorPauseTest, AWorkThreadThatRunsOnlyPastTheDeadlineStartsNoWork) {
  PausedForOthers clock;
  std::atomic<bool> not_started{false};
  Runtime::Options opt = testing::manual_runtime_options(&clock);
  opt.log = [&](LogLevel, std::string_view, std::string_view msg) {
    if (msg.find("ended before its work could start") != std::string_view::npos) not_started = true;
  };
  Runtime rt(opt);
  Recorder rec;
  ElectorConfig c;
  c.lock = "mem://paused";
  c.identity = "a";
  c.callbacks = rec.callbacks("a");
  auto lock = rt.open_lock(c.lock);
  ASSERT_TRUE(lock.ok());
  auto e = Elector::create(rt, c, *lock);
  ASSERT_TRUE(e.ok()) << e.error().message();
  clock.paused_for = 11s;  // past renew_deadline (10 s) for every thread but this one
  (*e)->start();
  auto pump_until = [&](const std::function<bool()>& pred) {
    for (int i = 0; i < 50; ++i) {
      rt.run_ready();
      rt.drain_notifications();
      if (pred()) return true;
      std::this_thread::sleep_for(1ms);  // real time: gives library threads a turn
    }
    return false;
  };
  ASSERT_TRUE(pump_until([&] { return (*e)->status().terms_started == 1; }));
  // The work thread saw its term over (it says so, then resigns the term).
  for (int i = 0; i < 100 && !not_started; ++i) pump_until([&] { return not_started.load(); });
  EXPECT_TRUE(not_started);
  // The term ends without work, as a resignation (posted by that thread at
  // its own, later, time); the elector campaigns on and its next term, whose
  // thread runs in time, starts its work.
  clock.paused_for = Duration::zero();
  for (int i = 0; i < 250 && rec.working.load() == 0; ++i) {
    clock.sim.advance(100ms);
    pump_until([&] { return rec.working.load() == 1; });
  }
  EXPECT_EQ(rec.working.load(), 1);
  EXPECT_EQ(rec.count("a started 0/a"), 0) << "the work started after its term's deadline";
  EXPECT_EQ(rec.count("a stopped 0/a"), 0);
  EXPECT_EQ(rec.count("a started 1/a"), 1);
  EXPECT_TRUE((*e)->is_leader());
  (*e)->stop();
  for (int i = 0; i < 100 && (*e)->status().phase != "stopped"; ++i) {
    pump_until([&] { return (*e)->status().phase == "stopped"; });
  }
  EXPECT_EQ((*e)->status().phase, "stopped");
}

}  // namespace
}  // namespace leasehold
