// leasehold/clock.h — the time source every leasehold component uses.
//
// All reading of time and all waiting go through a Clock, so tests drive a
// SimulatedClock and never sleep. Expiry and deadlines use steady time
// (Instant); wall time (WallTime) is only written into lease records for
// humans and for client-go compatibility, never compared across hosts.
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

// The process's steady and system clocks.
class RealClock final : public Clock {
 public:
  Instant now() const override;
  WallTime wall_now() const override;
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  Instant deadline) override;
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
