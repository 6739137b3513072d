// The Kubernetes client's transport and config against the real
// kube-apiserver of the testenv fixture (LEASEHOLD_TESTENV_DIR): proxy-url
// through a loopback proxy that reports its tunnels (LEASEHOLD_TESTENV_BIN/
// connectproxy), tls-server-name, insecure-skip-tls-verify, exec plugins that
// return a client certificate, User-Agent (read back from the audit log),
// per-request timeouts, HTTP/2 and connection reuse, the request budget and
// its priorities, and secrets kept out of errors and logs.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "kube/config.h"
#include "leasehold/elector.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;
using kube::Priority;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
std::string dir() { return env("LEASEHOLD_TESTENV_DIR"); }
std::string bin() { return env("LEASEHOLD_TESTENV_BIN"); }
const char* kNs = "leasehold-test";

std::string unique(const std::string& prefix) {
  static int n = 0;
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1'000'000);
}

std::string lease_path(const std::string& name) {
  return std::string("/apis/coordination.k8s.io/v1/namespaces/") + kNs + "/leases/" + name;
}

std::string write_file(const std::string& path, const std::string& text, bool exec = false) {
  std::ofstream(path) << text;
  if (exec) ::chmod(path.c_str(), 0755);
  return path;
}

kube::ClusterConfig base(const std::string& user = "admin") {
  auto c = kube::load_cluster_config({dir() + "/kubeconfig-" + user, ""});
  EXPECT_TRUE(c.ok()) << c.error().message();
  return c.ok() ? *c : kube::ClusterConfig{};
}

// "127.0.0.1:PORT" of the test server.
std::string server_authority() {
  std::string s = base().server;
  return s.substr(s.find("://") + 3);
}
std::string server_port() {
  std::string a = server_authority();
  return a.substr(a.rfind(':') + 1);
}

// Writes a kubeconfig for the test server: `server` (empty: the real one),
// extra cluster lines, the user block. The CA is included unless `with_ca` is false.
std::string kubeconfig_with(const std::string& tag, const std::string& server, const std::string& cluster_extra,
                            const std::string& user_yaml, bool with_ca = true) {
  auto b = base();
  std::string ca = write_file(dir() + "/" + tag + "-ca.crt", b.ca_pem);
  return write_file(dir() + "/kubeconfig-" + tag,
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: " +
                        (server.empty() ? b.server : server) + "\n" +
                        (with_ca ? "    certificate-authority: " + ca + "\n" : "") + cluster_extra +
                        "contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n"
                        "users:\n- name: u\n  user:\n" + user_yaml);
}

std::string token_yaml(const std::string& user = "admin") { return "    token: " + base(user).token + "\n"; }

std::shared_ptr<kube::Client> client_for(const std::string& kubeconfig_path, kube::ClientOptions o = {}) {
  auto cfg = kube::load_cluster_config({kubeconfig_path, ""});
  EXPECT_TRUE(cfg.ok()) << cfg.error().message();
  if (!cfg.ok()) return nullptr;
  auto c = kube::Client::create(*cfg, o);
  EXPECT_TRUE(c.ok()) << c.error().message();
  return c.ok() ? *c : nullptr;
}

Result<kube::HttpResponse> send(kube::Client& c, const std::string& method, const std::string& path,
                                Duration timeout = 10s, Priority p = Priority::kLease) {
  std::promise<Result<kube::HttpResponse>> pr;
  auto f = pr.get_future();
  c.request(method, path, "", timeout, [&pr](Result<kube::HttpResponse> r) { pr.set_value(std::move(r)); }, p);
  if (f.wait_for(30s) != std::future_status::ready) return Error::timeout("test: no completion in 30s");
  return f.get();
}

// A GET of a Lease that does not exist: 404 proves we reached the server,
// authenticated and authorized.
void expect_not_found(kube::Client& c) {
  auto r = send(c, "GET", lease_path(unique("absent")));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 404) << r->body;
}

// testenv/cmd/connectproxy, started for one test.
struct Proxy {
  pid_t pid = -1;
  int in = -1;
  FILE* out = nullptr;
  std::thread reader;
  std::mutex mu;
  std::condition_variable cv;
  std::string addr;
  std::vector<nlohmann::json> tunnels, refused;

  explicit Proxy(const std::string& auth = "") {
    int ip[2], op[2];
    EXPECT_EQ(::pipe(ip), 0);
    EXPECT_EQ(::pipe(op), 0);
    std::string exe = bin() + "/connectproxy";
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(ip[0], 0);
      ::dup2(op[1], 1);
      ::close(ip[1]);
      ::close(op[0]);
      if (auth.empty()) {
        ::execl(exe.c_str(), exe.c_str(), static_cast<char*>(nullptr));
      } else {
        ::execl(exe.c_str(), exe.c_str(), "--auth", auth.c_str(), static_cast<char*>(nullptr));
      }
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
        if (j.contains("listening")) addr = j["listening"];
        if (j.contains("tunnel")) tunnels.push_back(j);
        if (j.contains("refused")) refused.push_back(j);
        cv.notify_all();
      }
    });
    std::unique_lock<std::mutex> lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, 10s, [&] { return !addr.empty(); })) << "connectproxy did not start (" << exe << ")";
  }
  size_t tunnel_count() {
    std::lock_guard<std::mutex> g(mu);
    return tunnels.size();
  }
  ~Proxy() {
    ::close(in);  // it exits when its stdin closes
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
    reader.join();
    std::fclose(out);
  }
};

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (dir().empty()) GTEST_FAIL() << "LEASEHOLD_TESTENV_DIR is not set (run through ctest)";
    if (bin().empty()) GTEST_FAIL() << "LEASEHOLD_TESTENV_BIN is not set (run through ctest)";
  }
};

// ---- proxy-url ----

TEST_F(KubeClientTest, ProxyUrlHttpConnectCarriesEveryRequest) {
  Proxy proxy;
  auto c = client_for(kubeconfig_with("proxy-http", "", "    proxy-url: http://" + proxy.addr + "\n", token_yaml()));
  ASSERT_TRUE(c);
  for (int i = 0; i < 3; ++i) expect_not_found(*c);
  std::lock_guard<std::mutex> g(proxy.mu);
  ASSERT_EQ(proxy.tunnels.size(), 1u) << "three requests, one reused tunnel";
  EXPECT_EQ(proxy.tunnels[0]["proto"], "connect");
  EXPECT_EQ(proxy.tunnels[0]["target"], server_authority());
}

TEST_F(KubeClientTest, ProxyUrlThroughTheRuntimeAndAnElector) {
  Proxy proxy;
  Runtime::Options o;
  o.kubeconfig = kubeconfig_with("proxy-rt", "", "    proxy-url: http://" + proxy.addr + "\n", token_yaml("elector"));
  Runtime rt(o);
  auto lock = rt.open_lock(std::string("k8s://") + kNs + "/" + unique("proxied"));
  ASSERT_TRUE(lock.ok()) << lock.error().message();
  std::promise<Result<Versioned>> p;
  (*lock)->get([&](Result<Versioned> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kNotFound) << r.error().message();
  EXPECT_GE(proxy.tunnel_count(), 1u);
}

TEST_F(KubeClientTest, ProxyUrlWithCredentials) {
  Proxy proxy("leasehold:pr0xy-pass");
  auto good = client_for(
      kubeconfig_with("proxy-auth", "", "    proxy-url: http://leasehold:pr0xy-pass@" + proxy.addr + "\n", token_yaml()));
  ASSERT_TRUE(good);
  expect_not_found(*good);
  EXPECT_EQ(proxy.tunnel_count(), 1u);
  auto bad = client_for(
      kubeconfig_with("proxy-badauth", "", "    proxy-url: http://leasehold:wr0ng-pass@" + proxy.addr + "\n", token_yaml()));
  ASSERT_TRUE(bad);
  auto r = send(*bad, "GET", lease_path("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("407"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("via proxy"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find("wr0ng-pass"), std::string::npos) << r.error().message();
  EXPECT_EQ(proxy.tunnel_count(), 1u);
}

TEST_F(KubeClientTest, ProxyUrlSocks5) {
  Proxy proxy;
  auto c = client_for(kubeconfig_with("proxy-socks", "", "    proxy-url: socks5://" + proxy.addr + "\n", token_yaml()));
  ASSERT_TRUE(c);
  expect_not_found(*c);
  std::lock_guard<std::mutex> g(proxy.mu);
  ASSERT_EQ(proxy.tunnels.size(), 1u);
  EXPECT_EQ(proxy.tunnels[0]["proto"], "socks5");
  EXPECT_EQ(proxy.tunnels[0]["target"], server_authority());
}

// ---- TLS: tls-server-name, insecure-skip-tls-verify ----

// The serving certificate names localhost, kubernetes, kubernetes.default,
// kubernetes.default.svc and 127.0.0.1 (testenv/cmd/testenv). curl resolves
// any *.localhost name to loopback itself, so this URL reaches the server by
// a name its certificate does not carry.
std::string unlisted_server() { return "https://leasehold-client-test.localhost:" + server_port(); }

TEST_F(KubeClientTest, TlsServerNameVerifiesAgainstThatName) {
  auto plain = client_for(kubeconfig_with("tsn-none", unlisted_server(), "", token_yaml()));
  ASSERT_TRUE(plain);
  auto refused = send(*plain, "GET", lease_path("x"));
  ASSERT_FALSE(refused.ok()) << "the address is not in the certificate: must be refused";
  // A certificate error, not a credentials one: never labelled Unauthorized.
  EXPECT_EQ(refused.error().code(), Code::kUnavailable) << refused.error().message();
  EXPECT_NE(refused.error().message().find("TLS verification failed"), std::string::npos) << refused.error().message();

  auto named = client_for(
      kubeconfig_with("tsn-good", unlisted_server(), "    tls-server-name: kubernetes.default.svc\n", token_yaml()));
  ASSERT_TRUE(named);
  expect_not_found(*named);

  auto wrong = client_for(kubeconfig_with("tsn-wrong", unlisted_server(), "    tls-server-name: wrong.example\n", token_yaml()));
  ASSERT_TRUE(wrong);
  auto r = send(*wrong, "GET", lease_path("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable) << r.error().message();
  EXPECT_NE(r.error().message().find("tls-server-name wrong.example"), std::string::npos) << r.error().message();

  // A name in the certificate with the real address works too (and the
  // connection really goes to the URL's host: nothing resolves "kubernetes").
  auto ip = client_for(kubeconfig_with("tsn-ip", "", "    tls-server-name: kubernetes\n", token_yaml()));
  ASSERT_TRUE(ip);
  expect_not_found(*ip);
}

TEST_F(KubeClientTest, TlsServerNameThroughAProxyTunnelsToTheUrlHost) {
  Proxy proxy;
  auto c = client_for(kubeconfig_with("tsn-proxy", "", "    tls-server-name: kubernetes.default\n    proxy-url: http://" +
                                                           proxy.addr + "\n", token_yaml()));
  ASSERT_TRUE(c);
  expect_not_found(*c);
  std::lock_guard<std::mutex> g(proxy.mu);
  ASSERT_EQ(proxy.tunnels.size(), 1u);
  EXPECT_EQ(proxy.tunnels[0]["target"], server_authority());
}

TEST_F(KubeClientTest, InsecureSkipTlsVerifyHonouredOnlyWhenTrue) {
  auto verify = client_for(kubeconfig_with("insecure-false", "", "    insecure-skip-tls-verify: false\n", token_yaml(), false));
  ASSERT_TRUE(verify);
  auto r = send(*verify, "GET", lease_path("x"));
  ASSERT_FALSE(r.ok()) << "no CA and verification on: the test CA is unknown";
  EXPECT_NE(r.error().message().find("TLS"), std::string::npos) << r.error().message();
  auto unset = client_for(kubeconfig_with("insecure-unset", "", "", token_yaml(), false));
  ASSERT_TRUE(unset);
  EXPECT_FALSE(send(*unset, "GET", lease_path("x")).ok());
  auto skip = client_for(kubeconfig_with("insecure-true", "", "    insecure-skip-tls-verify: true\n", token_yaml(), false));
  ASSERT_TRUE(skip);
  expect_not_found(*skip);
}

// ---- exec plugin with a client certificate ----

std::string cert_plugin(const std::string& tag, const std::string& key_file, const std::string& count) {
  // Prints the cert-admin certificate and key as an ExecCredential (PEM, JSON-escaped).
  std::string pki = dir() + "/pki";
  return write_file(dir() + "/" + tag + ".sh",
                    "#!/bin/sh\n"
                    "echo run >> " + count + "\n"
                    "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3;; esac\n"
                    "esc() { awk '{printf \"%s\\\\n\", $0}' \"$1\"; }\n"
                    "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
                    "\"status\":{\"clientCertificateData\":\"%s\",\"clientKeyData\":\"%s\"}}' "
                    "\"$(esc " + pki + "/client-admin.crt)\" \"$(esc " + key_file + ")\"\n",
                    true);
}

int lines_of(const std::string& path) {
  std::ifstream f(path);
  return static_cast<int>(std::count(std::istreambuf_iterator<char>(f), {}, '\n'));
}

TEST_F(KubeClientTest, ExecPluginClientCertificateAuthenticates) {
  std::string count = dir() + "/exec-cert-count";
  std::remove(count.c_str());
  std::string plugin = cert_plugin("exec-cert", dir() + "/pki/client-admin.key", count);
  auto c = client_for(kubeconfig_with("exec-cert", "", "",
                                      "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: " +
                                          plugin + "\n"));
  ASSERT_TRUE(c);
  expect_not_found(*c);  // anonymous would get 403: the certificate authenticated us
  expect_not_found(*c);
  EXPECT_EQ(lines_of(count), 1) << "no expirationTimestamp: the certificate is cached";
  // Who the server saw: ask it.
  std::promise<Result<kube::HttpResponse>> p;
  c->request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
             R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})", 10s,
             [&](Result<kube::HttpResponse> r) { p.set_value(std::move(r)); });
  auto who = p.get_future().get();
  ASSERT_TRUE(who.ok()) << who.error().message();
  ASSERT_EQ(who->status, 201) << who->body;
  EXPECT_EQ(nlohmann::json::parse(who->body)["status"]["userInfo"]["username"], "cert-admin") << who->body;
}

TEST_F(KubeClientTest, ExecPluginCertificateWithoutKeyIsAClearErrorWithoutTheKey) {
  std::string count = dir() + "/exec-nokey-count";
  std::remove(count.c_str());
  std::string plugin = write_file(dir() + "/exec-nokey.sh",
                                  "#!/bin/sh\necho run >> " + count +
                                      "\nprintf '{\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":"
                                      "\"-----BEGIN CERTIFICATE-----\\\\nS3CR3T\\\\n\"}}'\n",
                                  true);
  auto c = client_for(kubeconfig_with("exec-nokey", "", "", "    exec:\n      command: " + plugin + "\n"));
  ASSERT_TRUE(c);
  auto r = send(*c, "GET", lease_path("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnauthorized);
  EXPECT_NE(r.error().message().find("without clientKeyData"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find(plugin), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find("S3CR3T"), std::string::npos) << r.error().message();
  auto again = send(*c, "GET", lease_path("x"));
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(lines_of(count), 1) << "a failing plugin is not run again for every request";
}

TEST_F(KubeClientTest, ASlowExecPluginDoesNotHoldUpAWatchAlreadyRunning) {
  std::string count = dir() + "/exec-slow-count";
  std::remove(count.c_str());
  // First run answers at once; later runs take 2 s. Tokens expire after 3 s.
  std::string plugin = write_file(dir() + "/exec-slow.sh",
      "#!/bin/sh\n"
      "echo run >> " + count + "\n"
      "[ \"$(wc -l < " + count + ")\" -gt 1 ] && sleep 2\n"
      "exp=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
      "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
      "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%s\"}}' \"$TOKEN\" \"$exp\"\n", true);
  auto c = client_for(kubeconfig_with("exec-slow", "", "",
                                      "    exec:\n      command: " + plugin + "\n      env:\n      - name: TOKEN\n"
                                      "        value: " + base("admin").token + "\n"));
  ASSERT_TRUE(c);
  std::string name = unique("slow-exec");
  std::mutex mu;
  std::condition_variable cv;
  std::chrono::steady_clock::time_point seen{};
  c->stream(std::string("/api/v1/namespaces/") + kNs + "/configmaps?watch=1&fieldSelector=metadata.name%3D" + name,
            [&](std::string_view line) {
              if (line.find("ADDED") == std::string_view::npos) return;
              std::lock_guard<std::mutex> g(mu);
              seen = std::chrono::steady_clock::now();
              cv.notify_all();
            },
            [](Result<kube::HttpResponse>) {});
  std::this_thread::sleep_for(3s);  // real time: the token expires; the watch keeps its connection
  std::promise<Result<kube::HttpResponse>> slow;
  auto t0 = std::chrono::steady_clock::now();
  c->request("GET", lease_path("x"), "", 10s, [&](Result<kube::HttpResponse> r) { slow.set_value(std::move(r)); });
  std::this_thread::sleep_for(200ms);  // the plugin is now running (2 s)
  auto admin = client_for(dir() + "/kubeconfig-admin");
  auto created_at = std::chrono::steady_clock::now();
  std::promise<Result<kube::HttpResponse>> cp;
  admin->request("POST", std::string("/api/v1/namespaces/") + kNs + "/configmaps",
                 R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name + R"("}})", 10s,
                 [&](Result<kube::HttpResponse> r) { cp.set_value(std::move(r)); });
  auto created = cp.get_future().get();
  ASSERT_TRUE(created.ok() && created->status == 201) << (created.ok() ? created->body : created.error().message());
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 10s, [&] { return seen != std::chrono::steady_clock::time_point{}; }));
  }
  auto r = slow.get_future().get();
  auto slow_took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(lines_of(count), 2);
  EXPECT_GE(slow_took, 1800ms) << "the request needing a new token waited for the plugin";
  auto watch_delay = seen - created_at;
  EXPECT_LT(watch_delay, 1s) << "the watch event waited for the plugin";
  std::printf("watch event during a 2 s plugin run: %.0f ms after the create; the request that needed the plugin: %.0f ms\n",
              std::chrono::duration<double, std::milli>(watch_delay).count(),
              std::chrono::duration<double, std::milli>(slow_took).count());
}

// ---- User-Agent, timeouts, HTTP/2 and connection reuse ----

TEST_F(KubeClientTest, UserAgentIsLeaseholdVersionInTheAuditLog) {
  auto c = client_for(dir() + "/kubeconfig-admin");
  ASSERT_TRUE(c);
  std::string name = unique("ua");
  auto r = send(*c, "GET", lease_path(name));
  ASSERT_TRUE(r.ok());
  std::string agent;
  for (int i = 0; i < 100 && agent.empty(); ++i) {  // the audit log is written in batches of <= 1 s
    std::ifstream audit(dir() + "/audit.log");
    std::string line;
    while (std::getline(audit, line)) {
      if (line.find(name) == std::string::npos) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("/objectRef/name"_json_pointer, "") == name) agent = j.value("userAgent", "");
    }
    if (agent.empty()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(agent, "leasehold/" LEASEHOLD_VERSION);
}

TEST_F(KubeClientTest, PerRequestTimeout) {
  auto c = client_for(dir() + "/kubeconfig-admin");
  ASSERT_TRUE(c);
  // A watch sent as a plain request: the server keeps it open, so only our timeout ends it.
  auto t0 = std::chrono::steady_clock::now();
  auto r = send(*c, "GET", std::string("/api/v1/namespaces/") + kNs + "/configmaps?watch=1", 700ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kTimeout) << r.error().message();
  EXPECT_NE(r.error().message().find("GET " + base().server + "/api/v1/namespaces/leasehold-test/configmaps"),
            std::string::npos)
      << r.error().message();
  EXPECT_GE(took, 650ms);
  EXPECT_LT(took, 3s);
  std::printf("700 ms timeout fired after %.0f ms\n", std::chrono::duration<double, std::milli>(took).count());
}

TEST_F(KubeClientTest, Http2AndOneConnectionForAHundredRequests) {
  auto c = client_for(dir() + "/kubeconfig-admin");
  ASSERT_TRUE(c);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, ok = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {  // all at once: multiplexed on one connection
    c->request("GET", lease_path("h2-" + std::to_string(i)), "", 20s, [&](Result<kube::HttpResponse> r) {
      std::lock_guard<std::mutex> g(mu);
      ++done;
      ok += r.ok() && r->status == 404;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 30s, [&] { return done == 100; }));
  }
  double concurrent_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ok, 100);
  auto s = c->stats();
  EXPECT_EQ(s.http2, 100u) << "every response over HTTP/2";
  EXPECT_EQ(s.connections, 1u) << "100 concurrent requests, one connection";
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) expect_not_found(*c);  // one after another: the connection is reused
  double sequential_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  s = c->stats();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.http2, 200u);
  EXPECT_EQ(s.completed, 200u);
  std::printf("200 GETs: %llu TCP connection(s), %llu over HTTP/2; 100 concurrent in %.0f ms, 100 sequential in %.0f ms\n",
              static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.http2), concurrent_ms,
              sequential_ms);
}

// ---- the request budget ----

TEST_F(KubeClientTest, OverBudgetLeaseRequestsGoFirstAndNothingIsDropped) {
  kube::ClientOptions o;
  o.rate = {5, 1};  // one request every 200 ms, no reserve
  auto c = client_for(dir() + "/kubeconfig-admin", o);
  ASSERT_TRUE(c);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> order;
  auto add = [&](const std::string& tag, Priority p) {
    c->request("GET", lease_path(tag), "", 20s, [&, tag](Result<kube::HttpResponse> r) {
      std::lock_guard<std::mutex> g(mu);
      order.push_back(r.ok() ? tag : tag + "(" + r.error().message() + ")");
      cv.notify_all();
    }, p);
  };
  auto t0 = std::chrono::steady_clock::now();
  add("b1", Priority::kBackground);  // takes the one token
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 10s, [&] { return order.size() == 1; }));
  }
  // The next token frees 200 ms after b1 started: all of these queue first.
  for (int i = 2; i <= 5; ++i) add("b" + std::to_string(i), Priority::kBackground);
  for (int i = 1; i <= 3; ++i) add("l" + std::to_string(i), Priority::kLease);
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 20s, [&] { return order.size() == 8; }));
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(order, (std::vector<std::string>{"b1", "l1", "l2", "l3", "b2", "b3", "b4", "b5"}));
  EXPECT_GE(took, 1.35) << "8 requests at 5 qps with burst 1 take at least 1.4 s";
  EXPECT_LT(took, 5.0);
  EXPECT_GE(c->stats().waited, 7u);
  std::printf("8 requests at 5 qps: %.2f s, order", took);
  for (auto& s : order) std::printf(" %s", s.c_str());
  std::printf("\n");
}

TEST_F(KubeClientTest, AQueuedRequestTimesOutInTheQueueWithAClearError) {
  kube::ClientOptions o;
  o.rate = {0.5, 1};  // one request every 2 s
  auto c = client_for(dir() + "/kubeconfig-admin", o);
  ASSERT_TRUE(c);
  expect_not_found(*c);  // spends the token
  auto t0 = std::chrono::steady_clock::now();
  auto r = send(*c, "GET", lease_path("late"), 300ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kTimeout);
  EXPECT_NE(r.error().message().find("request budget"), std::string::npos) << r.error().message();
  EXPECT_LT(took, 1s) << "failed at its own deadline, not when a token freed";
  EXPECT_EQ(c->stats().expired_in_queue, 1u);
}

TEST_F(KubeClientTest, RuntimeOptionsConfigureAndValidateTheBudget) {
  Runtime::Options o;
  o.kubeconfig = dir() + "/kubeconfig-elector";
  o.kube_qps = -3;
  Runtime bad(o);
  auto lock = bad.open_lock(std::string("k8s://") + kNs + "/x");
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.error().message().find("kube_qps"), std::string::npos) << lock.error().message();
  o.kube_qps = 10;
  o.kube_burst = 0;
  Runtime bad_burst(o);
  lock = bad_burst.open_lock(std::string("k8s://") + kNs + "/x");
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.error().message().find("kube_burst"), std::string::npos) << lock.error().message();
}

// ---- secrets never in errors or logs ----

TEST_F(KubeClientTest, TokensAndPasswordsNeverAppearInErrorsOrLogs) {
  const std::string token = base("admin").token;
  ASSERT_GE(token.size(), 16u);
  std::vector<std::string> texts;
  auto collect = [&](const std::string& kc, const std::string& path = lease_path("x")) {
    auto cfg = kube::load_cluster_config({kc, ""});
    ASSERT_TRUE(cfg.ok()) << cfg.error().message();
    auto c = kube::Client::create(*cfg);
    if (!c.ok()) {  // the http2 transport refuses a proxy-url: its message is checked too
      texts.push_back(c.error().to_string());
      return;
    }
    auto r = send(**c, "GET", path, 3s);
    texts.push_back(r.ok() ? r->body : r.error().to_string());
  };
  // Refused TLS, a closed port, a proxy refusing us, a bad token (401), a
  // plugin that fails after printing the token, a plugin printing garbage.
  collect(kubeconfig_with("leak-tls", "", "", token_yaml(), false));
  collect(kubeconfig_with("leak-port", "https://127.0.0.1:1", "", token_yaml()));
  {
    Proxy proxy("u:" + token);
    collect(kubeconfig_with("leak-proxy", "", "    proxy-url: http://u:wrong" + token + "@" + proxy.addr + "\n",
                            token_yaml()));
  }
  collect(kubeconfig_with("leak-401", "", "", "    token: " + token + "x\n"));
  std::string fails = write_file(dir() + "/leak-fails.sh", "#!/bin/sh\necho '{\"status\":{\"token\":\"" + token +
                                                               "\"}}'\nexit 1\n", true);
  collect(kubeconfig_with("leak-exec", "", "", "    exec:\n      command: " + fails + "\n"));
  std::string garbage = write_file(dir() + "/leak-garbage.sh", "#!/bin/sh\necho 'token: " + token + "'\n", true);
  collect(kubeconfig_with("leak-garbage", "", "", "    exec:\n      command: " + garbage + "\n"));
  // An elector on a closed port with the token, through the Runtime's log sink.
  {
    std::mutex mu;
    Runtime::Options o;
    o.kubeconfig = kubeconfig_with("leak-elector", "https://127.0.0.1:1", "", token_yaml());
    o.log = [&](LogLevel, std::string_view n, std::string_view m) {
      std::lock_guard<std::mutex> g(mu);
      texts.push_back(std::string(n) + ": " + std::string(m));
    };
    Runtime rt(o);
    ElectorConfig ec;
    ec.lock = std::string("k8s://") + kNs + "/" + unique("leak");
    ec.identity = "leaky";
    ec.lease_duration = 3s;
    ec.renew_deadline = 2s;
    ec.retry_period = 500ms;
    ec.callbacks.on_started_leading = [](const Term&, std::stop_token) {};
    auto e = Elector::create(rt, ec);
    ASSERT_TRUE(e.ok()) << e.error().message();
    (*e)->start();
    std::this_thread::sleep_for(1500ms);  // real time: a few failed attempts
    (*e)->stop();
    (*e)->wait();
  }
  ASSERT_GE(texts.size(), 6u);
  size_t errors = 0;
  for (const auto& t : texts) {
    EXPECT_EQ(t.find(token), std::string::npos) << "secret leaked in: " << t;
    errors += !t.empty();
  }
  EXPECT_GE(errors, 7u) << "every case (and the elector's log) produced an error text to check";
  for (const auto& t : texts) std::printf("  checked: %s\n", t.substr(0, 160).c_str());
}

}  // namespace
}  // namespace leasehold
