// leasehold/observer.h — who leads a lease, and a stream of changes, without
// competing for it.
//
//   auto obs = leasehold::Observer::create(rt, "file:///run/app.lease");
//   (*obs)->start([](const leasehold::LeaseView& v) { printf("leader: %s\n", v.holder.c_str()); });
//
// An Observer only reads (get, watch). It follows the watch where the lock
// has one and polls every `poll_period` otherwise. Like an elector, it judges
// expiry on its own steady clock from when it first saw a record version:
// once the holder's lease has run out without renewal, `holder` becomes empty
// (expired = true) and a change is reported. A watch event that only renews
// the holder it knows is applied; any other (a new holder, a release, a
// deletion) may be a resumed watch replaying older news, so it is read
// (get) first and the read's answer reported: the view never moves back.
//
// Threading: every method is safe from any thread; on_change runs on the
// Runtime's notifier thread, in order.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "leasehold/clock.h"
#include "leasehold/error.h"
#include "leasehold/record.h"
#include "leasehold/runtime.h"

namespace leasehold {

struct LeaseView {
  bool exists = false;      // a record exists
  std::string holder;       // empty: free, expired or absent
  bool expired = false;     // a holder is named but its lease ran out
  std::string named_holder; // the holder the record names, even if expired
  int64_t transitions = -1;
  std::string version;
  // Non-empty when the last read failed (Forbidden, unreachable, a corrupt
  // file): what failed. The fields above are then the last state known, or
  // the defaults when no read ever succeeded: not "no record".
  std::string error;
  bool operator==(const LeaseView&) const = default;
};

class Observer {
 public:
  // poll_period: > 0; default 2s.
  static Result<std::unique_ptr<Observer>> create(Runtime& rt, const std::string& lock_url,
                                                  Duration poll_period = std::chrono::seconds(2));
  // The same on a lock handle opened by the caller (a test's fake).
  static Result<std::unique_ptr<Observer>> create(Runtime& rt, std::shared_ptr<Lock> lock,
                                                  Duration poll_period = std::chrono::seconds(2));
  ~Observer();  // stops
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  void start(std::function<void(const LeaseView&)> on_change);
  void stop();
  // The latest view; nullopt before the first read completed.
  std::optional<LeaseView> current() const;

  struct Impl;

 private:
  explicit Observer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace leasehold
