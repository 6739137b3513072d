// The file lock: compare-and-swap, sharing between handles, refusal of torn
// or foreign files, and its inotify watch (alone, and under two electors).
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "core/state_machine.h"
#include "leasehold/elector.h"
#include "leasehold/runtime.h"
#include "support/real_time.h"

namespace leasehold {
namespace {

namespace fs = std::filesystem;

// Runs the manual Runtime's tasks until `pred` or 10 s.
template <class P>
bool pump_until(Runtime& rt, P pred) {
  RealClock clock;
  std::mutex m;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lk(m);
  for (Instant end = clock.now() + std::chrono::seconds(10); !pred();) {
    if (clock.now() >= end) return false;
    if (rt.run_ready() == 0) clock.wait_until(lk, cv, clock.now() + std::chrono::milliseconds(1));
  }
  return true;
}

class FileLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("leasehold-filelock-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    url_ = "file://" + (dir_ / "app.lease").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::shared_ptr<Lock> open(Runtime& rt) {
    auto l = rt.open_lock(url_);
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().message());
    return l.ok() ? *l : nullptr;
  }

  // Runs one operation to completion on a manual runtime.
  template <class Op>
  Result<Versioned> call(Runtime& rt, Op op) {
    std::optional<Result<Versioned>> out;
    op([&](Result<Versioned> r) { out = std::move(r); });
    EXPECT_FALSE(out.has_value()) << "completion must not run inline";
    // The operation runs on a thread of its own and posts its completion.
    EXPECT_TRUE(pump_until(rt, [&] { return out.has_value(); }));
    return out.value_or(Error::internal("no completion"));
  }

  static LeaseRecord holder(const std::string& id, int32_t transitions) {
    LeaseRecord r;
    r.holder_identity = id;
    r.lease_duration_seconds = 15;
    r.lease_transitions = transitions;
    return r;
  }

  fs::path dir_;
  std::string url_;
  static Runtime::Options manual_options() {
    Runtime::Options o;
    o.manual = true;
    return o;
  }
  Runtime::Options manual_ = manual_options();
};

TEST_F(FileLockTest, CompareAndSwap) {
  Runtime rt(manual_);
  auto lock = open(rt);
  auto get = call(rt, [&](auto cb) { lock->get(cb); });
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code(), Code::kNotFound);

  auto created = call(rt, [&](auto cb) { lock->create(holder("a", 0), cb); });
  ASSERT_TRUE(created.ok()) << created.error().message();
  ASSERT_EQ(created->version.size(), 18u) << created->version;  // EPOCH:1
  std::string epoch = created->version.substr(0, 17);
  EXPECT_EQ(created->version, epoch + "1");
  auto again = call(rt, [&](auto cb) { lock->create(holder("b", 0), cb); });
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);

  auto up = call(rt, [&](auto cb) { lock->update(created->version, holder("b", 1), cb); });
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->version, epoch + "2");
  auto stale = call(rt, [&](auto cb) { lock->update(created->version, holder("c", 2), cb); });
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), Code::kConflict);

  auto now = call(rt, [&](auto cb) { lock->get(cb); });
  EXPECT_EQ(now->record.holder_identity, "b");
  EXPECT_EQ(now->record.lease_transitions, 1);
}

TEST_F(FileLockTest, TwoHandlesShareTheFile) {
  Runtime rt1(manual_), rt2(manual_);
  auto l1 = open(rt1), l2 = open(rt2);
  ASSERT_TRUE(call(rt1, [&](auto cb) { l1->create(holder("a", 0), cb); }).ok());
  auto seen = call(rt2, [&](auto cb) { l2->get(cb); });
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->record.holder_identity, "a");
  ASSERT_TRUE(call(rt2, [&](auto cb) { l2->update(seen->version, holder("b", 1), cb); }).ok());
  EXPECT_EQ(call(rt1, [&](auto cb) { l1->update(seen->version, holder("a", 1), cb); }).error().code(),
            Code::kConflict);
}

// Issue 14 item 3: a deleted and re-created file never repeats a version
// (before epochs, both files counted 1, 2, 3...).
TEST_F(FileLockTest, VersionsNeverRepeatAcrossDeleteAndRecreate) {
  Runtime rt(manual_);
  auto lock = open(rt);
  std::vector<std::string> seen;
  for (int file = 0; file < 3; ++file) {
    auto v = call(rt, [&](auto cb) { lock->create(holder("a", 0), cb); });
    ASSERT_TRUE(v.ok()) << v.error().message();
    seen.push_back(v->version);
    for (int i = 0; i < 3; ++i) {
      v = call(rt, [&](auto cb) { lock->update(v->version, holder("a", 0), cb); });
      ASSERT_TRUE(v.ok()) << v.error().message();
      seen.push_back(v->version);
    }
    fs::remove(dir_ / "app.lease");
  }
  std::set<std::string> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct.size(), seen.size());
}

// A file written before epochs is read as before and updated with its
// generation as the version; the update gives it an epoch.
TEST_F(FileLockTest, AFileWithoutAnEpochIsReadAndGivenOne) {
  Runtime rt(manual_);
  auto lock = open(rt);
  std::ofstream(dir_ / "app.lease")
      << R"({"kind":"leasehold.io/file-lock","apiVersion":1,"generation":7,"holderIdentity":"b",)"
      << R"("leaseDurationSeconds":15,"acquireTime":"","renewTime":"","leaseTransitions":2,"strategy":"","preferredHolder":""})";
  auto got = call(rt, [&](auto cb) { lock->get(cb); });
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->version, "7");
  EXPECT_EQ(got->record.holder_identity, "b");
  auto up = call(rt, [&](auto cb) { lock->update("7", holder("a", 3), cb); });
  ASSERT_TRUE(up.ok()) << up.error().message();
  EXPECT_EQ(up->version.size(), 18u);
  EXPECT_EQ(up->version.substr(16), ":8");
}

// Issue 14 item 3, through the state machine: a follower that saw version N
// of the file, which is then deleted and re-created by another holder up to
// the same generation, treats the new record as a new observation (its
// expiry counts from the new sighting) and does not take over a live lease.
TEST_F(FileLockTest, ARecreatedFileIsANewObservationForAFollower) {
  using namespace std::chrono_literals;
  Runtime rt(manual_);
  auto writer = open(rt);
  auto write_three = [&](const std::string& id) {  // create + 2 updates: generation 3
    auto v = call(rt, [&](auto cb) { writer->create(holder(id, 0), cb); });
    for (int i = 0; i < 2 && v.ok(); ++i) {
      v = call(rt, [&](auto cb) { writer->update(v->version, holder(id, 0), cb); });
    }
    ASSERT_TRUE(v.ok()) << v.error().message();
  };
  write_three("b");

  ElectorConfig cfg;
  cfg.lock = url_;
  cfg.identity = "a";  // 15s / 10s / 2s, polling (no watch)
  core::StateMachine sm(cfg, 1);
  std::vector<core::Action> out;
  Instant now = Instant{} + 1000s;
  WallTime wall{};
  // Answers every GET the machine asks for with the file as it is now.
  auto serve = [&] {
    for (size_t i = 0; i < out.size(); ++i) {
      auto* req = std::get_if<core::SendRequest>(&out[i]);
      if (!req) continue;
      ASSERT_EQ(req->op, core::Op::kGet) << "the follower wrote: " << core::op_name(req->op);
      auto got = call(rt, [&](auto cb) { writer->get(cb); });
      out.clear();
      sm.handle_response(now, wall, now, got, out);
      i = static_cast<size_t>(-1);  // rescan what the answer produced
    }
    out.clear();
  };
  sm.handle_start(now, wall, out);
  serve();
  ASSERT_TRUE(sm.observed());
  std::string first = sm.observed()->version;
  Instant first_seen = now;

  // b's file is deleted and c re-creates it to the same generation before
  // the follower's next poll.
  fs::remove(dir_ / "app.lease");
  write_three("c");
  Instant end = first_seen + 20s;
  while (auto w = sm.next_wakeup()) {
    if (*w > end) break;
    now = *w;
    sm.handle_tick(now, wall, out);
    serve();
    ASSERT_FALSE(HasFatalFailure());
    if (sm.observed() && sm.observed()->record.holder_identity == "c") break;
  }
  ASSERT_TRUE(sm.observed());
  EXPECT_EQ(sm.observed()->record.holder_identity, "c");
  EXPECT_NE(sm.observed()->version, first);
  ASSERT_LT(now, first_seen + 15s);
  EXPECT_EQ(sm.observed_expiry(), now + 15s) << "observed_at was not reset by the re-created record";
  // At b's old expiry the follower must not take c's live lease.
  Instant b_expiry = first_seen + 15s;
  while (auto w = sm.next_wakeup()) {
    if (*w > b_expiry + 1s) break;
    now = *w;
    sm.handle_tick(now, wall, out);
    serve();  // fails on any write
    ASSERT_FALSE(HasFatalFailure());
  }
}

TEST_F(FileLockTest, TornAndForeignFilesAreErrorsNeverFree) {
  Runtime rt(manual_);
  auto lock = open(rt);
  for (const char* content : {"{\"kind\":\"leasehold.io/file-lo", "hello world\n", "{\"holderIdentity\":\"\"}"}) {
    std::ofstream(dir_ / "app.lease") << content;
    auto get = call(rt, [&](auto cb) { lock->get(cb); });
    ASSERT_FALSE(get.ok()) << content;
    EXPECT_EQ(get.error().code(), Code::kInvalid);
    EXPECT_NE(get.error().message().find((dir_ / "app.lease").string()), std::string::npos);
    EXPECT_EQ(call(rt, [&](auto cb) { lock->create(holder("a", 0), cb); }).error().code(), Code::kInvalid);
    EXPECT_EQ(call(rt, [&](auto cb) { lock->update("1", holder("a", 0), cb); }).error().code(), Code::kInvalid);
  }
  std::ifstream in(dir_ / "app.lease");
  std::string kept((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(kept, "{\"holderIdentity\":\"\"}");  // never overwritten
}

// What a watch delivered, pumped from a manual Runtime on the real clock.
struct WatchLog {
  std::vector<std::optional<Versioned>> changes;
  std::vector<bool> health;
  std::function<void(const std::optional<Versioned>&)> on_change() {
    return [this](const std::optional<Versioned>& v) { changes.push_back(v); };
  }
  std::function<void(bool)> on_health() {
    return [this](bool h) { health.push_back(h); };
  }
  bool healthy() const { return !health.empty() && health.back(); }
};

// The watch posts each new version of PATH it reads (a rename over it, a
// deletion), the record that was there when it began, and nothing for other
// files of the directory; a file that does not decode makes it unhealthy
// until PATH reads again (here: absent, then a record).
TEST_F(FileLockTest, AWatchDeliversNewVersionsAndTheDeletion) {
  Runtime rt(manual_);
  WatchLog w;  // outlives the handles (their posts refer to it)
  auto writer = open(rt), watched = open(rt);
  auto first = call(rt, [&](auto cb) { writer->create(holder("a", 0), cb); });
  ASSERT_TRUE(first.ok()) << first.error().message();
  ASSERT_TRUE(watched->watch(w.on_change(), w.on_health()));
  ASSERT_TRUE(pump_until(rt, [&] { return w.healthy() && w.changes.size() == 1; }));
  ASSERT_TRUE(w.changes[0].has_value());
  EXPECT_EQ(w.changes[0]->version, first->version);

  // Another file of the directory (and PATH.lock, opened by every write) is
  // no news.
  std::ofstream(dir_ / "neighbour.txt") << "x";
  auto second = call(rt, [&](auto cb) { writer->update(first->version, holder("b", 1), cb); });
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(pump_until(rt, [&] { return w.changes.size() >= 2; }));
  ASSERT_TRUE(w.changes[1].has_value());
  EXPECT_EQ(w.changes[1]->version, second->version);
  EXPECT_EQ(w.changes[1]->record.holder_identity, "b");

  fs::remove(dir_ / "app.lease");
  ASSERT_TRUE(pump_until(rt, [&] { return w.changes.size() >= 3; }));
  EXPECT_FALSE(w.changes[2].has_value()) << "a deletion is delivered as no record";

  // Renamed into place, as writers do: written in place, the watch could
  // read it (and turn unhealthy) between its creation and its close, and
  // count the close, seen after the removal below, as a record created and
  // gone (a fifth delivery; 3 of 20 runs).
  std::ofstream(dir_ / "garbage.tmp") << "hello world\n";
  fs::rename(dir_ / "garbage.tmp", dir_ / "app.lease");
  ASSERT_TRUE(pump_until(rt, [&] { return !w.healthy(); })) << "a record that does not decode left it healthy";
  fs::remove(dir_ / "app.lease");
  auto third = call(rt, [&](auto cb) { writer->create(holder("c", 2), cb); });
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(pump_until(rt, [&] { return w.healthy(); }));
  ASSERT_TRUE(pump_until(rt, [&] { return !w.changes.empty() && w.changes.back().has_value() &&
                                          w.changes.back()->version == third->version; }));
  EXPECT_EQ(w.changes.size(), 4u) << "one delivery per version";
}

// No record when the watch begins is not a deletion (an elector takes a
// deletion as proof of a holder and waits it out).
TEST_F(FileLockTest, AWatchOnNoRecordDeliversNothingUntilOneIsWritten) {
  Runtime rt(manual_);
  WatchLog w;
  auto writer = open(rt), watched = open(rt);
  ASSERT_TRUE(watched->watch(w.on_change(), w.on_health()));
  ASSERT_TRUE(pump_until(rt, [&] { return w.healthy(); }));
  auto created = call(rt, [&](auto cb) { writer->create(holder("a", 0), cb); });
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(pump_until(rt, [&] { return !w.changes.empty(); }));
  ASSERT_EQ(w.changes.size(), 1u);
  ASSERT_TRUE(w.changes[0].has_value());
  EXPECT_EQ(w.changes[0]->version, created->version);
}

// A directory renamed away and replaced by another at the same path is no
// longer the one watched: the watch says it is unhealthy (electors poll).
TEST_F(FileLockTest, AWatchWhoseDirectoryIsReplacedTurnsUnhealthy) {
  Runtime rt(manual_);
  WatchLog w;
  auto watched = open(rt);
  ASSERT_TRUE(watched->watch(w.on_change(), w.on_health()));
  ASSERT_TRUE(pump_until(rt, [&] { return w.healthy(); }));
  fs::path old = dir_.string() + ".old";
  fs::remove_all(old);
  fs::rename(dir_, old);
  fs::create_directories(dir_);
  EXPECT_TRUE(pump_until(rt, [&] { return !w.healthy(); }));
  fs::remove_all(old);
}

// A FIFO planted at PATH (a neighbour who can write the directory) is
// refused, not waited on: opening it for reading would block until a writer
// came.
TEST_F(FileLockTest, AFifoAtThePathIsRefusedNotWaitedOn) {
  Runtime rt(manual_);
  auto lock = open(rt);
  ASSERT_EQ(::mkfifo((dir_ / "app.lease").c_str(), 0600), 0);
  auto refused = rt.open_lock(url_);  // planted before the open
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("not a regular file"), std::string::npos) << refused.error().message();
  auto got = call(rt, [&](auto cb) { lock->get(cb); });  // planted after the open
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), Code::kForbidden) << got.error().message();
  EXPECT_NE(got.error().message().find("not a regular file"), std::string::npos) << got.error().message();
}

// With the watch, electors on a file lock act on a change at once, not at
// their next poll or renewal: retry_period is 30 s here, so only the watch
// can explain an action within 10 s.
TEST_F(FileLockTest, ElectorsSeeAReleaseAndAForeignWriteAtOnce) {
  using namespace std::chrono_literals;
  Runtime rt;
  auto cfg = [&](const std::string& id) {
    ElectorConfig c;
    c.lock = url_;
    c.identity = id;
    c.lease_duration = 60s;
    c.renew_deadline = 45s;
    c.retry_period = 30s;
    return c;
  };
  testing::TermRecorder a_terms, b_terms;
  auto acfg = cfg("a"), bcfg = cfg("b");
  a_terms.install(acfg, rt);
  b_terms.install(bcfg, rt);
  auto a = Elector::create(rt, acfg);
  auto b = Elector::create(rt, bcfg);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->start();
  ASSERT_TRUE(testing::eventually([&] { return (*a)->is_leader(); }));
  (*b)->start();
  ASSERT_TRUE(testing::eventually([&] { return (*b)->leader() == "a"; }));

  // a follower takes a released lease at once (a graceful hand-over).
  (*a)->resign();
  EXPECT_TRUE(testing::eventually([&] { return (*b)->is_leader(); }, 10s))
      << "the follower did not take the released lease within 10 s";
  ASSERT_TRUE(a_terms.stopped_at().has_value());

  // An admin frees the lease under the leader (release --force): b stops
  // its work at once.
  auto admin_rt = std::make_unique<Runtime>(manual_);
  auto admin = open(*admin_rt);
  auto cur = call(*admin_rt, [&](auto cb) { admin->get(cb); });
  ASSERT_TRUE(cur.ok());
  ASSERT_EQ(cur->record.holder_identity, "b");
  LeaseRecord freed = cur->record;
  freed.holder_identity.clear();
  ASSERT_TRUE(call(*admin_rt, [&](auto cb) { admin->update(cur->version, freed, cb); }).ok());
  EXPECT_TRUE(testing::eventually([&] { return b_terms.stopped_at().has_value(); }, 10s))
      << "the leader did not see the foreign write within 10 s";
  (*a)->stop();
  (*b)->stop();
  (*a)->wait();
  (*b)->wait();
}

TEST_F(FileLockTest, ClearErrorsForBadPaths) {
  Runtime rt(manual_);
  auto missing = rt.open_lock("file:///no/such/dir/app.lease");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("/no/such/dir does not exist"), std::string::npos);
  auto relative = rt.open_lock("file://relative.lease");
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.error().message().find("absolute path"), std::string::npos);
  auto isdir = rt.open_lock("file://" + dir_.string());
  ASSERT_FALSE(isdir.ok());
  EXPECT_NE(isdir.error().message().find("is a directory"), std::string::npos);
  auto scheme = rt.open_lock("zk://x");
  ASSERT_FALSE(scheme.ok());
  EXPECT_NE(scheme.error().message().find("unknown scheme \"zk\""), std::string::npos);
  EXPECT_FALSE(rt.open_lock("mem://").ok());
}

}  // namespace
}  // namespace leasehold
