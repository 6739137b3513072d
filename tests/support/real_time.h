// Test support for tests on the real clock with real processes: bounded
// waits for a condition, a process that holds a flock, and a recorder of a
// term's last renewal and stop.
//
// Threading: eventually() may be called from any thread; a FlockHolder
// belongs to the thread that made it; a TermRecorder's getters are safe from
// any thread while the callbacks it installed run.
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
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "leasehold/clock.h"
#include "leasehold/config.h"
#include "leasehold/runtime.h"

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

// Installs on_renewed and on_started_leading (work that waits for its stop)
// in an elector's config, and records the send time of the term's last
// renewal and when its work was first asked to stop, on `rt`'s clock.
class TermRecorder {
 public:
  void install(ElectorConfig& c, Runtime& rt) {
    c.callbacks.on_renewed = [this](const Term&, Instant at) {
      std::lock_guard<std::mutex> g(mu_);
      last_renewed_ = at;
    };
    c.callbacks.on_started_leading = [this, &rt](const Term&, std::stop_token stop) {
      {
        std::lock_guard<std::mutex> g(mu_);
        started_at_.push_back(rt.clock().now());
      }
      std::stop_callback cb(stop, [&] {
        Instant now = rt.clock().now();
        std::lock_guard<std::mutex> g(mu_);
        if (!stopped_at_) stopped_at_ = now;
      });
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock<std::mutex> lk(m);
      cv.wait(lk, stop, [] { return false; });
    };
  }
  std::optional<Instant> last_renewed() const {
    std::lock_guard<std::mutex> g(mu_);
    return last_renewed_;
  }
  std::optional<Instant> stopped_at() const {
    std::lock_guard<std::mutex> g(mu_);
    return stopped_at_;
  }
  // When each term's work started (on_started_leading), in order.
  std::vector<Instant> started_at() const {
    std::lock_guard<std::mutex> g(mu_);
    return started_at_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<Instant> last_renewed_, stopped_at_;  // GUARDED_BY(mu_)
  std::vector<Instant> started_at_;                  // GUARDED_BY(mu_)
};

}  // namespace leasehold::testing
