// leasehold/clock.h — the time source every leasehold component uses.
//
// All reading of time and all waiting go through a Clock, so tests drive a
// SimulatedClock and never sleep. Expiry and deadlines use steady time
// (Instant); wall time (WallTime) is only written into lease records for
// humans and for client-go compatibility, never compared across hosts.
//
// RealClock's Instant is CLOCK_BOOTTIME: time since boot, counting through
// system suspend, so a leader that resumes from suspend sees its deadline
// passed. It is carried in a std::chrono::steady_clock::time_point, but its
// epoch is boot, not std::chrono::steady_clock's (CLOCK_MONOTONIC, which
// stops during suspend): never compare an Instant with
// std::chrono::steady_clock::now(); convert to another clock by difference
// (now() - instant).
//
// Threading: both implementations are safe to call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace leasehold {

using Duration = std::chrono::nanoseconds;
using Instant = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Instant now() const = 0;
  virtual WallTime wall_now() const = 0;
  // Blocks on `cv` (whose mutex `lock` holds) until now() >= deadline or the
  // cv is notified. Spurious returns are allowed; callers loop.
  virtual void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          Instant deadline) = 0;
};

// CLOCK_BOOTTIME (now) and the system clock (wall_now). wait_until waits on
// the condition variable in slices of at most kMaxWaitSlice (a
// condition_variable can only wait on CLOCK_MONOTONIC or CLOCK_REALTIME), so a
// wait that spans a suspend returns at most that long after its deadline.
class RealClock final : public Clock {
 public:
  Instant now() const override;
  WallTime wall_now() const override;
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  Instant deadline) override;
  static constexpr Duration kMaxWaitSlice = std::chrono::milliseconds(250);
};

// Time that moves only when advance() is called. Waiters are woken when the
// clock passes their deadline.
class SimulatedClock final : public Clock {
 public:
  // Starts at an arbitrary steady instant and at `wall_start` wall time.
  explicit SimulatedClock(WallTime wall_start = WallTime{std::chrono::seconds(1'800'000'000)});
  Instant now() const override;
  WallTime wall_now() const override;
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  Instant deadline) override;
  void advance(Duration d);

 private:
  struct Sleeper {
    std::mutex* mu;
    std::condition_variable* cv;
  };
  mutable std::mutex mu_;
  Duration elapsed_{0};  // GUARDED_BY(mu_)
  WallTime wall_start_;
  std::vector<Sleeper> sleepers_;  // GUARDED_BY(mu_)
};

}  // namespace leasehold
