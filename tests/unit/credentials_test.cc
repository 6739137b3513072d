// kube::Credentials (src/kube/credentials.h): when a token file is read
// again. The file's stat(2) decides, so the tests set its modification time
// with utimensat(2) to make it look old, recent, or unchanged.
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

TEST_F(CredentialsTest, ASettledTokenFileIsReadAgainOnlyWhenItChangesOrAfterA401) {
  Credentials c(cfg_, clock_, nullptr, [] {});
  timespec old = ago(std::chrono::seconds(60));
  write("aaaa", old);
  EXPECT_EQ(header(c), "Bearer aaaa");
  // The same size and modification time: stat(2) sees no change, so the
  // token read before is sent (this is what proves there is a cache).
  write("bbbb", old);
  EXPECT_EQ(header(c), "Bearer aaaa");
  // A 401: read again at once.
  c.unauthorized();
  EXPECT_EQ(header(c), "Bearer bbbb");
  // Another modification time: read again.
  write("cccc", ago(std::chrono::seconds(30)));
  EXPECT_EQ(header(c), "Bearer cccc");
  // Another size: read again.
  write("dddddd", ago(std::chrono::seconds(30)));
  EXPECT_EQ(header(c), "Bearer dddddd");
  // Replaced by another file (kubelet swaps a symlink): read again.
  std::string next = dir_ + "/next";
  {
    std::ofstream f(next);
    f << "eeeeee\n";
  }
  timespec same[2];
  struct stat st;
  ASSERT_EQ(::stat(cfg_.token_file.c_str(), &st), 0);
  same[0] = st.st_atim;
  same[1] = st.st_mtim;
  ASSERT_EQ(::utimensat(AT_FDCWD, next.c_str(), same, 0), 0);
  ASSERT_EQ(::rename(next.c_str(), cfg_.token_file.c_str()), 0);
  EXPECT_EQ(header(c), "Bearer eeeeee");
}

TEST_F(CredentialsTest, ATokenFileModifiedInTheLastTwoSecondsIsReadForEveryRequest) {
  Credentials c(cfg_, clock_, nullptr, [] {});
  timespec recent = ago(std::chrono::seconds(0));
  write("aaaa", recent);
  EXPECT_EQ(header(c), "Bearer aaaa");
  // Rewritten within the same timestamp (as a coarse clock would show it):
  // still read, as its first read was too recent to trust.
  write("bbbb", recent);
  EXPECT_EQ(header(c), "Bearer bbbb");
}

TEST_F(CredentialsTest, AMissingOrEmptyTokenFileFallsBackToTheConfigsToken) {
  Credentials c(cfg_, clock_, nullptr, [] {});
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
