// What a StateMachine knows of the record (observe, expiry, takeable) and the
// records it writes. Part of StateMachine; see state_machine.h.
#include <algorithm>

#include "core/state_machine.h"

namespace leasehold::core {
namespace {

int32_t whole_seconds(Duration d) {
  return static_cast<int32_t>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

}  // namespace

std::optional<Instant> StateMachine::observed_expiry() const {
  if (!observed_ || observed_->record.is_free()) return std::nullopt;
  return observed_at_ + std::chrono::seconds(observed_->record.lease_duration_seconds);
}

void StateMachine::report_leader(const std::string& id, std::vector<Action>& out) {
  if (id.empty() || id == reported_leader_) return;
  reported_leader_ = id;
  out.push_back(NewLeader{id});
}

void StateMachine::observe(Instant now, const std::optional<Versioned>& v,
                           std::vector<Action>& out, bool from_watch) {
  if (!v) {
    // A record we knew (or a watch saw deleted) is gone: its holder may have
    // renewed it unseen just before, so no create for a full lease from now.
    // One never seen (and no record read) is created at once.
    if (observed_ || from_watch || absence_stale(now)) {
      deleted_holder_expiry_ = std::max(deleted_holder_expiry_.value_or(now), now + t_.lease_duration);
    }
    absence_seen_at_ = now;
    observed_.reset();
    return;
  }
  if (!observed_ || observed_->version != v->version) observed_at_ = now;
  observed_ = *v;
  deleted_holder_expiry_.reset();
  absence_seen_at_.reset();
  max_transitions_seen_ = std::max<int64_t>(max_transitions_seen_, v->record.lease_transitions);
  if (v->record.holder_identity != identity_) report_leader(v->record.holder_identity, out);
}

LeaseRecord StateMachine::acquire_record(WallTime wall) const {
  LeaseRecord r;
  if (observed_) {
    r = observed_->record;  // keeps strategy (and preferredHolder under a strategy)
    r.lease_transitions = observed_->record.lease_transitions + 1;
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

}  // namespace leasehold::core
