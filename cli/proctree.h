// Process trees and cgroups, for supervising a worker and everything it
// starts (the sidecar and its deadline watchdog, see watchdog.h).
//
// A tree is found from the process table (/proc/*/stat parent links), so it
// includes descendants that left the process group or session. With
// PR_SET_CHILD_SUBREAPER on the root, orphans are re-parented to the root
// and stay in its tree. A cgroup v2 leaf, where one can be made, contains the
// same processes and can be killed atomically (cgroup.kill).
//
// Threading: free functions and a value type; no shared state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "leasehold/error.h"

namespace leasehold::cli {

// Every live process below `root` (not `root` itself), parents before children.
std::vector<pid_t> descendants(pid_t root);

// "pid 123 (sleep), pid 124 (sh)": for logs.
std::string describe_pids(const std::vector<pid_t>& pids);

// Sends `sig` to each pid; returns how many were sent.
size_t signal_pids(const std::vector<pid_t>& pids, int sig);

// CLOCK_BOOTTIME in nanoseconds: keeps counting through system suspend.
int64_t boottime_ns();

// A cgroup v2 leaf made for one worker tree.
class Cgroup {
 public:
  // Makes DIR/<name> under the cgroup v2 directory this process is in.
  // Fails (with the reason) when there is no cgroup2 mount, it is not
  // writable, or the kernel has no cgroup.kill (before 5.14).
  static Result<Cgroup> create(const std::string& name);
  // Opens an existing leaf made by create() (in another process).
  static Cgroup open(std::string dir) { return Cgroup(std::move(dir)); }

  const std::string& dir() const { return dir_; }
  // Moves `pid` into the cgroup.
  bool add(pid_t pid) const;
  // Pids in the cgroup now.
  std::vector<pid_t> pids() const;
  // SIGKILL to every process in it, atomically (cgroup.kill).
  bool kill() const;
  // Whether any process is in it (cgroup.events "populated").
  bool populated() const;
  // Removes the (empty) directory.
  void remove() const;

 private:
  explicit Cgroup(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace leasehold::cli
