// The legacy annotation record and objects (client-go's LeaderElectionRecord
// in control-plane.alpha.kubernetes.io/leader), the migration MultiLock over
// two in-memory locks, and the Event recorder against a fake API client, all
// on a simulated clock with a manual runtime: no network, and no sleeps except
// waiting for a term thread to return.
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "backends/backends.h"
#include "kube/event_recorder.h"
#include "kube/legacy_codec.h"
#include "leasehold/elector.h"
#include "support/manual_runtime.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using kube::LegacyKind;

WallTime at(int64_t unix_seconds, int64_t micros = 0) {
  return WallTime{std::chrono::seconds(unix_seconds) + std::chrono::microseconds(micros)};
}

// ---- the record ----

TEST(LegacyRecord, EncodesExactlyClientGoFieldsOrderAndSecondTimes) {
  LeaseRecord r;
  r.holder_identity = "pod-a";
  r.lease_duration_seconds = 15;
  r.acquire_time = at(1'800'000'000, 999'999);  // Go truncates to the second
  r.renew_time = at(1'800'000'002);
  r.lease_transitions = 3;
  EXPECT_EQ(kube::encode_legacy_record(r),
            R"({"holderIdentity":"pod-a","leaseDurationSeconds":15,)"
            R"("acquireTime":"2027-01-15T08:00:00Z","renewTime":"2027-01-15T08:00:02Z",)"
            R"("leaderTransitions":3,"strategy":"","preferredHolder":""})");
}

TEST(LegacyRecord, UnsetTimesAreNullAsMetav1TimeMarshalsTheZeroTime) {
  LeaseRecord r;
  EXPECT_EQ(kube::encode_legacy_record(r),
            R"({"holderIdentity":"","leaseDurationSeconds":0,"acquireTime":null,"renewTime":null,)"
            R"("leaderTransitions":0,"strategy":"","preferredHolder":""})");
}

TEST(LegacyRecord, RoundTrips) {
  LeaseRecord r;
  r.holder_identity = "b";
  r.lease_duration_seconds = 1;
  r.acquire_time = at(1'800'000'000);
  r.renew_time = at(1'800'000'010);
  r.lease_transitions = 7;
  r.strategy = "OldestEmulationVersion";
  r.preferred_holder = "c";
  auto back = kube::decode_legacy_record(kube::encode_legacy_record(r));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(*back, r);
}

TEST(LegacyRecord, ReadsWhatOldClientGoWrites) {
  // client-go v0.17-v0.30: no strategy/preferredHolder; fractional seconds
  // and offsets are valid RFC 3339 too.
  auto r = kube::decode_legacy_record(
      R"({"holderIdentity":"x","leaseDurationSeconds":15,"acquireTime":"2026-11-23T10:00:00.5+01:00",)"
      R"("renewTime":null,"leaderTransitions":2})");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->holder_identity, "x");
  EXPECT_EQ(r->lease_duration_seconds, 15);
  ASSERT_TRUE(r->acquire_time);
  EXPECT_EQ(*r->acquire_time, at(1'795'424'400, 500'000));  // 09:00:00.5Z
  EXPECT_FALSE(r->renew_time);
  EXPECT_EQ(r->lease_transitions, 2);
  EXPECT_TRUE(r->strategy.empty());
}

TEST(LegacyRecord, EveryFreeFormIsFree) {
  for (const char* text : {R"({})", R"({"holderIdentity":""})", R"({"holderIdentity":null})",
                           R"({"holderIdentity":"","leaseDurationSeconds":1,"renewTime":"2026-11-23T10:00:00Z"})"}) {
    auto r = kube::decode_legacy_record(text);
    ASSERT_TRUE(r.ok()) << text;
    EXPECT_TRUE(r->is_free()) << text;
  }
}

TEST(LegacyRecord, ErrorsNameTheField) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {R"({"holderIdentity":5})", "holderIdentity: not a string"},
      {R"({"leaseDurationSeconds":"15"})", "leaseDurationSeconds: not an integer"},
      {R"({"leaseDurationSeconds":-1})", "leaseDurationSeconds: -1 out of range"},
      {R"({"leaderTransitions":99999999999})", "leaderTransitions: 99999999999 out of range"},
      {R"({"leaderTransitions":18446744073709551615})", "leaderTransitions: 18446744073709551615 out of range"},
      {R"({"renewTime":"yesterday"})", "renewTime: time \"yesterday\""},
      {R"({"acquireTime":12})", "acquireTime: not a string"},
      {R"([1,2])", "not a JSON object"},
      {R"({"holderIdentity":"a")", "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto r = kube::decode_legacy_record(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
    EXPECT_TRUE(r.error().is(Code::kInvalid));
  }
}

// ---- the objects ----

const char* kConfigMap = R"({"apiVersion":"v1","kind":"ConfigMap",
  "metadata":{"name":"app","namespace":"ns","uid":"u-1","resourceVersion":"41",
    "labels":{"team":"x"},
    "annotations":{"other":"keep me",
      "control-plane.alpha.kubernetes.io/leader":"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15,\"acquireTime\":\"2026-11-23T10:00:00Z\",\"renewTime\":\"2026-11-23T10:00:02Z\",\"leaderTransitions\":4}"}},
  "data":{"config.yaml":"x: 1"},"unknownField":{"z":1}})";

TEST(LegacyObject, DecodesTheRecordVersionAndUid) {
  auto o = kube::decode_legacy_object(kConfigMap, LegacyKind::kConfigMap);
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->versioned.version, "41");
  EXPECT_EQ(o->uid, "u-1");
  EXPECT_TRUE(o->has_record);
  EXPECT_EQ(o->versioned.record.holder_identity, "a");
  EXPECT_EQ(o->versioned.record.lease_transitions, 4);
}

TEST(LegacyObject, UpdateChangesOnlyTheAnnotation) {
  auto o = kube::decode_legacy_object(kConfigMap, LegacyKind::kConfigMap);
  ASSERT_TRUE(o.ok());
  LeaseRecord r;
  r.holder_identity = "b";
  r.lease_duration_seconds = 15;
  r.lease_transitions = 5;
  json out = json::parse(kube::encode_legacy_update(o->object, r));
  json want = json::parse(kConfigMap);
  want["metadata"]["annotations"]["control-plane.alpha.kubernetes.io/leader"] = kube::encode_legacy_record(r);
  EXPECT_EQ(out, want);  // data, labels, other annotations, resourceVersion, unknown fields kept
  auto back = kube::decode_legacy_object(out.dump(), LegacyKind::kConfigMap);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->versioned.record, r);
}

TEST(LegacyObject, EndpointsWithoutAnnotationsIsAFreeRecordAndKeepsSubsets) {
  std::string ep = R"({"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"e","namespace":"ns","resourceVersion":"9"},
    "subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]})";
  auto o = kube::decode_legacy_object(ep, LegacyKind::kEndpoints);
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_FALSE(o->has_record);
  EXPECT_TRUE(o->versioned.record.is_free());
  LeaseRecord r;
  r.holder_identity = "me";
  json out = json::parse(kube::encode_legacy_update(o->object, r));
  EXPECT_EQ(out["subsets"], json::parse(ep)["subsets"]);
  EXPECT_TRUE(out["metadata"]["annotations"].contains("control-plane.alpha.kubernetes.io/leader"));
  EXPECT_EQ(out["metadata"]["resourceVersion"], "9");
}

TEST(LegacyObject, CreateBodyIsJustMetadataAndTheAnnotation) {
  LeaseRecord r;
  r.holder_identity = "a";
  json out = json::parse(kube::encode_legacy_create(LegacyKind::kEndpoints, "ns", "app", r));
  EXPECT_EQ(out["kind"], "Endpoints");
  EXPECT_EQ(out["apiVersion"], "v1");
  EXPECT_EQ(out["metadata"]["name"], "app");
  EXPECT_EQ(out["metadata"]["namespace"], "ns");
  EXPECT_EQ(out["metadata"]["annotations"]["control-plane.alpha.kubernetes.io/leader"],
            kube::encode_legacy_record(r));
  EXPECT_FALSE(out.contains("subsets"));
}

TEST(LegacyObject, RejectsWrongKindMissingVersionAndBadAnnotation) {
  auto wrong = kube::decode_legacy_object(kConfigMap, LegacyKind::kEndpoints);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("expected kind Endpoints"), std::string::npos);
  auto nover = kube::decode_legacy_object(R"({"kind":"ConfigMap","metadata":{"name":"a"}})", LegacyKind::kConfigMap);
  ASSERT_FALSE(nover.ok());
  EXPECT_NE(nover.error().message().find("metadata.resourceVersion"), std::string::npos);
  auto bad = kube::decode_legacy_object(
      R"({"metadata":{"resourceVersion":"1","annotations":{"control-plane.alpha.kubernetes.io/leader":"{\"leaderTransitions\":\"x\"}"}}})",
      LegacyKind::kConfigMap);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("leaderTransitions: not an integer"), std::string::npos)
      << bad.error().message();
  auto notstr = kube::decode_legacy_object(
      R"({"metadata":{"resourceVersion":"1","annotations":{"control-plane.alpha.kubernetes.io/leader":7}}})",
      LegacyKind::kConfigMap);
  ASSERT_FALSE(notstr.ok());
}

TEST(LegacyWatch, ParsesEventsBookmarksAndErrors) {
  auto ev = kube::parse_legacy_watch_event(std::string(R"({"type":"MODIFIED","object":)") + kConfigMap + "}",
                                           LegacyKind::kConfigMap);
  ASSERT_TRUE(ev.ok()) << ev.error().message();
  EXPECT_EQ(ev->type, kube::WatchEvent::Type::kModified);
  EXPECT_EQ(ev->resource_version, "41");
  ASSERT_TRUE(ev->object);
  EXPECT_EQ(ev->object->versioned.record.holder_identity, "a");
  auto bm = kube::parse_legacy_watch_event(
      R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"77"}}})",
      LegacyKind::kConfigMap);
  ASSERT_TRUE(bm.ok());
  EXPECT_EQ(bm->type, kube::WatchEvent::Type::kBookmark);
  EXPECT_EQ(bm->resource_version, "77");
  auto gone = kube::parse_legacy_watch_event(R"({"type":"ERROR","object":{"kind":"Status","code":410}})",
                                             LegacyKind::kConfigMap);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->error_code, 410);
  EXPECT_FALSE(kube::parse_legacy_watch_event(R"({"type":"WHAT","object":{}})", LegacyKind::kConfigMap).ok());
  EXPECT_FALSE(kube::parse_legacy_watch_event("not json", LegacyKind::kConfigMap).ok());
}

// ---- the migration lock over two mem:// locks ----

class MultiLockTest : public ::testing::Test {
 protected:
  MultiLockTest() : rt_(options(&clock_)) {}
  static Runtime::Options options(Clock* clock) { return testing::manual_runtime_options(clock); }
  std::shared_ptr<Lock> open(const std::string& url) {
    auto l = rt_.open_lock(url);
    EXPECT_TRUE(l.ok());
    return *l;
  }
  std::shared_ptr<Lock> multi() {
    auto m = backends::open_multi_lock(rt_, "configmapsleases://ns/app", open("mem://cm"), open("mem://lease"));
    EXPECT_TRUE(m.ok());
    return *m;
  }
  // Runs a lock operation to completion on the manual runtime.
  template <class F>
  Result<Versioned> sync(F op) {
    std::optional<Result<Versioned>> out;
    op([&](Result<Versioned> r) { out = std::move(r); });
    EXPECT_FALSE(out) << "completion ran inline";
    for (int i = 0; i < 100 && !out; ++i) rt_.run_ready();
    if (!out) return Error::internal("no completion");
    return *out;
  }
  static LeaseRecord held(const std::string& holder, int transitions = 0) {
    LeaseRecord r;
    r.holder_identity = holder;
    r.lease_duration_seconds = 15;
    r.lease_transitions = transitions;
    return r;
  }

  SimulatedClock clock_;
  Runtime rt_;
};

TEST_F(MultiLockTest, NothingYetIsNotFoundAndCreateMakesBoth) {
  auto m = multi();
  auto g = sync([&](auto d) { m->get(d); });
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(g.error().is(Code::kNotFound));
  auto c = sync([&](auto d) { m->create(held("a"), d); });
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto cm = sync([&](auto d) { open("mem://cm")->get(d); });
  auto lease = sync([&](auto d) { open("mem://lease")->get(d); });
  ASSERT_TRUE(cm.ok() && lease.ok());
  EXPECT_EQ(cm->record.holder_identity, "a");
  EXPECT_EQ(lease->record.holder_identity, "a");
  EXPECT_EQ(c->version, cm->version + "|" + lease->version);
  auto g2 = sync([&](auto d) { m->get(d); });
  ASSERT_TRUE(g2.ok());
  EXPECT_EQ(g2->version, c->version);
  EXPECT_EQ(g2->record.holder_identity, "a");
}

TEST_F(MultiLockTest, OnlyTheLegacyLockHeldByAnOldReplicaReadsAsItsRecord) {
  ASSERT_TRUE(sync([&](auto d) { open("mem://cm")->create(held("old", 2), d); }).ok());
  auto m = multi();
  auto g = sync([&](auto d) { m->get(d); });
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->record.holder_identity, "old");
  EXPECT_EQ(g->version.back(), '|');  // no Lease yet
  // Taking it over (after expiry) writes the ConfigMap by compare-and-swap and
  // creates the Lease.
  auto u = sync([&](auto d) { m->update(g->version, held("new", 3), d); });
  ASSERT_TRUE(u.ok()) << u.error().message();
  auto lease = sync([&](auto d) { open("mem://lease")->get(d); });
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->record.holder_identity, "new");
  EXPECT_EQ(lease->record.lease_transitions, 3);
}

TEST_F(MultiLockTest, DifferentHoldersReadAsUnknown) {
  ASSERT_TRUE(sync([&](auto d) { open("mem://cm")->create(held("a"), d); }).ok());
  ASSERT_TRUE(sync([&](auto d) { open("mem://lease")->create(held("b"), d); }).ok());
  auto g = sync([&](auto d) { multi()->get(d); });
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->record.holder_identity, "leaderelection.k8s.io/unknown");
  EXPECT_FALSE(g->record.is_free());
}

TEST_F(MultiLockTest, AStalePrimaryVersionWritesNothing) {
  auto m = multi();
  auto c = sync([&](auto d) { m->create(held("a"), d); });
  ASSERT_TRUE(c.ok());
  // An old replica renews the ConfigMap behind our back.
  auto cm = open("mem://cm");
  auto cur = sync([&](auto d) { cm->get(d); });
  ASSERT_TRUE(sync([&](auto d) { cm->update(cur->version, held("a"), d); }).ok());
  auto lease_before = sync([&](auto d) { open("mem://lease")->get(d); });
  auto u = sync([&](auto d) { m->update(c->version, held("z", 1), d); });
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(u.error().is(Code::kConflict)) << u.error().to_string();
  auto lease_after = sync([&](auto d) { open("mem://lease")->get(d); });
  EXPECT_EQ(lease_after->version, lease_before->version);  // the Lease was not touched
}

TEST_F(MultiLockTest, ALeaseChangedSinceReadIsAConflictNotAnOverwrite) {
  auto m = multi();
  auto c = sync([&](auto d) { m->create(held("a"), d); });
  ASSERT_TRUE(c.ok());
  auto lease = open("mem://lease");
  auto cur = sync([&](auto d) { lease->get(d); });
  ASSERT_TRUE(sync([&](auto d) { lease->update(cur->version, held("lease-only"), d); }).ok());
  auto u = sync([&](auto d) { m->update(c->version, held("z", 1), d); });
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(u.error().is(Code::kConflict));
  EXPECT_EQ(sync([&](auto d) { lease->get(d); })->record.holder_identity, "lease-only");
}

TEST_F(MultiLockTest, APrimaryCreatedByOthersIsALostRace) {
  ASSERT_TRUE(sync([&](auto d) { open("mem://cm")->create(held("old"), d); }).ok());
  auto c = sync([&](auto d) { multi()->create(held("a"), d); });
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.error().is(Code::kAlreadyExists));
  EXPECT_TRUE(sync([&](auto d) { open("mem://lease")->get(d); }).error().is(Code::kNotFound));
}

TEST_F(MultiLockTest, MalformedVersionIsAConflict) {
  auto u = sync([&](auto d) { multi()->update("42", held("a"), d); });
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(u.error().is(Code::kConflict));
}

TEST_F(MultiLockTest, StagedMigrationNeverTwoLeaders) {
  // old: legacy only; mig: the pair; new: Lease only. Stage 1 runs old + mig,
  // stage 2 mig + new; each stage kills the leader and checks the take-over.
  std::atomic<int> leading{0}, max_leading{0}, terms{0};
  std::map<std::string, std::atomic<int>> working;  // by identity; keys made before any thread runs
  for (const char* id : {"old", "mig", "new"}) working[id] = 0;
  auto make = [&](const std::string& id, std::shared_ptr<Lock> lock) {
    ElectorConfig c;
    c.lock = lock->describe();
    c.identity = id;
    c.callbacks.on_started_leading = [&, id](const Term&, std::stop_token stop) {
      int n = ++leading;
      ++working.at(id);
      ++terms;
      int m = max_leading.load();
      while (n > m && !max_leading.compare_exchange_weak(m, n)) {}
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, stop, [] { return false; });
      --leading;
      --working.at(id);
    };
    auto e = Elector::create(rt_, c, std::move(lock));
    EXPECT_TRUE(e.ok());
    return std::move(*e);
  };
  auto run_for = [&](Duration d) {
    for (Duration t{0}; t < d; t += 100ms) {
      clock_.advance(100ms);
      for (int i = 0; i < 20; ++i) {
        rt_.run_ready();
        std::this_thread::yield();
      }
    }
  };
  // After a stop, let the work thread (real time) return before simulated
  // time moves on; otherwise a loaded machine lets the lease expire under a
  // work thread that has not been scheduled yet, which is not the election's
  // doing.
  auto settle = [&](const std::string& id) {
    for (int i = 0; i < 5000 && working.at(id).load() > 0; ++i) {
      rt_.run_ready();
      std::this_thread::sleep_for(1ms);
    }
  };
  auto old = make("old", open("mem://cm"));
  auto mig = make("mig", multi());
  old->start();
  mig->start();
  run_for(5s);
  EXPECT_NE(old->is_leader(), mig->is_leader());  // exactly one leads
  old->stop();
  settle("old");
  run_for(30s);
  old->wait();
  EXPECT_TRUE(mig->is_leader());
  auto neu = make("new", open("mem://lease"));
  neu->start();
  run_for(10s);
  EXPECT_TRUE(mig->is_leader());
  EXPECT_FALSE(neu->is_leader());
  mig->stop();
  settle("mig");
  run_for(10s);
  mig->wait();
  EXPECT_TRUE(neu->is_leader());
  neu->stop();
  settle("new");
  run_for(5s);
  neu->wait();
  EXPECT_EQ(max_leading.load(), 1);
  EXPECT_GE(terms.load(), 2);
}

// The elector reports term start and stop to the lock (for Events) unless
// ElectorConfig::record_events is off.
class CountingLock final : public Lock {
 public:
  explicit CountingLock(std::shared_ptr<Lock> inner) : inner_(std::move(inner)) {}
  const std::string& describe() const override { return inner_->describe(); }
  void get(Completion<Versioned> d) override { inner_->get(std::move(d)); }
  void create(const LeaseRecord& r, Completion<Versioned> d) override { inner_->create(r, std::move(d)); }
  void update(const std::string& v, const LeaseRecord& r, Completion<Versioned> d) override {
    inner_->update(v, r, [this, d = std::move(d)](Result<Versioned> a) {
      if (a.ok()) writes.push_back(calls.size());  // an answered write, between which calls
      d(std::move(a));
    });
  }
  void leadership_changed(const std::string& id, bool leading) override {
    calls.push_back(id + (leading ? " became leader" : " stopped leading"));
  }
  std::vector<std::string> calls;  // I/O thread (the test's, in manual mode)
  std::vector<size_t> writes;      // per answered update: how many calls came before it

 private:
  std::shared_ptr<Lock> inner_;
};

TEST_F(MultiLockTest, ElectorReportsTermsToTheLockUnlessEventsAreOff) {
  for (bool on : {true, false}) {
    auto lock = std::make_shared<CountingLock>(open(on ? "mem://ev-on" : "mem://ev-off"));
    ElectorConfig c;
    c.lock = lock->describe();
    c.identity = "me";
    c.record_events = on;
    auto e = Elector::create(rt_, c, lock);
    ASSERT_TRUE(e.ok());
    (*e)->start();
    for (int i = 0; i < 50 && !(*e)->is_leader(); ++i) {
      clock_.advance(100ms);
      rt_.run_ready();
    }
    ASSERT_TRUE((*e)->is_leader());
    (*e)->stop();
    (*e)->wait();
    if (on) {
      EXPECT_EQ(lock->calls, (std::vector<std::string>{"me became leader", "me stopped leading"}));
      // "stopped leading" comes after the release's answer (the last write),
      // never ahead of it: its POST would compete with the hand-over.
      ASSERT_FALSE(lock->writes.empty());
      EXPECT_EQ(lock->writes.back(), 1u) << "the release was answered after the \"stopped leading\" Event";
    } else {
      EXPECT_TRUE(lock->calls.empty());
    }
  }
}

// ---- Events ----

// Records every request; the test answers them.
class FakeClient final : public kube::Client {
 public:
  struct Req {
    std::string method, path, body;
    std::function<void(Result<kube::HttpResponse>)> done;
  };
  const kube::ClusterConfig& config() const override { return cfg_; }
  void request(std::string method, std::string path, std::string body, Duration,
               std::function<void(Result<kube::HttpResponse>)> done, kube::Priority, kube::Media) override {
    reqs.push_back({std::move(method), std::move(path), std::move(body), std::move(done)});
  }
  uint64_t stream(std::string, std::function<void(std::string_view)>, std::function<void(Result<kube::HttpResponse>)>,
                  kube::Priority, std::function<void()>) override {
    return 0;
  }
  void cancel(uint64_t) override {}
  kube::ClientStats stats() const override { return {}; }
  void answer(long status, std::string body = "{}") {
    auto r = std::move(reqs.front());
    reqs.pop_front();
    r.done(kube::HttpResponse{status, std::move(body), {}});
  }
  std::deque<Req> reqs;

 private:
  kube::ClusterConfig cfg_;
};

class EventsTest : public ::testing::Test {
 protected:
  EventsTest() : rt_(options(&clock_, &logs_)) {}
  static Runtime::Options options(Clock* clock, std::vector<std::string>* logs) {
    Runtime::Options o;
    o.clock = clock;
    o.manual = true;
    o.log = [logs](LogLevel, std::string_view, std::string_view m) { logs->emplace_back(m); };
    return o;
  }
  void settle() {
    for (int i = 0; i < 10; ++i) rt_.run_ready();
  }
  kube::ObjectRef cm{"ConfigMap", "v1", "ns", "app", "uid-7", "12"};
  SimulatedClock clock_;
  std::vector<std::string> logs_;
  Runtime rt_;
  std::shared_ptr<FakeClient> client_ = std::make_shared<FakeClient>();
};

TEST_F(EventsTest, PostsClientGosLeaderElectionEvent) {
  kube::EventRecorderOptions o;
  o.host = "node-1";
  auto rec = kube::EventRecorder::create(rt_, client_, o);
  rec->leader_election(cm, "pod-a", true);
  ASSERT_EQ(client_->reqs.size(), 1u);
  EXPECT_EQ(client_->reqs[0].method, "POST");
  EXPECT_EQ(client_->reqs[0].path, "/api/v1/namespaces/ns/events");
  json ev = json::parse(client_->reqs[0].body);
  EXPECT_EQ(ev["reason"], "LeaderElection");
  EXPECT_EQ(ev["message"], "pod-a became leader");
  EXPECT_EQ(ev["type"], "Normal");
  EXPECT_EQ(ev["involvedObject"]["kind"], "ConfigMap");
  EXPECT_EQ(ev["involvedObject"]["name"], "app");
  EXPECT_EQ(ev["involvedObject"]["uid"], "uid-7");
  EXPECT_EQ(ev["source"]["component"], "leasehold");
  EXPECT_EQ(ev["source"]["host"], "node-1");
  client_->answer(201);
  settle();
  rec->leader_election(cm, "pod-a", false);
  ASSERT_EQ(client_->reqs.size(), 1u);
  EXPECT_EQ(json::parse(client_->reqs[0].body)["message"], "pod-a stopped leading");
  client_->answer(201);
  settle();
  EXPECT_EQ(rec->stats().sent, 2u);
}

TEST_F(EventsTest, RateLimitedQueueDropsAndCountsNeverBlocks) {
  kube::EventRecorderOptions o;
  o.burst = 2;
  o.per_second = 1;
  o.max_queue = 3;
  auto rec = kube::EventRecorder::create(rt_, client_, o);
  // One request at a time; the rest wait in the queue (3) or are dropped.
  for (int i = 0; i < 10; ++i) rec->leader_election(cm, "id" + std::to_string(i), i % 2 == 0);
  EXPECT_EQ(client_->reqs.size(), 1u);
  EXPECT_EQ(rec->stats().dropped, 6u);  // 1 in flight + 3 queued of 10
  client_->answer(201);
  settle();
  ASSERT_EQ(client_->reqs.size(), 1u);  // the second token of the burst
  client_->answer(201);
  settle();
  EXPECT_EQ(client_->reqs.size(), 0u);  // bucket empty: waits for the clock
  clock_.advance(999ms);
  settle();
  EXPECT_EQ(client_->reqs.size(), 0u);
  clock_.advance(2ms);
  settle();
  ASSERT_EQ(client_->reqs.size(), 1u);
  bool logged_drop = false;
  for (auto& l : logs_) logged_drop |= l.find("6 event(s) dropped") != std::string::npos;
  EXPECT_TRUE(logged_drop);
}

TEST_F(EventsTest, ForbiddenIsLoggedOnceNamingTheRule) {
  auto rec = kube::EventRecorder::create(rt_, client_);
  for (int i = 0; i < 3; ++i) {
    rec->leader_election(cm, "a", true);
    ASSERT_EQ(client_->reqs.size(), 1u);
    client_->answer(403, R"({"kind":"Status","reason":"Forbidden","message":"events is forbidden"})");
    settle();
  }
  int forbidden_logs = 0;
  for (auto& l : logs_) {
    if (l.find("Forbidden") != std::string::npos) {
      ++forbidden_logs;
      EXPECT_NE(l.find("RBAC: grant verb \"create\" on resource \"events\""), std::string::npos) << l;
      EXPECT_NE(l.find("in namespace \"ns\""), std::string::npos) << l;
    }
  }
  EXPECT_EQ(forbidden_logs, 1);
  EXPECT_EQ(rec->stats().failed, 3u);
}

TEST_F(EventsTest, DecoratorForwardsAndRecordsOnTheLockObject) {
  auto inner = rt_.open_lock("mem://x");
  ASSERT_TRUE(inner.ok());
  auto rec = kube::EventRecorder::create(rt_, client_);
  auto lock = kube::with_events(*inner, {"Lease", "coordination.k8s.io/v1", "ns", "x", "", ""}, rec);
  LeaseRecord r;
  r.holder_identity = "me";
  std::optional<Result<Versioned>> got;
  lock->create(r, [&](Result<Versioned> v) { got = v; });
  settle();
  ASSERT_TRUE(got && got->ok());
  lock->leadership_changed("me", true);
  ASSERT_EQ(client_->reqs.size(), 1u);
  json ev = json::parse(client_->reqs[0].body);
  EXPECT_EQ(ev["involvedObject"]["kind"], "Lease");
  EXPECT_EQ(ev["involvedObject"]["apiVersion"], "coordination.k8s.io/v1");
  EXPECT_EQ(ev["involvedObject"]["resourceVersion"], (*got)->version);
  EXPECT_EQ(ev["message"], "me became leader");
}

}  // namespace
}  // namespace leasehold
