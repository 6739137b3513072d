// leasehold's Kubernetes client beside client-go, in one run on one control
// plane (Google Benchmark):
//   BM_LeaseEncodeDecode  decode a Lease as the server sends it, encode the update
//   BM_KubeGet            GET the Lease through kube::Client and decode it
//   BM_KubePut            PUT a renewal (renewTime, with the resourceVersion the
//                         previous response returned) and decode the answer
// then the client-go peer (testenv/cmd/kubebench) times the same GET and PUT
// on the same Lease with the same kubeconfig. Both sides send one request at
// a time and have their client-side rate limiters off. The program starts
// its own kube-apiserver + etcd (testenv up into a temporary directory),
// stops it on exit, writes the results as JSON and prints the ratios
// (leasehold / client-go: below 1 means leasehold is faster).
//
//   leasehold_kube_client_bench --testenv-bin DIR [--out PATH] [--n 1000] [--rounds 3]
//                               [--benchmark_* flags of Google Benchmark]
// Rounds alternate the two sides; the summary is the median over rounds, of
// mean wall time per op and of the whole client process's CPU per op.
// Without --testenv-bin only BM_LeaseEncodeDecode runs (and the program says so).
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/lease_codec.h"

extern char** environ;

namespace {

using namespace leasehold;
using nlohmann::json;

constexpr const char* kNs = "leasehold-test";
constexpr const char* kLeaseName = "kube-client-bench";

constexpr const char* kServerLease = R"({
  "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
  "metadata": {"name": "app", "namespace": "ns", "uid": "5d1b2c3e-0000-4000-8000-000000000001",
               "resourceVersion": "4711", "creationTimestamp": "2026-11-23T10:00:00Z",
               "managedFields": [{"manager": "leasehold", "operation": "Update",
                                  "apiVersion": "coordination.k8s.io/v1",
                                  "time": "2026-11-23T10:00:08Z", "fieldsType": "FieldsV1",
                                  "fieldsV1": {"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {},
                                  "f:leaseDurationSeconds": {}, "f:leaseTransitions": {},
                                  "f:renewTime": {}}}}]},
  "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15,
           "acquireTime": "2026-11-23T10:00:00.000000Z", "renewTime": "2026-11-23T10:00:08.123456Z",
           "leaseTransitions": 4}
})";

// The control plane and client the network benchmarks share.
struct Env {
  std::shared_ptr<kube::Client> client;
  std::string path;  // the Lease's URL path
  RealClock clock;
} g_env;

Result<kube::HttpResponse> call(const std::string& method, const std::string& body) {
  std::promise<Result<kube::HttpResponse>> p;
  auto f = p.get_future();
  g_env.client->request(method, g_env.path, body, std::chrono::seconds(10),
                        [&p](Result<kube::HttpResponse> r) { p.set_value(std::move(r)); });
  return f.get();
}

// User+system CPU of the whole process (the client's I/O thread included), in ns.
double process_cpu_ns() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 +
          static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3);
}

// Per-iteration wall times of one benchmark run, for the median and p99
// (the mean alone is at the mercy of one stall on a shared machine).
struct Samples {
  std::vector<double> ns;
  Instant t0;
  void start() { t0 = g_env.clock.now(); }
  void stop() { ns.push_back(static_cast<double>((g_env.clock.now() - t0).count())); }
  void report(benchmark::State& state, double cpu0) {
    state.counters["cpu_ns_per_op"] = (process_cpu_ns() - cpu0) / static_cast<double>(state.iterations());
    if (ns.empty()) return;
    std::sort(ns.begin(), ns.end());
    state.counters["p50_ns"] = ns[ns.size() / 2];
    state.counters["p99_ns"] = ns[ns.size() * 99 / 100];
  }
};

std::string describe(const Result<kube::HttpResponse>& r, const char* verb) {
  if (!r.ok()) return std::string(verb) + ": " + r.error().to_string();
  return std::string(verb) + ": HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200);
}

void BM_LeaseEncodeDecode(benchmark::State& state) {
  LeaseRecord next;
  next.holder_identity = "pod-b";
  next.lease_duration_seconds = 15;
  next.lease_transitions = 4;
  next.acquire_time = WallTime{} + std::chrono::seconds(1'795'428'000);
  next.renew_time = WallTime{} + std::chrono::seconds(1'795'428'010);
  for (auto _ : state) {
    auto lease = kube::decode_lease(kServerLease);
    if (!lease.ok()) {
      state.SkipWithError(lease.error().message().c_str());
      break;
    }
    std::string out = kube::encode_lease_update(lease->object, next);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_LeaseEncodeDecode)->Unit(benchmark::kNanosecond);

void BM_KubeGet(benchmark::State& state) {
  Samples samples;
  double cpu0 = process_cpu_ns();
  for (auto _ : state) {
    samples.start();
    auto r = call("GET", "");
    if (!r.ok() || r->status != 200) {
      state.SkipWithError(describe(r, "GET").c_str());
      break;
    }
    auto lease = kube::decode_lease(r->body);
    if (!lease.ok()) {
      state.SkipWithError(lease.error().message().c_str());
      break;
    }
    benchmark::DoNotOptimize(lease->versioned.version.data());
    samples.stop();
  }
  samples.report(state, cpu0);
}

void BM_KubePut(benchmark::State& state) {
  auto first = call("GET", "");
  auto cur = first.ok() && first->status == 200 ? kube::decode_lease(first->body)
                                                 : Result<kube::Lease>(Error::internal(describe(first, "GET")));
  if (!cur.ok()) {
    state.SkipWithError(cur.error().message().c_str());
    return;
  }
  kube::Lease lease = std::move(*cur);
  Samples samples;
  double cpu0 = process_cpu_ns();
  for (auto _ : state) {
    samples.start();
    LeaseRecord rec = lease.versioned.record;
    rec.renew_time = g_env.clock.wall_now();
    auto r = call("PUT", kube::encode_lease_update(lease.object, rec));
    if (!r.ok() || r->status != 200) {
      state.SkipWithError(describe(r, "PUT").c_str());
      break;
    }
    auto next = kube::decode_lease(r->body);
    if (!next.ok()) {
      state.SkipWithError(next.error().message().c_str());
      break;
    }
    lease = std::move(*next);
    samples.stop();
  }
  samples.report(state, cpu0);
}

// Records every run (and prints them as the console reporter does).
class Recorder : public benchmark::ConsoleReporter {
 public:
  struct Row {
    double ns_per_op;
    double cpu_ns_per_op;  // BM_LeaseEncodeDecode: this thread's; the others: the process's
    double p50_ns, p99_ns;  // network benchmarks only
    int64_t iterations;
    bool error;
    std::string message;
  };
  std::map<std::string, Row> rows;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      double mult = r.time_unit == benchmark::kNanosecond    ? 1
                    : r.time_unit == benchmark::kMicrosecond ? 1e3
                    : r.time_unit == benchmark::kMillisecond ? 1e6
                                                             : 1e9;
      auto c = r.counters.find("cpu_ns_per_op");
      double cpu = c != r.counters.end() ? c->second.value : r.GetAdjustedCPUTime() * mult;
      auto counter = [&](const char* name) {
        auto it = r.counters.find(name);
        return it == r.counters.end() ? 0.0 : it->second.value;
      };
      rows[r.run_name.function_name] = {r.GetAdjustedRealTime() * mult, cpu, counter("p50_ns"), counter("p99_ns"),
                                        static_cast<int64_t>(r.iterations), r.error_occurred,
                                        r.error_message};
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

// Runs argv (no shell); returns the exit status, -1 if it could not start.
// With `out`, captures its stdout.
int run(const std::vector<std::string>& args, std::string* out = nullptr) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fds[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    if (pipe(fds) != 0) return -1;
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
  }
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out) {
    close(fds[1]);
    if (rc == 0) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fds[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
  }
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// testenv up on construction; testenv down on destruction (every exit path
// of main after it, including errors).
class ControlPlane {
 public:
  ControlPlane(std::string bin, std::string dir) : bin_(std::move(bin)), dir_(std::move(dir)) {
    up_ = run({bin_ + "/testenv", "up", "--dir", dir_, "--bin", bin_}) == 0;
  }
  ~ControlPlane() {
    if (run({bin_ + "/testenv", "down", "--dir", dir_}) == 0) {
      std::string rm = "rm -rf '" + dir_ + "'";
      if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "bench: could not remove %s\n", dir_.c_str());
    } else {
      std::fprintf(stderr, "bench: testenv down failed; run: %s/testenv down --dir %s\n", bin_.c_str(),
                   dir_.c_str());
    }
  }
  bool up() const { return up_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string bin_, dir_;
  bool up_ = false;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "leasehold_kube_client_bench: %s\n"
               "usage: leasehold_kube_client_bench --testenv-bin DIR [--out PATH] [--n ITERATIONS] [--rounds R]\n"
               "       [--benchmark_* flags]\n",
               why);
  return 2;
}

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string bin, out = "bench/results/kube_client.json";
  long n = 1000;
  int rounds_wanted = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--testenv-bin" && (v = value())) bin = v;
    else if (a == "--out" && (v = value())) out = v;
    else if (a == "--n" && (v = value())) {
      char* end = nullptr;
      n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < 1 || n > 1'000'000) return usage("--n: want an integer in [1, 1000000]");
    } else if (a == "--rounds" && (v = value())) {
      char* end = nullptr;
      long r = std::strtol(v, &end, 10);
      if (*end != '\0' || r < 1 || r > 100) return usage("--rounds: want an integer in [1, 100]");
      rounds_wanted = static_cast<int>(r);
    } else {
      return usage(("unknown or incomplete argument \"" + a + "\"").c_str());
    }
  }

  json result = {{"benchmark", "kube_client"}};
  if (bin.empty()) {
    std::fprintf(stderr, "bench: no --testenv-bin: running only the codec benchmark; GET/PUT are NOT measured\n");
    Recorder rec;
    benchmark::RunSpecifiedBenchmarks(&rec);
    return rec.rows.count("BM_LeaseEncodeDecode") && !rec.rows["BM_LeaseEncodeDecode"].error ? 0 : 1;
  }

  char tmpl[] = "/tmp/leasehold-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return usage("cannot create a temporary directory");
  std::fprintf(stderr, "bench: starting kube-apiserver + etcd in %s\n", tmpl);
  ControlPlane cp(bin, tmpl);
  if (!cp.up()) {
    std::fprintf(stderr, "bench: testenv up failed (binaries in %s? run testenv/build.sh)\n", bin.c_str());
    return 1;
  }
  const std::string kubeconfig = cp.dir() + "/kubeconfig-elector";
  auto cfg = kube::load_cluster_config({kubeconfig, ""});
  if (!cfg.ok()) {
    std::fprintf(stderr, "bench: %s\n", cfg.error().to_string().c_str());
    return 1;
  }
  kube::ClientOptions opts;
  opts.rate.qps = 0;  // limiter off, as client-go's QPS < 0 on the other side
  auto client = kube::Client::create(*cfg, opts);
  if (!client.ok()) {
    std::fprintf(stderr, "bench: %s\n", client.error().to_string().c_str());
    return 1;
  }
  g_env.client = *client;
  g_env.path = std::string("/apis/coordination.k8s.io/v1/namespaces/") + kNs + "/leases/" + kLeaseName;
  {
    LeaseRecord r;
    r.holder_identity = "bench";
    r.lease_duration_seconds = 15;
    r.acquire_time = r.renew_time = g_env.clock.wall_now();
    std::promise<Result<kube::HttpResponse>> p;
    g_env.client->request("POST", std::string("/apis/coordination.k8s.io/v1/namespaces/") + kNs + "/leases",
                          kube::encode_lease_create(kNs, kLeaseName, r), std::chrono::seconds(10),
                          [&p](Result<kube::HttpResponse> res) { p.set_value(std::move(res)); });
    auto res = p.get_future().get();
    if (!res.ok() || res->status != 201) {
      std::fprintf(stderr, "bench: create the Lease: %s\n", describe(res, "POST").c_str());
      return 1;
    }
  }

  // Rounds alternate leasehold (Google Benchmark: codec, GET, PUT, at least
  // 1 s each) and client-go (N GETs, N PUTs), so load that drifts during the
  // run (the machine may be shared) hits both sides alike; the medians of the
  // rounds are reported.
  benchmark::RegisterBenchmark("BM_KubeGet", BM_KubeGet)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_KubePut", BM_KubePut)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
  const char* metrics[] = {"codec_ns", "codec_cpu_ns", "get_ns", "get_cpu_ns", "get_p50_ns", "get_p99_ns",
                           "put_ns", "put_cpu_ns", "put_p50_ns", "put_p99_ns"};
  std::map<std::string, std::vector<double>> lh, go;
  json rounds = json::array();
  for (int round = 1; round <= rounds_wanted; ++round) {
    std::fprintf(stderr, "bench: round %d of %d: leasehold\n", round, rounds_wanted);
    Recorder rec;
    benchmark::RunSpecifiedBenchmarks(&rec);
    for (const char* name : {"BM_LeaseEncodeDecode", "BM_KubeGet", "BM_KubePut"}) {
      auto it = rec.rows.find(name);
      if (it == rec.rows.end() || it->second.error) {
        std::fprintf(stderr, "bench: %s %s; no results written\n", name,
                     it == rec.rows.end() ? "did not run (filtered out?)" : it->second.message.c_str());
        return 1;
      }
    }
    const auto& codec = rec.rows["BM_LeaseEncodeDecode"];
    const auto& get = rec.rows["BM_KubeGet"];
    const auto& put = rec.rows["BM_KubePut"];
    double l[] = {codec.ns_per_op, codec.cpu_ns_per_op, get.ns_per_op, get.cpu_ns_per_op, get.p50_ns, get.p99_ns,
                  put.ns_per_op,   put.cpu_ns_per_op,   put.p50_ns,    put.p99_ns};
    std::fprintf(stderr, "bench: round %d of %d: client-go (kubebench --n %ld)\n", round, rounds_wanted, n);
    std::string go_out;
    int rc = run({bin + "/kubebench", "--kubeconfig", kubeconfig, "--namespace", kNs, "--name", kLeaseName,
                  "--n", std::to_string(n), "--warmup", std::to_string(std::min<long>(n / 5 + 1, 200))},
                 &go_out);
    json g = json::parse(go_out, nullptr, false);
    if (rc != 0 || g.is_discarded() || !g.is_object() || !g.contains("put_cpu_ns_per_op")) {
      std::fprintf(stderr, "bench: kubebench (client-go) failed with status %d: %s\n", rc, go_out.c_str());
      return 1;
    }
    json r = {{"round", round}, {"leasehold", json::object()}, {"client_go", g}};
    for (size_t k = 0; k < std::size(metrics); ++k) {
      lh[metrics[k]].push_back(l[k]);
      r["leasehold"][metrics[k]] = l[k];
    }
    r["leasehold"]["get_iterations"] = rec.rows["BM_KubeGet"].iterations;
    r["leasehold"]["put_iterations"] = rec.rows["BM_KubePut"].iterations;
    for (const char* k : {"get_ns", "get_cpu_ns", "put_ns", "put_cpu_ns"}) {
      go[k].push_back(g[std::string(k) + "_per_op"].get<double>());
    }
    for (const char* k : {"get_p50_ns", "get_p99_ns", "put_p50_ns", "put_p99_ns"}) go[k].push_back(g[k].get<double>());
    rounds.push_back(r);
  }
  kube::ClientStats stats = g_env.client->stats();

  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  std::ifstream loadavg("/proc/loadavg");
  std::string load;
  std::getline(loadavg, load);
  json summary = json::object();
  for (const char* k : {"get_ns", "get_p50_ns", "get_p99_ns", "get_cpu_ns", "put_ns", "put_p50_ns", "put_p99_ns",
                        "put_cpu_ns"}) {
    double a = median(lh[k]), b = median(go[k]);
    summary[k] = {{"leasehold", a}, {"client_go", b}, {"ratio", ratio(a, b)}};
  }
  summary["lease_encode_decode_ns"] = median(lh["codec_ns"]);
  summary["lease_encode_decode_cpu_ns"] = median(lh["codec_cpu_ns"]);
  result["control_plane"] = "kube-apiserver v1.36.3 + etcd v3.6.16 on loopback (testenv), user elector (RBAC)";
  result["method"] =
      "rounds alternate leasehold and client-go; one request at a time; client-side rate limiters off; "
      "GET = request + decode; PUT = renewTime update with the resourceVersion of the previous response + "
      "decode; *_ns = mean wall time per op, *_p50_ns/*_p99_ns = percentiles of per-op wall time, *_cpu_ns = user+system CPU of the whole client process per op; "
      "summary = median over rounds; ratio = leasehold / client-go (below 1: leasehold better)";
  result["summary"] = summary;
  result["rounds"] = rounds;
  result["leasehold_transport"] = {{"connections", stats.connections},
                                   {"http2_responses", stats.http2},
                                   {"requests", stats.completed}};
  result["cpus"] = std::thread::hardware_concurrency();
  result["loadavg_at_end"] = load;
  std::ofstream f(out);
  f << result.dump(2) << "\n";
  if (!f) {
    std::fprintf(stderr, "bench: cannot write %s\n", out.c_str());
    return 1;
  }
  std::printf("\n%-30s %12s %12s %7s   (median of %d rounds)\n", "per operation", "leasehold", "client-go",
              "ratio", rounds_wanted);
  for (auto [k, label] : {std::pair{"get_p50_ns", "GET lease, wall p50"}, {"get_ns", "GET lease, wall mean"},
                          {"get_p99_ns", "GET lease, wall p99"}, {"get_cpu_ns", "GET lease, process CPU"},
                          {"put_p50_ns", "PUT lease, wall p50"}, {"put_ns", "PUT lease, wall mean"},
                          {"put_p99_ns", "PUT lease, wall p99"}, {"put_cpu_ns", "PUT lease, process CPU"}}) {
    std::printf("%-30s %9.1f us %9.1f us %6.2fx\n", label, summary[k]["leasehold"].get<double>() / 1e3,
                summary[k]["client_go"].get<double>() / 1e3, summary[k]["ratio"].get<double>());
  }
  std::printf("lease encode+decode (C++): %.0f ns/op wall, %.0f ns/op CPU\n",
              summary["lease_encode_decode_ns"].get<double>(), summary["lease_encode_decode_cpu_ns"].get<double>());
  std::printf("ratio = leasehold / client-go (below 1: leasehold better); leasehold used %llu connection(s), "
              "%llu of %llu responses over HTTP/2; load average at end: %s\n",
              static_cast<unsigned long long>(stats.connections), static_cast<unsigned long long>(stats.http2),
              static_cast<unsigned long long>(stats.completed), load.c_str());
  std::printf("wrote %s\n", out.c_str());
  return 0;
}
