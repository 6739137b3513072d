// Test support for tests on the real clock with real processes: bounded
// waits for a condition, and a process that holds a flock.
//
// Threading: eventually() may be called from any thread; a FlockHolder
// belongs to the thread that made it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "leasehold/clock.h"

namespace leasehold::testing {

// Checks `pred` every 5 ms on the real clock until it holds (true) or
// `limit` has passed (false).
template <class P>
bool eventually(P pred, Duration limit = std::chrono::seconds(10)) {
  RealClock clock;
  std::mutex m;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lk(m);
  for (Instant end = clock.now() + limit; !pred();) {
    if (clock.now() >= end) return false;
    clock.wait_until(lk, cv, clock.now() + std::chrono::milliseconds(5));
  }
  return true;
}

// Waits `d` on the real clock.
inline void pause_for(Duration d) {
  eventually([] { return false; }, d);
}

// `flock PATH sleep 30` in a process group of its own; the group (sleep keeps
// the locked descriptor) is killed and reaped on destruction.
class FlockHolder {
 public:
  explicit FlockHolder(const std::string& path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::execlp("flock", "flock", path.c_str(), "sleep", "30", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid_ > 0) ::setpgid(pid_, pid_);  // also here: no race with the child's own call
  }
  ~FlockHolder() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  FlockHolder(const FlockHolder&) = delete;
  FlockHolder& operator=(const FlockHolder&) = delete;

  // True once another process holds an exclusive flock on `path`.
  static bool held_elsewhere(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // drops our flock if we took it
    return held;
  }

 private:
  pid_t pid_;
};

}  // namespace leasehold::testing
