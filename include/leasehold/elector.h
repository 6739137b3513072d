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

#include <array>
#include <chrono>
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

// Latency of the leader's renewals (sent until answered, timeouts included),
// in Prometheus-style buckets of seconds. counts[i] holds renewals that took
// at most kBounds[i] and more than kBounds[i-1] (not cumulative); the last
// slot holds those slower than every bound.
struct LatencyHistogram {
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
  std::array<uint64_t, kBounds.size() + 1> counts{};
  uint64_t count = 0;
  double sum_seconds = 0;

  void add(Duration d) {
    double s = std::chrono::duration<double>(d).count();
    size_t i = 0;
    while (i < kBounds.size() && s > kBounds[i]) ++i;
    ++counts[i];
    ++count;
    sum_seconds += s;
  }
};

// A snapshot of one elector, for health checks and metrics. Counters only
// grow for the life of the Elector.
struct ElectorStatus {
  // One slot per leasehold::Code, indexed by static_cast<size_t>(code).
  static constexpr size_t kCodes = static_cast<size_t>(Code::kInternal) + 1;

  std::string phase;   // idle, following, leading, stopping, stopped
  bool leading = false;  // is_leader() at the time of the snapshot
  std::string leader;  // last observed holder; empty if none seen
  std::optional<Term> term;  // ours, while leading
  // Leader: time left before our renew deadline; negative once it passed
  // while the phase still says leading (the I/O thread has not acted yet, a
  // sign it is stuck). Follower: before the observed holder's lease expires
  // on our clock (never negative).
  std::optional<Duration> time_left;
  // Time left on the lease itself as this elector judges it: leader, from
  // the send time of its last good renewal plus lease_duration; follower, as
  // time_left. Unknown (nullopt) when no holder is known.
  std::optional<Duration> lease_left;
  // While the lease names us for `term` (leading, or stopping the work while
  // still renewing): the send time of the last successful write of the term,
  // on the Runtime's clock. Published before on_started_leading runs.
  std::optional<Instant> renewed_at;
  int64_t lease_transitions = -1;  // of the last record seen
  uint64_t renewals = 0;
  uint64_t failed_requests = 0;  // every failed lock request except NotFound
  uint64_t slow_path = 0;  // renewals that had to re-read after a conflict
  uint64_t leader_changes = 0;  // changes of the observed holder (to a non-empty one)
  uint64_t terms_started = 0;   // times this elector became leader
  std::array<uint64_t, kCodes> failed_renewals{};  // by Code of the error
  // From a renewal's sending to its answer's handling on the I/O thread;
  // with the own HTTP/2 transport, up to 4 ms of it may be that transport's
  // wait for the answers of other renewals (src/kube/h2_client.h).
  LatencyHistogram renew_latency;
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
  // Leader only: hand the lease to the standby `target` with no leaderless
  // gap. The work is stopped first; once it has returned, the lease is
  // rewritten with `target` as holder (transitions + 1, a full lease
  // duration) by compare-and-swap on the version of our term we hold (read
  // first only when we hold none); a 409 makes it read, and it then writes
  // only if the fresh record still names us for this term. A leasehold
  // standby named holder confirms with its own write (on the version its
  // watch showed it) and starts leading once that lands (a client-go standby
  // takes it at its next retry). Then this elector campaigns again
  // (recampaign) or stops. If the target never takes it, the lease expires
  // as usual. Errors: an empty target or our own identity. Not leading: no
  // effect (logged).
  Result<void> handoff(const std::string& target);
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
