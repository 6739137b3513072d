// The sidecar's side of the worker (see worker.h); the watchdog process
// itself is in watchdog.cc.
#include "worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace leasehold::cli {

Result<std::string> resolve_program(const std::string& name) {
  if (name.empty()) return Error::invalid("cannot start \"\": the command's name is empty");
  if (name.find('/') != std::string::npos) {
    struct stat st {};
    if (::stat(name.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Error::invalid("cannot start \"" + name + "\": it is a directory");
    }
    if (::access(name.c_str(), X_OK) != 0) {
      return Error::invalid("cannot start \"" + name + "\": " + std::strerror(errno));
    }
    return name;
  }
  const char* p = std::getenv("PATH");
  std::string dirs = p ? p : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    // As execvp: an empty entry is the current directory, and a directory
    // of that name is passed over.
    std::string cand = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::access(cand.c_str(), X_OK) == 0 && ::stat(cand.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) return cand;
    start = end + 1;
  }
  return Error::invalid("cannot start \"" + name + "\": not found in PATH");
}


Result<std::unique_ptr<Worker>> Worker::prepare(Options o) {
  if (o.argv.empty()) return Error::invalid("no command");
  auto path = resolve_program(o.argv[0]);  // again: PATH or the file may have changed
  if (!path) return path.error();
  std::unique_ptr<Worker> w(new Worker(std::move(o)));
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return Error::internal(std::string("socketpair: ") + std::strerror(errno));
  }
  // The watchdog finds its end as fd 3; keep ours and the source of the dup
  // away from 3 so the dup is a real one (and clears close-on-exec).
  int theirs = ::fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  ::close(sv[1]);
  w->fd_ = sv[0];

  // The environment: ours, with the worker's NAME=VALUE replacing ours.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    bool replaced = false;
    for (const auto& x : w->opt_.env) {
      if (kv.substr(0, kv.find('=') + 1) == std::string_view(x).substr(0, x.find('=') + 1)) replaced = true;
    }
    if (!replaced) env.emplace_back(kv);
  }
  env.insert(env.end(), w->opt_.env.begin(), w->opt_.env.end());
  std::vector<std::string> args = {"leasehold", "__watchdog",
                                   "--grace-ns", std::to_string(w->opt_.grace.count()),
                                   "--cgroup", w->opt_.cgroup ? "auto" : "off", "--path", *path, "--"};
  args.insert(args.end(), w->opt_.argv.begin(), w->opt_.argv.end());
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, theirs, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: a signal to ours does not reach it
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  int rc = ::posix_spawn(&w->watchdog_, "/proc/self/exe", &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(theirs);
  if (rc != 0) return Error::internal(std::string("cannot start the watchdog: ") + std::strerror(rc));
  // Wait for it to be ready (it reports whether it made a cgroup first).
  for (;;) {
    auto m = w->receive();
    if (!m) return Error::internal("the watchdog exited before it was ready");
    if (*m == "ready") break;
    w->handle(*m);
  }
  return w;
}

Worker::~Worker() {
  if (fd_ < 0) return;
  if (!empty_ && watchdog_ > 0) {
    send("stop");
    wait();
  }
  ::close(fd_);
}

void Worker::send(const std::string& msg) {
  std::lock_guard<std::mutex> g(send_mu_);
  if (!send_ok_) return;
  if (::send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
    send_ok_ = false;  // the watchdog is gone; wait() cleans up
  }
}

void Worker::set_deadlines(int64_t soft_ns, int64_t hard_ns) {
  send("deadline " + std::to_string(soft_ns) + " " + std::to_string(hard_ns));
}

void Worker::stop() { send("stop"); }

void Worker::kill() { send("kill"); }

void Worker::forward(int sig) { send("signal " + std::to_string(sig)); }

std::optional<std::string> Worker::receive() {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }
}

bool Worker::handle(const std::string& msg) {
  auto sp = msg.find(' ');
  std::string kind = msg.substr(0, sp);
  std::string rest = sp == std::string::npos ? "" : msg.substr(sp + 1);
  if (kind == "started") {
    pid_ = static_cast<pid_t>(std::stol(rest));
    return true;
  }
  if (kind == "not-started") return true;
  if (kind == "exited") {
    status_ = std::stoi(rest);
    exited_ = true;
    return false;
  }
  if (kind == "cgroup") {
    cgroup_ = Cgroup::open(rest);
    return false;
  }
  if (kind == "empty") {
    empty_ = true;
    return true;
  }
  if (kind == "info" || kind == "warning") {
    if (opt_.log) opt_.log(kind == "info" ? LogLevel::kInfo : LogLevel::kWarning, rest);
    return false;
  }
  return false;
}

Result<pid_t> Worker::start() {
  send("start");
  for (;;) {
    auto m = receive();
    if (!m) return Error::internal("the watchdog exited before it started " + opt_.argv[0]);
    if (!handle(*m)) continue;
    if (m->rfind("started", 0) == 0) return pid_;
    // "not-started REASON": CMD could not be executed, or the term had ended.
    std::string why = m->substr(std::min(m->size(), sizeof "not-started"));
    if (why.rfind("cannot start", 0) == 0) return Error::invalid(why);
    if (why.rfind("the term", 0) == 0) return Error{Code::kGone, "did not start " + opt_.argv[0] + ": " + why};
    return Error::internal("did not start " + opt_.argv[0] + ": " + why);
  }
}

int Worker::wait() {
  while (!empty_) {
    auto m = receive();
    if (!m) break;
    handle(*m);
  }
  if (!empty_) clean_up_after_watchdog();
  empty_ = true;
  int st = 0;
  // ECHILD: the sidecar's reaper (it reaps orphans) collected it first.
  while (::waitpid(watchdog_, &st, 0) < 0 && errno == EINTR) {
  }
  return status_;
}

void Worker::clean_up_after_watchdog() {
  // CMD died with the watchdog (PR_SET_PDEATHSIG); its orphans were
  // re-parented to us (we are a subreaper too), or are in the cgroup.
  if (opt_.log) opt_.log(LogLevel::kWarning, "the watchdog of " + opt_.argv[0] + " ended early; killing what is left of its tree");
  bool told = false;
  for (int round = 1;; ++round) {
    std::vector<pid_t> left = descendants(::getpid());
    if (cgroup_) {
      cgroup_->kill();
      for (pid_t p : cgroup_->pids()) left.push_back(p);
    }
    std::erase(left, watchdog_);
    if (left.empty() && (!cgroup_ || !cgroup_->populated())) break;
    if (!told && opt_.log) {
      opt_.log(LogLevel::kWarning, "killing " + describe_pids(left));
      told = true;
    }
    signal_pids(left, SIGKILL);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (round % 200 == 0 && opt_.log) {  // about once a second
      opt_.log(LogLevel::kWarning, "still waiting for " + describe_pids(left) + " to die");
    }
    ::poll(nullptr, 0, 5);
  }
  if (cgroup_) cgroup_->remove();
}

}  // namespace leasehold::cli
