#include "etcd/election_machine.h"

#include <algorithm>

namespace leasehold::etcd {

// ---- SessionMachine ----

SessionConfig session_config(const ElectorConfig& c) {
  return {.ttl = c.lease_duration,
          .renew_deadline = c.renew_deadline,
          .keepalive_interval = std::min(c.lease_duration / 3, c.renew_deadline / 4),
          .retry_period = c.retry_period};
}

namespace {
// How long a keepalive (or the grant) that landed holds, given the TTL the
// server granted: renew_deadline, shortened in proportion when the server
// granted less than we asked.
Duration hold_for(const SessionConfig& c, Duration granted) {
  if (granted >= c.ttl) return c.renew_deadline;
  return std::chrono::duration_cast<Duration>(granted * (static_cast<double>(c.renew_deadline.count()) /
                                                          static_cast<double>(c.ttl.count())));
}
}  // namespace

void SessionMachine::start(Instant now, std::vector<session::Action>& out) {
  if (started_ || closed_) return;
  started_ = true;
  retry_at_ = now;
  on_tick(now, out);
}

uint64_t SessionMachine::send(std::vector<session::Action>& out, bool grant) {
  in_flight_ = ++ids_;
  if (grant) {
    out.push_back(session::Grant{in_flight_});
  } else {
    out.push_back(session::KeepAlive{in_flight_, *lease_});
  }
  return in_flight_;
}

void SessionMachine::on_grant(Instant now, uint64_t id, Instant sent_at, Result<std::pair<int64_t, Duration>> r,
                              std::vector<session::Action>& out) {
  if (id == 0 || id != in_flight_) return;
  in_flight_ = 0;
  if (!r) {
    retry_at_ = now + cfg_.retry_period;
    return;
  }
  auto [lease, granted] = *r;
  if (closed_) {
    out.push_back(session::Revoke{lease});
    return;
  }
  Duration hold = hold_for(cfg_, granted);
  if (sent_at + hold <= now) {
    // The answer took longer than the hold: the lease may already be close
    // to its end on the server. Give it back and ask again.
    out.push_back(session::Revoke{lease});
    retry_at_ = now;
    return;
  }
  lease_ = lease;
  deadline_ = sent_at + hold;
  // A shorter TTL than asked shortens the keepalive interval in proportion.
  keepalive_every_ = granted >= cfg_.ttl
                         ? cfg_.keepalive_interval
                         : std::chrono::duration_cast<Duration>(
                               cfg_.keepalive_interval * (static_cast<double>(granted.count()) /
                                                          static_cast<double>(cfg_.ttl.count())));
  next_keepalive_ = sent_at + keepalive_every_;
  retry_at_.reset();
  out.push_back(session::Established{lease, deadline_});
}

void SessionMachine::on_keepalive(Instant now, uint64_t id, Instant sent_at, Result<Duration> ttl,
                                  std::vector<session::Action>& out) {
  if (id == 0 || id != in_flight_) return;
  in_flight_ = 0;
  if (!lease_ || closed_) return;
  if (!ttl) {
    if (ttl.error().is(Code::kNotFound)) {
      lose("etcd no longer has lease " + lease_hex(*lease_) + ": " + ttl.error().message(), now, out);
      return;
    }
    // Soon: a keepalive every TTL/3 leaves little room before the deadline.
    next_keepalive_ = now + cfg_.retry_period / 4;
    return;
  }
  if (*ttl <= Duration::zero()) {
    lose("etcd answered the keepalive of lease " + lease_hex(*lease_) + " with TTL 0: it has expired", now, out);
    return;
  }
  deadline_ = std::max(deadline_, sent_at + hold_for(cfg_, *ttl));
  next_keepalive_ = sent_at + keepalive_every_;
  out.push_back(session::Extended{*lease_, deadline_, now - sent_at});
}

void SessionMachine::on_tick(Instant now, std::vector<session::Action>& out) {
  if (closed_) return;
  if (lease_ && now >= deadline_) {
    lose("no keepalive of lease " + lease_hex(*lease_) + " landed before its deadline", now, out);
  }
  if (in_flight_) return;
  if (!lease_) {
    if (retry_at_ && now >= *retry_at_) {
      retry_at_.reset();
      send(out, true);
    }
    return;
  }
  if (now >= next_keepalive_) send(out, false);
}

void SessionMachine::lose(std::string why, Instant now, std::vector<session::Action>& out) {
  int64_t lease = *lease_;
  lease_.reset();
  in_flight_ = 0;  // a late answer for the old lease is ignored
  out.push_back(session::Lost{lease, std::move(why)});
  // Not revoked: a term's work may still be stopping, and the lease's TTL -
  // renew_deadline past our deadline is its margin (see the header). A new
  // lease follows at once.
  retry_at_ = now;
}

void SessionMachine::close(Instant, std::vector<session::Action>& out) {
  if (closed_) return;
  closed_ = true;
  // A grant still in flight stays awaited: its lease is revoked when it comes.
  retry_at_.reset();
  if (lease_) out.push_back(session::Revoke{*lease_});
  lease_.reset();
}

std::optional<Instant> SessionMachine::next_wakeup() const {
  if (closed_) return std::nullopt;
  if (lease_) {
    Instant t = deadline_;
    if (!in_flight_) t = std::min(t, next_keepalive_);
    return t;
  }
  if (!in_flight_ && retry_at_) return retry_at_;
  return std::nullopt;
}

// ---- ElectionMachine ----

using namespace election;

void ElectionMachine::start(std::optional<int64_t> lease, Instant deadline, std::vector<Action>& out) {
  if (phase_ != Phase::kIdle) return;
  phase_ = Phase::kNoSession;
  if (lease) on_session(*lease, deadline, out);
}

void ElectionMachine::on_session(int64_t lease, Instant deadline, std::vector<Action>& out) {
  lease_ = lease;
  deadline_ = session_deadline_ = deadline;
  if (phase_ == Phase::kNoSession && !stop_requested_) campaign(out);
}

void ElectionMachine::on_session_extended(int64_t lease, Instant deadline) {
  if (!lease_ || *lease_ != lease) return;
  session_deadline_ = std::max(session_deadline_, deadline);
  // A leader whose own-key watch broke does not know whether its key is
  // still there: its term is not extended until a read confirms the key.
  if (!confirming_lead_) deadline_ = session_deadline_;
}

void ElectionMachine::on_session_lost(int64_t lease, const std::string& why, std::vector<Action>& out) {
  if (!lease_ || *lease_ != lease) return;
  lease_.reset();
  retry_at_.reset();
  switch (phase_) {
    case Phase::kLeading:
      own_key_gone_ = true;  // it goes with the lease
      end_term("session lost: " + why, out);
      break;
    case Phase::kCreating:
    case Phase::kQueued:
    case Phase::kConfirming:
      in_flight_ = 0;
      if (stop_requested_) {  // our key goes with the lease
        phase_ = Phase::kFinished;
        out.push_back(Finished{});
      } else {
        phase_ = Phase::kNoSession;
      }
      break;
    case Phase::kReleasing:
      // The key goes with the lease: nothing left to release. A stop is
      // done; a requeue campaigns on the next session.
      in_flight_ = 0;
      if (stop_requested_) {
        phase_ = Phase::kFinished;
        out.push_back(Finished{});
      } else {
        phase_ = Phase::kNoSession;
      }
      break;
    case Phase::kStopping:
      own_key_gone_ = true;
      break;
    default:
      break;
  }
}

void ElectionMachine::campaign(std::vector<Action>& out) {
  deadline_ = session_deadline_;  // a deadline frozen in the last term does not carry over
  key_ = prefix_ + "/" + lease_hex(*lease_);
  rev_ = 0;
  own_key_gone_ = false;
  phase_ = Phase::kCreating;
  out.push_back(Create{next_id(), key_, value_, *lease_});
}

void ElectionMachine::find_older(std::vector<Action>& out) {
  phase_ = Phase::kQueued;
  out.push_back(FindOlder{next_id(), rev_, key_});
}

void ElectionMachine::on_create(Instant now, uint64_t id, Result<CreateAnswer> r, std::vector<Action>& out) {
  if (!answers(id)) return;
  in_flight_ = 0;
  if (!r) {
    retry_at_ = now + kRetry;
    return;
  }
  rev_ = r->create_revision;
  if (stop_requested_) {
    phase_ = Phase::kReleasing;
    out.push_back(DeleteOwn{next_id(), key_, rev_});
    return;
  }
  find_older(out);
}

void ElectionMachine::on_older(Instant now, uint64_t id, Result<OlderAnswer> r, std::vector<Action>& out) {
  if (!answers(id)) return;
  in_flight_ = 0;
  if (!r) {
    retry_at_ = now + kRetry;
    return;
  }
  if (r->older) {
    // Only the next-older key: its deletion is the one that may make us
    // leader (no herd).
    out.push_back(WatchDeletion{next_id(), r->older->key, r->header_revision + 1});
    return;
  }
  phase_ = Phase::kConfirming;
  confirm(now, r->own, r->header_revision, out);
}

void ElectionMachine::on_deletion(Instant now, uint64_t id, Result<int64_t> deleted_at, std::vector<Action>& out) {
  if (id != 0 && id == own_watch_) {
    own_watch_ = 0;
    if (phase_ != Phase::kLeading) return;
    if (deleted_at.ok()) {  // our key is gone: the next candidate may lead now
      own_key_gone_ = true;
      end_term("our key " + key_ + " was deleted", out);
      return;
    }
    // The watch broke: look at our key, and watch it again if it is there
    // (after kRetry when the last one broke less than kRetry ago: a watch
    // that fails at once must not make a loop of reads and watches).
    confirming_lead_ = true;
    if (watch_failed_again(now)) {
      retry_at_ = now + kRetry;
    } else {
      out.push_back(ReadOwn{next_id(), key_});
    }
    return;
  }
  if (!answers(id)) return;
  in_flight_ = 0;
  // The next-older key is gone (or the watch failed): look again; an even
  // older key may still be there.
  if (!deleted_at.ok() && watch_failed_again(now)) {
    phase_ = Phase::kQueued;
    retry_at_ = now + kRetry;
    return;
  }
  find_older(out);
}

void ElectionMachine::on_own(Instant now, uint64_t id, Result<OwnAnswer> r, std::vector<Action>& out) {
  if (!answers(id)) return;
  in_flight_ = 0;
  if (!r) {
    retry_at_ = now + kRetry;
    return;
  }
  const std::optional<KeyValue>& kv = r->kv;
  bool ours = kv && kv->create_revision == rev_ && lease_ && kv->lease == *lease_;
  if (phase_ == Phase::kLeading) {
    confirming_lead_ = false;
    if (!ours) {
      own_key_gone_ = true;
      end_term("our key " + key_ + " was deleted", out);
      return;
    }
    deadline_ = std::max(deadline_, session_deadline_);  // the key is ours as of this read
    own_watch_ = ++ids_;
    out.push_back(WatchDeletion{own_watch_, key_, r->header_revision + 1});
    return;
  }
  if (phase_ != Phase::kConfirming) return;
  confirm(now, kv, r->header_revision, out);
}

void ElectionMachine::confirm(Instant now, const std::optional<KeyValue>& kv, int64_t read_at,
                              std::vector<Action>& out) {
  bool ours = kv && kv->create_revision == rev_ && lease_ && kv->lease == *lease_;
  if (!ours) {
    // Our key went (an admin, or the lease) while we queued: queue again.
    if (lease_) campaign(out);
    else phase_ = Phase::kNoSession;
    return;
  }
  if (now >= deadline_ || work_running_) {
    // The session is past its deadline (its loss is being reported), or the
    // previous term's work has not returned: confirm again later.
    if (!work_running_) retry_at_ = now + kRetry;
    return;
  }
  phase_ = Phase::kLeading;
  work_running_ = true;
  out.push_back(StartLeading{Term{rev_, value_}});
  own_watch_ = ++ids_;
  out.push_back(WatchDeletion{own_watch_, key_, read_at + 1});
}

void ElectionMachine::on_own_key_deleted(Instant, std::vector<Action>& out) {
  if (phase_ != Phase::kLeading) return;
  own_watch_ = 0;
  own_key_gone_ = true;
  end_term("our key " + key_ + " was deleted", out);
}

void ElectionMachine::end_term(const std::string& why, std::vector<Action>& out) {
  if (phase_ != Phase::kLeading) return;
  phase_ = Phase::kStopping;
  own_watch_ = 0;
  in_flight_ = 0;
  confirming_lead_ = false;
  retry_at_.reset();
  out.push_back(StopLeading{why});
}

void ElectionMachine::on_work_returned(Instant now, std::vector<Action>& out) {
  if (!work_running_ || phase_ == Phase::kLeading) return;  // see the header
  work_running_ = false;
  if (phase_ == Phase::kConfirming && in_flight_ == 0) {
    out.push_back(ReadOwn{next_id(), key_});
    return;
  }
  if (phase_ != Phase::kStopping) return;
  after_work(out);
  (void)now;
}

void ElectionMachine::after_work(std::vector<Action>& out) {
  if (!recampaign_) stop_requested_ = true;  // the term is over, and so is the election
  if (stop_requested_) {
    if (lease_ && !own_key_gone_ && rev_ != 0) {
      phase_ = Phase::kReleasing;
      out.push_back(DeleteOwn{next_id(), key_, rev_});
    } else {
      phase_ = Phase::kFinished;
      out.push_back(Finished{});
    }
    return;
  }
  if (!lease_) {
    phase_ = Phase::kNoSession;
    return;
  }
  if (!own_key_gone_ && rev_ != 0) {
    // The term ended (its deadline passed) while our key may stay: delete
    // it and queue again with a new key, so the next term has a new token
    // and the others are not kept waiting on a leader that missed its
    // deadline.
    phase_ = Phase::kReleasing;
    out.push_back(DeleteOwn{next_id(), key_, rev_});
    return;
  }
  campaign(out);
}

void ElectionMachine::stop(Instant, std::vector<Action>& out) {
  if (stop_requested_) return;
  stop_requested_ = true;
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kNoSession:
      phase_ = Phase::kFinished;
      out.push_back(Finished{});
      break;
    case Phase::kCreating:
      if (in_flight_ == 0) {
        // The create failed and waits for a retry; a create that timed out
        // may still have landed. The key is named after our own lease, so
        // it is deleted by name (revision 0: no compare).
        retry_at_.reset();
        rev_ = 0;
        phase_ = Phase::kReleasing;
        out.push_back(DeleteOwn{next_id(), key_, 0});
      }
      // else: on_create deletes what it created
      break;
    case Phase::kQueued:
    case Phase::kConfirming:
      retry_at_.reset();
      phase_ = Phase::kReleasing;
      out.push_back(DeleteOwn{next_id(), key_, rev_});
      break;
    case Phase::kLeading:
      end_term("stopping", out);
      break;
    default:
      break;
  }
}

void ElectionMachine::resign(Instant, std::vector<Action>& out) { end_term("resigned", out); }

void ElectionMachine::on_deleted_own(Instant now, uint64_t id, Result<bool> r, std::vector<Action>& out) {
  if (!answers(id)) return;
  in_flight_ = 0;
  if (!r && stop_requested_ &&
      (r.error().is(Code::kForbidden) || r.error().is(Code::kUnauthorized) || r.error().is(Code::kInvalid))) {
    // Refused for good: retrying would never finish the stop. The key goes
    // with the session lease, revoked when the last election leaves.
    phase_ = Phase::kFinished;
    out.push_back(Finished{});
    return;
  }
  if (!r) {
    retry_at_ = now + kRetry;
    return;
  }
  if (!stop_requested_) {  // a requeue (after_work): campaign again
    if (lease_) {
      campaign(out);
    } else {
      phase_ = Phase::kNoSession;
    }
    return;
  }
  phase_ = Phase::kFinished;
  out.push_back(Finished{});
}

void ElectionMachine::on_tick(Instant now, std::vector<Action>& out) {
  if (phase_ == Phase::kLeading && now >= deadline_) {
    end_term("no keepalive of the session landed before its deadline", out);
    return;
  }
  if (!retry_at_ || now < *retry_at_ || in_flight_ != 0) return;
  retry_at_.reset();
  switch (phase_) {
    case Phase::kCreating:
      if (lease_) campaign(out);
      break;
    case Phase::kQueued:
      find_older(out);
      break;
    case Phase::kConfirming:
      out.push_back(ReadOwn{next_id(), key_});
      break;
    case Phase::kLeading:
      if (confirming_lead_) out.push_back(ReadOwn{next_id(), key_});
      break;
    case Phase::kReleasing:
      out.push_back(DeleteOwn{next_id(), key_, rev_});
      break;
    default:
      break;
  }
}

std::optional<Instant> ElectionMachine::next_wakeup() const {
  std::optional<Instant> t;
  if (phase_ == Phase::kLeading) t = deadline_;
  if (retry_at_ && in_flight_ == 0) t = t ? std::min(*t, *retry_at_) : *retry_at_;
  return t;
}

}  // namespace leasehold::etcd
