// The shared per-namespace Lease watch; see lease_watch_hub.h.
#include "backends/lease_watch_hub.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>

#include "kube/client.h"
#include "kube/watch_peek.h"

namespace leasehold::backends {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class Hub final : public LeaseWatchHub, public std::enable_shared_from_this<Hub> {
 public:
  Hub(Runtime& rt, std::weak_ptr<kube::Client> client) : rt_(rt), client_(std::move(client)) {}

  ~Hub() override {
    auto c = client_.lock();
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [ns, n] : ns_) {
      if (c && n.stream) c->cancel(n.stream);
    }
  }

  uint64_t subscribe(const std::string& ns, const std::string& name, LeaseWatchSubscriber s) override {
    std::lock_guard<std::mutex> g(mu_);
    uint64_t id = ++next_id_;
    Ns& n = ns_[ns];
    n.subs[id] = Sub{name, std::make_shared<LeaseWatchSubscriber>(std::move(s))};
    n.by_name.emplace(name, id);
    auto sub = n.subs[id].s;
    if (n.refused) {
      rt_.post([sub] { sub->on_unsupported(); });
    } else if (n.listed) {
      // The cache holds the Lease as listed and watched since; health
      // follows once the stream is open (health() tells every subscriber).
      std::optional<kube::Lease> now;
      if (auto it = n.cache.find(name); it != n.cache.end()) {
        if (const kube::Lease* l = it->second.get()) now = *l;
      }
      rt_.post([sub, now, up = n.healthy] {
        if (now) sub->on_object(&*now);
        if (up) sub->on_health(true);
      });
    }
    if (!n.refused && !n.listing && !n.stream && !n.retry_armed) start_list(ns, n);
    return id;
  }

  void begin_write(uint64_t id, const std::string& ns, const std::string& name) override {
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end() || !it->second.subs.count(id)) return;
    it->second.writing[name].writers.insert(id);
  }

  void end_write(uint64_t id, const std::string& ns, const std::string& name, std::string_view rv) override {
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end()) return;
    Ns& n = it->second;
    auto w = n.writing.find(name);
    if (w == n.writing.end()) return;
    if (auto one = w->second.writers.find(id); one != w->second.writers.end()) w->second.writers.erase(one);
    if (!rv.empty()) w->second.answered.emplace_back(std::string(rv), id);
    if (!w->second.writers.empty()) return;
    // Every answer is in: each held event is our echo or is news.
    Ns::Writing done = std::move(w->second);
    n.writing.erase(w);
    std::set<std::string> matched;
    for (auto& h : done.held) {
      if (h.gen != n.gen) continue;  // of a stream since ended: a relist resyncs
      auto a = std::find_if(done.answered.begin(), done.answered.end(),
                            [&](const auto& x) { return x.first == h.rv; });
      if (a != done.answered.end() && h.echo_type) {
        matched.insert(a->first);
        recognised(n, name, a->second, std::move(h.frame), h.format, h.rv, h.received_at);
      } else {
        auto ev = kube::parse_watch_event(h.frame, h.format);
        apply_event(ns, n, ev, h.received_at);
      }
    }
    for (auto& [v, writer] : done.answered) {
      if (!matched.count(v)) expect(n, v, writer, name);  // its echo is still to come
    }
  }

  uint64_t echoes_recognised() const override {
    std::lock_guard<std::mutex> g(mu_);
    return echoes_recognised_;
  }

  void unsubscribe(uint64_t id) override {
    auto c = client_.lock();
    std::lock_guard<std::mutex> g(mu_);
    for (auto it = ns_.begin(); it != ns_.end(); ++it) {
      auto sub = it->second.subs.find(id);
      if (sub == it->second.subs.end()) continue;
      auto [first, last] = it->second.by_name.equal_range(sub->second.name);
      for (auto b = first; b != last; ++b) {
        if (b->second == id) {
          it->second.by_name.erase(b);
          break;
        }
      }
      it->second.subs.erase(sub);
      if (it->second.subs.empty()) {
        if (c && it->second.stream) c->cancel(it->second.stream);
        ns_.erase(it);  // a later subscriber starts afresh, with generations never used before
      }
      return;
    }
  }

  size_t streams() const override {
    std::lock_guard<std::mutex> g(mu_);
    size_t k = 0;
    for (auto& [ns, n] : ns_) k += n.stream != 0;
    return k;
  }

 private:
  struct Sub {
    std::string name;
    std::shared_ptr<LeaseWatchSubscriber> s;
  };
  // A Lease as last seen: decoded, or (our own write's echo) the frame not
  // decoded yet, decoded on first use.
  struct Cached {
    std::string version;
    std::optional<kube::Lease> lease;
    std::string frame;
    kube::WireFormat format = kube::WireFormat::kJson;
    std::optional<Instant> received_at;  // of the frame
    const kube::Lease* get() {
      if (!lease && !frame.empty()) {
        auto ev = kube::parse_watch_event(frame, format);
        if (ev && ev->lease) {
          lease = std::move(ev->lease);
          lease->versioned.received_at = received_at;
        }
        frame.clear();
      }
      return lease ? &*lease : nullptr;
    }
  };
  struct Ns {
    // This entry's current attempt (ask, list, watch, retry timer), from the
    // hub's one counter: a callback carrying another generation, of an older
    // attempt or of an erased entry of the same namespace, is ignored.
    uint64_t gen = 0;
    std::map<uint64_t, Sub> subs;
    // Lease name -> subscription ids: an event reaches its subscribers
    // without a walk over every lock of the namespace (1,000 Leases renewed
    // every 2 s are 500 events a second).
    std::multimap<std::string, uint64_t, std::less<>> by_name;
    std::map<std::string, Cached> cache;  // by name, as last seen
    std::string rv;
    uint64_t stream = 0;
    bool listing = false, refused = false, retry_armed = false;
    bool listed = false;   // cache holds a LIST's answer (and the watch's changes since)
    bool healthy = false;  // the watch stream is open (its 200 headers arrived)
    bool allowed = false;  // a SelfSubjectAccessReview said list and watch are allowed
    Duration backoff = kFirstBackoff;
    Instant retry_at{};                // when the armed retry fires
    bool unreachable = false;          // the attempt it follows got no HTTP answer
    std::optional<Instant> opened_at;  // of the stream now open
    // Writes of our subscribers, by the resourceVersion their answer
    // carried, until the watch echoes them (expect_echo); in the order
    // expected in echo_order (which may still name some already echoed), at
    // most kMaxEchoes.
    struct Echo {
      uint64_t writer = 0;  // subscription id
      std::string name;     // of the Lease written
    };
    std::unordered_map<std::string, Echo> echoes;
    std::deque<std::string> echo_order;
    // Leases with a write of a subscriber in flight (begin_write until its
    // end_write): the events of such a Lease read meanwhile are held,
    // undecoded and in order, until every answer is in; then each is our
    // echo (its version is an answer's) or is decoded and delivered as usual.
    struct Held {
      std::string frame, rv;
      kube::WireFormat format;
      bool echo_type = false;  // ADDED or MODIFIED
      uint64_t gen = 0;
      std::optional<Instant> received_at;
    };
    struct Writing {
      std::multiset<uint64_t> writers;
      std::vector<std::pair<std::string, uint64_t>> answered;  // rv, writer
      std::vector<Held> held;
    };
    std::map<std::string, Writing, std::less<>> writing;
  };
  static constexpr size_t kMaxEchoes = 4096;
  static constexpr Duration kFirstBackoff = 500ms;
  // A stream open this long ended as streams do (kube-apiserver ends every
  // watch after its timeout): the next starts with the first backoff.
  static constexpr Duration kStableStream = 10s;
  // A retry armed further out than this, after an attempt that reached no
  // server, is brought forward when a lock request of the namespace is
  // answered (server_answered).
  static constexpr Duration kPromptRetry = 1s;

  // Caller holds mu_.
  void expect(Ns& n, const std::string& rv, uint64_t writer, const std::string& name) {
    auto [e, fresh] = n.echoes.insert_or_assign(rv, Ns::Echo{writer, name});
    if (fresh) n.echo_order.push_back(e->first);
    while (n.echo_order.size() > kMaxEchoes) {
      n.echoes.erase(n.echo_order.front());
      n.echo_order.pop_front();
    }
  }

  // Caller holds mu_. Our write `rv` of `name` by `writer`, echoed: the cache
  // keeps the frame undecoded; subscribers other than the writer get it.
  void recognised(Ns& n, const std::string& name, uint64_t writer, std::string frame, kube::WireFormat format,
                  const std::string& rv, std::optional<Instant> received_at) {
    Cached& c = n.cache[name];
    c = Cached{rv, std::nullopt, std::move(frame), format, received_at};
    if (n.by_name.count(name) > 1) {
      if (const kube::Lease* l = c.get()) dispatch(n, name, *l, writer);
    }
    ++echoes_recognised_;
  }


  std::string collection(const std::string& ns) const {
    return "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases";
  }

  // Callers hold mu_. Delivers to the subscribers of `name` on the I/O thread.
  void dispatch(Ns& n, const std::string& name, const std::optional<kube::Lease>& obj, uint64_t except = 0) {
    auto [first, last] = n.by_name.equal_range(name);
    for (auto b = first; b != last; ++b) {
      if (b->second == except) continue;
      auto s = n.subs.at(b->second).s;
      rt_.post([s, obj] { s->on_object(obj ? &*obj : nullptr); });
    }
  }
  void health(Ns& n, bool up) {
    if (n.healthy == up) return;
    n.healthy = up;
    for (auto& [id, sub] : n.subs) {
      auto s = sub.s;
      rt_.post([s, up] { s->on_health(up); });
    }
  }

  // Callers hold mu_. First asks, once per namespace, whether we may list
  // and watch every Lease there (SelfSubjectAccessReview, which every
  // authenticated user may create), so a Role limited to one Lease name sees
  // no refused request from us: then each lock watches its own Lease.
  void start_list(const std::string& ns, Ns& n) {
    auto c = client_.lock();
    if (!c) return;
    n.listing = true;
    n.retry_armed = false;
    uint64_t gen = n.gen = ++gen_;
    if (!n.allowed) {
      ask(ns, gen, "list");
      return;
    }
    std::weak_ptr<Hub> w = weak_from_this();
    c->request("GET", collection(ns), "", 10s, [w, ns, gen](Result<kube::HttpResponse> r) {
      if (auto h = w.lock()) h->listed(ns, gen, r);
    });
  }

  // Callers hold mu_.
  void ask(const std::string& ns, uint64_t gen, const std::string& verb) {
    auto c = client_.lock();
    if (!c) return;
    json review = {{"apiVersion", "authorization.k8s.io/v1"},
                   {"kind", "SelfSubjectAccessReview"},
                   {"spec",
                    {{"resourceAttributes",
                      {{"namespace", ns}, {"verb", verb}, {"group", "coordination.k8s.io"}, {"resource", "leases"}}}}}};
    std::weak_ptr<Hub> w = weak_from_this();
    c->request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review.dump(), 10s,
               [w, ns, gen, verb](Result<kube::HttpResponse> r) {
                 if (auto h = w.lock()) h->answered(ns, gen, verb, r);
               });
  }

  void answered(const std::string& ns, uint64_t gen, const std::string& verb, const Result<kube::HttpResponse>& r) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end() || it->second.gen != gen) return;
    Ns& n = it->second;
    if (!r || (r->status != 200 && r->status != 201)) {
      if (r && (r->status == 401 || r->status == 403 || r->status == 404)) {
        refuse(ns, n, "cannot ask whether we may list and watch every Lease");
      } else {
        n.listing = false;
        retry(ns, n, !r);  // transient: ask again later
      }
      return;
    }
    json j = json::parse(r->body, nullptr, false);
    bool allowed = j.is_object() && j.value("status", json::object()).value("allowed", false);
    if (!allowed) {
      refuse(ns, n, "no " + verb + " on every Lease of the namespace (RBAC)");
    } else if (verb == "list") {
      ask(ns, gen, "watch");
    } else {
      n.allowed = true;
      n.listing = false;
      start_list(ns, n);
    }
  }

  // Callers hold mu_.
  void refuse(const std::string& ns, Ns& n, const std::string& why) {
    n.listing = false;
    n.refused = true;
    rt_.log(LogLevel::kInfo, "leases " + ns, why + ": each lock watches its own Lease");
    for (auto& [id, sub] : n.subs) {
      auto s = sub.s;
      rt_.post([s] { s->on_unsupported(); });
    }
  }

  void listed(const std::string& ns, uint64_t gen, const Result<kube::HttpResponse>& r) {
    const Instant received_at = rt_.clock().now();
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end() || it->second.gen != gen) return;
    Ns& n = it->second;
    n.listing = false;
    if (r && r->status == 403) {
      refuse(ns, n, "list refused (RBAC)");
      return;
    }
    json list;
    if (r && r->status == 200) list = json::parse(r->body, nullptr, false);
    if (!r || r->status != 200 || !list.is_object() || !list.contains("items") || !list["items"].is_array()) {
      rt_.log(LogLevel::kWarning, "leases " + ns,
              "list failed: " + (r ? kube::error_from_response(r->status, r->body,
                                                               {"list", "coordination.k8s.io", "leases", ns, ""})
                                         .to_string()
                                   : r.error().to_string()));
      retry(ns, n, !r);
      return;
    }
    n.rv = list.value("metadata", json::object()).value("resourceVersion", "");
    n.echoes.clear();  // the list is newer than any write still awaiting its echo
    n.echo_order.clear();
    std::map<std::string, kube::Lease> fresh;
    for (json& item : list["items"]) {
      auto l = kube::decode_lease_object(std::move(item));
      if (!l) continue;
      l->versioned.received_at = received_at;
      std::string name = l->name;
      fresh.emplace(std::move(name), std::move(*l));
    }
    for (auto& [name, lease] : fresh) {
      auto old = n.cache.find(name);
      if (old == n.cache.end() || old->second.version != lease.versioned.version) dispatch(n, name, lease);
    }
    for (auto& [name, lease] : n.cache) {
      if (!fresh.count(name)) dispatch(n, name, std::nullopt);  // deleted while we were not watching
    }
    n.cache.clear();
    for (auto& [name, lease] : fresh) {
      std::string v = lease.versioned.version;
      n.cache.emplace(name, Cached{std::move(v), std::move(lease), {}, kube::WireFormat::kJson, received_at});
    }
    n.listed = true;
    n.backoff = kFirstBackoff;
    start_watch(ns, n);
  }

  void start_watch(const std::string& ns, Ns& n) {
    auto c = client_.lock();
    if (!c) return;
    uint64_t gen = n.gen = ++gen_;
    std::weak_ptr<Hub> w = weak_from_this();
    std::string path = collection(ns) + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + n.rv;
    n.stream = c->watch_leases(
        path,
        [w, ns, gen](std::string_view frame, kube::WireFormat format) {  // the client's thread: parse, then lock
          auto h = w.lock();
          if (!h) return;
          const Instant received_at = h->rt_.clock().now();
          if (h->echo(ns, gen, frame, format, received_at)) return;
          auto ev = kube::parse_watch_event(frame, format);
          h->event(ns, gen, ev, received_at);
        },
        [w, ns, gen](Result<kube::HttpResponse> end) {
          if (auto h = w.lock()) h->ended(ns, gen, end);
        },
        kube::Priority::kLease,
        [w, ns, gen] {
          if (auto h = w.lock()) h->opened(ns, gen);
        });
  }

  // The stream's 200 headers arrived: from here on every change after the
  // listed version reaches us (a gap comes back as 410).
  void opened(const std::string& ns, uint64_t gen) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end() || it->second.gen != gen) return;
    it->second.opened_at = rt_.clock().now();
    health(it->second, true);
  }

  void server_answered(const std::string& ns) override {
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end()) return;
    Ns& n = it->second;
    // Only after attempts that reached no server: one that answers the lock
    // but refuses the watch (a 403, a 500) keeps its backoff, or every lock
    // answer would bring a refused watch back.
    if (!n.retry_armed || n.refused || !n.unreachable || n.retry_at <= rt_.clock().now() + kPromptRetry) return;
    // kube-apiserver answers again (after an outage, most often): the watch
    // starts now rather than at the end of a backoff grown meanwhile.
    n.backoff = kFirstBackoff;
    arm_retry(ns, n, Duration::zero());
  }

  // The client's thread: an event that carries the resourceVersion a
  // subscriber's own write returned is that write, echoed. It is recognised
  // from its type and version alone (peek_watch_event), not decoded: the
  // cache keeps the frame (decoded only if someone asks for it), the writer
  // hears nothing (it holds that version already), and any other subscriber
  // of the Lease gets the object as usual (decoded for it).
  bool echo(const std::string& ns, uint64_t gen, std::string_view frame, kube::WireFormat format,
            Instant received_at) {
    auto peek = kube::peek_watch_event(frame, format);
    if (!peek) return false;
    using T = kube::WatchEvent::Type;
    const bool echo_type = peek->type == T::kModified || peek->type == T::kAdded;
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end() || it->second.gen != gen) return false;
    Ns& n = it->second;
    std::string rv(peek->resource_version);
    if (!peek->name.empty()) {
      if (auto w = n.writing.find(peek->name); w != n.writing.end()) {
        // Our write of this Lease is in flight: hold the event (in order)
        // until its answer tells whether it is that write.
        n.rv = rv;
        w->second.held.push_back(Ns::Held{std::string(frame), rv, format, echo_type, gen, received_at});
        return true;
      }
    }
    if (!echo_type || n.echoes.empty()) return false;
    auto e = n.echoes.find(rv);
    if (e == n.echoes.end()) return false;
    Ns::Echo echo = std::move(e->second);
    n.echoes.erase(e);
    n.rv = rv;
    recognised(n, echo.name, echo.writer, std::string(frame), format, rv, received_at);
    return true;
  }

  void event(const std::string& ns, uint64_t gen, const Result<kube::WatchEvent>& ev, Instant received_at) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end() || it->second.gen != gen) return;
    apply_event(ns, it->second, ev, received_at);
  }

  // Caller holds mu_. `received_at`: when the event's frame was read.
  void apply_event(const std::string& ns, Ns& n, const Result<kube::WatchEvent>& ev,
                   std::optional<Instant> received_at) {
    if (!ev) {
      rt_.log(LogLevel::kWarning, "leases " + ns, "watch: " + ev.error().message());
      return;
    }
    using T = kube::WatchEvent::Type;
    if (ev->type == T::kError) {
      n.rv.clear();  // 410 Gone or worse: list again when the stream ends
      return;
    }
    if (!ev->resource_version.empty()) n.rv = ev->resource_version;
    if (ev->type == T::kBookmark || !ev->lease) return;
    const std::string& name = ev->lease->name;
    if (ev->type == T::kDeleted) {
      n.cache.erase(name);
      dispatch(n, name, std::nullopt);
    } else {
      kube::Lease lease = *ev->lease;
      lease.versioned.received_at = received_at;
      dispatch(n, name, lease);
      n.cache[name] = Cached{lease.versioned.version, std::move(lease), {}, kube::WireFormat::kJson, received_at};
    }
  }

  void ended(const std::string& ns, uint64_t gen, const Result<kube::HttpResponse>& end) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = ns_.find(ns);
    if (it == ns_.end() || it->second.gen != gen) return;
    Ns& n = it->second;
    n.stream = 0;
    if (n.opened_at && rt_.clock().now() - *n.opened_at >= kStableStream) n.backoff = kFirstBackoff;
    n.opened_at.reset();
    health(n, false);
    if (end && end->status == 410) n.rv.clear();
    if (end && end->status != 200 && end->status != 410) {
      rt_.log(LogLevel::kWarning, "leases " + ns,
              "watch: " + kube::error_from_response(end->status, end->body,
                                                    {"watch", "coordination.k8s.io", "leases", ns, ""})
                              .to_string());
    }
    retry(ns, n, !end);
  }

  // Caller holds mu_. `unreachable`: the attempt got no HTTP answer at all.
  void retry(const std::string& ns, Ns& n, bool unreachable) {
    n.unreachable = unreachable;
    std::uniform_real_distribution<double> jitter(1.0, 1.5);
    auto delay = std::chrono::duration_cast<Duration>(n.backoff * jitter(rng_));
    n.backoff = std::min<Duration>(n.backoff * 2, 30s);
    arm_retry(ns, n, delay);
  }

  // Caller holds mu_. The next attempt after `delay`; one armed before is
  // void from here (its generation is old).
  void arm_retry(const std::string& ns, Ns& n, Duration delay) {
    n.retry_armed = true;
    n.retry_at = rt_.clock().now() + delay;
    uint64_t gen = n.gen = ++gen_;
    std::weak_ptr<Hub> w = weak_from_this();
    rt_.post([w, ns, gen] {
      auto h = w.lock();
      if (!h) return;
      std::lock_guard<std::mutex> g(h->mu_);
      auto it = h->ns_.find(ns);
      if (it == h->ns_.end() || it->second.gen != gen) return;
      it->second.retry_armed = false;
      if (it->second.rv.empty()) {
        h->start_list(ns, it->second);
      } else {
        h->start_watch(ns, it->second);
      }
    }, delay);
  }

  Runtime& rt_;
  std::weak_ptr<kube::Client> client_;
  mutable std::mutex mu_;
  std::map<std::string, Ns> ns_;  // GUARDED_BY(mu_)
  uint64_t next_id_ = 0;           // GUARDED_BY(mu_)
  uint64_t gen_ = 0;               // GUARDED_BY(mu_): generations of every entry, never reused
  uint64_t echoes_recognised_ = 0;  // GUARDED_BY(mu_)
  std::mt19937_64 rng_{std::random_device{}()};  // GUARDED_BY(mu_)
};

}  // namespace

std::shared_ptr<LeaseWatchHub> LeaseWatchHub::create(Runtime& rt, std::weak_ptr<kube::Client> client) {
  return std::make_shared<Hub>(rt, std::move(client));
}

}  // namespace leasehold::backends
