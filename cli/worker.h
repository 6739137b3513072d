// The sidecar's worker: CMD and every process it starts, bound to the
// lease's deadlines by a watchdog process.
//
// `leasehold run` never forks CMD itself. It starts a deadline watchdog
// (`leasehold __watchdog`: the same binary, in a process group of its own,
// doing nothing else), which forks CMD, is the subreaper of CMD's whole tree
// (orphans, including processes that called setsid, are re-parented to it),
// puts CMD in a cgroup v2 leaf where one can be made, and runs the kill
// schedule on CLOCK_BOOTTIME by itself:
//
//   term_due = the first of: soft (renewed_at + renew_deadline), our own
//              stop, or CMD exiting while part of its tree lives on;
//   (kill(): the lease was seen taken or freed by someone else: SIGKILL now)
//   at term_due:                 SIGTERM to every process of the tree;
//   at min(term_due + grace, hard = renewed_at + lease_duration - margin):
//                                SIGKILL to the tree, repeated until empty.
//
// The sidecar moves soft and hard forward after every renewal
// (set_deadlines). If the sidecar is stopped, hangs or dies, the schedule
// still runs: a stalled sidecar cannot keep the worker past `hard`, and a
// dead one (the watchdog sees its socket close) counts as a stop. The term
// ends (wait() returns) only once the tree is empty.
//
// Threading: prepare(), start() and wait() from one thread (the term's);
// set_deadlines(), stop(), kill() and forward() from any thread, at any time, and
// never block.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "leasehold/clock.h"
#include "leasehold/error.h"
#include "leasehold/runtime.h"
#include "proctree.h"

namespace leasehold::cli {

// How long before another replica could take over (renewed_at +
// lease_duration) the worker's tree is SIGKILLed: 250 ms for signal delivery,
// reaping and a watchdog woken late on a busy node, plus 1 ms per second of
// lease for clock-rate drift between nodes (1000 ppm, twice NTP's bound).
inline Duration kill_margin(Duration lease_duration) { return std::chrono::milliseconds(250) + lease_duration / 1000; }

// Finds CMD the way execvp would (a name without '/' is looked up in PATH),
// so a typo is reported before campaigning.
Result<std::string> resolve_program(const std::string& name);

class Worker {
 public:
  struct Options {
    std::vector<std::string> argv;  // CMD and its arguments; argv[0] as resolved
    std::vector<std::string> env;   // NAME=VALUE added to (or replacing) ours
    Duration grace{};               // term_due -> SIGKILL
    bool cgroup = true;             // try a cgroup v2 leaf first
    std::function<void(LogLevel, const std::string&)> log;
  };

  // Starts the watchdog; CMD is not started yet.
  static Result<std::unique_ptr<Worker>> prepare(Options o);
  // Kills the tree and waits for it if still running.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The kill schedule's soft and hard instants (CLOCK_BOOTTIME ns; 0: none).
  // Only ever moves them forward.
  void set_deadlines(int64_t soft_ns, int64_t hard_ns);
  // Forks CMD, unless stop() came first or a deadline has passed. Returns
  // its pid, or why it did not start: Invalid when CMD cannot be executed,
  // Gone when the term had ended (a stop, a kill or a deadline came first),
  // Internal when the watchdog could not start it (fork, pipe) or died.
  Result<pid_t> start();
  // Our own stop: SIGTERM to the tree now, SIGKILL after `grace` (or at hard).
  void stop();
  // The lease is another's: SIGKILL to the tree now, no grace.
  void kill();
  // Sends `sig` to CMD's process group.
  void forward(int sig);
  // Blocks until every process of the tree is gone. Returns CMD's wait
  // status (as waitpid reports it).
  int wait();

 private:
  explicit Worker(Options o) : opt_(std::move(o)) {}
  void send(const std::string& msg);
  // Reads one message from the watchdog; nullopt once it is gone.
  std::optional<std::string> receive();
  // Handles a report; true for the ones the caller waits for.
  bool handle(const std::string& msg);
  // The watchdog died before the tree was empty: kill what is left ourselves.
  void clean_up_after_watchdog();

  Options opt_;
  pid_t watchdog_ = -1;
  int fd_ = -1;  // our end of the socket; closed only by the destructor
  std::mutex send_mu_;
  bool send_ok_ = true;  // GUARDED_BY(send_mu_)
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  bool empty_ = false;
  std::optional<Cgroup> cgroup_;
};

// `leasehold __watchdog ...`: the watchdog process (see above). Internal.
int watchdog_main(const std::vector<std::string>& args);

}  // namespace leasehold::cli
