// Coordinated leader election (KEP-4355) on the real kube-apiserver of the
// testenv fixture, which runs with the CoordinatedLeaderElection gate and
// coordination.k8s.io/v1beta1: kube-apiserver's own controller picks the
// holder among our LeaseCandidates.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "kube/config.h"
#include "leasehold/elector.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
std::string dir() { return env("LEASEHOLD_TESTENV_DIR"); }
const std::string kNs = "leasehold-test";

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Log {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, int64_t>> events;  // "a started", mono ns
  void add(std::string e) {
    std::lock_guard<std::mutex> g(mu);
    events.emplace_back(std::move(e), mono_ns());
    cv.notify_all();
  }
  bool wait_for(const std::string& e, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, limit, [&] {
      for (auto& [n, t] : events) if (n == e) return true;
      return false;
    });
  }
  int64_t at(const std::string& e) {
    std::lock_guard<std::mutex> g(mu);
    for (auto& [n, t] : events) if (n == e) return t;
    return -1;
  }
  int leaders_now() {  // started minus stopped
    std::lock_guard<std::mutex> g(mu);
    int n = 0;
    for (auto& [e, t] : events) n += e.ends_with(" started") ? 1 : e.ends_with(" stopped") ? -1 : 0;
    return n;
  }
};

ElectorConfig candidate(const std::string& lease, const std::string& id, const std::string& emulation, Log& log) {
  ElectorConfig c;
  c.lock = "k8s://" + kNs + "/" + lease;
  c.identity = id;
  c.lease_duration = 4s;
  c.renew_deadline = 3s;
  c.retry_period = 500ms;
  c.coordinated.enabled = true;
  c.coordinated.binary_version = "1.36.3";
  c.coordinated.emulation_version = emulation;
  c.callbacks.on_started_leading = [&log, id](const Term&, std::stop_token stop) {
    log.add(id + " started");
    EXPECT_LE(log.leaders_now(), 1) << "two leaders";
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, stop, [] { return false; });
  };
  c.callbacks.on_stopped_leading = [&log, id](const Term&) { log.add(id + " stopped"); };
  return c;
}

Runtime::Options opts() {
  Runtime::Options o;
  o.kubeconfig = dir() + "/kubeconfig-admin";
  o.log = [](LogLevel l, std::string_view n, std::string_view m) {
    if (l >= LogLevel::kInfo) std::fprintf(stderr, "  [%.*s] %.*s\n", int(n.size()), n.data(), int(m.size()), m.data());
  };
  return o;
}

json get(const std::string& path) {
  auto cfg = kube::load_cluster_config({dir() + "/kubeconfig-admin", ""});
  auto c = *kube::Client::create(*cfg);
  std::promise<Result<kube::HttpResponse>> p;
  c->request("GET", path, "", 10s, [&p](Result<kube::HttpResponse> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  if (!r || r->status != 200) return json();
  return json::parse(r->body, nullptr, false);
}

std::string unique(const std::string& prefix) {
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(mono_ns() % 1'000'000);
}

TEST(Coordinated, TheOldestEmulationVersionWinsAndAnOlderNewcomerTakesOverThroughPreferredHolder) {
  if (dir().empty()) GTEST_FAIL() << "LEASEHOLD_TESTENV_DIR is not set (run through ctest)";
  Runtime rt(opts());
  Log log;
  std::string lease = unique("coordinated");
  std::map<std::string, std::unique_ptr<Elector>> e;
  for (auto [id, emu] : {std::pair{"c-136", "1.36"}, {"c-134", "1.34"}, {"c-135", "1.35"}}) {
    auto el = Elector::create(rt, candidate(lease, std::string(id) + "-" + std::to_string(::getpid()), emu, log));
    ASSERT_TRUE(el.ok()) << el.error().message();
    (*el)->start();
    e[id] = std::move(*el);
  }
  std::string oldest = "c-134-" + std::to_string(::getpid());
  ASSERT_TRUE(log.wait_for(oldest + " started", 90s)) << "kube-apiserver never made the oldest candidate leader";
  // Our candidates are there, as kube-apiserver sees them.
  json cands = get("/apis/coordination.k8s.io/v1beta1/namespaces/" + kNs + "/leasecandidates/" + oldest);
  ASSERT_TRUE(cands.is_object());
  EXPECT_EQ(cands["spec"]["leaseName"], lease);
  EXPECT_EQ(cands["spec"]["emulationVersion"], "1.34.0");
  EXPECT_EQ(cands["spec"]["strategy"], "OldestEmulationVersion");
  json l = get("/apis/coordination.k8s.io/v1/namespaces/" + kNs + "/leases/" + lease);
  EXPECT_EQ(l["spec"]["holderIdentity"], oldest);
  EXPECT_EQ(l["spec"]["strategy"], "OldestEmulationVersion");
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(log.leaders_now(), 1);
  EXPECT_TRUE(e["c-134"]->is_leader());
  EXPECT_FALSE(e["c-136"]->is_leader());
  EXPECT_FALSE(e["c-135"]->is_leader());

  // A newcomer with an older emulation version: kube-apiserver sets
  // preferredHolder, the leader steps down, the newcomer is made holder.
  std::string older = "c-133-" + std::to_string(::getpid());
  auto n = Elector::create(rt, candidate(lease, older, "1.33", log));
  ASSERT_TRUE(n.ok());
  (*n)->start();
  ASSERT_TRUE(log.wait_for(older + " started", 90s)) << "the older newcomer never took over";
  ASSERT_NE(log.at(oldest + " stopped"), -1);
  EXPECT_LT(log.at(oldest + " stopped"), log.at(older + " started")) << "the newcomer started before the old leader stopped";
  std::printf("previous leader stopped -> older newcomer started: %.0f ms\n",
              static_cast<double>(log.at(older + " started") - log.at(oldest + " stopped")) / 1e6);
  EXPECT_EQ(log.leaders_now(), 1);
  (*n)->stop();
  (*n)->wait();
  for (auto& [id, el] : e) {
    el->stop();
    el->wait();
  }
  // Stopped candidates delete their LeaseCandidates.
  for (int i = 0; i < 50 && get("/apis/coordination.k8s.io/v1beta1/namespaces/" + kNs + "/leasecandidates/" + oldest).is_object(); ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(get("/apis/coordination.k8s.io/v1beta1/namespaces/" + kNs + "/leasecandidates/" + oldest).is_object());
}

TEST(Coordinated, ConfigErrorsNameTheField) {
  ElectorConfig c;
  c.lock = "file:///tmp/x";
  c.identity = "a";
  c.coordinated.enabled = true;
  c.coordinated.binary_version = "1.36.3";
  EXPECT_NE(c.validate().error().message().find("k8s://"), std::string::npos);
  c.lock = "k8s://ns/app";
  c.coordinated.binary_version = "1.36";
  EXPECT_NE(c.validate().error().message().find("coordinated.binary_version"), std::string::npos);
  c.coordinated.binary_version = "1.36.3";
  c.identity = "Pod_A";
  EXPECT_NE(c.validate().error().message().find("identity"), std::string::npos);
  c.identity = "pod-a";
  EXPECT_TRUE(c.validate().ok());
}

}  // namespace
}  // namespace leasehold
