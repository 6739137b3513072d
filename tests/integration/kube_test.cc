// The Kubernetes Lease lock against the real kube-apiserver started by the
// testenv fixture (LEASEHOLD_TESTENV_DIR), and interop with the client-go
// peer (LEASEHOLD_PEER). No mock server: every request here reaches
// kube-apiserver and etcd.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/lease_watch_hub.h"
#include "core/runtime_access.h"
#include "kube/client.h"
#include "kube/config.h"
#include "leasehold/elector.h"
#include "kube_support.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;
using namespace kubetest;

TEST_F(KubeTest, EveryVerbTheLockUsesAndConflictOnAStaleVersion) {
  Runtime rt(opts("elector"));
  std::string url = "k8s://" + std::string(kNs) + "/" + unique("verbs");
  auto lock = rt.open_lock(url);
  ASSERT_TRUE(lock.ok()) << lock.error().message();
  auto& l = **lock;
  auto missing = call([&](auto cb) { l.get(cb); });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::kNotFound) << missing.error().message();
  LeaseRecord rec;
  rec.holder_identity = "a";
  rec.lease_duration_seconds = 15;
  rec.renew_time = rec.acquire_time = std::chrono::system_clock::now();
  auto created = call([&](auto cb) { l.create(rec, cb); });
  ASSERT_TRUE(created.ok()) << created.error().message();
  auto again = call([&](auto cb) { l.create(rec, cb); });
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);
  auto got = call([&](auto cb) { l.get(cb); });
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->record.holder_identity, "a");
  EXPECT_EQ(got->version, created->version);
  rec.holder_identity = "b";
  rec.lease_transitions = 1;
  auto updated = call([&](auto cb) { l.update(got->version, rec, cb); });
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  EXPECT_NE(updated->version, got->version);
  rec.holder_identity = "c";
  auto stale = call([&](auto cb) { l.update(got->version, rec, cb); });
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), Code::kConflict) << stale.error().message();
  auto final_ = call([&](auto cb) { l.get(cb); });
  EXPECT_EQ(final_->record.holder_identity, "b");
}

TEST_F(KubeTest, NobodyGetsAForbiddenErrorNamingTheRule) {
  Runtime rt(opts("nobody"));
  auto lock = rt.open_lock(std::string("k8s://") + kNs + "/anything");
  ASSERT_TRUE(lock.ok());
  auto r = call([&](auto cb) { (*lock)->get(cb); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kForbidden);
  EXPECT_NE(r.error().message().find("grant verb \"get\" on resource \"leases\" in API group "
                                     "\"coordination.k8s.io\" in namespace \"leasehold-test\""),
            std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("User \"nobody\""), std::string::npos) << r.error().message();
}

TEST_F(KubeTest, ClientCertificateAuthWorks) {
  Runtime rt(opts("cert-admin"));
  auto lock = rt.open_lock(std::string("k8s://") + kNs + "/" + unique("cert"));
  ASSERT_TRUE(lock.ok());
  auto r = call([&](auto cb) { (*lock)->get(cb); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kNotFound) << r.error().message();  // authenticated and authorized
}

TEST_F(KubeTest, AServerWhoseCaIsNotTrustedIsRefused) {
  auto cfg = kube::load_cluster_config({kubeconfig("admin"), ""});
  ASSERT_TRUE(cfg.ok());
  cfg->ca_pem.clear();  // the system trust store does not know the test CA
  auto client = kube::Client::create(*cfg);
  ASSERT_TRUE(client.ok());
  std::promise<Result<kube::HttpResponse>> p;
  (*client)->request("GET", "/readyz", "", 10s, [&](Result<kube::HttpResponse> r) { p.set_value(r); });
  auto r = p.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("TLS"), std::string::npos) << r.error().message();
}

TEST_F(KubeTest, GracefulReleaseIsTakenOverThroughTheWatch) {
  Runtime rt(opts("elector"));
  Events ev;
  auto [a, b] = lead_and_follow(rt, "k8s://" + std::string(kNs) + "/" + unique("handover"), ev);
  a->stop();
  ASSERT_TRUE(ev.wait_for("b started", 10s));
  int64_t gap = ev.at("b started") - ev.at("a stopped");
  EXPECT_GT(gap, 0) << "b started before a stopped";
  EXPECT_LT(gap, 1'000'000'000) << "take-over after release took " << gap / 1e6 << " ms";
  std::printf("release -> take-over: %.1f ms\n", static_cast<double>(gap) / 1e6);
  a->wait();
  EXPECT_TRUE(b->is_leader());
}

TEST_F(KubeTest, HandoffToALeaseholdStandbyStopsTheWorkFirstAndHasNoGap) {
  Runtime rt(opts("elector"));
  Events ev;
  auto [a, b] = lead_and_follow(rt, "k8s://" + std::string(kNs) + "/" + unique("handoff"), ev);
  EXPECT_FALSE(a->handoff("a").ok()) << "a handoff to ourselves must be refused";
  ASSERT_TRUE(a->handoff("b").ok());
  ASSERT_TRUE(ev.wait_for("b started", 10s));
  int64_t gap = ev.at("b started") - ev.at("a stopped");
  EXPECT_GT(gap, 0) << "b started before a's work stopped";
  EXPECT_LT(gap, 1'000'000'000) << "handoff took " << gap / 1e6 << " ms";
  std::printf("handoff a -> b (leasehold): %.1f ms from a's work stopping to b's starting\n",
              static_cast<double>(gap) / 1e6);
  EXPECT_TRUE(b->is_leader());
  EXPECT_EQ(b->term()->holder, "b");
  // a stands by behind b: it does not take the lease back.
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(a->is_leader());
  EXPECT_EQ(a->leader(), "b");
}

TEST_F(KubeTest, OneSharedWatchServesEveryLockOfANamespace) {
  Runtime rt(opts("elector"));
  Events ev;
  std::string base = unique("shared");
  std::vector<std::unique_ptr<Elector>> leaders;
  for (int i = 0; i < 10; ++i) {
    auto e = Elector::create(rt, fast("k8s://" + std::string(kNs) + "/" + base + "-" + std::to_string(i),
                                      "l" + std::to_string(i), ev));
    ASSERT_TRUE(e.ok());
    (*e)->start();
    leaders.push_back(std::move(*e));
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ev.wait_for("l" + std::to_string(i) + " started", 20s));
  auto follower = Elector::create(rt, fast("k8s://" + std::string(kNs) + "/" + base + "-0", "f0", ev));
  (*follower)->start();
  for (int i = 0; i < 200 && (*follower)->leader() != "l0"; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ((*follower)->leader(), "l0");
  auto hub = RuntimeAccess::lease_watch_hub(rt);
  ASSERT_TRUE(hub);
  EXPECT_EQ(hub->streams(), 1u) << "11 locks in one namespace should share one watch";
  leaders[0]->stop();
  ASSERT_TRUE(ev.wait_for("f0 started", 10s));
  int64_t gap = ev.at("f0 started") - ev.at("l0 stopped");
  std::printf("release -> take-over through the shared watch: %.1f ms\n", static_cast<double>(gap) / 1e6);
  EXPECT_LT(gap, 1'000'000'000) << "the follower did not learn of the release through the watch";
  // The hub reports healthy once the stream's headers arrived (not before).
  auto healthy = std::make_shared<std::promise<void>>();
  backends::LeaseWatchSubscriber sub;
  sub.on_object = [](const kube::Lease*) {};
  sub.on_health = [healthy, once = std::make_shared<std::once_flag>()](bool up) {
    if (up) std::call_once(*once, [&] { healthy->set_value(); });
  };
  sub.on_unsupported = [] { ADD_FAILURE() << "the shared watch was refused"; };
  uint64_t id = hub->subscribe(kNs, base + "-0", std::move(sub));
  EXPECT_EQ(healthy->get_future().wait_for(5s), std::future_status::ready) << "the open stream never reported healthy";
  hub->unsubscribe(id);
}

// ---- interop with the client-go peer ----

struct Peer {
  pid_t pid = -1;
  FILE* out = nullptr;
  std::thread reader;
  Events& ev;
  std::string id;

  Peer(Events& e, const std::string& lease, const std::string& ident) : ev(e), id(ident) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    std::string bin = env("LEASEHOLD_PEER"), kc = kubeconfig("elector");
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::execl(bin.c_str(), bin.c_str(), "--kubeconfig", kc.c_str(), "--namespace", kNs, "--name", lease.c_str(),
              "--identity", ident.c_str(), "--lease-duration=3s", "--renew-deadline=2s", "--retry-period=500ms",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    out = ::fdopen(fds[0], "r");
    reader = std::thread([this] {
      char line[4096];
      while (std::fgets(line, sizeof line, out)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded()) continue;
        std::string event = j.value("event", "");
        if (event == "started" || event == "stopped") ev.add(id + " " + event);
      }
    });
  }
  void signal(int sig) { ::kill(pid, sig); }
  ~Peer() {
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
    reader.join();
    std::fclose(out);
  }
};

TEST_F(KubeTest, InteropWithClientGoBothDirections) {
  if (env("LEASEHOLD_PEER").empty()) GTEST_FAIL() << "LEASEHOLD_PEER is not set";
  Runtime rt(opts("elector"));
  Events ev;
  std::string name = unique("interop");
  std::string lock = "k8s://" + std::string(kNs) + "/" + name;
  {
    // client-go leads first; leasehold stands by and takes over its release.
    Peer go(ev, name, "go-1");
    ASSERT_TRUE(ev.wait_for("go-1 started", 20s));
    auto lh = Elector::create(rt, fast(lock, "lh-1", ev));
    ASSERT_TRUE(lh.ok());
    (*lh)->start();
    for (int i = 0; i < 200 && (*lh)->leader() != "go-1"; ++i) std::this_thread::sleep_for(20ms);
    ASSERT_EQ((*lh)->leader(), "go-1");
    EXPECT_FALSE((*lh)->is_leader());
    go.signal(SIGTERM);  // client-go releases on cancel
    ASSERT_TRUE(ev.wait_for("lh-1 started", 10s));
    EXPECT_GT(ev.at("lh-1 started"), ev.at("go-1 stopped"));
    std::printf("client-go release -> leasehold leads: %.1f ms\n",
                static_cast<double>(ev.at("lh-1 started") - ev.at("go-1 stopped")) / 1e6);

    // Now client-go stands by and takes over leasehold's release.
    Peer go2(ev, name, "go-2");
    std::this_thread::sleep_for(1500ms);  // real time: several client-go retry periods
    EXPECT_EQ(ev.at("go-2 started"), -1) << "client-go took the lease while leasehold held it";
    (*lh)->stop();
    (*lh)->wait();
    ASSERT_TRUE(ev.wait_for("go-2 started", 10s));
    EXPECT_GT(ev.at("go-2 started"), ev.at("lh-1 stopped"));
    std::printf("leasehold release -> client-go leads: %.1f ms\n",
                static_cast<double>(ev.at("go-2 started") - ev.at("lh-1 stopped")) / 1e6);

    // client-go is killed; leasehold waits out the lease, then leads.
    auto lh2 = Elector::create(rt, fast(lock, "lh-2", ev));
    (*lh2)->start();
    for (int i = 0; i < 200 && (*lh2)->leader() != "go-2"; ++i) std::this_thread::sleep_for(20ms);
    int64_t killed = mono_ns();
    go2.signal(SIGKILL);
    ASSERT_TRUE(ev.wait_for("lh-2 started", 15s));
    double after = static_cast<double>(ev.at("lh-2 started") - killed) / 1e9;
    EXPECT_GT(after, 1.0) << "took over before client-go's lease could have expired";
    std::printf("SIGKILL of client-go -> leasehold leads: %.2f s (lease 3s)\n", after);
    (*lh2)->stop();
    (*lh2)->wait();
  }
}


TEST_F(KubeTest, InteropHandoffToAClientGoStandby) {
  if (env("LEASEHOLD_PEER").empty()) GTEST_FAIL() << "LEASEHOLD_PEER is not set";
  Runtime rt(opts("elector"));
  Events ev;
  std::string name = unique("handoff-go");
  auto lh = Elector::create(rt, fast("k8s://" + std::string(kNs) + "/" + name, "lh-1", ev));
  ASSERT_TRUE(lh.ok());
  (*lh)->start();
  ASSERT_TRUE(ev.wait_for("lh-1 started", 20s));
  Peer go(ev, name, "go-1");
  std::this_thread::sleep_for(1500ms);  // client-go is standing by
  ASSERT_EQ(ev.at("go-1 started"), -1);
  ASSERT_TRUE((*lh)->handoff("go-1").ok());
  // client-go finds itself named holder at its next retry (retry period 0.5s).
  ASSERT_TRUE(ev.wait_for("go-1 started", 10s));
  int64_t gap = ev.at("go-1 started") - ev.at("lh-1 stopped");
  EXPECT_GT(gap, 0) << "client-go started before leasehold's work stopped";
  EXPECT_LT(gap, 2'000'000'000) << "handoff to client-go took " << gap / 1e6 << " ms";
  std::printf("handoff leasehold -> client-go: %.1f ms\n", static_cast<double>(gap) / 1e6);
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE((*lh)->is_leader());
  EXPECT_EQ((*lh)->leader(), "go-1");
  (*lh)->stop();
  (*lh)->wait();
}

// ---- credentials that change ----

std::string token_of(const std::string& user) {
  auto cfg = kube::load_cluster_config({kubeconfig(user), ""});
  EXPECT_TRUE(cfg.ok());
  return cfg.ok() ? cfg->token : "";
}

std::string write_file(const std::string& path, const std::string& text, bool exec = false) {
  std::ofstream(path) << text;
  if (exec) ::chmod(path.c_str(), 0755);
  return path;
}

// A kubeconfig for the test server whose user block is `user_yaml`.
std::string kubeconfig_with(const std::string& tag, const std::string& user_yaml) {
  auto base = kube::load_cluster_config({kubeconfig("admin"), ""});
  std::string ca = write_file(dir() + "/" + tag + "-ca.crt", base->ca_pem);
  return write_file(dir() + "/kubeconfig-" + tag,
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: " + base->server +
                        "\n    certificate-authority: " + ca +
                        "\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n"
                        "users:\n- name: u\n  user:\n" + user_yaml);
}

Code get_code(Runtime& rt, const std::string& lock_url) {
  auto lock = rt.open_lock(lock_url);
  EXPECT_TRUE(lock.ok());
  auto r = call([&](auto cb) { (*lock)->get(cb); });
  return r.ok() ? Code::kInternal : r.error().code();  // the Lease never exists here
}

TEST_F(KubeTest, ARotatedTokenFileIsPickedUpWithoutRestart) {
  std::string token_path = write_file(dir() + "/rotating-token", token_of("elector"));
  Runtime::Options o = opts("elector");
  o.kubeconfig = kubeconfig_with("rotating", "    tokenFile: " + token_path + "\n");
  Runtime rt(o);
  std::string url = std::string("k8s://") + kNs + "/" + unique("rotating");
  EXPECT_EQ(get_code(rt, url), Code::kNotFound);   // authorized as elector
  write_file(token_path, token_of("nobody"));      // rotated to another identity
  EXPECT_EQ(get_code(rt, url), Code::kForbidden);  // the new token is in use
  write_file(token_path, "not-a-valid-token");
  EXPECT_EQ(get_code(rt, url), Code::kUnauthorized);
  write_file(token_path, token_of("elector"));
  EXPECT_EQ(get_code(rt, url), Code::kNotFound);
}

TEST_F(KubeTest, AnExecPluginIsUsedAndRefreshedAfterItsExpiry) {
  std::string count = dir() + "/exec-count";
  std::remove(count.c_str());
  std::string plugin = write_file(dir() + "/exec-plugin.sh",
      "#!/bin/sh\n"
      "echo run >> " + count + "\n"
      "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3;; esac\n"
      "exp=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
      "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
      "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%s\"}}' \"$TOKEN\" \"$exp\"\n", true);
  Runtime::Options o = opts("elector");
  o.kubeconfig = kubeconfig_with("exec",
      "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: " + plugin +
      "\n      env:\n      - name: TOKEN\n        value: " + token_of("elector") + "\n");
  Runtime rt(o);
  std::string url = std::string("k8s://") + kNs + "/" + unique("exec");
  auto runs = [&] {
    std::ifstream f(count);
    return static_cast<int>(std::count(std::istreambuf_iterator<char>(f), {}, '\n'));
  };
  EXPECT_EQ(get_code(rt, url), Code::kNotFound);
  EXPECT_EQ(get_code(rt, url), Code::kNotFound);
  EXPECT_EQ(runs(), 1) << "the token is cached until it expires";
  std::this_thread::sleep_for(3s);  // real time: past expirationTimestamp
  EXPECT_EQ(get_code(rt, url), Code::kNotFound);
  EXPECT_EQ(runs(), 2) << "an expired token runs the plugin again";
}

// ---- faults on the real control plane ----

// No two identities' [started, stopped] intervals overlap.
void expect_no_overlap(Events& ev) {
  std::lock_guard<std::mutex> g(ev.mu);
  std::map<std::string, int64_t> open;
  std::vector<std::tuple<std::string, int64_t, int64_t>> spans;
  for (auto& [e, t] : ev.log) {
    auto sp = e.rfind(' ');
    std::string id = e.substr(0, sp), what = e.substr(sp + 1);
    if (what == "started") open[id] = t;
    if (what == "stopped" && open.count(id)) {
      spans.emplace_back(id, open[id], t);
      open.erase(id);
    }
  }
  for (auto& [id, t] : open) spans.emplace_back(id, t, INT64_MAX);
  for (size_t i = 0; i < spans.size(); ++i) {
    for (size_t j = i + 1; j < spans.size(); ++j) {
      auto& [a, a0, a1] = spans[i];
      auto& [b, b0, b1] = spans[j];
      if (a != b) EXPECT_TRUE(a1 <= b0 || b1 <= a0) << a << " and " << b << " led at the same time";
    }
  }
}

TEST_F(KubeTest, AnAdminEditToAnotherHolderStopsTheLeaderAtOnce) {
  Runtime rt(opts("elector"));
  Events ev;
  std::string name = unique("edited");
  auto a = Elector::create(rt, fast("k8s://" + std::string(kNs) + "/" + name, "a", ev));
  (*a)->start();
  ASSERT_TRUE(ev.wait_for("a started", 20s));
  Admin admin;
  auto got = admin.send("GET", lease_path(name));
  auto obj = nlohmann::json::parse(got.body);
  obj["spec"]["holderIdentity"] = "intruder";
  int64_t edited = mono_ns();
  auto put = admin.send("PUT", lease_path(name), obj.dump());
  ASSERT_EQ(put.status, 200) << put.body;
  ASSERT_TRUE(ev.wait_for("a stopped", 5s));
  double took_ms = static_cast<double>(ev.at("a stopped") - edited) / 1e6;
  EXPECT_LT(took_ms, 1000) << "the leader kept leading " << took_ms << " ms after another holder was written";
  std::printf("admin edit -> leader stopped: %.1f ms\n", took_ms);
  EXPECT_FALSE((*a)->is_leader());
  EXPECT_EQ((*a)->leader(), "intruder");
}

TEST_F(KubeTest, ALeaseDeletedWhileHeldIsRecreatedByItsLeader) {
  Runtime rt(opts("elector"));
  Events ev;
  std::string name = unique("deleted");
  auto [a, b] = lead_and_follow(rt, "k8s://" + std::string(kNs) + "/" + name, ev);
  Admin admin;
  auto del = admin.send("DELETE", lease_path(name));
  ASSERT_EQ(del.status, 200) << del.body;
  std::this_thread::sleep_for(4s);  // real time: longer than the lease
  EXPECT_TRUE(a->is_leader());
  EXPECT_EQ(ev.at("b started"), -1) << "a follower took a lease whose holder was still valid";
  auto now = admin.send("GET", lease_path(name));
  ASSERT_EQ(now.status, 200);
  EXPECT_EQ(nlohmann::json::parse(now.body)["spec"]["holderIdentity"], "a");
  expect_no_overlap(ev);
}

TEST_F(KubeTest, TwentyCandidatesRaceAndExactlyOneWins) {
  Runtime rt(opts("elector"));
  Events ev;
  std::string lock = "k8s://" + std::string(kNs) + "/" + unique("race");
  std::vector<std::unique_ptr<Elector>> es;
  for (int i = 0; i < 20; ++i) {
    auto e = Elector::create(rt, fast(lock, "c" + std::to_string(i), ev));
    ASSERT_TRUE(e.ok());
    es.push_back(std::move(*e));
  }
  for (auto& e : es) e->start();
  std::this_thread::sleep_for(3s);  // real time: several retry periods
  int leaders = 0;
  for (auto& e : es) leaders += e->is_leader();
  EXPECT_EQ(leaders, 1);
  {
    std::lock_guard<std::mutex> g(ev.mu);
    EXPECT_EQ(ev.log.size(), 1u) << "exactly one start, no stop";
  }
  std::string winner = es[0]->leader();
  for (auto& e : es) EXPECT_EQ(e->leader(), winner);
}

TEST_F(KubeTestRestart, ApiserverRestartNeverGivesTwoLeaders) {
  std::string bin = env("LEASEHOLD_TESTENV_BIN");
  ASSERT_FALSE(bin.empty()) << "LEASEHOLD_TESTENV_BIN is not set";
  Runtime rt(opts("elector"));
  Events ev;
  auto [a, b] = lead_and_follow(rt, "k8s://" + std::string(kNs) + "/" + unique("restart"), ev);
  std::string cmd = bin + "/testenv restart --dir " + dir() + " kube-apiserver";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  int64_t ready = mono_ns();
  // After /readyz: a leader within lease_duration + 2 * retry_period.
  bool led = false;
  for (int i = 0; i < 80 && !led; ++i) {
    led = a->is_leader() || b->is_leader();
    if (!led) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(led) << "no leader " << (mono_ns() - ready) / 1e6 << " ms after kube-apiserver came back";
  std::this_thread::sleep_for(2s);  // real time: let the watches resume
  ASSERT_NE(a->is_leader(), b->is_leader());
  // The follower's watch resumed: a release is taken over at once, not by polling.
  Elector& leader = a->is_leader() ? *a : *b;
  Elector& follower = a->is_leader() ? *b : *a;
  std::string fid = a->is_leader() ? "b" : "a";
  int64_t starts_before = 0;
  {
    std::lock_guard<std::mutex> g(ev.mu);
    for (auto& [e, t] : ev.log) starts_before += e == fid + " started";
  }
  int64_t released = mono_ns();
  leader.stop();
  leader.wait();
  bool took = false;
  for (int i = 0; i < 100 && !took; ++i) {
    took = follower.is_leader();
    if (!took) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(took);
  double ms = static_cast<double>(mono_ns() - released) / 1e6;
  EXPECT_LT(ms, 1000) << "after the restart, take-over of a release took " << ms << " ms (watch not resumed?)";
  std::printf("after kube-apiserver restart: release -> take-over %.1f ms (%ld earlier terms of %s)\n", ms,
              static_cast<long>(starts_before), fid.c_str());
  follower.stop();
  follower.wait();
  expect_no_overlap(ev);
}

}  // namespace
}  // namespace leasehold
