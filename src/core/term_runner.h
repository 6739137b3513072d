// Internal: runs the work of leadership terms on threads of their own, for
// every driver (the Lease elector, the etcd elector).
//
// A term's work (on_started_leading) runs on a thread started for it; the
// thread ends when the work returns. If the work returned before the term
// ended, on_stopped_leading runs on a short-lived thread when the term ends;
// otherwise on the work's own thread after it returned. So a term whose work
// runs elsewhere holds no thread. Ending a term requests its stop_token on a
// thread of its own: a std::stop_callback the user registered never runs on
// the I/O thread.
//
// The driver is told, through Hooks, when the work failed or never started
// (step_down) and when a term is over (work_returned: after
// on_stopped_leading, exactly once per term).
//
// Threading: start() and stop() on the driver's I/O thread only;
// take_threads() from any thread. Hooks run on term threads.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "leasehold/config.h"
#include "leasehold/record.h"
#include "leasehold/runtime.h"

namespace leasehold::core {

class TermRunner {
 public:
  struct Hooks {
    // Whether the term's deadline has not passed (called on the term's
    // thread just before its work would start).
    std::function<bool()> in_term;
    // The work threw, or the term ended before it could start: the driver
    // should step down (post a resignation to its I/O thread).
    std::function<void()> step_down;
    // The term is over and its work returned (after on_stopped_leading).
    std::function<void()> work_returned;
    std::function<void(LogLevel, std::string_view)> log;
  };

  TermRunner(Callbacks callbacks, Hooks hooks) : cb_(std::move(callbacks)), hooks_(std::move(hooks)) {}

  // Starts term `t` (the previous term's work has returned; its threads are
  // joined here). `owner` is kept alive by the term's threads.
  void start(const Term& t, std::shared_ptr<void> owner);
  // Asks the current term's work to stop. False when there is no term or
  // its stop was asked already.
  bool stop(const Term& t, std::shared_ptr<void> owner);
  // Whether the current term's stop was asked (I/O thread).
  bool stopping() const;
  // Every thread started so far, for the caller to join (outside any lock
  // a hook takes).
  std::vector<std::jthread> take_threads();

 private:
  struct Run {
    std::stop_source stop;
    std::mutex m;
    bool work_returned = false;  // under m
    bool finishing = false;      // under m
    bool started = false;        // under m: on_started_leading was called
    bool stop_sent = false;      // I/O thread only
  };
  void run(const Term& t, Run& run);
  void finish(const Term& t, Run& run);

  Callbacks cb_;
  Hooks hooks_;
  mutable std::mutex mu_;
  std::shared_ptr<Run> current_;         // GUARDED_BY(mu_)
  std::vector<std::jthread> threads_;   // GUARDED_BY(mu_)
};

// Runs user callback `f` on the Runtime's notifier thread; an exception it
// throws is logged (as `what` threw) under `name`.
template <class F>
void notify_user(Runtime& rt, std::string name, const char* what, F f) {
  rt.notify([&rt, name = std::move(name), what, f = std::move(f)] {
    try {
      f();
    } catch (const std::exception& e) {
      rt.log(LogLevel::kError, name, std::string(what) + " threw: " + e.what());
    } catch (...) {
      rt.log(LogLevel::kError, name, std::string(what) + " threw a non-exception");
    }
  });
}

// Elector::wait for a driver: blocks until `finished` (set under `mu`, with
// `cv` notified), running a manual Runtime's due tasks meanwhile; then joins
// the term threads and waits for the notifications posted so far.
void wait_finished(Runtime& rt, std::mutex& mu, std::condition_variable& cv, const bool& finished,
                   TermRunner& runner);

}  // namespace leasehold::core
