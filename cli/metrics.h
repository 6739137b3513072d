// What the sidecar's endpoints say about one elector, as pure functions of an
// ElectorStatus snapshot: the Prometheus text exposition (format 0.0.4), the
// /leader JSON document and the /healthz verdict. No I/O, no clock reads, so
// unit tests feed them hand-made snapshots.
//
// Metric names (every series has a `name` label: ElectorConfig::name, by
// default the lock URL):
//   leader_election_master_status{name}        gauge 1 while leading, else 0 (client-go's name)
//   leader_election_slowpath_total{name}       counter, renewals that re-read after a conflict (client-go's name)
//   leasehold_leader_changes_total{name}       counter, changes of the observed holder
//   leasehold_terms_started_total{name}        counter, times this replica became leader
//   leasehold_lease_transitions{name}          gauge, leaseTransitions of the last record seen (the fencing token)
//   leasehold_renewals_total{name}             counter, successful renewals
//   leasehold_renew_failures_total{name,reason} counter, failed renewals by error code (Conflict, Timeout, ...)
//   leasehold_failed_requests_total{name}      counter, failed lock requests of any kind (NotFound excluded)
//   leasehold_renew_duration_seconds{name}     histogram, time from sending a renewal to its answer
//   leasehold_lease_seconds_left{name}         gauge, lease time left as this replica judges it (absent if unknown)
//   leasehold_leader_info{name,holder}         gauge 1, the current holder ("" when none is known)
//   leasehold_phase{name,phase}                gauge 1 for the current phase
//
// Threading: pure functions, callable from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "leasehold/elector.h"

namespace leasehold::cli {

struct ElectorView {
  std::string name;      // the metrics `name` label
  std::string identity;  // our identity
  std::string lock;      // the lock URL
  Duration lease_duration{};
  ElectorStatus status;
};

// Prometheus text format, every family with # HELP and # TYPE.
std::string render_metrics(const std::vector<ElectorView>& electors);

// Label values escaped as the text format wants: \\, \" and \n.
std::string escape_label(std::string_view v);

// {"identity":..,"lock":..,"phase":..,"leading":..,"holder":..,"term":N|null,
//  "transitions":N|null,"seconds_left":x|null,"renew_deadline_seconds_left":x|null}
std::string leader_json(const ElectorView& v);

struct Verdict {
  bool ok = true;
  std::string text;  // one line for the response body
};

// /healthz: fails when the phase says leading but the renew deadline has
// passed (we believe we lead, yet have not renewed in time).
Verdict health(const ElectorView& v);
// /readyz: ok only while leading (is_leader() at the snapshot).
Verdict leader_readiness(const ElectorView& v);

// A JSON string literal.
std::string json_quote(std::string_view s);

}  // namespace leasehold::cli
