// leasehold/elector.h — campaign for a lease and run work only while leading.
//
//   leasehold::Runtime rt;
//   leasehold::ElectorConfig cfg{.lock = "file:///run/app.lease", .identity = "pod-a"};
//   cfg.callbacks.on_started_leading = [](const Term& t, std::stop_token stop) {
//     while (!stop.stop_requested()) do_critical_work(t);
//   };
//   auto e = leasehold::Elector::create(rt, cfg);   // Result<unique_ptr<Elector>>
//   (*e)->start();
//   ...
//   (*e)->stop(); (*e)->wait();   // work returns, then the lease is released
//
// Observer watches a lease without competing.
//
// Threading: every method is safe from any thread. Callbacks run on library
// threads (see config.h), never on the I/O thread, so a slow callback cannot
// delay a renewal. Do not call wait() from inside a callback.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "leasehold/config.h"
#include "leasehold/error.h"
#include "leasehold/lock.h"
#include "leasehold/record.h"
#include "leasehold/runtime.h"

namespace leasehold {

struct ElectorStatus {
  std::string phase;   // idle, following, leading, stopping, stopped
  bool leading = false;  // is_leader() at the time of the snapshot
  std::string leader;  // last observed holder; empty if none seen
  std::optional<Term> term;  // ours, while leading
  // Leader: time left before our renew deadline. Follower: before the
  // observed holder's lease expires on our clock.
  std::optional<Duration> time_left;
  int64_t lease_transitions = -1;  // of the last record seen
  uint64_t renewals = 0;
  uint64_t failed_requests = 0;
  uint64_t slow_path = 0;  // renewals that had to re-read after a conflict
};

class Elector {
 public:
  // Validates the config (the error names the field) and opens its lock.
  static Result<std::unique_ptr<Elector>> create(Runtime& rt, ElectorConfig config);
  // As above, on a lock handle the caller opened (to keep fault hooks).
  static Result<std::unique_ptr<Elector>> create(Runtime& rt, ElectorConfig config,
                                                 std::shared_ptr<Lock> lock);
  // Stops, waits for the work and the release.
  ~Elector();
  Elector(const Elector&) = delete;
  Elector& operator=(const Elector&) = delete;

  // Starts campaigning. A stop requested on `stop` acts as stop().
  void start(std::stop_token stop = {});
  // Requests a stop: the work's stop_token is requested; once the work
  // returns, the lease is released (release_on_cancel). Does not block.
  void stop();
  // Leader only: stop the work, release the lease once it returned, and
  // campaign again (recampaign) or stop. No effect when not leading.
  void resign();
  // Blocks until the elector is stopped and every callback has returned.
  void wait();

  // True only while we lead and our renew deadline has not passed, judged
  // at the time of the call.
  bool is_leader() const;
  // The holder last observed (us while leading); empty if none.
  std::string leader() const;
  // Our fencing token while leading.
  std::optional<Term> term() const;
  ElectorStatus status() const;
  const std::string& name() const;

  struct Impl;

 private:
  explicit Elector(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace leasehold
