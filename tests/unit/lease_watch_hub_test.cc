// The shared Lease watch hub, driven without a server: a fake client answers
// its requests and opens its streams when the test says so.
#include "backends/lease_watch_hub.h"

#include <gtest/gtest.h>

#include <deque>

#include "backends/backends.h"
#include "kube/client.h"
#include "kube/legacy_codec.h"
#include "kube/watch_peek.h"
#include "support/manual_runtime.h"

namespace leasehold::backends {
namespace {

using namespace std::chrono_literals;

class FakeClient final : public kube::Client {
 public:
  struct Req {
    std::string method, path;
    std::function<void(Result<kube::HttpResponse>)> done;
    kube::Media media = kube::Media::kJson;
  };
  struct Stream {
    std::string path;
    std::function<void(std::string_view)> on_line;
    std::function<void(Result<kube::HttpResponse>)> on_end;
    std::function<void()> on_open;
    bool cancelled = false;
  };

  const kube::ClusterConfig& config() const override { return cfg_; }
  void request(std::string method, std::string path, std::string, Duration,
               std::function<void(Result<kube::HttpResponse>)> done, kube::Priority, kube::Media media) override {
    reqs.push_back(Req{std::move(method), std::move(path), std::move(done), media});
  }
  uint64_t stream(std::string path, std::function<void(std::string_view)> on_line,
                  std::function<void(Result<kube::HttpResponse>)> on_end, kube::Priority,
                  std::function<void()> on_open) override {
    streams.push_back(Stream{std::move(path), std::move(on_line), std::move(on_end), std::move(on_open)});
    return streams.size();
  }
  void cancel(uint64_t id) override { streams.at(id - 1).cancelled = true; }
  kube::ClientStats stats() const override { return {}; }

  Req take() {
    EXPECT_FALSE(reqs.empty());
    if (reqs.empty()) return {};
    Req r = std::move(reqs.front());
    reqs.pop_front();
    return r;
  }

  std::deque<Req> reqs;
  std::vector<Stream> streams;

 private:
  kube::ClusterConfig cfg_;
};

kube::HttpResponse review(bool allowed) {
  return {201, std::string(R"({"status":{"allowed":)") + (allowed ? "true" : "false") + "}}", "application/json"};
}
kube::HttpResponse lease_list() {
  return {200, R"({"metadata":{"resourceVersion":"10"},"items":[{"metadata":{"name":"app","namespace":"ns",)"
               R"("resourceVersion":"9"},"spec":{"holderIdentity":"b","leaseDurationSeconds":15}}]})",
          "application/json"};
}

class LeaseWatchHubTest : public ::testing::Test {
 protected:
  LeaseWatchHubTest() : rt_(options(&clock_)) {
    hub_ = LeaseWatchHub::create(rt_, client_);
  }
  static Runtime::Options options(Clock* clock) { return testing::manual_runtime_options(clock); }

  struct Seen {
    int objects = 0, unsupported = 0;
    std::vector<bool> health;
  };
  uint64_t subscribe(const std::shared_ptr<Seen>& seen) {
    LeaseWatchSubscriber s;
    s.on_object = [seen](const kube::Lease*) { ++seen->objects; };
    s.on_health = [seen](bool up) { seen->health.push_back(up); };
    s.on_unsupported = [seen] { ++seen->unsupported; };
    return hub_->subscribe("ns", "app", std::move(s));
  }
  // Answers the list and watch access reviews, then the LIST, whose answer
  // the I/O thread handles `handled_after` later.
  void allow_and_list(Duration handled_after = Duration::zero()) {
    auto list = client_->take();
    ASSERT_EQ(list.method, "POST");
    list.done(review(true));
    auto watch = client_->take();
    ASSERT_EQ(watch.method, "POST");
    watch.done(review(true));
    auto get = client_->take();
    ASSERT_EQ(get.method, "GET");
    get.done(lease_list());
    clock_.advance(handled_after);
    rt_.run_ready();
  }

  SimulatedClock clock_;
  Runtime rt_;
  std::shared_ptr<FakeClient> client_ = std::make_shared<FakeClient>();
  std::shared_ptr<LeaseWatchHub> hub_;
};

TEST_F(LeaseWatchHubTest, HealthyOnlyOnceTheStreamIsOpen) {
  auto seen = std::make_shared<Seen>();
  subscribe(seen);
  allow_and_list();
  ASSERT_EQ(client_->streams.size(), 1u);
  EXPECT_EQ(seen->objects, 1);  // the listed Lease
  EXPECT_TRUE(seen->health.empty()) << "healthy before the watch stream exists";
  EXPECT_EQ(hub_->streams(), 1u);
  client_->streams[0].on_open();
  rt_.run_ready();
  EXPECT_EQ(seen->health, std::vector<bool>{true});
  // A stream that ends before it opened never reported healthy.
  client_->streams[0].on_end(kube::HttpResponse{200, "", {}});
  rt_.run_ready();
  EXPECT_EQ(seen->health, (std::vector<bool>{true, false}));
}

TEST_F(LeaseWatchHubTest, AnErasedNamespaceEntrysAnswersDoNotReachItsSuccessor) {
  auto first = std::make_shared<Seen>();
  uint64_t id = subscribe(first);
  auto stale = client_->take();  // the first entry's access review, still unanswered
  hub_->unsubscribe(id);          // the entry is erased...
  auto second = std::make_shared<Seen>();
  subscribe(second);              // ...and made again
  stale.done(review(false));      // the old entry's answer arrives late
  rt_.run_ready();
  EXPECT_EQ(second->unsupported, 0) << "an answer meant for the erased entry refused its successor";
  allow_and_list();
  ASSERT_EQ(client_->streams.size(), 1u);
  client_->streams[0].on_open();
  rt_.run_ready();
  EXPECT_EQ(second->health, std::vector<bool>{true});
  EXPECT_EQ(second->unsupported, 0);
}

TEST_F(LeaseWatchHubTest, AnErasedEntrysStreamEndDoesNotEndItsSuccessors) {
  auto first = std::make_shared<Seen>();
  uint64_t id = subscribe(first);
  allow_and_list();
  ASSERT_EQ(client_->streams.size(), 1u);
  auto old_end = client_->streams[0].on_end;
  hub_->unsubscribe(id);
  auto second = std::make_shared<Seen>();
  subscribe(second);
  allow_and_list();
  ASSERT_EQ(client_->streams.size(), 2u);
  client_->streams[1].on_open();
  rt_.run_ready();
  ASSERT_EQ(second->health, std::vector<bool>{true});
  old_end(kube::HttpResponse{200, "", {}});  // the cancelled stream's end, delivered late
  rt_.run_ready();
  EXPECT_EQ(second->health, std::vector<bool>{true}) << "the old stream's end marked the new one down";
}

// kube-apiserver ends every watch after its timeout (30-60 min by default).
// Such an end once doubled the backoff for good: a process a few hours old
// went 30-45 s without a watch at each end, its followers polling meanwhile.
TEST_F(LeaseWatchHubTest, AStreamThatStayedOpenStartsAgainWithTheFirstBackoff) {
  auto seen = std::make_shared<Seen>();
  subscribe(seen);
  allow_and_list();
  for (size_t i = 0; i < 8; ++i) {
    ASSERT_EQ(client_->streams.size(), i + 1);
    client_->streams[i].on_open();
    rt_.run_ready();
    clock_.advance(60s);
    client_->streams[i].on_end(kube::HttpResponse{200, "", {}});
    rt_.run_ready();
    clock_.advance(750ms);  // the first backoff, 0.5 s x [1, 1.5)
    rt_.run_ready();
    ASSERT_EQ(client_->streams.size(), i + 2) << "end " << i + 1 << ": no new stream within 750 ms";
  }
}

// After an outage the backoff has grown; the first lock request answered
// shows the server back, and the watch starts then (a stress run: the
// watch came back seconds after the leader, and a release was taken over by
// polling).
TEST_F(LeaseWatchHubTest, AWatchBackingOffStartsWhenALockRequestIsAnswered) {
  auto seen = std::make_shared<Seen>();
  subscribe(seen);
  allow_and_list();
  for (size_t i = 0; i < 6; ++i) {  // refused connections: 0.5, 1, 2, 4, 8, 16 s
    ASSERT_EQ(client_->streams.size(), i + 1);
    client_->streams[i].on_end(Error::unavailable("Failed to connect"));
    rt_.run_ready();
    clock_.advance(30s);
    rt_.run_ready();
  }
  ASSERT_EQ(client_->streams.size(), 7u);
  client_->streams[6].on_end(Error::unavailable("Failed to connect"));  // the next in 32-48 s
  rt_.run_ready();
  clock_.advance(5s);
  rt_.run_ready();
  ASSERT_EQ(client_->streams.size(), 7u);
  hub_->server_answered("ns");
  rt_.run_ready();
  ASSERT_EQ(client_->streams.size(), 8u) << "the watch waited out its backoff after the server answered";
  EXPECT_NE(client_->streams[7].path.find("resourceVersion=10"), std::string::npos) << client_->streams[7].path;
  // Its old timer is void: no second stream when it fires.
  clock_.advance(60s);
  rt_.run_ready();
  EXPECT_EQ(client_->streams.size(), 8u);
  // A retry due soon is left as it is.
  client_->streams[7].on_end(Error::unavailable("Failed to connect"));
  rt_.run_ready();
  hub_->server_answered("ns");
  rt_.run_ready();
  EXPECT_EQ(client_->streams.size(), 8u);
  // A watch the server refuses (here 500s, while it answers the lock) keeps
  // its backoff: lock answers do not bring it back each time.
  for (size_t i = 8; i < 12; ++i) {
    clock_.advance(60s);
    rt_.run_ready();
    ASSERT_EQ(client_->streams.size(), i + 1);
    client_->streams[i].on_end(kube::HttpResponse{500, R"({"kind":"Status","code":500})", "application/json"});
    rt_.run_ready();
  }
  clock_.advance(2s);
  hub_->server_answered("ns");
  rt_.run_ready();
  EXPECT_EQ(client_->streams.size(), 12u) << "a refused watch was brought back by a lock answer";
}

namespace {

std::string lease_event(const std::string& type, const std::string& rv, const std::string& holder) {
  return R"({"type":")" + type + R"(","object":{"kind":"Lease","apiVersion":"coordination.k8s.io/v1",)"
         R"("metadata":{"name":"app","namespace":"ns","resourceVersion":")" + rv +
         R"(","annotations":{"resourceVersion":"1"}},"spec":{"holderIdentity":")" + holder +
         R"(","leaseDurationSeconds":15}}})";
}

}  // namespace

TEST(WatchPeekTest, ReadsTheVersionOfALeaseAnswer) {
  auto rv = kube::peek_lease_version(R"({"kind":"Lease","metadata":{"name":"app","resourceVersion":"77"}})",
                                     "application/json");
  ASSERT_TRUE(rv);
  EXPECT_EQ(*rv, "77");
  EXPECT_FALSE(kube::peek_lease_version(R"({"kind":"Status","code":409})", "application/json"));
  EXPECT_FALSE(kube::peek_lease_version("k8s", "application/vnd.kubernetes.protobuf"));
}

TEST(WatchPeekTest, ReadsTypeAndVersionOfAJsonLineWithoutDecodingIt) {
  const std::string line = lease_event("MODIFIED", "4711", "a");  // the peek points into it
  auto p = kube::peek_watch_event(line, kube::WireFormat::kJson);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, kube::WatchEvent::Type::kModified);
  EXPECT_EQ(p->resource_version, "4711");
  // What it cannot read is left to the full decode.
  for (std::string bad : {std::string("{}"), std::string(R"({"type":"MODIFIED"})"),
                          std::string(R"({"type":"NOPE","object":{"metadata":{"resourceVersion":"1"}}})"),
                          std::string(R"({"type":"MODIFIED","object":{"metadata":{"resourceVersion":"")"),
                          std::string(R"({"type":"ADDED","object":{"metadata":{"resourceVersion":"1)"),
                          lease_event("MODIFIED", "4711", "a").substr(0, 60)}) {
    EXPECT_FALSE(kube::peek_watch_event(bad, kube::WireFormat::kJson)) << bad;
  }
}

// Our own write, echoed by the watch: recognised by its resourceVersion,
// never handed back to the writer, still delivered to another subscriber of
// the Lease; an event we did not write is delivered to both.
TEST_F(LeaseWatchHubTest, AnEchoOfOurOwnWriteIsRecognisedAndNotHandedBack) {
  auto writer = std::make_shared<Seen>();
  auto other = std::make_shared<Seen>();
  uint64_t w = subscribe(writer);
  subscribe(other);
  allow_and_list();
  ASSERT_EQ(client_->streams.size(), 1u);
  client_->streams[0].on_open();
  rt_.run_ready();
  ASSERT_EQ(writer->objects, 1);
  ASSERT_EQ(other->objects, 1);
  // The writer's PUT is in flight; its echo comes before its answer (as it
  // often does) and is held, undecoded; the answer carried version 11.
  hub_->begin_write(w, "ns", "app");
  client_->streams[0].on_line(lease_event("MODIFIED", "11", "a"));
  rt_.run_ready();
  EXPECT_EQ(other->objects, 1) << "held until the answer";
  hub_->end_write(w, "ns", "app", "11");
  rt_.run_ready();
  EXPECT_EQ(hub_->echoes_recognised(), 1u);
  EXPECT_EQ(writer->objects, 1) << "our own write was handed back to us";
  EXPECT_EQ(other->objects, 2);
  // A subscriber that comes now gets the echoed object (kept undecoded until asked for).
  auto late = std::make_shared<Seen>();
  std::string late_holder;
  LeaseWatchSubscriber ls;
  ls.on_object = [late, &late_holder](const kube::Lease* l) {
    ++late->objects;
    if (l) late_holder = l->versioned.record.holder_identity + "@" + l->versioned.version;
  };
  ls.on_health = [](bool) {};
  ls.on_unsupported = [] {};
  uint64_t late_id = hub_->subscribe("ns", "app", std::move(ls));
  rt_.run_ready();
  EXPECT_EQ(late->objects, 1);
  EXPECT_EQ(late_holder, "a@11");
  hub_->unsubscribe(late_id);
  // Someone else's write, and the same version again (a replay): decoded and delivered.
  client_->streams[0].on_line(lease_event("MODIFIED", "12", "b"));
  client_->streams[0].on_line(lease_event("MODIFIED", "11", "a"));
  rt_.run_ready();
  EXPECT_EQ(hub_->echoes_recognised(), 1u);
  EXPECT_EQ(writer->objects, 3);
  EXPECT_EQ(other->objects, 4);
  // An echo that comes after the answer is recognised too.
  hub_->begin_write(w, "ns", "app");
  hub_->end_write(w, "ns", "app", "13");
  client_->streams[0].on_line(lease_event("MODIFIED", "13", "a"));
  rt_.run_ready();
  EXPECT_EQ(hub_->echoes_recognised(), 2u);
  EXPECT_EQ(writer->objects, 3);
  EXPECT_EQ(other->objects, 5);
  // A write that failed (a 409): what was held is someone else's, delivered to both, in order.
  hub_->begin_write(w, "ns", "app");
  client_->streams[0].on_line(lease_event("MODIFIED", "14", "b"));
  client_->streams[0].on_line(lease_event("DELETED", "15", "b"));
  rt_.run_ready();
  EXPECT_EQ(writer->objects, 3);
  hub_->end_write(w, "ns", "app", "");
  rt_.run_ready();
  EXPECT_EQ(writer->objects, 5);
  EXPECT_EQ(other->objects, 7);
  EXPECT_EQ(hub_->echoes_recognised(), 2u);
  // A write whose echo never came is forgotten at the next LIST.
  hub_->begin_write(w, "ns", "app");
  hub_->end_write(w, "ns", "app", "11");
  client_->streams[0].on_end(kube::HttpResponse{410, "", {}});
  rt_.run_ready();
  clock_.advance(std::chrono::seconds(2));
  rt_.run_ready();
  auto relist = client_->take();
  ASSERT_EQ(relist.method, "GET");
  relist.done(lease_list());
  rt_.run_ready();
  ASSERT_EQ(client_->streams.size(), 2u);
  client_->streams[1].on_line(lease_event("MODIFIED", "11", "a"));
  rt_.run_ready();
  EXPECT_EQ(hub_->echoes_recognised(), 2u) << "an expectation outlived the LIST";
}

// Every Lease the hub hands on says when its frame was read (on the
// client's thread), however much later the I/O thread gets to it, also when
// it was held while our write was in flight, or kept undecoded as our echo:
// a follower counts the holder's lease from that instant.
TEST_F(LeaseWatchHubTest, EachLeaseSaysWhenItsFrameWasRead) {
  auto writer = std::make_shared<Seen>();
  uint64_t w = subscribe(writer);
  std::vector<std::optional<Instant>> got;  // received_at of each Lease the other subscriber got
  LeaseWatchSubscriber other;
  other.on_object = [&got](const kube::Lease* l) {
    got.push_back(l ? l->versioned.received_at : std::nullopt);
  };
  other.on_health = [](bool) {};
  other.on_unsupported = [] {};
  hub_->subscribe("ns", "app", std::move(other));
  const Instant listed_at = clock_.now();
  allow_and_list(30ms);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], listed_at) << "the LIST's answer";
  ASSERT_EQ(client_->streams.size(), 1u);
  client_->streams[0].on_open();
  rt_.run_ready();
  // Feeds one event, and `then` 50 ms later, before the I/O thread runs:
  // the Lease handed on says it arrived when its frame was read.
  auto read_then = [&](const std::string& rv, const std::string& holder, const std::function<void()>& then) {
    const Instant read_at = clock_.now();
    const size_t before = got.size();
    client_->streams[0].on_line(lease_event("MODIFIED", rv, holder));
    clock_.advance(50ms);
    if (then) then();
    rt_.run_ready();
    ASSERT_EQ(got.size(), before + 1);
    EXPECT_EQ(got.back(), read_at);
  };
  read_then("11", "b", {});  // someone else's renewal
  // Read while our write was in flight, which then failed: news, as read.
  hub_->begin_write(w, "ns", "app");
  read_then("12", "c", [&] { hub_->end_write(w, "ns", "app", ""); });
  // Our own write's echo, read before its answer: kept undecoded, and
  // decoded for the other subscriber.
  hub_->begin_write(w, "ns", "app");
  read_then("13", "a", [&] { hub_->end_write(w, "ns", "app", "13"); });
  EXPECT_EQ(hub_->echoes_recognised(), 1u);
  // Our echo read after the write's answer.
  hub_->begin_write(w, "ns", "app");
  hub_->end_write(w, "ns", "app", "14");
  const Instant last_read = clock_.now();
  read_then("14", "a", {});
  EXPECT_EQ(hub_->echoes_recognised(), 2u);
  // A subscriber that comes later gets the cached Lease, read back then.
  clock_.advance(1s);
  std::optional<Instant> late;
  LeaseWatchSubscriber ls;
  ls.on_object = [&late](const kube::Lease* l) { late = l ? l->versioned.received_at : std::nullopt; };
  ls.on_health = [](bool) {};
  ls.on_unsupported = [] {};
  hub_->subscribe("ns", "app", std::move(ls));
  rt_.run_ready();
  EXPECT_EQ(late, last_read);
}

// The Lease lock's own watch (where the shared one is refused, or as here
// where the Runtime has none) says when each event's frame was read too.
TEST_F(LeaseWatchHubTest, TheLockOwnWatchSaysWhenItsFrameWasRead) {
  auto lock = open_kube_lease_lock(rt_, client_, "k8s://ns/app", "ns", "app");
  ASSERT_TRUE(lock.ok()) << lock.error().message();
  std::vector<std::optional<Instant>> got;
  auto on_change = [&got](const std::optional<Versioned>& v) {
    got.push_back(v ? v->received_at : std::nullopt);
  };
  ASSERT_TRUE((*lock)->watch(on_change, [](bool) {}));
  ASSERT_EQ(client_->streams.size(), 1u);
  EXPECT_NE(client_->streams[0].path.find("fieldSelector=metadata.name%3Dapp"), std::string::npos);
  const Instant t1 = clock_.now();
  client_->streams[0].on_line(lease_event("MODIFIED", "11", "b"));
  clock_.advance(200ms);
  rt_.run_ready();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], t1);
}

// A lock's own watch (both Kubernetes locks share it), backing off after
// streams that no HTTP answer ended, starts again at once when a request of
// the lock gets an answer, unless its retry is due within a second anyway;
// the retry it had armed then starts nothing. After streams the server
// ended with an answer (403) it keeps its backoff.
static void own_watch_starts_again_when_the_server_answers(SimulatedClock& clock, Runtime& rt, FakeClient& client,
                                                           Lock& lock) {
  ASSERT_TRUE(lock.watch([](const std::optional<Versioned>&) {}, [](bool) {}));
  ASSERT_EQ(client.streams.size(), 1u);
  auto answer_a_read = [&] {
    lock.get([](Result<Versioned>) {});
    auto get = client.take();
    ASSERT_EQ(get.method, "GET");
    get.done(kube::HttpResponse{404, R"({"kind":"Status","code":404,"reason":"NotFound"})", "application/json"});
    rt.run_ready();
  };
  // Ends the newest stream with `end`; `restart`: waits for the retry
  // (backoffs 0.5, 1, 2 and 4 s, each times 1 to 1.5).
  auto end_stream = [&](const Result<kube::HttpResponse>& end, bool restart) {
    const size_t open = client.streams.size();
    client.streams.back().on_end(end);
    rt.run_ready();
    if (!restart) return;
    clock.advance(10s);
    rt.run_ready();
    ASSERT_EQ(client.streams.size(), open + 1);
  };
  const Error down = Error::unavailable("connection refused");
  end_stream(down, false);  // its retry is due within 0.75 s
  answer_a_read();
  EXPECT_EQ(client.streams.size(), 1u) << "a retry due within a second was brought forward";
  clock.advance(10s);
  rt.run_ready();
  ASSERT_EQ(client.streams.size(), 2u);
  end_stream(down, true);
  end_stream(down, false);  // its retry is 2 to 3 s out
  ASSERT_EQ(client.streams.size(), 3u);
  answer_a_read();
  EXPECT_EQ(client.streams.size(), 4u) << "the watch waits out its backoff though the server answers";
  clock.advance(10s);
  rt.run_ready();
  EXPECT_EQ(client.streams.size(), 4u) << "the retry armed before started a second stream";
  const kube::HttpResponse refused{403, R"({"kind":"Status","code":403,"reason":"Forbidden"})", "application/json"};
  end_stream(refused, true);
  end_stream(refused, true);
  end_stream(refused, false);  // its retry is 2 to 3 s out
  ASSERT_EQ(client.streams.size(), 6u);
  answer_a_read();
  EXPECT_EQ(client.streams.size(), 6u) << "a watch the server refused came back on a lock answer";
  clock.advance(10s);
  rt.run_ready();
  EXPECT_EQ(client.streams.size(), 7u);
}

TEST_F(LeaseWatchHubTest, TheLeaseLockOwnWatchStartsAgainWhenTheServerAnswers) {
  auto lock = open_kube_lease_lock(rt_, client_, "k8s://ns/app", "ns", "app");
  ASSERT_TRUE(lock.ok()) << lock.error().message();
  own_watch_starts_again_when_the_server_answers(clock_, rt_, *client_, **lock);
}

TEST_F(LeaseWatchHubTest, TheConfigMapLockOwnWatchStartsAgainWhenTheServerAnswers) {
  auto lock = open_kube_annotation_lock(rt_, client_, "configmap://ns/app", kube::LegacyKind::kConfigMap, "ns",
                                        "app", nullptr);
  ASSERT_TRUE(lock.ok()) << lock.error().message();
  own_watch_starts_again_when_the_server_answers(clock_, rt_, *client_, **lock);
}

// The Lease lock tells the client which of its updates are renewals (the
// holder writing its own term again: same holder, same transitions), which
// the own transport may read a little late; an acquisition, a hand-off and a
// release are not.
TEST_F(LeaseWatchHubTest, TheLeaseLockSendsOnlyRenewalsAsRenewals) {
  auto lock = open_kube_lease_lock(rt_, client_, "k8s://ns/app", "ns", "app");
  ASSERT_TRUE(lock.ok()) << lock.error().message();
  std::optional<Versioned> read;
  (*lock)->get([&](Result<Versioned> v) { read = v.ok() ? std::optional<Versioned>(*v) : std::nullopt; });
  auto get = client_->take();
  ASSERT_EQ(get.method, "GET");
  EXPECT_EQ(get.media, kube::Media::kLease);
  get.done(kube::HttpResponse{200,
                              R"({"metadata":{"name":"app","namespace":"ns","resourceVersion":"9"},)"
                              R"("spec":{"holderIdentity":"a","leaseDurationSeconds":15,"leaseTransitions":3}})",
                              "application/json"});
  rt_.run_ready();
  ASSERT_TRUE(read);
  auto media_of = [&](LeaseRecord r) {
    (*lock)->update(read->version, r, [](Result<Versioned>) {});
    auto put = client_->take();
    EXPECT_EQ(put.method, "PUT");
    return put.media;
  };
  LeaseRecord renew = read->record;
  renew.renew_time = WallTime{} + std::chrono::seconds(100);
  EXPECT_EQ(media_of(renew), kube::Media::kLeaseRenewal);
  LeaseRecord acquire = renew;
  acquire.lease_transitions = 4;
  EXPECT_EQ(media_of(acquire), kube::Media::kLease) << "an acquisition by the same identity";
  LeaseRecord hand_off = acquire;
  hand_off.holder_identity = "b";
  EXPECT_EQ(media_of(hand_off), kube::Media::kLease);
  LeaseRecord release = read->record;
  release.holder_identity.clear();
  EXPECT_EQ(media_of(release), kube::Media::kLease);
}

}  // namespace
}  // namespace leasehold::backends
