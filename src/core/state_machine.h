// The election algorithm as a pure state machine.
//
// Inputs are events (handle_*), each stamped with the local steady time it
// happened at; outputs are Actions appended to a vector, plus next_wakeup(),
// the instant the machine next wants a tick. No I/O, no clock reads, no
// threads: the driver (elector.cc), the unit tests and the deterministic
// simulator (tests/sim) all drive this same code.
//
// Correctness model (see also DESIGN.md, "The contract"):
//  * A follower judges expiry on its own steady clock: a record is expired
//    when observed_at + leaseDurationSeconds has passed, where observed_at is
//    when this process first saw that record version: when the copy was
//    received (Versioned::received_at) if the backend says, else when the
//    event reached the machine; never later than the latter, and never
//    earlier than the observed_at of the version seen before. Versions are
//    compared only for equality; remote timestamps are never read.
//  * A leader's term is valid until sent_at(last successful write) +
//    renew_deadline. Any write that lands was sent before it landed, and a
//    follower receives it after it landed, so the follower's expiry instant
//    (>= landing + lease_duration) comes after the leader's deadline because
//    renew_deadline < lease_duration. The gap absorbs clock-rate drift.
//  * Every write is a compare-and-swap on the version that was read, so two
//    candidates acting on the same expired record cannot both win.
//  * A leader stops as soon as a read shows another holder, and it cannot start
//    a new term until the work of the previous one returned.
//  * A deleted record held by someone unexpired is not re-created by
//    followers until that holder's lease would have expired.
//  * State never moves backwards. A resumed watch replays older events and
//    versions are opaque, so a watch event is applied only when it fits what
//    we hold: while holding, our own term (or our write in flight, echoed
//    before its answer); otherwise a renewal of the holder we know (same
//    holder, same transitions), which at worst restarts its expiry later.
//    Any other event (another holder or term, a release, a deletion) is not
//    applied: it makes us read. Except one: a follower free to campaign that
//    sees the lease free (or naming it, a handoff) writes at once, by a
//    compare-and-swap on the event's version; that write lands only if the
//    event is current, and a 409 makes it read. So a holder or term enters
//    our state only from answers to our own requests, one in flight at a
//    time, taken in the order sent; and a read sent before the event ends the
//    doubt only if it shows the event's own version. A leader never steps down, and
//    on_new_leader never names a holder, on news older than what we had.
//
// Threading: none; one owner calls it.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "leasehold/clock.h"
#include "leasehold/config.h"
#include "leasehold/error.h"
#include "leasehold/record.h"

namespace leasehold::core {

enum class Phase {
  kIdle,       // not started
  kFollowing,  // campaigning / standing by
  kLeading,    // holder, work running
  kStopping,   // stop requested; waiting for work (renewing meanwhile), then releasing
  kStopped,    // done; emits nothing more
};
std::string_view phase_name(Phase p);

// Named sub-states beside the phase (StateMachine::state()).
// The term's work (on_started_leading), as far as the machine knows.
enum class Work {
  kNone,      // none started, or it returned (handle_work_returned)
  kRunning,   // started (StartLeading) and not asked to stop
  kStopping,  // asked to stop (StopLeading) and not returned yet
};
// Our hold on the lease, as far as we know.
enum class Hold {
  kNone,       // the store does not name us
  kHeld,       // the store names us for term()
  kReleasing,  // held, and the release (or handoff) is due or in flight
};
// What the end of the term's work leads to: a release or a handoff (asked by
// handle_resign / handle_handoff or a preferredHolder), or nothing.
enum class StepDown { kNone, kRelease, kHandOff };
// Whether another term may follow: kFinish once a stop was asked, or a term
// was lost without recampaign.
enum class Next { kCampaign, kFinish };
std::string_view work_name(Work w);
std::string_view hold_name(Hold h);
std::string_view step_down_name(StepDown s);

struct State {
  Phase phase = Phase::kIdle;
  Work work = Work::kNone;
  Hold hold = Hold::kNone;
  StepDown step_down = StepDown::kNone;
  Next next = Next::kCampaign;
  bool request_in_flight = false;
};

enum class Op { kGet, kCreate, kUpdate };
std::string_view op_name(Op op);

// When a copy of the record reached us: its received_at if its backend set
// it and it is earlier than `now` (when the event reaches the machine or the
// observer), else `now`. Any copy left the store after the write it shows
// landed, so either instant comes after that landing.
Instant arrival(Instant now, const Versioned& v);

// Why a request is sent; responses are interpreted by purpose.
enum class Purpose { kObserve, kAcquire, kRenew, kReleaseRead, kRelease };

struct SendRequest {
  Op op;
  Purpose purpose;
  std::string version;  // kUpdate only
  LeaseRecord record;   // kCreate / kUpdate
};
struct StartLeading {
  Term term;
};
// Ask the term's work to stop (stop_token); the driver answers with
// handle_work_returned once on_started_leading has returned.
struct StopLeading {
  Term term;
  // The lease was seen held by another identity, or freed by someone else,
  // while we held it: another replica may lead already, so the work must
  // end at once. Sent again (taken set) when that happens while the work is
  // already stopping.
  bool taken = false;
};
struct NewLeader {
  std::string identity;
};
// A write that extends our current term succeeded (a renewal, also one sent
// while the term's work is stopping): the term now lasts until
// sent_at + renew_deadline on our clock, and the lease until
// sent_at + lease_duration on anyone's.
struct Renewed {
  Term term;
  Instant sent_at;
};
// The machine is done (Phase::kStopped).
struct Finished {};
// Something worth logging: lost leadership, failed writes.
struct Note {
  std::string text;
  bool warning = true;  // false: routine (info)
};
using Action = std::variant<SendRequest, StartLeading, StopLeading, NewLeader, Renewed, Finished, Note>;

struct Timing {
  Duration lease_duration;
  Duration renew_deadline;
  Duration retry_period;
  Duration renew_interval;
  // Renewals fall on a grid of this step (multiples of it since the clock's
  // epoch): the one due at now + renew_interval is sent at the grid point at
  // or before it, never later, less than one step earlier. Every elector of
  // a process shares the grid, so their renewals come due together and go
  // out in one wake-up (shared ticks). min(100 ms, renew_interval / 10).
  Duration renew_tick;
};

class StateMachine {
 public:
  // `seed` drives the retry jitter. The config must have passed validate().
  StateMachine(const ElectorConfig& config, uint64_t seed);

  void handle_start(Instant now, WallTime wall, std::vector<Action>& out);
  void handle_tick(Instant now, WallTime wall, std::vector<Action>& out);
  // The response to the single outstanding request (sent at `sent_at`).
  void handle_response(Instant now, WallTime wall, Instant sent_at, const Result<Versioned>& r,
                       std::vector<Action>& out);
  // A watch event: the record changed (or was deleted: nullopt).
  void handle_watch(Instant now, WallTime wall, const std::optional<Versioned>& v,
                    std::vector<Action>& out);
  void handle_watch_health(Instant now, WallTime wall, bool healthy, std::vector<Action>& out);
  void handle_stop(Instant now, WallTime wall, std::vector<Action>& out);
  // Give up leadership voluntarily (the work failed, or the owner asked):
  // stop the work, release once it returned, then campaign again.
  void handle_resign(Instant now, WallTime wall, std::vector<Action>& out);
  // Hand the lease to `target` (a standby's identity) with no leaderless
  // gap: stop the work, and once it returned write `target` as holder (CAS
  // on a fresh read that still names us for this term; transitions + 1), then
  // campaign again (or finish, like a release). Also started by a record
  // whose preferredHolder names another identity while no coordinated
  // strategy is set. Returns false (and does nothing) when not leading or
  // when target is empty or ourselves.
  bool handle_handoff(Instant now, WallTime wall, const std::string& target,
                      std::vector<Action>& out);
  // The term's work is over: on_started_leading and on_stopped_leading returned.
  void handle_work_returned(Instant now, WallTime wall, std::vector<Action>& out);

  // When to call handle_tick next; nullopt while only events can move it.
  std::optional<Instant> next_wakeup() const;

  Phase phase() const { return phase_; }
  // The phase and its sub-states, for the simulator's invariants.
  State state() const { return State{phase_, work_, hold_, step_down_, next_, in_flight_.has_value()}; }
  bool request_in_flight() const { return in_flight_.has_value(); }
  // Valid while leading (and during a stop, until released).
  const Term& term() const { return term_; }
  // Leader: sent_at(last successful write) + renew_deadline.
  Instant leader_deadline() const { return last_renew_sent_ + t_.renew_deadline; }
  const std::string& observed_holder() const { return reported_leader_; }
  const std::optional<Versioned>& observed() const { return observed_; }
  // Follower: when the observed holder's lease expires on our clock.
  std::optional<Instant> observed_expiry() const;
  bool work_running() const { return work_ != Work::kNone; }
  // A watch event (or a failed read) left what we hold in doubt: a read, or
  // a write that lands, is due before it is trusted again.
  bool rereading() const { return doubt_.has_value(); }
  // The store names us for term() as far as we know (leading, or draining).
  bool holding() const { return hold_ != Hold::kNone; }
  // Draining: the term's work was asked to stop and has not returned while
  // we still hold the lease (a stop, a resignation or a handoff). The lease
  // is renewed meanwhile, so slow work does not let it lapse; at the
  // deadline we stop holding (no renewal, no release).
  bool draining() const;

 private:
  struct InFlight {
    Op op;
    Purpose purpose;
    Instant sent_at;
    LeaseRecord record;  // what we wrote (create/update)
    uint64_t number = 0;
  };
  void send(Instant now, Op op, Purpose p, std::string version, LeaseRecord rec,
            std::vector<Action>& out);
  void observe(Instant now, const std::optional<Versioned>& v, std::vector<Action>& out);
  // handle_response, one function per purpose of the request answered.
  // The answer to a read sent to learn the record (Purpose::kObserve).
  void on_observe_answer(Instant now, WallTime wall, Instant sent_at, const Result<Versioned>& r,
                         std::vector<Action>& out);
  void on_acquire_answer(Instant now, WallTime wall, Instant sent_at, const InFlight& req,
                         const Result<Versioned>& r,
                         std::vector<Action>& out);
  void on_renew_answer(Instant now, WallTime wall, Instant sent_at, const InFlight& req,
                       const Result<Versioned>& r,
                       std::vector<Action>& out);
  // The fresh read before a release: write it only if it still names us.
  void on_release_read_answer(Instant now, WallTime wall, const Result<Versioned>& r,
                              std::vector<Action>& out);
  void on_release_answer(Instant now, const InFlight& req, const Result<Versioned>& r,
                         std::vector<Action>& out);
  // A record or a 404 may end the doubt a watch event or a failed read left.
  void end_doubt(const InFlight& req, const Result<Versioned>& r);
  void note_failure(const InFlight& req, const Error& e, std::vector<Action>& out);
  // Asks the term's work to stop (StopLeading); `taken` as in StopLeading.
  void stop_work(bool taken, std::vector<Action>& out);
  // The watch event can be applied without a read (see the model above).
  bool fits(const std::optional<Versioned>& v) const;
  // Reads now unless a request is in flight (its answer reads) or there is
  // nothing to decide (stopping without holding).
  void reread(Instant now, std::vector<Action>& out);
  void evaluate(Instant now, WallTime wall, std::vector<Action>& out);
  void become_leader(Instant now, Instant sent_at, const Versioned& v, std::vector<Action>& out);
  // `taken`: the lease was seen held by another or freed, not merely
  // unrenewed (StopLeading::taken).
  void lose(Instant now, const std::string& why, bool taken, std::vector<Action>& out);
  // Releases (or hands over) by a compare-and-swap on the version of our
  // term we hold; reads first only when we hold none.
  void begin_release(Instant now, WallTime wall, std::vector<Action>& out);
  bool names_our_term(const LeaseRecord& r) const;
  // What a release (or handoff) of `ours` writes.
  LeaseRecord release_record(const Versioned& ours, WallTime wall) const;
  // A watch event shows the lease free for us (or names us): try the
  // compare-and-swap on its version at once, instead of reading first.
  bool take_on_event(Instant now, WallTime wall, const Versioned& v, std::vector<Action>& out);
  // Our record is gone while we hold it: create it again, unless a record
  // naming another holder was seen since our last write (then step down).
  void recreate_or_lose(Instant now, WallTime wall, std::vector<Action>& out);
  void after_release(Instant now, std::vector<Action>& out);
  void finish(std::vector<Action>& out);
  // Moves to kStopping / kStopped once nothing is left to wait for.
  void settle(std::vector<Action>& out);
  void report_leader(const std::string& id, std::vector<Action>& out);
  void arm_attempt(Instant at);
  bool takeable(Instant now) const;
  LeaseRecord acquire_record(WallTime wall) const;
  LeaseRecord acquire_record(WallTime wall, const Versioned* base) const;
  LeaseRecord renew_record(WallTime wall) const;
  Duration jittered_retry();
  bool can_campaign() const;
  // now + renew_interval, moved back onto the renew_tick grid.
  Instant renew_due(Instant now) const;
  // preferredHolder asks for someone else while no coordinated strategy runs.
  void maybe_hand_off(Instant now, WallTime wall, const Versioned& v, std::vector<Action>& out);
  // Draining: renew when due, or stop holding once the deadline passed.
  void drain_tick(Instant now, WallTime wall, std::vector<Action>& out);
  // Our write of the term landed (sent at `sent_at`): the term is extended.
  void renewed(Instant sent_at, std::vector<Action>& out);

  std::string identity_;
  Timing t_;
  bool release_on_cancel_;
  bool recampaign_;
  bool coordinated_;  // never take the lease; lead only when named holder
  std::mt19937_64 rng_;

  Phase phase_ = Phase::kIdle;
  std::optional<InFlight> in_flight_;
  // The latest record we know of, and when we first saw its version.
  std::optional<Versioned> observed_;
  Instant observed_at_{};
  // A record we knew was deleted: no create before this instant (a full
  // lease after we first saw it gone).
  std::optional<Instant> deleted_holder_expiry_;
  // When we last saw no record (a read's 404 or a watch's deletion). While
  // waiting out a deletion, a failed read or a longer gap between two such
  // sightings (a pause, lost answers) could hide a record re-created and
  // deleted again, so the wait starts over.
  std::optional<Instant> absence_seen_at_;
  // Our create was refused (AlreadyExists) and no read has shown us the
  // record yet: it exists, with a holder we do not know.
  bool unseen_record_ = false;
  bool waiting_out_deletion(Instant now) const {
    return deleted_holder_expiry_ && now < *deleted_holder_expiry_;
  }
  // Our last sighting of "no record" is too old to create on (polling only).
  bool absence_stale(Instant now) const {
    return deleted_holder_expiry_ && !watch_healthy_ &&
           (!absence_seen_at_ || now - *absence_seen_at_ > max_absence_gap());
  }
  Duration max_absence_gap() const { return t_.retry_period * 11 / 5 + t_.renew_deadline / 2; }
  bool watch_healthy_ = false;
  // What we hold may be outdated: a read failed, or a watch event did not
  // fit (see the correctness model). Until a request numbered at least
  // `from` (sent after the doubt arose) is answered with a record or a 404,
  // a follower's next move is a read and a leader's is a renewal (a read at
  // once when the event came).
  struct Doubt {
    uint64_t from = 0;
    // The version of the last event in doubt ("" for a deletion; none after
    // a failed read); a read sent earlier that answers the same also settles
    // the doubt (they agree).
    std::optional<std::string> version;
  };
  std::optional<Doubt> doubt_;
  uint64_t next_request_ = 0;  // the number of the next request sent
  // When a watch event last showed us a record, unless a deletion came after
  // it: a 404 to a read sent before then is older news and must not erase
  // that record.
  std::optional<Instant> last_watch_record_at_;
  Instant next_attempt_{};  // follower: next GET or acquire attempt
  // After we released (or handed over) the lease, others get the first
  // chance: while the record is still the one our release wrote, no
  // campaign of ours before campaign_after_.
  Instant campaign_after_{};
  std::string released_version_;
  bool attempt_armed_ = false;

  Term term_;
  Instant last_renew_sent_{};
  Instant next_renew_{};
  Work work_ = Work::kNone;
  Hold hold_ = Hold::kNone;
  StepDown step_down_ = StepDown::kNone;
  Next next_ = Next::kCampaign;
  std::string handoff_to_;  // StepDown::kHandOff: the holder the release writes
  // The release in flight follows a read (so a 409 to it ends the release).
  bool release_read_ = false;
  // While holding: a watch event named another holder, and no write of ours
  // sent after it has succeeded since (that would prove it older news).
  bool foreign_since_write_ = false;
  uint64_t foreign_from_ = 0;
  int64_t max_transitions_seen_ = -1;
  std::string reported_leader_;
};

}  // namespace leasehold::core
