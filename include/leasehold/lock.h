// leasehold/lock.h — the interface every lock backend implements.
//
// A Lock is one elector's handle on one lease record in some store. It has
// four asynchronous operations; each calls its completion exactly once, on the
// owning Runtime's I/O thread, never inline inside the call. Backends are
// chosen by URL through Runtime::open_lock:
//   mem://NAME          in-process (shared by every handle of one Runtime)
//   file:///ABS/PATH    a JSON record in a file, compare-and-swap under flock
//   k8s://NS/NAME       a coordination.k8s.io/v1 Lease
//   configmap://NS/NAME, endpoints://NS/NAME
//                       client-go's legacy annotation locks
//   configmapsleases://NS/NAME, endpointsleases://NS/NAME
//                       migration: the legacy lock and the Lease NS/NAME together
//   etcd://HOST:PORT[,...]/PREFIX, etcds://...
//                       etcd v3, as Go's concurrency.Election (docs/etcd.md)
//
// Threading: every method is called on the Runtime's I/O thread only.
#pragma once

#include <functional>
#include <string>

#include "leasehold/clock.h"
#include "leasehold/error.h"
#include "leasehold/record.h"

namespace leasehold {

template <class T>
using Completion = std::function<void(Result<T>)>;

// What a Runtime offers the locks it opens: its clock and its I/O thread.
class LockHost {
 public:
  virtual ~LockHost() = default;
  virtual Clock& clock() = 0;
  // Runs `fn` on the I/O thread after `delay` of clock time (0: soon).
  virtual void post(std::function<void()> fn, Duration delay = Duration::zero()) = 0;
};

class Lock {
 public:
  virtual ~Lock() = default;
  // The URL this lock was opened with, for messages.
  virtual const std::string& describe() const = 0;
  // The current record; Code::kNotFound when there is none.
  virtual void get(Completion<Versioned> done) = 0;
  // Creates the record; Code::kAlreadyExists when one exists.
  virtual void create(const LeaseRecord& record, Completion<Versioned> done) = 0;
  // Replaces the record only if it is still at `version`; Code::kConflict if
  // not, Code::kNotFound if it was deleted.
  virtual void update(const std::string& version, const LeaseRecord& record,
                      Completion<Versioned> done) = 0;
  // Starts delivering every later change (and deletion, as nullopt) to
  // `on_change`; `on_health` reports whether the stream is live, so electors
  // poll while it is not. Returns false if the backend cannot watch.
  virtual bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
                     std::function<void(bool healthy)> on_health) {
    (void)on_change;
    (void)on_health;
    return false;
  }
  // Limits each request of this handle to `timeout` (the elector sets
  // renew_deadline / 2, so an answer that comes later is never waited for).
  // Default: nothing (local locks answer without waiting on a network).
  virtual void set_request_timeout(Duration timeout) { (void)timeout; }
  // Told when the elector using this handle starts (`leading` true) or stops
  // leading, so a backend can record it: the Kubernetes locks post a
  // "LeaderElection" Event on their object ("ID became leader" / "ID stopped
  // leading"), asynchronously and rate-limited. Must return at once and never
  // fail the election. Default: nothing.
  virtual void leadership_changed(const std::string& identity, bool leading) {
    (void)identity;
    (void)leading;
  }
};

}  // namespace leasehold
