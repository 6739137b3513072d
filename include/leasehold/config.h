// leasehold/config.h — what an Elector is told: the lock, who we are, timing,
// and the callbacks.
//
// validate() applies client-go's rules and more, and names the field in its
// error: lease_duration > renew_deadline > 1.2 * retry_period > 0, whole-second
// lease_duration, non-empty identity.
//
// Threading: plain values; copy freely. Callbacks are invoked on threads the
// library owns (see elector.h), never on the I/O thread.
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

#include "leasehold/clock.h"
#include "leasehold/error.h"
#include "leasehold/record.h"

namespace leasehold {

struct Callbacks {
  // Runs the guarded work for one term, on a thread of its own, after the
  // write that made us holder succeeded. `stop` is requested when leadership
  // ends (lost, deadline missed, or stop()). Return promptly once it is: the
  // lease is released only after this returns. It may also return at once
  // and leave the work to run elsewhere (an event loop, a pool): the term
  // goes on, `stop` (a std::stop_callback on it, or on_stopped_leading) still
  // reports its end, and no thread is held meanwhile. The stop is requested
  // on a library thread of its own: a std::stop_callback on `stop` runs
  // there, never on the I/O thread, so a slow one delays no renewal (of this
  // or any other elector). An exception thrown
  // from here ends the term: the elector logs it, steps down and releases.
  // Called only before the term's deadline: if the process is paused or
  // starved between the winning write and this call past renew_deadline,
  // the term ends without calling it (nor on_stopped_leading).
  std::function<void(const Term&, std::stop_token stop)> on_started_leading;
  // Exactly once per term whose on_started_leading was called, after it returned and the
  // term ended; on the work's thread, or on a short-lived thread of its own
  // when the work had returned before the term ended.
  std::function<void(const Term&)> on_stopped_leading;
  // When the observed holder changes to a new, non-empty identity (including
  // ourselves). Serialised on the Runtime's notifier thread.
  std::function<void(const std::string& identity)> on_new_leader;
  // After every successful write that extends a started term (each renewal,
  // also those sent while the term's work is stopping), with that write's
  // send time on the Runtime's clock: the term now lasts until
  // renewed_at + renew_deadline here, and no other candidate can take the
  // lease before renewed_at + lease_duration. Serialised on the Runtime's
  // notifier thread, in order. For deadline watchdogs (the sidecar's); the
  // term's start is ElectorStatus::renewed_at.
  std::function<void(const Term&, Instant renewed_at)> on_renewed;
  // When the lease of a started term is seen held by another identity, or
  // freed by someone else (an admin's release, another client's bug), while
  // we held it: another replica may already lead, so the term's work should
  // end at once, without a grace period (on_started_leading's `stop` is
  // requested too). On the notifier thread. The sidecar SIGKILLs its
  // worker's tree here.
  std::function<void(const Term&)> on_lease_lost;
};

struct ElectorConfig {
  // Lock URL, e.g. "file:///var/run/app.lease" or "mem://test". Required.
  std::string lock;
  // Our holder identity; unique among candidates. Required, non-empty, at
  // most 253 characters.
  std::string identity;
  // How long a holder may go without renewing before others may take over.
  // Default 15s; whole seconds; must exceed renew_deadline; at most 24h; at
  // least 2s on etcd:// (the session lease's minimum).
  Duration lease_duration = std::chrono::seconds(15);
  // A leader that has not renewed within this long after sending its last
  // successful renewal stops its work. Default 10s; must exceed 1.2 * retry_period.
  Duration renew_deadline = std::chrono::seconds(10);
  // Wait between acquire attempts (with jitter factor 1.2) and between polls
  // while no watch is live. Default 2s; > 0.
  Duration retry_period = std::chrono::seconds(2);
  // Wait between renewals by the leader. Default 0 = retry_period; when set,
  // must be > 0 and < renew_deadline. Each renewal is sent up to
  // min(100 ms, renew_interval / 10) early, never late, so that the renewals
  // of every elector in the process fall on shared ticks and go out together.
  // Longer means fewer writes (60 / renew_interval a minute) but a shorter
  // kube-apiserver outage survived: one that begins just before a renewal is
  // due is survived for sure only if it ends retry_period before
  // renew_deadline - renew_interval has passed. Measured table: docs/modes.md
  // ("Renewal cadence"), `make bench-cadence`.
  Duration renew_interval = Duration::zero();
  // Release the lease (holder "", duration 1) on stop, after the work returned.
  bool release_on_cancel = true;
  // Campaign again after losing leadership (client-go stops instead).
  bool recampaign = true;
  // Record a Kubernetes Event (reason "LeaderElection", "ID became leader" /
  // "ID stopped leading", type Normal) on the lock's object once a term's work
  // has started and once a stopped term's lease is released or lost, as
  // client-go does (its "stopped leading" follows its release too). Sent
  // asynchronously and rate-limited; a failure (e.g. no RBAC "create events")
  // is only logged. Only Kubernetes locks record Events. Default true.
  bool record_events = true;
  // Coordinated leader election (KEP-4355; Kubernetes 1.33+ with the
  // CoordinatedLeaderElection gate and coordination.k8s.io/v1beta1 served).
  // When enabled, this elector never takes the Lease itself: it keeps a
  // LeaseCandidate (NAMESPACE/IDENTITY) describing its versions, kube-apiserver
  // picks the holder (strategy OldestEmulationVersion), and the elector leads
  // only once the Lease names it, renews it like any leader, and steps down
  // (releases) when the Lease's preferredHolder names another candidate.
  // Only k8s:// locks; identity must be a valid object name.
  struct Coordinated {
    bool enabled = false;
    // spec.binaryVersion, "MAJOR.MINOR.PATCH" (e.g. "1.36.3"). Required when enabled.
    std::string binary_version;
    // spec.emulationVersion, "MAJOR.MINOR" (e.g. "1.35", written as "1.35.0")
    // or "MAJOR.MINOR.PATCH"; "" = binary_version's MAJOR.MINOR.
    std::string emulation_version;
    // How often the LeaseCandidate's renewTime is refreshed (it is also
    // refreshed at once when kube-apiserver pings it). Default 5 min;
    // 1s..1h. kube-apiserver drops candidates that stop renewing.
    Duration renew_interval = std::chrono::minutes(5);
  };
  Coordinated coordinated;
  // Name for logs and metrics; defaults to the lock URL.
  std::string name;
  Callbacks callbacks;

  Result<void> validate() const;
  Duration effective_renew_interval() const {
    return renew_interval == Duration::zero() ? retry_period : renew_interval;
  }
};

}  // namespace leasehold
