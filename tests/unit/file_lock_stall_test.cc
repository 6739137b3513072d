// The file lock on the real clock, with real files and processes (timings in
// seconds):
// * it never blocks the Runtime's I/O thread: with PATH.lock held by another
//   process, another elector of the same Runtime keeps renewing, and the file
//   elector's work is stopped at its deadline (sent_at of its last good
//   renewal + renew_deadline);
// * a file deleted again and again under two candidates never lets both lead.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>

#include <gtest/gtest.h>

#include "leasehold/elector.h"
#include "support/real_time.h"

namespace leasehold {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using leasehold::testing::eventually;
using leasehold::testing::FlockHolder;
using leasehold::testing::pause_for;
using leasehold::testing::TermRecorder;

ElectorConfig config(std::string lock, std::string id) {
  ElectorConfig c;
  c.lock = std::move(lock);
  c.identity = std::move(id);
  c.lease_duration = 4s;
  c.renew_deadline = 2s;
  c.retry_period = 500ms;
  return c;
}

TEST(FileLockStallTest, AHeldLockFileStallsNoOtherElectorAndStopsAtTheDeadline) {
  fs::path dir = fs::temp_directory_path() / ("leasehold-stall-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string path = (dir / "app.lease").string();

  Runtime rt;
  TermRecorder terms;
  auto fcfg = config("file://" + path, "file-a");
  terms.install(fcfg, rt);
  // The second elector: mem:// (this binary has no control plane; the I/O
  // thread it shares with the file elector is what is under test).
  auto fe = Elector::create(rt, fcfg);
  auto me = Elector::create(rt, config("mem://other", "mem-a"));
  ASSERT_TRUE(fe.ok() && me.ok());
  (*fe)->start();
  (*me)->start();
  ASSERT_TRUE(eventually([&] { return (*fe)->is_leader() && (*me)->is_leader(); }));
  ASSERT_TRUE(eventually([&] { return terms.last_renewed().has_value(); }));

  std::optional<FlockHolder> holder;
  holder.emplace(path + ".lock");
  ASSERT_TRUE(eventually([&] { return FlockHolder::held_elsewhere(path + ".lock"); }));
  uint64_t renewals_at_hold = (*me)->status().renewals;

  // The file elector's work is stopped at its deadline...
  bool stopped = eventually([&] { return terms.stopped_at().has_value(); }, 6s);
  std::optional<Instant> last = terms.last_renewed(), at = terms.stopped_at();
  // ...while the other elector of the Runtime renews on (every 500 ms).
  pause_for(1500ms);
  uint64_t renewals_after = (*me)->status().renewals;
  bool mem_leads = (*me)->is_leader();
  holder.reset();  // frees the I/O thread of a build where it blocks

  ASSERT_TRUE(stopped) << "the file elector's work was not stopped within 6 s of the stall";
  Instant deadline = *last + fcfg.renew_deadline;
  std::printf("work stopped %.1f ms after the deadline; the mem:// elector renewed %d times meanwhile\n",
              std::chrono::duration<double, std::milli>(*at - deadline).count(),
              static_cast<int>(renewals_after - renewals_at_hold));
  EXPECT_GE(*at, deadline) << "stopped before the deadline";
  // Another candidate may take the lease lease_duration - renew_deadline (2 s)
  // after the deadline; half of that is left for a thread woken late on a
  // loaded machine (make stress-test saw 297 ms).
  EXPECT_LE(*at - deadline, 1s) << "stopped " << (*at - deadline).count() / 1'000'000 << " ms late";
  EXPECT_GE(renewals_after, renewals_at_hold + 4) << "the mem:// elector stopped renewing";
  EXPECT_TRUE(mem_leads);

  (*fe)->stop();
  (*me)->stop();
  (*fe)->wait();
  (*me)->wait();
  fs::remove_all(dir);
}

TEST(FileLockStallTest, DeletingTheFileUnderTwoCandidatesNeverLetsBothLead) {
  fs::path dir = fs::temp_directory_path() / ("leasehold-delete-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string path = (dir / "app.lease").string();

  std::mutex mu;
  int working = 0, most = 0, terms = 0;  // GUARDED_BY(mu)
  auto cfg = [&](const std::string& id) {
    ElectorConfig c = config("file://" + path, id);
    c.callbacks.on_started_leading = [&](const Term&, std::stop_token stop) {
      {
        std::lock_guard<std::mutex> g(mu);
        ++terms;
        most = std::max(most, ++working);
      }
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock<std::mutex> lk(m);
      cv.wait(lk, stop, [] { return false; });
      std::lock_guard<std::mutex> g(mu);
      --working;
    };
    return c;
  };
  Runtime rt_a, rt_b;  // as two processes would
  auto a = Elector::create(rt_a, cfg("file-a"));
  auto b = Elector::create(rt_b, cfg("file-b"));
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->start();
  (*b)->start();
  // Both have seen the record: one leads, the other names it.
  ASSERT_TRUE(eventually([&] {
    return ((*a)->is_leader() && (*b)->leader() == "file-a") || ((*b)->is_leader() && (*a)->leader() == "file-b");
  }));
  for (int i = 0; i < 12; ++i) {  // a tmp cleaner that keeps deleting it
    fs::remove(path);
    pause_for(700ms);
  }
  // Someone leads again once the deletions stop.
  EXPECT_TRUE(eventually([&] { return (*a)->is_leader() || (*b)->is_leader(); }, 15s));
  (*a)->stop();
  (*b)->stop();
  (*a)->wait();
  (*b)->wait();
  std::lock_guard<std::mutex> g(mu);
  EXPECT_EQ(most, 1) << "two candidates led at once";
  std::printf("%d terms, at most %d leader at once\n", terms, most);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace leasehold
