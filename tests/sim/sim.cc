// Deterministic simulation of the election algorithm.
//
// N electors (the real StateMachine) share one simulated compare-and-swap
// store. From a seed, the simulator draws network delays and losses, watch
// lag, partitions, process pauses, crashes and restarts, graceful stops, a
// clock-rate drift per node, stalled backends (a node's request hangs, past
// the driver's timeout or not, and completes late; the node's later requests
// fail fast meanwhile, as the file lock's do) and deleted records (the store
// forgets the record; the next create starts a fresh epoch, so versions
// never repeat). A resumed watch replays every change since the version it
// resumes from, maybe older than what the node knows (a LIST's version);
// events are duplicated or overtaken. After every step it checks:
//   * at most one node is between on_started_leading and the end of its work
//     at any instant, unless one of them was paused longer than the bound
//     (then their fencing tokens must differ);
//   * fencing tokens of successive terms strictly increase, except after a
//     deletion for a create blind to the old holder (by a candidate that
//     never saw the deleted record, e.g. it booted later or its watch lost
//     the events, or sent before the deletion): it may restart
//     the numbering and overlap the old leader until that one's next renewal
//     finds the new record (no store keeps what was deleted). Candidates
//     that saw the record wait a full lease after it is gone;
//   * no StopLeading without a started term; no empty NewLeader;
//   * state never moves backwards: a node's NewLeader never names an older
//     record than its previous one did; a leader never stops, before its
//     deadline and unasked, while the store still names it for its term;
//   (work asked to stop while the lease is still ours may take up to
//   1.2 x renew_deadline, cut at its renew deadline, which renewals while
//   draining keep moving;)
//   * after every step of a machine, its phase and sub-states
//     (StateMachine::state()) agree: leading means held with work running
//     unasked; work stopping only outside leading; releasing only once the
//     work returned; idle or stopped with no work, hold or request; draining
//     is exactly held while the work stops; the work state matches the work
//     the simulator runs; a following (or stopping, not holding) machine
//     always waits for a request, its work or a wake-up; and at most one
//     machine believes it leads (leading, before its deadline) unless excused
//     as two running terms are;
//   * once every fault has healed, a leader exists within
//     lease_duration + 2 * retry_period, plus a lease_duration if the record
//     is deleted then (candidates that knew it wait a full lease from when
//     they first see it gone, which a partition may put off until the heal).
//
//   leasehold_sim --seeds 10000          run seeds 1..10000, print "N seeds"
//   leasehold_sim --seed 1234 --trace    replay one seed with a trace
//   leasehold_sim --repeat-versions ...  a re-created record restarts its
//                                        versions at 1 with no epoch (the file
//                                        lock before epochs), to show what
//                                        the simulator finds then
//   leasehold_sim --all ...              do not stop after 5 failed seeds
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/state_machine.h"

namespace leasehold::sim {
namespace {

using core::Action;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using Time = int64_t;  // global simulated nanoseconds

constexpr Time kMs = 1'000'000;
constexpr Time kSec = 1'000'000'000;

struct Params {
  int nodes;
  Duration lease = seconds(15), deadline = seconds(10), retry = seconds(2);
  Time fault_end = 150 * kSec;  // faults happen before this
  Time run_end = 150 * kSec + 40 * kSec;
  Time max_short_pause = 3 * kSec;  // never enough to overlap terms
  Time long_pause = 6 * kSec;       // beyond the bound: overlap allowed
  double max_drift = 0.02;
};

class Sim {
 public:
  Sim(uint64_t seed, bool trace, bool repeat_versions)
      : seed_(seed), trace_(trace), repeat_versions_(repeat_versions), rng_(seed) {
    p_.nodes = 2 + static_cast<int>(rng_() % 4);
    watch_loss_ = uniform(0, 0.2);
    loss_ = uniform(0, 0.05);
    // Half the seeds have misbehaving watches.
    const bool chaos = chance(0.5);
    replay_old_ = chaos ? uniform(0, 0.7) : 0;
    reorder_ = chaos ? uniform(0, 0.1) : 0;
    duplicate_ = chaos ? uniform(0, 0.1) : 0;
    history_.push_back(std::nullopt);  // change 0: no record
  }

  // Returns an empty string on success, else what was violated.
  std::string run() {
    for (int i = 0; i < p_.nodes; ++i) {
      Node n;
      n.id = "n" + std::to_string(i);
      n.rate = 1.0 + uniform(-p_.max_drift, p_.max_drift);
      n.offset = static_cast<Time>(uniform(0, 1000)) * kSec;
      n.watch = rng_() % 4 != 0;  // most nodes watch; some only poll
      nodes_.push_back(std::move(n));
    }
    for (int i = 0; i < p_.nodes; ++i) at(static_cast<Time>(uniform(0, 2)) * kSec, [this, i] { boot(i); });
    schedule_faults();
    at(p_.fault_end, [this] { heal(); });
    while (!queue_.empty() && error_.empty()) {
      Event e = queue_.top();
      queue_.pop();
      if (e.t > p_.run_end) break;
      same_instant_ = e.t == now_ ? same_instant_ + 1 : 0;
      if (same_instant_ > 100000) {
        fail("livelock: 100000 events at one instant");
        break;
      }
      now_ = e.t;
      e.fn();
      check_liveness();
    }
    if (error_.empty() && !leader_seen_after_heal_) error_ = "no leader after the faults healed";
    return error_;
  }

  uint64_t events() const { return events_; }
  uint64_t slow_stops() const { return slow_stops_; }

 private:
  struct Node {
    std::string id;
    double rate = 1;
    Time offset = 0;
    bool watch = true;
    std::unique_ptr<core::StateMachine> sm;
    uint64_t incarnation = 0;
    bool alive = false;
    bool partitioned = false;
    Time paused_until = 0;
    uint64_t timer_gen = 0;
    uint64_t req = 0;  // request id in flight
    bool answered = false;  // the driver took an answer (or a timeout) for `req`
    int64_t max_seen = -1;  // highest leaseTransitions others showed it since boot
    uint64_t last_epoch_seen = 0;  // epoch of the last record others showed it (0: none)
    // What it had seen when it sent its request in flight (a create is blind
    // or not by what its sender knew then, not when it lands).
    uint64_t sent_epoch_seen = 0;
    int64_t sent_max_seen = -1;
    uint64_t write_epoch = 0;  // the store's epoch when its last write landed
    uint64_t term_epoch = 0;   // the epoch its term's write landed in
    Time busy_until = 0;    // a stalled request of this node runs until then
    Time stalled_until = 0;  // requests sent before then hang until then
    Time last_watch = 0;
    uint64_t watch_seen = 0, reported_gen = 0;  // last change the watch delivered; behind the last NewLeader
    bool asked_down = false;                    // stop, resign or handoff delivered during this term
    // Work interval of the current term.
    bool working = false;
    bool stopping_work = false;
    Term term;
    bool long_paused_in_term = false;
    bool started_term = false;
    // Which term's work runs: a Term can repeat (a deletion restarts the
    // numbering), so the work's timers name it by this count.
    uint64_t work_id = 0;
  };
  struct Event {
    Time t;
    uint64_t seq;
    std::function<void()> fn;
    bool operator<(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };

  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  bool chance(double p) { return uniform(0, 1) < p; }

  void at(Time t, std::function<void()> fn) {
    queue_.push(Event{std::max(t, now_), seq_++, std::move(fn)});
  }

  Instant local(const Node& n, Time t) const {
    return Instant{} + nanoseconds(n.offset + static_cast<Time>(static_cast<double>(t) * n.rate));
  }
  Time global(const Node& n, Instant i) const {
    double local_ns = static_cast<double>(i.time_since_epoch().count() - n.offset);
    return static_cast<Time>(local_ns / n.rate) + 2;
  }
  WallTime wall(const Node& n) const {
    return WallTime{} + std::chrono::duration_cast<WallTime::duration>(local(n, now_).time_since_epoch());
  }

  void log(const char* fmt, const std::string& a, const std::string& b = "") {
    if (!trace_) return;
    std::printf("%10.3fs  ", static_cast<double>(now_) / kSec);
    std::printf(fmt, a.c_str(), b.c_str());
    std::printf("\n");
  }

  static std::string describe(const Versioned& v) {
    return "v=" + v.version + " holder=" + v.record.holder_identity + " t=" +
           std::to_string(v.record.lease_transitions);
  }

  void fail(const std::string& why) {
    if (error_.empty()) error_ = why + " at t=" + std::to_string(static_cast<double>(now_) / kSec) + "s";
  }

  // Runs `fn` on node i's state machine now, or when its pause ends; drops it
  // if the node died (or restarted) in between.
  void deliver(int i, std::function<void(core::StateMachine&, Instant, WallTime, std::vector<Action>&)> fn,
               Time when) {
    uint64_t inc = nodes_[static_cast<size_t>(i)].incarnation;
    at(when, [this, i, inc, fn = std::move(fn)]() mutable { run_on(i, inc, std::move(fn)); });
  }
  void run_on(int i, uint64_t inc,
              std::function<void(core::StateMachine&, Instant, WallTime, std::vector<Action>&)> fn) {
    Node& n = nodes_[static_cast<size_t>(i)];
    if (!n.alive || n.incarnation != inc) return;
    if (now_ < n.paused_until) {
      at(n.paused_until, [this, i, inc, fn = std::move(fn)]() mutable { run_on(i, inc, std::move(fn)); });
      return;
    }
    ++events_;
    std::vector<Action> out;
    fn(*n.sm, local(n, now_), wall(n), out);
    for (auto& a : out) apply(i, a);
    arm(i);
    if (n.alive) check_state(i);
  }

  // The machine's phase and sub-states (StateMachine::state()) after each of
  // its steps: they agree with each other and with the work the simulator
  // runs, a machine always waits for something, and at most one machine
  // believes it leads (leading phase, before its deadline) unless excused as
  // two running terms are.
  void check_state(int i) {
    using core::Hold;
    using core::Phase;
    using core::StepDown;
    using core::Work;
    const Node& n = nodes_[static_cast<size_t>(i)];
    const core::State s = n.sm->state();
    auto bad = [&](const std::string& what) {
      fail(n.id + " in phase " + std::string(core::phase_name(s.phase)) + " (work " +
           std::string(core::work_name(s.work)) + ", hold " + std::string(core::hold_name(s.hold)) +
           ", step down " + std::string(core::step_down_name(s.step_down)) + "): " + what);
    };
    if (s.phase == Phase::kLeading) {
      if (s.hold != Hold::kHeld) bad("leading without holding the lease");
      if (s.work == Work::kStopping) bad("leading while its work is asked to stop");
      if (s.step_down != StepDown::kNone) bad("leading while stepping down");
    } else if (s.work == Work::kRunning) {
      bad("work running unasked outside the leading phase");
    }
    if ((s.phase == Phase::kIdle || s.phase == Phase::kStopped) &&
        (s.work != Work::kNone || s.hold != Hold::kNone || s.request_in_flight)) {
      bad("work, a hold or a request outside an election");
    }
    if (s.hold == Hold::kReleasing && s.work != Work::kNone) bad("releasing before the work returned");
    if (n.sm->draining() != (s.work == Work::kStopping && s.hold == Hold::kHeld)) {
      bad("draining is not 'holding while the work stops'");
    }
    if (n.working && s.work != (n.stopping_work ? Work::kStopping : Work::kRunning)) {
      bad(std::string("the work is ") + (n.stopping_work ? "stopping" : "running"));
    }
    const bool waits = s.request_in_flight || s.work != Work::kNone || n.sm->next_wakeup().has_value();
    if (s.phase == Phase::kFollowing && !waits) bad("nothing to wait for: stuck");
    if (s.phase == Phase::kStopping && !waits && s.hold == Hold::kNone) bad("stopping with nothing left: not finished");
    if (s.phase != Phase::kLeading || local(n, now_) >= n.sm->leader_deadline()) return;
    for (const Node& m : nodes_) {
      if (&m == &n || !m.alive || m.sm->phase() != Phase::kLeading) continue;
      if (local(m, now_) >= m.sm->leader_deadline()) continue;
      if (!overlap_excused(m, n)) fail("two machines believe they lead: " + m.id + " (" + m.sm->term().to_string() +
                                       ") and " + n.id + " (" + n.sm->term().to_string() + ")");
    }
  }

  // Two terms that may overlap: one was paused past the bound, or the later
  // epoch's was begun by a create blind to the earlier's holder.
  bool overlap_excused(const Node& a, const Node& b) {
    if (a.long_paused_in_term || b.long_paused_in_term) return true;
    if (a.term_epoch == b.term_epoch) return false;
    const uint64_t later = epoch_seq_[a.term_epoch] > epoch_seq_[b.term_epoch] ? a.term_epoch : b.term_epoch;
    return blind_epochs_.count(later) > 0;
  }

  void arm(int i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    auto w = n.sm->next_wakeup();
    uint64_t gen = ++n.timer_gen;
    if (!w) return;
    uint64_t inc = n.incarnation;
    at(global(n, *w), [this, i, gen, inc] {
      if (nodes_[static_cast<size_t>(i)].timer_gen != gen) return;
      run_on(i, inc, [](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
        m.handle_tick(t, w, o);
      });
    });
  }

  void apply(int i, Action& a) {
    Node& n = nodes_[static_cast<size_t>(i)];
    if (auto* r = std::get_if<core::SendRequest>(&a)) return send(i, *r);
    if (auto* s = std::get_if<core::StartLeading>(&a)) {
      log("%s starts leading term %s", n.id, s->term.to_string());
      if (n.working) fail(n.id + " started a term while its previous work was running");
      // A deleted record takes its leaseTransitions with it, and nothing
      // stops a create made blind to the old holder: by a candidate that has
      // seen no record since it booted, or sent before the deletion. Such a
      // term may overlap the old one (until the old leader's next renewal
      // finds the new record) and restart the numbering; excused below.
      // A create continues the numbering its creator saw, which a deletion
      // may have hidden the latest of.
      // Judged by the epoch the term's write landed in: an answer can arrive
      // after a deletion and a create that began a later epoch.
      const uint64_t e = n.write_epoch;
      const bool blind_create = blind_epochs_.count(e) > 0;
      const bool renumbered = blind_create || renumbered_epochs_.count(e) > 0;
      if (s->term.transitions <= max_token_ && !renumbered) {
        fail(n.id + " token " + s->term.to_string() + " does not exceed " + std::to_string(max_token_));
      }
      max_token_ = renumbered ? s->term.transitions : std::max(max_token_, s->term.transitions);
      for (auto& m : nodes_) {
        if (&m == &n || !m.working) continue;
        // Of two terms in different epochs, the later epoch's may overlap the
        // earlier's if a blind create began it, and share its token if its
        // creator had not seen the latest numbers.
        const uint64_t later = epoch_seq_[m.term_epoch] > epoch_seq_[e] ? m.term_epoch : e;
        const bool blind = m.term_epoch != e && blind_epochs_.count(later) > 0;
        const bool renumbered_later = m.term_epoch != e && (blind || renumbered_epochs_.count(later) > 0);
        n.term_epoch = e;  // for overlap_excused
        if (!overlap_excused(m, n)) fail("two leaders: " + m.id + " (" + m.term.to_string() + ") and " + n.id + " (" +
                           s->term.to_string() + ")");
        if (m.term.transitions == s->term.transitions && !renumbered_later) {
          fail("overlapping terms share a fencing token");
        }
      }
      n.working = true;
      ++n.work_id;
      n.term_epoch = e;
      n.started_term = true;
      n.stopping_work = false;
      n.term = s->term;
      n.long_paused_in_term = false;
      n.asked_down = false;
      if (now_ >= p_.fault_end) leader_seen_after_heal_ = true;
      return;
    }
    if (auto* s = std::get_if<core::StopLeading>(&a)) {
      if (!n.started_term || !n.working) fail(n.id + ": StopLeading without a running term");
      if (!n.asked_down && record_ && record_->holder_identity == n.id &&
          record_->lease_transitions == s->term.transitions && local(n, now_) < n.sm->leader_deadline()) {
        fail(n.id + " stopped term " + s->term.to_string() + " while the store still names it (stale news)");
      }
      if (n.stopping_work) return;
      n.stopping_work = true;
      log("%s asked to stop term %s", n.id, s->term.to_string());
      // The work notices its stop token and returns a little later. While
      // the lease is still ours (a stop, a resignation, a handoff: the
      // machine drains and keeps renewing) it may take much longer, but, as
      // the contract asks (and the sidecar's watchdog enforces), it returns
      // once the term's renew deadline has passed.
      Time work_end = now_ + static_cast<Time>(uniform(0, 200)) * kMs;
      if (n.sm->draining() && chance(0.3)) {
        ++slow_stops_;
        work_end = now_ + static_cast<Time>(uniform(0, 1.2) * static_cast<double>(p_.deadline.count()));
        cut_at_deadline(i, n.incarnation, n.work_id);
      }
      uint64_t inc = n.incarnation;
      at(std::max(work_end, n.paused_until), [this, i, inc, w = n.work_id] { work_returns(i, inc, w); });
      return;
    }
    if (auto* s = std::get_if<core::NewLeader>(&a)) {
      if (s->identity.empty()) fail(n.id + ": NewLeader with an empty name");
      // The record behind the report is the one the machine holds now.
      const auto& o = n.sm->observed();
      if (o && o->record.holder_identity == s->identity) {
        auto known = change_of_version_.find(o->version);
        uint64_t g = known == change_of_version_.end() ? 0 : known->second;
        if (g < n.reported_gen) {
          fail(n.id + " reported leader " + s->identity + " of record " + o->version +
               ", older than record " + std::to_string(n.reported_gen) + " behind its previous report");
        }
        n.reported_gen = std::max(n.reported_gen, g);
      }
      return;
    }
    if (std::holds_alternative<core::Finished>(a)) {
      log("%s finished%s", n.id);
      n.alive = false;
      return;
    }
    if (auto* s = std::get_if<core::Note>(&a)) log("%s note: %s", n.id, s->text);
  }

  // The work of term `t` returns (once: the slow draw or the deadline cut).
  void work_returns(int i, uint64_t inc, uint64_t work) {
    Node& m = nodes_[static_cast<size_t>(i)];
    if (m.incarnation != inc || !m.alive || !m.working || m.work_id != work) return;
    if (now_ < m.paused_until) {
      // The work is a thread of the paused process: it returns once the
      // process runs again, after what was queued for it meanwhile.
      at(m.paused_until, [this, i, inc, work] { work_returns(i, inc, work); });
      return;
    }
    m.working = false;
    log("%s work returned%s", m.id);
    run_on(i, inc, [](core::StateMachine& sm, Instant t, WallTime w, std::vector<Action>& o) {
      sm.handle_work_returned(t, w, o);
    });
  }
  // A slow-stopping work returns at its renew deadline (wherever renewals
  // while draining have moved it by then).
  void cut_at_deadline(int i, uint64_t inc, uint64_t work) {
    Node& n = nodes_[static_cast<size_t>(i)];
    at(std::max(global(n, n.sm->leader_deadline()), n.paused_until), [this, i, inc, work] {
      Node& m = nodes_[static_cast<size_t>(i)];
      if (m.incarnation != inc || !m.alive || !m.working || m.work_id != work) return;
      if (local(m, now_) >= m.sm->leader_deadline()) {
        work_returns(i, inc, work);
      } else {
        cut_at_deadline(i, inc, work);
      }
    });
  }

  // The network and the store. The driver's request timeout is modelled:
  // an answer later than renew_deadline/2 arrives as a Timeout.
  void send(int i, const core::SendRequest& r) {
    Node& n = nodes_[static_cast<size_t>(i)];
    log("%s sends %s", n.id, std::string(core::op_name(r.op)) + " v=" + r.version + " holder=" +
        r.record.holder_identity + " t=" + std::to_string(r.record.lease_transitions));
    uint64_t id = ++n.req;
    n.answered = false;
    n.sent_epoch_seen = n.last_epoch_seen;
    n.sent_max_seen = n.max_seen;
    Time sent = now_;
    Instant sent_local = local(n, now_);
    Time timeout = static_cast<Time>(static_cast<double>(p_.deadline.count() / 2) / n.rate);
    uint64_t inc = n.incarnation;
    const bool read = r.op == core::Op::kGet;
    auto respond = [this, i, id, inc, sent_local, read](Result<Versioned> res, Time when) {
      if (nodes_[static_cast<size_t>(i)].incarnation != inc) return;  // sender died
      deliver(i, [this, i, id, sent_local, res, read](core::StateMachine& m, Instant t, WallTime w,
                                                std::vector<Action>& o) {
        Node& me = nodes_[static_cast<size_t>(i)];
        if (me.req != id || me.answered) return;  // the driver took a timeout already
        me.answered = true;
        if (read && res.ok()) saw(i, res.value());  // a write's answer is what it wrote
        log("%s answered %s", me.id, res.ok() ? describe(res.value()) : res.error().to_string());
        m.handle_response(t, w, sent_local, res, o);
      }, when);
    };
    Time there = latency();
    Time back = latency();
    // Losses are faults too: they end when all faults heal (the liveness
    // bound is measured from then).
    const bool faulty = now_ < p_.fault_end;
    bool lost_there = chance(loss_) && faulty, lost_back = chance(loss_) && faulty;
    if (n.partitioned) {
      respond(Error::unavailable("partitioned"), sent + there + back);
      return;
    }
    if (now_ < n.busy_until) {  // one stalled request per lock; the rest fail fast
      respond(Error::unavailable("previous request still running"), sent + kMs);
      return;
    }
    if (now_ < n.stalled_until) {
      // Hangs until the stall ends, then answers (late, if past the driver's
      // timeout). As the file lock does, it takes effect only if the stall
      // ended within the request's timeout; later, it writes nothing.
      n.busy_until = n.stalled_until;
      respond(Error::timeout("no answer"), sent + timeout);
      const bool in_time = n.stalled_until - sent < timeout;
      at(n.stalled_until, [this, i, r, sent, respond, back, in_time] {
        respond(in_time ? store_apply(i, r, sent) : Result<Versioned>(Error::timeout("gave up")), now_ + back);
      });
      return;
    }
    if (lost_there || there + back > timeout) {
      if (!lost_there) at(sent + there, [this, i, r, sent] { (void)store_apply(i, r, sent); });  // applied, answer too late
      respond(Error::timeout("no answer"), sent + timeout);
      return;
    }
    at(sent + there, [this, i, r, respond, sent, back, lost_back, timeout, there] {
      Result<Versioned> res = store_apply(i, r, sent);
      if (lost_back) {
        respond(Error::timeout("answer lost"), sent + timeout);
      } else {
        respond(res, sent + there + back);
      }
    });
  }

  Time latency() {
    if (chance(0.02)) return static_cast<Time>(uniform(500, 6000)) * kMs;  // a spike
    return static_cast<Time>(uniform(1, 50) * kMs);
  }

  // The record's version: "EPOCH:GENERATION" as the file lock writes it, or
  // only the generation with --repeat-versions.
  std::string version() const {
    if (repeat_versions_) return std::to_string(gen_);
    return std::to_string(epoch_) + ":" + std::to_string(gen_);
  }

  // Applies node i's request, sent at `sent`.
  Result<Versioned> store_apply(int i, const core::SendRequest& r, Time sent) {
    auto current = [&]() -> Versioned { return Versioned{version(), *record_}; };
    switch (r.op) {
      case core::Op::kGet:
        if (!record_) return Error::not_found("none");
        return current();
      case core::Op::kCreate:
        if (record_) return Error::already_exists("exists");
        break;
      case core::Op::kUpdate:
        if (!record_) return Error::not_found("deleted");
        if (r.version != version()) return Error::conflict("stale");
        break;
    }
    if (!record_) {  // a new record: a fresh epoch, generation 1
      epoch_ = rng_() | 1;
      const size_t order = epoch_seq_.size();
      epoch_seq_[epoch_] = order;
      gen_ = 0;
      const Node& n = nodes_[static_cast<size_t>(i)];
      if (deletions_ > 0) {
        // Blind to the old holder: its sender has seen no record since it
        // booted, or sent it before the deletion. Renumbered: its sender
        // had not seen the latest numbers.
        if (n.sent_epoch_seen != deleted_epoch_ || last_deletion_ >= sent) blind_epochs_.insert(epoch_);
        if (n.sent_max_seen < max_token_) renumbered_epochs_.insert(epoch_);
      }
    }
    record_ = r.record;
    nodes_[static_cast<size_t>(i)].write_epoch = epoch_;
    ++gen_;
    history_.push_back(current());
    change_of_version_[version()] = last_change();
    broadcast();
    return current();
  }

  void broadcast() {
    for (int i = 0; i < p_.nodes; ++i) {
      Node& n = nodes_[static_cast<size_t>(i)];
      if (!n.alive || !n.watch || n.partitioned) continue;
      if (chance(watch_loss_) && now_ < p_.fault_end) continue;  // a dropped event; polling or the next one repairs it
      watch_event(i, last_change());
    }
  }

  // Delivers change g to node i's watch: in order after the events
  // before it, unless (before the faults heal) it is overtaken or repeated.
  // `shown` false: the same random draws, nothing delivered.
  void watch_event(int i, uint64_t g, bool shown = true) {
    Node& n = nodes_[static_cast<size_t>(i)];
    const bool faulty = now_ < p_.fault_end;
    Time when = 0;
    if (faulty && chance(reorder_)) {
      when = now_ + static_cast<Time>(uniform(50, 3000)) * kMs;  // overtaken by later events
    } else {
      n.last_watch = std::max(n.last_watch + 1, now_ + latency());
      when = n.last_watch;
    }
    auto v = history_[g];
    if (shown) deliver(i, [this, i, g, v](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
      Node& k = nodes_[static_cast<size_t>(i)];
      k.watch_seen = std::max(k.watch_seen, g);
      if (v) saw(i, *v);
      log("%s watch: %s", k.id, v ? describe(*v) : std::string("deleted"));
      m.handle_watch(t, w, v, o);
    }, when);
    if (faulty && chance(duplicate_)) {
      Time again = when + static_cast<Time>(uniform(0, 2000)) * kMs;
      if (shown) {
        deliver(i, [this, i, v](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
          log("%s watch (duplicate): %s", nodes_[static_cast<size_t>(i)].id, v ? describe(*v) : std::string("deleted"));
          m.handle_watch(t, w, v, o);
        }, again);
      }
    }
  }

  void set_watch_health(int i, bool up) {
    Node& n = nodes_[static_cast<size_t>(i)];
    if (!n.watch) return;
    if (up) {
      // A resumed watch replays every change after the version it resumes
      // from: the last one it delivered, or (a LIST's or a fallback watch's
      // version) an older one.
      uint64_t from = n.watch_seen;
      if (from > 0 && chance(replay_old_)) from = static_cast<uint64_t>(rng_() % (from + 1));
      // Nothing new: the current state once, if there is a record. A LIST
      // (or a new watch) shows no object for a deleted one, as the watch hub
      // and a watch without a resourceVersion do; only a replay from before
      // the deletion delivers it.
      if (from >= last_change()) {
        watch_event(i, last_change(), history_.back().has_value());
      } else {
        for (uint64_t g = from + 1; g <= last_change(); ++g) watch_event(i, g);
      }
    }
    n.last_watch = std::max(n.last_watch + 1, now_ + latency());
    deliver(i, [up](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
      m.handle_watch_health(t, w, up, o);
    }, n.last_watch);
  }

  void saw(int i, const Versioned& v) {
    Node& n = nodes_[static_cast<size_t>(i)];
    if (v.record.holder_identity == n.id) return;  // its own write, echoed
    n.max_seen = std::max<int64_t>(n.max_seen, v.record.lease_transitions);
    n.last_epoch_seen = std::strtoull(v.version.c_str(), nullptr, 10);  // "EPOCH:GEN"
  }

  void boot(int i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    n.max_seen = -1;
    n.last_epoch_seen = 0;
    ElectorConfig c;
    c.lock = "sim://lease";
    c.identity = n.id;
    c.lease_duration = p_.lease;
    c.renew_deadline = p_.deadline;
    c.retry_period = p_.retry;
    n.sm = std::make_unique<core::StateMachine>(c, rng_());
    ++n.incarnation;
    n.alive = true;
    n.working = false;
    n.started_term = false;
    n.reported_gen = 0;
    n.watch_seen = last_change();  // its first LIST: the current state (the replay may start earlier)
    log("%s boots%s", n.id);
    set_watch_health(i, !n.partitioned);
    deliver(i, [](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
      m.handle_start(t, w, o);
    }, now_);
  }

  void crash(int i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    if (!n.alive) return;
    log("%s crashes%s", n.id);
    n.alive = false;
    n.working = false;  // the process and its work are gone
    ++n.incarnation;
    ++n.timer_gen;
  }

  void schedule_faults() {
    int faults = static_cast<int>(uniform(0, 25));
    for (int k = 0; k < faults; ++k) {
      Time t = static_cast<Time>(uniform(5, static_cast<double>(p_.fault_end / kSec) - 5)) * kSec;
      int i = static_cast<int>(rng_() % static_cast<uint64_t>(p_.nodes));
      int kind = static_cast<int>(rng_() % 10);
      at(t, [this, i, kind] { fault(i, kind); });
    }
  }

  void fault(int i, int kind) {
    Node& n = nodes_[static_cast<size_t>(i)];
    switch (kind) {
      case 0:  // crash, restart later
        crash(i);
        at(now_ + static_cast<Time>(uniform(1, 30)) * kSec, [this, i] {
          if (!nodes_[static_cast<size_t>(i)].alive) boot(i);
        });
        return;
      case 1: {  // partition from the store
        if (n.partitioned) return;
        n.partitioned = true;
        log("%s partitioned%s", n.id);
        set_watch_health(i, false);
        Time until = std::min(now_ + static_cast<Time>(uniform(1, 40)) * kSec, p_.fault_end);
        at(until, [this, i] { unpartition(i); });
        return;
      }
      case 2:
      case 3: {  // a process pause; rarely longer than the bound
        if (!n.alive) return;
        bool is_long = chance(0.15);
        Time d = is_long ? p_.long_pause + static_cast<Time>(uniform(0, 15)) * kSec
                         : static_cast<Time>(uniform(50, static_cast<double>(p_.max_short_pause / kMs))) * kMs;
        d = std::min(d, p_.fault_end - now_);
        if (d <= 0) return;
        n.paused_until = std::max(n.paused_until, now_ + d);
        if (is_long && d >= p_.long_pause) {
          n.long_paused_in_term = n.working || n.long_paused_in_term;
          long_paused_.push_back({i, n.paused_until});
        }
        log("%s paused for %s", n.id, std::to_string(static_cast<double>(d) / kSec) + "s");
        return;
      }
      case 4:  // graceful stop, restart later
        if (!n.alive) return;
        log("%s asked to stop%s", n.id);
        deliver(i, [this, i](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
          nodes_[static_cast<size_t>(i)].asked_down = true;
          m.handle_stop(t, w, o);
        }, now_);
        at(now_ + static_cast<Time>(uniform(12, 30)) * kSec, [this, i] {
          Node& m = nodes_[static_cast<size_t>(i)];
          if (!m.alive) boot(i);
        });
        return;
      case 5:  // the leader resigns
        deliver(i, [this, i](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
          nodes_[static_cast<size_t>(i)].asked_down = true;
          m.handle_resign(t, w, o);
        }, now_);
        return;
      case 6: {  // the leader hands off to another node (maybe a dead one)
        std::string to = nodes_[(static_cast<size_t>(i) + 1 + rng_() % static_cast<uint64_t>(p_.nodes - 1)) %
                                static_cast<size_t>(p_.nodes)].id;
        log("%s asked to hand off to %s", n.id, to);
        deliver(i, [this, i, to](core::StateMachine& m, Instant t, WallTime w, std::vector<Action>& o) {
          nodes_[static_cast<size_t>(i)].asked_down = true;
          m.handle_handoff(t, w, to, o);
        }, now_);
        return;
      }
      case 7: {  // the node's backend stalls (a held PATH.lock, a stalled disk)
        Time d = static_cast<Time>(uniform(1, 20)) * kSec;
        n.stalled_until = std::max(n.stalled_until, std::min(now_ + d, p_.fault_end));
        log("%s backend stalls for %s", n.id, std::to_string(static_cast<double>(d) / kSec) + "s");
        return;
      }
      case 8:  // the record is deleted (a tmp cleaner, a repair)
        if (!record_) return;
        log("record deleted%s", "");
        record_.reset();
        ++deletions_;
        last_deletion_ = now_;
        deleted_epoch_ = epoch_;
        history_.push_back(std::nullopt);
        broadcast();
        return;
      case 9:  // the watch stream ends and resumes a little later
        if (!n.alive || n.partitioned || !n.watch) return;
        log("%s watch restarts%s", n.id);
        set_watch_health(i, false);
        at(now_ + static_cast<Time>(uniform(100, 5000)) * kMs, [this, i] {
          Node& m = nodes_[static_cast<size_t>(i)];
          if (m.alive && !m.partitioned) set_watch_health(i, true);
        });
        return;
    }
  }

  void unpartition(int i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    if (!n.partitioned) return;
    n.partitioned = false;
    log("%s partition healed%s", n.id);
    if (n.alive) set_watch_health(i, true);
  }

  void heal() {
    log("all faults heal%s", "");
    healed_at_ = now_;
    absent_at_heal_ = !record_.has_value();
    for (int i = 0; i < p_.nodes; ++i) {
      unpartition(i);
      if (!nodes_[static_cast<size_t>(i)].alive) boot(i);
    }
  }

  void check_liveness() {
    if (healed_at_ < 0 || leader_seen_after_heal_) return;
    bool any = false;
    for (auto& n : nodes_) any = any || (n.alive && n.working);
    if (any) {
      leader_seen_after_heal_ = true;
      return;
    }
    Time bound = healed_at_ + static_cast<Time>((p_.lease + 2 * p_.retry).count());
    // A deleted record is re-created only a full lease after a candidate that
    // knew it first saw it gone, which a partition may delay until the heal.
    if (absent_at_heal_) bound += static_cast<Time>(p_.lease.count());
    if (now_ > bound) fail("no leader within the bound after the faults healed");
  }

  uint64_t seed_;
  bool trace_;
  bool repeat_versions_;
  std::mt19937_64 rng_;
  Params p_;
  double loss_ = 0, watch_loss_ = 0;
  double replay_old_ = 0, reorder_ = 0, duplicate_ = 0;
  // Every state of the store in order (a deletion is a state: no record),
  // indexed by change number; change_of_version_ maps back.
  std::vector<std::optional<Versioned>> history_;
  std::map<std::string, uint64_t> change_of_version_;
  uint64_t last_change() const { return history_.size() - 1; }
  std::vector<Node> nodes_;
  std::priority_queue<Event> queue_;
  uint64_t seq_ = 0;
  Time now_ = 0;
  std::optional<LeaseRecord> record_;
  uint64_t gen_ = 0;
  uint64_t epoch_ = 0;
  int64_t max_token_ = -1;
  int deletions_ = 0;
  Time last_deletion_ = -1;
  uint64_t deleted_epoch_ = 0;  // the epoch of the record deleted last
  std::set<uint64_t> blind_epochs_, renumbered_epochs_;  // epochs begun by such creates
  std::map<uint64_t, size_t> epoch_seq_;                // epoch -> order of creation
  Time healed_at_ = -1;
  bool absent_at_heal_ = false;
  bool leader_seen_after_heal_ = false;
  std::vector<std::pair<int, Time>> long_paused_;
  std::string error_;
  uint64_t events_ = 0;
  uint64_t same_instant_ = 0;
  uint64_t slow_stops_ = 0;
};

}  // namespace
}  // namespace leasehold::sim

int main(int argc, char** argv) {
  uint64_t seeds = 1000, first = 1;
  bool trace = false, one = false, repeat_versions = false, all = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seeds" && i + 1 < argc) {
      seeds = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--first" && i + 1 < argc) {
      first = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      first = std::strtoull(argv[++i], nullptr, 10);
      seeds = 1;
      one = true;
    } else if (a == "--trace") {
      trace = true;
    } else if (a == "--repeat-versions") {
      repeat_versions = true;
    } else if (a == "--all") {
      all = true;
    } else {
      std::fprintf(stderr, "usage: leasehold_sim [--seeds N] [--first S] [--seed S --trace] [--repeat-versions] [--all]\n");
      return 2;
    }
  }
  uint64_t failed = 0, events = 0, ran = 0, slow_stops = 0;
  for (uint64_t s = first; s < first + seeds; ++s) {
    ++ran;
    leasehold::sim::Sim sim(s, trace, repeat_versions);
    std::string err = sim.run();
    events += sim.events();
    slow_stops += sim.slow_stops();
    if (!err.empty()) {
      ++failed;
      if (failed <= 5 || all) {
        std::printf("seed %" PRIu64 " FAILED: %s\n  replay: %s --seed %" PRIu64 " --trace\n", s,
                    err.c_str(), argv[0], s);
      }
      if (failed >= 5 && !all) break;
    } else if (one) {
      std::printf("seed %" PRIu64 " ok\n", s);
    }
  }
  std::printf("%" PRIu64 " seeds, %" PRIu64 " events, %" PRIu64 " slow stops of draining work\nsim: %" PRIu64
              " passed, %" PRIu64 " failed\n",
              ran, events, slow_stops, ran - failed, failed);
  return failed == 0 ? 0 : 1;
}
