#include "core/term_runner.h"

#include <exception>

namespace leasehold::core {

void TermRunner::start(const Term& t, std::shared_ptr<void> owner) {
  auto run = std::make_shared<Run>();
  std::lock_guard<std::mutex> g(mu_);
  // Earlier terms' threads have returned (a new term needs the old work
  // done); join them here to keep the list short.
  for (auto& th : threads_) {
    if (th.joinable()) th.join();
  }
  threads_.clear();
  current_ = run;
  threads_.emplace_back([this, owner = std::move(owner), t, run] { this->run(t, *run); });
}

bool TermRunner::stop(const Term& t, std::shared_ptr<void> owner) {
  std::lock_guard<std::mutex> g(mu_);
  auto run = current_;
  if (!run || run->stop_sent) return false;
  run->stop_sent = true;
  // request_stop() runs every std::stop_callback the user registered on the
  // token, so it runs on a thread of its own, never on the I/O thread.
  threads_.emplace_back([this, owner = std::move(owner), run, t] {
    run->stop.request_stop();
    bool finish_now = false;
    {
      std::lock_guard<std::mutex> rg(run->m);
      finish_now = run->work_returned && !run->finishing;
      if (finish_now) run->finishing = true;
    }
    if (finish_now) finish(t, *run);  // the work returned before the term ended
  });
  return true;
}

bool TermRunner::stopping() const {
  std::lock_guard<std::mutex> g(mu_);
  return current_ && current_->stop_sent;
}

std::vector<std::jthread> TermRunner::take_threads() {
  std::lock_guard<std::mutex> g(mu_);
  return std::exchange(threads_, {});
}

// Runs on the term's own thread.
void TermRunner::run(const Term& t, Run& run) {
  // The work starts only inside its term. A thread that comes to run once
  // the term's deadline has passed (the process was paused or starved
  // between the winning write and here) calls neither on_started_leading
  // nor on_stopped_leading: the term ends without work, as a resignation.
  bool in_term = hooks_.in_term();
  {
    std::lock_guard<std::mutex> g(run.m);
    run.started = in_term;
  }
  if (!in_term) {
    hooks_.log(LogLevel::kWarning, "term " + t.to_string() +
                                       " ended before its work could start (the process was paused or starved "
                                       "past the renew deadline): the work is not started");
  }
  bool failed = false;
  if (in_term && cb_.on_started_leading) {
    try {
      cb_.on_started_leading(t, run.stop.get_token());
    } catch (const std::exception& e) {
      failed = true;
      hooks_.log(LogLevel::kError, std::string("on_started_leading threw: ") + e.what());
    } catch (...) {
      failed = true;
      hooks_.log(LogLevel::kError, "on_started_leading threw a non-exception");
    }
  }
  if (failed || !in_term) hooks_.step_down();  // a term already over is not released
  // Leadership lasts until the driver asks the work to stop. If it has,
  // finish here; if not, stop() finishes the term.
  bool finish_here = false;
  {
    std::lock_guard<std::mutex> g(run.m);
    run.work_returned = true;
    finish_here = run.stop.stop_requested() && !run.finishing;
    if (finish_here) run.finishing = true;
  }
  if (finish_here) finish(t, run);
}

// on_stopped_leading, then tells the driver the work is done. Once per term.
void TermRunner::finish(const Term& t, Run& run) {
  bool started = false;
  {
    std::lock_guard<std::mutex> g(run.m);
    started = run.started;
  }
  if (started && cb_.on_stopped_leading) {
    try {
      cb_.on_stopped_leading(t);
    } catch (const std::exception& e) {
      hooks_.log(LogLevel::kError, std::string("on_stopped_leading threw: ") + e.what());
    } catch (...) {
      hooks_.log(LogLevel::kError, "on_stopped_leading threw a non-exception");
    }
  }
  hooks_.work_returned();
}

void wait_finished(Runtime& rt, std::mutex& mu, std::condition_variable& cv, const bool& finished,
                   TermRunner& runner) {
  {
    std::unique_lock<std::mutex> lk(mu);
    while (rt.manual() && !finished) {
      // Nobody else drives a manual runtime: run what is due, and give the
      // term thread a moment (real time; simulated time does not move).
      lk.unlock();
      size_t ran = rt.run_ready();
      lk.lock();
      if (ran == 0) cv.wait_for(lk, std::chrono::milliseconds(1));
    }
    cv.wait(lk, [&] { return finished; });
  }
  runner.take_threads().clear();  // joins
  rt.drain_notifications();
}

}  // namespace leasehold::core
