// Dead connections (DESIGN item 13, issue 14 item 8) on the real control
// plane of the testenv fixture (LEASEHOLD_TESTENV_DIR): electors reach
// kube-apiserver through testenv/cmd/faultproxy (LEASEHOLD_TESTENV_BIN, or
// LEASEHOLD_FAULTPROXY naming the binary), whose `blackhole` command stops
// every established connection both ways without closing it (a lost node, a
// blackholed route) while new connections are forwarded as usual. The
// Kubernetes client must notice and move to a new connection: the leader
// keeps its lease, and a follower's watch resumes.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/runtime_access.h"
#include "kube/config.h"
#include "leasehold/elector.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
std::string dir() { return env("LEASEHOLD_TESTENV_DIR"); }
std::string faultproxy_bin() {
  std::string p = env("LEASEHOLD_FAULTPROXY");
  return p.empty() ? env("LEASEHOLD_TESTENV_BIN") + "/faultproxy" : p;
}
const char* kNs = "leasehold-test";

std::string unique(const std::string& prefix) {
  return prefix + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1'000'000'000);
}

// testenv/cmd/faultproxy in front of the test server, for one test.
struct FaultProxy {
  pid_t pid = -1;
  int in = -1;
  FILE* out = nullptr;
  std::thread reader;
  std::mutex mu;
  std::condition_variable cv;
  std::string addr;
  std::vector<nlohmann::json> answers;

  explicit FaultProxy(const std::string& target) {
    int ip[2], op[2];
    EXPECT_EQ(::pipe(ip), 0);
    EXPECT_EQ(::pipe(op), 0);
    std::string exe = faultproxy_bin();
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(ip[0], 0);
      ::dup2(op[1], 1);
      ::close(ip[1]);
      ::close(op[0]);
      ::execl(exe.c_str(), exe.c_str(), "--target", target.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(ip[0]);
    ::close(op[1]);
    in = ip[1];
    out = ::fdopen(op[0], "r");
    reader = std::thread([this] {
      char line[4096];
      while (std::fgets(line, sizeof line, out)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded()) continue;
        std::lock_guard<std::mutex> g(mu);
        if (j.contains("listening")) {
          addr = j["listening"];
        } else {
          answers.push_back(j);
        }
        cv.notify_all();
      }
    });
    std::unique_lock<std::mutex> lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, 10s, [&] { return !addr.empty(); })) << "faultproxy did not start (" << exe << ")";
  }
  // Sends one command and returns its answer.
  nlohmann::json cmd(const std::string& c) {
    std::unique_lock<std::mutex> lk(mu);
    size_t n = answers.size();
    std::string line = c + "\n";
    EXPECT_EQ(::write(in, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    EXPECT_TRUE(cv.wait_for(lk, 10s, [&] { return answers.size() > n; })) << "faultproxy: no answer to " << c;
    return answers.size() > n ? answers[n] : nlohmann::json();
  }
  ~FaultProxy() {
    ::close(in);  // it exits when its stdin closes
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
    reader.join();
    std::fclose(out);
  }
};

// A kubeconfig for `user` whose server is `server` (the test server's CA and
// token; the serving certificate carries the 127.0.0.1 SAN).
std::string kubeconfig_via(const std::string& tag, const std::string& server, const std::string& user) {
  auto b = kube::load_cluster_config({dir() + "/kubeconfig-" + user, ""});
  EXPECT_TRUE(b.ok()) << b.error().message();
  if (!b.ok()) return "";
  std::string ca = dir() + "/" + tag + "-ca.crt";
  std::ofstream(ca) << b->ca_pem;
  std::string path = dir() + "/kubeconfig-" + tag;
  std::ofstream(path) << "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: " << server
                      << "\n    certificate-authority: " << ca
                      << "\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n"
                         "users:\n- name: u\n  user:\n    token: "
                      << b->token << "\n";
  return path;
}

std::string server_authority() {
  auto b = kube::load_cluster_config({dir() + "/kubeconfig-admin", ""});
  std::string s = b.ok() ? b->server : "";
  return s.substr(s.find("://") + 3);
}

Runtime::Options opts(const std::string& kubeconfig) {
  Runtime::Options o;
  o.kubeconfig = kubeconfig;
  o.log = [](LogLevel l, std::string_view n, std::string_view m) {
    if (l >= LogLevel::kWarning) std::fprintf(stderr, "  [%.*s] %.*s\n", int(n.size()), n.data(), int(m.size()), m.data());
  };
  return o;
}

// Lease 6 s, renew deadline 4 s, retry 0.5 s: a lock request times out after
// renew_deadline / 2 = 2 s; the leader survives a dead connection when that
// timeout ends the connection and its next try (0.5 s later) goes to a new
// one: 0.5 + 2 + 0.5 s after its last good renewal, 1 s before its deadline.
ElectorConfig config(const std::string& lock, const std::string& identity) {
  ElectorConfig c;
  c.lock = lock;
  c.identity = identity;
  c.lease_duration = 6s;
  c.renew_deadline = 4s;
  c.retry_period = 500ms;
  return c;
}

struct Counts {
  std::atomic<int> started{0}, stopped{0};
};

void count_terms(ElectorConfig& c, Counts& n) {
  c.callbacks.on_started_leading = [&n](const Term&, std::stop_token stop) {
    ++n.started;
    while (!stop.stop_requested()) std::this_thread::sleep_for(10ms);
  };
  c.callbacks.on_stopped_leading = [&n](const Term&) { ++n.stopped; };
}

bool eventually(Duration limit, const std::function<bool()>& f) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

class DeadConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (dir().empty()) GTEST_FAIL() << "LEASEHOLD_TESTENV_DIR is not set (run through ctest)";
    if (::access(faultproxy_bin().c_str(), X_OK) != 0) GTEST_FAIL() << "no faultproxy at " << faultproxy_bin();
  }
};

TEST_F(DeadConnectionTest, ALeaderKeepsItsLeaseWhenItsConnectionIsBlackholed) {
  FaultProxy proxy(server_authority());
  Runtime rt(opts(kubeconfig_via("dead-leader", "https://" + proxy.addr, "elector")));
  Counts n;
  auto cfg = config("k8s://" + std::string(kNs) + "/" + unique("dead-leader"), "leader");
  count_terms(cfg, n);
  auto e = Elector::create(rt, cfg);
  ASSERT_TRUE(e.ok()) << e.error().message();
  (*e)->start();
  ASSERT_TRUE(eventually(10s, [&] { return (*e)->is_leader(); }));
  std::this_thread::sleep_for(1s);  // a few renewals on the first connection
  auto client = RuntimeAccess::kube_client(rt);
  ASSERT_TRUE(client.ok());
  auto before = (*e)->status();
  auto answer = proxy.cmd("blackhole");
  ASSERT_EQ(answer.value("ok", ""), "blackhole") << answer.dump();
  ASSERT_GE(answer.value("blackholed", 0), 1) << answer.dump();

  // Three renew deadlines: without a new connection the term would end at the first.
  auto until = std::chrono::steady_clock::now() + 12s;
  bool always = true;
  while (std::chrono::steady_clock::now() < until) {
    always = always && (*e)->is_leader();
    std::this_thread::sleep_for(20ms);
  }
  auto after = (*e)->status();
  EXPECT_TRUE(always) << "lost leadership across the blackhole";
  EXPECT_EQ(n.started.load(), 1);
  EXPECT_EQ(n.stopped.load(), 0);
  EXPECT_GE(after.renewals, before.renewals + 12) << "renewals did not resume (about 2 a second)";
  EXPECT_GE((*client)->stats().retired, 1u) << "the dead connection was not ended";
  (*e)->stop();
  (*e)->wait();
}

TEST_F(DeadConnectionTest, AFollowersWatchResumesWhenItsConnectionIsBlackholed) {
  std::string lock = "k8s://" + std::string(kNs) + "/" + unique("dead-watch");
  // The leader talks to kube-apiserver directly; only the follower's
  // connection goes through the proxy.
  Runtime direct(opts(dir() + "/kubeconfig-elector"));
  Counts ln, fn;
  auto lcfg = config(lock, "leader");
  lcfg.recampaign = false;
  count_terms(lcfg, ln);
  auto leader = Elector::create(direct, lcfg);
  ASSERT_TRUE(leader.ok()) << leader.error().message();
  (*leader)->start();
  ASSERT_TRUE(eventually(10s, [&] { return (*leader)->is_leader(); }));

  FaultProxy proxy(server_authority());
  Runtime proxied(opts(kubeconfig_via("dead-watch", "https://" + proxy.addr, "elector")));
  auto fcfg = config(lock, "follower");
  count_terms(fcfg, fn);
  auto follower = Elector::create(proxied, fcfg);
  ASSERT_TRUE(follower.ok()) << follower.error().message();
  (*follower)->start();
  ASSERT_TRUE(eventually(10s, [&] { return (*follower)->leader() == "leader"; }));
  std::this_thread::sleep_for(1s);  // its watch is established and sees renewals
  auto answer = proxy.cmd("blackhole");
  ASSERT_GE(answer.value("blackholed", 0), 1) << answer.dump();

  // The follower's connection carried only its watch: it is probed after 3 s
  // of silence and ended 2 s later; the watch resumes on a new connection.
  std::this_thread::sleep_for(8s);
  EXPECT_EQ(fn.started.load(), 0) << "the follower took a lease that was being renewed";
  auto client = RuntimeAccess::kube_client(proxied);
  ASSERT_TRUE(client.ok());
  EXPECT_GE((*client)->stats().retired, 1u) << "the dead connection was not ended";
  // A change now reaches the follower through its watch at once (a follower
  // without a live watch would see it only after its lease view expires).
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*leader)->handoff("follower").ok());
  EXPECT_TRUE(eventually(3s, [&] { return (*follower)->is_leader(); }))
      << "the follower's watch did not show it the handoff";
  std::fprintf(stderr, "  follower led %lld ms after the handoff was asked\n",
               static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count()));
  (*follower)->stop();
  (*follower)->wait();
  (*leader)->stop();
  (*leader)->wait();
}

}  // namespace
}  // namespace leasehold
