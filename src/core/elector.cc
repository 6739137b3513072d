// The driver: binds one StateMachine to its Lock, the Runtime's clock and I/O
// thread, and the callback threads.
//
// Every state machine event runs on the Runtime's I/O thread (step()). The
// actions it returns become lock requests (with a timeout), timers, term
// threads and notifications. A status snapshot is published under mu_ after
// every step for the thread-safe getters.
#include "leasehold/elector.h"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "core/elector_impl.h"
#include "core/lease_candidate.h"
#include "core/state_machine.h"
#include "core/term_runner.h"
#include "etcd/etcd_lock.h"

namespace leasehold {

using core::Action;
using core::Phase;

namespace {

struct LeaseDriver final : Elector::Impl, std::enable_shared_from_this<LeaseDriver> {
  using Impl = LeaseDriver;
  LeaseDriver(Runtime& r, ElectorConfig c, std::shared_ptr<Lock> l, uint64_t seed)
      : rt(r), cfg(named(std::move(c))), lock(std::move(l)), sm(cfg, seed), runner(cfg.callbacks, runner_hooks()) {}

  static ElectorConfig named(ElectorConfig c) {
    if (c.name.empty()) c.name = c.lock;
    return c;
  }

  Runtime& rt;
  ElectorConfig cfg;
  std::shared_ptr<Lock> lock;
  std::shared_ptr<core::LeaseCandidateKeeper> candidate;  // coordinated election only

  // ---- I/O thread only ----
  core::StateMachine sm;
  uint64_t timer_gen = 0;
  std::optional<Instant> armed;
  uint64_t armed_timer = 0;    // Runtime timer id of `armed`, 0 if none
  uint64_t timeout_timer = 0;  // Runtime timer id of the request's timeout, 0 if none
  uint64_t req_seq = 0;
  uint64_t outstanding = 0;  // seq of the request in flight, 0 if none
  core::Purpose outstanding_purpose{};
  bool stopped_event_due = false;  // a term stopped; its "stopped leading" Event waits for the lease to go

  // ---- shared, under mu ----
  mutable std::mutex mu;
  std::condition_variable cv;
  Phase phase = Phase::kIdle;
  Instant deadline{};
  bool holding = false;
  Term term_;
  std::string leader_;
  std::optional<Instant> follower_expiry;
  int64_t transitions = -1;
  ElectorStatus counters;  // only its counters: renewals, failed_requests, ..., renew_latency
  bool finished = false;
  core::TermRunner runner;  // the terms' work threads

  core::TermRunner::Hooks runner_hooks() {
    return {
        .in_term =
            [this] {
              std::lock_guard<std::mutex> g(mu);
              return rt.clock().now() < deadline;
            },
        .step_down =
            [this] {
              on_io([](Impl& s) {
                s.step([](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
                  m.handle_resign(now, wall, out);
                });
              });
            },
        .work_returned =
            [this] {
              on_io([](Impl& s) {
                s.step([](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
                  m.handle_work_returned(now, wall, out);
                });
              });
            },
        .log = [this](LogLevel level, std::string_view msg) { log(level, msg); },
    };
  }

  void log(LogLevel level, std::string_view msg) const { rt.log(level, cfg.name, msg); }

  template <class F>
  void on_io(F f) {
    rt.post([self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
  }

  // Runs one state machine event and everything it asks for.
  template <class F>
  void step(F event) {
    std::vector<Action> actions;
    Clock& clock = rt.clock();
    event(sm, clock.now(), clock.wall_now(), actions);
    for (Action& a : actions) apply(a);
    rearm();
    publish();
    if (stopped_event_due && !sm.holding()) {
      // Recorded once the lease is let go (released, or no longer ours),
      // as client-go records it after its release: the Event's POST never
      // goes ahead of the release on the connection or in kube-apiserver.
      stopped_event_due = false;
      lock->leadership_changed(cfg.identity, false);  // never blocks
    }
  }

  // Runs a user callback on the Runtime's notifier thread; an exception it
  // throws is logged.
  template <class F>
  void notify_user(const char* what, F f) {
    core::notify_user(rt, cfg.name, what, std::move(f));
  }

  void apply(Action& a) {
    if (auto* s = std::get_if<core::SendRequest>(&a)) return send(*s);
    if (auto* s = std::get_if<core::StartLeading>(&a)) {
      publish();  // is_leader() and term() are true before the work starts
      start_term(s->term);
      // After the work's start: queueing the Event costs the term nothing.
      if (cfg.record_events) lock->leadership_changed(cfg.identity, true);  // never blocks
      return;
    }
    if (auto* s = std::get_if<core::Renewed>(&a)) {
      if (cfg.callbacks.on_renewed) {
        notify_user("on_renewed", [cb = cfg.callbacks.on_renewed, t = s->term, at = s->sent_at] { cb(t, at); });
      }
      return;
    }
    if (auto* s = std::get_if<core::StopLeading>(&a)) {
      if (s->taken && cfg.callbacks.on_lease_lost) {
        notify_user("on_lease_lost", [cb = cfg.callbacks.on_lease_lost, t = s->term] { cb(t); });
      }
      if (runner.stopping()) return;  // the work is stopping already; `taken` only escalates
      if (cfg.record_events) stopped_event_due = true;  // recorded by step() once the lease is let go
      log(LogLevel::kInfo, "stopping the work of term " + s->term.to_string());
      publish();  // is_leader() is false before the work is told to stop
      runner.stop(s->term, shared_from_this());
      return;
    }
    if (auto* s = std::get_if<core::NewLeader>(&a)) {
      log(LogLevel::kInfo, "leader is now " + s->identity);
      {
        std::lock_guard<std::mutex> g(mu);
        ++counters.leader_changes;
      }
      if (cfg.callbacks.on_new_leader) {
        notify_user("on_new_leader", [cb = cfg.callbacks.on_new_leader, id = s->identity] { cb(id); });
      }
      return;
    }
    if (std::holds_alternative<core::Finished>(a)) {
      if (candidate) candidate->stop();
      log(LogLevel::kInfo, "stopped");
      return;  // publish() wakes wait()
    }
    if (auto* s = std::get_if<core::Note>(&a)) log(s->warning ? LogLevel::kWarning : LogLevel::kInfo, s->text);
  }

  void send(const core::SendRequest& req) {
    uint64_t seq = ++req_seq;
    outstanding = seq;
    outstanding_purpose = req.purpose;
    Instant sent_at = rt.clock().now();
    auto self = shared_from_this();
    auto done = [self, seq, sent_at](Result<Versioned> r) { self->respond(seq, sent_at, r); };
    // Lease traffic never waits longer than half the renew deadline.
    Duration limit = cfg.renew_deadline / 2;
    // Withdrawn when the answer comes first, so a timely answer costs the
    // I/O thread no wake-up at the timeout.
    if (timeout_timer) rt.cancel_timer(timeout_timer);
    timeout_timer = rt.post_timer(sent_at + limit, [self, seq, sent_at, limit] {
      self->timeout_timer = 0;
      self->respond(seq, sent_at,
                    Error::timeout(self->lock->describe() + ": no answer within " +
                                   std::to_string(limit.count() / 1'000'000) + "ms"));
    });
    switch (req.op) {
      case core::Op::kGet: lock->get(std::move(done)); break;
      case core::Op::kCreate: lock->create(req.record, std::move(done)); break;
      case core::Op::kUpdate: lock->update(req.version, req.record, std::move(done)); break;
    }
  }

  void respond(uint64_t seq, Instant sent_at, const Result<Versioned>& r) {
    if (seq != outstanding) return;  // late answer after a timeout
    outstanding = 0;
    if (timeout_timer) rt.cancel_timer(std::exchange(timeout_timer, 0));
    {
      std::lock_guard<std::mutex> g(mu);
      if (!r.ok() && !r.error().is(Code::kNotFound)) ++counters.failed_requests;
      if (outstanding_purpose == core::Purpose::kRenew) {
        // Counted here, under the lock already taken, on the I/O thread.
        counters.renew_latency.add(rt.clock().now() - sent_at);
        if (r.ok()) ++counters.renewals;
        if (!r.ok()) ++counters.failed_renewals[static_cast<size_t>(r.error().code())];
        if (!r.ok() && r.error().is(Code::kConflict)) ++counters.slow_path;
      }
    }
    step([&](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
      m.handle_response(now, wall, sent_at, r, out);
    });
  }

  void start_term(const Term& t) {
    log(LogLevel::kInfo, "started leading, term " + t.to_string());
    {
      std::lock_guard<std::mutex> g(mu);
      ++counters.terms_started;
    }
    runner.start(t, shared_from_this());
  }

  void rearm() {
    auto next = sm.next_wakeup();
    if (next == armed) return;
    armed = next;
    uint64_t gen = ++timer_gen;
    // The timer it replaces is withdrawn: it would only wake the I/O thread.
    if (armed_timer) rt.cancel_timer(std::exchange(armed_timer, 0));
    if (!next) return;
    armed_timer = rt.post_timer(*next, [self = shared_from_this(), gen] {
      if (gen != self->timer_gen) return;
      self->armed.reset();
      self->armed_timer = 0;
      self->step([](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
        m.handle_tick(now, wall, out);
      });
    });
  }

  void publish() {
    std::lock_guard<std::mutex> g(mu);
    phase = sm.phase();
    deadline = sm.leader_deadline();
    holding = sm.holding();
    term_ = sm.term();
    leader_ = sm.phase() == Phase::kLeading ? cfg.identity : sm.observed_holder();
    follower_expiry = sm.observed_expiry();
    if (sm.observed()) transitions = sm.observed()->record.lease_transitions;
    if (phase == Phase::kStopped) finished = true;
    cv.notify_all();
  }

  void start_watch() {
    std::weak_ptr<Impl> weak = weak_from_this();
    bool watching = lock->watch(
        [weak](const std::optional<Versioned>& v) {
          if (auto s = weak.lock()) {
            s->step([&](core::StateMachine& m, Instant now, WallTime wall,
                        std::vector<Action>& out) { m.handle_watch(now, wall, v, out); });
          }
        },
        [weak](bool healthy) {
          if (auto s = weak.lock()) {
            s->step([&](core::StateMachine& m, Instant now, WallTime wall,
                        std::vector<Action>& out) {
              m.handle_watch_health(now, wall, healthy, out);
            });
          }
        });
    if (!watching) log(LogLevel::kInfo, "no watch on " + lock->describe() + ": polling every retry_period");
  }
  // ---- Elector::Impl ----

  void start() override {
    on_io([](Impl& s) {
      if (s.candidate) s.candidate->start();
      s.start_watch();
      s.step([](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
        m.handle_start(now, wall, out);
      });
    });
  }

  void stop() override {
    on_io([](Impl& s) {
      s.step([](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
        m.handle_stop(now, wall, out);
      });
    });
  }

  void resign() override {
    on_io([](Impl& s) {
      s.step([](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
        m.handle_resign(now, wall, out);
      });
    });
  }

  Result<void> handoff(const std::string& target) override {
    if (target.empty()) return Error::invalid(cfg.name + ": handoff needs a target identity");
    if (target == cfg.identity) return Error::invalid(cfg.name + ": cannot hand off to ourselves (" + target + ")");
    on_io([target](Impl& s) {
      s.step([&target](core::StateMachine& m, Instant now, WallTime wall, std::vector<Action>& out) {
        if (!m.handle_handoff(now, wall, target, out)) {
          out.push_back(core::Note{"handoff to " + target + " ignored: not leading", false});
        }
      });
    });
    return {};
  }

  void wait() override { core::wait_finished(rt, mu, cv, finished, runner); }

  bool is_leader() const override {
    Instant now = rt.clock().now();
    std::lock_guard<std::mutex> g(mu);
    return phase == Phase::kLeading && now < deadline;
  }

  std::string leader() const override {
    std::lock_guard<std::mutex> g(mu);
    return leader_;
  }

  std::optional<Term> term() const override {
    std::lock_guard<std::mutex> g(mu);
    if (phase != Phase::kLeading) return std::nullopt;
    return term_;
  }

  ElectorStatus status() const override {
    Instant now = rt.clock().now();
    std::lock_guard<std::mutex> g(mu);
    ElectorStatus s = counters;
    s.phase = std::string(core::phase_name(phase));
    s.leading = phase == Phase::kLeading && now < deadline;
    s.leader = leader_;
    if (phase == Phase::kLeading) {
      s.term = term_;
      s.time_left = deadline - now;
      // deadline = sent_at(last good renewal) + renew_deadline.
      s.lease_left = std::max(Duration::zero(), deadline - cfg.renew_deadline + cfg.lease_duration - now);
    }
    if (holding && (phase == Phase::kLeading || phase == Phase::kStopping || phase == Phase::kFollowing)) {
      s.renewed_at = deadline - cfg.renew_deadline;
    }
    if (phase != Phase::kLeading && follower_expiry) {
      s.time_left = std::max(Duration::zero(), *follower_expiry - now);
      s.lease_left = s.time_left;
    }
    s.lease_transitions = transitions;
    return s;
  }

  const std::string& name() const override { return cfg.name; }
};

}  // namespace

Result<std::unique_ptr<Elector>> Elector::create(Runtime& rt, ElectorConfig config) {
  if (auto v = config.validate(); !v) return v.error();
  auto lock = rt.open_lock(config.lock);
  if (!lock) return lock.error();
  return create(rt, std::move(config), std::move(*lock));
}

Result<std::unique_ptr<Elector>> Elector::create(Runtime& rt, ElectorConfig config,
                                                 std::shared_ptr<Lock> lock) {
  if (auto v = config.validate(); !v) return v.error();
  if (!lock) return Error::invalid("lock: null lock handle");
  if (auto election = std::dynamic_pointer_cast<etcd::ElectionLock>(lock)) {
    auto impl = etcd::make_etcd_elector(rt, std::move(config), std::move(election));
    if (!impl) return impl.error();
    return std::unique_ptr<Elector>(new Elector(std::move(*impl)));
  }
  std::random_device rd;
  uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::shared_ptr<core::LeaseCandidateKeeper> candidate;
  if (config.coordinated.enabled) {  // validate() checked the URL is k8s://NS/NAME
    std::string rest = config.lock.substr(std::string_view("k8s://").size());
    auto slash = rest.find('/');
    if (slash == std::string::npos) return Error::invalid("lock: want k8s://NAMESPACE/NAME, got " + config.lock);
    auto k = core::LeaseCandidateKeeper::create(rt, config, rest.substr(0, slash), rest.substr(slash + 1));
    if (!k) return k.error();
    candidate = std::move(*k);
  }
  // Requests never outlive the driver's own limit (renew_deadline / 2).
  rt.post([lock, limit = config.renew_deadline / 2] { lock->set_request_timeout(limit); });
  auto impl = std::make_shared<LeaseDriver>(rt, std::move(config), std::move(lock), seed);
  impl->candidate = std::move(candidate);
  return std::unique_ptr<Elector>(new Elector(std::move(impl)));
}

Elector::Elector(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Elector::~Elector() {
  {
    std::lock_guard<std::mutex> g(impl_->external_mu);
    impl_->external_stop.reset();
  }
  stop();
  wait();
}

void Elector::start(std::stop_token stop) {
  if (stop.stop_possible()) {
    std::lock_guard<std::mutex> g(impl_->external_mu);
    impl_->external_stop.emplace(stop, [this] { this->stop(); });
  }
  impl_->start();
}

void Elector::stop() { impl_->stop(); }
void Elector::resign() { impl_->resign(); }
Result<void> Elector::handoff(const std::string& target) { return impl_->handoff(target); }
void Elector::wait() { impl_->wait(); }
bool Elector::is_leader() const { return impl_->is_leader(); }
std::string Elector::leader() const { return impl_->leader(); }
std::optional<Term> Elector::term() const { return impl_->term(); }
ElectorStatus Elector::status() const { return impl_->status(); }
const std::string& Elector::name() const { return impl_->name(); }

}  // namespace leasehold
