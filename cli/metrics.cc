#include "metrics.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace leasehold::cli {
namespace {

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

std::string num(uint64_t v) { return std::to_string(v); }

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

struct Writer {
  std::string out;
  void family(const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
  }
  void sample(std::string_view name, const std::string& labels, const std::string& value) {
    out += name;
    out += '{';
    out += labels;
    out += "} ";
    out += value;
    out += '\n';
  }
};

std::string label(const char* key, std::string_view value) {
  return std::string(key) + "=\"" + escape_label(value) + "\"";
}

}  // namespace

std::string escape_label(std::string_view v) {
  std::string o;
  o.reserve(v.size());
  for (char c : v) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

std::string json_quote(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned char>(c));
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::string render_metrics(const std::vector<ElectorView>& electors) {
  Writer w;
  auto each = [&](const char* name, const char* type, const char* help, auto&& fn) {
    w.family(name, type, help);
    for (const ElectorView& e : electors) fn(e, label("name", e.name));
  };
  each("leader_election_master_status", "gauge",
       "1 while this replica leads (holds the lease and its renew deadline has not passed), else 0.",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leader_election_master_status", l, e.status.leading ? "1" : "0");
       });
  each("leader_election_slowpath_total", "counter",
       "Renewals that had to re-read the lease after a conflict instead of using the cached version.",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leader_election_slowpath_total", l, num(e.status.slow_path));
       });
  each("leasehold_leader_changes_total", "counter", "Changes of the lease holder seen by this replica.",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leasehold_leader_changes_total", l, num(e.status.leader_changes));
       });
  each("leasehold_terms_started_total", "counter", "Times this replica became leader.",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leasehold_terms_started_total", l, num(e.status.terms_started));
       });
  each("leasehold_lease_transitions", "gauge",
       "leaseTransitions of the last lease record seen (the fencing token of the current term); -1 before the first read.",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leasehold_lease_transitions", l, std::to_string(e.status.lease_transitions));
       });
  each("leasehold_renewals_total", "counter", "Successful renewals of the lease by this replica.",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leasehold_renewals_total", l, num(e.status.renewals));
       });
  each("leasehold_renew_failures_total", "counter", "Failed renewals, by the error code that failed them.",
       [&](const ElectorView& e, const std::string& l) {
         for (size_t c = 0; c < ElectorStatus::kCodes; ++c) {
           w.sample("leasehold_renew_failures_total",
                    l + "," + label("reason", code_name(static_cast<Code>(c))),
                    num(e.status.failed_renewals[c]));
         }
       });
  each("leasehold_failed_requests_total", "counter",
       "Failed requests to the lock of any kind (NotFound, an absent lease, is not counted).",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leasehold_failed_requests_total", l, num(e.status.failed_requests));
       });
  each("leasehold_renew_duration_seconds", "histogram",
       "Time from sending a renewal to its answer (a timeout counts as its limit).",
       [&](const ElectorView& e, const std::string& l) {
         const LatencyHistogram& h = e.status.renew_latency;
         uint64_t cumulative = 0;
         for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
           cumulative += h.counts[i];
           w.sample("leasehold_renew_duration_seconds_bucket",
                    l + "," + label("le", num(LatencyHistogram::kBounds[i])), num(cumulative));
         }
         w.sample("leasehold_renew_duration_seconds_bucket", l + ",le=\"+Inf\"", num(h.count));
         w.sample("leasehold_renew_duration_seconds_sum", l, num(h.sum_seconds));
         w.sample("leasehold_renew_duration_seconds_count", l, num(h.count));
       });
  each("leasehold_lease_seconds_left", "gauge",
       "Seconds left on the lease as this replica judges it on its own clock (absent while no holder is known).",
       [&](const ElectorView& e, const std::string& l) {
         if (e.status.lease_left) w.sample("leasehold_lease_seconds_left", l, num(seconds(*e.status.lease_left)));
       });
  each("leasehold_leader_info", "gauge", "The current holder of the lease, in the holder label (\"\" when none is known).",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leasehold_leader_info", l + "," + label("holder", e.status.leader), "1");
       });
  each("leasehold_phase", "gauge", "1 for this elector's phase: idle, following, leading, stopping or stopped.",
       [&](const ElectorView& e, const std::string& l) {
         w.sample("leasehold_phase", l + "," + label("phase", e.status.phase), "1");
       });
  return w.out;
}

std::string leader_json(const ElectorView& v) {
  const ElectorStatus& s = v.status;
  auto opt_seconds = [](const std::optional<Duration>& d) {
    if (!d) return std::string("null");
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", seconds(*d));
    return std::string(b);
  };
  std::string o = "{";
  o += "\"identity\":" + json_quote(v.identity);
  o += ",\"lock\":" + json_quote(v.lock);
  o += ",\"name\":" + json_quote(v.name);
  o += ",\"phase\":" + json_quote(s.phase);
  o += std::string(",\"leading\":") + (s.leading ? "true" : "false");
  o += ",\"holder\":" + json_quote(s.leader);
  o += ",\"term\":" + (s.term ? std::to_string(s.term->transitions) : std::string("null"));
  o += ",\"transitions\":" + (s.lease_transitions >= 0 ? std::to_string(s.lease_transitions) : std::string("null"));
  o += ",\"seconds_left\":" + opt_seconds(s.lease_left);
  o += ",\"renew_deadline_seconds_left\":" + opt_seconds(s.phase == "leading" ? s.time_left : std::nullopt);
  o += ",\"leader_changes\":" + num(s.leader_changes);
  o += "}\n";
  return o;
}

Verdict health(const ElectorView& v) {
  const ElectorStatus& s = v.status;
  if (s.phase == "leading" && !s.leading) {
    double late = s.time_left ? -seconds(*s.time_left) : 0;
    char b[256];
    std::snprintf(b, sizeof b,
                  "unhealthy: %s believes it leads %s but its renew deadline passed %.3fs ago "
                  "(no successful renewal in time, and it has not stepped down)",
                  v.identity.c_str(), v.lock.c_str(), late);
    return {false, b};
  }
  if (s.phase == "stopped") return {false, "unhealthy: the elector for " + v.lock + " has stopped"};
  return {true, "ok: " + s.phase + (s.leader.empty() ? "" : ", leader " + s.leader)};
}

Verdict leader_readiness(const ElectorView& v) {
  const ElectorStatus& s = v.status;
  if (s.leading) return {true, "ok: " + v.identity + " leads " + v.lock};
  return {false, "not leading: " + (s.leader.empty() ? std::string("no leader known") : "the leader is " + s.leader) +
                     " (phase " + s.phase + ")"};
}

}  // namespace leasehold::cli
