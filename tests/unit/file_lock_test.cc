// The file lock: compare-and-swap, sharing between handles, and refusal of
// torn or foreign files.
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <gtest/gtest.h>

#include "leasehold/runtime.h"

namespace leasehold {
namespace {

namespace fs = std::filesystem;

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
    RealClock clock;
    std::mutex m;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lk(m);
    for (Instant end = clock.now() + std::chrono::seconds(10); !out && clock.now() < end;) {
      if (rt.run_ready() == 0) clock.wait_until(lk, cv, clock.now() + std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(out.has_value());
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
  EXPECT_EQ(created->version, "1");
  auto again = call(rt, [&](auto cb) { lock->create(holder("b", 0), cb); });
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);

  auto up = call(rt, [&](auto cb) { lock->update("1", holder("b", 1), cb); });
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->version, "2");
  auto stale = call(rt, [&](auto cb) { lock->update("1", holder("c", 2), cb); });
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
  auto scheme = rt.open_lock("etcd://x");
  ASSERT_FALSE(scheme.ok());
  EXPECT_NE(scheme.error().message().find("unknown scheme \"etcd\""), std::string::npos);
  EXPECT_FALSE(rt.open_lock("mem://").ok());
}

}  // namespace
}  // namespace leasehold
