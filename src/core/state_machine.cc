#include "core/state_machine.h"

#include <algorithm>
#include <cassert>

namespace leasehold::core {
namespace {

using std::chrono::seconds;

int32_t whole_seconds(Duration d) {
  return static_cast<int32_t>(std::chrono::duration_cast<seconds>(d).count());
}

std::string holder_or_none(const std::string& h) { return h.empty() ? "nobody" : h; }

}  // namespace

std::string_view phase_name(Phase p) {
  switch (p) {
    case Phase::kIdle: return "idle";
    case Phase::kFollowing: return "following";
    case Phase::kLeading: return "leading";
    case Phase::kStopping: return "stopping";
    case Phase::kStopped: return "stopped";
  }
  return "?";
}

std::string_view work_name(Work w) {
  switch (w) {
    case Work::kNone: return "none";
    case Work::kRunning: return "running";
    case Work::kStopping: return "stopping";
  }
  return "?";
}

std::string_view hold_name(Hold h) {
  switch (h) {
    case Hold::kNone: return "none";
    case Hold::kHeld: return "held";
    case Hold::kReleasing: return "releasing";
  }
  return "?";
}

std::string_view step_down_name(StepDown s) {
  switch (s) {
    case StepDown::kNone: return "none";
    case StepDown::kRelease: return "release";
    case StepDown::kHandOff: return "handoff";
  }
  return "?";
}

std::string_view op_name(Op op) {
  switch (op) {
    case Op::kGet: return "get";
    case Op::kCreate: return "create";
    case Op::kUpdate: return "update";
  }
  return "?";
}

StateMachine::StateMachine(const ElectorConfig& c, uint64_t seed)
    : identity_(c.identity),
      t_{c.lease_duration, c.renew_deadline, c.retry_period, c.effective_renew_interval(),
         std::min<Duration>(std::chrono::milliseconds(100), c.effective_renew_interval() / 10)},
      release_on_cancel_(c.release_on_cancel),
      recampaign_(c.recampaign),
      coordinated_(c.coordinated.enabled),
      rng_(seed) {}

std::optional<Instant> StateMachine::observed_expiry() const {
  if (!observed_ || observed_->record.is_free()) return std::nullopt;
  return observed_at_ + seconds(observed_->record.lease_duration_seconds);
}

Duration StateMachine::jittered_retry() {
  // client-go's wait.Jitter(retry_period, 1.2): uniformly in [1, 2.2) periods.
  std::uniform_real_distribution<double> u(0.0, 1.2);
  return t_.retry_period + std::chrono::duration_cast<Duration>(t_.retry_period * u(rng_));
}

bool StateMachine::draining() const {
  if (hold_ == Hold::kNone || work_ == Work::kNone) return false;
  return phase_ == Phase::kStopping || (phase_ == Phase::kFollowing && step_down_ != StepDown::kNone);
}

void StateMachine::recreate_or_lose(Instant now, WallTime wall, std::vector<Action>& out) {
  if (!foreign_since_write_) {
    send(now, Op::kCreate, Purpose::kRenew, "", renew_record(wall), out);
    return;
  }
  // A record naming another holder was seen since our last write (perhaps
  // a replay, perhaps a term begun on a record created and deleted since):
  // its holder may still be working. Not ours to re-create: step down and
  // wait out the deletion like any follower.
  lose(now, "lease deleted after a record of another holder was seen", true, out);
  observe(now, std::nullopt, out);
}

void StateMachine::renewed(Instant sent_at, std::vector<Action>& out) {
  last_renew_sent_ = std::max(last_renew_sent_, sent_at);
  out.push_back(Renewed{term_, last_renew_sent_});
}

void StateMachine::drain_tick(Instant now, WallTime wall, std::vector<Action>& out) {
  if (now >= leader_deadline()) {
    // The work outlived our term; the lease may be someone else's now.
    out.push_back(Note{"work did not return before the renew deadline; not releasing"});
    hold_ = Hold::kNone;
    return;
  }
  if (!in_flight_ && now >= next_renew_) {
    send(now, Op::kUpdate, Purpose::kRenew, observed_->version, renew_record(wall), out);
  }
}

Instant StateMachine::renew_due(Instant now) const {
  Instant due = now + t_.renew_interval;
  if (t_.renew_tick <= Duration::zero()) return due;
  Duration since = due.time_since_epoch();
  return Instant(since - since % t_.renew_tick);
}

bool StateMachine::can_campaign() const {
  return phase_ == Phase::kFollowing && work_ == Work::kNone && next_ == Next::kCampaign &&
         hold_ == Hold::kNone;
}

void StateMachine::send(Instant now, Op op, Purpose p, std::string version, LeaseRecord rec,
                        std::vector<Action>& out) {
  assert(!in_flight_);
  in_flight_ = InFlight{op, p, now, rec, next_request_++};
  out.push_back(SendRequest{op, p, std::move(version), std::move(rec)});
}

void StateMachine::report_leader(const std::string& id, std::vector<Action>& out) {
  if (id.empty() || id == reported_leader_) return;
  reported_leader_ = id;
  out.push_back(NewLeader{id});
}

LeaseRecord StateMachine::acquire_record(WallTime wall) const {
  return acquire_record(wall, observed_ ? &*observed_ : nullptr);
}

LeaseRecord StateMachine::acquire_record(WallTime wall, const Versioned* base) const {
  LeaseRecord r;
  if (base) {
    r = base->record;  // keeps strategy (and preferredHolder under a strategy)
    r.lease_transitions = base->record.lease_transitions + 1;
    // Outside coordinated election preferredHolder is a hand-off request:
    // taking the lease either fulfils it or overrides a stale one, so it must
    // not outlive the acquisition (a stale name would bounce every new leader).
    if (r.strategy.empty()) r.preferred_holder.clear();
  } else {
    // Creating: continue the numbering we saw before a deletion, so fencing
    // tokens keep increasing.
    r.lease_transitions = static_cast<int32_t>(max_transitions_seen_ + 1);
  }
  r.holder_identity = identity_;
  r.lease_duration_seconds = whole_seconds(t_.lease_duration);
  r.acquire_time = wall;
  r.renew_time = wall;
  return r;
}

LeaseRecord StateMachine::renew_record(WallTime wall) const {
  LeaseRecord r = observed_ ? observed_->record : LeaseRecord{};
  r.holder_identity = identity_;
  r.lease_transitions = static_cast<int32_t>(term_.transitions);
  r.lease_duration_seconds = whole_seconds(t_.lease_duration);
  if (!r.acquire_time) r.acquire_time = wall;
  r.renew_time = wall;
  return r;
}

bool StateMachine::takeable(Instant now) const {
  // Coordinated: kube-apiserver picks the holder; we only confirm its choice.
  if (coordinated_) return observed_ && observed_->record.holder_identity == identity_;
  if (!observed_) return true;
  const LeaseRecord& r = observed_->record;
  return r.is_free() || r.holder_identity == identity_ || now >= *observed_expiry();
}

void StateMachine::arm_attempt(Instant at) {
  next_attempt_ = attempt_armed_ ? std::min(next_attempt_, at) : at;
  attempt_armed_ = true;
}

void StateMachine::evaluate(Instant now, WallTime wall, std::vector<Action>& out) {
  if (!can_campaign() || in_flight_) return;
  if (doubt_) {  // decide on a fresh read, never on doubtful news
    send(now, Op::kGet, Purpose::kObserve, "", {}, out);
    return;
  }
  if (observed_ && observed_->version == released_version_ && now < campaign_after_) {
    // Our own release, even when it echoes back as free: others first.
    arm_attempt(campaign_after_);
    return;
  }
  if (!observed_ && coordinated_) {  // kube-apiserver creates it when it picks someone
    arm_attempt(now + jittered_retry());
    return;
  }
  if (!observed_) {
    if (deleted_holder_expiry_ && now < *deleted_holder_expiry_) {
      // Until then, poll (unless a live watch tells us of every change): a
      // record re-created meanwhile, and deleted again, must not go unseen.
      attempt_armed_ = false;
      arm_attempt(*deleted_holder_expiry_);
      if (!watch_healthy_) arm_attempt(now + jittered_retry());
      return;
    }
    if (absence_stale(now)) {  // look again before creating
      send(now, Op::kGet, Purpose::kObserve, "", {}, out);
      return;
    }
    deleted_holder_expiry_.reset();
    send(now, Op::kCreate, Purpose::kAcquire, "", acquire_record(wall), out);
    return;
  }
  if (takeable(now)) {
    send(now, Op::kUpdate, Purpose::kAcquire, observed_->version, acquire_record(wall), out);
    return;
  }
  // Held by someone else: wake at the exact expiry instant, and poll until
  // then unless a live watch will tell us of every change.
  attempt_armed_ = false;
  arm_attempt(*observed_expiry());
  if (!watch_healthy_) arm_attempt(now + jittered_retry());
}

void StateMachine::become_leader(Instant now, Instant sent_at, const Versioned& v,
                                 std::vector<Action>& out) {
  phase_ = Phase::kLeading;
  hold_ = Hold::kHeld;
  foreign_since_write_ = false;
  attempt_armed_ = false;
  observed_ = v;
  observed_at_ = now;
  max_transitions_seen_ = std::max<int64_t>(max_transitions_seen_, v.record.lease_transitions);
  term_ = Term{v.record.lease_transitions, identity_};
  last_renew_sent_ = sent_at;
  next_renew_ = renew_due(now);
  work_ = Work::kRunning;
  // The new leader first, so a status read once StartLeading is published
  // (is_leader()) already counts the change.
  report_leader(identity_, out);
  out.push_back(StartLeading{term_});
}

void StateMachine::lose(Instant now, const std::string& why, bool taken, std::vector<Action>& out) {
  out.push_back(Note{"stopped leading term " + term_.to_string() + ": " + why});
  stop_work(taken, out);
  phase_ = next_ == Next::kFinish ? Phase::kStopping : Phase::kFollowing;
  hold_ = Hold::kNone;
  if (!recampaign_) next_ = Next::kFinish;  // no further terms; settle() ends us
  arm_attempt(now + t_.retry_period);
}

void StateMachine::stop_work(bool taken, std::vector<Action>& out) {
  out.push_back(StopLeading{term_, taken});
  if (work_ != Work::kNone) work_ = Work::kStopping;
}

void StateMachine::begin_release(Instant now, WallTime wall, std::vector<Action>& out) {
  hold_ = Hold::kReleasing;
  if (in_flight_) return;  // handle_response begins it after the answer
  // One write: a compare-and-swap on the version of our term we hold. If
  // anyone wrote since, it is refused (409) and on_release_answer reads.
  if (observed_ && names_our_term(observed_->record)) {
    release_read_ = false;
    send(now, Op::kUpdate, Purpose::kRelease, observed_->version, release_record(*observed_, wall), out);
  } else {
    release_read_ = true;
    send(now, Op::kGet, Purpose::kReleaseRead, "", {}, out);
  }
}

bool StateMachine::names_our_term(const LeaseRecord& r) const {
  return r.holder_identity == identity_ && r.lease_transitions == term_.transitions;
}

LeaseRecord StateMachine::release_record(const Versioned& ours, WallTime wall) const {
  LeaseRecord rel = ours.record;  // keeps strategy
  rel.preferred_holder.clear();
  rel.acquire_time = wall;
  rel.renew_time = wall;
  if (step_down_ != StepDown::kHandOff) {
    rel.holder_identity.clear();
    rel.lease_duration_seconds = 1;
  } else {
    // The target finds itself named and confirms with its own write;
    // everyone else sees a lease held for a full duration.
    rel.holder_identity = handoff_to_;
    rel.lease_transitions = ours.record.lease_transitions + 1;
    rel.lease_duration_seconds = whole_seconds(t_.lease_duration);
  }
  return rel;
}

void StateMachine::after_release(Instant now, std::vector<Action>& out) {
  hold_ = Hold::kNone;
  step_down_ = StepDown::kNone;
  handoff_to_.clear();
  if (next_ == Next::kFinish || !recampaign_ || phase_ == Phase::kStopping) {
    finish(out);
  } else {
    phase_ = Phase::kFollowing;
    campaign_after_ = now + jittered_retry();  // let someone else have it first
    arm_attempt(campaign_after_);
  }
}

void StateMachine::finish(std::vector<Action>& out) {
  if (phase_ == Phase::kStopped) return;
  phase_ = Phase::kStopped;
  attempt_armed_ = false;
  hold_ = Hold::kNone;
  out.push_back(Finished{});
}

void StateMachine::handle_start(Instant now, WallTime, std::vector<Action>& out) {
  if (phase_ != Phase::kIdle) return;
  phase_ = Phase::kFollowing;
  send(now, Op::kGet, Purpose::kObserve, "", {}, out);
}

void StateMachine::handle_tick(Instant now, WallTime wall, std::vector<Action>& out) {
  switch (phase_) {
    case Phase::kLeading:
      if (now >= leader_deadline()) {
        lose(now, "no successful renewal within renew_deadline", false, out);
        return;
      }
      if (!in_flight_ && now >= next_renew_) {
        send(now, Op::kUpdate, Purpose::kRenew, observed_->version, renew_record(wall), out);
      }
      return;
    case Phase::kStopping:
      if (draining()) drain_tick(now, wall, out);
      return;
    case Phase::kFollowing:
      if (draining()) return drain_tick(now, wall, out);
      if (!attempt_armed_ || now < next_attempt_ || in_flight_) return;
      attempt_armed_ = false;
      if (!can_campaign()) return;  // the running work decides what comes next
      if (doubt_ || (observed_ ? !takeable(now)
                                     : coordinated_ || waiting_out_deletion(now) || absence_stale(now))) {
        send(now, Op::kGet, Purpose::kObserve, "", {}, out);
      } else {
        evaluate(now, wall, out);
      }
      return;
    case Phase::kIdle:
    case Phase::kStopped:
      return;
  }
}

void StateMachine::handle_response(Instant now, WallTime wall, Instant sent_at,
                                   const Result<Versioned>& r, std::vector<Action>& out) {
  if (!in_flight_) return;  // nothing outstanding: a duplicate
  InFlight req = *in_flight_;
  in_flight_.reset();
  const bool answered = r.ok() || r.error().is(Code::kNotFound);
  end_doubt(req, r);
  switch (req.purpose) {
    case Purpose::kObserve: on_observe_answer(now, wall, sent_at, r, out); break;
    case Purpose::kAcquire: on_acquire_answer(now, wall, sent_at, req, r, out); break;
    case Purpose::kRenew: on_renew_answer(now, wall, sent_at, req, r, out); break;
    case Purpose::kReleaseRead: on_release_read_answer(now, wall, r, out); break;
    case Purpose::kRelease: on_release_answer(now, req, r, out); break;
  }
  // A release that waited for this answer.
  if (hold_ == Hold::kReleasing && !in_flight_) begin_release(now, wall, out);
  // Still in doubt after an answer: read again (after a failure the timers
  // retry instead, so a dead server is not read in a loop).
  if (doubt_ && answered && !in_flight_) reread(now, out);
  settle(out);
}

void StateMachine::end_doubt(const InFlight& req, const Result<Versioned>& r) {
  if (!doubt_) return;
  // A record or a 404 for a request sent after the doubt arose is at least
  // as new as what caused it; a read sent before it that shows the doubted
  // event's own version agrees with it.
  const bool gone = !r.ok() && r.error().is(Code::kNotFound);
  if (!r.ok() && !gone) return;
  const bool agrees = req.op == Op::kGet && doubt_->version &&
                      (r.ok() ? r.value().version == *doubt_->version : doubt_->version->empty());
  if (req.number >= doubt_->from || agrees) doubt_.reset();
}

void StateMachine::note_failure(const InFlight& req, const Error& e, std::vector<Action>& out) {
  out.push_back(Note{std::string(op_name(req.op)) + " failed: " + e.to_string()});
}

void StateMachine::on_acquire_answer(Instant now, WallTime wall, Instant sent_at, const InFlight& req,
                                     const Result<Versioned>& r, std::vector<Action>& out) {
  const bool conflict = !r.ok() && (r.error().is(Code::kConflict) || r.error().is(Code::kAlreadyExists));
  const bool gone = !r.ok() && r.error().is(Code::kNotFound);
  if (r.ok() && now >= sent_at + t_.renew_deadline) {
    // We won, but so long ago (a pause, a slow network) that our term
    // would already be over: do not start work on it. The record names
    // us, so the next evaluation re-acquires it as a new term.
    out.push_back(Note{"acquired too late to lead (answer took longer than renew_deadline)"});
    observe(now, r.value(), out);
    if (phase_ == Phase::kFollowing) arm_attempt(now);
  } else if (r.ok()) {
    if (phase_ == Phase::kFollowing && can_campaign()) {
      become_leader(now, sent_at, r.value(), out);
    } else {
      // We won while stopping: hold without work, then release.
      observed_ = r.value();
      observed_at_ = now;
      term_ = Term{r.value().record.lease_transitions, identity_};
      last_renew_sent_ = sent_at;
      hold_ = Hold::kHeld;
      if (release_on_cancel_) {
        begin_release(now, wall, out);
      } else {
        finish(out);
      }
    }
  } else if (phase_ == Phase::kStopping) {
    // lost the race while stopping: nothing to release (settle finishes)
  } else if (conflict) {
    // Someone else won. A refused create proves a record we have not
    // seen: if the next read finds none, it was deleted and is waited out.
    if (req.op == Op::kCreate) unseen_record_ = true;
    send(now, Op::kGet, Purpose::kObserve, "", {}, out);  // look
  } else if (gone && req.op == Op::kUpdate) {
    observe(now, std::nullopt, out);  // deleted since we read it: create it now
    evaluate(now, wall, out);
  } else {
    // A create can be refused with 404 too (the namespace does not
    // exist): like any other failure, try again after the retry period.
    if (gone) observe(now, std::nullopt, out);
    note_failure(req, r.error(), out);
    arm_attempt(now + jittered_retry());
  }
}

void StateMachine::on_renew_answer(Instant now, WallTime wall, Instant sent_at, const InFlight& req,
                                   const Result<Versioned>& r, std::vector<Action>& out) {
  const bool conflict = !r.ok() && (r.error().is(Code::kConflict) || r.error().is(Code::kAlreadyExists));
  const bool gone = !r.ok() && r.error().is(Code::kNotFound);
  if (r.ok()) {
    observed_ = r.value();
    observed_at_ = now;
    if (req.number >= foreign_from_) foreign_since_write_ = false;
    if (hold_ != Hold::kNone) renewed(sent_at, out);
    next_renew_ = renew_due(now);
    if (phase_ == Phase::kLeading) maybe_hand_off(now, wall, r.value(), out);
  } else if (draining()) {
    if (conflict || gone) {
      // Someone changed the lease under us: it is no longer known to be
      // ours, so the term's remaining time is all the work gets.
      out.push_back(Note{"lease changed while the work was stopping; not renewing or releasing"});
      stop_work(true, out);  // it may be another's now: no grace
      hold_ = Hold::kNone;
    } else {
      note_failure(req, r.error(), out);
      next_renew_ = now + t_.retry_period;
    }
  } else if (phase_ == Phase::kLeading) {
    if (conflict) {
      out.push_back(Note{"renew conflicted; re-reading (slow path)", false});
      send(now, Op::kGet, Purpose::kObserve, "", {}, out);
    } else if (gone) {
      recreate_or_lose(now, wall, out);
    } else {
      note_failure(req, r.error(), out);
      next_renew_ = now + t_.retry_period;
    }
  }
  // A renewal sent while draining, answered once the term is over (the
  // work returned, or the deadline passed): campaign on from here.
  if (phase_ == Phase::kFollowing && hold_ == Hold::kNone && work_ == Work::kNone) arm_attempt(now);
}

void StateMachine::on_release_read_answer(Instant now, WallTime wall, const Result<Versioned>& r,
                                          std::vector<Action>& out) {
  if (!r.ok() || !names_our_term(r.value().record)) {
    out.push_back(Note{r.ok() ? "not releasing: lease now held by " +
                                    holder_or_none(r.value().record.holder_identity)
                              : "not releasing: " + r.error().to_string()});
    after_release(now, out);
    return;
  }
  send(now, Op::kUpdate, Purpose::kRelease, r.value().version, release_record(r.value(), wall), out);
}

void StateMachine::on_release_answer(Instant now, const InFlight& req, const Result<Versioned>& r,
                                     std::vector<Action>& out) {
  if (!r.ok() && r.error().is(Code::kConflict) && !release_read_) {
    // Written since the version we held (an edit, a renewal's answer we
    // missed, or another holder): read, and release only if it is still ours.
    release_read_ = true;
    send(now, Op::kGet, Purpose::kReleaseRead, "", {}, out);
    return;
  }
  if (r.ok()) {
    out.push_back(Note{step_down_ != StepDown::kHandOff ? "released the lease"
                                                        : "handed the lease to " + handoff_to_,
                       false});
    observed_ = r.value();
    observed_at_ = now;
    released_version_ = r.value().version;
    // A handoff's answer names the target: reported from this record, as
    // a read of it would be (a later event that fits it then reports
    // nothing, even a replay of an older term with the same holder and
    // number, which a deletion and a blind create make possible).
    report_leader(r.value().record.holder_identity, out);
  } else {
    note_failure(req, r.error(), out);
  }
  after_release(now, out);
}

void StateMachine::handle_stop(Instant, WallTime, std::vector<Action>& out) {
  next_ = Next::kFinish;
  switch (phase_) {
    case Phase::kIdle:
      finish(out);
      return;
    case Phase::kFollowing:
      phase_ = Phase::kStopping;  // finishes once the work and request are done
      settle(out);
      return;
    case Phase::kLeading:
      phase_ = Phase::kStopping;
      stop_work(false, out);
      return;
    case Phase::kStopping:
    case Phase::kStopped:
      return;
  }
}

void StateMachine::handle_resign(Instant, WallTime, std::vector<Action>& out) {
  if (phase_ != Phase::kLeading) return;
  out.push_back(Note{"resigning: stepping down and releasing term " + term_.to_string()});
  stop_work(false, out);
  phase_ = Phase::kFollowing;
  step_down_ = StepDown::kRelease;
}

bool StateMachine::handle_handoff(Instant now, WallTime wall, const std::string& target,
                                  std::vector<Action>& out) {
  (void)now;
  (void)wall;
  if (phase_ != Phase::kLeading || target.empty() || target == identity_) return false;
  out.push_back(Note{"handing term " + term_.to_string() + " to " + target +
                         ": stopping the work first", false});
  stop_work(false, out);
  phase_ = Phase::kFollowing;
  step_down_ = StepDown::kHandOff;
  handoff_to_ = target;
  return true;
}

void StateMachine::maybe_hand_off(Instant now, WallTime wall, const Versioned& v,
                                  std::vector<Action>& out) {
  const LeaseRecord& r = v.record;
  if (r.preferred_holder.empty() || r.preferred_holder == identity_ || r.holder_identity != identity_) return;
  if (coordinated_) {
    // kube-apiserver prefers another candidate: release; it assigns the
    // lease to the preferred one.
    out.push_back(Note{"preferredHolder is " + r.preferred_holder + ": stepping down", false});
    handle_resign(now, wall, out);
  } else if (r.strategy.empty()) {
    handle_handoff(now, wall, r.preferred_holder, out);
  }
}

void StateMachine::handle_work_returned(Instant now, WallTime wall, std::vector<Action>& out) {
  if (work_ == Work::kNone) return;
  work_ = Work::kNone;
  switch (phase_) {
    case Phase::kLeading:
      return;  // work finished early; we keep the lease, as client-go does
    case Phase::kStopping:
      if (hold_ == Hold::kHeld && release_on_cancel_ && now < leader_deadline()) {
        begin_release(now, wall, out);
      } else {
        hold_ = Hold::kNone;
      }
      break;
    case Phase::kFollowing:
      if (step_down_ != StepDown::kNone && hold_ == Hold::kHeld && now < leader_deadline()) {
        begin_release(now, wall, out);
        return;
      }
      step_down_ = StepDown::kNone;
      handoff_to_.clear();
      hold_ = Hold::kNone;
      evaluate(now, wall, out);
      break;
    case Phase::kIdle:
    case Phase::kStopped:
      return;
  }
  settle(out);
}

void StateMachine::settle(std::vector<Action>& out) {
  if (phase_ == Phase::kFollowing && next_ == Next::kFinish && work_ == Work::kNone &&
      hold_ == Hold::kNone) {
    phase_ = Phase::kStopping;
  }
  if (phase_ == Phase::kStopping && hold_ == Hold::kNone && work_ == Work::kNone && !in_flight_) {
    finish(out);
  }
}

std::optional<Instant> StateMachine::next_wakeup() const {
  switch (phase_) {
    case Phase::kLeading:
      return in_flight_ ? leader_deadline() : std::min(leader_deadline(), next_renew_);
    case Phase::kStopping:
      if (draining()) return in_flight_ ? leader_deadline() : std::min(leader_deadline(), next_renew_);
      return std::nullopt;
    case Phase::kFollowing:
      if (draining()) return in_flight_ ? leader_deadline() : std::min(leader_deadline(), next_renew_);
      // While a request is in flight its answer moves us; a tick could not.
      if ((hold_ != Hold::kNone && work_ != Work::kNone) || in_flight_) return std::nullopt;
      return attempt_armed_ ? std::optional<Instant>(next_attempt_) : std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace leasehold::core
