// leasehold/mem_lock.h — the in-process lock (mem://NAME) and its fault hooks.
//
// Every handle opened with the same NAME on one Runtime shares one record, so
// an application test can run several electors in one process. Each handle
// has its own faults, so a test can slow down, fail or partition one elector:
//
//   auto lock = rt.open_lock("mem://jobs");            // Result<shared_ptr<Lock>>
//   auto* mem = dynamic_cast<leasehold::MemLock*>(lock->get());
//   mem->set_faults({.partitioned = true});
//
// Threading: set_faults/faults are safe from any thread; the Lock methods are
// called on the Runtime's I/O thread.
#pragma once

#include "leasehold/clock.h"
#include "leasehold/error.h"
#include "leasehold/lock.h"

namespace leasehold {

class MemLock : public Lock {
 public:
  struct Faults {
    // Added before every completion (and watch delivery). Default 0.
    Duration latency{0};
    // The next N operations fail with fail_code, without touching the record.
    int fail_next = 0;
    Code fail_code = Code::kUnavailable;
    // Every operation fails with Unavailable and the watch is reported down
    // until this is cleared; then the watch delivers the current record.
    bool partitioned = false;
  };
  virtual void set_faults(const Faults& faults) = 0;
  virtual Faults faults() const = 0;
  // Admin action for tests: deletes the shared record; watchers see it.
  virtual void erase() = 0;
};

}  // namespace leasehold
