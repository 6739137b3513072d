// kube::Credentials (src/kube/credentials.h): when a token file is read
// again. The file's stat(2) decides; the tests set its modification time
// with utimensat(2) and count reads with token_file_reads().
#include "kube/credentials.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

namespace leasehold::kube {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/leasehold-creds.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cfg_.token_file = dir_ + "/token";
    cfg_.token = "from-config";
  }
  void TearDown() override {
    ::unlink(cfg_.token_file.c_str());
    ::rmdir(dir_.c_str());
  }
  // The real time `age` ago.
  static timespec ago(std::chrono::seconds age) {
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec -= age.count();
    return t;
  }
  // Writes `token` (in place, as an editor would) and sets the file's
  // modification time to `mtime`.
  void write(const std::string& token, timespec mtime) {
    {
      std::ofstream f(cfg_.token_file, std::ios::trunc);
      f << token << "\n";
    }
    timespec times[2] = {mtime, mtime};
    ASSERT_EQ(::utimensat(AT_FDCWD, cfg_.token_file.c_str(), times, 0), 0);
  }
  std::string header(Credentials& c) { return c.pick(clock_.now()).authorization; }

  std::string dir_;
  ClusterConfig cfg_;
  SimulatedClock clock_;
};

// With no settling time (set_token_file_settle(0)), a file is reused until
// stat(2) shows any change.
TEST_F(CredentialsTest, ATokenFileIsReadAgainOnlyWhenItChangesOrAfterA401) {
  Credentials c(cfg_, clock_, nullptr, [] {});
  c.set_token_file_settle(Duration::zero());
  timespec old = ago(std::chrono::seconds(60));
  write("aaaa", old);
  EXPECT_EQ(header(c), "Bearer aaaa");
  EXPECT_EQ(header(c), "Bearer aaaa");
  EXPECT_EQ(c.token_file_reads(), 1u) << "an unchanged file was read again";
  // Rewritten in place with the same size and modification time (cp -p,
  // touch -r): its status change time moved, so it is read again.
  write("bbbb", old);
  EXPECT_EQ(header(c), "Bearer bbbb");
  EXPECT_EQ(c.token_file_reads(), 2u);
  // A 401: read again at once.
  c.unauthorized();
  EXPECT_EQ(header(c), "Bearer bbbb");
  EXPECT_EQ(c.token_file_reads(), 3u);
  // Another size: read again.
  write("dddddd", old);
  EXPECT_EQ(header(c), "Bearer dddddd");
  // Replaced by another file (kubelet swaps a symlink): read again.
  std::string next = dir_ + "/next";
  {
    std::ofstream f(next);
    f << "eeeeee\n";
  }
  ASSERT_EQ(::rename(next.c_str(), cfg_.token_file.c_str()), 0);
  EXPECT_EQ(header(c), "Bearer eeeeee");
  EXPECT_EQ(header(c), "Bearer eeeeee");
  EXPECT_EQ(c.token_file_reads(), 5u);
}

// By default a file changed under 2 s ago is read for every request: a
// rewrite within its timestamps' granularity would not show in stat(2).
TEST_F(CredentialsTest, ATokenFileChangedInTheLastTwoSecondsIsReadForEveryRequest) {
  Credentials c(cfg_, clock_, nullptr, [] {});
  write("aaaa", ago(std::chrono::seconds(60)));  // its status change time is now
  EXPECT_EQ(header(c), "Bearer aaaa");
  EXPECT_EQ(header(c), "Bearer aaaa");
  EXPECT_EQ(c.token_file_reads(), 2u);
}

TEST_F(CredentialsTest, AMissingOrEmptyTokenFileFallsBackToTheConfigsToken) {
  Credentials c(cfg_, clock_, nullptr, [] {});
  c.set_token_file_settle(Duration::zero());
  EXPECT_EQ(header(c), "Bearer from-config");  // no file yet
  write("", ago(std::chrono::seconds(60)));
  EXPECT_EQ(header(c), "Bearer from-config");
  write("ffff", ago(std::chrono::seconds(30)));
  EXPECT_EQ(header(c), "Bearer ffff");
  ::unlink(cfg_.token_file.c_str());
  EXPECT_EQ(header(c), "Bearer from-config");
}

}  // namespace
}  // namespace leasehold::kube
