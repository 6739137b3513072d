// Every transition of the election state machine, on a simulated timeline,
// counting requests exactly: a surprise request fails the test.
#include "core/state_machine.h"

#include <gtest/gtest.h>

#include <set>

namespace leasehold::core {
namespace {

using namespace std::chrono_literals;

Versioned rec(std::string version, std::string holder, int32_t transitions, int32_t dur = 15) {
  Versioned v;
  v.version = std::move(version);
  v.record.holder_identity = std::move(holder);
  v.record.lease_transitions = transitions;
  v.record.lease_duration_seconds = dur;
  return v;
}

ElectorConfig default_config() {
  ElectorConfig c;
  c.lock = "mem://t";
  c.identity = "a";
  return c;  // 15s / 10s / 2s
}

class Harness {
 public:
  explicit Harness(ElectorConfig cfg = default_config()) : cfg_(cfg), sm_(cfg_, 1) {}
  static ElectorConfig config() { return default_config(); }

  StateMachine& sm() { return sm_; }
  Instant now() const { return now_; }

  void start() { sm_.handle_start(now_, wall(), out_); }
  void stop() { sm_.handle_stop(now_, wall(), out_); }
  void work_returned() { sm_.handle_work_returned(now_, wall(), out_); }
  void resign() { sm_.handle_resign(now_, wall(), out_); }
  bool handoff(const std::string& to) { return sm_.handle_handoff(now_, wall(), to, out_); }
  void watch(const std::optional<Versioned>& v) { sm_.handle_watch(now_, wall(), v, out_); }
  void watch_health(bool up) { sm_.handle_watch_health(now_, wall(), up, out_); }
  // A watch event that changes who holds the lease: the machine reads
  // before it believes it, and the read confirms the event.
  void watch_read(const std::optional<Versioned>& v) {
    watch(v);
    auto r = take_request();
    EXPECT_EQ(r.op, Op::kGet) << "a changed holder taken from a watch without a read";
    if (v) {
      respond(*v);
    } else {
      respond(Error::not_found("deleted"));
    }
  }
  // Answers the request in flight (sent at the time it was taken).
  void respond(const Result<Versioned>& r) { sm_.handle_response(now_, wall(), sent_at_, r, out_); }
  // Starts with a live watch; the first read finds `v`.
  void start_watching(const Versioned& v) {
    watch_health(true);
    start();
    take_request();
    respond(v);
  }

  // Moves time forward, firing every wake-up on the way.
  void advance(Duration d) {
    Instant end = now_ + d;
    for (;;) {
      auto w = sm_.next_wakeup();
      if (!w || *w > end) break;
      now_ = std::max(now_, *w);
      sm_.handle_tick(now_, wall(), out_);
    }
    now_ = end;
  }

  // The one request the last events produced; fails on none or several.
  SendRequest take_request() {
    std::vector<SendRequest> reqs;
    std::vector<Action> rest;
    for (auto& a : out_) {
      if (auto* r = std::get_if<SendRequest>(&a)) {
        reqs.push_back(*r);
      } else {
        rest.push_back(a);
      }
    }
    out_ = rest;
    EXPECT_EQ(reqs.size(), 1u) << "expected exactly one request";
    sent_at_ = now_;
    ++requests_;
    return reqs.empty() ? SendRequest{} : reqs.front();
  }
  void expect_no_request() {
    for (auto& a : out_) {
      if (auto* r = std::get_if<SendRequest>(&a)) {
        ADD_FAILURE() << "surprise request: " << op_name(r->op);
      }
    }
  }
  template <class T>
  int count() {
    int n = 0;
    for (auto& a : out_) n += std::holds_alternative<T>(a);
    return n;
  }
  template <class T>
  T take() {
    for (auto it = out_.begin(); it != out_.end(); ++it) {
      if (auto* t = std::get_if<T>(&*it)) {
        T v = *t;
        out_.erase(it);
        return v;
      }
    }
    ADD_FAILURE() << "expected action missing";
    return T{};
  }
  void clear_notes() { out_.clear(); }
  int requests() const { return requests_; }

  // Start and win a fresh lease: GET 404, CREATE ok.
  Term lead(int32_t transitions_seen = -1) {
    start();
    EXPECT_EQ(take_request().op, Op::kGet);
    if (transitions_seen < 0) {
      respond(Error::not_found("none"));
      auto c = take_request();
      EXPECT_EQ(c.op, Op::kCreate);
      respond(Versioned{"1", c.record});
    } else {
      respond(rec("5", "", transitions_seen, 1));
      auto u = take_request();
      EXPECT_EQ(u.op, Op::kUpdate);
      respond(Versioned{"6", u.record});
    }
    auto s = take<StartLeading>();
    clear_notes();
    return s.term;
  }

 private:
  WallTime wall() const { return WallTime{} + (now_.time_since_epoch()); }
  ElectorConfig cfg_;
  StateMachine sm_;
  Instant now_ = Instant{} + 1000s;
  Instant sent_at_{};
  std::vector<Action> out_;
  int requests_ = 0;
};

TEST(StateMachineTest, AcquiresAFreshLeaseWithTwoRequests) {
  Harness h;
  h.start();
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(Error::not_found("no lease"));
  auto create = h.take_request();
  EXPECT_EQ(create.op, Op::kCreate);
  EXPECT_EQ(create.record.holder_identity, "a");
  EXPECT_EQ(create.record.lease_duration_seconds, 15);
  EXPECT_EQ(create.record.lease_transitions, 0);
  EXPECT_TRUE(create.record.acquire_time && create.record.renew_time);
  h.respond(Versioned{"1", create.record});
  EXPECT_EQ(h.take<StartLeading>().term, (Term{0, "a"}));
  EXPECT_EQ(h.take<NewLeader>().identity, "a");
  EXPECT_EQ(h.sm().phase(), Phase::kLeading);
  EXPECT_EQ(h.requests(), 2);
}

TEST(StateMachineTest, LeaderRenewsEveryRetryPeriodOnTheFastPath) {
  Harness h;
  h.lead();
  h.advance(1999ms);
  h.expect_no_request();
  std::string version = "1";
  for (int i = 0; i < 30; ++i) {
    h.advance(h.sm().next_wakeup().value() - h.now());
    auto r = h.take_request();
    ASSERT_EQ(r.op, Op::kUpdate);
    EXPECT_EQ(r.purpose, Purpose::kRenew);
    EXPECT_EQ(r.version, version);  // the cached version: no GET first
    EXPECT_EQ(r.record.lease_transitions, 0);
    version = std::to_string(i + 2);
    h.respond(Versioned{version, r.record});
  }
  EXPECT_EQ(h.requests(), 2 + 30);
  EXPECT_EQ(h.sm().phase(), Phase::kLeading);
}

TEST(StateMachineTest, RenewConflictTakesTheSlowPath) {
  Harness h;
  h.lead();
  h.advance(2s);
  auto r = h.take_request();
  h.respond(Error::conflict("someone edited labels"));
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(rec("9", "a", 0));
  auto retry = h.take_request();
  EXPECT_EQ(retry.op, Op::kUpdate);
  EXPECT_EQ(retry.version, "9");
  h.respond(Versioned{"10", retry.record});
  EXPECT_EQ(h.sm().phase(), Phase::kLeading);
  EXPECT_EQ(h.count<StopLeading>(), 0);
}

TEST(StateMachineTest, StepsDownAtOnceWhenAnotherHolderIsSeen) {
  Harness h;
  Term t = h.lead();
  h.advance(2s);
  h.take_request();
  h.respond(Error::conflict("stale"));
  h.take_request();
  h.respond(rec("9", "b", 1));
  EXPECT_EQ(h.take<StopLeading>().term, t);
  EXPECT_EQ(h.take<NewLeader>().identity, "b");
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
  h.advance(30s);
  h.expect_no_request();  // no campaigning until the work has returned
}

TEST(StateMachineTest, StepsDownWhenAWatchShowsAnotherHolder) {
  Harness h;
  h.lead();
  h.watch_read(rec("7", "intruder", 1));
  EXPECT_EQ(h.count<StopLeading>(), 1);
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
}

TEST(StateMachineTest, StepsDownExactlyAtTheRenewDeadline) {
  Harness h;
  h.lead();
  Instant won = h.now();  // the create was sent (and answered) now
  // Every renewal fails from here on.
  for (;;) {
    auto w = h.sm().next_wakeup().value();
    h.advance(w - h.now());
    if (h.count<StopLeading>() > 0) break;
    auto r = h.take_request();
    ASSERT_EQ(r.purpose, Purpose::kRenew);
    h.respond(Error::unavailable("apiserver down"));
  }
  EXPECT_EQ(h.now(), won + 10s);
  EXPECT_EQ(h.requests(), 2 + 4);  // renew attempts at 2, 4, 6, 8s
}

TEST(StateMachineTest, DeadlineCountsFromWhenTheLastGoodRenewalWasSent) {
  Harness h;
  h.lead();
  h.advance(2s);
  auto r = h.take_request();
  Instant sent = h.now();
  h.advance(3s);  // slow answer: arrives 3s later, still a success
  h.respond(Versioned{"2", r.record});
  // Fail everything after it.
  for (;;) {
    auto w = h.sm().next_wakeup().value();
    h.advance(w - h.now());
    if (h.count<StopLeading>() > 0) break;
    h.take_request();
    h.respond(Error::unavailable("down"));
  }
  EXPECT_EQ(h.now(), sent + 10s);
}

TEST(StateMachineTest, FollowerWaitsForExpiryOnItsOwnClockWithoutPollingWhenWatching) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  Instant seen = h.now();
  h.respond(rec("5", "b", 3));
  EXPECT_EQ(h.take<NewLeader>().identity, "b");
  h.advance(15s - 1ms);
  h.expect_no_request();
  h.advance(1ms);
  auto u = h.take_request();
  EXPECT_EQ(h.now(), seen + 15s);
  EXPECT_EQ(u.op, Op::kUpdate);
  EXPECT_EQ(u.version, "5");
  EXPECT_EQ(u.record.lease_transitions, 4);
  EXPECT_EQ(u.record.holder_identity, "a");
  EXPECT_EQ(h.requests(), 2);
}

TEST(StateMachineTest, ANewVersionRestartsTheExpiryClock) {
  Harness h;
  h.start_watching(rec("5", "b", 3));
  h.advance(10s);
  h.watch(rec("6", "b", 3));  // b renewed
  Instant renewed = h.now();
  h.watch(rec("6", "b", 3));  // the same version again does not reset
  h.advance(5s);
  h.expect_no_request();
  h.advance(renewed + 15s - h.now());
  EXPECT_EQ(h.take_request().version, "6");
}

// A follower counts the holder's lease from when the renewal was received
// (Versioned::received_at), not from when the machine got to it; a
// received_at later than that (not the machine's clock) counts as no earlier
// than the handling, and one earlier than the last observation's as that.
TEST(StateMachineTest, TheExpiryClockStartsWhenTheRenewalWasReceived) {
  Harness h;
  h.start_watching(rec("5", "b", 3));
  h.advance(10s);
  Versioned renewal = rec("6", "b", 3);
  renewal.received_at = h.now();
  h.advance(300ms);  // the I/O thread was busy
  h.watch(renewal);
  h.advance(*renewal.received_at + 15s - 1ms - h.now());
  h.expect_no_request();
  h.advance(1ms);
  auto u = h.take_request();
  EXPECT_EQ(u.op, Op::kUpdate);
  EXPECT_EQ(u.version, "6");
  EXPECT_EQ(h.now(), *renewal.received_at + 15s);

  Harness later;
  later.start_watching(rec("5", "b", 3));
  Versioned odd = rec("6", "b", 3);
  odd.received_at = later.now() + 5s;
  later.watch(odd);
  const Instant handled = later.now();
  later.advance(15s - 1ms);
  later.expect_no_request();
  later.advance(1ms);
  EXPECT_EQ(later.take_request().version, "6");
  EXPECT_EQ(later.now(), handled + 15s);

  // An older copy that arrived earlier (a replay of b's renewal before)
  // moves the expiry no nearer.
  Harness replay;
  replay.start_watching(rec("6", "b", 3));
  const Instant seen = replay.now();
  replay.advance(1s);
  Versioned older = rec("5", "b", 3);
  older.received_at = seen - 1s;
  replay.watch(older);
  replay.advance(seen + 15s - 1ms - replay.now());
  replay.expect_no_request();
  replay.advance(1ms);
  EXPECT_EQ(replay.take_request().version, "5");
  EXPECT_EQ(replay.now(), seen + 15s);
}

TEST(StateMachineTest, FollowerWithoutAWatchPollsWithJitter) {
  Harness h;
  h.start();
  h.take_request();
  h.respond(rec("5", "b", 3));
  Instant last = h.now();
  for (int i = 0; i < 5; ++i) {
    Instant w = h.sm().next_wakeup().value();
    EXPECT_GE(w - last, 2s);
    EXPECT_LT(w - last, 4400ms);  // retry_period * (1 + 1.2)
    h.advance(w - h.now());
    EXPECT_EQ(h.take_request().op, Op::kGet);
    h.respond(rec(std::to_string(6 + i), "b", 3));
    last = h.now();
  }
}

TEST(StateMachineTest, AReleasedLeaseIsTakenAtOnce) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("5", "b", 3));
  h.advance(1s);
  h.watch(rec("6", "", 3, 1));  // b released: one write, no read first
  auto u = h.take_request();
  EXPECT_EQ(u.op, Op::kUpdate);
  EXPECT_EQ(u.version, "6");
  EXPECT_EQ(u.record.lease_transitions, 4);
  EXPECT_EQ(u.record.holder_identity, "a");
  h.respond(Versioned{"7", u.record});
  EXPECT_EQ(h.sm().phase(), Phase::kLeading);
  EXPECT_EQ(h.requests(), 2);
}

// The take-over on a release event is a compare-and-swap on the event's
// version: a replayed (or outdated) release is refused, and only then read.
TEST(StateMachineTest, ATakeOverOnAnOutdatedReleaseEventReadsAfterThe409) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("5", "b", 3));
  h.watch(rec("4", "", 2, 1));  // an older release, replayed by a resumed watch
  auto u = h.take_request();
  EXPECT_EQ(u.op, Op::kUpdate);
  EXPECT_EQ(u.version, "4");
  h.respond(Error::conflict("the object has been modified"));
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(rec("5", "b", 3));  // b still holds it
  EXPECT_EQ(h.count<StartLeading>(), 0);
  h.advance(10s);
  h.expect_no_request();
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
  EXPECT_EQ(h.sm().observed_holder(), "b");
}

TEST(StateMachineTest, LosingTheAcquireRaceRereadsAndWaits) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("5", "", 3, 1));
  h.take_request();
  h.respond(Error::conflict("c won"));
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(rec("6", "c", 4));
  EXPECT_EQ(h.take<NewLeader>().identity, "c");
  h.advance(14s);
  h.expect_no_request();
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
}

// A create refused with 404 (the namespace does not exist) is retried once
// per retry period (jittered), not at once: it once looped, 142 creates in 8 s.
TEST(StateMachineTest, ACreateRefusedWithNotFoundWaitsTheRetryPeriod) {
  Harness h;
  h.start();
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(Error::not_found("leases \"x\" not found"));
  for (int i = 0; i < 5; ++i) {
    auto c = h.take_request();
    EXPECT_EQ(c.op, Op::kCreate);
    h.respond(Error::not_found("namespaces \"no-such-ns\" not found"));
    EXPECT_EQ(h.count<Note>(), 1);  // each failure is logged, with the server's message
    h.clear_notes();
    h.advance(1999ms);
    h.expect_no_request();
    h.advance(2400ms);  // within [1, 2.2) retry periods
  }
  EXPECT_EQ(h.requests(), 6);
}

// Shared ticks: leaders that won at different instants renew on one grid of
// min(100 ms, renew_interval / 10), so a process's renewals come due at the
// same instants; each is at most one step early and never late.
TEST(StateMachineTest, RenewalsFallOnASharedGridEarlyNeverLate) {
  std::set<int64_t> due;
  for (Duration offset : {0ms, 13ms, 57ms, 99ms, 140ms}) {
    Harness h;
    h.advance(offset);
    h.lead();
    Instant won = h.now();
    Instant next = h.sm().next_wakeup().value();
    EXPECT_LE(next, won + 2s) << "a renewal later than renew_interval";
    EXPECT_GT(next, won + 2s - 100ms) << "more than one step early";
    EXPECT_EQ(next.time_since_epoch() % 100ms, Duration::zero());
    due.insert(std::chrono::duration_cast<std::chrono::milliseconds>(next.time_since_epoch()).count());
    h.advance(next - h.now());
    auto renew = h.take_request();
    EXPECT_EQ(renew.op, Op::kUpdate);
  }
  EXPECT_EQ(due.size(), 2u) << "five leaders within 140 ms renew on two ticks";
}

// Sim seeds 32278 and 37438: a leader whose record was deleted, after its
// watch had shown another holder's record (created and deleted meanwhile by
// an admin), re-created its own record and led again beside that holder. A
// leader re-creates its deleted record only when nothing of another holder
// was seen since its last write; otherwise it steps down and waits the
// deletion out.
TEST(StateMachineTest, ADeletedRecordIsNotRecreatedByALeaderThatSawAnotherHolder) {
  Harness h;
  h.watch_health(true);
  h.lead();
  h.advance(2s);
  auto renew = h.take_request();
  h.watch(rec("e2:1", "b", 0));  // another holder's record, on a new epoch
  h.watch(std::nullopt);         // and deleted again
  h.respond(Error::not_found("deleted"));
  EXPECT_EQ(h.take<StopLeading>().taken, true);
  EXPECT_EQ(h.take_request().op, Op::kGet);  // a read (the events left a doubt), never a create
  h.respond(Error::not_found("none"));
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
  h.advance(14s);
  h.expect_no_request();  // b's lease is waited out
  // Without such an event, a leader re-creates its own deleted record.
  Harness g;
  g.watch_health(true);
  g.lead();
  g.advance(2s);
  g.take_request();
  g.respond(Error::not_found("deleted"));
  EXPECT_EQ(g.take_request().op, Op::kCreate);
}

TEST(StateMachineTest, StopReleasesOnlyAfterTheWorkReturned) {
  Harness h;
  Term t = h.lead();
  h.advance(1s);
  h.stop();
  EXPECT_EQ(h.take<StopLeading>().term, t);
  h.expect_no_request();
  h.advance(1500ms);  // the work takes its time: the lease is renewed meanwhile
  auto renew = h.take_request();
  EXPECT_EQ(renew.op, Op::kUpdate);
  EXPECT_EQ(renew.record.holder_identity, "a");
  EXPECT_EQ(renew.record.lease_transitions, 0);
  Instant renew_sent = h.now();
  h.respond(Versioned{"2", renew.record});
  auto renewed = h.take<Renewed>();
  EXPECT_EQ(renewed.term, t);
  EXPECT_EQ(renewed.sent_at, renew_sent);
  EXPECT_EQ(h.sm().leader_deadline(), renew_sent + 10s);
  h.work_returned();
  auto rel = h.take_request();  // one write: a compare-and-swap on the version our renewal returned
  EXPECT_EQ(rel.op, Op::kUpdate);
  EXPECT_EQ(rel.version, "2");
  EXPECT_EQ(rel.record.holder_identity, "");
  EXPECT_EQ(rel.record.lease_duration_seconds, 1);
  EXPECT_EQ(rel.record.lease_transitions, 0);
  h.respond(Versioned{"3", rel.record});
  EXPECT_EQ(h.count<Finished>(), 1);
  EXPECT_EQ(h.sm().phase(), Phase::kStopped);
  EXPECT_EQ(h.requests(), 4);  // get, create, renew, release
}

// The release's compare-and-swap refused (an edit since our renewal): read,
// and release the fresh version if it still names our term, keeping what the
// edit wrote.
TEST(StateMachineTest, AReleaseRefusedWith409ReadsAndReleasesWhatIsStillOurs) {
  Harness h;
  h.lead();
  h.stop();
  h.work_returned();
  auto first = h.take_request();
  EXPECT_EQ(first.op, Op::kUpdate);
  EXPECT_EQ(first.version, "1");
  h.respond(Error::conflict("the object has been modified"));
  EXPECT_EQ(h.take_request().op, Op::kGet);
  LeaseRecord ours = rec("3", "a", 0).record;
  ours.strategy = "OldestEmulationVersion";
  h.respond(Versioned{"3", ours});
  auto rel = h.take_request();
  EXPECT_EQ(rel.op, Op::kUpdate);
  EXPECT_EQ(rel.version, "3");
  EXPECT_EQ(rel.record.holder_identity, "");
  EXPECT_EQ(rel.record.strategy, "OldestEmulationVersion");
  // A second 409 ends the release: no loop of reads and writes.
  h.respond(Error::conflict("again"));
  h.expect_no_request();
  EXPECT_EQ(h.count<Finished>(), 1);
}

TEST(StateMachineTest, DrainingStopsHoldingWhenTheLeaseChangesUnderIt) {
  Harness h;
  h.lead();
  h.stop();
  h.take<StopLeading>();
  h.advance(2s);
  auto renew = h.take_request();
  h.respond(Error::conflict("changed"));  // an admin edit, or someone took it
  h.expect_no_request();
  h.advance(20s);
  h.expect_no_request();  // no renewals once the lease is not known to be ours
  h.work_returned();
  h.expect_no_request();  // and no release
  EXPECT_EQ(h.count<Finished>(), 1);
}

TEST(StateMachineTest, DrainingStopsHoldingWhenTheWatchShowsAnotherHolder) {
  Harness h;
  h.lead();
  h.resign();  // the work stops; the lease stays ours (renewed) until it returned
  h.take<StopLeading>();
  h.watch_read(rec("9", "b", 1));
  h.advance(5s);
  h.expect_no_request();
  h.work_returned();
  h.expect_no_request();  // b's lease is never released by us
  h.advance(5s);
  EXPECT_EQ(h.take_request().op, Op::kGet);  // a follower again: polls b's lease
}

TEST(StateMachineTest, NoReleaseWhenTheFreshReadNamesAnother) {
  Harness h;
  h.lead();
  h.stop();
  h.work_returned();
  EXPECT_EQ(h.take_request().op, Op::kUpdate);
  h.respond(Error::conflict("b took it"));
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(rec("3", "b", 1));
  h.expect_no_request();
  EXPECT_EQ(h.count<Finished>(), 1);
}

// Found by the simulator (seed 4324): a renewal sent while draining, still in
// flight when the deadline passes and the work returns, must not leave the
// elector without a timer when its answer comes.
TEST(StateMachineTest, ADrainRenewalAnsweredAfterTheTermEndsLeavesUsCampaigning) {
  Harness h;
  h.lead();
  ASSERT_TRUE(h.handoff("b"));
  h.take<StopLeading>();
  for (int i = 0; i < 3; ++i) {  // renewals while the work stops, each failing
    h.advance(2s);
    EXPECT_EQ(h.take_request().op, Op::kUpdate);
    h.respond(Error::timeout("no answer"));
  }
  h.advance(2s);
  EXPECT_EQ(h.take_request().op, Op::kUpdate);  // in flight across the deadline
  h.advance(2500ms);  // the renew deadline passes: no longer holding
  h.work_returned();
  h.expect_no_request();
  h.respond(Error::timeout("no answer"));  // the renewal's answer, after the term
  h.clear_notes();
  h.advance(5s);
  EXPECT_EQ(h.take_request().purpose, Purpose::kAcquire);  // campaigning again (CAS on the version known)
}

// Found by the simulator (seed 8823): our create refused with AlreadyExists
// proves a record whose holder we never saw; if the next read finds none, it
// was deleted under that holder, who may still be working: wait a full lease.
TEST(StateMachineTest, ARecordKnownOnlyByARefusedCreateIsWaitedOutWhenGone) {
  Harness h;
  h.start();
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(Error::not_found("none"));
  EXPECT_EQ(h.take_request().op, Op::kCreate);
  h.respond(Error::already_exists("someone else created it first"));
  EXPECT_EQ(h.take_request().op, Op::kGet);
  Instant gone = h.now();
  h.respond(Error::not_found("deleted meanwhile"));
  std::optional<Instant> created;
  for (int i = 0; i < 80 && !created; ++i) {  // answer every poll with "none" until it creates
    if (h.count<SendRequest>() == 0) {
      h.advance(250ms);
      continue;
    }
    auto r = h.take_request();
    if (r.op == Op::kCreate) created = h.now();
    else h.respond(Error::not_found("still none"));
  }
  ASSERT_TRUE(created.has_value());
  EXPECT_GE(*created - gone, 15s);  // a full lease after it was first seen gone
}

// A lease seen held by another, or freed by someone else, is lost at once
// (StopLeading::taken: no grace for the work); a deadline passing is not (the work
// may use what is left of the lease).
TEST(StateMachineTest, ALeaseTakenOrFreedBySomeoneElseIsLostAtOnce) {
  Harness taken;
  Term t = taken.lead();
  taken.watch_read(rec("9", "", 0, 1));  // an admin's release --force
  auto stop = taken.take<StopLeading>();
  EXPECT_EQ(stop.term, t);
  EXPECT_TRUE(stop.taken);

  Harness expired;
  expired.lead();
  expired.advance(11s);  // renewals unanswered: the deadline passes
  EXPECT_EQ(expired.count<StopLeading>(), 1);
  EXPECT_FALSE(expired.take<StopLeading>().taken);
}

TEST(StateMachineTest, NoReleaseWhenTheWorkOutlivesTheDeadline) {
  Harness h;
  h.lead();
  h.stop();
  for (int i = 0; i < 4; ++i) {  // renewals while the work stops, every one failing
    h.advance(2s);
    EXPECT_EQ(h.take_request().op, Op::kUpdate);
    h.respond(Error::timeout("no answer"));
  }
  h.advance(2500ms);  // past the renew deadline: neither renewal nor release
  h.expect_no_request();
  h.work_returned();
  h.expect_no_request();
  EXPECT_EQ(h.count<Finished>(), 1);
}

TEST(StateMachineTest, NoReleaseWhenReleaseOnCancelIsOff) {
  auto cfg = Harness::config();
  cfg.release_on_cancel = false;
  Harness h(cfg);
  h.lead();
  h.stop();
  h.work_returned();
  h.expect_no_request();
  EXPECT_EQ(h.count<Finished>(), 1);
}

TEST(StateMachineTest, CampaignsAgainAfterALossWithAHigherToken) {
  Harness h;
  h.watch_health(true);
  Term first = h.lead();
  h.watch_read(rec("8", "b", 1));
  h.take<StopLeading>();
  h.work_returned();
  h.clear_notes();
  h.advance(15s);  // b never renews
  auto u = h.take_request();
  EXPECT_EQ(u.version, "8");
  h.respond(Versioned{"9", u.record});
  Term second = h.take<StartLeading>().term;
  EXPECT_GT(second.transitions, first.transitions);
  EXPECT_EQ(second, (Term{2, "a"}));
}

TEST(StateMachineTest, WithoutRecampaignALossEndsTheElector) {
  auto cfg = Harness::config();
  cfg.recampaign = false;
  Harness h(cfg);
  h.lead();
  h.watch_read(rec("8", "b", 1));
  h.take<StopLeading>();
  EXPECT_EQ(h.count<Finished>(), 0);
  h.work_returned();
  EXPECT_EQ(h.count<Finished>(), 1);
  h.expect_no_request();
}

// Its holder may have renewed it, unseen by us, just before the deletion:
// a full lease from when we saw it gone, not from our last sighting.
TEST(StateMachineTest, ADeletedLeaseIsRecreatedOnlyAFullLeaseAfterItWasSeenGone) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("5", "b", 6));
  h.advance(3s);
  Instant gone = h.now();
  h.watch_read(std::nullopt);  // an admin deleted it while b still leads
  h.expect_no_request();
  h.advance(gone + 15s - h.now() - 1ms);
  h.expect_no_request();
  h.advance(1ms);
  auto c = h.take_request();
  EXPECT_EQ(c.op, Op::kCreate);
  EXPECT_EQ(c.record.lease_transitions, 7);  // numbering continues past b's term
}

// Our last sighting of b's record is older than its lease (b renewed it
// unseen: lost answers): its deletion is still waited out in full.
TEST(StateMachineTest, ADeletedRecordLastSeenExpiredIsStillWaitedOut) {
  Harness h;
  h.start();
  h.take_request();
  h.respond(rec("5", "b", 6));
  // Polls (no watch) fail until b's record looks expired to us.
  while (h.now() < Instant{} + 1000s + 16s) {
    h.advance(h.sm().next_wakeup().value() - h.now());
    EXPECT_EQ(h.take_request().op, Op::kGet);
    h.respond(Error::unavailable("answer lost"));
  }
  h.advance(h.sm().next_wakeup().value() - h.now());
  EXPECT_EQ(h.take_request().op, Op::kGet);
  Instant gone = h.now();
  h.respond(Error::not_found("deleted"));
  // Only reads (all 404) until a full lease after the deletion was seen.
  for (;;) {
    h.expect_no_request();
    Instant w = h.sm().next_wakeup().value();
    if (w >= gone + 15s) break;
    h.advance(w - h.now());
    EXPECT_EQ(h.take_request().op, Op::kGet);
    h.respond(Error::not_found("still gone"));
  }
  h.advance(gone + 15s - h.now());
  EXPECT_EQ(h.take_request().op, Op::kCreate);
}

// While waiting out a deletion the follower keeps polling: a record
// re-created meanwhile is seen (and deleted again, waited out again).
TEST(StateMachineTest, AFollowerPollsWhileWaitingOutADeletion) {
  Harness h;
  h.start();
  h.take_request();
  h.respond(rec("e1:5", "b", 6));
  h.advance(h.sm().next_wakeup().value() - h.now());
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(Error::not_found("deleted"));
  h.advance(h.sm().next_wakeup().value() - h.now());
  EXPECT_LT(h.now(), Instant{} + 1000s + 15s) << "no poll while waiting";
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(rec("e2:1", "c", 7));  // re-created by c
  ASSERT_TRUE(h.sm().observed());
  EXPECT_EQ(h.sm().observed()->record.holder_identity, "c");
  EXPECT_EQ(h.sm().observed_expiry(), h.now() + 15s);
}

TEST(StateMachineTest, ALeaderRecreatesADeletedLease) {
  Harness h;
  Term t = h.lead();
  h.watch_read(std::nullopt);
  auto c = h.take_request();
  EXPECT_EQ(c.op, Op::kCreate);
  EXPECT_EQ(c.record.holder_identity, "a");
  EXPECT_EQ(c.record.lease_transitions, t.transitions);
  h.respond(Versioned{"20", c.record});
  EXPECT_EQ(h.sm().phase(), Phase::kLeading);
  EXPECT_EQ(h.count<StopLeading>(), 0);
}

TEST(StateMachineTest, ResignReleasesAndStandsBy) {
  Harness h;
  h.watch_health(true);
  h.lead();
  h.resign();
  h.take<StopLeading>();
  h.work_returned();
  auto rel = h.take_request();  // no read first: the version our create returned
  EXPECT_EQ(rel.op, Op::kUpdate);
  EXPECT_EQ(rel.version, "1");
  EXPECT_EQ(rel.record.holder_identity, "");
  h.respond(Versioned{"4", rel.record});
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
  EXPECT_EQ(h.count<Finished>(), 0);
  h.watch(Versioned{"4", rel.record});  // our release, echoed after its answer
  h.expect_no_request();
  h.advance(1999ms);
  h.expect_no_request();  // gives the others the first chance
  h.advance(2500ms);
  EXPECT_EQ(h.take_request().op, Op::kUpdate);  // nobody took it: ours again
}

TEST(StateMachineTest, HandoffStopsTheWorkFirstThenWritesTheTargetAsHolder) {
  Harness h;
  h.watch_health(true);
  Term t = h.lead();
  EXPECT_FALSE(h.handoff(""));
  EXPECT_FALSE(h.handoff("a"));  // ourselves
  ASSERT_TRUE(h.handoff("b"));
  EXPECT_EQ(h.take<StopLeading>().term, t);
  h.expect_no_request();  // nothing is written while the work may still run
  h.advance(1s);
  h.expect_no_request();
  h.work_returned();
  auto w = h.take_request();  // one write, on the version our create returned
  EXPECT_EQ(w.op, Op::kUpdate);
  EXPECT_EQ(w.version, "1");
  EXPECT_EQ(w.record.holder_identity, "b");
  EXPECT_EQ(w.record.lease_transitions, t.transitions + 1);
  EXPECT_EQ(w.record.lease_duration_seconds, 15);  // held, not released
  EXPECT_TRUE(w.record.preferred_holder.empty());
  h.respond(Versioned{"4", w.record});
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
  EXPECT_EQ(h.count<Finished>(), 0);
  // b holds it for a full lease on our clock: one look after a retry period
  // (as after any release), then nothing until it would expire.
  h.advance(5s);
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(Versioned{"5", w.record});
  h.advance(9s);
  h.expect_no_request();
}

// Seed 25223 of the simulator: after a deletion a blind create restarted the
// numbering (term 0/b), so the handoff wrote 1/a, the same holder and number
// as a term of the deleted record; a resumed watch then replayed that older
// record. It fits what we hold (same holder, same transitions), so it is
// applied without a read: the report of the new leader must already have come
// from the handoff's own answer, not from the replayed older record.
TEST(StateMachineTest, AHandoffReportsItsTargetFromItsOwnAnswerNotFromALaterReplay) {
  ElectorConfig c = Harness::config();
  c.identity = "b";
  Harness h(c);
  h.watch_health(true);
  Term t = h.lead();  // created blind: term 0/b
  ASSERT_EQ(t.transitions, 0);
  h.clear_notes();
  ASSERT_TRUE(h.handoff("a"));
  h.take<StopLeading>();
  h.work_returned();
  auto w = h.take_request();
  ASSERT_EQ(w.op, Op::kUpdate);
  ASSERT_EQ(w.record.holder_identity, "a");
  ASSERT_EQ(w.record.lease_transitions, 1);
  h.respond(Versioned{"e2:3", w.record});
  EXPECT_EQ(h.take<NewLeader>().identity, "a") << "the handoff's target is not reported";
  EXPECT_EQ(h.sm().observed_holder(), "a");
  h.watch(rec("e1:34", "a", 1));  // term 1/a of the deleted record, replayed
  EXPECT_EQ(h.count<NewLeader>(), 0) << "a leader reported from a replayed older record";
}

TEST(StateMachineTest, HandoffIsNotWrittenWhenTheLeaseChangedMeanwhile) {
  Harness h;
  h.watch_health(true);
  h.lead();
  ASSERT_TRUE(h.handoff("b"));
  h.take<StopLeading>();
  h.work_returned();
  EXPECT_EQ(h.take_request().op, Op::kUpdate);
  h.respond(Error::conflict("changed"));
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(rec("9", "c", 7));  // someone else holds it now
  h.expect_no_request();
  EXPECT_EQ(h.sm().phase(), Phase::kFollowing);
}

TEST(StateMachineTest, APreferredHolderNamingAnotherStartsAHandoff) {
  Harness h;
  h.watch_health(true);
  Term t = h.lead();
  Versioned edited = rec("7", "a", static_cast<int32_t>(t.transitions));
  edited.record.preferred_holder = "b";
  h.watch_read(edited);
  EXPECT_EQ(h.take<StopLeading>().term, t);
  h.work_returned();
  auto w = h.take_request();  // on the edited version the read returned
  EXPECT_EQ(w.op, Op::kUpdate);
  EXPECT_EQ(w.version, "7");
  EXPECT_EQ(w.record.holder_identity, "b");
  EXPECT_TRUE(w.record.preferred_holder.empty());
}

TEST(StateMachineTest, APreferredHolderUnderACoordinatedStrategyIsNotAHandoffRequest) {
  Harness h;
  h.watch_health(true);
  Term t = h.lead();
  Versioned edited = rec("7", "a", static_cast<int32_t>(t.transitions));
  edited.record.preferred_holder = "b";
  edited.record.strategy = "OldestEmulationVersion";
  h.watch(edited);
  EXPECT_EQ(h.count<StopLeading>(), 0);
}

TEST(StateMachineTest, AFollowerNamedHolderByAHandoffConfirmsWithItsOwnWrite) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("3", "z", 4));
  h.expect_no_request();
  Versioned handed = rec("4", "a", 5);
  handed.record.preferred_holder = "a";
  h.watch(handed);  // named: confirmed by a write on the event's version, no read first
  auto w = h.take_request();
  EXPECT_EQ(w.op, Op::kUpdate);
  EXPECT_EQ(w.version, "4");
  EXPECT_EQ(w.record.holder_identity, "a");
  EXPECT_TRUE(w.record.preferred_holder.empty());
  EXPECT_EQ(h.count<StartLeading>(), 0);  // only after our own write landed
  h.respond(Versioned{"5", w.record});
  EXPECT_EQ(h.take<StartLeading>().term.transitions, 6);
}

TEST(StateMachineTest, AcquiringClearsAStalePreferredHolder) {
  Harness h;
  h.start();
  h.take_request();
  Versioned free = rec("3", "", 4, 1);
  free.record.preferred_holder = "gone-pod";
  h.respond(free);
  auto w = h.take_request();
  EXPECT_TRUE(w.record.preferred_holder.empty());
}

ElectorConfig coordinated_config() {
  ElectorConfig c = default_config();
  c.lock = "k8s://ns/app";
  c.coordinated.enabled = true;
  c.coordinated.binary_version = "1.36.0";
  return c;
}

TEST(StateMachineTest, CoordinatedNeverCreatesNorTakesAFreeOrExpiredLease) {
  Harness h(coordinated_config());
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(Error::not_found("none"));
  h.expect_no_request();  // no create: kube-apiserver makes it
  h.advance(5s);
  EXPECT_EQ(h.take_request().op, Op::kGet);  // polls for it
  Versioned free = rec("3", "", 2, 1);
  free.record.strategy = "OldestEmulationVersion";
  h.respond(free);
  h.expect_no_request();
  // A held record that expires is not taken either: only looked at again.
  h.watch_read(Versioned{"4", rec("4", "b", 3).record});
  h.expect_no_request();
  h.advance(16s);
  auto look = h.take_request();
  EXPECT_EQ(look.op, Op::kGet);
  h.respond(rec("4", "b", 3));
  h.expect_no_request();
  EXPECT_EQ(h.count<StartLeading>(), 0);
}

TEST(StateMachineTest, AFailedReadIsFollowedByARead_NeverByABlindCreate) {
  Harness h;
  h.start();
  h.take_request();
  h.respond(Error::forbidden("get leases ns/app: forbidden"));
  h.clear_notes();
  h.advance(5s);
  auto next = h.take_request();
  EXPECT_EQ(next.op, Op::kGet) << "after a failed read the state of the lease is unknown";
  h.respond(Error::not_found("none"));
  EXPECT_EQ(h.take_request().op, Op::kCreate);
}

TEST(StateMachineTest, CoordinatedLeadsOnlyOnceNamedAndStepsDownForThePreferredHolder) {
  Harness h(coordinated_config());
  h.watch_health(true);
  h.start();
  h.take_request();
  Versioned other = rec("3", "b", 2);
  other.record.strategy = "OldestEmulationVersion";
  h.respond(other);
  h.expect_no_request();
  Versioned named = rec("4", "a", 3);
  named.record.strategy = "OldestEmulationVersion";
  h.watch(named);  // kube-apiserver picked us: confirmed by one write
  auto w = h.take_request();
  EXPECT_EQ(w.op, Op::kUpdate);
  EXPECT_EQ(w.version, "4");
  EXPECT_EQ(w.record.strategy, "OldestEmulationVersion");
  h.respond(Versioned{"5", w.record});
  Term t = h.take<StartLeading>().term;
  h.clear_notes();
  Versioned preferred = Versioned{"6", w.record};
  preferred.record.preferred_holder = "c";
  h.watch_read(preferred);
  EXPECT_EQ(h.take<StopLeading>().term, t);
  h.work_returned();
  auto rel = h.take_request();
  EXPECT_EQ(rel.op, Op::kUpdate);
  EXPECT_EQ(rel.version, "6");
  EXPECT_EQ(rel.record.holder_identity, "");  // released, not handed over: the server assigns c
  EXPECT_EQ(rel.record.strategy, "OldestEmulationVersion");
}

TEST(StateMachineTest, A404OlderThanAWatchedRecordDoesNotEraseIt) {
  // Two cold candidates: our GET is answered 404 after our watch already
  // showed the other's new Lease. The Lease exists; take it at its expiry,
  // with an update, not after a second full lease.
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.watch(rec("7", "b", 0));
  h.expect_no_request();  // the read in flight is answered first
  h.respond(Error::not_found("lease not found"));
  // The 404 was sent before the watch showed the Lease: read again.
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.respond(rec("7", "b", 0));
  EXPECT_EQ(h.take<NewLeader>().identity, "b");
  h.advance(15s);
  auto w = h.take_request();
  EXPECT_EQ(w.op, Op::kUpdate) << "the watched record was forgotten";
  EXPECT_EQ(w.version, "7");
}

// Sim seed 43815: a watch resumed after a partition replayed the records it
// had missed, then their deletion, while our read was in flight. The 404
// agrees with the last event; had it been taken for older news, we would
// have updated the deleted record at its expiry, met a 404 then and waited
// out a second full lease.
TEST(StateMachineTest, A404AfterAWatchedDeletionIsBelievedEvenWhenARecordCameFirst) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("5", "b", 2));
  EXPECT_EQ(h.take<NewLeader>().identity, "b");
  h.advance(1s);
  h.watch(std::nullopt);  // deleted: read before believing it
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.watch(rec("5", "b", 2));  // replayed
  h.watch(std::nullopt);
  h.expect_no_request();
  h.respond(Error::not_found("none"));
  h.expect_no_request();
  h.advance(14s);  // b's record would expire now: it is gone, the wait is a full lease from the 404
  h.expect_no_request();
  h.advance(1s);
  EXPECT_EQ(h.take_request().op, Op::kCreate) << "the deleted record was kept";
}

TEST(StateMachineTest, StopWhileAnAcquireIsInFlightReleasesWhatWasWon) {
  Harness h;
  h.start();
  h.take_request();
  h.respond(rec("5", "", 2, 1));
  auto u = h.take_request();
  h.stop();
  h.respond(Versioned{"6", u.record});
  EXPECT_EQ(h.count<StartLeading>(), 0);
  auto rel = h.take_request();
  EXPECT_EQ(rel.op, Op::kUpdate);
  EXPECT_EQ(rel.version, "6");
  EXPECT_EQ(rel.record.holder_identity, "");
}

TEST(StateMachineTest, AStopBeforeStartFinishesAtOnce) {
  Harness h;
  h.stop();
  EXPECT_EQ(h.count<Finished>(), 1);
  h.expect_no_request();
}

TEST(StateMachineTest, ReacquiringOurOwnStaleRecordStartsANewTerm) {
  Harness h;
  h.start();
  h.take_request();
  h.respond(rec("5", "a", 4));  // a previous incarnation of us
  auto u = h.take_request();
  EXPECT_EQ(u.op, Op::kUpdate);
  EXPECT_EQ(u.record.lease_transitions, 5);
}

TEST(StateMachineTest, TransientErrorsRetryWithJitter) {
  Harness h;
  h.start();
  h.take_request();
  h.respond(Error::unavailable("connection refused"));
  Instant w = h.sm().next_wakeup().value();
  EXPECT_GE(w - h.now(), 2s);
  EXPECT_LT(w - h.now(), 4400ms);
  h.advance(w - h.now());
  EXPECT_EQ(h.take_request().op, Op::kGet);  // nothing known yet: read before writing
}

// A resumed watch replays changes the leader never saw (it took over
// through a read while its watch was down): the older holder is news only
// after a read confirms it.
TEST(StateMachineTest, AReplayedOlderHolderDoesNotUnseatALeaderThatTookOverThroughARead) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("5", "b", 3));
  h.take<NewLeader>();
  h.advance(15s);  // b expired: take it over with the version read
  auto u = h.take_request();
  ASSERT_EQ(u.version, "5");
  h.respond(Versioned{"9", u.record});
  Term t = h.take<StartLeading>().term;
  h.clear_notes();
  h.watch(rec("6", "b", 3));  // b's renewals, replayed
  EXPECT_EQ(h.count<StopLeading>(), 0) << "stepped down on older news";
  auto check = h.take_request();
  EXPECT_EQ(check.op, Op::kGet);
  h.watch(rec("7", "b", 3));         // came after the read was sent:
  h.watch(Versioned{"9", u.record});  // (our own write: nothing new)
  h.respond(Versioned{"9", u.record});
  EXPECT_EQ(h.take_request().op, Op::kGet);  // so one more read
  h.respond(Versioned{"9", u.record});
  h.expect_no_request();  // still ours, unchanged: no write
  EXPECT_EQ(h.count<StopLeading>(), 0);
  EXPECT_EQ(h.count<NewLeader>(), 0);
  EXPECT_EQ(h.sm().phase(), Phase::kLeading);
  EXPECT_EQ(h.sm().term(), t);
  h.advance(2s);
  EXPECT_EQ(h.take_request().version, "9");  // renews on the fast path
}

TEST(StateMachineTest, AReplayedWatchNeverMakesAFollowerReportAStaleHolder) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("10", "c", 5));
  EXPECT_EQ(h.take<NewLeader>().identity, "c");
  h.watch(rec("6", "b", 3));  // an older holder, replayed
  EXPECT_EQ(h.count<NewLeader>(), 0) << "reported a holder older than the one known";
  EXPECT_EQ(h.take_request().op, Op::kGet);
  h.watch(rec("7", "", 3, 1));  // b's release, replayed: not taken on its word
  h.expect_no_request();
  h.respond(rec("10", "c", 5));
  EXPECT_EQ(h.take_request().op, Op::kGet);  // the release came after that read was sent
  h.respond(rec("10", "c", 5));
  h.expect_no_request();  // c still holds it; wait for its expiry
  EXPECT_EQ(h.count<NewLeader>(), 0);
  h.watch(rec("11", "c", 5));  // c renews: applied without a read
  h.expect_no_request();
}

TEST(StateMachineTest, AWatchedChangeOfHolderIsReadBeforeItIsReported) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.respond(rec("10", "c", 5));
  h.take<NewLeader>();
  h.watch(rec("12", "d", 6));  // newer, but a watch cannot tell
  EXPECT_EQ(h.take_request().op, Op::kGet);
  EXPECT_EQ(h.count<NewLeader>(), 0);
  h.respond(rec("12", "d", 6));
  EXPECT_EQ(h.take<NewLeader>().identity, "d");
  h.expect_no_request();
}

TEST(StateMachineTest, AReadInFlightThatAgreesWithTheWatchIsNotRepeated) {
  Harness h;
  h.watch_health(true);
  h.start();
  h.take_request();
  h.watch(rec("5", "b", 3));  // the shared watch's cached Lease, before the read's answer
  h.expect_no_request();
  h.respond(rec("5", "b", 3));  // the same version: no doubt left
  EXPECT_EQ(h.take<NewLeader>().identity, "b");
  h.expect_no_request();
  EXPECT_FALSE(h.sm().rereading());
}

}  // namespace
}  // namespace leasehold::core
