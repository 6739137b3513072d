// Electors per process on the mem lock: memory per elector and CPU per
// renewal, at 1,000 and 10,000 electors, each on its own lease, with real
// time and fast timings (lease 3s, renew every 500ms). Prints a table and
// writes bench/results/electors.json.
//
//   leasehold_electors_bench [--seconds 10] [--out PATH]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "leasehold/elector.h"

namespace {

double rss_mib() {
  std::ifstream f("/proc/self/statm");
  long pages_total = 0, pages_rss = 0;
  f >> pages_total >> pages_rss;
  return static_cast<double>(pages_rss) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Row {
  int electors;
  double rss_per_elector_kib, cpu_us_per_renewal;
  uint64_t renewals;
};

Row run(int n, int seconds) {
  using namespace std::chrono_literals;
  leasehold::Runtime rt;
  leasehold::RealClock clock;
  double rss0 = rss_mib();
  std::vector<std::unique_ptr<leasehold::Elector>> electors;
  for (int i = 0; i < n; ++i) {
    leasehold::ElectorConfig c;
    c.lock = "mem://bench-" + std::to_string(n) + "-" + std::to_string(i);
    c.identity = "bench";
    c.lease_duration = 3s;
    c.renew_deadline = 2s;
    c.retry_period = 500ms;
    auto e = leasehold::Elector::create(rt, c);
    if (!e) {
      std::fprintf(stderr, "%s\n", e.error().to_string().c_str());
      std::exit(1);
    }
    (*e)->start();
    electors.push_back(std::move(*e));
  }
  // Wait until all lead, then measure a steady window.
  for (;;) {
    int leading = 0;
    for (auto& e : electors) leading += e->is_leader();
    if (leading == n) break;
    std::mutex m;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lk(m);
    clock.wait_until(lk, cv, clock.now() + 50ms);
  }
  double rss1 = rss_mib();
  uint64_t r0 = 0;
  for (auto& e : electors) r0 += e->status().renewals;
  double c0 = cpu_seconds();
  {
    std::mutex m;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lk(m);
    auto end = clock.now() + std::chrono::seconds(seconds);
    while (clock.now() < end) clock.wait_until(lk, cv, end);
  }
  double c1 = cpu_seconds();
  uint64_t r1 = 0;
  for (auto& e : electors) r1 += e->status().renewals;
  for (auto& e : electors) e->stop();
  electors.clear();
  Row row{n, (rss1 - rss0) * 1024.0 / n, (c1 - c0) * 1e6 / static_cast<double>(r1 - r0), r1 - r0};
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 10;
  std::string out = "bench/results/electors.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds") seconds = std::atoi(argv[i + 1]);
    if (a == "--out") out = argv[i + 1];
  }
  std::vector<Row> rows;
  for (int n : {1000, 10000}) {
    std::fprintf(stderr, "[bench] %d electors on mem:// leases, measuring %ds...\n", n, seconds);
    rows.push_back(run(n, seconds));
  }
  std::printf("%-10s %-22s %-22s %s\n", "electors", "RSS per elector (KiB)", "CPU per renewal (us)", "renewals");
  std::string json = "[";
  for (auto& r : rows) {
    std::printf("%-10d %-22.2f %-22.2f %llu\n", r.electors, r.rss_per_elector_kib, r.cpu_us_per_renewal,
                static_cast<unsigned long long>(r.renewals));
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s{\"electors\":%d,\"rss_per_elector_kib\":%.3f,\"cpu_us_per_renewal\":%.3f,\"renewals\":%llu}",
                  json.size() > 1 ? "," : "", r.electors, r.rss_per_elector_kib, r.cpu_us_per_renewal,
                  static_cast<unsigned long long>(r.renewals));
    json += buf;
  }
  json += "]\n";
  std::ofstream(out) << json;
  std::fprintf(stderr, "[bench] wrote %s\n", out.c_str());
  return 0;
}
