// leasehold status, observe and release: look at a lease, or (release --force)
// free it, without campaigning.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>

#include "backends/backends.h"
#include "cli.h"
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

Runtime::Options runtime_options(const Flags& flags) {
  Runtime::Options ro;
  ro.kubeconfig = flags.get("kubeconfig");
  ro.kube_context = flags.get("kube-context");
  // Library warnings (a failed watch, say) on stderr, one line each.
  ro.log = [](LogLevel l, std::string_view name, std::string_view m) {
    if (l >= LogLevel::kWarning) {
      std::fprintf(stderr, "leasehold: %.*s: %.*s\n", static_cast<int>(name.size()), name.data(),
                   static_cast<int>(m.size()), m.data());
    }
  };
  return ro;
}

int help(const char* synopsis, const char* what, const Flags& flags) {
  std::printf("usage: leasehold %s\n\n%s\n\nflags:\n%s", synopsis, what, flags.help().c_str());
  return 0;
}

std::string now_text() { return backends::format_micro_time(std::chrono::system_clock::now()); }

}  // namespace

int status_command(const std::vector<std::string>& args) {
  Flags flags({{"output", "table or json", "table"},
               {"kubeconfig", "kubeconfig file for k8s:// locks", ""},
               {"kube-context", "kubeconfig context (default: current-context)", ""},
               {"help", "show help", "", true}});
  if (auto r = flags.parse(args, 1); !r) return usage(r.error().message());
  if (flags.get("help") == "true") return help("status LOCK [-o json]", "Show who holds LOCK.", flags);
  if (flags.positionals().empty()) return usage("status: which lock? e.g. leasehold status file:///tmp/app.lease");
  std::string out = flags.get("output");
  if (out != "table" && out != "json") return usage("-o: \"" + out + "\" is not table or json");
  Runtime rt(runtime_options(flags));
  auto lock = rt.open_lock(flags.positionals()[0]);
  if (!lock) return usage(lock.error().message());
  Result<Versioned> r = call_io(rt, [&](Completion<Versioned> done) { (*lock)->get(std::move(done)); });
  if (!r && !r.error().is(Code::kNotFound)) {
    std::fprintf(stderr, "leasehold: %s\n", r.error().to_string().c_str());
    return 1;
  }
  auto fmt = [](const std::optional<WallTime>& t) {
    return t ? backends::format_micro_time(*t) : std::string("-");
  };
  if (!r) {
    if (out == "json") std::printf("{\"lock\":%s,\"exists\":false}\n", json_quote(flags.positionals()[0]).c_str());
    else std::printf("LOCK %s: no record (never held)\n", flags.positionals()[0].c_str());
    return 0;
  }
  const LeaseRecord& rec = r->record;
  // Expiry estimated from the holder's renewTime on our wall clock: for
  // humans only; electors never compare remote timestamps.
  double expires_in = 0;
  if (rec.renew_time && !rec.is_free()) {
    auto end = *rec.renew_time + std::chrono::seconds(rec.lease_duration_seconds);
    expires_in = std::chrono::duration<double>(end - std::chrono::system_clock::now()).count();
  }
  if (out == "json") {
    std::printf("{\"lock\":%s,\"exists\":true,\"holder\":%s,\"acquired\":%s,\"renewed\":%s,"
                "\"lease_duration_seconds\":%d,\"expires_in_seconds\":%.3f,\"transitions\":%d,"
                "\"version\":%s}\n",
                json_quote(flags.positionals()[0]).c_str(), json_quote(rec.holder_identity).c_str(),
                json_quote(fmt(rec.acquire_time)).c_str(), json_quote(fmt(rec.renew_time)).c_str(),
                rec.lease_duration_seconds, expires_in, rec.lease_transitions,
                json_quote(r->version).c_str());
  } else {
    std::string who = rec.is_free() ? "(free)" : rec.holder_identity;
    int w = static_cast<int>(std::max<size_t>(12, who.size()));
    std::printf("%-*s %-28s %-28s %-11s %s\n", w, "HOLDER", "ACQUIRED", "RENEWED", "EXPIRES IN", "TRANSITIONS");
    char exp[32] = "-";
    if (!rec.is_free() && expires_in <= 0) std::snprintf(exp, sizeof exp, "expired");
    if (!rec.is_free() && expires_in > 0) std::snprintf(exp, sizeof exp, "%.1fs", expires_in);
    std::printf("%-*s %-28s %-28s %-11s %d\n", w, who.c_str(),
                fmt(rec.acquire_time).c_str(), fmt(rec.renew_time).c_str(), exp, rec.lease_transitions);
  }
  return 0;
}


int observe_command(const std::vector<std::string>& args) {
  Flags flags({{"output", "text or json (one JSON object per line)", "text"},
               {"poll-period", "how often to re-read when the lock has no watch", "2s"},
               {"kubeconfig", "kubeconfig file for k8s:// locks", ""},
               {"kube-context", "kubeconfig context (default: current-context)", ""},
               {"help", "show help", "", true}});
  if (auto r = flags.parse(args, 1); !r) return usage(r.error().message());
  if (flags.get("help") == "true") {
    return help("observe LOCK [-o json]",
                "Print one line whenever the holder of LOCK changes (and the first state), until "
                "SIGINT or SIGTERM. Does not campaign; expiry is judged on this machine's clock.",
                flags);
  }
  if (flags.positionals().empty()) return usage("observe: which lock? e.g. leasehold observe file:///tmp/app.lease");
  std::string out = flags.get("output");
  if (out == "table") out = "text";
  if (out != "text" && out != "json") return usage("-o: \"" + out + "\" is not text or json");
  auto poll = flags.get_duration("poll-period");
  if (!poll) return usage(poll.error().message());
  const std::string url = flags.positionals()[0];

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  Runtime rt(runtime_options(flags));
  auto obs = Observer::create(rt, url, *poll);
  if (!obs) return usage(obs.error().message());
  (*obs)->start([&](const LeaseView& v) {
    std::string when = now_text();
    if (!v.error.empty() && !v.exists) {  // nothing known: an error, not "no record"
      if (out == "json") {
        std::printf("{\"time\":%s,\"lock\":%s,\"error\":%s}\n", json_quote(when).c_str(), json_quote(url).c_str(),
                    json_quote(v.error).c_str());
      } else {
        std::printf("%s  cannot read the lock: %s\n", when.c_str(), v.error.c_str());
      }
    } else if (out == "json") {
      std::printf("{\"time\":%s,\"lock\":%s,\"exists\":%s,\"holder\":%s,\"expired\":%s,"
                  "\"named_holder\":%s,\"transitions\":%s}\n",
                  json_quote(when).c_str(), json_quote(url).c_str(), v.exists ? "true" : "false",
                  json_quote(v.holder).c_str(), v.expired ? "true" : "false",
                  json_quote(v.named_holder).c_str(),
                  v.exists ? std::to_string(v.transitions).c_str() : "null");
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
  Flags flags({{"force", "required: confirms that you mean to take the lease from its holder", "false", true},
               {"kubeconfig", "kubeconfig file for k8s:// locks", ""},
               {"kube-context", "kubeconfig context (default: current-context)", ""},
               {"help", "show help", "", true}});
  if (auto r = flags.parse(args, 1); !r) return usage(r.error().message());
  if (flags.get("help") == "true") {
    return help("release LOCK --force",
                "Admin: write the released form of the lease (holder \"\", duration 1s, other fields "
                "kept) with compare-and-swap, so a standby takes over at once. The holder is not "
                "told: it steps down at its next renewal, when it sees the change.",
                flags);
  }
  if (flags.positionals().empty()) return usage("release: which lock? e.g. leasehold release file:///tmp/app.lease --force");
  auto force = flags.get_bool("force");
  if (!force) return usage(force.error().message());
  const std::string url = flags.positionals()[0];
  Runtime rt(runtime_options(flags));
  auto lock = rt.open_lock(url);
  if (!lock) return usage(lock.error().message());
  Result<Versioned> cur = call_io(rt, [&](Completion<Versioned> done) { (*lock)->get(std::move(done)); });
  if (!cur) {
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
  if (!*force) {
    std::fprintf(stderr,
                 "leasehold: release %s: refusing without --force: the lease is held by \"%s\", which "
                 "may still be working and only stops at its next renewal (within its renew deadline), "
                 "while a standby may start at once; add --force if that is what you want\n",
                 url.c_str(), rec.holder_identity.c_str());
    return 2;
  }
  LeaseRecord released = rec;  // keeps acquireTime, transitions, strategy, preferredHolder
  released.holder_identity.clear();
  released.lease_duration_seconds = 1;
  released.renew_time = std::chrono::system_clock::now();
  Result<Versioned> w = call_io(rt, [&](Completion<Versioned> done) {
    (*lock)->update(cur->version, released, std::move(done));
  });
  if (!w) {
    if (w.error().is(Code::kConflict)) {
      std::fprintf(stderr,
                   "leasehold: release %s: the lease changed between read and write (a renewal or "
                   "take-over); nothing written; run again to release the new holder\n",
                   url.c_str());
    } else {
      std::fprintf(stderr, "leasehold: release %s: writing the released lease: %s\n", url.c_str(),
                   w.error().to_string().c_str());
    }
    return 1;
  }
  std::printf("released %s (was held by %s, transitions %d)\n", url.c_str(), rec.holder_identity.c_str(),
              rec.lease_transitions);
  return 0;
}

}  // namespace leasehold::cli

namespace leasehold::cli {

int handoff_command(const std::vector<std::string>& args) {
  Flags flags({{"to", "identity of the standby that should lead next (required)", ""},
               {"timeout", "how long to wait for the standby to hold the lease", "30s"},
               {"kubeconfig", "kubeconfig file for k8s:// locks", ""},
               {"kube-context", "kubeconfig context (default: current-context)", ""},
               {"help", "show help", "", true}});
  if (auto r = flags.parse(args, 1); !r) return usage(r.error().message());
  if (flags.get("help") == "true") {
    return help("handoff LOCK --to ID [--timeout 30s]",
                "Ask the leader to hand the lease to the standby ID with no leaderless gap: writes "
                "spec.preferredHolder = ID (compare-and-swap); a leasehold leader then stops its work and "
                "writes ID as holder, and ID starts at once. Waits until ID holds the lease. A client-go "
                "leader ignores preferredHolder outside coordinated election: the command then times out "
                "and says so.",
                flags);
  }
  if (flags.positionals().empty()) return usage("handoff: which lock? e.g. leasehold handoff k8s://ns/app --to pod-b");
  const std::string target = flags.get("to");
  if (target.empty()) return usage("handoff: --to ID is required (the standby that should lead next)");
  auto timeout = flags.get_duration("timeout");
  if (!timeout) return usage(timeout.error().message());
  const std::string url = flags.positionals()[0];
  Runtime rt(runtime_options(flags));
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
              flags.get("timeout").c_str());
  std::fflush(stdout);
  auto deadline = started + *timeout;
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
                 url.c_str(), from.c_str(), target.c_str(), target.c_str(), flags.get("timeout").c_str());
    return 1;
  }
  std::fprintf(stderr,
               "leasehold: handoff %s: %s does not hold the lease after %s. Either %s did not act on "
               "preferredHolder (client-go leaders ignore it outside coordinated election) or %s is not "
               "running to take it; preferredHolder is left set, and is cleared by the next acquisition\n",
               url.c_str(), target.c_str(), flags.get("timeout").c_str(), from.c_str(), target.c_str());
  return 1;
}

}  // namespace leasehold::cli
