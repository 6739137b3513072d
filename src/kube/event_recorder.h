// Internal: posts core/v1 Events (what client-go's record.EventRecorder
// writes) without ever blocking or delaying the election.
//
// record() only queues: a bounded queue (events past it are dropped and
// counted; the count is logged with the next event that is sent) drained by
// one request at a time through a token bucket on the Runtime's clock. A
// failed POST is logged, never retried and never reported to the elector; a
// 403 is logged once, naming the missing RBAC rule (verb "create" on
// "events" in the namespace).
//
// Also: with_events(), a Lock decorator that gives a lock without its own
// event support (the k8s:// Lease lock) the LeaderElection Events on its
// object, as client-go's LeaseLock.RecordEvent does.
//
// Threading: record() and the decorator on the Runtime's I/O thread only;
// stats() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "kube/client.h"
#include "kube/objects.h"
#include "kube/rate_limiter.h"
#include "leasehold/lock.h"
#include "leasehold/runtime.h"

namespace leasehold::kube {

struct EventRecorderOptions {
  // source.component / reportingComponent of every Event. Default "leasehold".
  std::string component = "leasehold";
  // source.host / reportingInstance. Default: this machine's host name.
  std::string host;
  // Events waiting to be sent; further ones are dropped (counted). Default 32, >= 1.
  size_t max_queue = 32;
  // Token bucket: at most `burst` Events at once, refilled at `per_second`.
  // Defaults 10 and 1/s; both > 0.
  int burst = 10;
  double per_second = 1.0;
  // Per request. Default 10 s.
  Duration timeout = std::chrono::seconds(10);
};

class EventRecorder : public std::enable_shared_from_this<EventRecorder> {
 public:
  static std::shared_ptr<EventRecorder> create(Runtime& rt, std::weak_ptr<Client> client,
                                               EventRecorderOptions options = {});
  // Queues client-go's leader election Event on `object`: type Normal, reason
  // "LeaderElection", message "<identity> became leader" / "<identity>
  // stopped leading". Returns at once.
  void leader_election(const ObjectRef& object, const std::string& identity, bool leading);
  // Queues any Event (timestamps left at zero are set to now). Returns at once.
  void record(EventSpec spec);

  struct Stats {
    uint64_t sent = 0;     // created (HTTP 201)
    uint64_t failed = 0;   // refused or unanswered
    uint64_t dropped = 0;  // never sent: queue full or unencodable
  };
  Stats stats() const;

  EventRecorder(Runtime& rt, std::weak_ptr<Client> client, EventRecorderOptions options);

 private:
  void pump();
  void send(EventSpec spec);
  void finished(const EventSpec& spec, const Result<HttpResponse>& r);

  Runtime& rt_;
  std::weak_ptr<Client> client_;
  EventRecorderOptions opt_;
  // I/O thread only.
  std::deque<EventSpec> queue_;
  bool in_flight_ = false;
  bool wake_armed_ = false;
  std::unique_ptr<TokenBucket> bucket_;
  uint64_t dropped_unlogged_ = 0;
  bool forbidden_logged_ = false;
  // Any thread.
  std::atomic<uint64_t> sent_{0}, failed_{0}, dropped_{0};
};

// A Lock that forwards everything to `inner` and records the LeaderElection
// Events on `object` (its resourceVersion taken from the last record seen).
std::shared_ptr<Lock> with_events(std::shared_ptr<Lock> inner, ObjectRef object,
                                  std::shared_ptr<EventRecorder> recorder);

}  // namespace leasehold::kube
