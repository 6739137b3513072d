// leasehold status, observe and release: look at a lease, or (release --force)
// free it, without campaigning.
#include <signal.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "backends/backends.h"
#include "cli.h"
#include "command_line.h"
#include "flags.h"
#include "leasehold/observer.h"
#include "leasehold/runtime.h"
#include "metrics.h"

namespace leasehold::cli {
namespace {

// Runs one lock operation on the Runtime's I/O thread (where Lock methods
// belong) and waits for its completion.
template <class Op>
Result<Versioned> call_io(Runtime& rt, Op op) {
  std::promise<Result<Versioned>> p;
  auto f = p.get_future();
  rt.post([&] { op([&p](Result<Versioned> r) { p.set_value(std::move(r)); }); });
  return f.get();
}

Runtime::Options runtime_options(const AdminSettings& flags) {
  Runtime::Options ro;
  ro.kubeconfig = flags.kubeconfig;
  ro.kube_context = flags.kube_context;
  ro.etcd = flags.etcd;
  // Library warnings (a failed watch, say) on stderr, one line each.
  ro.log = [](LogLevel l, std::string_view name, std::string_view m) {
    if (l >= LogLevel::kWarning) {
      std::fprintf(stderr, "leasehold: %.*s: %.*s\n", static_cast<int>(name.size()), name.data(),
                   static_cast<int>(m.size()), m.data());
    }
  };
  return ro;
}

int help(const std::string& command) {
  std::printf("%s", command_help(command).c_str());
  return 0;
}

// release --repair leaves a broken file lock alone until it is this old: nobody
// can have renewed it since it broke, so a holder whose renew deadline is
// shorter has stopped by then.
constexpr Duration kRepairMinAge = std::chrono::seconds(60);
// release --force: writes tried when renewals by the same holder keep winning the race.
constexpr int kReleaseAttempts = 5;

// One flat JSON object as one YAML document (`-o yaml`): `key: value` lines in
// the object's order; strings plain where YAML reads them back as the same
// string, else double-quoted (a JSON string is a valid YAML double-quoted
// scalar).
std::string yaml_document(const std::string& json_object) {
  auto j = nlohmann::ordered_json::parse(json_object);
  std::string y = "---\n";
  for (const auto& [k, v] : j.items()) {
    std::string text;
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      static const char* kReserved[] = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"};
      bool plain = !s.empty() && (std::isalpha(static_cast<unsigned char>(s[0])) != 0 || s[0] == '/');
      for (char c : s) {
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && std::strchr("._/-", c) == nullptr) plain = false;
      }
      for (const char* r : kReserved) {
        if (strcasecmp(s.c_str(), r) == 0) plain = false;
      }
      text = plain ? s : v.dump();
    } else {
      text = v.dump();
    }
    y += k + ": " + text + "\n";
  }
  return y;
}

// Prints a JSON object as -o json (one line) or -o yaml (one document).
void print_structured(const std::string& out, const std::string& json_object) {
  if (out == "yaml") std::printf("%s", yaml_document(json_object).c_str());
  else std::printf("%s\n", json_object.c_str());
}

std::string now_text() { return backends::format_micro_time(std::chrono::system_clock::now()); }

}  // namespace

int status_command(const std::vector<std::string>& args) {
  auto flags = parse_admin("status", args);
  if (!flags) return usage(flags.error().message());
  if (flags->help) return help("status");
  const std::string out = flags->output;
  const std::string url = flags->lock;
  Runtime rt(runtime_options(*flags));
  auto lock = rt.open_lock(url);
  if (!lock) return usage(lock.error().message());
  Result<Versioned> r = call_io(rt, [&](Completion<Versioned> done) { (*lock)->get(std::move(done)); });
  if (!r && !r.error().is(Code::kNotFound)) {
    std::fprintf(stderr, "leasehold: %s\n", one_line(r.error().to_string()).c_str());
    return 1;
  }
  auto fmt = [](const std::optional<WallTime>& t) {
    return t ? backends::format_micro_time(*t) : std::string("-");
  };
  if (!r) {
    if (out == "json" || out == "yaml") print_structured(out, "{\"lock\":" + json_quote(url) + ",\"exists\":false}");
    else std::printf("LOCK %s: no record (never held)\n", one_line(url).c_str());
    return 0;
  }
  const LeaseRecord& rec = r->record;
  // How long ago the holder renewed, by the holder's renewTime against this
  // machine's wall clock: off by the skew between the two (negative when the
  // holder's clock is ahead), so no verdict "expired" is drawn from it.
  // Electors never compare remote timestamps: they time a lease from when
  // they saw it change.
  std::optional<double> renewed_ago;
  if (rec.renew_time) {
    renewed_ago = std::chrono::duration<double>(std::chrono::system_clock::now() - *rec.renew_time).count();
  }
  if (out == "json" || out == "yaml") {
    print_structured(out, "{\"lock\":" + json_quote(url) + ",\"exists\":true,\"holder\":" +
                              json_quote(rec.holder_identity) + ",\"acquired\":" + json_quote(fmt(rec.acquire_time)) +
                              ",\"renewed\":" + json_quote(fmt(rec.renew_time)) + ",\"lease_duration_seconds\":" +
                              std::to_string(rec.lease_duration_seconds) + ",\"renewed_ago_seconds_remote_clock\":" +
                              (renewed_ago ? std::to_string(*renewed_ago) : std::string("null")) +
                              ",\"transitions\":" + std::to_string(rec.lease_transitions) +
                              ",\"preferred_holder\":" + json_quote(rec.preferred_holder) +
                              ",\"version\":" + json_quote(r->version) + "}");
  } else {
    std::string who = rec.is_free() ? "(free)" : one_line(rec.holder_identity);
    int w = static_cast<int>(std::max<size_t>(12, who.size()));
    const bool wide = out == "wide";
    std::printf("%-*s %-28s %-28s %-6s %-28s %s%s\n", w, "HOLDER", "ACQUIRED", "RENEWED", "LEASE",
                "RENEWED AGO (REMOTE CLOCK)", wide ? "TRANSITIONS " : "TRANSITIONS",
                wide ? "PREFERRED HOLDER VERSION" : "");
    char ago[32] = "-";
    if (renewed_ago) std::snprintf(ago, sizeof ago, "%.1fs", *renewed_ago);
    std::string lease = std::to_string(rec.lease_duration_seconds) + "s";
    std::printf("%-*s %-28s %-28s %-6s %-28s ", w, who.c_str(), fmt(rec.acquire_time).c_str(),
                fmt(rec.renew_time).c_str(), lease.c_str(), ago);
    if (wide) {
      std::printf("%-11d %-16s %s\n", rec.lease_transitions,
                  rec.preferred_holder.empty() ? "-" : one_line(rec.preferred_holder).c_str(),
                  one_line(r->version).c_str());
    } else {
      std::printf("%d\n", rec.lease_transitions);
    }
  }
  return 0;
}


int observe_command(const std::vector<std::string>& args) {
  auto flags = parse_admin("observe", args);
  if (!flags) return usage(flags.error().message());
  if (flags->help) return help("observe");
  const std::string out = flags->output;
  const Duration poll = flags->poll_period;
  const std::string url = flags->lock;

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  Runtime rt(runtime_options(*flags));
  auto obs = Observer::create(rt, url, poll);
  if (!obs) return usage(obs.error().message());
  (*obs)->start([&](const LeaseView& v) {
    std::string when = now_text();
    if (!v.error.empty() && !v.exists) {  // nothing known: an error, not "no record"
      if (out == "json" || out == "yaml") {
        print_structured(out, "{\"time\":" + json_quote(when) + ",\"lock\":" + json_quote(url) +
                                  ",\"error\":" + json_quote(v.error) + "}");
      } else {
        std::printf("%s  cannot read the lock: %s\n", when.c_str(), v.error.c_str());
      }
    } else if (out == "json" || out == "yaml") {
      print_structured(out, "{\"time\":" + json_quote(when) + ",\"lock\":" + json_quote(url) +
                                ",\"exists\":" + (v.exists ? "true" : "false") + ",\"holder\":" +
                                json_quote(v.holder) + ",\"expired\":" + (v.expired ? "true" : "false") +
                                ",\"named_holder\":" + json_quote(v.named_holder) + ",\"transitions\":" +
                                (v.exists ? std::to_string(v.transitions) : std::string("null")) + "}");
    } else {
      std::string what;
      if (!v.exists) what = "no record (never held)";
      else if (!v.holder.empty()) what = "holder " + v.holder;
      else if (v.expired) what = "free (the lease of " + v.named_holder + " expired)";
      else what = "free (released)";
      std::printf("%s  %-40s transitions %s\n", when.c_str(), what.c_str(),
                  v.exists ? std::to_string(v.transitions).c_str() : "-");
    }
    std::fflush(stdout);
  });
  int sig = 0;
  sigwait(&sigs, &sig);
  (*obs)->stop();
  return 0;
}

int release_command(const std::vector<std::string>& args) {
  auto flags = parse_admin("release", args);
  if (!flags) return usage(flags.error().message());
  if (flags->help) return help("release");
  const bool force = flags->force;
  const std::string url = flags->lock;
  Runtime rt(runtime_options(*flags));
  auto lock = rt.open_lock(url);
  if (!lock) return usage(lock.error().message());
  Result<Versioned> cur = call_io(rt, [&](Completion<Versioned> done) { (*lock)->get(std::move(done)); });
  const bool is_file = url.starts_with("file://");
  if (flags->repair) {
    if (!is_file) return usage("release: --repair is for file:// locks (their record can be a torn or foreign file)");
    if (cur) {
      std::fprintf(stderr, "leasehold: release %s: the record decodes (held by \"%s\"); --repair replaces only a "
                   "record that does not; nothing written\n", one_line(url).c_str(),
                   one_line(cur->record.holder_identity).c_str());
      return 1;
    }
    auto found = backends::repair_file_lock(url, kRepairMinAge);
    if (!found) {
      std::fprintf(stderr, "leasehold: release %s: %s\n", one_line(url).c_str(), one_line(found.error().message()).c_str());
      return 1;
    }
    std::printf("found %s\nreplaced it with a free record (leaseTransitions restarts at 0)\n", one_line(*found).c_str());
    return 0;
  }
  if (!cur) {
    if (is_file && cur.error().is(Code::kInvalid)) {
      std::fprintf(stderr,
                   "leasehold: release %s: the record does not decode (%s); no elector can use this lock until "
                   "it is replaced: leasehold release %s --force --repair (prints what it found first)\n",
                   one_line(url).c_str(), one_line(cur.error().message()).c_str(), one_line(url).c_str());
      return 1;
    }
    if (cur.error().is(Code::kNotFound)) {
      std::fprintf(stderr, "leasehold: release %s: there is no lease record (nothing to release)\n", url.c_str());
    } else {
      std::fprintf(stderr, "leasehold: release %s: reading the lease: %s\n", url.c_str(),
                   cur.error().to_string().c_str());
    }
    return 1;
  }
  const LeaseRecord& rec = cur->record;
  if (rec.is_free()) {
    std::printf("%s is already free (transitions %d); nothing written\n", url.c_str(), rec.lease_transitions);
    return 0;
  }
  if (!force) {
    std::fprintf(stderr,
                 "leasehold: release %s: refusing without --force: the lease is held by \"%s\", which "
                 "may still be working until it sees the change (at once through a leasehold watch, else at "
                 "its next renewal, within its renew deadline), "
                 "while a standby may start at once; add --force if that is what you want\n",
                 url.c_str(), rec.holder_identity.c_str());
    return 2;
  }
  // The holder renews while we write: a conflict with a renewal by the same
  // holder in the same term is retried (a few times) on a fresh read; a
  // conflict with anything else (another holder, a new term) is reported.
  const LeaseRecord seen = rec;
  Result<Versioned> w = Error::conflict("not written");
  for (int attempt = 0; attempt < kReleaseAttempts; ++attempt) {
    if (attempt > 0) {
      cur = call_io(rt, [&](Completion<Versioned> done) { (*lock)->get(std::move(done)); });
      if (!cur) break;
      if (cur->record.is_free()) {
        std::printf("%s was freed meanwhile (transitions %d); nothing written\n", url.c_str(),
                    cur->record.lease_transitions);
        return 0;
      }
      if (cur->record.holder_identity != seen.holder_identity ||
          cur->record.lease_transitions != seen.lease_transitions) {
        break;  // someone else's term now
      }
    }
    LeaseRecord released = cur->record;  // keeps acquireTime, transitions, strategy, preferredHolder
    released.holder_identity.clear();
    released.lease_duration_seconds = 1;
    released.renew_time = std::chrono::system_clock::now();
    w = call_io(rt, [&](Completion<Versioned> done) { (*lock)->update(cur->version, released, std::move(done)); });
    if (w || !w.error().is(Code::kConflict)) break;
  }
  if (!cur) {
    std::fprintf(stderr, "leasehold: release %s: reading the lease again after a conflict: %s\n", url.c_str(),
                 cur.error().to_string().c_str());
    return 1;
  }
  if (!w) {
    if (w.error().is(Code::kConflict)) {
      std::fprintf(stderr,
                   "leasehold: release %s: the lease changed between read and write (now held by \"%s\", "
                   "transitions %d; it was \"%s\", transitions %d); nothing written; run again to release "
                   "the new holder\n",
                   url.c_str(), one_line(cur->record.holder_identity).c_str(), cur->record.lease_transitions,
                   one_line(seen.holder_identity).c_str(), seen.lease_transitions);
    } else {
      std::fprintf(stderr, "leasehold: release %s: writing the released lease: %s\n", url.c_str(),
                   w.error().to_string().c_str());
    }
    return 1;
  }
  std::printf("released %s (was held by %s, transitions %d)\n", url.c_str(), seen.holder_identity.c_str(),
              seen.lease_transitions);
  return 0;
}

}  // namespace leasehold::cli

namespace leasehold::cli {

int handoff_command(const std::vector<std::string>& args) {
  auto flags = parse_admin("handoff", args);
  if (!flags) return usage(flags.error().message());
  if (flags->help) return help("handoff");
  const std::string target = flags->to;
  const Duration timeout = flags->timeout;
  const std::string timeout_text = format_duration(timeout);
  const std::string url = flags->lock;
  Runtime rt(runtime_options(*flags));
  auto lock = rt.open_lock(url);
  if (!lock) return usage(lock.error().message());
  auto started = std::chrono::steady_clock::now();
  std::string from;
  for (int attempt = 0;; ++attempt) {
    Result<Versioned> cur = call_io(rt, [&](Completion<Versioned> done) { (*lock)->get(std::move(done)); });
    if (!cur) {
      std::fprintf(stderr, "leasehold: handoff %s: reading the lease: %s\n", url.c_str(),
                   cur.error().to_string().c_str());
      return 1;
    }
    const LeaseRecord& rec = cur->record;
    if (rec.holder_identity == target) {
      std::printf("%s is already held by %s (transitions %d)\n", url.c_str(), target.c_str(), rec.lease_transitions);
      return 0;
    }
    if (rec.is_free()) {
      std::fprintf(stderr, "leasehold: handoff %s: nobody holds the lease; there is no leader to hand it over\n",
                   url.c_str());
      return 1;
    }
    if (!rec.strategy.empty()) {
      std::fprintf(stderr,
                   "leasehold: handoff %s: the lease is run by coordinated election (strategy %s): "
                   "kube-apiserver chooses the holder, not an admin\n",
                   url.c_str(), rec.strategy.c_str());
      return 1;
    }
    from = rec.holder_identity;
    LeaseRecord asked = rec;
    asked.preferred_holder = target;
    Result<Versioned> w = call_io(rt, [&](Completion<Versioned> done) {
      (*lock)->update(cur->version, asked, std::move(done));
    });
    if (w) break;
    if (!w.error().is(Code::kConflict) || attempt >= 5) {  // a renewal raced us: read again
      std::fprintf(stderr, "leasehold: handoff %s: writing preferredHolder: %s\n", url.c_str(),
                   w.error().to_string().c_str());
      return 1;
    }
  }
  std::printf("asked %s to hand %s to %s; waiting up to %s\n", from.c_str(), url.c_str(), target.c_str(),
              timeout_text.c_str());
  std::fflush(stdout);
  auto deadline = started + timeout;
  // The leader's hand-over write names the target; the target confirms with
  // a write of its own (a later version that still names it). Only that
  // proves it is running and leads.
  std::string named_version;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<Versioned> cur = call_io(rt, [&](Completion<Versioned> done) { (*lock)->get(std::move(done)); });
    if (cur && cur->record.holder_identity == target && named_version.empty()) {
      named_version = cur->version;
    } else if (cur && cur->record.holder_identity == target && cur->version != named_version) {
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      std::printf("%s now holds %s (transitions %d), %.0f ms after the request\n", target.c_str(), url.c_str(),
                  cur->record.lease_transitions, ms);
      return 0;
    }
    if (cur && !cur->record.is_free() && cur->record.holder_identity != from &&
        cur->record.holder_identity != target) {
      std::fprintf(stderr, "leasehold: handoff %s: %s took the lease instead of %s\n", url.c_str(),
                   cur->record.holder_identity.c_str(), target.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!named_version.empty()) {
    std::fprintf(stderr,
                 "leasehold: handoff %s: %s handed the lease to %s, but %s has not confirmed it within %s "
                 "(is it running?); if it never does, the lease expires and the others campaign\n",
                 url.c_str(), from.c_str(), target.c_str(), target.c_str(), timeout_text.c_str());
    return 1;
  }
  std::fprintf(stderr,
               "leasehold: handoff %s: %s does not hold the lease after %s. Either %s did not act on "
               "preferredHolder (client-go leaders ignore it outside coordinated election) or %s is not "
               "running to take it; preferredHolder is left set, and is cleared by the next acquisition\n",
               url.c_str(), target.c_str(), timeout_text.c_str(), from.c_str(), target.c_str());
  return 1;
}

}  // namespace leasehold::cli
