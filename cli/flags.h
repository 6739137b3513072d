// Command-line flags with environment-variable fallbacks, for the leasehold
// command. Every flag --foo-bar can also come from LEASEHOLD_FOO_BAR; a flag
// on the command line wins. Errors about a value name where it came from:
// the flag, or the variable.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "leasehold/clock.h"
#include "leasehold/error.h"

namespace leasehold::cli {

struct FlagSpec {
  std::string name;  // without dashes
  std::string help;
  std::string default_value;
  bool is_bool = false;
};

// The environment flags fall back to: the process's (the default), or a
// fixed set of variables (tests, the fuzz target), which then is all there is.
class Env {
 public:
  Env() = default;
  explicit Env(std::map<std::string, std::string> vars) : vars_(std::move(vars)), fixed_(true) {}
  // The variable's value; unset and empty are both "" (ignored).
  std::string get(const std::string& name) const;

 private:
  std::map<std::string, std::string> vars_;
  bool fixed_ = false;
};

class Flags {
 public:
  explicit Flags(std::vector<FlagSpec> specs, Env env = {}) : specs_(std::move(specs)), env_(std::move(env)) {}
  // Parses args up to "--" (the rest goes to rest()). Unknown flags, missing
  // values and stray positionals (when none are allowed) are errors. -h is
  // --help and -o is --output.
  Result<void> parse(const std::vector<std::string>& args, size_t max_positionals);
  // The command line's value, else the variable's, else the default.
  std::string get(const std::string& name) const;
  // Where get(name) comes from, for errors: "LEASEHOLD_NAME" when from the
  // environment, else "--name".
  std::string source(const std::string& name) const;
  // Whether the command line or the environment gives name a value (else
  // get() is the default).
  bool is_set(const std::string& name) const;
  Result<bool> get_bool(const std::string& name) const;
  Result<Duration> get_duration(const std::string& name) const;
  // Also refuses a value below `min`, naming the flag (or variable) and the bound.
  Result<Duration> get_duration(const std::string& name, Duration min) const;
  const Env& env() const { return env_; }
  const std::vector<std::string>& positionals() const { return positionals_; }
  const std::vector<std::string>& rest() const { return rest_; }
  bool has_separator() const { return separator_; }
  std::string help() const;

 private:
  const FlagSpec* find(const std::string& name) const;
  std::vector<FlagSpec> specs_;
  Env env_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
  std::vector<std::string> rest_;
  bool separator_ = false;
};

// "15s", "500ms", "1m30s", "2h"; units h, m, s, ms, us, ns.
Result<Duration> parse_duration(const std::string& text);
// "4735ms", "10s", "100ms": whole seconds in s, else milliseconds.
std::string format_duration(Duration d);
std::string env_name(const std::string& flag);

}  // namespace leasehold::cli
