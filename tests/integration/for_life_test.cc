// Leader-for-life on the real kube-apiserver of the testenv fixture. The test
// control plane runs no garbage collector and no kubelet: the tests create
// Pods and Nodes as an admin, set their status, and delete an owner and its
// ConfigMap as the collector would.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "kube/config.h"
#include "leasehold/for_life.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
std::string dir() { return env("LEASEHOLD_TESTENV_DIR"); }
std::string kubeconfig(const std::string& user) { return dir() + "/kubeconfig-" + user; }
const std::string kNs = "leasehold-test";

double since_s(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string unique(const std::string& prefix) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(ts.tv_nsec % 1'000'000);
}

Runtime::Options opts(const std::string& user) {
  Runtime::Options o;
  o.kubeconfig = kubeconfig(user);
  o.log = [](LogLevel l, std::string_view n, std::string_view m) {
    if (l >= LogLevel::kInfo) std::fprintf(stderr, "  [%.*s] %.*s\n", int(n.size()), n.data(), int(m.size()), m.data());
  };
  return o;
}

// The admin's hands: what the test does as the cluster (and its collector).
class Admin {
 public:
  Admin() {
    auto cfg = kube::load_cluster_config({kubeconfig("admin"), ""});
    EXPECT_TRUE(cfg.ok());
    client_ = *kube::Client::create(*cfg);
  }
  kube::HttpResponse call(const std::string& method, const std::string& path, const std::string& body = "") {
    std::promise<Result<kube::HttpResponse>> p;
    client_->request(method, path, body, 10s, [&p](Result<kube::HttpResponse> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? *r : kube::HttpResponse{};
  }
  json pod(const std::string& name, const std::string& node = "") {
    json spec = {{"containers", json::array({{{"name", "app"}, {"image", "example.invalid/app"}}})}};
    if (!node.empty()) spec["nodeName"] = node;
    auto r = call("POST", "/api/v1/namespaces/" + kNs + "/pods",
                  json{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", name}}}, {"spec", spec}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  void set_pod_phase(const std::string& name, const std::string& phase, const std::string& reason) {
    json p = json::parse(call("GET", "/api/v1/namespaces/" + kNs + "/pods/" + name).body);
    p["status"]["phase"] = phase;
    p["status"]["reason"] = reason;
    auto r = call("PUT", "/api/v1/namespaces/" + kNs + "/pods/" + name + "/status", p.dump());
    EXPECT_EQ(r.status, 200) << r.body;
  }
  void node(const std::string& name, const std::string& ready) {
    auto r = call("POST", "/api/v1/nodes", json{{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    json n = json::parse(r.body);
    n["status"]["conditions"] = json::array({{{"type", "Ready"},
                                              {"status", ready},
                                              {"reason", "KubeletStoppedPosting"},
                                              {"lastHeartbeatTime", "2026-01-01T00:00:00Z"},
                                              {"lastTransitionTime", "2026-01-01T00:00:00Z"}}});
    r = call("PUT", "/api/v1/nodes/" + name + "/status", n.dump());
    EXPECT_EQ(r.status, 200) << r.body;
  }
  json configmap(const std::string& name) {
    auto r = call("GET", "/api/v1/namespaces/" + kNs + "/configmaps/" + name);
    return r.status == 200 ? json::parse(r.body) : json();
  }
  // What the garbage collector does when an owner Pod is deleted.
  void collect(const std::string& pod, const std::string& lock) {
    EXPECT_EQ(call("DELETE", "/api/v1/namespaces/" + kNs + "/pods/" + pod).status, 200);
    EXPECT_EQ(call("DELETE", "/api/v1/namespaces/" + kNs + "/configmaps/" + lock).status, 200);
  }

 private:
  std::shared_ptr<kube::Client> client_;
};

ForLifeConfig config(const std::string& lock, const std::string& pod) {
  ForLifeConfig c;
  c.lock_name = lock;
  c.ns = kNs;
  c.pod_name = pod;
  return c;
}

class ForLife : public ::testing::Test {
 protected:
  void SetUp() override {
    if (dir().empty()) GTEST_FAIL() << "LEASEHOLD_TESTENV_DIR is not set (run through ctest)";
  }
};

TEST_F(ForLife, TheLockIsOwnedExactlyAsTheCollectorNeedsAndAStandbyTakesOverWhenItIsCollected) {
  Admin admin;
  std::string lock = unique("for-life"), p1 = unique("pod-a"), p2 = unique("pod-b");
  std::string uid1 = admin.pod(p1)["metadata"]["uid"];
  admin.pod(p2);
  Runtime rt(opts("admin"));

  auto l1 = become_leader(rt, config(lock, p1));
  ASSERT_TRUE(l1.ok()) << l1.error().message();
  json cm = admin.configmap(lock);
  ASSERT_TRUE(cm.is_object());
  json want = json::array({{{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", p1}, {"uid", uid1}}});
  EXPECT_EQ(cm["metadata"]["ownerReferences"], want);

  // Asking again from the same Pod (a restarted container) returns at once.
  auto t0 = std::chrono::steady_clock::now();
  auto again = become_leader(rt, config(lock, p1));
  ASSERT_TRUE(again.ok());
  EXPECT_LT(since_s(t0), 1.0);

  std::stop_source stop_b;
  auto b = std::async(std::launch::async, [&] { return become_leader(rt, config(lock, p2), stop_b.get_token()); });
  EXPECT_EQ(b.wait_for(3s), std::future_status::timeout) << "a standby became leader while the holder was alive";
  // By now b backs off for 2-5 s between attempts: only its watch can make it quick.
  auto collected = std::chrono::steady_clock::now();
  admin.collect(p1, lock);
  ASSERT_EQ(b.wait_for(10s), std::future_status::ready);
  auto lb = b.get();
  ASSERT_TRUE(lb.ok()) << lb.error().message();
  double took = since_s(collected);
  std::printf("lock collected -> standby leads: %.0f ms\n", took * 1000);
  EXPECT_LT(took, 1.5) << "the standby did not see the deletion through its watch";
  EXPECT_EQ(admin.configmap(lock)["metadata"]["ownerReferences"][0]["name"], p2);
  for (int i = 0; i < 100 && !(*l1)->lost().stop_requested(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE((*l1)->lost().stop_requested()) << "the old leader was not told it lost the lock";
  EXPECT_FALSE((*lb)->lost().stop_requested());
}

TEST_F(ForLife, AFailedOrEvictedHolderIsStaleAndItsLockIsReplaced) {
  Admin admin;
  std::string lock = unique("for-life"), p1 = unique("pod-a"), p2 = unique("pod-b");
  admin.pod(p1);
  admin.pod(p2);
  Runtime rt(opts("admin"));
  auto l1 = become_leader(rt, config(lock, p1));
  ASSERT_TRUE(l1.ok()) << l1.error().message();
  std::stop_source stop_b;
  auto b = std::async(std::launch::async, [&] { return become_leader(rt, config(lock, p2), stop_b.get_token()); });
  EXPECT_EQ(b.wait_for(1500ms), std::future_status::timeout);
  admin.set_pod_phase(p1, "Failed", "Evicted");
  ASSERT_EQ(b.wait_for(20s), std::future_status::ready) << "an evicted holder was not judged stale";
  auto lb = b.get();
  ASSERT_TRUE(lb.ok()) << lb.error().message();
  EXPECT_EQ(admin.configmap(lock)["metadata"]["ownerReferences"][0]["name"], p2);
}

TEST_F(ForLife, AHolderOnANotReadyNodeIsStaleOnlyAfterTheGrace) {
  Admin admin;
  std::string lock = unique("for-life"), node = unique("node"), p1 = unique("pod-a"), p2 = unique("pod-b");
  admin.node(node, "Unknown");
  admin.pod(p1, node);
  admin.pod(p2);
  Runtime rt(opts("admin"));
  auto l1 = become_leader(rt, config(lock, p1));
  ASSERT_TRUE(l1.ok()) << l1.error().message();

  // Without a grace, a Node's state is never a reason to take over.
  std::stop_source stop_c;
  auto c = std::async(std::launch::async, [&] { return become_leader(rt, config(lock, p2), stop_c.get_token()); });
  EXPECT_EQ(c.wait_for(4s), std::future_status::timeout);
  stop_c.request_stop();
  ASSERT_EQ(c.wait_for(20s), std::future_status::ready);
  EXPECT_FALSE(c.get().ok());

  ForLifeConfig cfg = config(lock, p2);
  cfg.node_not_ready_grace = 3s;
  auto t0 = std::chrono::steady_clock::now();
  auto lb = become_leader(rt, cfg);
  ASSERT_TRUE(lb.ok()) << lb.error().message();
  double took = since_s(t0);
  std::printf("NotReady node, grace 3s -> standby leads after %.1f s\n", took);
  EXPECT_GE(took, 3.0) << "took over before the grace had passed on our clock";
  EXPECT_TRUE(admin.call("DELETE", "/api/v1/nodes/" + node).status == 200);
}

TEST_F(ForLife, ReleaseOnShutdownHandsOverAtOnce) {
  Admin admin;
  std::string lock = unique("for-life"), p1 = unique("pod-a"), p2 = unique("pod-b");
  admin.pod(p1);
  admin.pod(p2);
  Runtime rt(opts("admin"));
  auto l1 = become_leader(rt, config(lock, p1));
  ASSERT_TRUE(l1.ok());
  auto b = std::async(std::launch::async, [&] { return become_leader(rt, config(lock, p2)); });
  EXPECT_EQ(b.wait_for(3s), std::future_status::timeout);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*l1)->release().ok());
  ASSERT_EQ(b.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(b.get().ok());
  std::printf("release -> standby leads: %.0f ms\n", since_s(t0) * 1000);
  EXPECT_LT(since_s(t0), 1.5);
  // Releasing again is refused: the lock is someone else's now.
  auto again = (*l1)->release();
  EXPECT_FALSE(again.ok());
}

TEST_F(ForLife, ClearErrorsForMissingPermissionsAndMissingConfig) {
  Runtime rt(opts("nobody"));
  auto r = become_leader(rt, config(unique("for-life"), "some-pod"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Code::kForbidden)) << r.error().to_string();
  EXPECT_NE(r.error().message().find("pods"), std::string::npos) << r.error().message();

  Runtime admin_rt(opts("admin"));
  auto missing = become_leader(admin_rt, config(unique("for-life"), unique("no-such-pod")));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("does not exist"), std::string::npos) << missing.error().message();

  ForLifeConfig no_pod = config("x", "");
  ::unsetenv("POD_NAME");
  auto np = become_leader(admin_rt, no_pod);
  ASSERT_FALSE(np.ok());
  EXPECT_NE(np.error().message().find("POD_NAME"), std::string::npos) << np.error().message();
  ForLifeConfig bad = config("", "p");
  EXPECT_NE(become_leader(admin_rt, bad).error().message().find("lock_name"), std::string::npos);
}

// The command: `leasehold run --mode=for-life` and `--label-leader-pod`.
pid_t spawn_cli(const std::vector<std::string>& args, const std::string& pod, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::setenv("POD_NAME", pod.c_str(), 1);
    ::setenv("POD_NAMESPACE", kNs.c_str(), 1);
    std::FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    std::string bin = env("LEASEHOLD_CLI");
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int stop_cli(pid_t pid) {
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  for (auto t0 = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t0 < limit;) {
    if (f()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return f();
}

TEST_F(ForLife, TheCommandRunsItsChildOnlyAsLeaderForLifeAndReleasesOnSigterm) {
  if (env("LEASEHOLD_CLI").empty()) GTEST_FAIL() << "LEASEHOLD_CLI is not set";
  Admin admin;
  std::string lock = unique("for-life-cli"), p1 = unique("pod-a"), p2 = unique("pod-b");
  admin.pod(p1);
  admin.pod(p2);
  std::string marker = dir() + "/" + lock + ".child";
  auto args = [&](const std::string& who) {
    return std::vector<std::string>{"run", "--mode=for-life", "--leader-elect-resource-name=" + lock,
                                    "--leader-elect-resource-namespace=" + kNs, "--kubeconfig=" + kubeconfig("admin"),
                                    "--", "sh", "-c", "echo " + who + " >> " + marker + "; exec sleep 600"};
  };
  auto lines = [&] {
    std::ifstream f(marker);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return all;
  };
  pid_t a = spawn_cli(args("a"), p1, dir() + "/" + lock + "-a.log");
  ASSERT_TRUE(eventually([&] { return lines() == "a\n"; })) << lines();
  pid_t b = spawn_cli(args("b"), p2, dir() + "/" + lock + "-b.log");
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(lines(), "a\n") << "the standby ran its child while the leader lived";
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(stop_cli(a), 128 + SIGTERM) << "exits with the child's status (sleep killed by SIGTERM)";
  ASSERT_TRUE(eventually([&] { return lines() == "a\nb\n"; })) << lines();
  std::printf("leasehold run --mode=for-life: SIGTERM of the leader -> standby's child started: %.0f ms\n",
              since_s(t0) * 1000);
  EXPECT_EQ(admin.configmap(lock)["metadata"]["ownerReferences"][0]["name"], p2);
  stop_cli(b);
  EXPECT_FALSE(admin.configmap(lock).is_object()) << "the leader deleted its lock on SIGTERM";
}

TEST_F(ForLife, LabelLeaderPodMarksTheLeadersPodOnlyWhileItLeads) {
  if (env("LEASEHOLD_CLI").empty()) GTEST_FAIL() << "LEASEHOLD_CLI is not set";
  Admin admin;
  std::string lease = unique("label"), p1 = unique("pod-a"), p2 = unique("pod-b");
  admin.pod(p1);
  admin.pod(p2);
  auto label = [&](const std::string& pod) -> std::string {
    json p = json::parse(admin.call("GET", "/api/v1/namespaces/" + kNs + "/pods/" + pod).body, nullptr, false);
    if (!p.is_object() || !p["metadata"].contains("labels") || !p["metadata"]["labels"].contains("leasehold.io/leader")) {
      return "";
    }
    return p["metadata"]["labels"]["leasehold.io/leader"];
  };
  auto args = [&](const std::string& id) {
    return std::vector<std::string>{"serve", "--lock=k8s://" + kNs + "/" + lease, "--identity=" + id,
                                    "--kubeconfig=" + kubeconfig("admin"), "--http-address=",
                                    "--label-leader-pod=leasehold.io/leader=true",
                                    "--leader-elect-lease-duration=3s", "--leader-elect-renew-deadline=2s",
                                    "--leader-elect-retry-period=500ms"};
  };
  pid_t a = spawn_cli(args("a"), p1, dir() + "/" + lease + "-a.log");
  ASSERT_TRUE(eventually([&] { return label(p1) == "true"; })) << "the leader's pod was not labelled";
  pid_t b = spawn_cli(args("b"), p2, dir() + "/" + lease + "-b.log");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(label(p2), "") << "a standby labelled its pod";
  stop_cli(a);
  EXPECT_EQ(label(p1), "") << "the label stays after step-down";
  ASSERT_TRUE(eventually([&] { return label(p2) == "true"; })) << "the new leader's pod was not labelled";
  stop_cli(b);
  EXPECT_EQ(label(p2), "");
}

}  // namespace
}  // namespace leasehold
