// Internal: the Kubernetes client's request budget — a token bucket (QPS and
// burst) in front of two FIFO queues, one per priority class.
//
// Lock traffic (the get/create/update of a lock object) is kLease; everything
// else (events, LeaseCandidates, pods, lists, watch starts) is kBackground.
// A request over budget waits in its queue; nothing is dropped. Queued lease
// requests always start before queued background ones, and background
// requests may not take the last `reserve` tokens of the bucket, so a lease
// request arriving just after a burst of background traffic still finds a
// token at once.
//
// Pure: no clock reads, no threads. The caller passes `now` (the client's
// Clock) and sleeps until next_ready(). Tests drive it with plain Instants.
//
// Threading: not thread-safe; the client uses it on its own thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "leasehold/clock.h"
#include "leasehold/error.h"

namespace leasehold::kube {

enum class Priority {
  kLease,       // lock reads and writes: must never be starved
  kBackground,  // everything else
};

struct RateLimit {
  // Sustained requests per second the client starts. 0 turns the limiter off.
  // Limits: 0 or [0.1, 1,000,000].
  double qps = 5000;
  // Requests that may start at once after an idle period (the bucket size).
  // Limits: [1, 1,000,000]; ignored when qps is 0.
  int burst = 1000;
};

// Checks the limits above; the error names the field (`prefix` + "qps"/"burst").
Result<void> validate_rate_limit(const RateLimit& limit, const std::string& prefix);

// A token bucket: `burst` tokens, refilled at `qps` per second.
class TokenBucket {
 public:
  TokenBucket(RateLimit limit, Instant now);
  bool unlimited() const { return qps_ <= 0; }
  // Tokens available at `now` (fractional).
  double available(Instant now);
  // Takes one token if at least 1 + keep are available at `now`.
  bool try_take(Instant now, double keep = 0);
  // The earliest instant at which 1 + keep tokens are available.
  Instant when_available(Instant now, double keep = 0);

 private:
  void refill(Instant now);
  double qps_;
  double burst_;
  double tokens_;
  Instant last_;
};

// The two queues behind one bucket. T is whatever the caller queues (the
// client queues its transfers).
template <class T>
class PriorityLimiter {
 public:
  PriorityLimiter(RateLimit limit, Instant now)
      : bucket_(limit, now), reserve_(limit.qps > 0 ? static_cast<double>(limit.burst / 4) : 0) {}

  void push(Priority p, T item) { queue(p).push_back(std::move(item)); }

  // Starts what the budget allows at `now`: lease items first, then
  // background items while the reserve is kept, FIFO within a class.
  // `start(item)` returns true if it started the item (a token is spent) or
  // false if it discarded it (e.g. its deadline passed: no token is spent).
  // At most `room` items are started (the caller's cap on requests in flight).
  void pop_ready(Instant now, const std::function<bool(T&)>& start, size_t room = SIZE_MAX) {
    drain(lease_, now, 0, start, room);
    if (lease_.empty()) drain(background_, now, reserve_, start, room);
  }

  // When pop_ready may start something next; nullopt when both queues are empty.
  std::optional<Instant> next_ready(Instant now) {
    if (!lease_.empty()) return bucket_.when_available(now, 0);
    if (!background_.empty()) return bucket_.when_available(now, reserve_);
    return std::nullopt;
  }

  // Removes (without starting) every queued item matching `pred`; returns them.
  std::deque<T> remove_if(const std::function<bool(const T&)>& pred) {
    std::deque<T> out;
    for (auto* q : {&lease_, &background_}) {
      for (auto it = q->begin(); it != q->end();) {
        if (pred(*it)) {
          out.push_back(std::move(*it));
          it = q->erase(it);
        } else {
          ++it;
        }
      }
    }
    return out;
  }

  // Empties both queues (shutdown), lease items first.
  std::deque<T> take_all() {
    return remove_if([](const T&) { return true; });
  }

  size_t queued(Priority p) const { return p == Priority::kLease ? lease_.size() : background_.size(); }
  double reserve() const { return reserve_; }

 private:
  std::deque<T>& queue(Priority p) { return p == Priority::kLease ? lease_ : background_; }

  void drain(std::deque<T>& q, Instant now, double keep, const std::function<bool(T&)>& start, size_t& room) {
    while (!q.empty() && room > 0) {
      if (!bucket_.unlimited() && bucket_.available(now) < 1 + keep) return;
      T item = std::move(q.front());
      q.pop_front();
      if (start(item)) {
        bucket_.try_take(now, keep);
        --room;
      }
    }
  }

  TokenBucket bucket_;
  double reserve_;
  std::deque<T> lease_;
  std::deque<T> background_;
};

}  // namespace leasehold::kube
