// leasehold — run a command only while this replica holds the lease.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "command_line.h"
#include "worker.h"

int main(int argc, char** argv) {
  namespace cli = leasehold::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  // Installed (or linked) as kubectl-leasehold: `kubectl leasehold ...`.
  std::string_view self = argc > 0 ? argv[0] : "";
  if (auto slash = self.rfind('/'); slash != std::string_view::npos) self.remove_prefix(slash + 1);
  if (self == "kubectl-leasehold") return cli::kubectl_plugin_main(args);
  // No arguments: the usage on stderr, status 2 (a usage error, as most commands).
  if (args.empty()) return cli::usage("");
  std::string cmd = args.front();
  args.erase(args.begin());
  if (cmd == "__watchdog") return cli::watchdog_main(args);  // started by run itself
  if (cmd == "run") return cli::run_command(args);
  if (cmd == "serve") return cli::serve_command(args);
  if (cmd == "status") return cli::status_command(args);
  if (cmd == "observe") return cli::observe_command(args);
  if (cmd == "release") return cli::release_command(args);
  if (cmd == "handoff") return cli::handoff_command(args);
  if (cmd == "version" || cmd == "--version") {
    if (!args.empty()) return cli::usage(cmd + ": takes no arguments");
    std::printf("leasehold %s\n", LEASEHOLD_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (args.empty()) {
      std::printf("%s", cli::top_usage());
      return 0;
    }
    if (args.size() > 1) return cli::usage("help: one topic at most (a command: run, serve, status, ...)");
    std::string text = cli::command_help(args[0]);
    if (text.empty()) {
      return cli::usage("help: no topic \"" + args[0] +
                        "\" (topics: run, serve, status, observe, release, handoff)");
    }
    std::printf("%s", text.c_str());
    return 0;
  }
  return cli::usage("unknown command \"" + cmd +
                    "\" (commands: run, serve, status, observe, release, handoff, help, version)");
}
