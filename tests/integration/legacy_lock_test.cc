// The legacy annotation locks (configmap://, endpoints://), the migration
// pairs (configmapsleases://) and LeaderElection Events against the real
// kube-apiserver of the testenv fixture (LEASEHOLD_TESTENV_DIR), and interop
// with client-go v0.23's ConfigMap lock and MultiLock (LEASEHOLD_LEGACY_PEER,
// testenv/legacypeer).
//
// RBAC: the testenv "elector" Role (namespace leasehold-test) covers Leases
// and Events only, so these tests work in their own namespace, made here by
// the admin, where "elector" gets a Role for ConfigMaps, Endpoints, Leases and
// Events, and "nobody" one for ConfigMaps and Endpoints only (no Events).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
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

constexpr const char* kNs = "leasehold-legacy";
constexpr const char* kAnnotation = "control-plane.alpha.kubernetes.io/leader";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
std::string kubeconfig(const std::string& user) { return env("LEASEHOLD_TESTENV_DIR") + "/kubeconfig-" + user; }

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string unique(const std::string& prefix) {
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(mono_ns() % 1'000'000'000);
}

struct Logs {
  std::mutex mu;
  std::vector<std::string> lines;
  bool contains(const std::string& s) {
    std::lock_guard<std::mutex> g(mu);
    for (auto& l : lines) if (l.find(s) != std::string::npos) return true;
    return false;
  }
  int count(const std::string& s) {
    std::lock_guard<std::mutex> g(mu);
    return static_cast<int>(std::count_if(lines.begin(), lines.end(),
                                          [&](const std::string& l) { return l.find(s) != std::string::npos; }));
  }
};

Runtime::Options opts(const std::string& user, Logs* logs = nullptr) {
  Runtime::Options o;
  o.kubeconfig = kubeconfig(user);
  o.log = [logs](LogLevel l, std::string_view n, std::string_view m) {
    if (logs) {
      std::lock_guard<std::mutex> g(logs->mu);
      logs->lines.emplace_back(m);
    }
    if (l >= LogLevel::kWarning) std::fprintf(stderr, "  [%.*s] %.*s\n", int(n.size()), n.data(), int(m.size()), m.data());
  };
  return o;
}

Result<Versioned> call(std::function<void(Completion<Versioned>)> op) {
  std::promise<Result<Versioned>> p;
  auto f = p.get_future();
  op([&p](Result<Versioned> r) { p.set_value(std::move(r)); });
  if (f.wait_for(20s) != std::future_status::ready) return Error::timeout("test: no completion in 20s");
  return f.get();
}

// Direct API calls as the admin (setup and inspection only).
class Admin {
 public:
  Admin() {
    auto cfg = kube::load_cluster_config({kubeconfig("admin"), ""});
    if (cfg.ok()) {
      auto c = kube::Client::create(*cfg);
      if (c.ok()) client_ = *c;
    }
  }
  bool ok() const { return client_ != nullptr; }
  kube::HttpResponse req(const std::string& method, const std::string& path, const std::string& body = "") {
    std::promise<Result<kube::HttpResponse>> p;
    client_->request(method, path, body, 10s, [&](Result<kube::HttpResponse> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    return r.ok() ? *r : kube::HttpResponse{0, r.error().message(), {}};
  }
  json get(const std::string& path) {
    auto r = req("GET", path);
    return r.status == 200 ? json::parse(r.body, nullptr, false) : json();
  }

 private:
  std::shared_ptr<kube::Client> client_;
};

void ensure(Admin& a, const std::string& path, const json& obj) {
  auto r = a.req("POST", path, obj.dump());
  ASSERT_TRUE(r.status == 201 || r.status == 409) << path << ": HTTP " << r.status << " " << r.body;
}

// The namespace and Roles described at the top; idempotent.
void setup_rbac(Admin& a) {
  ensure(a, "/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}});
  std::string rbac = std::string("/apis/rbac.authorization.k8s.io/v1/namespaces/") + kNs;
  json verbs = {"get", "list", "watch", "create", "update"};
  json legacy_rule = {{"apiGroups", {""}}, {"resources", {"configmaps", "endpoints"}}, {"verbs", verbs}};
  json lease_rule = {{"apiGroups", {"coordination.k8s.io"}}, {"resources", {"leases"}}, {"verbs", verbs}};
  json events_rule = {{"apiGroups", {""}}, {"resources", {"events"}}, {"verbs", {"create"}}};
  auto role = [&](const std::string& name, json rules, const std::string& user) {
    ensure(a, rbac + "/roles",
           {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "Role"},
            {"metadata", {{"name", name}, {"namespace", kNs}}}, {"rules", rules}});
    ensure(a, rbac + "/rolebindings",
           {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"},
            {"metadata", {{"name", name}, {"namespace", kNs}}},
            {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
            {"subjects", {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", user}}}}});
  };
  role("legacy-elector", {legacy_rule, lease_rule, events_rule}, "elector");
  role("legacy-no-events", {legacy_rule}, "nobody");
  // RBAC takes effect through the authorizer's informer: wait until it does.
  for (int i = 0; i < 100; ++i) {
    Runtime rt(opts("nobody"));
    auto l = rt.open_lock(std::string("configmap://") + kNs + "/rbac-probe");
    auto r = call([&](auto cb) { (*l)->get(cb); });
    if (r.ok() || r.error().is(Code::kNotFound)) return;
    std::this_thread::sleep_for(100ms);
  }
  FAIL() << "RBAC for the legacy tests never took effect";
}

class LegacyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("LEASEHOLD_TESTENV_DIR").empty()) GTEST_FAIL() << "LEASEHOLD_TESTENV_DIR is not set (run through ctest)";
    ASSERT_TRUE(admin_.ok());
    setup_rbac(admin_);
  }
  Admin admin_;
};

// ---- who led when ----

struct Timeline {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::tuple<std::string, bool, int64_t>> log;  // id, started?, mono ns
  void add(const std::string& id, bool started) {
    std::lock_guard<std::mutex> g(mu);
    log.emplace_back(id, started, mono_ns());
    cv.notify_all();
  }
  bool wait_started(const std::string& id, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, limit, [&] {
      for (auto& [i, s, t] : log) if (i == id && s) return true;
      return false;
    });
  }
  bool wait_any_started(const std::vector<std::string>& ids, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, limit, [&] {
      for (auto& [i, s, t] : log) {
        if (s && std::find(ids.begin(), ids.end(), i) != ids.end()) return true;
      }
      return false;
    });
  }
  int64_t at(const std::string& id, bool started) {
    std::lock_guard<std::mutex> g(mu);
    for (auto& [i, s, t] : log) if (i == id && s == started) return t;
    return -1;
  }
  // Replays the log in time order: never two leaders at once.
  std::string overlaps() {
    std::lock_guard<std::mutex> g(mu);
    auto sorted = log;
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return std::get<2>(a) < std::get<2>(b); });
    std::map<std::string, bool> leading;
    for (auto& [id, started, t] : sorted) {
      leading[id] = started;
      std::string who;
      for (auto& [i, l] : leading) if (l) who += i + " ";
      if (std::count_if(leading.begin(), leading.end(), [](auto& p) { return p.second; }) > 1) {
        return "two leaders at once: " + who;
      }
    }
    return "";
  }
};

ElectorConfig fast(const std::string& lock, const std::string& id, Timeline& tl) {
  ElectorConfig c;
  c.lock = lock;
  c.identity = id;
  c.lease_duration = 3s;
  c.renew_deadline = 2s;
  c.retry_period = 500ms;
  c.callbacks.on_started_leading = [&tl, id](const Term&, std::stop_token stop) {
    tl.add(id, true);
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, stop, [] { return false; });
  };
  c.callbacks.on_stopped_leading = [&tl, id](const Term&) { tl.add(id, false); };
  return c;
}

// client-go v0.23 (testenv/legacypeer) on one lock type.
struct LegacyPeer {
  pid_t pid = -1;
  FILE* out = nullptr;
  std::thread reader;
  Timeline& tl;
  std::string id;

  LegacyPeer(Timeline& t, const std::string& type, const std::string& name, const std::string& ident)
      : tl(t), id(ident) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    std::string bin = env("LEASEHOLD_LEGACY_PEER"), kc = kubeconfig("elector");
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::execl(bin.c_str(), bin.c_str(), "--kubeconfig", kc.c_str(), "--lock-type", type.c_str(), "--namespace",
              kNs, "--name", name.c_str(), "--identity", ident.c_str(), "--lease-duration=3s",
              "--renew-deadline=2s", "--retry-period=500ms", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    out = ::fdopen(fds[0], "r");
    reader = std::thread([this] {
      char line[4096];
      while (std::fgets(line, sizeof line, out)) {
        auto j = json::parse(line, nullptr, false);
        if (j.is_discarded()) continue;
        std::string event = j.value("event", "");
        if (event == "started") tl.add(id, true);
        if (event == "stopped") tl.add(id, false);
      }
    });
  }
  void signal(int sig) { ::kill(pid, sig); }
  // SIGKILL: a dead process leads no more, so its term ends when it is reaped
  // (it never prints "stopped"); its lease stays until it expires.
  void crash() {
    ::kill(pid, SIGKILL);
    wait_exit();
    tl.add(id, false);
  }
  void wait_exit() {
    int st;
    ::waitpid(pid, &st, 0);
    pid = -1;
  }
  ~LegacyPeer() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int st;
      ::waitpid(pid, &st, 0);
    }
    reader.join();
    std::fclose(out);
  }
};

std::unique_ptr<Elector> start(Runtime& rt, ElectorConfig c) {
  auto e = Elector::create(rt, std::move(c));
  EXPECT_TRUE(e.ok()) << e.error().message();
  if (!e.ok()) return nullptr;
  (*e)->start();
  return std::move(*e);
}

void wait_sees(Elector& e, const std::string& leader) {
  for (int i = 0; i < 500 && e.leader() != leader; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(e.leader(), leader);
}

// ---- the lock itself ----

TEST_F(LegacyTest, EveryVerbPreservesWhatOthersWroteAndCasOnAStaleVersion) {
  for (std::string kind : {"configmap", "endpoints"}) {
    SCOPED_TRACE(kind);
    std::string name = unique(kind + "-verbs");
    std::string coll = std::string("/api/v1/namespaces/") + kNs + (kind == "configmap" ? "/configmaps" : "/endpoints");
    json obj = {{"apiVersion", "v1"},
                {"kind", kind == "configmap" ? "ConfigMap" : "Endpoints"},
                {"metadata", {{"name", name}, {"labels", {{"team", "x"}}}, {"annotations", {{"other", "keep"}}}}}};
    if (kind == "configmap") obj["data"] = {{"k", "v"}};
    else obj["subsets"] = {{{"addresses", {{{"ip", "10.1.2.3"}}}}, {"ports", {{{"port", 8080}}}}}};
    ASSERT_EQ(admin_.req("POST", coll, obj.dump()).status, 201);

    Runtime rt(opts("elector"));
    auto lock = rt.open_lock(kind + "://" + kNs + "/" + name);
    ASSERT_TRUE(lock.ok()) << lock.error().message();
    auto got = call([&](auto cb) { (*lock)->get(cb); });
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_TRUE(got->record.is_free()) << "no annotation yet: a free record, as client-go reads it";
    LeaseRecord rec;
    rec.holder_identity = "a";
    rec.lease_duration_seconds = 15;
    rec.acquire_time = rec.renew_time = std::chrono::system_clock::now();
    rec.lease_transitions = 1;
    auto up = call([&](auto cb) { (*lock)->update(got->version, rec, cb); });
    ASSERT_TRUE(up.ok()) << up.error().message();
    auto stale = call([&](auto cb) { (*lock)->update(got->version, rec, cb); });
    ASSERT_FALSE(stale.ok());
    EXPECT_EQ(stale.error().code(), Code::kConflict) << stale.error().message();

    json now = admin_.get(coll + "/" + name);
    EXPECT_EQ(now["metadata"]["labels"]["team"], "x");
    EXPECT_EQ(now["metadata"]["annotations"]["other"], "keep");
    if (kind == "configmap") EXPECT_EQ(now["data"]["k"], "v");
    else EXPECT_EQ(now["subsets"][0]["addresses"][0]["ip"], "10.1.2.3");
    json record = json::parse(now["metadata"]["annotations"][kAnnotation].get<std::string>());
    EXPECT_EQ(record["holderIdentity"], "a");
    EXPECT_EQ(record["leaderTransitions"], 1);
    EXPECT_EQ(record["leaseDurationSeconds"], 15);
    EXPECT_EQ(record["renewTime"].get<std::string>().size(), 20u) << "metav1.Time: whole seconds";

    // Missing object: NotFound, then create.
    auto other = rt.open_lock(kind + "://" + kNs + "/" + name + "-new");
    auto missing = call([&](auto cb) { (*other)->get(cb); });
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), Code::kNotFound) << missing.error().message();
    auto created = call([&](auto cb) { (*other)->create(rec, cb); });
    ASSERT_TRUE(created.ok()) << created.error().message();
    auto again = call([&](auto cb) { (*other)->create(rec, cb); });
    EXPECT_EQ(again.error().code(), Code::kAlreadyExists) << again.error().message();
  }
}

TEST_F(LegacyTest, ForbiddenNamesTheMissingRule) {
  Runtime rt(opts("nobody"));
  auto lock = rt.open_lock("endpoints://leasehold-test/anything");  // nobody has nothing there
  ASSERT_TRUE(lock.ok());
  auto r = call([&](auto cb) { (*lock)->get(cb); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kForbidden);
  EXPECT_NE(r.error().message().find("get endpoints leasehold-test/anything"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("grant verb \"get\" on resource \"endpoints\" in API group \"\" in namespace "
                                     "\"leasehold-test\""),
            std::string::npos)
      << r.error().message();
}

TEST_F(LegacyTest, AcquireRenewReleaseAndTakeOverOnBothKinds) {
  for (std::string kind : {"configmap", "endpoints"}) {
    SCOPED_TRACE(kind);
    Runtime rt(opts("elector"));
    Timeline tl;
    std::string lock = kind + "://" + kNs + "/" + unique(kind);
    auto a = start(rt, fast(lock, "a", tl));
    ASSERT_TRUE(tl.wait_started("a", 20s));
    auto b = start(rt, fast(lock, "b", tl));
    wait_sees(*b, "a");
    auto renewals = a->status().renewals;
    std::this_thread::sleep_for(1500ms);  // real time: a renews every 500 ms
    EXPECT_GE(a->status().renewals, renewals + 2);
    EXPECT_TRUE(a->is_leader());
    EXPECT_FALSE(b->is_leader());
    a->stop();
    ASSERT_TRUE(tl.wait_started("b", 10s));
    int64_t gap = tl.at("b", true) - tl.at("a", false);
    EXPECT_GT(gap, 0);
    EXPECT_LT(gap, 1'000'000'000) << "take-over after release took " << gap / 1e6 << " ms (watch)";
    std::printf("%s: release -> take-over %.1f ms\n", kind.c_str(), static_cast<double>(gap) / 1e6);
    a->wait();
    EXPECT_EQ(tl.overlaps(), "");
    b->stop();
    b->wait();
  }
}

// Take-overs through the elector (at expiry after a renewal seen only on the
// watch, handoff, release) keep the ConfigMap's data, labels, other
// annotations, ownerReferences and finalizers.
TEST_F(LegacyTest, EveryTakeOverKeepsWhatOthersWroteOnTheConfigMap) {
  std::string name = unique("cm-meta"), cms = std::string("/api/v1/namespaces/") + kNs + "/configmaps";
  auto owner = admin_.req("POST", cms, json{{"metadata", {{"name", name + "-owner"}}}}.dump());
  ASSERT_EQ(owner.status, 201) << owner.body;
  json ghost = {{"holderIdentity", "ghost"}, {"leaseDurationSeconds", 2}, {"acquireTime", "2026-01-01T00:00:00Z"},
                {"renewTime", "2026-01-01T00:00:00Z"}, {"leaderTransitions", 0}};
  json cm = {{"metadata",
              {{"name", name},
               {"labels", {{"team", "x"}}},
               {"annotations", {{"other", "keep"}, {kAnnotation, ghost.dump()}}},
               {"ownerReferences", json::array({{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", name + "-owner"},
                                                 {"uid", json::parse(owner.body)["metadata"]["uid"]}}})},
               {"finalizers", json::array({"example.com/keep"})}}},
             {"data", {{"config", "keep too"}}}};
  ASSERT_EQ(admin_.req("POST", cms, cm.dump()).status, 201);
  auto kept = [&] {  // everything but the leader record and the server's bookkeeping
    json o = admin_.get(cms + "/" + name);
    o["metadata"].erase("resourceVersion");
    o["metadata"].erase("managedFields");
    o["metadata"]["annotations"].erase(kAnnotation);
    return o;
  };
  const json before = kept();
  Runtime rt(opts("elector"));
  Timeline tl;
  std::string lock = std::string("configmap://") + kNs + "/" + name;
  auto a = start(rt, fast(lock, "a", tl));
  auto b = start(rt, fast(lock, "b", tl));
  wait_sees(*a, "ghost");
  wait_sees(*b, "ghost");
  json renewed = admin_.get(cms + "/" + name);
  ghost["leaseDurationSeconds"] = 3;
  renewed["metadata"]["annotations"][kAnnotation] = ghost.dump();
  ASSERT_EQ(admin_.req("PUT", cms + "/" + name, renewed.dump()).status, 200);
  ASSERT_TRUE(tl.wait_any_started({"a", "b"}, 15s));
  EXPECT_EQ(kept(), before) << "expiry after a watched renewal";
  Elector* first = a->is_leader() ? a.get() : b.get();
  Elector* second = first == a.get() ? b.get() : a.get();
  std::string second_id = first == a.get() ? "b" : "a";
  ASSERT_TRUE(first->handoff(second_id).ok());
  ASSERT_TRUE(tl.wait_started(second_id, 10s));
  for (int i = 0; i < 250 && !second->is_leader(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(kept(), before) << "handoff";
  second->resign();
  for (int i = 0; i < 500 && !first->is_leader(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(first->is_leader());
  EXPECT_EQ(kept(), before) << "release";
  EXPECT_EQ(tl.overlaps(), "");
  a->stop();
  b->stop();
  a->wait();
  b->wait();
  admin_.req("PATCH", cms + "/" + name, R"({"metadata":{"finalizers":null}})");
  admin_.req("DELETE", cms + "/" + name);
  admin_.req("DELETE", cms + "/" + name + "-owner");
}

// ---- interop with client-go v0.23 ----

TEST_F(LegacyTest, InteropClientGoConfigMapLockBothDirections) {
  if (env("LEASEHOLD_LEGACY_PEER").empty()) GTEST_FAIL() << "LEASEHOLD_LEGACY_PEER is not set";
  Runtime rt(opts("elector"));
  Timeline tl;
  std::string name = unique("interop-cm");
  std::string lock = std::string("configmap://") + kNs + "/" + name;
  LegacyPeer go(tl, "configmaps", name, "go-1");
  ASSERT_TRUE(tl.wait_started("go-1", 20s));
  auto lh = start(rt, fast(lock, "lh-1", tl));
  wait_sees(*lh, "go-1");
  EXPECT_FALSE(lh->is_leader());
  go.signal(SIGTERM);  // client-go releases on cancel
  ASSERT_TRUE(tl.wait_started("lh-1", 10s));
  std::printf("client-go (configmaps) release -> leasehold leads: %.1f ms\n",
              static_cast<double>(tl.at("lh-1", true) - tl.at("go-1", false)) / 1e6);
  go.wait_exit();

  LegacyPeer go2(tl, "configmaps", name, "go-2");
  std::this_thread::sleep_for(2s);  // real time: several client-go retry periods
  EXPECT_EQ(tl.at("go-2", true), -1) << "client-go took the ConfigMap lock while leasehold held it";
  lh->stop();
  lh->wait();
  ASSERT_TRUE(tl.wait_started("go-2", 10s));
  std::printf("leasehold release -> client-go (configmaps) leads: %.1f ms\n",
              static_cast<double>(tl.at("go-2", true) - tl.at("lh-1", false)) / 1e6);
  // SIGKILL: leasehold waits the lease out.
  auto lh2 = start(rt, fast(lock, "lh-2", tl));
  wait_sees(*lh2, "go-2");
  int64_t killed = mono_ns();
  go2.crash();
  ASSERT_TRUE(tl.wait_started("lh-2", 15s));
  double after = static_cast<double>(tl.at("lh-2", true) - killed) / 1e9;
  EXPECT_GT(after, 1.0) << "took over before client-go's lease could have expired";
  lh2->stop();
  lh2->wait();
  EXPECT_EQ(tl.overlaps(), "");
}

TEST_F(LegacyTest, InteropStagedMigrationNeverTwoLeaders) {
  if (env("LEASEHOLD_LEGACY_PEER").empty()) GTEST_FAIL() << "LEASEHOLD_LEGACY_PEER is not set";
  // Stage 1: an old client-go replica on configmaps and leasehold on the pair
  // (configmapsleases); the old one crashes and the pair takes over after
  // expiry. Stage 2: leasehold on the pair, client-go on the pair (MultiLock)
  // and leasehold on the Lease alone. Stage 3: the pair replicas leave; the
  // Lease replica leads. Never two leaders.
  Runtime rt(opts("elector"));
  Timeline tl;
  std::string name = unique("migrate");
  std::string pair = std::string("configmapsleases://") + kNs + "/" + name;
  std::string lease = std::string("k8s://") + kNs + "/" + name;
  auto old = std::make_unique<LegacyPeer>(tl, "configmaps", name, "old");
  ASSERT_TRUE(tl.wait_started("old", 20s));
  auto mig = start(rt, fast(pair, "mig", tl));
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(mig->is_leader()) << "the pair was taken while the old replica held the ConfigMap";
  old->crash();  // the old replica crashes: the pair waits out its lease
  ASSERT_TRUE(tl.wait_started("mig", 15s));
  old.reset();
  // Stage 2: a client-go replica on the pair (MultiLock) and a new replica on
  // the Lease alone join; neither may lead while leasehold holds the pair.
  auto mig_go = std::make_unique<LegacyPeer>(tl, "configmapsleases", name, "mig-go");
  auto neu = start(rt, fast(lease, "new", tl));
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(neu->is_leader()) << "the Lease was taken while a migrating replica held the pair";
  EXPECT_EQ(tl.at("mig-go", true), -1) << "client-go's MultiLock took the pair while leasehold held it";
  // The migrating replicas go away one by one (graceful, then a crash).
  mig->stop();
  mig->wait();
  mig_go->crash();
  ASSERT_TRUE(tl.wait_started("new", 15s));
  mig_go.reset();
  EXPECT_TRUE(neu->is_leader());
  neu->stop();
  neu->wait();
  EXPECT_EQ(tl.overlaps(), "");
  std::lock_guard<std::mutex> g(tl.mu);
  for (auto& [id, s, t] : tl.log) std::printf("  %s %s at %.3f s\n", id.c_str(), s ? "started" : "stopped", t / 1e9);
}

// ---- Events ----

TEST_F(LegacyTest, LeaderElectionEventsAppearOnTheLockObject) {
  struct Case {
    std::string scheme, kind;
    bool uid;  // the Lease lock's Events carry no uid (see event_recorder.h)
  };
  for (const Case& c : {Case{"configmap", "ConfigMap", true}, Case{"endpoints", "Endpoints", true},
                        Case{"k8s", "Lease", false}}) {
    SCOPED_TRACE(c.scheme);
    Runtime rt(opts("elector"));
    Timeline tl;
    std::string name = unique("events-" + c.scheme);
    auto a = start(rt, fast(c.scheme + "://" + kNs + "/" + name, "ev-a", tl));
    ASSERT_TRUE(tl.wait_started("ev-a", 20s));
    a->stop();
    a->wait();
    json became, stopped;
    for (int i = 0; i < 100 && (became.is_null() || stopped.is_null()); ++i) {
      json list = admin_.get(std::string("/api/v1/namespaces/") + kNs +
                             "/events?fieldSelector=involvedObject.name%3D" + name);
      for (auto& e : list.value("items", json::array())) {
        if (e.value("message", "") == "ev-a became leader") became = e;
        if (e.value("message", "") == "ev-a stopped leading") stopped = e;
      }
      if (became.is_null() || stopped.is_null()) std::this_thread::sleep_for(100ms);
    }
    ASSERT_FALSE(became.is_null()) << "no \"ev-a became leader\" Event";
    ASSERT_FALSE(stopped.is_null()) << "no \"ev-a stopped leading\" Event";
    for (auto& e : {became, stopped}) {
      EXPECT_EQ(e["reason"], "LeaderElection");
      EXPECT_EQ(e["type"], "Normal");
      EXPECT_EQ(e["involvedObject"]["kind"], c.kind);
      EXPECT_EQ(e["involvedObject"]["namespace"], kNs);
      EXPECT_EQ(e["involvedObject"]["name"], name);
      if (c.uid) EXPECT_FALSE(e["involvedObject"].value("uid", "").empty());
      EXPECT_EQ(e["source"]["component"], "leasehold");
    }
  }
}

TEST_F(LegacyTest, EventsForbiddenDoNotDisturbTheElection) {
  Logs logs;
  Runtime rt(opts("nobody", &logs));  // configmaps here, but no "create events"
  Timeline tl;
  std::string lock = std::string("configmap://") + kNs + "/" + unique("noevents");
  auto a = start(rt, fast(lock, "x", tl));
  ASSERT_TRUE(tl.wait_started("x", 20s));
  auto b = start(rt, fast(lock, "y", tl));
  wait_sees(*b, "x");
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(a->is_leader());
  EXPECT_EQ(a->status().failed_requests, 0u) << "event failures must not count as lock failures";
  a->stop();
  ASSERT_TRUE(tl.wait_started("y", 10s));
  a->wait();
  b->stop();
  b->wait();
  for (int i = 0; i < 50 && !logs.contains("Forbidden"); ++i) std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(logs.contains("grant verb \"create\" on resource \"events\" in API group \"\" in namespace \"" +
                            std::string(kNs) + "\""));
  // Each runtime's lock handle logs its 403 once, though 4 Events were refused.
  EXPECT_LE(logs.count("Forbidden"), 2);
  EXPECT_EQ(tl.overlaps(), "");
}

}  // namespace
}  // namespace leasehold
