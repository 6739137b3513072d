// The etcd:// election as pure state machines (issue 16): no I/O, no clock
// reads, no threads. The driver sends the requests they ask for and feeds
// back the answers; unit tests and the simulator drive the same code.
//
// The layout is Go's concurrency.Election, byte for byte, so leasehold and
// Go candidates share one election:
//  * each candidate owns the key PREFIX/<its session lease ID in lower-case
//    hex>, created by a Txn that succeeds only if the key's create_revision
//    is 0, and bound to its session lease (the key dies with the lease);
//  * the leader is the key with the lowest create_revision under PREFIX/;
//  * a candidate waits for the deletion of the next-older key only (the key
//    with the highest create_revision below its own), then looks again: no
//    herd of watchers wakes at each change;
//  * the fencing token (Term::transitions) is the leader key's
//    create_revision: it increases with every new leader key.
//
// Correctness model:
//  * SessionMachine: the server expires a lease no earlier than TTL after it
//    received the last keepalive, which it received after we sent it. So our
//    hold is valid until sent_at(last successful keepalive, or the grant) +
//    renew_deadline, renew_deadline < TTL; the gap absorbs clock-rate drift.
//    A keepalive answered with TTL 0 (or missing) means the lease is gone:
//    the session ends at once. A session whose deadline passed is not
//    revoked: its lease expires at its TTL, which leaves the term's work the
//    TTL - renew_deadline margin to stop before another candidate can lead.
//  * ElectionMachine: a candidate leads only after one read (a Txn of two
//    ranges, so of one revision R at or after its own key's creation) shows
//    (1) no older key under PREFIX/ and (2) its own key with the same
//    create_revision and our session lease, while the session deadline has
//    not passed. (2) closes the gap in Go's recipe, which reports leadership
//    once the older keys are gone even if its own key went with an expired
//    session. After R, the key can go only by an admin's deletion (seen on
//    the leader's own-key watch, from R + 1) or with the lease (not before
//    our deadline).
//  * A stop whose key deletion is refused for good (Forbidden, Unauthorized,
//    Invalid) finishes anyway: the key goes with the session lease.
//  * A leader stops when its session's deadline passes, when the session is
//    reported lost, or when a watch of its own key shows it deleted (an
//    admin, or the lease expired). While that watch is broken, keepalives
//    do not extend the term: it ends at the session deadline it had when
//    the watch broke unless a read confirms the key first. It starts no new term until the work of
//    the previous one returned. A term that ended while its key may remain
//    (the deadline passed, the session not yet lost) deletes that key and
//    queues again: every term has a new key, so tokens strictly increase.
//  * Every read or watch answer is applied only if it belongs to the request
//    in flight (request ids): a late answer to an abandoned request is
//    ignored.
//
// Threading: none; one owner calls each machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "etcd/gateway_codec.h"  // lease_hex
#include "leasehold/clock.h"
#include "leasehold/config.h"
#include "leasehold/error.h"
#include "leasehold/record.h"

namespace leasehold::etcd {

// ---- the session: one lease shared by every election of a Runtime ----

struct SessionConfig {
  Duration ttl = std::chrono::seconds(15);            // granted TTL asked for (whole seconds, >= 2 s)
  Duration renew_deadline = std::chrono::seconds(10);  // hold valid until sent_at + this (< ttl)
  Duration keepalive_interval = std::chrono::seconds(5);  // see session_config()
  Duration retry_period = std::chrono::seconds(2);     // after a failed grant or keepalive
};

// An elector's timings as its session's: TTL lease_duration, a keepalive
// every lease_duration / 3 (as Go's concurrency.Session) or every
// renew_deadline / 4 when that is sooner (2.5 s at 15s/10s/2s). A keepalive
// that lands holds renew_deadline from its send; the next is sent a quarter
// of that later, so one whose request or answer is lost times out (at
// renew_deadline / 2) and is sent again before the hold ends.
SessionConfig session_config(const ElectorConfig& c);

namespace session {
struct Grant {        // POST /v3/lease/grant {TTL}
  uint64_t id = 0;
};
struct KeepAlive {    // POST /v3/lease/keepalive {ID}
  uint64_t id = 0;
  int64_t lease = 0;
};
struct Revoke {       // POST /v3/lease/revoke {ID}
  int64_t lease = 0;
};
struct Established {  // a new lease: elections campaign on it
  int64_t lease = 0;
  Instant deadline{};
};
struct Extended {     // a keepalive landed: the hold is valid until `deadline`
  int64_t lease = 0;
  Instant deadline{};
  Duration round_trip{};  // from the keepalive's send to its answer
};
struct Lost {         // the lease is gone or its deadline passed
  int64_t lease = 0;
  std::string why;
};
using Action = std::variant<Grant, KeepAlive, Revoke, Established, Extended, Lost>;
}  // namespace session

class SessionMachine {
 public:
  explicit SessionMachine(SessionConfig c) : cfg_(c) {}

  // Sends the grant (once; later grants follow a loss by themselves).
  void start(Instant now, std::vector<session::Action>& out);
  // The grant `id` sent at `sent_at` was answered: the lease ID and granted
  // TTL. An answer to a request no longer awaited is ignored.
  void on_grant(Instant now, uint64_t id, Instant sent_at, Result<std::pair<int64_t, Duration>> r,
                std::vector<session::Action>& out);
  // The keepalive `id` sent at `sent_at` was answered with this TTL (0: the
  // lease is gone; so is a NotFound error).
  void on_keepalive(Instant now, uint64_t id, Instant sent_at, Result<Duration> ttl,
                    std::vector<session::Action>& out);
  // The time of next_wakeup() has come.
  void on_tick(Instant now, std::vector<session::Action>& out);
  // No election needs the lease any more: revoke it (its keys go with it).
  void close(Instant now, std::vector<session::Action>& out);

  std::optional<Instant> next_wakeup() const;
  std::optional<int64_t> lease() const { return lease_; }
  Instant deadline() const { return deadline_; }
  bool request_in_flight() const { return in_flight_ != 0; }

 private:
  void lose(std::string why, Instant now, std::vector<session::Action>& out);
  uint64_t send(std::vector<session::Action>& out, bool grant);

  SessionConfig cfg_;
  std::optional<int64_t> lease_;
  Instant deadline_{};
  Instant next_keepalive_{};
  Duration keepalive_every_{};  // keepalive_interval, scaled down with a shorter granted TTL
  std::optional<Instant> retry_at_;  // a grant after a failure or a loss
  uint64_t ids_ = 0, in_flight_ = 0;
  bool closed_ = false;
  bool started_ = false;
};

// ---- one election ----

// KeyValue: etcd/gateway_codec.h.

namespace election {
// Txn: if create_revision(key) == 0 then put(key, value, lease) else get(key).
struct Create {
  uint64_t id = 0;
  std::string key, value;
  int64_t lease = 0;
};
// One Txn (no compare), so both reads are of one revision: the next-older
// key, if any (the key under PREFIX/ with the highest create_revision
// strictly below `below`; etcd: max_create_revision = below - 1, sorted by
// create_revision descending, limit 1), and our own key `own`.
struct FindOlder {
  uint64_t id = 0;
  int64_t below = 0;
  std::string own;
};
// Watch `key` from `from_revision` until it is deleted.
struct WatchDeletion {
  uint64_t id = 0;
  std::string key;
  int64_t from_revision = 0;
};
// Range `key`: confirms our own key before leading.
struct ReadOwn {
  uint64_t id = 0;
  std::string key;
};
// Txn: if create_revision(key) == revision then delete(key); revision 0:
// delete(key) with no compare (the key is named after our own lease, so no
// one else's key has that name).
struct DeleteOwn {
  uint64_t id = 0;
  std::string key;
  int64_t revision = 0;
};
struct StartLeading {
  Term term;  // transitions = our key's create_revision, holder = our value
};
struct StopLeading {
  std::string why;
};
struct Finished {};
using Action = std::variant<Create, FindOlder, WatchDeletion, ReadOwn, DeleteOwn, StartLeading, StopLeading,
                            Finished>;
}  // namespace election

// The answer to Create: whether the put happened, the key's create_revision
// (the header revision of a put; the existing key's otherwise) and the
// value and lease the existing key holds.
struct CreateAnswer {
  bool created = false;
  int64_t create_revision = 0;
  std::string value;
  int64_t lease = 0;
};
// The answer to FindOlder: the next-older key if any, and the revision the
// answer was read at (a watch of that key starts after it), and our own key
// as of that revision.
struct OlderAnswer {
  std::optional<KeyValue> older;
  int64_t header_revision = 0;
  std::optional<KeyValue> own{};
};

// The answer to ReadOwn: our key (if there) and the revision the read was
// served at (a watch of the key starts after it: a key created long ago may
// be older than the store's compaction).
struct OwnAnswer {
  std::optional<KeyValue> kv{};
  int64_t header_revision = 0;
};

class ElectionMachine {
 public:
  enum class Phase {
    kIdle,        // not started
    kNoSession,   // waiting for a session lease
    kCreating,    // Create in flight
    kQueued,      // FindOlder or WatchDeletion in flight
    kConfirming,  // no older key, our key confirmed: waiting for the previous term's work (or a ReadOwn after it)
    kLeading,     // our term's work runs
    kStopping,    // StopLeading emitted; waiting for the work to return
    kReleasing,   // DeleteOwn in flight (after a stop, or before queueing again)
    kFinished,
  };

  // One machine per PREFIX per session: two elections of one Runtime on one
  // PREFIX would share the key PREFIX/<lease> (the driver refuses that).
  // `recampaign` false: a term that ends for any reason ends the election
  // too (ElectorConfig::recampaign, as the Lease driver).
  ElectionMachine(std::string prefix, std::string value, bool recampaign = true)
      : prefix_(std::move(prefix)), value_(std::move(value)), recampaign_(recampaign) {}

  void start(std::optional<int64_t> session_lease, Instant session_deadline, std::vector<election::Action>& out);
  // Session events (from SessionMachine).
  void on_session(int64_t lease, Instant deadline, std::vector<election::Action>& out);
  void on_session_extended(int64_t lease, Instant deadline);
  void on_session_lost(int64_t lease, const std::string& why, std::vector<election::Action>& out);

  // Answers; `id` is the request's. Errors retry at the next tick (after retry_at()).
  void on_create(Instant now, uint64_t id, Result<CreateAnswer> r, std::vector<election::Action>& out);
  void on_older(Instant now, uint64_t id, Result<OlderAnswer> r, std::vector<election::Action>& out);
  // The watched key was deleted (ok), or the watch failed (an error: compacted,
  // broken stream), in which case the machine reads again.
  void on_deletion(Instant now, uint64_t id, Result<int64_t> deleted_at, std::vector<election::Action>& out);
  void on_own(Instant now, uint64_t id, Result<OwnAnswer> r, std::vector<election::Action>& out);
  void on_deleted_own(Instant now, uint64_t id, Result<bool> r, std::vector<election::Action>& out);
  // While leading: a watch of our own key showed it deleted.
  void on_own_key_deleted(Instant now, std::vector<election::Action>& out);
  // The term's work returned, after StopLeading (the driver reports work
  // that returns earlier only once the term has ended, as the Lease driver
  // does: the term holds until it ends).
  void on_work_returned(Instant now, std::vector<election::Action>& out);
  // Stop: end the term (if any), delete our key once the work returned, finish.
  void stop(Instant now, std::vector<election::Action>& out);
  // Leader only: end the term; once the work returned, delete our key and
  // queue again with a new one (the next candidate leads meanwhile).
  void resign(Instant now, std::vector<election::Action>& out);
  // The session deadline or a retry time has come.
  void on_tick(Instant now, std::vector<election::Action>& out);

  std::optional<Instant> next_wakeup() const;
  Phase phase() const { return phase_; }
  bool work_running() const { return work_running_; }
  const std::string& own_key() const { return key_; }
  int64_t own_revision() const { return rev_; }
  uint64_t in_flight() const { return in_flight_; }
  // The id of the leader's watch of its own key (0: none); with in_flight(),
  // the only watch ids whose answers the machine still takes.
  uint64_t own_watch() const { return own_watch_; }
  // The session deadline the machine leads by (on the owner's clock).
  Instant deadline() const { return deadline_; }

  static constexpr Duration kRetry = std::chrono::seconds(1);

 private:
  void campaign(std::vector<election::Action>& out);
  // Our key as read (with no older key at that revision): lead, queue again,
  // or wait for the previous term's work.
  void confirm(Instant now, const std::optional<KeyValue>& kv, int64_t read_at, std::vector<election::Action>& out);
  void find_older(std::vector<election::Action>& out);
  void end_term(const std::string& why, std::vector<election::Action>& out);
  void after_work(std::vector<election::Action>& out);
  bool answers(uint64_t id) const { return id != 0 && id == in_flight_; }
  uint64_t next_id() { return in_flight_ = ++ids_; }

  std::string prefix_, value_;
  bool recampaign_ = true;
  Phase phase_ = Phase::kIdle;
  std::optional<int64_t> lease_;
  Instant deadline_{};          // the term's: the session's, frozen while our key is unconfirmed
  Instant session_deadline_{};  // the session's latest
  std::string key_;
  int64_t rev_ = 0;
  uint64_t ids_ = 0, in_flight_ = 0;
  bool work_running_ = false;
  bool stop_requested_ = false;
  bool own_key_gone_ = false;  // our key was seen deleted while leading
  uint64_t own_watch_ = 0;      // the leader's watch of its own key
  bool confirming_lead_ = false;  // a leader's ReadOwn after its watch ended
  std::optional<Instant> retry_at_;
  std::optional<Instant> last_watch_error_;  // when a watch last ended with an error
  // Records a watch error at `now`; true if the one before was less than kRetry ago.
  bool watch_failed_again(Instant now) {
    bool again = last_watch_error_ && *last_watch_error_ + kRetry > now;
    last_watch_error_ = now;
    return again;
  }
};

}  // namespace leasehold::etcd
