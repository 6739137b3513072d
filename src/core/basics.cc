// Small definitions behind error.h, clock.h, record.h and config.h.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "leasehold/clock.h"
#include "leasehold/config.h"
#include "leasehold/error.h"
#include "leasehold/record.h"

namespace leasehold {

std::string_view code_name(Code code) {
  switch (code) {
    case Code::kNotFound: return "NotFound";
    case Code::kConflict: return "Conflict";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kForbidden: return "Forbidden";
    case Code::kUnauthorized: return "Unauthorized";
    case Code::kInvalid: return "Invalid";
    case Code::kGone: return "Gone";
    case Code::kTimeout: return "Timeout";
    case Code::kUnavailable: return "Unavailable";
    case Code::kTooManyRequests: return "TooManyRequests";
    case Code::kInternal: return "Internal";
  }
  return "Unknown";
}

bool is_transient(Code code) {
  return code == Code::kTimeout || code == Code::kUnavailable || code == Code::kTooManyRequests ||
         code == Code::kInternal;
}

std::string Error::to_string() const { return std::string(code_name(code_)) + ": " + message_; }

std::string Term::to_string() const { return std::to_string(transitions) + "/" + holder; }

// ---- clocks ----

Instant RealClock::now() const {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);  // cannot fail: the clock id is valid and ts writable
  return Instant{} + std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}
WallTime RealClock::wall_now() const { return std::chrono::system_clock::now(); }
void RealClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                           Instant deadline) {
  // The remaining boot time becomes a monotonic wait, capped so that a
  // suspend during the wait delays the return by at most one slice.
  Duration left = deadline - now();
  if (left <= Duration::zero()) return;
  cv.wait_for(lock, std::min(left, kMaxWaitSlice));
}

SimulatedClock::SimulatedClock(WallTime wall_start) : wall_start_(wall_start) {}

Instant SimulatedClock::now() const {
  std::lock_guard<std::mutex> g(mu_);
  return Instant{} + std::chrono::hours(1) + elapsed_;
}

WallTime SimulatedClock::wall_now() const {
  std::lock_guard<std::mutex> g(mu_);
  return wall_start_ + std::chrono::duration_cast<WallTime::duration>(elapsed_);
}

void SimulatedClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                                Instant deadline) {
  // Registration and the deadline check both happen under the caller's
  // mutex, and advance() takes that mutex before notifying, so no wake-up
  // is lost between the check and the wait.
  {
    std::lock_guard<std::mutex> g(mu_);
    sleepers_.push_back({lock.mutex(), &cv});
  }
  if (now() < deadline) cv.wait(lock);
  std::lock_guard<std::mutex> g(mu_);
  for (auto it = sleepers_.begin(); it != sleepers_.end(); ++it) {
    if (it->cv == &cv) {
      sleepers_.erase(it);
      break;
    }
  }
}

void SimulatedClock::advance(Duration d) {
  std::vector<Sleeper> wake;
  {
    std::lock_guard<std::mutex> g(mu_);
    elapsed_ += d;
    wake = sleepers_;
  }
  for (const Sleeper& s : wake) {
    std::lock_guard<std::mutex> g(*s.mu);
    s.cv->notify_all();
  }
}

// ---- config ----

namespace {
std::string ms(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}
}  // namespace

Result<void> ElectorConfig::validate() const {
  using std::chrono::seconds;
  if (lock.empty()) return Error::invalid("lock: required (e.g. file:///run/app.lease)");
  if (identity.empty()) return Error::invalid("identity: must not be empty");
  if (identity.size() > 253) return Error::invalid("identity: longer than 253 characters");
  if (retry_period <= Duration::zero()) {
    return Error::invalid("retry_period: must be > 0, got " + ms(retry_period));
  }
  if (lease_duration % seconds(1) != Duration::zero()) {
    return Error::invalid("lease_duration: must be whole seconds (the Lease stores "
                          "leaseDurationSeconds), got " + ms(lease_duration));
  }
  if (lease_duration > seconds(86400)) {
    return Error::invalid("lease_duration: must be at most 24h, got " + ms(lease_duration));
  }
  if (lease_duration <= renew_deadline) {
    return Error::invalid("lease_duration: must be greater than renew_deadline (" +
                          ms(renew_deadline) + "), got " + ms(lease_duration));
  }
  if (renew_deadline * 10 <= retry_period * 12) {
    return Error::invalid("renew_deadline: must be greater than 1.2 * retry_period (" +
                          ms(retry_period * 12 / 10) + "), got " + ms(renew_deadline));
  }
  if (renew_interval < Duration::zero() ||
      (renew_interval != Duration::zero() && renew_interval >= renew_deadline)) {
    return Error::invalid("renew_interval: must be > 0 and < renew_deadline (" +
                          ms(renew_deadline) + "), got " + ms(renew_interval));
  }
  if (coordinated.enabled) {
    if (!lock.starts_with("k8s://")) {
      return Error::invalid("coordinated: needs a k8s:// Lease lock, got \"" + lock + "\"");
    }
    auto is_version = [](const std::string& v, int parts) {
      int n = 0;
      size_t i = 0;
      while (i < v.size()) {
        size_t j = i;
        while (j < v.size() && v[j] >= '0' && v[j] <= '9') ++j;
        if (j == i) return false;
        ++n;
        if (j == v.size()) break;
        if (v[j] != '.') return false;
        i = j + 1;
        if (i == v.size()) return false;
      }
      return n == parts;
    };
    if (!is_version(coordinated.binary_version, 3)) {
      return Error::invalid("coordinated.binary_version: want MAJOR.MINOR.PATCH (e.g. 1.36.3), got \"" +
                            coordinated.binary_version + "\"");
    }
    if (!coordinated.emulation_version.empty() && !is_version(coordinated.emulation_version, 2) &&
        !is_version(coordinated.emulation_version, 3)) {
      return Error::invalid("coordinated.emulation_version: want MAJOR.MINOR (e.g. 1.35), got \"" +
                            coordinated.emulation_version + "\"");
    }
    if (coordinated.renew_interval < seconds(1) || coordinated.renew_interval > seconds(3600)) {
      return Error::invalid("coordinated.renew_interval: must be between 1s and 1h, got " +
                            ms(coordinated.renew_interval));
    }
    for (char c : identity) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
        return Error::invalid("identity: coordinated election names the LeaseCandidate after it, so it must be a "
                              "lowercase DNS subdomain, got \"" + identity + "\"");
      }
    }
  }
  return {};
}

}  // namespace leasehold
