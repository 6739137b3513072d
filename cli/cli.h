// The leasehold command's subcommands, as a library the tests link. main.cc
// only dispatches.
#pragma once

#include <string>
#include <vector>

namespace leasehold::cli {

// Each returns the process exit status. Errors are one line on stderr naming
// the problem; status 2 for bad usage.
int run_command(const std::vector<std::string>& args);     // leasehold run ... -- CMD
int serve_command(const std::vector<std::string>& args);   // leasehold serve (no child)
int status_command(const std::vector<std::string>& args);  // leasehold status LOCK
int observe_command(const std::vector<std::string>& args); // leasehold observe LOCK
// kubectl leasehold ...: main() when argv[0] is kubectl-leasehold (kubectl_plugin.cc).
int kubectl_plugin_main(const std::vector<std::string>& args);
int release_command(const std::vector<std::string>& args); // leasehold release LOCK --force
int handoff_command(const std::vector<std::string>& args); // leasehold handoff LOCK --to ID
int usage(const std::string& error);

}  // namespace leasehold::cli
