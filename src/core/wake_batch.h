// Internal: coalesced wake-ups between the Runtime's I/O thread and the
// Kubernetes client's thread.
//
// Each side wakes the other once per request or answer: the I/O thread
// writes to the client's wake-up pipe for every request it queues, the client
// thread signals the I/O thread's condition variable for every answer it
// posts. 1,000 Leases renewed on one tick make a thousand such wake-ups each
// way, each a system call and, mostly, a context switch.
//
// While a WakeBatch lives on a thread, a wake requested on that thread with
// request_wake(key, fn) is recorded once per key and run when the outermost
// batch ends (or at flush()); outside a batch it runs at once. A thread
// holds a batch only while it is running work, never while it sleeps, so a
// wake is delayed at most until the end of the work at hand.
//
// A recorded wake refers to its key's object until it runs: that object must
// outlive the batches holding it (the Runtime's Impl and its Kubernetes
// client do: both end only after the I/O and client threads have), or
// forget() it on that thread before it goes.
//
// Threading: a batch and its wakes belong to the thread that made it.
#pragma once

namespace leasehold::core {

using WakeFn = void (*)(void* key);

class WakeBatch {
 public:
  WakeBatch();
  ~WakeBatch();
  WakeBatch(const WakeBatch&) = delete;
  WakeBatch& operator=(const WakeBatch&) = delete;

  // Runs the wakes recorded so far on this thread.
  static void flush();
  // Drops a recorded wake of `key` on this thread (its object is being
  // destroyed); a no-op when none is recorded.
  static void forget(void* key);
};

// Runs fn(key) now, or at the end of this thread's batch (once per key).
void request_wake(void* key, WakeFn fn);

}  // namespace leasehold::core
