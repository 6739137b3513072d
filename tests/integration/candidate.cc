// leasehold_candidate: the leasehold counterpart of the client-go interop
// peer (testenv/peer/main.go), for the fleet tests and the failover benchmark.
// It takes the peer's flags, campaigns for one Lease with leasehold::Elector
// and prints the peer's JSON lines on stdout, one per event:
//
//   {"event":"started","identity":"lh-1","leader":"lh-1","transitions":3,"mono_ns":123,"impl":"leasehold"}
//
// Events: new_leader (leader = the holder now observed), started, stopped
// (the guarded work has been told to stop and has returned: the term is over
// for this process), exited (the elector stopped; with --release-on-cancel the
// release was written before this line). mono_ns is CLOCK_MONOTONIC, the
// peer's clock, so one checker orders both implementations.
// With --print-renewals (leasehold only; the peer has no such flag) every
// successful renewal of a started term also prints
//
//   {"event":"renewed",...,"sent_mono_ns":120,"mono_ns":123}
//
// from ElectorConfig::callbacks.on_renewed: sent_mono_ns is when that
// renewal was sent, on CLOCK_MONOTONIC, so the term now lasts until
// sent_mono_ns + renew_deadline (bench/cadence.py times outages by it).
// --renew-interval sets ElectorConfig::renew_interval (default 0s: every
// retry period, as client-go).
//
// Like the client-go peer, it does not campaign again after losing the lease
// (--recampaign=false, client-go's behaviour): it prints "exited" and exits 0.
// SIGTERM or SIGINT stops it gracefully: the work stops, the Lease is released
// (--release-on-cancel, default true), then "exited", exit status 0.
// Library log lines go to stderr (warnings and errors; --v=1 adds info), and
// they never contain the token.
//
// Exit status: 0 after a stop or a loss, 2 for bad flags or config.
#include <signal.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "flags.h"
#include "leasehold/elector.h"

namespace {

using leasehold::Duration;
using leasehold::LogLevel;

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::mutex out_mu;

void emit(const std::string& event, const std::string& identity, const std::string& leader, int64_t transitions,
          std::optional<int64_t> deadline_mono_ns = std::nullopt) {
  nlohmann::json j = {{"event", event},         {"identity", identity}, {"leader", leader},
                      {"transitions", transitions}, {"mono_ns", mono_ns()}, {"impl", "leasehold"}};
  if (deadline_mono_ns) j["deadline_mono_ns"] = *deadline_mono_ns;
  std::lock_guard<std::mutex> g(out_mu);
  std::fprintf(stdout, "%s\n", j.dump().c_str());
  std::fflush(stdout);
}

void log_line(const char* level, std::string_view name, std::string_view msg) {
  std::lock_guard<std::mutex> g(out_mu);
  // t= is CLOCK_MONOTONIC in seconds, the clock of the events' mono_ns, so a
  // harness can line the log up with them.
  std::fprintf(stderr, "t=%.3f candidate %s [%.*s] %.*s\n", static_cast<double>(mono_ns()) / 1e9, level,
               static_cast<int>(name.size()), name.data(), static_cast<int>(msg.size()), msg.data());
}

int bad_usage(const std::string& msg) {
  std::fprintf(stderr, "leasehold_candidate: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using leasehold::cli::FlagSpec;
  // The client-go peer's flags, with its defaults, plus --recampaign and --v.
  leasehold::cli::Flags flags({
      {"kubeconfig", "kubeconfig path (default: KUBECONFIG, in-cluster, ~/.kube/config)", ""},
      {"namespace", "Lease namespace", "default"},
      {"name", "Lease name (required unless --lock)", ""},
      {"lock", "lock URL instead of k8s://NAMESPACE/NAME, e.g. etcd://127.0.0.1:2379/leasehold/x (leasehold only)", ""},
      {"etcd-cacert", "etcds:// locks: CA file", ""},
      {"etcd-cert", "etcds:// locks: client certificate file", ""},
      {"etcd-key", "etcds:// locks: client key file", ""},
      {"etcd-user", "etcd:// locks: user", ""},
      {"etcd-password-file", "etcd:// locks: the user's password file", ""},
      {"identity", "holder identity (required)", ""},
      {"lease-duration", "lease duration, whole seconds", "15s"},
      {"renew-deadline", "renew deadline", "10s"},
      {"retry-period", "retry period", "2s"},
      {"renew-interval", "leader's wait between renewals; 0s = the retry period (leasehold only)", "0s"},
      {"print-renewals", "print a \"renewed\" event per successful renewal (leasehold only)", "false", true},
      {"release-on-cancel", "release the Lease on SIGTERM/SIGINT", "true", true},
      {"recampaign", "campaign again after losing (client-go and the peer do not)", "false", true},
      {"qps", "accepted for compatibility with the peer; leasehold does not rate-limit itself", "50"},
      {"v", "log verbosity on stderr: 0 warnings and errors, 1 also info", "0"},
      {"help", "show this help", "", true},
  });
  std::vector<std::string> args(argv + 1, argv + argc);
  if (auto r = flags.parse(args, 0); !r) return bad_usage(r.error().message());
  if (flags.get("help") == "true") {
    std::printf("usage: leasehold_candidate --name LEASE --identity ID [flags]\n\nflags:\n%s", flags.help().c_str());
    return 0;
  }
  if ((flags.get("name").empty() && flags.get("lock").empty()) || flags.get("identity").empty()) {
    return bad_usage("--name (or --lock) and --identity are required");
  }
  leasehold::ElectorConfig cfg;
  cfg.lock = flags.get("lock").empty() ? "k8s://" + flags.get("namespace") + "/" + flags.get("name") : flags.get("lock");
  cfg.identity = flags.get("identity");
  for (auto [flag, field] : {std::pair{"lease-duration", &cfg.lease_duration},
                             std::pair{"renew-deadline", &cfg.renew_deadline},
                             std::pair{"retry-period", &cfg.retry_period},
                             std::pair{"renew-interval", &cfg.renew_interval}}) {
    auto d = flags.get_duration(flag);
    if (!d) return bad_usage(d.error().message());
    *field = *d;
  }
  auto release = flags.get_bool("release-on-cancel");
  if (!release) return bad_usage(release.error().message());
  auto recampaign = flags.get_bool("recampaign");
  if (!recampaign) return bad_usage(recampaign.error().message());
  auto print_renewals = flags.get_bool("print-renewals");
  if (!print_renewals) return bad_usage(print_renewals.error().message());
  cfg.release_on_cancel = *release;
  cfg.recampaign = *recampaign;
  const bool verbose = flags.get("v") != "0";

  // Signals: blocked in every thread (before any starts), taken by sigwait.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGUSR1);  // internal: ends the signal thread at exit
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  leasehold::Runtime::Options ro;
  ro.kubeconfig = flags.get("kubeconfig");
  ro.etcd = {flags.get("etcd-cacert"), flags.get("etcd-cert"), flags.get("etcd-key"), flags.get("etcd-user"),
             flags.get("etcd-password-file")};
  ro.log = [verbose](LogLevel l, std::string_view n, std::string_view m) {
    static constexpr const char* kLevels[] = {"debug", "info", "warning", "error"};
    if (l >= LogLevel::kWarning || (verbose && l == LogLevel::kInfo)) log_line(kLevels[static_cast<int>(l)], n, m);
  };
  leasehold::Runtime rt(ro);

  const std::string id = cfg.identity;
  std::atomic<int64_t> last_term{0};  // transitions of our last term, as the peer reports on exit
  std::atomic<leasehold::Elector*> self{nullptr};
  cfg.callbacks.on_started_leading = [id, &last_term, &self](const leasehold::Term& term, std::stop_token stop) {
    last_term = term.transitions;
    // The term's deadline as the elector published it before this call
    // (time_left), on CLOCK_MONOTONIC: the term lasts no longer unless a
    // "renewed" event (--print-renewals) moves it.
    std::optional<leasehold::Duration> left;
    if (leasehold::Elector* e = self.load()) left = e->status().time_left;
    emit("started", id, id, term.transitions,
         left ? std::optional<int64_t>(mono_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(*left).count())
              : std::nullopt);
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, stop, [] { return false; });  // the "work": idle until told to stop
  };
  cfg.callbacks.on_stopped_leading = [id](const leasehold::Term& term) { emit("stopped", id, "", term.transitions); };
  cfg.callbacks.on_new_leader = [id](const std::string& leader) { emit("new_leader", id, leader, 0); };
  if (*print_renewals) {
    cfg.callbacks.on_renewed = [id, &rt](const leasehold::Term& term, leasehold::Instant renewed_at) {
      // renewed_at is on the Runtime's clock (CLOCK_BOOTTIME): carried over to
      // CLOCK_MONOTONIC by its age, read on both clocks back to back.
      const int64_t now_mono = mono_ns();
      const auto age = std::chrono::duration_cast<std::chrono::nanoseconds>(rt.clock().now() - renewed_at);
      nlohmann::json j = {{"event", "renewed"},     {"identity", id},
                          {"leader", id},           {"transitions", term.transitions},
                          {"sent_mono_ns", now_mono - age.count()}, {"mono_ns", now_mono},
                          {"impl", "leasehold"}};
      std::lock_guard<std::mutex> g(out_mu);
      std::fprintf(stdout, "%s\n", j.dump().c_str());
      std::fflush(stdout);
    };
  }

  auto elector = leasehold::Elector::create(rt, cfg);
  if (!elector) return bad_usage(elector.error().to_string());
  self = elector->get();
  std::stop_source program_stop;
  std::jthread signals([&] {
    int sig = 0;
    while (sigwait(&sigs, &sig) == 0) {
      if (sig == SIGUSR1) return;
      program_stop.request_stop();
    }
  });
  (*elector)->start(program_stop.get_token());
  (*elector)->wait();  // stopped by a signal, or lost the lease with recampaign off
  elector->reset();
  emit("exited", id, "", last_term.load());
  pthread_kill(signals.native_handle(), SIGUSR1);
  return 0;
}
