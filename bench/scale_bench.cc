// leasehold_scale_bench: one process, one leasehold::Runtime, N electors on N
// Kubernetes Leases (PREFIX0000, PREFIX0001, ...) in one namespace, all
// leading (this process is the only candidate). The client-go side of the
// same measurement is testenv/cmd/scalepeer (same flags, same JSON);
// bench/scale.py runs both on one control plane.
//
//   leasehold_scale_bench --kubeconfig FILE [--namespace leasehold-test] [--prefix scale-]
//       [--n 1000] [--lease-duration 60s] [--renew-deadline 40s] [--retry-period 10s]
//       [--window 60s] [--settle-timeout 300s] [--identity scale-leasehold]
//       [--release-on-cancel false] [--record-events false] [--kube-qps 5000] [--kube-burst 1000]
//       [--lock-prefix URL]   (instead of k8s://NAMESPACE/PREFIX: locks URL0000, URL0001, ...,
//                              e.g. etcd://127.0.0.1:2379/leasehold/scale- for bench/etcd.py)
//
// Phases: start every elector at once, print "[scale] leasehold: K/N leading
// after S s" every second until all N lead (or --settle-timeout passes), then
// measure a steady window of --window: the process's CPU (getrusage, user +
// system, every thread), VmRSS and VmHWM (/proc/self/status) at its end, and
// how many electors still lead at its end. Prints one JSON line on stdout:
//
//   {"impl":"leasehold","leases":1000,"leading_at_end":1000,"cpu_s_window":1.23,
//    "rss_kib":23456,"hwm_kib":24567,"window_wall_start":1.7e9,...}
//
// window_wall_start/end (Unix seconds) let the driver count this process's
// kube-apiserver requests in the audit log over exactly the window.
//
// Like client-go (and the peer), an elector that loses its lease does not
// campaign again (recampaign false), so leading_at_end counts real losses.
// Events are off by default (--record-events): the client-go side has no
// EventRecorder either. Each term runs its idle work until stopped (leasehold
// gives each term a thread; client-go a goroutine): the real cost of a
// leader that does work.
//
// Exit status: 0 (also when not every elector leads: the JSON says so),
// 2 for bad flags or config.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime_access.h"
#include "kube/client.h"
#include "leasehold/elector.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Usage {
  double user = 0, sys = 0;
  double total() const { return user + sys; }
};

Usage cpu_now() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return {static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec) / 1e6,
          static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) / 1e6};
}

// VmRSS, VmHWM (KiB) and Threads from /proc/self/status.
std::map<std::string, long> proc_status() {
  std::map<std::string, long> out;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    for (const char* key : {"VmRSS", "VmHWM", "Threads"}) {
      std::string k = std::string(key) + ":";
      if (line.rfind(k, 0) == 0) out[key] = std::atol(line.c_str() + k.size());
    }
  }
  return out;
}

// Open sockets of the process (its connections to kube-apiserver).
int count_sockets() {
  int k = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind("socket:", 0) == 0) ++k;
  }
  return k;
}

double wall_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool parse_duration(const std::string& s, leasehold::Duration& out) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit(end ? end : "");
  double mult = 0;
  if (unit == "ms") mult = 1e6;
  else if (unit == "s") mult = 1e9;
  else if (unit == "m") mult = 60e9;
  if (mult == 0 || end == s.c_str() || v < 0) return false;
  out = leasehold::Duration(static_cast<int64_t>(v * mult));
  return true;
}

double secs(leasehold::Duration d) { return std::chrono::duration<double>(d).count(); }

int usage(const std::string& msg) {
  std::fprintf(stderr, "leasehold_scale_bench: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> f = {
      {"kubeconfig", ""},        {"namespace", "leasehold-test"}, {"prefix", "scale-"},
      {"n", "1000"},             {"lease-duration", "60s"},       {"renew-deadline", "40s"},
      {"retry-period", "10s"},   {"window", "60s"},               {"settle-timeout", "300s"},
      {"identity", "scale-leasehold"}, {"release-on-cancel", "false"}, {"record-events", "false"},
      {"kube-qps", "5000"},      {"kube-burst", "1000"},      {"lock-prefix", ""},
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) return usage("unexpected argument " + a);
    a = a.substr(2);
    std::string v;
    if (auto eq = a.find('='); eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      return usage("--" + a + " needs a value");
    }
    if (!f.count(a)) return usage("unknown flag --" + a);
    f[a] = v;
  }
  const int n = std::atoi(f["n"].c_str());
  if (n <= 0) return usage("--n must be positive");
  leasehold::Duration lease, renew, retry, window, settle;
  for (auto [k, d] : {std::pair{"lease-duration", &lease}, std::pair{"renew-deadline", &renew},
                      std::pair{"retry-period", &retry}, std::pair{"window", &window},
                      std::pair{"settle-timeout", &settle}}) {
    if (!parse_duration(f[k], *d)) return usage("--" + std::string(k) + ": bad duration " + f[k]);
  }

  const Usage cpu_base = cpu_now();
  const auto st_base = proc_status();

  std::atomic<int> log_warnings{0}, log_errors{0};
  leasehold::Runtime::Options ro;
  ro.kubeconfig = f["kubeconfig"];
  // The library's default budget (5,000 requests/s, burst 1,000) already fits
  // 10,000 leases at 2 s; --kube-qps / --kube-burst change it.
  ro.kube_qps = std::atof(f["kube-qps"].c_str());
  ro.kube_burst = std::atoi(f["kube-burst"].c_str());
  ro.log = [&](leasehold::LogLevel l, std::string_view name, std::string_view msg) {
    if (l < leasehold::LogLevel::kWarning) return;
    int k = (l == leasehold::LogLevel::kError ? log_errors : log_warnings).fetch_add(1);
    if (k < 20) {
      std::fprintf(stderr, "[scale] leasehold log %s [%.*s] %.*s\n", l == leasehold::LogLevel::kError ? "error" : "warning",
                   static_cast<int>(name.size()), name.data(), static_cast<int>(msg.size()), msg.data());
    }
  };
  leasehold::Runtime rt(ro);

  std::atomic<int> terms_started{0}, terms_stopped{0};
  std::vector<std::unique_ptr<leasehold::Elector>> electors;
  electors.reserve(static_cast<size_t>(n));
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%04d", i);
    leasehold::ElectorConfig c;
    c.lock = f["lock-prefix"].empty() ? "k8s://" + f["namespace"] + "/" + f["prefix"] + name
                                      : f["lock-prefix"] + name;
    c.identity = f["identity"];
    c.lease_duration = lease;
    c.renew_deadline = renew;
    c.retry_period = retry;
    c.release_on_cancel = f["release-on-cancel"] == "true";
    c.record_events = f["record-events"] == "true";
    c.recampaign = false;  // as client-go: a lost lease stays lost (counted below)
    // The term's work: leasehold runs it on the term's thread, which idles
    // until the term ends; nothing else to do.
    c.callbacks.on_started_leading = [&](const leasehold::Term&, std::stop_token) { ++terms_started; };
    c.callbacks.on_stopped_leading = [&](const leasehold::Term&) { ++terms_stopped; };
    auto e = leasehold::Elector::create(rt, c);
    if (!e) return usage(e.error().to_string());
    electors.push_back(std::move(*e));
  }
  for (auto& e : electors) e->start();

  auto leading = [&] {
    int k = 0;
    for (auto& e : electors) k += e->is_leader();
    return k;
  };
  auto since = [&](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };

  double time_to_all = -1;
  for (;;) {
    int k = leading();
    double s = since(t0);
    if (k == n) {
      time_to_all = s;
      std::fprintf(stderr, "[scale] leasehold: %d/%d leading after %.1f s\n", k, n, s);
      break;
    }
    if (s > secs(settle)) {
      std::fprintf(stderr, "[scale] leasehold: only %d/%d leading after %.0f s (settle timeout): measuring anyway\n",
                   k, n, s);
      break;
    }
    std::fprintf(stderr, "[scale] leasehold: %d/%d leading after %.0f s\n", k, n, s);
    std::this_thread::sleep_for(1s);
  }
  const Usage cpu_startup = cpu_now();

  // The steady window.
  const int leading_start = leading();
  const int terms_stopped_start = terms_stopped.load();
  const Usage c0 = cpu_now();
  const double wall0 = wall_s();
  const auto w0 = Clock::now();
  int min_leading = leading_start;
  double next_report = 10;
  while (since(w0) < secs(window)) {
    std::this_thread::sleep_for(std::min(1s, std::chrono::duration_cast<std::chrono::seconds>(window)));
    int k = leading();
    min_leading = std::min(min_leading, k);
    if (since(w0) >= next_report) {
      std::fprintf(stderr, "[scale] leasehold: window %.0f/%.0f s, %d/%d leading, CPU %.2f s so far\n", since(w0),
                   secs(window), k, n, cpu_now().total() - c0.total());
      next_report += 10;
    }
  }
  const Usage c1 = cpu_now();
  const double wall1 = wall_s();
  const double window_s = since(w0);
  const int leading_end = leading();
  const auto st = proc_status();
  uint64_t renewals = 0, failed_requests = 0;
  for (auto& e : electors) {
    auto s = e->status();
    renewals += s.renewals;
    failed_requests += s.failed_requests;
  }
  const int lost_in_window = terms_stopped.load() - terms_stopped_start;
  const int sockets = count_sockets();

  // The wire format the client used for Leases (LEASEHOLD_KUBE_CONTENT_TYPE
  // may force JSON), and how many bodies went each way in protobuf.
  leasehold::kube::ClientStats wire{};
  const char* lease_format = "json";
  if (auto c = leasehold::RuntimeAccess::kube_client(rt); c.ok()) {
    wire = (*c)->stats();
    if ((*c)->lease_format() == leasehold::kube::WireFormat::kProtobuf) lease_format = "protobuf";
  }
  std::fprintf(stderr, "[scale] leasehold: stopping %d electors\n", n);
  for (auto& e : electors) e->stop();
  electors.clear();

  auto get = [&](const std::map<std::string, long>& m, const char* k) { return m.count(k) ? m.at(k) : -1L; };
  std::printf(
      "{\"impl\":\"leasehold\",\"leases\":%d,\"kube_qps\":%g,\"kube_burst\":%d,\"sockets\":%d,\"identity\":\"%s\",\"lease_ms\":%.0f,\"renew_ms\":%.0f,\"retry_ms\":%.0f,"
      "\"time_to_all_leading_s\":%s,\"leading_at_window_start\":%d,\"leading_at_end\":%d,\"min_leading_in_window\":%d,"
      "\"terms_started\":%d,\"terms_lost_in_window\":%d,\"window_s\":%.3f,\"window_wall_start\":%.3f,"
      "\"window_wall_end\":%.3f,\"cpu_s_window\":%.4f,\"cpu_user_s_window\":%.4f,\"cpu_sys_s_window\":%.4f,"
      "\"cpu_s_startup\":%.4f,\"rss_kib_base\":%ld,\"rss_kib\":%ld,\"hwm_kib\":%ld,\"threads\":%ld,"
      "\"renewals\":%llu,\"failed_requests\":%llu,\"log_warnings\":%d,\"log_errors\":%d,"
      "\"lease_format\":\"%s\",\"protobuf_sent\":%llu,\"protobuf_received\":%llu}\n",
      n, ro.kube_qps, ro.kube_burst, sockets, f["identity"].c_str(), secs(lease) * 1e3, secs(renew) * 1e3, secs(retry) * 1e3,
      time_to_all < 0 ? "null" : std::to_string(time_to_all).c_str(), leading_start, leading_end, min_leading,
      terms_started.load(), lost_in_window, window_s, wall0, wall1, c1.total() - c0.total(), c1.user - c0.user,
      c1.sys - c0.sys, cpu_startup.total() - cpu_base.total(), get(st_base, "VmRSS"), get(st, "VmRSS"),
      get(st, "VmHWM"), get(st, "Threads"), static_cast<unsigned long long>(renewals),
      static_cast<unsigned long long>(failed_requests), log_warnings.load(), log_errors.load(), lease_format,
      static_cast<unsigned long long>(wire.protobuf_sent), static_cast<unsigned long long>(wire.protobuf_received));
  std::fflush(stdout);
  return 0;
}
