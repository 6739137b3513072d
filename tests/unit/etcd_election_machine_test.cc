// The etcd:// election machines (src/etcd/election_machine.h) driven by
// hand: simulated instants, answers written out as etcd would give them.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "etcd/election_machine.h"

namespace leasehold::etcd {
namespace {

using namespace std::chrono_literals;
namespace E = election;
namespace S = session;

template <class T, class V>
const T* only(const std::vector<V>& out) {
  const T* found = nullptr;
  for (const auto& a : out) {
    if (auto* p = std::get_if<T>(&a)) {
      EXPECT_EQ(found, nullptr) << "more than one";
      found = p;
    }
  }
  return found;
}

TEST(EtcdSessionTest, TheHoldCountsFromTheSendOfTheLastKeepaliveThatLanded) {
  SessionConfig c;  // ttl 15s, renew_deadline 10s, keepalive every 5s
  SessionMachine s(c);
  Instant t0{};
  std::vector<S::Action> out;
  s.start(t0, out);
  auto* g = only<S::Grant>(out);
  ASSERT_NE(g, nullptr);
  uint64_t gid = g->id;
  out.clear();
  s.on_grant(t0 + 300ms, gid, t0, std::make_pair(int64_t{42}, Duration(15s)), out);
  auto* est = only<S::Established>(out);
  ASSERT_NE(est, nullptr);
  EXPECT_EQ(est->lease, 42);
  EXPECT_EQ(est->deadline, t0 + 10s);  // from the grant's send, not its answer
  EXPECT_EQ(s.next_wakeup(), t0 + 5s);
  out.clear();
  s.on_tick(t0 + 5s, out);
  auto* ka = only<S::KeepAlive>(out);
  ASSERT_NE(ka, nullptr);
  EXPECT_EQ(ka->lease, 42);
  uint64_t kid = ka->id;
  out.clear();
  s.on_keepalive(t0 + 9s, kid, t0 + 5s, Duration(15s), out);  // a slow answer
  auto* ext = only<S::Extended>(out);
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(ext->deadline, t0 + 15s);  // sent at 5s + 10s
  EXPECT_EQ(ext->round_trip, 4s);       // the renew latency the driver records
  EXPECT_EQ(s.next_wakeup(), t0 + 10s);
}

TEST(EtcdSessionTest, ADeadlineWithoutAKeepaliveEndsTheSessionWithoutRevokingIt) {
  SessionMachine s(SessionConfig{});
  Instant t0{};
  std::vector<S::Action> out;
  s.start(t0, out);
  uint64_t gid = only<S::Grant>(out)->id;
  out.clear();
  s.on_grant(t0, gid, t0, std::make_pair(int64_t{7}, Duration(15s)), out);
  out.clear();
  s.on_tick(t0 + 5s, out);
  uint64_t kid = only<S::KeepAlive>(out)->id;  // never answered
  out.clear();
  s.on_tick(t0 + 10s, out);
  auto* lost = only<S::Lost>(out);
  ASSERT_NE(lost, nullptr);
  EXPECT_EQ(lost->lease, 7);
  EXPECT_NE(lost->why.find("deadline"), std::string::npos) << lost->why;
  // Not revoked: a term's work may still be stopping; the lease's TTL is its margin.
  EXPECT_EQ(only<S::Revoke>(out), nullptr);
  ASSERT_NE(only<S::Grant>(out), nullptr);  // a new lease at once
  // The late answer of the old keepalive changes nothing.
  out.clear();
  s.on_keepalive(t0 + 11s, kid, t0 + 5s, Duration(15s), out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(s.lease().has_value());
}

TEST(EtcdSessionTest, AKeepaliveAnsweredWithTtlZeroOrNotFoundEndsTheSession) {
  for (int variant = 0; variant < 2; ++variant) {
    SessionMachine s(SessionConfig{});
    Instant t0{};
    std::vector<S::Action> out;
    s.start(t0, out);
    uint64_t gid = only<S::Grant>(out)->id;
    s.on_grant(t0, gid, t0, std::make_pair(int64_t{9}, Duration(15s)), out);
    out.clear();
    s.on_tick(t0 + 5s, out);
    uint64_t kid = only<S::KeepAlive>(out)->id;
    out.clear();
    if (variant == 0) {
      s.on_keepalive(t0 + 5s, kid, t0 + 5s, Duration::zero(), out);
    } else {
      s.on_keepalive(t0 + 5s, kid, t0 + 5s, Error(Code::kNotFound, "etcdserver: requested lease not found"), out);
    }
    ASSERT_NE(only<S::Lost>(out), nullptr) << variant;
  }
}

TEST(EtcdSessionTest, AGrantedTtlBelowTheAskedOneShortensTheHold) {
  SessionMachine s(SessionConfig{});
  std::vector<S::Action> out;
  Instant t0{};
  s.start(t0, out);
  uint64_t gid = only<S::Grant>(out)->id;
  out.clear();
  s.on_grant(t0, gid, t0, std::make_pair(int64_t{1}, Duration(6s)), out);
  EXPECT_EQ(only<S::Established>(out)->deadline, t0 + 4s);  // 6 s * 10/15
}

// Closed while its grant is on its way: the lease granted is revoked, not
// left to live out its TTL.
TEST(EtcdSessionTest, AGrantAnsweredAfterTheCloseIsRevoked) {
  SessionMachine s(SessionConfig{});
  std::vector<S::Action> out;
  Instant t0{};
  s.start(t0, out);
  uint64_t gid = only<S::Grant>(out)->id;
  out.clear();
  s.close(t0, out);
  EXPECT_TRUE(out.empty());
  s.on_grant(t0 + 100ms, gid, t0, std::make_pair(int64_t{77}, Duration(15s)), out);
  auto* rv = only<S::Revoke>(out);
  ASSERT_NE(rv, nullptr);
  EXPECT_EQ(rv->lease, 77);
  EXPECT_EQ(only<S::Established>(out), nullptr);
}

// 15s/4s/2s is valid on a Lease. The keepalive came every TTL/3 = 5 s and the
// hold ended at 4 s, so every session was lost before its first keepalive
// (review: a new key every 4 s, nobody leading for long).
TEST(EtcdSessionTest, AShortRenewDeadlineGetsAKeepaliveBeforeTheHoldEnds) {
  ElectorConfig e;
  e.lease_duration = 15s;
  e.renew_deadline = 4s;
  e.retry_period = 2s;
  SessionMachine s(session_config(e));
  Instant t0{};
  std::vector<S::Action> out;
  s.start(t0, out);
  uint64_t gid = only<S::Grant>(out)->id;
  out.clear();
  s.on_grant(t0, gid, t0, std::make_pair(int64_t{3}, Duration(15s)), out);
  EXPECT_EQ(only<S::Established>(out)->deadline, t0 + 4s);
  out.clear();
  ASSERT_TRUE(s.next_wakeup().has_value());
  Instant next = *s.next_wakeup();
  EXPECT_LT(next, t0 + 4s);
  s.on_tick(next, out);
  EXPECT_EQ(only<S::Lost>(out), nullptr);
  auto* ka = only<S::KeepAlive>(out);
  ASSERT_NE(ka, nullptr) << "no keepalive before the hold ended";
  uint64_t kid = ka->id;
  out.clear();
  s.on_keepalive(next + 10ms, kid, next, Duration(15s), out);
  auto* ext = only<S::Extended>(out);
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(ext->deadline, next + 4s);
  // At the defaults: every renew_deadline / 4, so a lost keepalive is sent
  // again (after its renew_deadline / 2 timeout) before the hold ends.
  EXPECT_EQ(session_config(ElectorConfig{}).keepalive_interval, 2500ms);
}

// One election, answered as etcd would.
struct Harness {
  explicit Harness(bool recampaign = true) : m("/lh/jobs", "me", recampaign) {}
  ElectionMachine m;
  std::vector<E::Action> out;
  Instant now{};

  template <class T>
  T take() {
    const T* p = only<T>(out);
    EXPECT_NE(p, nullptr) << "expected action missing";
    T copy = p ? *p : T{};
    out.clear();
    return copy;
  }
};

TEST(EtcdElectionTest, ALoneCandidateCreatesItsKeyConfirmsItAndLeads) {
  Harness h;
  h.m.start(int64_t{0x2a}, h.now + 10s, h.out);
  auto c = h.take<E::Create>();
  EXPECT_EQ(c.key, "/lh/jobs/2a");
  EXPECT_EQ(c.value, "me");
  EXPECT_EQ(c.lease, 0x2a);
  h.m.on_create(h.now, c.id, CreateAnswer{true, 100, "", 0}, h.out);
  auto f = h.take<E::FindOlder>();
  EXPECT_EQ(f.below, 100);
  EXPECT_EQ(f.own, "/lh/jobs/2a");  // read in the same Txn
  h.m.on_older(h.now, f.id, OlderAnswer{std::nullopt, 100, KeyValue{"/lh/jobs/2a", "me", 100, 100, 1, 0x2a}}, h.out);
  auto* start = only<E::StartLeading>(h.out);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->term, (Term{100, "me"}));  // fencing token = create_revision
  auto* w = only<E::WatchDeletion>(h.out);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->key, "/lh/jobs/2a");
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kLeading);
}

TEST(EtcdElectionTest, ACandidateWaitsForTheNextOlderKeyOnlyThenLooksAgain) {
  Harness h;
  h.m.start(int64_t{5}, h.now + 10s, h.out);
  auto c = h.take<E::Create>();
  h.m.on_create(h.now, c.id, CreateAnswer{true, 30, "", 0}, h.out);
  auto f = h.take<E::FindOlder>();
  h.m.on_older(h.now, f.id, OlderAnswer{KeyValue{"/lh/jobs/b", "b", 20, 20, 1, 11}, 30}, h.out);
  auto w = h.take<E::WatchDeletion>();
  EXPECT_EQ(w.key, "/lh/jobs/b");
  EXPECT_EQ(w.from_revision, 31);
  h.m.on_deletion(h.now, w.id, int64_t{35}, h.out);
  auto f2 = h.take<E::FindOlder>();  // an even older key may remain
  h.m.on_older(h.now, f2.id, OlderAnswer{KeyValue{"/lh/jobs/a", "a", 10, 10, 1, 12}, 35}, h.out);
  auto w2 = h.take<E::WatchDeletion>();
  EXPECT_EQ(w2.key, "/lh/jobs/a");
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kQueued);
}

// Go's recipe reports leadership once the older keys are gone; a candidate
// whose own key went meanwhile (its lease expired, an admin) must not lead.
TEST(EtcdElectionTest, NoLeadWhenItsOwnKeyIsGoneAtTheConfirmation) {
  Harness h;
  h.m.start(int64_t{5}, h.now + 10s, h.out);
  auto c = h.take<E::Create>();
  h.m.on_create(h.now, c.id, CreateAnswer{true, 30, "", 0}, h.out);
  auto f = h.take<E::FindOlder>();
  h.m.on_older(h.now, f.id, OlderAnswer{std::nullopt, 40, std::nullopt}, h.out);
  EXPECT_EQ(only<E::StartLeading>(h.out), nullptr);
  EXPECT_NE(only<E::Create>(h.out), nullptr);  // queues again
  // A key of the same name created anew (another create_revision) is not ours either.
  h.out.clear();
  Harness g;
  g.m.start(int64_t{5}, g.now + 10s, g.out);
  auto c2 = g.take<E::Create>();
  g.m.on_create(g.now, c2.id, CreateAnswer{true, 30, "", 0}, g.out);
  auto f2 = g.take<E::FindOlder>();
  g.m.on_older(g.now, f2.id, OlderAnswer{std::nullopt, 40, KeyValue{"/lh/jobs/5", "me", 41, 41, 1, 5}}, g.out);
  EXPECT_EQ(only<E::StartLeading>(g.out), nullptr);
}

TEST(EtcdElectionTest, NoLeadPastTheSessionDeadline) {
  Harness h;
  h.m.start(int64_t{5}, h.now + 10s, h.out);
  auto c = h.take<E::Create>();
  h.m.on_create(h.now, c.id, CreateAnswer{true, 30, "", 0}, h.out);
  auto f = h.take<E::FindOlder>();
  h.m.on_older(h.now + 10s, f.id, OlderAnswer{std::nullopt, 30, KeyValue{"/lh/jobs/5", "me", 30, 30, 1, 5}}, h.out);
  EXPECT_EQ(only<E::StartLeading>(h.out), nullptr);
}

struct Leading : Harness {
  explicit Leading(bool recampaign = true) : Harness(recampaign) {
    m.start(int64_t{5}, now + 10s, out);
    auto c = take<E::Create>();
    m.on_create(now, c.id, CreateAnswer{true, 30, "", 0}, out);
    auto f = take<E::FindOlder>();
    m.on_older(now, f.id, OlderAnswer{std::nullopt, 30, KeyValue{"/lh/jobs/5", "me", 30, 30, 1, 5}}, out);
    own_watch = only<E::WatchDeletion>(out)->id;
    out.clear();
  }
  uint64_t own_watch = 0;
};

TEST(EtcdElectionTest, TheLeaderStopsAtTheSessionDeadlineAndLeadsAgainOnlyAfterTheWorkReturned) {
  Leading h;
  EXPECT_EQ(h.m.next_wakeup(), h.now + 10s);
  h.m.on_session_extended(5, h.now + 15s);
  EXPECT_EQ(h.m.next_wakeup(), h.now + 15s);
  h.m.on_tick(h.now + 15s, h.out);
  ASSERT_NE(only<E::StopLeading>(h.out), nullptr);
  h.out.clear();
  // The session is lost and a new one made while the work still runs.
  h.m.on_session_lost(5, "deadline", h.out);
  h.m.on_session(6, h.now + 30s, h.out);
  EXPECT_TRUE(h.out.empty());  // still stopping: no campaign yet
  h.m.on_work_returned(h.now + 16s, h.out);
  auto c = h.take<E::Create>();
  EXPECT_EQ(c.key, "/lh/jobs/6");
}

// The deletion seen on the leader's watch ends the term at once: the next
// candidate sees the same event and may lead one round trip later.
TEST(EtcdElectionTest, TheLeaderStopsWhenItsKeyIsDeletedAndQueuesAgain) {
  Leading h;
  h.m.on_deletion(h.now + 1s, h.own_watch, int64_t{50}, h.out);
  ASSERT_NE(only<E::StopLeading>(h.out), nullptr);
  EXPECT_EQ(only<E::ReadOwn>(h.out), nullptr);
  h.out.clear();
  h.m.on_work_returned(h.now + 2s, h.out);
  EXPECT_NE(only<E::Create>(h.out), nullptr);
}

TEST(EtcdElectionTest, ABrokenOwnKeyWatchReadsTheKeyAndWatchesAgain) {
  Leading h;
  h.m.on_deletion(h.now + 1s, h.own_watch, Error::unavailable("stream ended"), h.out);
  auto r = h.take<E::ReadOwn>();
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kLeading);
  h.m.on_own(h.now + 1s, r.id, OwnAnswer{KeyValue{"/lh/jobs/5", "me", 30, 30, 1, 5}, 900}, h.out);
  auto w = h.take<E::WatchDeletion>();
  EXPECT_EQ(w.from_revision, 901);  // after the read, not after the key's creation (compaction may be past it)
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kLeading);
}

// While its own-key watch is broken the leader cannot see an admin delete
// its key: keepalives do not extend the term until a read confirms the key
// (simulator seed 7052: a partitioned leader, its key deleted, led past the
// deletion for as long as its keepalives landed).
TEST(EtcdElectionTest, ABrokenOwnKeyWatchFreezesTheTermUntilTheKeyIsConfirmed) {
  Leading h;
  h.m.on_deletion(h.now + 1s, h.own_watch, Error::unavailable("stream ended"), h.out);
  auto r = h.take<E::ReadOwn>();
  h.m.on_session_extended(5, h.now + 12s);
  EXPECT_EQ(h.m.deadline(), h.now + 10s);  // not extended
  h.m.on_own(h.now + 2s, r.id, Error::timeout("partitioned"), h.out);
  h.m.on_tick(h.now + 10s, h.out);
  ASSERT_NE(only<E::StopLeading>(h.out), nullptr);

  Leading g;
  g.m.on_deletion(g.now + 1s, g.own_watch, Error::unavailable("stream ended"), g.out);
  auto r2 = g.take<E::ReadOwn>();
  g.m.on_session_extended(5, g.now + 12s);
  g.m.on_own(g.now + 2s, r2.id, OwnAnswer{KeyValue{"/lh/jobs/5", "me", 30, 40, 1, 5}, 45}, g.out);
  EXPECT_EQ(g.m.deadline(), g.now + 12s);  // confirmed: the session's deadline again
  g.m.on_session_extended(5, g.now + 14s);
  EXPECT_EQ(g.m.deadline(), g.now + 14s);
}

// A watch that fails at once (review: a key older than the store's
// compaction was watched from its creation, canceled as compacted, read and
// watched again, ~10 times a second) waits kRetry before the next read.
TEST(EtcdElectionTest, AnOwnKeyWatchThatFailsAgainAtOnceWaitsBeforeTheNextRead) {
  Leading h;
  h.m.on_deletion(h.now + 1s, h.own_watch, Error(Code::kGone, "compacted"), h.out);
  auto r = h.take<E::ReadOwn>();
  h.m.on_own(h.now + 1s, r.id, OwnAnswer{KeyValue{"/lh/jobs/5", "me", 30, 30, 1, 5}, 900}, h.out);
  auto w = h.take<E::WatchDeletion>();
  h.m.on_deletion(h.now + 1s + 10ms, w.id, Error(Code::kGone, "compacted"), h.out);
  EXPECT_EQ(only<E::ReadOwn>(h.out), nullptr);
  EXPECT_EQ(h.m.next_wakeup(), h.now + 2s + 10ms);
  h.m.on_tick(h.now + 2s + 10ms, h.out);
  EXPECT_NE(only<E::ReadOwn>(h.out), nullptr);
}

// A term that ended at its deadline while its key may remain deletes the key
// and queues again: the next term has a new key and a higher token.
TEST(EtcdElectionTest, ATermEndedAtItsDeadlineRequeuesWithANewKey) {
  Leading h;
  h.m.on_tick(h.now + 10s, h.out);
  ASSERT_NE(only<E::StopLeading>(h.out), nullptr);
  h.out.clear();
  h.m.on_session_extended(5, h.now + 20s);  // a late keepalive landed: the session lives
  h.m.on_work_returned(h.now + 11s, h.out);
  auto d = h.take<E::DeleteOwn>();
  EXPECT_EQ(d.revision, 30);
  h.m.on_deleted_own(h.now + 11s, d.id, true, h.out);
  auto c = h.take<E::Create>();
  EXPECT_EQ(c.key, "/lh/jobs/5");
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kCreating);
}

// A requeue's deletion still on its way when the session is lost: the key
// went with the lease, and the election campaigns on the next session (it
// once finished, as if stopped, and the sidecar exited).
TEST(EtcdElectionTest, ASessionLostDuringARequeueCampaignsOnTheNextSession) {
  Leading h;
  h.m.resign(h.now + 1s, h.out);
  ASSERT_NE(only<E::StopLeading>(h.out), nullptr);
  h.out.clear();
  h.m.on_work_returned(h.now + 1s, h.out);
  h.take<E::DeleteOwn>();  // never answered: a partition
  h.m.on_session_lost(5, "no keepalive landed before its deadline", h.out);
  EXPECT_EQ(only<E::Finished>(h.out), nullptr);
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kNoSession);
  h.out.clear();
  h.m.on_session(6, h.now + 30s, h.out);
  EXPECT_EQ(h.take<E::Create>().key, "/lh/jobs/6");
}

// recampaign = false: the first term's end is the election's, whatever ended
// it (it once queued again, unlike on a Lease).
TEST(EtcdElectionTest, WithoutRecampaignALostTermEndsTheElection) {
  Leading deadline(false);
  deadline.m.on_tick(deadline.now + 10s, deadline.out);
  ASSERT_NE(only<E::StopLeading>(deadline.out), nullptr);
  deadline.out.clear();
  deadline.m.on_work_returned(deadline.now + 11s, deadline.out);
  auto d = deadline.take<E::DeleteOwn>();  // the key may remain: deleted, not left to block the others
  deadline.m.on_deleted_own(deadline.now + 11s, d.id, true, deadline.out);
  EXPECT_NE(only<E::Finished>(deadline.out), nullptr);
  EXPECT_EQ(only<E::Create>(deadline.out), nullptr);

  Leading deleted(false);
  deleted.m.on_deletion(deleted.now + 1s, deleted.own_watch, int64_t{50}, deleted.out);
  ASSERT_NE(only<E::StopLeading>(deleted.out), nullptr);
  deleted.out.clear();
  deleted.m.on_work_returned(deleted.now + 2s, deleted.out);
  EXPECT_NE(only<E::Finished>(deleted.out), nullptr);
  EXPECT_EQ(deleted.m.phase(), ElectionMachine::Phase::kFinished);
}

// A create that timed out may have landed: a stop before its retry deletes
// the key by name (no revision to compare).
TEST(EtcdElectionTest, AStopBeforeACreateRetryDeletesTheKeyByName) {
  Harness h;
  h.m.start(int64_t{5}, h.now + 10s, h.out);
  auto c = h.take<E::Create>();
  h.m.on_create(h.now + 3s, c.id, Error::timeout("no answer"), h.out);
  EXPECT_TRUE(h.out.empty());
  h.m.stop(h.now + 3s, h.out);
  auto d = h.take<E::DeleteOwn>();
  EXPECT_EQ(d.key, "/lh/jobs/5");
  EXPECT_EQ(d.revision, 0);
  h.m.on_deleted_own(h.now + 3s, d.id, true, h.out);
  EXPECT_NE(only<E::Finished>(h.out), nullptr);
}

// Stopped while its create was on its way, then the session is lost: the key
// went with the lease, so the stop finishes (it once waited forever).
TEST(EtcdElectionTest, AStopFinishesWhenTheSessionIsLostMeanwhile) {
  Harness h;
  h.m.start(int64_t{5}, h.now + 10s, h.out);
  h.take<E::Create>();
  h.m.stop(h.now, h.out);
  EXPECT_TRUE(h.out.empty());  // waits for the create's answer
  h.m.on_session_lost(5, "gone", h.out);
  EXPECT_NE(only<E::Finished>(h.out), nullptr);
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kFinished);
}

TEST(EtcdElectionTest, AStopDeletesTheKeyByItsCreateRevisionAfterTheWorkReturned) {
  Leading h;
  h.m.stop(h.now + 1s, h.out);
  ASSERT_NE(only<E::StopLeading>(h.out), nullptr);
  h.out.clear();
  h.m.on_work_returned(h.now + 2s, h.out);
  auto d = h.take<E::DeleteOwn>();
  EXPECT_EQ(d.key, "/lh/jobs/5");
  EXPECT_EQ(d.revision, 30);
  h.m.on_deleted_own(h.now + 2s, d.id, true, h.out);
  EXPECT_NE(only<E::Finished>(h.out), nullptr);
}

// A user allowed to read but not to delete: the stop must still finish
// (review: `leasehold run` never exited on SIGTERM); a passing failure is retried.
TEST(EtcdElectionTest, AStopWhoseDeletionIsRefusedForGoodFinishes) {
  Leading h;
  h.m.stop(h.now + 1s, h.out);
  h.out.clear();
  h.m.on_work_returned(h.now + 2s, h.out);
  auto d = h.take<E::DeleteOwn>();
  h.m.on_deleted_own(h.now + 2s, d.id, Error::unavailable("no leader"), h.out);
  EXPECT_EQ(only<E::Finished>(h.out), nullptr);
  h.m.on_tick(h.now + 3s, h.out);
  auto d2 = h.take<E::DeleteOwn>();
  h.m.on_deleted_own(h.now + 3s, d2.id, Error::forbidden("etcdserver: permission denied"), h.out);
  EXPECT_NE(only<E::Finished>(h.out), nullptr);
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kFinished);
}

TEST(EtcdElectionTest, ALateAnswerToAnAbandonedRequestIsIgnored) {
  Harness h;
  h.m.start(int64_t{5}, h.now + 10s, h.out);
  auto c = h.take<E::Create>();
  h.m.on_create(h.now, c.id, CreateAnswer{true, 30, "", 0}, h.out);
  auto f = h.take<E::FindOlder>();
  h.m.on_session_lost(5, "gone", h.out);
  h.m.on_older(h.now, f.id, OlderAnswer{std::nullopt, 30}, h.out);
  EXPECT_TRUE(h.out.empty());
  EXPECT_EQ(h.m.phase(), ElectionMachine::Phase::kNoSession);
}

}  // namespace
}  // namespace leasehold::etcd
