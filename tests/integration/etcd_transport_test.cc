// The etcd:// transport (src/etcd/transport.h) against real etcd clusters of
// its own, started by testenv/cmd/etcdcluster (LEASEHOLD_TESTENV_BIN) in a
// temporary directory: unary calls and a watch on one plain member; the
// failover rule on three members with the current one killed; TLS with and
// without a client certificate; auth (right and wrong password, a token a
// restart forgot, a call whose timeout passes while authentication hangs).
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "etcd/gateway_codec.h"
#include "etcd/transport.h"

namespace leasehold::etcd {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// One etcdcluster in a temporary directory.
class Cluster {
 public:
  // Runs `etcdcluster up ARGS`; error() says why when it failed.
  explicit Cluster(const std::string& args) {
    bin_ = env("LEASEHOLD_TESTENV_BIN");
    if (bin_.empty()) {
      error_ = "LEASEHOLD_TESTENV_BIN is not set (run through ctest)";
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "leasehold-etcd-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    if (!run("up --dir " + dir_ + " --bin " + bin_ + " " + args)) {
      error_ = "etcdcluster up " + args + " failed:\n" + read_file(dir_ + "/etcdcluster.log");
      return;
    }
    info_ = json::parse(read_file(dir_ + "/cluster.json"), nullptr, false);
    if (info_.is_discarded()) error_ = "cannot read " + dir_ + "/cluster.json";
  }
  ~Cluster() {
    if (dir_.empty()) return;
    run("down --dir " + dir_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  const std::string& error() const { return error_; }
  // etcdcluster COMMAND --dir DIR ARGS (kill, restart, stop, cont ...).
  bool cmd(const std::string& command, const std::string& args) {
    return run(command + " --dir " + dir_ + " " + args);
  }

  std::vector<std::string> endpoints() const { return info_["endpoints"].get<std::vector<std::string>>(); }
  // The member serving `endpoint`.
  int member_of(const std::string& endpoint) const {
    const json& members = info_["members"];
    for (size_t i = 0; i < members.size(); ++i) {
      if (members[i]["client_url"] == endpoint) return static_cast<int>(i);
    }
    return -1;
  }
  std::string file(const char* key) const { return info_.contains(key) ? read_file(info_[key]) : ""; }
  std::string str(const char* key) const { return info_.value(key, ""); }

  // The cluster's endpoints and certificates (client certificate included),
  // and its user "elector" when it has auth.
  ConnectionConfig connection() const {
    ConnectionConfig c;
    c.endpoints = endpoints();
    c.ca_pem = file("cacert");
    c.cert_pem = file("cert");
    c.key_pem = file("key");
    c.user = str("user");
    c.password = str("password");
    c.source = "etcd-test";
    return c;
  }

 private:
  bool run(const std::string& args) {
    std::string line = bin_ + "/etcdcluster " + args + " >>" + dir_ + "/etcdcluster.log 2>&1";
    return std::system(line.c_str()) == 0;
  }
  std::string bin_, dir_, error_;
  json info_;
};

ConnectionConfig endpoints(std::vector<std::string> list) {
  ConnectionConfig c;
  c.endpoints = std::move(list);
  return c;
}

std::shared_ptr<Transport> open(ConnectionConfig c) {
  auto t = Transport::create(std::move(c));
  EXPECT_TRUE(t.ok()) << t.error().message();
  return t.ok() ? *t : nullptr;
}

// One call, waited for.
Result<std::string> call(Transport& t, const std::string& path, const std::string& body, Duration timeout = 5s) {
  auto p = std::make_shared<std::promise<Result<std::string>>>();
  auto f = p->get_future();
  t.call(path, body, timeout, [p](Result<std::string> r) { p->set_value(std::move(r)); });
  if (f.wait_for(timeout + 10s) != std::future_status::ready) {
    return Error::internal("test: " + path + " was never completed");
  }
  return f.get();
}

// The body of a call that must succeed ("" and a failure otherwise).
std::string ok(Result<std::string> r) {
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? *r : "";
}

// Several calls at once (the first ones made before any can be answered).
std::vector<Result<std::string>> calls(Transport& t, const std::string& path, const std::string& body, int n) {
  std::vector<std::future<Result<std::string>>> futures;
  for (int i = 0; i < n; ++i) {
    auto p = std::make_shared<std::promise<Result<std::string>>>();
    futures.push_back(p->get_future());
    t.call(path, body, 5s, [p](Result<std::string> r) { p->set_value(std::move(r)); });
  }
  std::vector<Result<std::string>> out;
  for (auto& f : futures) {
    if (f.wait_for(15s) != std::future_status::ready) {
      out.emplace_back(Error::internal("test: a call was never completed"));
    } else {
      out.push_back(f.get());
    }
  }
  return out;
}

// A watch's lines and end, as they come.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<WatchResponse> answers;
  std::vector<GatewayError> errors;
  std::optional<Error> end;
  int ends = 0;

  std::function<void(std::string_view)> on_line() {
    return [this](std::string_view line) {
      auto item = decode_watch_line(line);
      std::lock_guard<std::mutex> g(mu);
      EXPECT_TRUE(item.ok()) << item.error().message();
      if (!item.ok()) return;
      if (auto* w = std::get_if<WatchResponse>(&*item)) {
        answers.push_back(std::move(*w));
      } else {
        errors.push_back(std::get<GatewayError>(*item));
      }
      cv.notify_all();
    };
  }
  std::function<void(Error)> on_end() {
    return [this](Error e) {
      std::lock_guard<std::mutex> g(mu);
      ++ends;
      end = std::move(e);
      cv.notify_all();
    };
  }
  bool wait(const std::function<bool()>& done, Duration timeout = 10s) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, timeout, done);
  }
  std::vector<Event> events() {
    std::vector<Event> out;
    for (const auto& a : answers) out.insert(out.end(), a.events.begin(), a.events.end());
    return out;
  }
};

std::string range(const std::string& key) { return encode_range({.key = key}); }

// ---- create() ------------------------------------------------------------------

TEST(EtcdTransportConfig, CreateNamesWhatIsWrong) {
  auto bad = [](ConnectionConfig c, std::string cert = "") {
    c.source = "etcd://x/app";
    c.cert_pem = std::move(cert);
    auto t = Transport::create(std::move(c));
    return t.ok() ? std::string("created") : t.error().message();
  };
  EXPECT_EQ(bad(endpoints({})), "etcd://x/app: no endpoints");
  EXPECT_EQ(bad(endpoints({"foo"})), "etcd://x/app: endpoint \"foo\" is not http://HOST:PORT or https://HOST:PORT");
  for (const char* e : {"http://127.0.0.1", "http://127.0.0.1:2379/v3", "http://:2379", "http://h:0", "http://h:65536",
                        "ftp://h:1", "http://u:secret@h:1"}) {
    EXPECT_NE(bad(endpoints({e})).find("is not http://HOST:PORT"), std::string::npos) << e;
  }
  EXPECT_EQ(bad(endpoints({"http://u:secret@h:1"})).find("secret"), std::string::npos);
  EXPECT_EQ(bad(endpoints({"http://a:1", "https://b:2"})),
            "etcd://x/app: endpoints \"http://a:1\" and \"https://b:2\" mix http:// and https://");
  EXPECT_EQ(bad(endpoints({"https://a:1"}), "PEM"), "etcd://x/app: a client certificate without its key");
  EXPECT_EQ(bad(endpoints({"http://[::1]:2379", "http://localhost:2380"})), "created");
}

// ---- one plain member ------------------------------------------------------------

class EtcdPlainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new Cluster("--members 1"); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->error().empty()) << cluster_->error(); }
  static Cluster* cluster_;
};
Cluster* EtcdPlainTest::cluster_ = nullptr;

TEST_F(EtcdPlainTest, GrantKeepAliveTxnRangeRevoke) {
  auto t = open(cluster_->connection());
  ASSERT_TRUE(t);
  std::string ep = cluster_->endpoints()[0];

  auto granted = call(*t, "/v3/lease/grant", encode_lease_grant(30));
  ASSERT_TRUE(granted.ok()) << granted.error().message();
  auto grant = decode_lease_grant(*granted);
  ASSERT_TRUE(grant.ok()) << grant.error().message();
  EXPECT_EQ(grant->ttl, 30);

  auto kept = call(*t, "/v3/lease/keepalive", encode_lease_keep_alive(grant->id));
  ASSERT_TRUE(kept.ok()) << kept.error().message();
  auto keep = decode_lease_keep_alive(*kept);
  ASSERT_TRUE(keep.ok()) << keep.error().message();
  ASSERT_TRUE(std::holds_alternative<LeaseKeepAliveResponse>(*keep));
  EXPECT_EQ(std::get<LeaseKeepAliveResponse>(*keep).id, grant->id);
  EXPECT_GT(std::get<LeaseKeepAliveResponse>(*keep).ttl, 0);

  const std::string key = "/leasehold/transport/roundtrip";
  TxnRequest create{.compare = {Compare::create_revision(key, 0)},
                    .success = {PutRequest{.key = key, .value = "me", .lease = grant->id}},
                    .failure = {RangeRequest{.key = key}}};
  auto put = call(*t, "/v3/kv/txn", encode_txn(create));
  ASSERT_TRUE(put.ok()) << put.error().message();
  auto txn = decode_txn(*put);
  ASSERT_TRUE(txn.ok()) << txn.error().message();
  EXPECT_TRUE(txn->succeeded);
  auto again = decode_txn(ok(call(*t, "/v3/kv/txn", encode_txn(create))));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded);

  auto read = decode_range(ok(call(*t, "/v3/kv/range", range(key))));
  ASSERT_TRUE(read.ok()) << read.error().message();
  ASSERT_EQ(read->kvs.size(), 1u);
  EXPECT_EQ(read->kvs[0].value, "me");
  EXPECT_EQ(read->kvs[0].lease, grant->id);

  ASSERT_TRUE(call(*t, "/v3/lease/revoke", encode_lease_revoke(grant->id)).ok());
  auto gone = decode_range(ok(call(*t, "/v3/kv/range", range(key))));
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->kvs.empty());

  // An etcd error: its meaning, and the endpoint and call named.
  auto twice = call(*t, "/v3/lease/revoke", encode_lease_revoke(grant->id));
  ASSERT_FALSE(twice.ok());
  EXPECT_TRUE(twice.error().is(Code::kNotFound)) << twice.error().to_string();
  EXPECT_EQ(twice.error().message(),
            "etcd " + ep + " /v3/lease/revoke: lease not found: etcdserver: requested lease not found");

  TransportStats s = t->stats();
  EXPECT_EQ(s.calls, 8u);
  EXPECT_EQ(s.authentications, 0u);
  EXPECT_EQ(s.failovers, 0u);
  EXPECT_GE(s.connections, 1u);
  EXPECT_LE(s.connections, 2u);  // kept alive between calls
  EXPECT_EQ(t->current_endpoint(), ep);
}

TEST_F(EtcdPlainTest, WatchSeesPutAndDelete) {
  Seen seen;  // outlives the transport, whose end ends open watches
  auto t = open(cluster_->connection());
  ASSERT_TRUE(t);
  const std::string prefix = "/leasehold/transport/watch/";
  uint64_t id = t->watch(encode_watch_create({.key = prefix, .range_end = prefix_range_end(prefix)}), seen.on_line(),
                         seen.on_end());
  ASSERT_TRUE(seen.wait([&] { return !seen.answers.empty(); })) << "no created answer";
  EXPECT_TRUE(seen.answers[0].created);

  ASSERT_TRUE(call(*t, "/v3/kv/put", encode_put({.key = prefix + "a", .value = "one"})).ok());
  ASSERT_TRUE(call(*t, "/v3/kv/deleterange", encode_delete_range({.key = prefix + "a"})).ok());
  ASSERT_TRUE(seen.wait([&] { return seen.events().size() >= 2; })) << "events: " << seen.events().size();
  auto events = seen.events();
  EXPECT_EQ(events[0].type, Event::Type::kPut);
  EXPECT_EQ(events[0].kv.key, prefix + "a");
  EXPECT_EQ(events[0].kv.value, "one");
  EXPECT_EQ(events[1].type, Event::Type::kDelete);
  EXPECT_EQ(events[1].kv.key, prefix + "a");
  EXPECT_GT(events[1].kv.mod_revision, events[0].kv.mod_revision);

  // Cancelled: nothing more, no end.
  t->cancel(id);
  size_t answers;
  {
    std::lock_guard<std::mutex> g(seen.mu);
    answers = seen.answers.size();
  }
  ASSERT_TRUE(call(*t, "/v3/kv/put", encode_put({.key = prefix + "b", .value = "two"})).ok());
  std::this_thread::sleep_for(500ms);
  {
    std::lock_guard<std::mutex> g(seen.mu);
    EXPECT_EQ(seen.answers.size(), answers);
    EXPECT_EQ(seen.ends, 0);
  }
  EXPECT_EQ(t->stats().watches, 1u);
}

// ---- three plain members: failover -----------------------------------------------

class EtcdFailoverTest : public ::testing::Test {
 protected:
  // Raft timings three times etcd's defaults (heartbeat 100 ms, election 1 s):
  // these tests kill a follower and expect the raft leader to stay put, and
  // on a loaded machine a 1 s election timeout can move it on its own.
  static void SetUpTestSuite() { cluster_ = new Cluster("--members 3 --heartbeat-ms 300 --election-ms 3000"); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->error().empty()) << cluster_->error(); }

  // The cluster's endpoints, followers first: killing the first one leaves
  // the raft leader in place, so the next member answers at once.
  static std::vector<std::string> followers_first() {
    std::vector<std::string> followers, leader;
    for (const std::string& ep : cluster_->endpoints()) {
      auto t = open(endpoints({ep}));
      auto status = t ? call(*t, "/v3/maintenance/status", "{}") : Result<std::string>(Error::internal("no transport"));
      EXPECT_TRUE(status.ok()) << status.error().message();
      json j = json::parse(status.ok() ? *status : "{}", nullptr, false);
      bool is_leader = j.is_object() && j.contains("header") && j.value("leader", "") == j["header"].value("member_id", "-");
      (is_leader ? leader : followers).push_back(ep);
    }
    EXPECT_EQ(leader.size(), 1u);
    followers.insert(followers.end(), leader.begin(), leader.end());
    return followers;
  }

  // Kills the member serving `endpoint`; restarts it when the test ends.
  struct Killed {
    int member;
    explicit Killed(const std::string& endpoint) : member(cluster_->member_of(endpoint)) {
      EXPECT_TRUE(cluster_->cmd("kill", "--member " + std::to_string(member)));
    }
    ~Killed() { EXPECT_TRUE(cluster_->cmd("restart", "--member " + std::to_string(member))); }
  };

  static Cluster* cluster_;
};
Cluster* EtcdFailoverTest::cluster_ = nullptr;

TEST_F(EtcdFailoverTest, ACallOnAKilledMemberFailsAndTheNextGoesToTheNext) {
  auto order = followers_first();
  ASSERT_EQ(order.size(), 3u);
  auto t = open(endpoints(order));
  ASSERT_TRUE(t);
  ASSERT_TRUE(call(*t, "/v3/kv/range", range("/leasehold/x")).ok());
  EXPECT_EQ(t->current_endpoint(), order[0]);

  Killed killed(order[0]);
  auto failed = call(*t, "/v3/kv/range", range("/leasehold/x"));
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(failed.error().is(Code::kUnavailable)) << failed.error().to_string();
  EXPECT_TRUE(failed.error().message().starts_with("etcd " + order[0] + " /v3/kv/range: "))
      << failed.error().message();
  EXPECT_EQ(t->current_endpoint(), order[1]);
  EXPECT_EQ(t->stats().failovers, 1u);

  auto next = call(*t, "/v3/kv/range", range("/leasehold/x"));
  EXPECT_TRUE(next.ok()) << next.error().message();
  EXPECT_EQ(t->current_endpoint(), order[1]);
  EXPECT_EQ(t->stats().failovers, 1u);
}

TEST_F(EtcdFailoverTest, OnlyTheFirstOfConcurrentFailuresMovesTheEndpoint) {
  auto order = followers_first();
  ASSERT_EQ(order.size(), 3u);
  auto t = open(endpoints(order));
  ASSERT_TRUE(t);
  ASSERT_TRUE(call(*t, "/v3/kv/range", range("/leasehold/x")).ok());

  Killed killed(order[0]);
  // All sent to order[0] before any fails: one move, to order[1], not beyond.
  auto results = calls(*t, "/v3/kv/range", range("/leasehold/x"), 5);
  for (const auto& r : results) EXPECT_FALSE(r.ok());
  EXPECT_EQ(t->current_endpoint(), order[1]);
  EXPECT_EQ(t->stats().failovers, 1u);
  EXPECT_TRUE(call(*t, "/v3/kv/range", range("/leasehold/x")).ok());
}

TEST_F(EtcdFailoverTest, AWatchOnAKilledMemberEndsAndMovesTheEndpoint) {
  Seen seen, again;  // outlive the transport, whose end ends open watches
  auto order = followers_first();
  ASSERT_EQ(order.size(), 3u);
  auto t = open(endpoints(order));
  ASSERT_TRUE(t);
  t->watch(encode_watch_create({.key = "/leasehold/w"}), seen.on_line(), seen.on_end());
  ASSERT_TRUE(seen.wait([&] { return !seen.answers.empty(); })) << "no created answer";

  Killed killed(order[0]);
  ASSERT_TRUE(seen.wait([&] { return seen.end.has_value(); })) << "the watch did not end";
  EXPECT_TRUE(seen.end->is(Code::kUnavailable)) << seen.end->to_string();
  EXPECT_TRUE(seen.end->message().starts_with("etcd " + order[0] + " /v3/watch: ")) << seen.end->message();
  EXPECT_EQ(t->current_endpoint(), order[1]);
  EXPECT_EQ(t->stats().failovers, 1u);

  // A new watch opens on the next member.
  t->watch(encode_watch_create({.key = "/leasehold/w"}), again.on_line(), again.on_end());
  EXPECT_TRUE(again.wait([&] { return !again.answers.empty(); })) << "no created answer from " << order[1];
  EXPECT_EQ(again.ends, 0);
}

TEST_F(EtcdFailoverTest, AMemberWithoutLeaderAnswersAtOnce) {
  Seen seen;  // outlives the transport, whose end ends open watches
  auto order = followers_first();
  ASSERT_EQ(order.size(), 3u);
  auto t = open(endpoints({order[2]}));
  ASSERT_TRUE(t);
  t->watch(encode_watch_create({.key = "/leasehold/w"}), seen.on_line(), seen.on_end());
  ASSERT_TRUE(seen.wait([&] { return !seen.answers.empty(); })) << "no created answer";
  Killed one(order[0]), two(order[1]);
  // Grpc-Metadata-hasleader: once the survivor has stepped down (raft's
  // check-quorum), it refuses at once instead of holding the call for 7 s.
  Result<std::string> r = Error::internal("no call");
  Duration took{};
  for (auto until = std::chrono::steady_clock::now() + 15s; std::chrono::steady_clock::now() < until;) {
    auto start = std::chrono::steady_clock::now();
    r = call(*t, "/v3/kv/put", encode_put({.key = "/leasehold/x", .value = "v"}), 3s);
    took = std::chrono::steady_clock::now() - start;
    if (!r.ok() && r.error().message().find("no leader") != std::string::npos) break;
  }
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Code::kUnavailable)) << r.error().to_string();
  EXPECT_EQ(r.error().message(), "etcd " + order[2] + " /v3/kv/put: unavailable: etcdserver: no leader");
  EXPECT_LT(took, 1s);
  // The watch ended with the stream's last line, the error. etcd cancels
  // open streams only after 3 election timeouts without a leader (9 s here,
  // counted in election-timeout steps: up to 12 s after the loss).
  ASSERT_TRUE(seen.wait([&] { return seen.end.has_value(); }, 30s)) << "the watch did not end";
  EXPECT_EQ(seen.end->message(), "etcd " + order[2] + " /v3/watch: unavailable: etcdserver: no leader");
  EXPECT_EQ(seen.errors.size(), 1u);
}

// ---- TLS -------------------------------------------------------------------------

class EtcdTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new Cluster("--members 1 --tls"); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->error().empty()) << cluster_->error(); }
  static Cluster* cluster_;
};
Cluster* EtcdTlsTest::cluster_ = nullptr;

TEST_F(EtcdTlsTest, CaAndClientCertificate) {
  Seen seen;  // outlives the transport, whose end ends open watches
  auto t = open(cluster_->connection());
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->current_endpoint().starts_with("https://"));
  auto r = call(*t, "/v3/kv/put", encode_put({.key = "/leasehold/tls", .value = "v"}));
  EXPECT_TRUE(r.ok()) << r.error().message();
  t->watch(encode_watch_create({.key = "/leasehold/tls"}), seen.on_line(), seen.on_end());
  EXPECT_TRUE(seen.wait([&] { return !seen.answers.empty(); })) << "no created answer";
  // The watch and the calls share one HTTP/2 connection.
  ASSERT_TRUE(call(*t, "/v3/kv/range", range("/leasehold/tls")).ok());
  EXPECT_EQ(t->stats().connections, 1u);
}

TEST_F(EtcdTlsTest, NoClientCertificateIsAClearError) {
  ConnectionConfig c = cluster_->connection();
  c.cert_pem.clear();
  c.key_pem.clear();
  auto t = open(c);
  ASSERT_TRUE(t);
  auto r = call(*t, "/v3/kv/range", range("/leasehold/tls"));
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message();
  EXPECT_TRUE(r.error().is(Code::kUnavailable)) << r.error().to_string();
  EXPECT_TRUE(m.starts_with("etcd " + c.endpoints[0] + " /v3/kv/range: ")) << m;
  EXPECT_NE(m.find("TLS client certificate"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST_F(EtcdTlsTest, AnUntrustedServerIsAClearError) {
  ConnectionConfig c = cluster_->connection();
  c.ca_pem = cluster_->file("untrusted_cacert");
  auto t = open(c);
  ASSERT_TRUE(t);
  auto r = call(*t, "/v3/kv/range", range("/leasehold/tls"));
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message();
  EXPECT_TRUE(m.starts_with("etcd " + c.endpoints[0] + " /v3/kv/range: TLS verification failed")) << m;
  EXPECT_NE(m.find("check the CA certificate"), std::string::npos) << m;
  EXPECT_EQ(m.find("kubeconfig"), std::string::npos) << m;
}

// ---- TLS and auth ----------------------------------------------------------------

class EtcdAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new Cluster("--members 1 --tls --auth"); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->error().empty()) << cluster_->error(); }
  static Cluster* cluster_;
};
Cluster* EtcdAuthTest::cluster_ = nullptr;

TEST_F(EtcdAuthTest, OneAuthenticationServesConcurrentCallsAndWatches) {
  Seen seen;  // outlives the transport, whose end ends open watches
  auto t = open(cluster_->connection());
  ASSERT_TRUE(t);
  const std::string key = "/leasehold/auth/a";
  // A watch and calls made before any token exists wait for the one authenticate.
  t->watch(encode_watch_create({.key = key}), seen.on_line(), seen.on_end());
  for (auto& r : calls(*t, "/v3/kv/range", range(key), 5)) EXPECT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(t->stats().authentications, 1u);
  ASSERT_TRUE(seen.wait([&] { return !seen.answers.empty(); })) << "no created answer";
  EXPECT_TRUE(seen.answers[0].created);
  EXPECT_FALSE(seen.answers[0].canceled) << seen.answers[0].cancel_reason;

  ASSERT_TRUE(call(*t, "/v3/kv/put", encode_put({.key = key, .value = "v"})).ok());
  EXPECT_TRUE(seen.wait([&] { return seen.events().size() == 1; }));
  EXPECT_EQ(t->stats().authentications, 1u);
  EXPECT_EQ(t->stats().calls, 6u);

  // Outside the role's prefix: Forbidden, not a token problem.
  auto denied = call(*t, "/v3/kv/range", range("/elsewhere"));
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(denied.error().is(Code::kForbidden)) << denied.error().to_string();
  EXPECT_EQ(t->stats().authentications, 1u);
}

TEST_F(EtcdAuthTest, WrongPasswordFailsEveryWaitingCallNamingTheUser) {
  ConnectionConfig c = cluster_->connection();
  std::string right = c.password;
  c.password = "wrong-" + right.substr(0, 4) + "-pw";
  auto t = open(c);
  ASSERT_TRUE(t);
  for (auto& r : calls(*t, "/v3/kv/range", range("/leasehold/auth/b"), 3)) {
    ASSERT_FALSE(r.ok());
    const std::string& m = r.error().message();
    EXPECT_TRUE(r.error().is(Code::kUnauthorized)) << r.error().to_string();
    EXPECT_TRUE(m.starts_with("etcd " + c.endpoints[0] + ": authentication as \"elector\" failed: ")) << m;
    EXPECT_NE(m.find("invalid user ID or password"), std::string::npos) << m;
    EXPECT_EQ(m.find(c.password), std::string::npos) << m;
    EXPECT_EQ(m.find(right), std::string::npos) << m;
  }
  EXPECT_EQ(t->stats().authentications, 1u);
}

TEST_F(EtcdAuthTest, NoUserOnAClusterWithAuth) {
  ConnectionConfig c = cluster_->connection();
  c.user.clear();
  c.password.clear();
  auto t = open(c);
  ASSERT_TRUE(t);
  auto r = call(*t, "/v3/kv/range", range("/leasehold/auth/c"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Code::kUnauthorized)) << r.error().to_string();
  EXPECT_NE(r.error().message().find("no user is configured"), std::string::npos) << r.error().message();
  EXPECT_EQ(t->stats().authentications, 0u);
}

TEST_F(EtcdAuthTest, ATokenARestartForgotIsRenewed) {
  auto t = open(cluster_->connection());
  ASSERT_TRUE(t);
  ASSERT_TRUE(call(*t, "/v3/kv/range", range("/leasehold/auth/d")).ok());
  EXPECT_EQ(t->stats().authentications, 1u);

  ASSERT_TRUE(cluster_->cmd("restart", "--member 0"));
  auto r = call(*t, "/v3/kv/range", range("/leasehold/auth/d"));
  EXPECT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(t->stats().authentications, 2u);
  EXPECT_EQ(t->stats().calls, 2u);
}

TEST_F(EtcdAuthTest, AWatchRefusedForItsTokenMakesTheNextWatchAuthenticate) {
  Seen refused, accepted;  // outlive the transport, whose end ends open watches
  auto t = open(cluster_->connection());
  ASSERT_TRUE(t);
  ASSERT_TRUE(call(*t, "/v3/kv/range", range("/leasehold/auth/f")).ok());
  ASSERT_TRUE(cluster_->cmd("restart", "--member 0"));

  // etcd refuses it inside a 200 stream (canceled, the stream stays open).
  uint64_t id = t->watch(encode_watch_create({.key = "/leasehold/auth/f"}), refused.on_line(), refused.on_end());
  ASSERT_TRUE(refused.wait([&] { return !refused.answers.empty(); })) << "no answer";
  EXPECT_TRUE(refused.answers[0].canceled);
  EXPECT_NE(refused.answers[0].cancel_reason.find("invalid auth token"), std::string::npos)
      << refused.answers[0].cancel_reason;
  t->cancel(id);
  EXPECT_EQ(t->stats().authentications, 1u);

  t->watch(encode_watch_create({.key = "/leasehold/auth/f"}), accepted.on_line(), accepted.on_end());
  ASSERT_TRUE(accepted.wait([&] { return !accepted.answers.empty(); })) << "no answer";
  EXPECT_TRUE(accepted.answers[0].created);
  EXPECT_FALSE(accepted.answers[0].canceled) << accepted.answers[0].cancel_reason;
  EXPECT_EQ(t->stats().authentications, 2u);
  EXPECT_EQ(t->stats().watches, 2u);
}

TEST_F(EtcdAuthTest, ACallWaitingForAHungAuthenticationTimesOutOnTime) {
  auto t = open(cluster_->connection());
  ASSERT_TRUE(t);
  ASSERT_TRUE(cluster_->cmd("stop", "--member 0"));  // accepts connections, answers nothing
  struct Cont {
    ~Cont() { EXPECT_TRUE(cluster_->cmd("cont", "--member 0")); }
  } cont;

  auto slow = std::make_shared<std::promise<Result<std::string>>>();
  auto slow_done = slow->get_future();
  t->call("/v3/kv/range", range("/leasehold/auth/e"), 3s, [slow](Result<std::string> r) { slow->set_value(std::move(r)); });
  auto start = std::chrono::steady_clock::now();
  auto quick = call(*t, "/v3/kv/range", range("/leasehold/auth/e"), 300ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(quick.ok());
  EXPECT_TRUE(quick.error().is(Code::kTimeout)) << quick.error().to_string();
  EXPECT_NE(quick.error().message().find("waiting for authentication as \"elector\""), std::string::npos)
      << quick.error().message();
  EXPECT_LT(waited, 1500ms);

  // The authenticate itself times out with the longest waiting call (which
  // of the two reports it first is a race).
  ASSERT_EQ(slow_done.wait_for(10s), std::future_status::ready);
  auto r = slow_done.get();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Code::kTimeout)) << r.error().to_string();
  EXPECT_NE(r.error().message().find("authentication as \"elector\""), std::string::npos) << r.error().message();
  EXPECT_EQ(t->stats().authentications, 1u);
}

}  // namespace
}  // namespace leasehold::etcd
