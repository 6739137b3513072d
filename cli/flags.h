// Command-line flags with environment-variable fallbacks, for the leasehold
// command. Every flag --foo-bar can also come from LEASEHOLD_FOO_BAR; a flag
// on the command line wins.
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

class Flags {
 public:
  explicit Flags(std::vector<FlagSpec> specs) : specs_(std::move(specs)) {}
  // Parses args up to "--" (the rest goes to rest()). Unknown flags, missing
  // values and stray positionals (when none are allowed) are errors.
  Result<void> parse(const std::vector<std::string>& args, size_t max_positionals);
  std::string get(const std::string& name) const;
  Result<bool> get_bool(const std::string& name) const;
  Result<Duration> get_duration(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  const std::vector<std::string>& rest() const { return rest_; }
  bool has_separator() const { return separator_; }
  std::string help() const;

 private:
  const FlagSpec* find(const std::string& name) const;
  std::vector<FlagSpec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
  std::vector<std::string> rest_;
  bool separator_ = false;
};

// "15s", "500ms", "1m30s", "2h"; units h, m, s, ms, us, ns.
Result<Duration> parse_duration(const std::string& text);
std::string env_name(const std::string& flag);

}  // namespace leasehold::cli
