// The etcd driver: binds one etcd::ElectionMachine to the Runtime's shared
// session (SessionHub), the transport, the I/O thread and the term threads.
//
// Every machine event runs on the Runtime's I/O thread (step()); the actions
// it returns become gateway calls (each with a timeout of renew_deadline /
// 2), deletion watches, term threads and notifications. A status snapshot is
// published under mu after every step for the thread-safe getters. The
// elector's view of the leader (leader(), on_new_leader) comes from the lock
// handle's watch of PREFIX/ (etcd_lock.h).
#include <condition_variable>
#include <map>
#include <mutex>

#include "core/elector_impl.h"
#include "core/term_runner.h"
#include "etcd/etcd_lock.h"

namespace leasehold::etcd {
namespace {

using election::Action;
using Phase = ElectionMachine::Phase;

std::string_view phase_name(Phase p) {
  switch (p) {
    case Phase::kIdle: return "idle";
    case Phase::kNoSession:
    case Phase::kCreating:
    case Phase::kQueued:
    case Phase::kConfirming: return "following";
    case Phase::kLeading: return "leading";
    case Phase::kStopping:
    case Phase::kReleasing: return "stopping";
    case Phase::kFinished: break;
  }
  return "stopped";
}

struct EtcdDriver final : Elector::Impl, SessionHub::Listener, std::enable_shared_from_this<EtcdDriver> {
  EtcdDriver(Runtime& r, ElectorConfig c, std::shared_ptr<ElectionLock> l)
      : rt(r),
        cfg(std::move(c)),
        lock(std::move(l)),
        hub(lock->hub()),
        prefix(lock->prefix()),
        em(prefix, cfg.identity, cfg.recampaign),
        runner(cfg.callbacks, runner_hooks()) {
    if (cfg.name.empty()) cfg.name = cfg.lock;
  }

  ~EtcdDriver() override {
    if (!left) hub->unreserve(prefix);  // a driver that finished gave its claim back then
  }

  Runtime& rt;
  ElectorConfig cfg;
  std::shared_ptr<ElectionLock> lock;
  std::shared_ptr<SessionHub> hub;
  std::string prefix;

  // ---- I/O thread only ----
  ElectionMachine em;
  bool joined = false;
  bool left = false;
  uint64_t timer = 0;
  std::optional<Instant> armed;
  std::map<uint64_t, uint64_t> watches;  // machine id -> transport stream id
  Instant renewed_until{};                // the term deadline on_renewed last reported

  // ---- shared, under mu ----
  mutable std::mutex mu;
  std::condition_variable cv;
  Phase phase = Phase::kIdle;
  Instant deadline{};
  Term term_;
  std::string leader_;
  int64_t leader_revision = -1;
  ElectorStatus counters;  // only its counters: renewals, failed_requests, ...
  bool finished = false;

  core::TermRunner runner;

  core::TermRunner::Hooks runner_hooks() {
    return {
        .in_term =
            [this] {
              std::lock_guard<std::mutex> g(mu);
              return rt.clock().now() < deadline;
            },
        .step_down = [this] { on_io([](EtcdDriver& s) { s.do_resign(); }); },
        .work_returned =
            [this] {
              on_io([](EtcdDriver& s) {
                s.step([](ElectionMachine& m, Instant now, std::vector<Action>& out) { m.on_work_returned(now, out); });
              });
            },
        .log = [this](LogLevel level, std::string_view msg) { log(level, msg); },
    };
  }

  void log(LogLevel level, std::string_view msg) const { rt.log(level, cfg.name, msg); }

  template <class F>
  void on_io(F f) {
    rt.post([self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
  }

  // Posts a transport completion to the I/O thread (dropped once the Runtime
  // is being destroyed).
  template <class F>
  void from_transport(F f) {
    hub->post([self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
  }

  template <class F>
  void step(F event) {
    std::vector<Action> actions;
    event(em, rt.clock().now(), actions);
    for (Action& a : actions) apply(a);
    prune_watches();
    rearm();
    publish();
    renewed();
  }

  // on_renewed whenever the term's deadline moved forward: a keepalive that
  // landed, or the read that confirmed our key after a broken watch (a
  // keepalive that came while the key was unconfirmed extends nothing). The
  // sidecar's watchdog follows these.
  void renewed() {
    if (em.phase() != Phase::kLeading || em.deadline() <= renewed_until) return;
    renewed_until = em.deadline();
    if (cfg.callbacks.on_renewed) {
      notify_user("on_renewed",
                  [cb = cfg.callbacks.on_renewed, t = term_, at = renewed_until - cfg.renew_deadline] { cb(t, at); });
    }
  }

  void do_resign() {
    step([this](ElectionMachine& m, Instant now, std::vector<Action>& out) {
      if (cfg.recampaign) {
        m.resign(now, out);
      } else {
        m.stop(now, out);
      }
    });
  }

  template <class F>
  void notify_user(const char* what, F f) {
    core::notify_user(rt, cfg.name, what, std::move(f));
  }

  // ---- session events (SessionHub::Listener; I/O thread) ----

  void on_session(int64_t lease, Instant dl) override {
    log(LogLevel::kInfo, "session lease " + lease_hex(lease) + " granted");
    step([&](ElectionMachine& m, Instant, std::vector<Action>& out) { m.on_session(lease, dl, out); });
  }
  // A keepalive of the session is this election's renewal: counted, and its
  // round trip is the renew latency.
  void on_session_extended(int64_t lease, Instant dl, Duration round_trip) override {
    {
      std::lock_guard<std::mutex> g(mu);
      ++counters.renewals;
      counters.renew_latency.add(round_trip);
    }
    step([&](ElectionMachine& m, Instant, std::vector<Action>&) { m.on_session_extended(lease, dl); });
  }
  void on_session_lost(int64_t lease, const std::string& why) override {
    log(LogLevel::kWarning, "session lease " + lease_hex(lease) + " lost: " + why);
    {
      std::lock_guard<std::mutex> g(mu);
      ++counters.failed_renewals[static_cast<size_t>(Code::kUnavailable)];
    }
    step([&](ElectionMachine& m, Instant, std::vector<Action>& out) { m.on_session_lost(lease, why, out); });
  }

  // ---- actions ----

  template <class T, class Decode, class Feed>
  void call(uint64_t id, const char* path, std::string body, Decode decode, Feed feed) {
    std::weak_ptr<EtcdDriver> weak = weak_from_this();
    hub->transport().call(path, std::move(body), cfg.renew_deadline / 2,
                          [weak, id, decode, feed](Result<std::string> r) {
                            Result<T> v = r ? decode(*r) : Result<T>(r.error());
                            auto self = weak.lock();
                            if (!self) return;
                            self->from_transport([id, feed, v = std::move(v)](EtcdDriver& s) {
                              if (!v.ok()) s.failed(v.error());
                              s.step([&](ElectionMachine& m, Instant now, std::vector<Action>& out) {
                                feed(m, now, id, v, out);
                              });
                            });
                          });
  }

  void failed(const Error& e) {
    {
      std::lock_guard<std::mutex> g(mu);
      ++counters.failed_requests;
    }
    log(LogLevel::kWarning, e.message());
  }

  void apply(Action& a) {
    if (auto* c = std::get_if<election::Create>(&a)) {
      TxnRequest t;
      t.compare.push_back(Compare::create_revision(c->key, 0));
      t.success.push_back(PutRequest{.key = c->key, .value = c->value, .lease = c->lease});
      t.failure.push_back(RangeRequest{.key = c->key});
      return call<CreateAnswer>(
          c->id, "/v3/kv/txn", encode_txn(t),
          [value = c->value, lease = c->lease](const std::string& body) -> Result<CreateAnswer> {
            auto r = decode_txn(body);
            if (!r) return r.error();
            if (r->succeeded) return CreateAnswer{true, r->header.revision, value, lease};
            const RangeResponse* rr = r->responses.empty() ? nullptr : std::get_if<RangeResponse>(&r->responses[0]);
            if (!rr || rr->kvs.empty()) return Error::unavailable("etcd: the create of our key neither put nor found it");
            return CreateAnswer{false, rr->kvs[0].create_revision, rr->kvs[0].value, rr->kvs[0].lease};
          },
          [](ElectionMachine& m, Instant now, uint64_t id, const Result<CreateAnswer>& v, std::vector<Action>& out) {
            m.on_create(now, id, v, out);
          });
    }
    if (auto* f = std::get_if<election::FindOlder>(&a)) {
      // No compare: the success branch always runs, and both ranges read
      // one revision.
      TxnRequest t;
      t.success.push_back(RangeRequest{.key = prefix + "/", .range_end = prefix_range_end(prefix + "/"), .limit = 1,
                                       .sort_order = SortOrder::kDescend, .sort_target = SortTarget::kCreate,
                                       .max_create_revision = f->below - 1});
      t.success.push_back(RangeRequest{.key = f->own});
      return call<OlderAnswer>(
          f->id, "/v3/kv/txn", encode_txn(t),
          [](const std::string& body) -> Result<OlderAnswer> {
            auto r = decode_txn(body);
            if (!r) return r.error();
            const RangeResponse* older =
                r->responses.size() == 2 ? std::get_if<RangeResponse>(&r->responses[0]) : nullptr;
            const RangeResponse* own = older ? std::get_if<RangeResponse>(&r->responses[1]) : nullptr;
            if (!r->succeeded || !own) return Error::internal("etcd: the Txn of two ranges answered something else");
            OlderAnswer ans;
            ans.header_revision = r->header.revision;
            if (!older->kvs.empty()) ans.older = older->kvs[0];
            if (!own->kvs.empty()) ans.own = own->kvs[0];
            return ans;
          },
          [](ElectionMachine& m, Instant now, uint64_t id, const Result<OlderAnswer>& v, std::vector<Action>& out) {
            m.on_older(now, id, v, out);
          });
    }
    if (auto* r = std::get_if<election::ReadOwn>(&a)) {
      return call<OwnAnswer>(
          r->id, "/v3/kv/range", encode_range(RangeRequest{.key = r->key}),
          [](const std::string& body) -> Result<OwnAnswer> {
            auto rr = decode_range(body);
            if (!rr) return rr.error();
            OwnAnswer ans;
            ans.header_revision = rr->header.revision;
            if (!rr->kvs.empty()) ans.kv = rr->kvs[0];
            return ans;
          },
          [](ElectionMachine& m, Instant now, uint64_t id, const Result<OwnAnswer>& v, std::vector<Action>& out) {
            m.on_own(now, id, v, out);
          });
    }
    if (auto* d = std::get_if<election::DeleteOwn>(&a)) {
      auto feed = [](ElectionMachine& m, Instant now, uint64_t id, const Result<bool>& v, std::vector<Action>& out) {
        m.on_deleted_own(now, id, v, out);
      };
      if (d->revision == 0) {
        return call<bool>(
            d->id, "/v3/kv/deleterange", encode_delete_range(DeleteRangeRequest{.key = d->key}),
            [](const std::string& body) -> Result<bool> {
              auto r = decode_delete_range(body);
              if (!r) return r.error();
              return r->deleted > 0;
            },
            feed);
      }
      TxnRequest t;
      t.compare.push_back(Compare::create_revision(d->key, d->revision));
      t.success.push_back(DeleteRangeRequest{.key = d->key});
      return call<bool>(
          d->id, "/v3/kv/txn", encode_txn(t),
          [](const std::string& body) -> Result<bool> {
            auto r = decode_txn(body);
            if (!r) return r.error();
            return r->succeeded;
          },
          feed);
    }
    if (auto* w = std::get_if<election::WatchDeletion>(&a)) return watch_deletion(*w);
    if (auto* s = std::get_if<election::StartLeading>(&a)) {
      log(LogLevel::kInfo, "started leading, term " + s->term.to_string() + " (key " + em.own_key() + ")");
      {
        std::lock_guard<std::mutex> g(mu);
        ++counters.terms_started;
      }
      publish();  // is_leader() and term() are true before the work starts
      renewed_until = em.deadline();  // the start is not a renewal (ElectorStatus::renewed_at says when)
      runner.start(s->term, shared_from_this());
      return;
    }
    if (auto* s = std::get_if<election::StopLeading>(&a)) {
      if (runner.stopping()) return;
      log(LogLevel::kInfo, "stopping the work of term " + term_.to_string() + ": " + s->why);
      publish();  // is_leader() is false before the work is told to stop
      runner.stop(term_, shared_from_this());
      return;
    }
    if (std::holds_alternative<election::Finished>(a)) {
      leave();
      log(LogLevel::kInfo, "stopped");
    }
  }

  void leave() {
    if (left) return;
    left = true;
    if (joined) hub->leave(this, prefix);
    hub->unreserve(prefix);
    for (auto& [id, stream] : watches) hub->transport().cancel(stream);
    watches.clear();
  }

  void watch_deletion(const election::WatchDeletion& w) {
    WatchCreateRequest req{.key = w.key, .start_revision = w.from_revision, .no_put = true};
    std::weak_ptr<EtcdDriver> weak = weak_from_this();
    uint64_t id = w.id;
    std::string key = w.key;
    // Reports once: the deletion, or why the watch ended.
    auto report = [weak, id](Result<int64_t> r) {
      auto self = weak.lock();
      if (!self) return;
      self->from_transport([id, r = std::move(r)](EtcdDriver& s) {
        auto it = s.watches.find(id);
        if (it == s.watches.end()) return;  // reported already, or no longer wanted
        s.hub->transport().cancel(it->second);
        s.watches.erase(it);
        if (!r) s.failed(r.error());
        s.step([&](ElectionMachine& m, Instant now, std::vector<Action>& out) { m.on_deletion(now, id, r, out); });
      });
    };
    uint64_t stream = hub->transport().watch(
        encode_watch_create(req),
        [report, key](std::string_view line) {
          auto item = decode_watch_line(line);
          if (!item) return report(item.error());
          if (auto* e = std::get_if<GatewayError>(&*item)) return report(e->to_error());
          const auto& resp = std::get<WatchResponse>(*item);
          if (auto e = resp.cancel_error()) return report(e->to_error());
          if (resp.canceled) return report(Error::unavailable("etcd watch of " + key + " canceled"));
          for (const auto& ev : resp.events) {
            if (ev.type == Event::Type::kDelete && ev.kv.key == key) return report(ev.kv.mod_revision);
          }
        },
        [report](Error e) { report(std::move(e)); });
    watches[id] = stream;
  }

  // Ends the watches the machine no longer waits for.
  void prune_watches() {
    for (auto it = watches.begin(); it != watches.end();) {
      if (it->first == em.in_flight() || it->first == em.own_watch()) {
        ++it;
        continue;
      }
      hub->transport().cancel(it->second);
      it = watches.erase(it);
    }
  }

  void rearm() {
    auto next = em.next_wakeup();
    if (next == armed) return;
    armed = next;
    if (timer) rt.cancel_timer(std::exchange(timer, 0));
    if (!next) return;
    timer = rt.post_timer(*next, [weak = weak_from_this()] {
      auto s = weak.lock();
      if (!s) return;
      s->timer = 0;
      s->armed.reset();
      s->step([](ElectionMachine& m, Instant now, std::vector<Action>& out) { m.on_tick(now, out); });
    });
  }

  void publish() {
    std::lock_guard<std::mutex> g(mu);
    phase = em.phase();
    deadline = em.deadline();
    if (phase == Phase::kLeading) term_ = Term{em.own_revision(), cfg.identity};
    if (phase == Phase::kFinished) finished = true;
    cv.notify_all();
  }

  // The leader as the lock's watch of PREFIX/ reports it.
  void on_leader(const std::optional<Versioned>& v) {
    std::string holder = v ? v->record.holder_identity : "";
    bool changed = false;
    {
      std::lock_guard<std::mutex> g(mu);
      leader_revision = v ? std::stoll(v->version) : -1;
      changed = holder != leader_ && !holder.empty();
      leader_ = holder;
      if (changed) ++counters.leader_changes;
    }
    if (changed) {
      log(LogLevel::kInfo, "leader is now " + holder);
      if (cfg.callbacks.on_new_leader) {
        notify_user("on_new_leader", [cb = cfg.callbacks.on_new_leader, holder] { cb(holder); });
      }
    }
  }

  // ---- Elector::Impl ----

  void start() override {
    on_io([](EtcdDriver& s) {
      if (s.joined || s.left) return;
      s.joined = true;
      std::weak_ptr<EtcdDriver> weak = s.weak_from_this();
      s.lock->set_request_timeout(s.cfg.renew_deadline / 2);
      s.lock->watch(
          [weak](const std::optional<Versioned>& v) {
            if (auto d = weak.lock()) d->on_leader(v);
          },
          [](bool) {});
      s.step([&s](ElectionMachine& m, Instant now, std::vector<Action>& out) {
        m.start(s.hub->lease(), s.hub->deadline(), out);
        (void)now;
      });
      s.hub->join(&s, s.prefix);
    });
  }

  void stop() override {
    on_io([](EtcdDriver& s) {
      s.step([](ElectionMachine& m, Instant now, std::vector<Action>& out) { m.stop(now, out); });
    });
  }

  void resign() override { on_io([](EtcdDriver& s) { s.do_resign(); }); }

  Result<void> handoff(const std::string& target) override {
    return Error::invalid(cfg.name + ": handoff to " + target +
                          " is not possible on etcd: the order is the keys' creation order, which no client can "
                          "change (docs/etcd.md); resign() hands over to the next in line");
  }

  void wait() override { core::wait_finished(rt, mu, cv, finished, runner); }

  bool is_leader() const override {
    Instant now = rt.clock().now();
    std::lock_guard<std::mutex> g(mu);
    return phase == Phase::kLeading && now < deadline;
  }

  std::string leader() const override {
    std::lock_guard<std::mutex> g(mu);
    return phase == Phase::kLeading ? cfg.identity : leader_;
  }

  std::optional<Term> term() const override {
    std::lock_guard<std::mutex> g(mu);
    if (phase != Phase::kLeading) return std::nullopt;
    return term_;
  }

  ElectorStatus status() const override {
    Instant now = rt.clock().now();
    std::lock_guard<std::mutex> g(mu);
    ElectorStatus s = counters;
    s.phase = std::string(phase_name(phase));
    s.leading = phase == Phase::kLeading && now < deadline;
    s.leader = phase == Phase::kLeading ? cfg.identity : leader_;
    if (phase == Phase::kLeading) {
      s.term = term_;
      s.time_left = deadline - now;
      s.lease_left = std::max(Duration::zero(), deadline - cfg.renew_deadline + cfg.lease_duration - now);
      s.renewed_at = deadline - cfg.renew_deadline;
    }
    s.lease_transitions = phase == Phase::kLeading ? term_.transitions : leader_revision;
    return s;
  }

  const std::string& name() const override { return cfg.name; }
};

}  // namespace

Result<std::shared_ptr<Elector::Impl>> make_etcd_elector(Runtime& rt, ElectorConfig config,
                                                         std::shared_ptr<ElectionLock> lock) {
  if (config.coordinated.enabled) {
    return Error::invalid("coordinated election (LeaseCandidate) is for k8s:// Leases, not " + config.lock);
  }
  if (!config.release_on_cancel) {
    return Error::invalid("release_on_cancel=false is not possible on " + config.lock +
                          ": the candidate's key goes with the process's session lease, which is revoked when its "
                          "last etcd election stops");
  }
  if (config.lease_duration < std::chrono::seconds(2)) {
    return Error::invalid("lease_duration: an etcd session lease needs at least 2s, got " +
                          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(config.lease_duration)
                                             .count()) + "ms");
  }
  if (auto r = lock->hub()->reserve(lock->prefix(), session_config(config)); !r) return r.error();
  return std::shared_ptr<Elector::Impl>(std::make_shared<EtcdDriver>(rt, std::move(config), std::move(lock)));
}

}  // namespace leasehold::etcd
