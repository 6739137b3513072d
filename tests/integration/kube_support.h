// Helpers of the Lease-lock tests on the real control plane (kube_test.cc,
// kube_metadata_test.cc): the testenv's kubeconfigs, the KubeTest fixture,
// an event log of leadership, fast elector timings and admin access.
// Threading: Events is thread-safe; the rest is called from the test thread.
#pragma once

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kube/client.h"
#include "kube/config.h"
#include "leasehold/elector.h"
#include "leasehold/runtime.h"

namespace leasehold::kubetest {

using namespace std::chrono_literals;

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
inline std::string dir() { return env("LEASEHOLD_TESTENV_DIR"); }
inline std::string kubeconfig(const std::string& user) { return dir() + "/kubeconfig-" + user; }
inline constexpr const char* kNs = "leasehold-test";

inline int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline std::string unique(const std::string& prefix) {
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(mono_ns() % 1'000'000'000);
}

inline Runtime::Options opts(const std::string& user) {
  Runtime::Options o;
  o.kubeconfig = kubeconfig(user);
  o.log = [](LogLevel l, std::string_view n, std::string_view m) {
    if (l >= LogLevel::kWarning) std::fprintf(stderr, "  [%.*s] %.*s\n", int(n.size()), n.data(), int(m.size()), m.data());
  };
  return o;
}

inline Result<Versioned> call(std::function<void(Completion<Versioned>)> op) {
  std::promise<Result<Versioned>> p;
  auto f = p.get_future();
  op([&p](Result<Versioned> r) { p.set_value(std::move(r)); });
  if (f.wait_for(20s) != std::future_status::ready) return Error::timeout("test: no completion in 20s");
  return f.get();
}

class KubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (dir().empty()) GTEST_FAIL() << "LEASEHOLD_TESTENV_DIR is not set (run through ctest)";
  }
};
// Tests that restart the shared control plane (run alone: RESOURCE_LOCK).
using KubeTestRestart = KubeTest;

struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, int64_t>> log;  // "a started", mono ns
  void add(const std::string& e) {
    std::lock_guard<std::mutex> g(mu);
    log.emplace_back(e, mono_ns());
    cv.notify_all();
  }
  bool wait_for(const std::string& e, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, limit, [&] {
      for (auto& [n, t] : log) if (n == e) return true;
      return false;
    });
  }
  // Waits until `e` happened `n` times.
  bool wait_count(const std::string& e, size_t n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, limit, [&] {
      size_t k = 0;
      for (auto& [name, t] : log) k += name == e;
      return k >= n;
    });
  }
  int64_t at(const std::string& e) {
    std::lock_guard<std::mutex> g(mu);
    for (auto& [n, t] : log) if (n == e) return t;
    return -1;
  }
};

inline ElectorConfig fast(const std::string& lock, const std::string& id, Events& ev) {
  ElectorConfig c;
  c.lock = lock;
  c.identity = id;
  c.lease_duration = 3s;
  c.renew_deadline = 2s;
  c.retry_period = 500ms;
  c.callbacks.on_started_leading = [&ev, id](const Term&, std::stop_token stop) {
    ev.add(id + " started");
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, stop, [] { return false; });
  };
  c.callbacks.on_stopped_leading = [&ev, id](const Term&) { ev.add(id + " stopped"); };
  return c;
}

// Starts `a`, waits until it leads, then starts `b` and waits until b sees a.
inline std::pair<std::unique_ptr<Elector>, std::unique_ptr<Elector>> lead_and_follow(Runtime& rt, const std::string& lock,
                                                                               Events& ev) {
  auto a = Elector::create(rt, fast(lock, "a", ev));
  EXPECT_TRUE(a.ok()) << a.error().message();
  (*a)->start();
  EXPECT_TRUE(ev.wait_for("a started", 20s));
  auto b = Elector::create(rt, fast(lock, "b", ev));
  (*b)->start();
  for (int i = 0; i < 200 && (*b)->leader() != "a"; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ((*b)->leader(), "a");
  return {std::move(*a), std::move(*b)};
}

// Admin access to the Lease, beside the electors.
struct Admin {
  std::shared_ptr<kube::Client> client;
  Admin() {
    auto cfg = kube::load_cluster_config({kubeconfig("admin"), ""});
    EXPECT_TRUE(cfg.ok());
    client = *kube::Client::create(*cfg);
  }
  kube::HttpResponse send(const std::string& method, const std::string& path, const std::string& body = "") {
    std::promise<Result<kube::HttpResponse>> p;
    client->request(method, path, body, 10s, [&](Result<kube::HttpResponse> r) { p.set_value(r); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : kube::HttpResponse{};
  }
};

inline std::string lease_path(const std::string& name) {
  return std::string("/apis/coordination.k8s.io/v1/namespaces/") + kNs + "/leases/" + name;
}

}  // namespace leasehold::kubetest
