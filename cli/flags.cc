#include "flags.h"

#include <cctype>
#include <cstdlib>

namespace leasehold::cli {

std::string env_name(const std::string& flag) {
  std::string e = "LEASEHOLD_";
  for (char c : flag) e += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return e;
}

std::string Env::get(const std::string& name) const {
  if (fixed_) {
    auto it = vars_.find(name);
    return it == vars_.end() ? "" : it->second;
  }
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

std::string format_duration(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

Result<Duration> parse_duration(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error::invalid("\"" + text + "\" is not a duration (" + why +
                          "; use e.g. 15s, 500ms, 1m30s)");
  };
  if (text.empty()) return bad("empty");
  Duration total{0};
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start) return bad("expected a number");
    std::string num = text.substr(start, i - start);
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size()) return bad("bad number \"" + num + "\"");
    size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(ustart, i - ustart);
    double ns;
    if (unit == "h") ns = 3600e9;
    else if (unit == "m") ns = 60e9;
    else if (unit == "s") ns = 1e9;
    else if (unit == "ms") ns = 1e6;
    else if (unit == "us") ns = 1e3;
    else if (unit == "ns") ns = 1;
    else return bad(unit.empty() ? "missing unit" : "unknown unit \"" + unit + "\"");
    double add = v * ns;
    // Each part and the sum stay below 1e18 ns (~31 years): no overflow.
    if (add > 1e18 || static_cast<double>(total.count()) + add > 1e18) return bad("too large");
    total += Duration(static_cast<int64_t>(add));
  }
  return total;
}

const FlagSpec* Flags::find(const std::string& name) const {
  for (const auto& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Result<void> Flags::parse(const std::vector<std::string>& args, size_t max_positionals) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      separator_ = true;
      rest_.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() > 1 && a[0] == '-') {
      std::string body = a.substr(a[1] == '-' ? 2 : 1);
      std::string name = body, value;
      bool has_value = false;
      if (auto eq = body.find('='); eq != std::string::npos) {
        name = body.substr(0, eq);
        value = body.substr(eq + 1);
        has_value = true;
      }
      if (name == "o") name = "output";
      if (name == "h") name = "help";
      const FlagSpec* spec = find(name);
      if (!spec) return Error::invalid("unknown flag --" + name + " (see --help)");
      if (!has_value) {
        if (spec->is_bool) {
          value = "true";
        } else if (i + 1 < args.size()) {
          value = args[++i];
        } else {
          return Error::invalid("flag --" + name + " needs a value");
        }
      }
      values_[name] = value;
      continue;
    }
    if (positionals_.size() >= max_positionals) {
      return Error::invalid("unexpected argument \"" + a + "\"" +
                            (max_positionals == 0 ? " (put the command after --)" : ""));
    }
    positionals_.push_back(a);
  }
  return {};
}

std::string Flags::get(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  if (std::string env = env_.get(env_name(name)); !env.empty()) return env;
  const FlagSpec* s = find(name);
  return s ? s->default_value : "";
}

std::string Flags::source(const std::string& name) const {
  if (values_.count(name) == 0 && !env_.get(env_name(name)).empty()) return env_name(name);
  return "--" + name;
}

bool Flags::is_set(const std::string& name) const {
  return values_.count(name) != 0 || !env_.get(env_name(name)).empty();
}

Result<bool> Flags::get_bool(const std::string& name) const {
  std::string v = get(name);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return Error::invalid(source(name) + ": \"" + v + "\" is not true or false");
}

Result<Duration> Flags::get_duration(const std::string& name) const {
  auto d = parse_duration(get(name));
  if (!d) return Error::invalid(source(name) + ": " + d.error().message());
  return d;
}

Result<Duration> Flags::get_duration(const std::string& name, Duration min) const {
  auto d = get_duration(name);
  if (d && *d < min) {
    return Error::invalid(source(name) + "=" + get(name) + ": below the minimum of " + format_duration(min));
  }
  return d;
}

std::string Flags::help() const {
  std::string out;
  for (const auto& s : specs_) {
    out += "  --" + s.name + (s.is_bool ? "" : "=VALUE");
    out += "\n      " + s.help;
    if (!s.default_value.empty()) out += " (default " + s.default_value + ")";
    out += " [env " + env_name(s.name) + "]\n";
  }
  return out;
}

}  // namespace leasehold::cli
