// The leasehold command line, parsed and checked before anything starts:
// every flag, its environment variable and the rules between them. Nothing
// here opens a lock, binds a port or starts a process, so the whole parser
// can be fuzzed (tests/fuzz/fuzz_command_line.cc).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "flags.h"
#include "leasehold/config.h"
#include "leasehold/for_life.h"
#include "leasehold/runtime.h"

namespace leasehold::cli {

// Lower bounds on the timings (the library only needs them > 0): a shorter
// retry period only loads the lock's store (a 1ns period renewed a file lock
// ~120 times a second), and the Lease stores its duration in whole seconds.
inline constexpr Duration kMinRetryPeriod = std::chrono::milliseconds(100);
inline constexpr Duration kMinRenewDeadline = std::chrono::milliseconds(500);
inline constexpr Duration kMinLeaseDuration = std::chrono::seconds(1);
inline constexpr Duration kMinPollPeriod = std::chrono::milliseconds(100);

// The top-level usage (leasehold help), and the help of each command.
const char* top_usage();
std::string command_help(const std::string& command, const Env& env = {});  // "" for an unknown command

// --label-leader-pod KEY=VALUE on $POD_NAME in $POD_NAMESPACE.
struct PodLabel {
  std::string key, value, pod, ns;
};

// leasehold run / serve.
struct RunSettings {
  bool help = false;         // --help: print command_help and exit 0; nothing else is set
  bool serve = false;
  bool direct = false;       // --enable-leader-election=false: become command, no election
  bool for_life = false;     // --mode=for-life: for_life_cfg (not yet validate()d), grace, worker_cgroup,
                             // release_on_cancel
  std::vector<std::string> command;  // after "--" (run)
  bool json_logs = false;
  ElectorConfig cfg;         // lease mode: lock, identity, timings, coordinated, name, release_on_cancel
  ForLifeConfig for_life_cfg;
  Duration grace{};
  bool worker_cgroup = true;
  bool release_on_cancel = true;
  std::string on_exit;       // run: exit, restart or release
  std::optional<PodLabel> label;
  std::string http_address;  // "" or a syntactically valid HOST:PORT
  std::string kubeconfig, kube_context;
  Runtime::Options::Etcd etcd;  // --etcd-cacert, --etcd-cert, --etcd-key, --etcd-user, --etcd-password-file
};

// Every error is one line naming the flag (or LEASEHOLD_* variable) and
// what is wrong; the caller exits 2 with it. Identity defaults ($POD_NAME,
// else hostname-RANDOM) are filled in.
Result<RunSettings> parse_run(const std::vector<std::string>& args, bool serve, const Env& env = {});

// leasehold status / observe / release / handoff.
struct AdminSettings {
  bool help = false;
  std::string lock;
  std::string output;        // status: table, wide, json or yaml; observe: text, json or yaml
  Duration poll_period{};    // observe
  bool force = false;        // release
  bool repair = false;       // release
  std::string to;            // handoff
  Duration timeout{};        // handoff
  std::string kubeconfig, kube_context;
  Runtime::Options::Etcd etcd;
};
Result<AdminSettings> parse_admin(const std::string& command, const std::vector<std::string>& args,
                                  const Env& env = {});

// A value printed in an error or a log line, on one line: control
// characters (newline, tab, ESC...) become \xNN.
std::string one_line(std::string_view s);

}  // namespace leasehold::cli
