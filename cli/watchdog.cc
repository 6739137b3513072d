// The deadline watchdog: `leasehold __watchdog --grace-ns N --cgroup auto|off
// --path RESOLVED -- CMD ARGS...`, started by the sidecar with its socket as fd 3 (see
// worker.h for what it guarantees).
//
// One thread, one poll loop over the socket, a signalfd (SIGCHLD, SIGTERM)
// and a CLOCK_BOOTTIME timerfd armed at the next instant of the schedule.
//
// Messages are SOCK_SEQPACKET datagrams of text.
//   sidecar -> watchdog: "deadline SOFT HARD", "start", "stop", "kill", "signal N"
//   watchdog -> sidecar: "cgroup DIR", "ready", "started PID",
//                        "not-started REASON", "exited WAITSTATUS",
//                        "info TEXT", "warning TEXT", "empty" (then it exits)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "worker.h"

namespace leasehold::cli {
namespace {

constexpr int kSock = 3;
constexpr int64_t kNone = INT64_MAX;
constexpr int64_t kRekillNs = 20'000'000;  // SIGKILL again while anything is left

// Replies and state changes wait for room on the socket; a log line ("info",
// "warning") is dropped rather than block the schedule behind a stopped
// sidecar that reads nothing.
void report(const std::string& msg) {
  bool log_line = msg.rfind("info ", 0) == 0 || msg.rfind("warning ", 0) == 0;
  (void)!::send(kSock, msg.data(), msg.size(), MSG_NOSIGNAL | (log_line ? MSG_DONTWAIT : 0));
}

std::string ms(int64_t ns) { return std::to_string(ns / 1'000'000) + " ms"; }

class Watchdog {
 public:
  Watchdog(int64_t grace_ns, std::string path, std::vector<std::string> argv)
      : grace_(grace_ns), path_(std::move(path)), argv_(std::move(argv)) {}

  int run(bool try_cgroup) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    ::prctl(PR_SET_NAME, "leasehold-watch");
    ::fcntl(kSock, F_SETFD, FD_CLOEXEC);
    // A terminal's signals are not ours to act on; SIGTERM means "stop".
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    sigfd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    timer_ = ::timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    if (sigfd_ < 0 || timer_ < 0) {
      report(std::string("warning watchdog: ") + std::strerror(errno));
      return 1;
    }
    if (try_cgroup) {
      auto cg = Cgroup::create("leasehold-" + std::to_string(::getppid()) + "-" + std::to_string(::getpid()));
      if (cg) {
        cgroup_ = *cg;
        report("cgroup " + cgroup_->dir());
      } else {
        report("info no cgroup for the worker (" + cg.error().message() +
               "): its tree is followed by subreaper and process table");
      }
    }
    report("ready");
    for (;;) {
      int64_t now = boottime_ns();
      act(now);
      if (started_ && reap_and_check_empty()) break;
      if (!started_ && (not_started_ || stop_at_ != kNone || sidecar_gone_)) break;  // never started
      arm(now);
      pollfd fds[3] = {{sigfd_, POLLIN, 0}, {timer_, POLLIN, 0}, {kSock, POLLIN, 0}};
      if (::poll(fds, sidecar_gone_ ? 2 : 3, -1) < 0 && errno != EINTR) return 1;
      drain_signals();
      uint64_t ticks;
      while (::read(timer_, &ticks, sizeof ticks) > 0) {
      }
      if (!sidecar_gone_ && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) read_messages();
    }
    if (cgroup_) cgroup_->remove();
    report("empty");
    return 0;
  }

 private:
  // What is due at `now`: SIGTERM to the tree, then SIGKILL.
  void act(int64_t now) {
    if (!started_) return;
    if (!term_sent_) {
      int64_t due = std::min({soft_, stop_at_, exit_at_});
      if (now >= due) {
        term_sent_ = true;
        term_due_ = due;
        const char* why = due == stop_at_ ? "stopping" : due == exit_at_ ? "CMD exited; stopping what is left"
                                                                         : "renew deadline passed";
        auto pids = tree();
        if (!pids.empty() && now < kill_due()) {
          signal_pids(pids, SIGTERM);  // before the report, which reads /proc once per process
          report(std::string("info ") + why + ": SIGTERM to " + describe_pids(pids));
        }
      }
    }
    if (!killing_ && now >= kill_due()) {
      killing_ = true;
      // The kill goes first: the report reads /proc once per process.
      if (cgroup_) cgroup_->kill();
      auto pids = tree();
      signal_pids(pids, SIGKILL);
      if (!pids.empty()) {
        std::string when = now >= kill_at_ ? std::string("the lease is another's")
                           : now >= hard_  ? "lease deadline (less than the safety margin before another "
                                             "replica may take over)"
                                           : "grace period over (" + ms(grace_) + ")";
        report("warning " + when + ": SIGKILL to " + describe_pids(pids));
      }
    } else if (killing_) {
      if (cgroup_) cgroup_->kill();
      signal_pids(tree(), SIGKILL);
    }
  }

  int64_t kill_due() const {
    int64_t k = std::min(hard_, kill_at_);
    if (term_sent_ && term_due_ <= kNone - grace_) k = std::min(k, term_due_ + grace_);
    return k;
  }

  void arm(int64_t now) {
    int64_t next = kNone;
    if (started_) {
      if (!term_sent_) next = std::min({soft_, stop_at_, exit_at_});
      if (!killing_) next = std::min(next, kill_due());
      if (killing_ || leftovers_only_in_cgroup_) next = std::min(next, now + kRekillNs);
    }
    itimerspec its{};
    if (next != kNone) {
      next = std::max(next, int64_t{1});
      its.it_value.tv_sec = next / 1'000'000'000;
      its.it_value.tv_nsec = next % 1'000'000'000;
    }
    ::timerfd_settime(timer_, TFD_TIMER_ABSTIME, &its, nullptr);
  }

  std::vector<pid_t> tree() const {
    std::vector<pid_t> pids = descendants(::getpid());
    if (cgroup_) {
      for (pid_t p : cgroup_->pids()) {
        if (std::find(pids.begin(), pids.end(), p) == pids.end()) pids.push_back(p);
      }
    }
    return pids;
  }

  // Reaps every exited child; true once nothing of the tree is left.
  bool reap_and_check_empty() {
    for (;;) {
      int st = 0;
      pid_t p = ::waitpid(-1, &st, WNOHANG);
      if (p > 0) {
        if (p == pid_) {
          report("exited " + std::to_string(st));
          pid_ = -1;
          if (exit_at_ == kNone) exit_at_ = boottime_ns();  // SIGTERM whatever it left behind
        }
        continue;
      }
      if (p < 0 && errno == EINTR) continue;
      bool children = p == 0;
      leftovers_only_in_cgroup_ = !children && cgroup_ && cgroup_->populated();
      if (leftovers_only_in_cgroup_) cgroup_->kill();  // in the leaf but not below us
      return !children && !leftovers_only_in_cgroup_;
    }
  }

  void drain_signals() {
    signalfd_siginfo si;
    while (::read(sigfd_, &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGTERM && stop_at_ == kNone) stop_at_ = boottime_ns();
    }
  }

  void read_messages() {
    char buf[512];
    for (;;) {
      ssize_t n = ::recv(kSock, buf, sizeof buf - 1, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        // The sidecar is gone (crashed or killed): nobody renews any more.
        sidecar_gone_ = true;
        if (stop_at_ == kNone) stop_at_ = boottime_ns();
        return;
      }
      handle(std::string(buf, static_cast<size_t>(n)));
    }
  }

  void handle(const std::string& m) {
    if (m.rfind("deadline ", 0) == 0) {
      long long soft = 0, hard = 0;
      if (std::sscanf(m.c_str(), "deadline %lld %lld", &soft, &hard) != 2) return;
      if (soft > 0) soft_ = soft_ == kNone ? soft : std::max<int64_t>(soft_, soft);
      if (hard > 0) hard_ = hard_ == kNone ? hard : std::max<int64_t>(hard_, hard);
    } else if (m == "stop") {
      if (stop_at_ == kNone) stop_at_ = boottime_ns();
    } else if (m == "kill") {  // the lease is another's: no grace
      int64_t now = boottime_ns();
      if (stop_at_ == kNone) stop_at_ = now;
      kill_at_ = std::min(kill_at_, now);
    } else if (m.rfind("signal ", 0) == 0) {
      int sig = std::atoi(m.c_str() + 7);
      if (pid_ > 0 && sig > 0) ::kill(-pid_, sig);
    } else if (m == "start") {
      start();
    }
  }

  // Forks CMD; on any failure reports why, and the watchdog exits.
  void start() {
    if (started_) return;
    not_started_ = true;
    int64_t now = boottime_ns();
    if (stop_at_ != kNone) return report("not-started the term was already stopping");
    if (now >= std::min(soft_, hard_)) return report("not-started the term's deadline had passed");
    int err[2], go[2];
    if (::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) {
      return report(std::string("not-started pipe: ") + std::strerror(errno));
    }
    std::vector<char*> argv;
    for (auto& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return report(std::string("not-started fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::setpgid(0, 0);
      for (int s : {SIGINT, SIGHUP, SIGPIPE}) ::signal(s, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      char c;
      while (::read(go[0], &c, 1) < 0 && errno == EINTR) {
      }
      ::execv(path_.c_str(), argv.data());
      int e = errno;
      (void)!::write(err[1], &e, sizeof e);
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(go[0]);
    ::close(err[1]);
    if (cgroup_ && !cgroup_->add(pid)) {
      report(std::string("info cannot move the worker into ") + cgroup_->dir() + " (" + std::strerror(errno) +
             "): its tree is followed by subreaper and process table");
      cgroup_->remove();
      cgroup_.reset();
    }
    (void)!::write(go[1], "g", 1);
    ::close(go[1]);
    int child_errno = 0;
    ssize_t n;
    while ((n = ::read(err[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    ::close(err[0]);
    if (n == sizeof child_errno) {
      int st;
      ::waitpid(pid, &st, 0);
      return report("not-started cannot start \"" + path_ + "\": " + std::strerror(child_errno));
    }
    pid_ = pid;
    started_ = true;
    not_started_ = false;
    report("started " + std::to_string(pid));
  }

  const int64_t grace_;
  const std::string path_;  // argv_[0] as resolved by the sidecar
  std::vector<std::string> argv_;
  int sigfd_ = -1, timer_ = -1;
  std::optional<Cgroup> cgroup_;
  pid_t pid_ = -1;
  bool started_ = false, not_started_ = false, sidecar_gone_ = false;
  int64_t soft_ = kNone, hard_ = kNone, stop_at_ = kNone, exit_at_ = kNone, kill_at_ = kNone;
  bool term_sent_ = false, killing_ = false, leftovers_only_in_cgroup_ = false;
  int64_t term_due_ = kNone;
};

}  // namespace

int watchdog_main(const std::vector<std::string>& args) {
  int64_t grace = 0;
  bool cgroup = true;
  std::string path;
  size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) {
    if (args[i] == "--grace-ns" && i + 1 < args.size()) {
      const std::string& v = args[++i];
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), grace);
      if (ec != std::errc() || end != v.data() + v.size() || grace < 0) {
        std::fprintf(stderr, "leasehold __watchdog: --grace-ns \"%s\" is not a count of nanoseconds\n", v.c_str());
        return 2;
      }
    }
    else if (args[i] == "--cgroup" && i + 1 < args.size()) cgroup = args[++i] != "off";
    else if (args[i] == "--path" && i + 1 < args.size()) path = args[++i];
  }
  if (i + 1 >= args.size() || path.empty()) {
    std::fprintf(stderr, "leasehold __watchdog: internal command; started by leasehold run\n");
    return 2;
  }
  std::vector<std::string> argv(args.begin() + static_cast<long>(i) + 1, args.end());
  return Watchdog(grace, std::move(path), std::move(argv)).run(cgroup);
}

}  // namespace leasehold::cli
