// libFuzzer: the leasehold command line as a whole (cli/command_line.h):
// argv and the environment, decoded from the input, through parse_run (run,
// serve) and parse_admin (status, observe, release, handoff) and the help
// texts. Never crashes, and every input ends within a bound: it must finish
// in 0.5 s (fuzz.command_line runs with -timeout=2, which catches a hang; this a slow
// input that is not yet one). An error is one line once escaped (one_line),
// and nothing returned refuses the bounds it promises.
//
// Input: NUL-separated fields. The first byte picks the command; then each
// field is an argument, until a field "\x01ENV", after which each field is
// NAME=VALUE for the environment (Env with exactly those variables: the
// process's own is never read or changed).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "command_line.h"

namespace cli = leasehold::cli;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kCommands[] = {"run", "serve", "status", "observe", "release", "handoff"};
  const std::string command = kCommands[data[0] % 6];
  std::vector<std::string> args;
  std::map<std::string, std::string> vars;
  bool in_env = false;
  std::string field;
  auto flush = [&] {
    if (field == "\x01" "ENV") {
      in_env = true;
    } else if (in_env) {
      auto eq = field.find('=');
      if (eq != std::string::npos) vars[field.substr(0, eq)] = field.substr(eq + 1);
    } else {
      args.push_back(field);
    }
    field.clear();
  };
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == 0) flush();
    else field += static_cast<char>(data[i]);
  }
  flush();
  const cli::Env env(std::move(vars));

  auto started = std::chrono::steady_clock::now();
  std::string error;
  if (command == "run" || command == "serve") {
    auto r = cli::parse_run(args, command == "serve", env);
    if (!r) {
      error = r.error().message();
    } else if (!r->help && !r->direct && !r->for_life) {
      const auto& c = r->cfg;
      if (c.retry_period < cli::kMinRetryPeriod || c.renew_deadline < cli::kMinRenewDeadline ||
          c.lease_duration < cli::kMinLeaseDuration || c.identity.empty() || c.lock.empty()) {
        std::abort();  // accepted below a documented bound
      }
      for (char ch : c.identity) {
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) std::abort();  // a control character accepted
      }
      if (command == "run" && r->command.empty()) std::abort();
    }
  } else {
    auto r = cli::parse_admin(command, args, env);
    if (!r) {
      error = r.error().message();
    } else if (!r->help) {
      if (r->lock.empty()) std::abort();
      if (command == "observe" && r->poll_period < cli::kMinPollPeriod) std::abort();
      if (r->repair && !r->force) std::abort();
    }
  }
  if (!error.empty()) {
    std::string line = cli::one_line(error);
    if (line.find('\n') != std::string::npos || line.find('\r') != std::string::npos) std::abort();
  }
  if (cli::command_help(command, env).empty()) std::abort();
  if (std::chrono::steady_clock::now() - started > std::chrono::milliseconds(500)) std::abort();  // too slow
  return 0;
}
