#include "kube/config.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace leasehold::kube {
namespace {

long ms_of(Duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

Result<ExecCredential> run_exec_plugin(const ExecConfig& e, Clock& clock, Duration timeout,
                                       std::atomic<pid_t>& exec_pid) {
  auto fail = [&](const std::string& why) { return Error(Code::kUnauthorized, "exec plugin " + e.command + ": " + why); };
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);  // never interactive
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<std::string> argv_s{e.command};
  argv_s.insert(argv_s.end(), e.args.begin(), e.args.end());
  std::vector<std::string> env_s;
  for (char** p = environ; *p; ++p) env_s.emplace_back(*p);
  for (const auto& [k, v] : e.env) env_s.push_back(k + "=" + v);
  env_s.push_back("KUBERNETES_EXEC_INFO={\"apiVersion\":\"" + e.api_version +
                  "\",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false}}");
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& a : env_s) envp.push_back(a.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, e.command.c_str(), &fa, nullptr, argv.data(), envp.data());
  if (rc == 0) exec_pid = pid;
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return fail(std::string("cannot run: ") + std::strerror(rc));
  }
  std::string text;
  char buf[4096];
  bool eof = false, too_big = false;
  Instant deadline = clock.now() + timeout;
  for (;;) {
    long left = ms_of(deadline - clock.now());
    if (left <= 0) break;
    pollfd pfd{out[0], POLLIN, 0};
    int pr = ::poll(&pfd, 1, static_cast<int>(left));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) break;
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = n == 0;
      break;
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (1 << 20)) {
      too_big = true;
      break;
    }
  }
  ::close(out[0]);
  if (!eof) ::kill(pid, SIGKILL);
  int st = 0;
  bool status_known = true;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno == EINTR) continue;
    // ECHILD: a process-wide reaper (leasehold run, a subreaper and maybe
    // PID 1) collected it first; its output alone decides.
    status_known = false;
    break;
  }
  exec_pid = -1;
  if (too_big) return fail("output larger than 1 MiB");
  if (!eof) return fail("no complete answer within " + std::to_string(ms_of(timeout) / 1000) + "s");
  if (status_known && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
    return fail(WIFEXITED(st) ? "exited with status " + std::to_string(WEXITSTATUS(st))
                              : "killed by signal " + std::to_string(WTERMSIG(st)));
  }
  return parse_exec_credential(text, e.command);
}

}  // namespace leasehold::kube
