// What the state machine knows of the record: reads, watch events, and the
// re-read that a watch event which does not fit what we hold asks for (see
// "State never moves backwards" in state_machine.h).
#include "core/state_machine.h"

#include <algorithm>

namespace leasehold::core {
namespace {

std::string holder_or_none(const std::string& h) { return h.empty() ? "nobody" : h; }

}  // namespace

Instant arrival(Instant now, const Versioned& v) {
  return v.received_at && *v.received_at < now ? *v.received_at : now;
}

void StateMachine::observe(Instant now, const std::optional<Versioned>& v,
                           std::vector<Action>& out) {
  if (!v) {
    // Deleted (or never created). A record we knew (or one whose existence a
    // refused create or a watch's deletion proved) is gone: its last holder
    // may have renewed it, unseen by us, just before the deletion and still
    // be working, so wait a full lease from now before creating it again. A
    // candidate that never knew of a record, and reads none, creates at once.
    if (observed_ || unseen_record_ || absence_stale(now)) {
      Instant until = now + t_.lease_duration;
      deleted_holder_expiry_ = std::max(deleted_holder_expiry_.value_or(until), until);
    }
    absence_seen_at_ = now;
    observed_.reset();
    unseen_record_ = false;
    return;
  }
  unseen_record_ = false;
  // Never earlier than before: an older copy that arrived earlier (a
  // replay) moves the expiry no nearer.
  if (!observed_ || observed_->version != v->version) observed_at_ = std::max(observed_at_, arrival(now, *v));
  observed_ = *v;
  deleted_holder_expiry_.reset();
  absence_seen_at_.reset();
  max_transitions_seen_ = std::max<int64_t>(max_transitions_seen_, v->record.lease_transitions);
  if (v->record.holder_identity != identity_) report_leader(v->record.holder_identity, out);
}

void StateMachine::on_observe_answer(Instant now, WallTime wall, Instant sent_at,
                                     const Result<Versioned>& r, std::vector<Action>& out) {
  const bool gone = !r.ok() && r.error().is(Code::kNotFound);
  if (!r.ok() && !gone) {
    out.push_back(Note{"get failed: " + r.error().to_string()});
    doubt_ = Doubt{next_request_, std::nullopt};  // read again before any write that relies on it
    absence_seen_at_.reset();  // a gap in what we know
    if (phase_ == Phase::kLeading) {
      next_renew_ = now + t_.retry_period;
    } else if (phase_ == Phase::kFollowing) {
      arm_attempt(now + jittered_retry());
    }
    return;
  }
  const Versioned* v = r.ok() ? &r.value() : nullptr;
  const bool ours = v && names_our_term(v->record);
  if (phase_ == Phase::kLeading) {
    if (ours) {
      const bool changed = !observed_ || observed_->version != v->version;
      observed_ = *v;
      maybe_hand_off(now, wall, *v, out);
      // Changed since our last write (an edit, or a conflict's slow path):
      // renew on the fresh version, unless a handoff now drains the term.
      if (changed && phase_ == Phase::kLeading) {
        send(now, Op::kUpdate, Purpose::kRenew, v->version, renew_record(wall), out);
      }
    } else if (!v) {
      recreate_or_lose(now, wall, out);
    } else {
      lose(now, "lease now held by " + holder_or_none(v->record.holder_identity), true, out);
      observe(now, *v, out);
    }
    return;
  }
  if (hold_ != Hold::kNone) {  // the work is stopping (or we hold until released)
    if (ours) {
      observed_ = *v;  // still ours: renew on this version
      return;
    }
    out.push_back(Note{"lease now held by " + (v ? holder_or_none(v->record.holder_identity) : "nobody (deleted)") +
                       " while the work was stopping; not renewing or releasing"});
    if (work_ != Work::kNone) stop_work(true, out);  // no grace left for the work
    // A release due after this answer still reads first, and finds it not ours.
    if (hold_ == Hold::kHeld) hold_ = Hold::kNone;
  }
  if (gone && observed_ && last_watch_record_at_ && *last_watch_record_at_ >= sent_at) {
    // The watch showed a record after this read was sent: the 404 is
    // older news (the Lease was created meanwhile). Keep the record.
    evaluate(now, wall, out);
    return;
  }
  observe(now, r.ok() ? std::optional<Versioned>(r.value()) : std::nullopt, out);
  evaluate(now, wall, out);
}

bool StateMachine::fits(const std::optional<Versioned>& v) const {
  if (!v) return false;  // a deletion changes who holds it
  const LeaseRecord& r = v->record;
  if (in_flight_ && in_flight_->op != Op::kGet) {
    // Our write in flight, echoed before its answer (timestamps aside).
    const LeaseRecord& w = in_flight_->record;
    if (r.holder_identity == w.holder_identity && r.lease_transitions == w.lease_transitions &&
        r.lease_duration_seconds == w.lease_duration_seconds && r.preferred_holder == w.preferred_holder &&
        r.strategy == w.strategy) {
      return true;
    }
  }
  if (hold_ != Hold::kNone) {
    // Our own term; while leading, one that does not ask us to hand over.
    const bool ours = names_our_term(r);
    const bool hand_over = phase_ == Phase::kLeading && !r.preferred_holder.empty() &&
                           r.preferred_holder != identity_ && (coordinated_ || r.strategy.empty());
    return ours && !hand_over;
  }
  // A renewal by the holder we know: at worst an older renewal, which only
  // restarts its expiry later than needed.
  return observed_ && !observed_->record.is_free() && r.holder_identity == observed_->record.holder_identity &&
         r.lease_transitions == observed_->record.lease_transitions;
}

void StateMachine::reread(Instant now, std::vector<Action>& out) {
  if (in_flight_) return;  // handle_response reads after the answer
  if (phase_ == Phase::kIdle || phase_ == Phase::kStopped) return;
  if (phase_ == Phase::kStopping && hold_ == Hold::kNone) return;  // nothing left to decide
  send(now, Op::kGet, Purpose::kObserve, "", {}, out);
}

void StateMachine::handle_watch(Instant now, WallTime wall, const std::optional<Versioned>& v,
                                std::vector<Action>& out) {
  if (phase_ == Phase::kIdle || phase_ == Phase::kStopped) return;
  // The latest event decides: a deletion after a record (a replay, or the
  // record deleted again) agrees with a 404, so the 404 is not older news.
  if (v) {
    last_watch_record_at_ = now;
  } else {
    last_watch_record_at_.reset();
  }
  // The version we hold again (a duplicate, our own write echoed). A
  // deletion is never old news here: even when we know of no record it
  // proves one existed (created and deleted unseen, or a replay).
  const bool same = v && observed_ && observed_->version == v->version;
  if (hold_ != Hold::kNone && v && v->record.holder_identity != identity_) {
    foreign_since_write_ = true;
    foreign_from_ = next_request_;  // only a write sent after this event clears it
  }
  if (!same && !fits(v)) {
    // Newer, or a replay of older news: only a read can tell. Either way a
    // record existed: if the read finds none, its holder is waited out.
    if (!observed_) unseen_record_ = true;
    // Its number existed, so a record we create later continues above it.
    if (v) max_transitions_seen_ = std::max<int64_t>(max_transitions_seen_, v->record.lease_transitions);
    doubt_ = Doubt{next_request_, v ? v->version : ""};
    if (v && take_on_event(now, wall, *v, out)) return;
    reread(now, out);
    return;
  }
  // Holding: our own write echoed back, or an edit that kept us holder (the
  // next renewal's conflict picks it up).
  if (hold_ != Hold::kNone) return;
  if (!same) observe(now, v, out);
  // A follower looks again at what it holds (a watch that resumed after a
  // partition redelivers it: a lease that became takeable is taken now).
  if (phase_ == Phase::kFollowing) evaluate(now, wall, out);
}

bool StateMachine::take_on_event(Instant now, WallTime wall, const Versioned& v, std::vector<Action>& out) {
  if (!can_campaign() || in_flight_ || v.version == released_version_) return false;
  const LeaseRecord& r = v.record;
  const bool ours_to_take = coordinated_ ? r.holder_identity == identity_
                                         : r.is_free() || r.holder_identity == identity_;
  if (!ours_to_take) return false;
  // The write is the read: it lands only on the event's version, which then
  // is the current record; a replay or an outdated event gets a 409, and
  // on_acquire_answer reads. The doubt stays until an answer ends it.
  send(now, Op::kUpdate, Purpose::kAcquire, v.version, acquire_record(wall, &v), out);
  return true;
}

void StateMachine::handle_watch_health(Instant now, WallTime, bool healthy,
                                       std::vector<Action>&) {
  watch_healthy_ = healthy;
  if (!healthy && phase_ == Phase::kFollowing) arm_attempt(now);  // poll from now on
}

}  // namespace leasehold::core
