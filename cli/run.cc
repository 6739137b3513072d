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
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "backends/backends.h"
#include "cli.h"
#include "endpoints.h"
#include "command_line.h"
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

// ---- logging ----

// Log lines reach stderr through a thread of their own, so a stderr nobody
// reads (a full pipe) never blocks the thread that logs, which may be the
// Runtime's I/O thread. At most kMaxQueuedBytes wait; past that a line is
// dropped and counted, and the count is logged once lines fit again. On
// destruction the lines still waiting get up to kFlushLimit to be written.
class Logger {
 public:
  static constexpr size_t kMaxQueuedBytes = 1 << 20;
  static constexpr Duration kFlushLimit = std::chrono::seconds(2);

  bool json = false;
  std::string identity;

  Logger() {
    // The writer takes no signal (the signal thread takes them all): it
    // starts with every signal blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    writer_ = std::thread([q = q_] { q->write_loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~Logger() {
    std::unique_lock<std::mutex> lk(q_->mu);
    bool drained = q_->cv.wait_for(lk, kFlushLimit, [this] { return q_->lines.empty() && !q_->writing; });
    q_->stop = true;
    q_->cv.notify_all();
    lk.unlock();
    // A writer blocked on a stalled stderr is left behind; it owns q_ too.
    if (drained) writer_.join();
    else writer_.detach();
  }
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void write(LogLevel level, std::string_view name, std::string_view msg) {
    std::string line = format(level, name, msg);
    std::lock_guard<std::mutex> g(q_->mu);
    if (q_->bytes + line.size() > kMaxQueuedBytes) {
      ++q_->dropped;
      return;
    }
    if (q_->dropped > 0) {
      q_->lines.push_back(format(LogLevel::kWarning, name,
                                 std::to_string(q_->dropped) + " log line(s) dropped: stderr was not being read"));
      q_->bytes += q_->lines.back().size();
      q_->dropped = 0;
    }
    q_->bytes += line.size();
    q_->lines.push_back(std::move(line));
    q_->cv.notify_all();
  }

 private:
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> lines;  // GUARDED_BY(mu)
    size_t bytes = 0;               // GUARDED_BY(mu)
    uint64_t dropped = 0;           // GUARDED_BY(mu)
    bool writing = false;           // GUARDED_BY(mu)
    bool stop = false;              // GUARDED_BY(mu)

    void write_loop() {
      std::unique_lock<std::mutex> lk(mu);
      for (;;) {
        cv.wait(lk, [this] { return stop || !lines.empty(); });
        if (lines.empty()) return;  // stopped, and nothing left
        std::string line = std::move(lines.front());
        lines.pop_front();
        writing = true;
        lk.unlock();
        for (size_t off = 0; off < line.size();) {
          ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;  // stderr is closed or broken: the line is lost
          off += static_cast<size_t>(n);
        }
        lk.lock();
        bytes -= line.size();
        writing = false;
        cv.notify_all();
      }
    }
  };

  std::string format(LogLevel level, std::string_view name, std::string_view msg) const {
    static constexpr const char* kLevels[] = {"debug", "info", "warning", "error"};
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    std::tm tm{};
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  ts.tv_nsec / 1'000'000);
    if (json) {
      return "{\"ts\":\"" + std::string(when) + "\",\"level\":\"" + kLevels[static_cast<int>(level)] +
             "\",\"identity\":" + quote(identity) + ",\"lock\":" + quote(name) + ",\"msg\":" + quote(msg) + "}\n";
    }
    // One line per entry: control characters in a message (a server's text,
    // say) are escaped.
    char level_col[16];
    std::snprintf(level_col, sizeof level_col, "%-7s", kLevels[static_cast<int>(level)]);
    return std::string(when) + " " + level_col + " [" + one_line(identity) + "] " + one_line(msg) + "\n";
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

  std::shared_ptr<Queue> q_ = std::make_shared<Queue>();
  std::thread writer_;
};

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
    std::fprintf(stderr, "leasehold: %s\n", one_line(error).c_str());
    return 2;
  }
  std::fprintf(stderr, "%s", top_usage());
  return 2;
}

namespace {

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
  explicit PodLabeler(PodLabel l) : key_(std::move(l.key)), value_(std::move(l.value)), pod_(std::move(l.pod)),
                                    ns_(std::move(l.ns)) {}

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
int campaign_with(RunSettings s) {
  const bool serve = s.serve;
  Logger logger;
  logger.json = s.json_logs;
  ElectorConfig cfg = s.cfg;
  logger.identity = cfg.identity;
  const std::string on_exit = s.on_exit;
  const Duration grace = s.grace;
  const bool worker_cgroup = s.worker_cgroup;

  SignalThread::block();
  if (!serve) ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // a worker's orphans stay ours if its watchdog dies
  Runtime::Options ro;
  ro.kubeconfig = s.kubeconfig;
  ro.kube_context = s.kube_context;
  ro.etcd = s.etcd;
  ro.log = [&logger](LogLevel l, std::string_view n, std::string_view m) { logger.write(l, n, m); };
  Runtime rt(ro);
  std::atomic<int> final_code{0};
  std::stop_source program_stop;
  std::atomic<Elector*> elector_ptr{nullptr};
  const std::vector<std::string> command = s.command;
  auto log = [&](LogLevel l, const std::string& m) { logger.write(l, cfg.lock, m); };

  // The worker of the current term, for the renewal callback and the signal
  // thread; set and cleared by the term's thread.
  std::mutex current_mu;
  Worker* current = nullptr;  // GUARDED_BY(current_mu)
  Term current_term;          // GUARDED_BY(current_mu)
  // The last term on_lease_lost named: a notice that comes before the term's
  // worker is set as `current` is acted on when it is set.
  std::optional<Term> lost_term;  // GUARDED_BY(current_mu)
  // The kill schedule of a term renewed at `at` (on the Runtime's clock).
  auto push_deadlines = [&](Worker& w, Instant at) {
    int64_t boot_at = boottime_ns() - (rt.clock().now() - at).count();
    w.set_deadlines(boot_at + cfg.renew_deadline.count(),
                    boot_at + (cfg.lease_duration - kill_margin(cfg.lease_duration)).count());
  };

  std::optional<PodLabeler> labeler;
  if (s.label) labeler.emplace(*s.label);
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
    } label(labeler, rt, logger, cfg.lock);
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
        if (lost_term == term) worker.kill();  // the lease went while the watchdog was being started
      }
      // From here on_renewed moves the deadlines too; the watchdog keeps the later.
      // No renewal time: the term is over, and a worker never starts without
      // its kill schedule.
      if (auto at = elector_ptr.load()->status().renewed_at) {
        push_deadlines(worker, *at);
      } else {
        worker.kill();
      }
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
        } else if (pid.error().is(Code::kGone)) {  // the term ended first
          log(LogLevel::kInfo, pid.error().message());
        } else {
          // The watchdog could not fork it or died: holding the lease with no
          // work would keep every other replica from leading.
          log(LogLevel::kError, pid.error().message() + "; exiting, so that the lease is released and another "
                                                         "replica leads");
          final_code = 1;
          program_stop.request_stop();
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
    lost_term = term;
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

  // The lock first: a bad one is a usage error (exit 2) even when the port
  // is taken too. The Elector is made on it after the bind (one made and
  // dropped unstarted would log "stopped").
  auto lock = rt.open_lock(cfg.lock);
  if (!lock) return usage(lock.error().message());
  // Bind before campaigning, so a taken port fails fast and campaigns never.
  std::optional<Endpoints> endpoints;
  std::unique_ptr<HttpServer> server;
  if (const std::string& addr = s.http_address; !addr.empty()) {
    auto s = HttpServer::listen(addr, [&endpoints](const HttpRequest& r) { return endpoints->handle(r); });
    if (!s) {
      std::fprintf(stderr, "leasehold: %s\n", s.error().message().c_str());
      return 1;
    }
    server = std::move(*s);
  }
  auto elector = Elector::create(rt, cfg, std::move(*lock));
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
int run_for_life(RunSettings s) {
  Logger logger;
  logger.json = s.json_logs;
  ForLifeConfig fl = s.for_life_cfg;
  const Duration grace = s.grace;
  logger.identity = std::getenv("POD_NAME") ? std::getenv("POD_NAME") : "";

  SignalThread::block();
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  Runtime::Options ro;
  ro.kubeconfig = s.kubeconfig;
  ro.kube_context = s.kube_context;
  ro.etcd = s.etcd;
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
  auto w = Worker::prepare({s.command,
                            {"LEASEHOLD_IDENTITY=" + (*leader)->pod(),
                             "LEASEHOLD_LEASE=configmap-for-life://" + lock, "LEASEHOLD_TERM=0"},
                            grace, s.worker_cgroup, log});
  if (!w) {
    log(LogLevel::kError, w.error().message());
  } else {
    {
      std::lock_guard<std::mutex> g(current_mu);
      current = w->get();
    }
    {
      std::stop_callback a(program_stop.get_token(), [&] { (*w)->stop(); });
      // Lost: the ConfigMap no longer names us and a standby may create it at
      // once, so no grace.
      std::stop_callback b((*leader)->lost(), [&] { (*w)->kill(); });
      auto pid = (*w)->start();
      if (pid) {
        log(LogLevel::kInfo, "leader for life: started " + s.command[0] + " as pid " + std::to_string(*pid));
      } else {
        log(LogLevel::kError, pid.error().message());
      }
      int status = (*w)->wait();
      if (pid) {
        log(LogLevel::kInfo, s.command[0] + " " + describe_status(status) + "; its process tree is gone");
        code = exit_code(status);
      }
    }
    std::lock_guard<std::mutex> g(current_mu);
    current = nullptr;
  }
  if (s.release_on_cancel && !(*leader)->lost().stop_requested()) {
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
  auto parsed = parse_run(args, serve);
  if (!parsed) return usage(parsed.error().message());
  RunSettings& s = *parsed;
  if (s.help) {
    std::printf("%s", command_help(serve ? "serve" : "run").c_str());
    return 0;
  }
  if (s.direct) {
    // The opt-in switch is off: become CMD, no election.
    std::vector<char*> argv;
    for (auto& a : s.command) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "leasehold: cannot start \"%s\": %s\n", one_line(argv[0]).c_str(), std::strerror(errno));
    return 127;
  }
  if (!serve) {
    if (auto prog = resolve_program(s.command[0]); !prog) {
      std::fprintf(stderr, "leasehold: %s\n", one_line(prog.error().message()).c_str());
      return 127;
    }
  }
  if (s.for_life) {
    if (auto v = s.for_life_cfg.validate(); !v) return usage(v.error().message());
    return run_for_life(std::move(s));
  }
  // Campaigning writes the lease: a file lock's directory must be writable
  // (the library opens the lock without this check: status only reads).
  if (const std::string& url = s.cfg.lock; url.starts_with("file:///")) {
    std::string path = url.substr(std::strlen("file://"));
    path = path.substr(0, path.find('?'));
    std::string dir = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
    if (::access(dir.c_str(), W_OK) != 0 && (errno == EACCES || errno == EROFS)) {
      return usage("lock URL \"" + url + "\": directory " + dir + " is not writable by this user (" +
                   std::strerror(errno) + "); campaigning writes the lease there");
    }
  }
  return campaign_with(std::move(s));
}

}  // namespace

int run_command(const std::vector<std::string>& args) { return campaign(args, false); }
int serve_command(const std::vector<std::string>& args) { return campaign(args, true); }

}  // namespace leasehold::cli
