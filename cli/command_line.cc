#include "command_line.h"

#include <unistd.h>

#include <cstdio>
#include <random>

#include "http_server.h"
#include "kube/objects.h"
#include "worker.h"

namespace leasehold::cli {
namespace {

constexpr const char* kUsage = R"(usage:
  leasehold run [flags] -- CMD [ARGS...]   run CMD only while this replica leads
  leasehold serve [flags]                  campaign without a child; /healthz /readyz /leader /metrics
  leasehold status LOCK [-o json]          show who holds LOCK
  leasehold observe LOCK [-o json]         print a line for every change of holder (does not campaign)
  leasehold release LOCK --force           admin: mark the lease free so another replica takes it
  leasehold handoff LOCK --to ID           ask the leader to hand the lease to standby ID (no gap)
  leasehold help [COMMAND]                 this text, or COMMAND's flags (also: leasehold COMMAND --help)
  leasehold version                        the version (also: leasehold --version)

LOCK is a URL:
  k8s://NAMESPACE/NAME               a coordination.k8s.io Lease
  configmap://NAMESPACE/NAME         a ConfigMap's leader annotation (client-go's legacy lock)
  endpoints://NAMESPACE/NAME         an Endpoints' leader annotation (legacy)
  configmapsleases://NAMESPACE/NAME  ConfigMap and Lease together (client-go's migration pair)
  endpointsleases://NAMESPACE/NAME   Endpoints and Lease together (migration pair)
  file:///ABS/PATH                   a file on this host (flock; keep it out of /tmp)
  mem://NAME                         in this process only (tests)
  etcd://HOST:PORT[,HOST:PORT...]/PREFIX
                                     an etcd v3 election, shared with Go's concurrency.Election
  etcds://HOST:PORT[,HOST:PORT...]/PREFIX
                                     the same over TLS (--etcd-* flags: certificates, user)

Exit status: the command's own (run); 2 for bad usage, with one line naming
the problem; 1 for other failures; 127 when CMD cannot be started.
)";

std::vector<FlagSpec> run_flag_specs(bool serve) {
  std::vector<FlagSpec> all = {
      {"lock", "lock URL, e.g. file:///run/app.lease (short for the resource flags)", ""},
      {"identity", "holder identity (default: $POD_NAME, else hostname-RANDOM); no control characters", ""},
      {"leader-elect-resource-lock", "lock kind: leases, file, configmaps, endpoints, configmapsleases or endpointsleases", ""},
      {"leader-elect-resource-name", "lock name; for the file lock, its absolute path", ""},
      {"leader-elect-resource-namespace", "namespace of the Lease (default: $POD_NAMESPACE, else default)", ""},
      {"kubeconfig", "kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)", ""},
      {"kube-context", "kubeconfig context (default: current-context)", ""},
      {"etcd-cacert", "etcds:// locks: CA certificate file (PEM) to verify the members with", ""},
      {"etcd-cert", "etcds:// locks: client certificate file (PEM), with --etcd-key", ""},
      {"etcd-key", "etcds:// locks: client key file (PEM)", ""},
      {"etcd-user", "etcd:// locks: user to authenticate as, with --etcd-password-file", ""},
      {"etcd-password-file", "etcd:// locks: file holding --etcd-user's password", ""},
      {"leader-elect-lease-duration",
       "how long a lease lasts without renewal; whole seconds, at least 1s (2s on etcd://), at most 24h",
       "15s"},
      {"leader-elect-renew-deadline",
       "a leader that cannot renew for this long stops its child; at least 500ms, more than 1.2 x the retry "
       "period, less than the lease duration", "10s"},
      {"leader-elect-retry-period", "wait between attempts to acquire or renew; at least 100ms", "2s"},
      {"enable-leader-election", "false: run CMD directly, without an election", "true", true},
      {"release-on-cancel", "release the lease when stopping", "true", true},
      {"grace-period",
       "after SIGTERM to the worker's tree, wait this long before SIGKILL; at most lease-duration - "
       "renew-deadline - margin (250ms + lease/1000), the default (for-life: 10s)", ""},
      {"worker-cgroup",
       "auto: put the worker in a cgroup v2 leaf of its own when one can be made (else subreaper and "
       "process table); off: never", "auto"},
      {"on-child-exit", "when CMD exits by itself while leading: exit, restart or release", "exit"},
      {"log-format", "text or json", "text"},
      {"http-address",
       "serve /healthz, /readyz (200 only while leading), /leader and /metrics on HOST:PORT, "
       ":PORT or [IPV6]:PORT (port 0: any free one); empty: no endpoints",
       serve ? ":8090" : ""},
      {"name", "name of this election in the metrics' name label and in JSON logs (default: the lock URL)", ""},
      {"label-leader-pod",
       "KEY=VALUE: set this label on our own Pod ($POD_NAME in $POD_NAMESPACE) while leading and remove it "
       "on step-down, so a Service can select the leader (needs RBAC: pods patch)", ""},
      {"coordinated", "coordinated leader election (KEP-4355): keep a LeaseCandidate and lead only when "
                      "kube-apiserver names us holder (k8s:// locks; needs --binary-version)", "false", true},
      {"binary-version", "coordinated: this binary's version, MAJOR.MINOR.PATCH", ""},
      {"emulation-version", "coordinated: the version it emulates, MAJOR.MINOR (default: the binary's)", ""},
      {"help", "show this help", "", true},
  };
  if (!serve) {
    all.insert(all.end() - 1,
               {"mode",
                "lease (renewed lease, the default) or for-life (operator-lib leader-for-life: a ConfigMap "
                "named --leader-elect-resource-name owned by this Pod ($POD_NAME) until the Pod is gone; no endpoints, "
                "lease timings or Pod label: their flags are refused)",
                "lease"});
    all.insert(all.end() - 1, {"node-not-ready-grace",
                               "for-life: treat a holder whose Node is NotReady this long as stale (0: never)",
                               "0s"});
  }
  if (serve) {  // no child: drop the flags about it
    std::erase_if(all, [](const FlagSpec& f) {
      return f.name == "enable-leader-election" || f.name == "grace-period" || f.name == "on-child-exit" ||
             f.name == "worker-cgroup";
    });
  }
  return all;
}

std::vector<FlagSpec> admin_flag_specs(const std::string& command) {
  std::vector<FlagSpec> f;
  if (command == "status") f.push_back({"output", "table, wide (adds the version and the preferred holder), json or yaml", "table"});
  if (command == "observe") {
    f.push_back({"output", "text, json (one JSON object per line) or yaml (one document per change)", "text"});
    f.push_back({"poll-period", "how often to re-read when the lock has no watch; at least 100ms", "2s"});
  }
  if (command == "release") {
    f.push_back({"force", "required: confirms that you mean to take the lease from its holder", "false", true});
    f.push_back({"repair",
                 "file locks: replace a record that does not decode (a torn or foreign file) with a free one, "
                 "after printing what was found; refused while the file is younger than 60s", "false", true});
  }
  if (command == "handoff") {
    f.push_back({"to", "identity of the standby that should lead next (required)", ""});
    f.push_back({"timeout", "how long to wait for the standby to hold the lease", "30s"});
  }
  f.push_back({"kubeconfig", "kubeconfig file for k8s:// locks", ""});
  f.push_back({"kube-context", "kubeconfig context (default: current-context)", ""});
  for (FlagSpec spec : std::vector<FlagSpec>{
      {"etcd-cacert", "etcds:// locks: CA certificate file (PEM) to verify the members with", ""},
      {"etcd-cert", "etcds:// locks: client certificate file (PEM), with --etcd-key", ""},
      {"etcd-key", "etcds:// locks: client key file (PEM)", ""},
      {"etcd-user", "etcd:// locks: user to authenticate as, with --etcd-password-file", ""},
      {"etcd-password-file", "etcd:// locks: file holding --etcd-user's password", ""},
       }) {
    f.push_back(std::move(spec));
  }
  f.push_back({"help", "show help", "", true});
  return f;
}

const char* kRunHelp =
    "usage: leasehold run [flags] -- CMD [ARGS...]\n\n"
    "Runs CMD, and every process it starts, only while this replica leads. A watchdog\n"
    "process kills the whole tree before another replica could take over, even if\n"
    "this one is stopped or killed.\n\n"
    "signals: TERM, INT  stop CMD's tree (SIGTERM, SIGKILL after --grace-period),\n"
    "                    then release the lease and exit with CMD's status\n"
    "         HUP, USR1, USR2  forwarded to CMD's process group\n"
    "         CHLD       reaps orphans (it can run as PID 1)\n"
    "         others     default action (SIGQUIT: the watchdog stops CMD's tree)\n\n"
    "flags:\n";
const char* kServeHelp =
    "usage: leasehold serve [flags]\n\nCampaign for the lease without running a child, and serve the "
    "endpoints.\n\nflags:\n";

std::string admin_help_head(const std::string& command) {
  auto head = [](const char* synopsis, const char* what) {
    return std::string("usage: leasehold ") + synopsis + "\n\n" + what + "\n\nflags:\n";
  };
  if (command == "status") {
    return head("status LOCK [-o json]",
                "Show who holds LOCK. RENEWED AGO is the holder's last renewTime read on this machine's\n"
                "wall clock: under clock skew it is off by the skew. Electors never compare remote\n"
                "timestamps; they time a lease from when they saw it change.");
  }
  if (command == "observe") {
    return head("observe LOCK [-o json]",
                "Print one line whenever the holder of LOCK changes (and the first state), until "
                "SIGINT or SIGTERM. Does not campaign; expiry is judged on this machine's clock.");
  }
  if (command == "release") {
    return head("release LOCK --force [--repair]",
                "Admin: write the released form of the lease (holder \"\", duration 1s, other fields "
                "kept) with compare-and-swap, so a standby takes over at once. The holder is not "
                "told: it steps down when it sees the change, at once where leasehold watches the lock "
                "(k8s://, configmap://, endpoints://, file://), else (client-go, the migration locks) at "
                "its next renewal.\n"
                "A file lock whose record does not decode wedges every elector on it: --force --repair "
                "prints what the file holds and replaces it with a free record, under the lock, only if "
                "it still does not decode and was last written at least 60s ago (nobody can have renewed "
                "it since it broke, so a holder with a renew deadline under 60s has stopped).");
  }
  if (command == "handoff") {
    return head("handoff LOCK --to ID [--timeout 30s]",
                "Ask the leader to hand the lease to the standby ID with no leaderless gap: writes "
                "the preferred holder ID (compare-and-swap; the annotation leasehold.io/preferred-holder, "
                "or spec.preferredHolder on a Lease with a strategy); a leasehold leader then stops its work and "
                "writes ID as holder, and ID starts at once. Waits until ID holds the lease. A client-go "
                "leader ignores preferredHolder outside coordinated election: the command then times out "
                "and says so.");
  }
  return "";
}

std::string default_identity(const Env& env) {
  if (std::string pod = env.get("POD_NAME"); !pod.empty()) return pod;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%06x", rd() & 0xffffff);
  return std::string(host) + "-" + suffix;
}

Result<std::string> lock_url(const Flags& f) {
  std::string url = f.get("lock");
  std::string kind = f.get("leader-elect-resource-lock");
  if (!url.empty()) return url;
  if (kind.empty()) {
    return Error::invalid("no lock: set --lock URL (e.g. --lock file:///run/app/app.lease) or "
                          "--leader-elect-resource-lock and --leader-elect-resource-name");
  }
  std::string name = f.get("leader-elect-resource-name");
  if (kind == "file") {
    if (name.empty() || name[0] != '/') {
      return Error::invalid(f.source("leader-elect-resource-name") + ": the file lock needs an absolute path");
    }
    return "file://" + name;
  }
  // client-go's kinds: a Lease, the legacy annotation locks, the migration pairs.
  static const std::pair<std::string_view, std::string_view> kKube[] = {
      {"leases", "k8s"}, {"configmaps", "configmap"}, {"endpoints", "endpoints"},
      {"configmapsleases", "configmapsleases"}, {"endpointsleases", "endpointsleases"}};
  for (const auto& [k, scheme] : kKube) {
    if (kind != k) continue;
    if (name.empty()) {
      return Error::invalid(f.source("leader-elect-resource-name") + ": the " + kind + " lock needs a name");
    }
    std::string ns = f.get("leader-elect-resource-namespace");
    if (ns.empty()) ns = f.env().get("POD_NAMESPACE");
    if (ns.empty()) ns = "default";
    return std::string(scheme) + "://" + ns + "/" + name;
  }
  return Error::invalid(f.source("leader-elect-resource-lock") + ": unknown kind \"" + kind +
                        "\" (want file, leases, configmaps, endpoints, configmapsleases or endpointsleases)");
}

// --grace-period for a renewed lease: the worker's tree must be dead before
// another replica could take over, so term_due + grace <= renewed_at +
// lease_duration - margin, with term_due >= renewed_at + renew_deadline at
// the latest. Default: the largest grace that fits.
Result<Duration> grace_for_lease(const Flags& flags, Duration lease, Duration renew) {
  Duration margin = kill_margin(lease);
  Duration room = lease - renew - margin;
  const std::string l = flags.source("leader-elect-lease-duration"), r = flags.source("leader-elect-renew-deadline");
  if (room < Duration::zero()) {
    return Error::invalid(r + "=" + format_duration(renew) + " leaves no time to stop the worker: " + l + "=" +
                          format_duration(lease) + " minus it must exceed the safety margin " +
                          format_duration(margin));
  }
  if (flags.get("grace-period").empty()) return room;
  auto g = flags.get_duration("grace-period");
  if (!g) return g.error();
  const std::string gs = flags.source("grace-period");
  if (*g < Duration::zero()) return Error::invalid(gs + ": must not be negative");
  if (*g > room) {
    return Error::invalid(gs + "=" + format_duration(*g) + " is longer than the lease allows: " + l + "=" +
                          format_duration(lease) + " - " + r + "=" + format_duration(renew) + " - margin " +
                          format_duration(margin) + " leaves at most " + format_duration(room));
  }
  return *g;
}

// `flag`'s value must be one of `allowed` ("a, b or c" in the error).
Result<std::string> one_of(const Flags& flags, const std::string& flag, std::initializer_list<const char*> allowed) {
  std::string v = flags.get(flag);
  std::string list;
  size_t i = 0;
  for (const char* a : allowed) {
    if (v == a) return v;
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + std::string(a);
    ++i;
  }
  return Error::invalid(flags.source(flag) + ": \"" + v + "\" is not " + list);
}

Result<std::optional<PodLabel>> pod_label(const Flags& flags) {
  std::string flag = flags.get("label-leader-pod");
  if (flag.empty()) return std::optional<PodLabel>();
  const std::string src = flags.source("label-leader-pod");
  auto eq = flag.find('=');
  if (eq == std::string::npos || eq == 0) return Error::invalid(src + ": want KEY=VALUE, got \"" + flag + "\"");
  PodLabel l{flag.substr(0, eq), flag.substr(eq + 1), flags.env().get("POD_NAME"), flags.env().get("POD_NAMESPACE")};
  if (auto p = kube::pod_label_patch(l.key, std::string_view(l.value)); !p) {
    return Error::invalid(src + ": " + p.error().message());
  }
  if (l.pod.empty() || l.ns.empty()) {
    return Error::invalid(src + ": POD_NAME and POD_NAMESPACE must be set (downward API)");
  }
  return std::optional<PodLabel>(std::move(l));
}

// Where the identity came from, for errors.
std::string identity_source(const Flags& flags) {
  if (!flags.get("identity").empty()) return flags.source("identity");
  return "POD_NAME";
}

}  // namespace

const char* top_usage() { return kUsage; }

std::string one_line(std::string_view s) {
  std::string o;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", u);
      o += b;
    } else {
      o += c;
    }
  }
  return o;
}

std::string command_help(const std::string& command, const Env& env) {
  if (command == "run" || command == "serve") {
    return std::string(command == "run" ? kRunHelp : kServeHelp) +
           Flags(run_flag_specs(command == "serve"), env).help();
  }
  std::string head = admin_help_head(command);
  if (head.empty()) return "";
  return head + Flags(admin_flag_specs(command), env).help();
}

Result<RunSettings> parse_run(const std::vector<std::string>& args, bool serve, const Env& env) {
  Flags flags(run_flag_specs(serve), env);
  if (auto r = flags.parse(args, 0); !r) return r.error();
  RunSettings s;
  s.serve = serve;
  auto help = flags.get("help").empty() ? Result<bool>(false) : flags.get_bool("help");
  if (!help) return help.error();
  if (*help) {
    s.help = true;
    return s;
  }
  if (serve && flags.has_separator()) {
    return Error::invalid("serve: runs no command (use leasehold run -- CMD for that)");
  }
  if (!serve) {
    if (flags.rest().empty()) return Error::invalid("run: no command given after --");
    s.command = flags.rest();
    auto enabled = flags.get_bool("enable-leader-election");
    if (!enabled) return enabled.error();
    if (!*enabled) {
      s.direct = true;
      return s;
    }
  }
  s.kubeconfig = flags.get("kubeconfig");
  s.kube_context = flags.get("kube-context");
  s.etcd = {flags.get("etcd-cacert"), flags.get("etcd-cert"), flags.get("etcd-key"), flags.get("etcd-user"),
            flags.get("etcd-password-file")};
  auto format = one_of(flags, "log-format", {"text", "json"});
  if (!format) return format.error();
  s.json_logs = *format == "json";
  auto release = flags.get_bool("release-on-cancel");
  if (!release) return release.error();
  s.release_on_cancel = *release;
  if (!serve) {
    auto cg = one_of(flags, "worker-cgroup", {"auto", "off"});
    if (!cg) return cg.error();
    s.worker_cgroup = *cg == "auto";
    auto mode = one_of(flags, "mode", {"lease", "for-life"});
    if (!mode) return mode.error();
    s.for_life = *mode == "for-life";
  }
  if (s.for_life) {
    ForLifeConfig& fl = s.for_life_cfg;
    fl.lock_name = flags.get("leader-elect-resource-name");
    fl.ns = flags.get("leader-elect-resource-namespace");
    if (fl.lock_name.empty()) {
      return Error::invalid("--mode=for-life: --leader-elect-resource-name (the ConfigMap) is required");
    }
    if (!flags.get("lock").empty()) return Error::invalid("--mode=for-life: use --leader-elect-resource-name, not --lock");
    // The lease mode's flags that leader-for-life has no use for are
    // refused, so that none is silently ignored.
    for (const char* name :
         {"identity", "leader-elect-resource-lock", "leader-elect-lease-duration", "leader-elect-renew-deadline",
          "leader-elect-retry-period", "on-child-exit", "http-address", "name", "label-leader-pod", "coordinated",
          "binary-version", "emulation-version", "etcd-cacert", "etcd-cert", "etcd-key", "etcd-user",
          "etcd-password-file"}) {
      if (!flags.is_set(name)) continue;
      if (std::string_view(name) == "leader-elect-resource-lock" && flags.get(name) == "configmaps") continue;
      return Error::invalid("--mode=for-life: " + flags.source(name) +
                            " applies to --mode=lease only; leader-for-life takes --leader-elect-resource-name, "
                            "--leader-elect-resource-namespace, --node-not-ready-grace, --grace-period, "
                            "--release-on-cancel, --worker-cgroup, --kubeconfig, --kube-context and --log-format");
    }
    auto nr = flags.get_duration("node-not-ready-grace");
    if (!nr) return nr.error();
    if (*nr < Duration::zero()) return Error::invalid(flags.source("node-not-ready-grace") + ": must not be negative");
    if (*nr > Duration::zero()) fl.node_not_ready_grace = *nr;
    s.grace = std::chrono::seconds(10);  // no lease bounds it: the lock is ours until the Pod is gone
    if (!flags.get("grace-period").empty()) {
      auto g = flags.get_duration("grace-period");
      if (!g) return g.error();
      if (*g < Duration::zero()) return Error::invalid(flags.source("grace-period") + ": must not be negative");
      s.grace = *g;
    }
    return s;  // the caller runs ForLifeConfig::validate() (in the library, with the for-life code)
  }

  ElectorConfig& cfg = s.cfg;
  auto url = lock_url(flags);
  if (!url) return url.error();
  cfg.lock = *url;
  cfg.identity = flags.get("identity").empty() ? default_identity(env) : flags.get("identity");
  for (char c : cfg.identity) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", u);
      return Error::invalid(identity_source(flags) + ": contains the control character " + b +
                            " (an identity is written into log lines and the lease)");
    }
  }
  for (auto [flag, field, min] : {std::tuple{"leader-elect-lease-duration", &cfg.lease_duration, kMinLeaseDuration},
                                  std::tuple{"leader-elect-renew-deadline", &cfg.renew_deadline, kMinRenewDeadline},
                                  std::tuple{"leader-elect-retry-period", &cfg.retry_period, kMinRetryPeriod}}) {
    auto d = flags.get_duration(flag, min);
    if (!d) return d.error();
    *field = *d;
  }
  if (!serve) {
    auto on_exit = one_of(flags, "on-child-exit", {"exit", "restart", "release"});
    if (!on_exit) return on_exit.error();
    s.on_exit = *on_exit;
  }
  cfg.release_on_cancel = s.release_on_cancel;
  cfg.name = flags.get("name");
  auto coordinated = flags.get_bool("coordinated");
  if (!coordinated) return coordinated.error();
  cfg.coordinated.enabled = *coordinated;
  cfg.coordinated.binary_version = flags.get("binary-version");
  cfg.coordinated.emulation_version = flags.get("emulation-version");
  if (auto v = cfg.validate(); !v) {
    // Name the flag (or variable) rather than the library field: one pass
    // over the message, so an inserted name is never searched again.
    const std::string m = v.error().message();
    const std::pair<const char*, std::string> names[] = {
        {"coordinated.binary_version", flags.source("binary-version")},
        {"coordinated.emulation_version", flags.source("emulation-version")},
        {"lease_duration", flags.source("leader-elect-lease-duration")},
        {"renew_deadline", flags.source("leader-elect-renew-deadline")},
        {"retry_period", flags.source("leader-elect-retry-period")},
        {"identity", identity_source(flags)}};
    std::string out;
    for (size_t i = 0; i < m.size();) {
      bool replaced = false;
      for (const auto& [field, name] : names) {
        if (m.compare(i, std::strlen(field), field) == 0) {
          out += name;
          i += std::strlen(field);
          replaced = true;
          break;
        }
      }
      if (!replaced) out += m[i++];
    }
    return Error::invalid(out);
  }
  if (!serve) {
    auto g = grace_for_lease(flags, cfg.lease_duration, cfg.renew_deadline);
    if (!g) return g.error();
    s.grace = *g;
  }
  auto label = pod_label(flags);
  if (!label) return label.error();
  s.label = std::move(*label);
  s.http_address = flags.get("http-address");
  if (!s.http_address.empty()) {
    if (auto a = parse_listen_address(s.http_address); !a) {
      return Error::invalid(flags.source("http-address") + " \"" + s.http_address + "\": " + a.error().message());
    }
  }
  return s;
}

Result<AdminSettings> parse_admin(const std::string& command, const std::vector<std::string>& args, const Env& env) {
  Flags flags(admin_flag_specs(command), env);
  if (auto r = flags.parse(args, 1); !r) return r.error();
  AdminSettings s;
  auto help = flags.get("help").empty() ? Result<bool>(false) : flags.get_bool("help");
  if (!help) return help.error();
  if (*help) {
    s.help = true;
    return s;
  }
  if (flags.positionals().empty() || flags.positionals()[0].empty()) {  // an empty "" names no lock either
    const char* example = command == "handoff" ? " k8s://ns/app --to pod-b"
                          : command == "release" ? " file:///run/app/app.lease --force"
                                                 : " file:///run/app/app.lease";
    return Error::invalid(command + ": which lock? e.g. leasehold " + command + example);
  }
  s.lock = flags.positionals()[0];
  s.kubeconfig = flags.get("kubeconfig");
  s.kube_context = flags.get("kube-context");
  s.etcd = {flags.get("etcd-cacert"), flags.get("etcd-cert"), flags.get("etcd-key"), flags.get("etcd-user"),
            flags.get("etcd-password-file")};
  if (command == "status") {
    auto o = one_of(flags, "output", {"table", "wide", "json", "yaml"});
    if (!o) return o.error();
    s.output = *o;
  }
  if (command == "observe") {
    if (flags.get("output") == "table") s.output = "text";
    else {
      auto o = one_of(flags, "output", {"text", "json", "yaml"});
      if (!o) return o.error();
      s.output = *o;
    }
    auto poll = flags.get_duration("poll-period", kMinPollPeriod);
    if (!poll) return poll.error();
    s.poll_period = *poll;
  }
  if (command == "release") {
    auto force = flags.get_bool("force");
    if (!force) return force.error();
    s.force = *force;
    auto repair = flags.get_bool("repair");
    if (!repair) return repair.error();
    s.repair = *repair;
    if (s.repair && !s.force) return Error::invalid("release: --repair needs --force too (it replaces the record)");
  }
  if (command == "handoff") {
    s.to = flags.get("to");
    if (s.to.empty()) return Error::invalid("handoff: --to ID is required (the standby that should lead next)");
    auto t = flags.get_duration("timeout");
    if (!t) return t.error();
    s.timeout = *t;
  }
  return s;
}

}  // namespace leasehold::cli
