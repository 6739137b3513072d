// leasehold run (a child while leading) and leasehold serve (no child: the
// endpoints only). status, observe and release are in admin.cc.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <future>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "backends/backends.h"
#include "cli.h"
#include "endpoints.h"
#include "flags.h"
#include "http_server.h"
#include "leasehold/elector.h"
#include "leasehold/for_life.h"
#include "core/runtime_access.h"
#include "kube/client.h"
#include "kube/lease_codec.h"
#include "kube/objects.h"
#include "proctree.h"
#include "worker.h"

extern char** environ;

namespace leasehold::cli {
namespace {

constexpr const char* kUsage = R"(usage:
  leasehold run [flags] -- CMD [ARGS...]   run CMD only while this replica leads
  leasehold serve [flags]                  campaign without a child; /healthz /readyz /leader /metrics
  leasehold status LOCK [-o json]          show who holds LOCK
  leasehold observe LOCK [-o json]         print a line for every change of holder (does not campaign)
  leasehold release LOCK --force           admin: mark the lease free so another replica takes it
  leasehold handoff LOCK --to ID           ask the leader to hand the lease to standby ID (no gap)
  leasehold version

LOCK is a URL: k8s://NAMESPACE/NAME (a Lease), file:///ABS/PATH (one host)
or mem://NAME (in-process).
Run `leasehold run --help` (or serve, status, observe, release) for the flags.
)";

std::vector<FlagSpec> run_flags(bool serve) {
  std::vector<FlagSpec> all = {
      {"lock", "lock URL, e.g. file:///run/app.lease (short for the resource flags)", ""},
      {"identity", "holder identity (default: $POD_NAME, else hostname-RANDOM)", ""},
      {"leader-elect-resource-lock", "lock kind: leases, file, configmaps, endpoints, configmapsleases or endpointsleases", ""},
      {"leader-elect-resource-name", "lock name; for the file lock, its absolute path", ""},
      {"leader-elect-resource-namespace", "namespace of the Lease (default: $POD_NAMESPACE, else default)", ""},
      {"kubeconfig", "kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)", ""},
      {"kube-context", "kubeconfig context (default: current-context)", ""},
      {"leader-elect-lease-duration", "how long a lease lasts without renewal", "15s"},
      {"leader-elect-renew-deadline", "a leader that cannot renew for this long stops its child", "10s"},
      {"leader-elect-retry-period", "wait between attempts to acquire or renew", "2s"},
      {"enable-leader-election", "false: run CMD directly, without an election", "true", true},
      {"release-on-cancel", "release the lease when stopping", "true", true},
      {"grace-period",
       "after SIGTERM to the worker's tree, wait this long before SIGKILL; at most lease-duration - "
       "renew-deadline - margin (250ms + lease/1000), the default (for-life: 10s)", ""},
      {"worker-cgroup",
       "auto: put the worker in a cgroup v2 leaf of its own when one can be made (else subreaper and "
       "process table); off: never", "auto"},
      {"on-child-exit", "when CMD exits by itself while leading: exit, restart or release", "exit"},
      {"log-format", "text or json", "text"},
      {"http-address",
       "serve /healthz, /readyz (200 only while leading), /leader and /metrics on HOST:PORT, "
       ":PORT or [IPV6]:PORT (port 0: any free one); empty: no endpoints",
       serve ? ":8090" : ""},
      {"name", "name of this election in the metrics' name label and in JSON logs (default: the lock URL)", ""},
      {"label-leader-pod",
       "KEY=VALUE: set this label on our own Pod ($POD_NAME in $POD_NAMESPACE) while leading and remove it "
       "on step-down, so a Service can select the leader (needs RBAC: pods get, patch)", ""},
      {"coordinated", "coordinated leader election (KEP-4355): keep a LeaseCandidate and lead only when "
                      "kube-apiserver names us holder (k8s:// locks; needs --binary-version)", "false", true},
      {"binary-version", "coordinated: this binary's version, MAJOR.MINOR.PATCH", ""},
      {"emulation-version", "coordinated: the version it emulates, MAJOR.MINOR (default: the binary's)", ""},
      {"help", "show this help", "", true},
  };
  if (!serve) {
    all.insert(all.end() - 1,
               {"mode",
                "lease (renewed lease, the default) or for-life (operator-lib leader-for-life: a ConfigMap "
                "named --leader-elect-resource-name owned by this Pod ($POD_NAME) until the Pod is gone)",
                "lease"});
    all.insert(all.end() - 1, {"node-not-ready-grace",
                               "for-life: treat a holder whose Node is NotReady this long as stale (0: never)",
                               "0s"});
  }
  if (serve) {  // no child: drop the flags about it
    std::erase_if(all, [](const FlagSpec& f) {
      return f.name == "enable-leader-election" || f.name == "grace-period" || f.name == "on-child-exit" ||
             f.name == "worker-cgroup";
    });
  }
  return all;
}

// ---- logging ----

struct Logger {
  bool json = false;
  std::string identity;
  std::mutex mu;

  void write(LogLevel level, std::string_view name, std::string_view msg) {
    static constexpr const char* kLevels[] = {"debug", "info", "warning", "error"};
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    std::tm tm{};
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  ts.tv_nsec / 1'000'000);
    std::lock_guard<std::mutex> g(mu);
    if (json) {
      std::string line = "{\"ts\":\"" + std::string(when) + "\",\"level\":\"" +
                         kLevels[static_cast<int>(level)] + "\",\"identity\":" + quote(identity) +
                         ",\"lock\":" + quote(name) + ",\"msg\":" + quote(msg) + "}";
      std::fprintf(stderr, "%s\n", line.c_str());
    } else {
      std::fprintf(stderr, "%s %-7s [%s] %.*s\n", when, kLevels[static_cast<int>(level)],
                   identity.c_str(), static_cast<int>(msg.size()), msg.data());
    }
  }

  static std::string quote(std::string_view s) {
    std::string o = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        o += '\\';
        o += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", c);
        o += b;
      } else {
        o += c;
      }
    }
    return o + "\"";
  }
};

std::string default_identity() {
  if (const char* pod = std::getenv("POD_NAME"); pod && *pod) return pod;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%06x", rd() & 0xffffff);
  return std::string(host) + "-" + suffix;
}

Result<std::string> lock_url(const Flags& f) {
  std::string url = f.get("lock");
  std::string kind = f.get("leader-elect-resource-lock");
  if (!url.empty()) return url;
  if (kind.empty()) {
    return Error::invalid("no lock: set --lock URL (e.g. --lock file:///tmp/app.lease) or "
                          "--leader-elect-resource-lock and --leader-elect-resource-name");
  }
  std::string name = f.get("leader-elect-resource-name");
  if (kind == "file") {
    if (name.empty() || name[0] != '/') {
      return Error::invalid("--leader-elect-resource-name: the file lock needs an absolute path");
    }
    return "file://" + name;
  }
  // client-go's kinds: a Lease, the legacy annotation locks, the migration pairs.
  static const std::pair<std::string_view, std::string_view> kKube[] = {
      {"leases", "k8s"}, {"configmaps", "configmap"}, {"endpoints", "endpoints"},
      {"configmapsleases", "configmapsleases"}, {"endpointsleases", "endpointsleases"}};
  for (const auto& [k, scheme] : kKube) {
    if (kind != k) continue;
    if (name.empty()) return Error::invalid("--leader-elect-resource-name: the " + kind + " lock needs a name");
    std::string ns = f.get("leader-elect-resource-namespace");
    if (ns.empty()) {
      const char* pod_ns = std::getenv("POD_NAMESPACE");
      ns = pod_ns && *pod_ns ? pod_ns : "default";
    }
    return std::string(scheme) + "://" + ns + "/" + name;
  }
  return Error::invalid("--leader-elect-resource-lock: unknown kind \"" + kind +
                        "\" (want file, leases, configmaps, endpoints, configmapsleases or endpointsleases)");
}

// ---- the child ----

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
  return "ended";
}

}  // namespace

int usage(const std::string& error) {
  if (!error.empty()) {  // one line: the problem, not a page of usage
    std::fprintf(stderr, "leasehold: %s\n", error.c_str());
    return 2;
  }
  std::printf("%s", kUsage);
  return 0;
}

namespace {

// "4735ms", "10s": for errors that quote durations.
std::string format_duration(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

// --grace-period for a renewed lease: the worker's tree must be dead before
// another replica could take over, so term_due + grace <= renewed_at +
// lease_duration - margin, with term_due >= renewed_at + renew_deadline at
// the latest. Default: the largest grace that fits.
Result<Duration> grace_for_lease(const Flags& flags, Duration lease, Duration renew) {
  Duration margin = kill_margin(lease);
  Duration room = lease - renew - margin;
  if (room < Duration::zero()) {
    return Error::invalid("--leader-elect-renew-deadline=" + format_duration(renew) +
                          " leaves no time to stop the worker: --leader-elect-lease-duration=" +
                          format_duration(lease) + " minus it must exceed the safety margin " +
                          format_duration(margin));
  }
  if (flags.get("grace-period").empty()) return room;
  auto g = flags.get_duration("grace-period");
  if (!g) return g.error();
  if (*g < Duration::zero()) return Error::invalid("--grace-period: must not be negative");
  if (*g > room) {
    return Error::invalid("--grace-period=" + format_duration(*g) + " is longer than the lease allows: " +
                          "--leader-elect-lease-duration=" + format_duration(lease) +
                          " - --leader-elect-renew-deadline=" + format_duration(renew) + " - margin " +
                          format_duration(margin) + " leaves at most " + format_duration(room));
  }
  return *g;
}

Result<bool> worker_cgroup_flag(const Flags& flags) {
  std::string v = flags.get("worker-cgroup");
  if (v != "auto" && v != "off") return Error::invalid("--worker-cgroup: \"" + v + "\" is not auto or off");
  return v == "auto";
}

// The command's signals, taken by one sigwait thread; block() must run before
// any other thread starts, so every thread inherits the mask. TERM and INT
// call on_stop; HUP, USR1 and USR2 call on_forward (to the worker); CHLD
// reaps exited children nobody else waits for (orphans re-parented to us: we
// are a subreaper, and may be PID 1). Every other signal keeps its default
// action (SIGQUIT still dumps core: the watchdog then stops the worker).
class SignalThread {
 public:
  static sigset_t set() {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD}) sigaddset(&s, sig);
    return s;
  }
  static void block() {
    sigset_t s = set();
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
  }

  SignalThread(std::function<void(int)> on_stop, std::function<void(int)> on_forward)
      : thread_([this, on_stop = std::move(on_stop), on_forward = std::move(on_forward)] {
          sigset_t s = set();
          int sig = 0;
          while (sigwait(&s, &sig) == 0) {
            if (sig == SIGCHLD) {
              while (::waitpid(-1, nullptr, WNOHANG) > 0) {
              }
              if (exiting_) return;
            } else if (sig == SIGTERM || sig == SIGINT) {
              on_stop(sig);
            } else {
              on_forward(sig);
            }
          }
        }) {}
  ~SignalThread() {
    exiting_ = true;
    pthread_kill(thread_.native_handle(), SIGCHLD);  // wakes sigwait; it sees exiting_
  }

 private:
  std::atomic<bool> exiting_{false};
  std::jthread thread_;
};

// --label-leader-pod: labels our own Pod while we lead (JSON merge patches,
// at background priority; a failure is logged, never fatal).
class PodLabeler {
 public:
  static Result<std::optional<PodLabeler>> from_flag(const std::string& flag) {
    if (flag.empty()) return std::optional<PodLabeler>();
    auto eq = flag.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error::invalid("--label-leader-pod: want KEY=VALUE, got \"" + flag + "\"");
    }
    PodLabeler l;
    l.key_ = flag.substr(0, eq);
    l.value_ = flag.substr(eq + 1);
    if (auto p = kube::pod_label_patch(l.key_, std::string_view(l.value_)); !p) {
      return Error::invalid("--label-leader-pod: " + p.error().message());
    }
    const char* pod = std::getenv("POD_NAME");
    const char* ns = std::getenv("POD_NAMESPACE");
    if (!pod || !*pod || !ns || !*ns) {
      return Error::invalid("--label-leader-pod: POD_NAME and POD_NAMESPACE must be set (downward API)");
    }
    l.pod_ = pod;
    l.ns_ = ns;
    return std::optional<PodLabeler>(std::move(l));
  }

  // Blocks up to 5 s; returns what happened, for the log.
  std::string apply(Runtime& rt, bool on) const {
    auto client = RuntimeAccess::kube_client(rt);
    if (!client) return "cannot label pod: " + client.error().message();
    auto body = kube::pod_label_patch(key_, on ? std::optional<std::string_view>(value_) : std::nullopt);
    std::promise<Result<kube::HttpResponse>> p;
    auto f = p.get_future();
    (*client)->request("PATCH", "/api/v1/namespaces/" + ns_ + "/pods/" + pod_, *body, std::chrono::seconds(5),
                       [&p](Result<kube::HttpResponse> r) { p.set_value(std::move(r)); },
                       kube::Priority::kBackground);
    auto r = f.get();
    std::string what = std::string(on ? "set" : "removed") + " label " + key_ + " on pod " + ns_ + "/" + pod_;
    if (!r) return "could not have " + what + ": " + r.error().to_string();
    if (r->status != 200) {
      return "could not have " + what + ": " +
             kube::error_from_response(r->status, r->body, {"patch", "", "pods", ns_, pod_}).to_string();
    }
    return what;
  }

 private:
  std::string key_, value_, pod_, ns_;
};

// Campaigns with the parsed flags: with a child (run) or without (serve).
int campaign_with(const Flags& flags, bool serve) {
  Logger logger;
  std::string format = flags.get("log-format");
  if (format != "text" && format != "json") {
    return usage("--log-format: \"" + format + "\" is not text or json");
  }
  logger.json = format == "json";
  ElectorConfig cfg;
  auto url = lock_url(flags);
  if (!url) return usage(url.error().message());
  cfg.lock = *url;
  cfg.identity = flags.get("identity").empty() ? default_identity() : flags.get("identity");
  logger.identity = cfg.identity;
  for (auto [flag, field] : {std::pair{"leader-elect-lease-duration", &cfg.lease_duration},
                             std::pair{"leader-elect-renew-deadline", &cfg.renew_deadline},
                             std::pair{"leader-elect-retry-period", &cfg.retry_period}}) {
    auto d = flags.get_duration(flag);
    if (!d) return usage(d.error().message());
    *field = *d;
  }
  std::string on_exit;
  if (!serve) {
    on_exit = flags.get("on-child-exit");
    if (on_exit != "exit" && on_exit != "restart" && on_exit != "release") {
      return usage("--on-child-exit: \"" + on_exit + "\" is not exit, restart or release");
    }
  }
  auto release = flags.get_bool("release-on-cancel");
  if (!release) return usage(release.error().message());
  cfg.release_on_cancel = *release;
  cfg.name = flags.get("name");
  auto coordinated = flags.get_bool("coordinated");
  if (!coordinated) return usage(coordinated.error().message());
  cfg.coordinated.enabled = *coordinated;
  cfg.coordinated.binary_version = flags.get("binary-version");
  cfg.coordinated.emulation_version = flags.get("emulation-version");
  if (auto v = cfg.validate(); !v) {
    // Name the flag rather than the library field.
    std::string m = v.error().message();
    for (auto [field, flag] : {std::pair{"lease_duration", "--leader-elect-lease-duration"},
                               std::pair{"renew_deadline", "--leader-elect-renew-deadline"},
                               std::pair{"retry_period", "--leader-elect-retry-period"},
                               std::pair{"coordinated.binary_version", "--binary-version"},
                               std::pair{"coordinated.emulation_version", "--emulation-version"},
                               std::pair{"identity", "--identity"}}) {
      // Search on after the inserted flag, which may contain the field's name.
      for (size_t at = m.find(field); at != std::string::npos; at = m.find(field, at + std::strlen(flag))) {
        m.replace(at, std::strlen(field), flag);
      }
    }
    return usage(m);
  }
  Duration grace{};
  bool worker_cgroup = true;
  if (!serve) {
    auto g = grace_for_lease(flags, cfg.lease_duration, cfg.renew_deadline);
    if (!g) return usage(g.error().message());
    grace = *g;
    auto cg = worker_cgroup_flag(flags);
    if (!cg) return usage(cg.error().message());
    worker_cgroup = *cg;
  }

  SignalThread::block();
  if (!serve) ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // a worker's orphans stay ours if its watchdog dies
  Runtime::Options ro;
  ro.kubeconfig = flags.get("kubeconfig");
  ro.kube_context = flags.get("kube-context");
  ro.log = [&logger](LogLevel l, std::string_view n, std::string_view m) { logger.write(l, n, m); };
  Runtime rt(ro);
  std::atomic<int> final_code{0};
  std::stop_source program_stop;
  std::atomic<Elector*> elector_ptr{nullptr};
  const std::vector<std::string> command = flags.rest();
  auto log = [&](LogLevel l, const std::string& m) { logger.write(l, cfg.lock, m); };

  // The worker of the current term, for the renewal callback and the signal
  // thread; set and cleared by the term's thread.
  std::mutex current_mu;
  Worker* current = nullptr;  // GUARDED_BY(current_mu)
  Term current_term;          // GUARDED_BY(current_mu)
  // The kill schedule of a term renewed at `at` (on the Runtime's clock).
  auto push_deadlines = [&](Worker& w, Instant at) {
    int64_t boot_at = boottime_ns() - (rt.clock().now() - at).count();
    w.set_deadlines(boot_at + cfg.renew_deadline.count(),
                    boot_at + (cfg.lease_duration - kill_margin(cfg.lease_duration)).count());
  };

  auto labeler = PodLabeler::from_flag(flags.get("label-leader-pod"));
  if (!labeler) return usage(labeler.error().message());
  cfg.callbacks.on_started_leading = [&](const Term& term, std::stop_token stop) {
    // The label goes on before the work starts and comes off after it has
    // stopped, before the lease is released.
    struct Label {
      const std::optional<PodLabeler>& l;
      Runtime& rt;
      Logger& log;
      const std::string& lock;
      Label(const std::optional<PodLabeler>& l, Runtime& rt, Logger& log, const std::string& lock)
          : l(l), rt(rt), log(log), lock(lock) {
        if (l) log.write(LogLevel::kInfo, lock, l->apply(rt, true));
      }
      ~Label() {
        if (l) log.write(LogLevel::kInfo, lock, l->apply(rt, false));
      }
    } label(*labeler, rt, logger, cfg.lock);
    if (serve) {  // nothing to run: the endpoints say we lead; wait for the term to end
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock<std::mutex> lk(m);
      cv.wait(lk, stop, [] { return false; });
      return;
    }
    for (;;) {
      if (stop.stop_requested()) return;  // never start a worker for a term that ended
      auto w = Worker::prepare({command,
                                {"LEASEHOLD_IDENTITY=" + cfg.identity, "LEASEHOLD_LEASE=" + cfg.lock,
                                 "LEASEHOLD_TERM=" + std::to_string(term.transitions)},
                                grace, worker_cgroup, log});
      if (!w) {
        log(LogLevel::kError, w.error().message());
        final_code = 127;
        program_stop.request_stop();
        return;
      }
      Worker& worker = **w;
      {
        std::lock_guard<std::mutex> g(current_mu);
        current = &worker;
        current_term = term;
      }
      // From here on_renewed moves the deadlines too; the watchdog keeps the later.
      if (auto at = elector_ptr.load()->status().renewed_at) push_deadlines(worker, *at);
      int status = 0;
      {
        std::stop_callback on_stop(stop, [&worker] { worker.stop(); });
        auto pid = worker.start();
        if (pid) {
          log(LogLevel::kInfo, "leading (term " + term.to_string() + "): started " + command[0] + " as pid " +
                                   std::to_string(*pid));
        } else if (pid.error().is(Code::kInvalid)) {  // it could not be executed
          log(LogLevel::kError, pid.error().message());
          final_code = 127;
          program_stop.request_stop();
        } else {
          log(LogLevel::kInfo, pid.error().message());
        }
        status = worker.wait();
        if (pid) log(LogLevel::kInfo, command[0] + " " + describe_status(status) + "; its process tree is gone");
        if (!pid) {
          std::lock_guard<std::mutex> g(current_mu);
          current = nullptr;
          return;
        }
      }
      {
        std::lock_guard<std::mutex> g(current_mu);
        current = nullptr;
      }
      final_code = exit_code(status);
      if (stop.stop_requested()) return;
      if (on_exit == "exit") {
        program_stop.request_stop();
        return;
      }
      if (on_exit == "release") {
        if (Elector* e = elector_ptr.load()) e->resign();
        return;
      }
      // restart, after a short pause so a crash loop does not spin
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock<std::mutex> lk(m);
      if (cv.wait_for(lk, stop, std::chrono::seconds(1), [] { return false; })) return;
    }
  };
  cfg.callbacks.on_lease_lost = [&](const Term& term) {
    std::lock_guard<std::mutex> g(current_mu);
    if (!current || !(current_term == term)) return;
    log(LogLevel::kWarning, "the lease of term " + term.to_string() +
                                " was taken or freed by someone else: SIGKILL to the worker's tree, no grace");
    current->kill();
  };
  cfg.callbacks.on_renewed = [&](const Term& term, Instant at) {
    std::lock_guard<std::mutex> g(current_mu);
    if (current && current_term == term) push_deadlines(*current, at);
  };
  cfg.callbacks.on_new_leader = [&](const std::string& id) {
    if (id != cfg.identity) logger.write(LogLevel::kInfo, cfg.lock, "standing by; leader is " + id);
  };

  // Bind before campaigning, so a taken port fails fast and campaigns never.
  std::optional<Endpoints> endpoints;
  std::unique_ptr<HttpServer> server;
  if (std::string addr = flags.get("http-address"); !addr.empty()) {
    auto s = HttpServer::listen(addr, [&endpoints](const HttpRequest& r) { return endpoints->handle(r); });
    if (!s) {
      std::fprintf(stderr, "leasehold: %s\n", s.error().message().c_str());
      return 1;
    }
    server = std::move(*s);
  }
  auto elector = Elector::create(rt, cfg);
  if (!elector) return usage(elector.error().message());
  elector_ptr = elector->get();
  if (server) {
    endpoints.emplace(rt, **elector, cfg.identity, cfg.lock, cfg.lease_duration, cfg.renew_deadline);
    server->start();  // after endpoints is set: the thread start orders the two
    logger.write(LogLevel::kInfo, cfg.lock,
                 "serving /healthz /readyz /leader /metrics on http://" + server->bound());
  }
  SignalThread signals(
      [&](int sig) {
        logger.write(LogLevel::kInfo, cfg.lock,
                     std::string("received ") + strsignal(sig) +
                         (serve ? ": releasing the lease if held" : ": stopping the worker, then releasing"));
        program_stop.request_stop();
      },
      [&](int sig) {
        std::lock_guard<std::mutex> g(current_mu);
        if (current) current->forward(sig);
      });
  logger.write(LogLevel::kInfo, cfg.lock, "campaigning as " + cfg.identity);
  (*elector)->start(program_stop.get_token());
  (*elector)->wait();
  if (server) server->stop();  // before the elector its handler reads goes away
  elector->reset();
  return final_code.load();
}

// run --mode=for-life: wait to own the ConfigMap, run the worker until it
// exits, we are signalled, or the lock is lost; then release it.
int run_for_life(const Flags& flags) {
  Logger logger;
  logger.json = flags.get("log-format") == "json";
  ForLifeConfig fl;
  fl.lock_name = flags.get("leader-elect-resource-name");
  fl.ns = flags.get("leader-elect-resource-namespace");
  if (fl.lock_name.empty()) {
    return usage("--mode=for-life: --leader-elect-resource-name (the ConfigMap) is required");
  }
  if (!flags.get("lock").empty()) return usage("--mode=for-life: use --leader-elect-resource-name, not --lock");
  auto grace_nr = flags.get_duration("node-not-ready-grace");
  if (!grace_nr) return usage(grace_nr.error().message());
  if (*grace_nr > Duration::zero()) fl.node_not_ready_grace = *grace_nr;
  Duration grace = std::chrono::seconds(10);  // no lease bounds it: the lock is ours until the Pod is gone
  if (!flags.get("grace-period").empty()) {
    auto g = flags.get_duration("grace-period");
    if (!g) return usage(g.error().message());
    grace = *g;
  }
  auto cg = worker_cgroup_flag(flags);
  if (!cg) return usage(cg.error().message());
  auto release = flags.get_bool("release-on-cancel");
  if (!release) return usage(release.error().message());
  logger.identity = std::getenv("POD_NAME") ? std::getenv("POD_NAME") : "";
  if (auto v = fl.validate(); !v) return usage(v.error().message());

  SignalThread::block();
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  Runtime::Options ro;
  ro.kubeconfig = flags.get("kubeconfig");
  ro.kube_context = flags.get("kube-context");
  ro.log = [&logger](LogLevel l, std::string_view n, std::string_view m) { logger.write(l, n, m); };
  Runtime rt(ro);
  std::stop_source program_stop;
  std::mutex current_mu;
  Worker* current = nullptr;  // GUARDED_BY(current_mu)
  SignalThread signals(
      [&](int sig) {
        logger.write(LogLevel::kInfo, "for-life", std::string("received ") + strsignal(sig));
        program_stop.request_stop();
      },
      [&](int sig) {
        std::lock_guard<std::mutex> g(current_mu);
        if (current) current->forward(sig);
      });
  logger.write(LogLevel::kInfo, "for-life", "waiting to own ConfigMap " + fl.lock_name);
  auto leader = become_leader(rt, fl, program_stop.get_token());
  if (!leader) {
    logger.write(LogLevel::kError, "for-life", leader.error().to_string());
    return program_stop.stop_requested() ? 0 : 1;
  }
  const std::string lock = (*leader)->lock();
  auto log = [&](LogLevel l, const std::string& m) { logger.write(l, lock, m); };
  int code = 127;
  auto w = Worker::prepare({flags.rest(),
                            {"LEASEHOLD_IDENTITY=" + (*leader)->pod(),
                             "LEASEHOLD_LEASE=configmap-for-life://" + lock, "LEASEHOLD_TERM=0"},
                            grace, *cg, log});
  if (!w) {
    log(LogLevel::kError, w.error().message());
  } else {
    {
      std::lock_guard<std::mutex> g(current_mu);
      current = w->get();
    }
    {
      std::stop_callback a(program_stop.get_token(), [&] { (*w)->stop(); });
      std::stop_callback b((*leader)->lost(), [&] { (*w)->stop(); });
      auto pid = (*w)->start();
      if (pid) {
        log(LogLevel::kInfo, "leader for life: started " + flags.rest()[0] + " as pid " + std::to_string(*pid));
      } else {
        log(LogLevel::kError, pid.error().message());
      }
      int status = (*w)->wait();
      if (pid) {
        log(LogLevel::kInfo, flags.rest()[0] + " " + describe_status(status) + "; its process tree is gone");
        code = exit_code(status);
      }
    }
    std::lock_guard<std::mutex> g(current_mu);
    current = nullptr;
  }
  if (*release && !(*leader)->lost().stop_requested()) {
    if (auto r = (*leader)->release(); !r) {
      log(LogLevel::kWarning, "could not release: " + r.error().to_string());
    } else {
      log(LogLevel::kInfo, "released: deleted the ConfigMap");
    }
  }
  leader->reset();
  return code;
}

// run (serve = false) and serve (serve = true).
int campaign(const std::vector<std::string>& args, bool serve) {
  Flags flags(run_flags(serve));
  if (auto r = flags.parse(args, 0); !r) return usage(r.error().message());
  if (flags.get("help") == "true") {
    std::printf(serve ? "usage: leasehold serve [flags]\n\nCampaign for the lease without running a "
                        "child, and serve the endpoints.\n\nflags:\n%s"
                      : "usage: leasehold run [flags] -- CMD [ARGS...]\n\n"
                        "Runs CMD, and every process it starts, only while this replica leads. A watchdog\n"
                        "process kills the whole tree before another replica could take over, even if\n"
                        "this one is stopped or killed.\n\n"
                        "signals: TERM, INT  stop CMD's tree (SIGTERM, SIGKILL after --grace-period),\n"
                        "                    then release the lease and exit with CMD's status\n"
                        "         HUP, USR1, USR2  forwarded to CMD's process group\n"
                        "         CHLD       reaps orphans (it can run as PID 1)\n"
                        "         others     default action (SIGQUIT: the watchdog stops CMD's tree)\n\n"
                        "flags:\n%s",
                flags.help().c_str());
    return 0;
  }
  if (serve) {
    if (flags.has_separator()) return usage("serve: runs no command (use leasehold run -- CMD for that)");
    return campaign_with(flags, true);
  }
  if (flags.rest().empty()) return usage("run: no command given after --");
  auto enabled = flags.get_bool("enable-leader-election");
  if (!enabled) return usage(enabled.error().message());
  if (!*enabled) {
    // The opt-in switch is off: become CMD, no election.
    std::vector<std::string> a = flags.rest();
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "leasehold: cannot start \"%s\": %s\n", argv[0], std::strerror(errno));
    return 127;
  }

  if (auto prog = resolve_program(flags.rest()[0]); !prog) {
    std::fprintf(stderr, "leasehold: %s\n", prog.error().message().c_str());
    return 127;
  }
  if (std::string mode = flags.get("mode"); mode == "for-life") {
    return run_for_life(flags);
  } else if (mode != "lease") {
    return usage("--mode: \"" + mode + "\" is not lease or for-life");
  }
  return campaign_with(flags, false);
}

}  // namespace

int run_command(const std::vector<std::string>& args) { return campaign(args, false); }
int serve_command(const std::vector<std::string>& args) { return campaign(args, true); }

}  // namespace leasehold::cli
