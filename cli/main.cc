// leasehold — run a command only while this replica holds the lease.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "worker.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return leasehold::cli::usage("");
  std::string cmd = args.front();
  args.erase(args.begin());
  if (cmd == "__watchdog") return leasehold::cli::watchdog_main(args);  // started by run itself
  if (cmd == "run") return leasehold::cli::run_command(args);
  if (cmd == "serve") return leasehold::cli::serve_command(args);
  if (cmd == "status") return leasehold::cli::status_command(args);
  if (cmd == "observe") return leasehold::cli::observe_command(args);
  if (cmd == "release") return leasehold::cli::release_command(args);
  if (cmd == "handoff") return leasehold::cli::handoff_command(args);
  if (cmd == "version" || cmd == "--version") {
    std::printf("leasehold %s\n", LEASEHOLD_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") return leasehold::cli::usage("");
  return leasehold::cli::usage("unknown command \"" + cmd +
                               "\" (commands: run, serve, status, observe, release, handoff, version; see leasehold help)");
}
