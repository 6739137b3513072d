// The etcd:// lock handle, its URL and the shared session (etcd_lock.h).
#include "etcd/etcd_lock.h"

#include <algorithm>
#include <type_traits>
#include <atomic>
#include <charconv>
#include <climits>

#include "core/runtime_access.h"
#include "kube/config.h"

namespace leasehold::etcd {

// ---- the URL ----------------------------------------------------------------

Result<LockUrl> parse_lock_url(std::string_view url) {
  const std::string shown = kube::redact_url(std::string(url));
  auto bad = [&](const std::string& why) {
    return Error::invalid("lock URL \"" + shown + "\": " + why +
                          " (want etcd://HOST:PORT[,HOST:PORT...]/PREFIX or etcds://...)");
  };
  LockUrl out;
  std::string_view rest;
  if (url.starts_with("etcd://")) {
    rest = url.substr(7);
  } else if (url.starts_with("etcds://")) {
    rest = url.substr(8);
    out.tls = true;
  } else {
    return bad("not an etcd:// or etcds:// URL");
  }
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return bad("no PREFIX after the endpoints");
  std::string_view hosts = rest.substr(0, slash);
  if (hosts.find('@') != std::string_view::npos) {
    return bad("a user or password in the URL is not supported (it would show in logs and process lists): use "
               "--etcd-user and --etcd-password-file");
  }
  out.prefix = std::string(rest.substr(slash));
  if (out.prefix.size() < 2) return bad("empty PREFIX");
  if (out.prefix.back() == '/') return bad("PREFIX \"" + out.prefix + "\" ends with '/' (keys would be PREFIX//ID)");
  if (hosts.empty()) return bad("no endpoints");
  size_t start = 0;
  while (start <= hosts.size()) {
    size_t comma = hosts.find(',', start);
    std::string_view hp = hosts.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    auto colon = hp.rfind(':');
    bool bracketed_without_port = !hp.empty() && hp.back() == ']';
    if (hp.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == hp.size() ||
        bracketed_without_port) {
      return bad("endpoint \"" + std::string(hp) + "\" is not HOST:PORT");
    }
    std::string_view port = hp.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) || port.size() > 5 ||
        std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
      return bad("endpoint \"" + std::string(hp) + "\" has no valid port");
    }
    out.endpoints.push_back((out.tls ? "https://" : "http://") + std::string(hp));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<ConnectionConfig> connection_for(const LockUrl& url, const Credentials& creds, const std::string& source) {
  ConnectionConfig c;
  c.endpoints = url.endpoints;
  c.source = source;
  auto need_tls = [&](const char* flag) {
    return Error::invalid(source + ": " + flag + " is for TLS: use etcds:// to talk TLS to etcd");
  };
  if (!creds.ca_file.empty()) {
    if (!url.tls) return need_tls("--etcd-cacert");
    auto pem = kube::read_file(creds.ca_file, "--etcd-cacert");
    if (!pem) return pem.error();
    c.ca_pem = std::move(*pem);
  }
  if (creds.cert_file.empty() != creds.key_file.empty()) {
    return Error::invalid(source + ": --etcd-cert and --etcd-key go together");
  }
  if (!creds.cert_file.empty()) {
    if (!url.tls) return need_tls("--etcd-cert");
    auto cert = kube::read_file(creds.cert_file, "--etcd-cert");
    if (!cert) return cert.error();
    auto key = kube::read_file(creds.key_file, "--etcd-key");
    if (!key) return key.error();
    c.cert_pem = std::move(*cert);
    c.key_pem = std::move(*key);
  }
  if (!creds.password_file.empty() && creds.user.empty()) {
    return Error::invalid(source + ": --etcd-password-file needs --etcd-user");
  }
  if (!creds.user.empty()) {
    if (creds.password_file.empty()) return Error::invalid(source + ": --etcd-user needs --etcd-password-file");
    auto pw = kube::read_file(creds.password_file, "--etcd-password-file");
    if (!pw) return pw.error();
    std::string p = std::move(*pw);
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    c.user = creds.user;
    c.password = std::move(p);
  }
  return c;
}

// ---- the session ------------------------------------------------------------

SessionHub::SessionHub(Runtime& rt, std::shared_ptr<Transport> transport)
    : rt_(rt), transport_(std::move(transport)), gate_(RuntimeAccess::io_gate(rt)) {}

// A pending timer is left to find the hub gone: the hub may be destroyed
// while the Runtime's heap is cleared, under its lock.
SessionHub::~SessionHub() = default;

void SessionHub::post(std::function<void()> fn) { gate_->post(std::move(fn)); }

void SessionHub::warn(const std::string& msg) { rt_.log(LogLevel::kWarning, transport_->config().source, msg); }

Result<void> SessionHub::reserve(const std::string& prefix, const SessionConfig& timings) {
  std::lock_guard<std::mutex> g(reserved_mu_);
  if (reserved_.count(prefix)) {
    return Error::invalid("etcd election " + prefix + ": this process already campaigns in it (two candidates of "
                          "one process would share the key " + prefix + "/<session lease>)");
  }
  for (const auto& [other, t] : reserved_) {
    if (t.ttl != timings.ttl || t.renew_deadline != timings.renew_deadline ||
        t.keepalive_interval != timings.keepalive_interval || t.retry_period != timings.retry_period) {
      auto sec = [](Duration d) { return std::to_string(std::chrono::duration<double>(d).count()) + "s"; };
      return Error::invalid("etcd election " + prefix + ": the etcd elections of one process share one session "
                            "lease, and " + other + " runs it with lease_duration " + sec(t.ttl) +
                            ", renew_deadline " + sec(t.renew_deadline) + ", retry_period " +
                            sec(t.retry_period) + ": use the same timings");
    }
  }
  reserved_[prefix] = timings;
  return {};
}

void SessionHub::unreserve(const std::string& prefix) {
  std::lock_guard<std::mutex> g(reserved_mu_);
  reserved_.erase(prefix);
}

void SessionHub::join(Listener* l, const std::string& prefix) {
  members_[prefix] = l;
  if (!sm_) {
    {
      std::lock_guard<std::mutex> g(reserved_mu_);
      auto it = reserved_.find(prefix);
      timings_ = it != reserved_.end() ? it->second : SessionConfig{};
    }
    request_timeout_ = timings_.renew_deadline / 2;
    sm_.emplace(timings_);
    step([](SessionMachine& m, Instant now, std::vector<session::Action>& out) { m.start(now, out); });
  } else if (sm_->lease() && rt_.clock().now() < sm_->deadline()) {
    l->on_session(*sm_->lease(), sm_->deadline());
  }
}

void SessionHub::leave(Listener* l, const std::string& prefix) {
  auto it = members_.find(prefix);
  if (it == members_.end() || it->second != l) return;
  members_.erase(it);
  if (members_.empty() && sm_) {
    step([](SessionMachine& m, Instant now, std::vector<session::Action>& out) { m.close(now, out); });
    sm_.reset();  // a later join starts a new session
    ++session_gen_;  // answers still on their way belong to the old one
    armed_.reset();
    if (timer_) rt_.cancel_timer(std::exchange(timer_, 0));
  }
}

void SessionHub::step(const std::function<void(SessionMachine&, Instant, std::vector<session::Action>&)>& event) {
  if (!sm_) return;
  std::vector<session::Action> out;
  event(*sm_, rt_.clock().now(), out);
  for (auto& a : out) apply(a);
  rearm();
}

// Sends one session call; its answer, decoded on the transport's thread,
// is fed to the machine on the I/O thread (a failure logged first).
template <class T, class Decode, class Feed>
void SessionHub::ask(const char* path, std::string body, const char* what, Decode decode, Feed feed) {
  std::weak_ptr<SessionHub> weak = weak_from_this();
  Instant sent_at = rt_.clock().now();
  uint64_t gen = session_gen_;
  transport_->call(path, std::move(body), request_timeout_,
                   [weak, sent_at, gen, what, decode, feed](Result<std::string> answer) {
                     Result<T> r = answer ? decode(*answer) : Result<T>(answer.error());
                     auto s = weak.lock();
                     if (!s) return;
                     s->post([weak, sent_at, gen, what, feed, r = std::move(r)] {
                       auto s = weak.lock();
                       if (!s) return;
                       if (gen != s->session_gen_) {
                         // An answer to a closed session: a lease it granted is given back.
                         if constexpr (std::is_same_v<T, std::pair<int64_t, Duration>>) {
                           if (r) s->transport_->call("/v3/lease/revoke", encode_lease_revoke(r->first),
                                                      s->request_timeout_, [](Result<std::string>) {});
                         }
                         return;
                       }
                       if (!r) s->warn(std::string(what) + " failed: " + r.error().message());
                       s->step([&](SessionMachine& m, Instant now, std::vector<session::Action>& out) {
                         feed(m, now, sent_at, r, out);
                       });
                     });
                   });
}

void SessionHub::apply(session::Action& a) {
  using Granted = std::pair<int64_t, Duration>;
  if (auto* g = std::get_if<session::Grant>(&a)) {
    int64_t ttl = std::chrono::duration_cast<std::chrono::seconds>(timings_.ttl).count();
    return ask<Granted>(
        "/v3/lease/grant", encode_lease_grant(ttl), "granting the session lease",
        [](const std::string& body) -> Result<Granted> {
          auto g = decode_lease_grant(body);
          if (!g) return g.error();
          return Granted{g->id, std::chrono::seconds(g->ttl)};
        },
        [id = g->id](SessionMachine& m, Instant now, Instant sent_at, const Result<Granted>& r,
                     std::vector<session::Action>& out) { m.on_grant(now, id, sent_at, r, out); });
  }
  if (auto* k = std::get_if<session::KeepAlive>(&a)) {
    return ask<Duration>(
        "/v3/lease/keepalive", encode_lease_keep_alive(k->lease), "keeping the session lease alive",
        [](const std::string& body) -> Result<Duration> {
          auto item = decode_lease_keep_alive(body);
          if (!item) return item.error();
          if (auto* err = std::get_if<GatewayError>(&*item)) return err->to_error();
          return Duration(std::chrono::seconds(std::get<LeaseKeepAliveResponse>(*item).ttl));
        },
        [id = k->id](SessionMachine& m, Instant now, Instant sent_at, const Result<Duration>& r,
                     std::vector<session::Action>& out) { m.on_keepalive(now, id, sent_at, r, out); });
  }
  if (auto* r = std::get_if<session::Revoke>(&a)) {
    // Best effort: an unrevoked lease expires after its TTL.
    transport_->call("/v3/lease/revoke", encode_lease_revoke(r->lease), request_timeout_, [](Result<std::string>) {});
    return;
  }
  // Established, Extended, Lost: to every election (a copy: a listener may leave).
  auto members = members_;
  for (auto& [prefix, l] : members) {
    auto it = members_.find(prefix);
    if (it == members_.end() || it->second != l) continue;
    if (auto* e = std::get_if<session::Established>(&a)) l->on_session(e->lease, e->deadline);
    if (auto* e = std::get_if<session::Extended>(&a)) l->on_session_extended(e->lease, e->deadline, e->round_trip);
    if (auto* e = std::get_if<session::Lost>(&a)) l->on_session_lost(e->lease, e->why);
  }
}

void SessionHub::rearm() {
  auto next = sm_ ? sm_->next_wakeup() : std::nullopt;
  if (next == armed_) return;
  armed_ = next;
  if (timer_) rt_.cancel_timer(std::exchange(timer_, 0));
  if (!next) return;
  timer_ = rt_.post_timer(*next, [weak = weak_from_this()] {
    auto s = weak.lock();
    if (!s) return;
    s->timer_ = 0;
    s->armed_.reset();
    s->step([](SessionMachine& m, Instant now, std::vector<session::Action>& out) { m.on_tick(now, out); });
  });
}

// ---- the lock handle ----------------------------------------------------------

Versioned leader_record(const KeyValue& kv) {
  Versioned v;
  v.version = std::to_string(kv.create_revision);
  v.record.holder_identity = kv.value;
  v.record.lease_transitions = static_cast<int32_t>(std::min<int64_t>(kv.create_revision, INT32_MAX));
  v.record.lease_duration_seconds = INT32_MAX;
  return v;
}

namespace {

// Reads the leader key of `prefix` (NotFound: no candidate); `done` runs on
// the I/O thread.
void read_leader(const std::shared_ptr<SessionHub>& hub, const std::string& prefix, Duration timeout,
                 Completion<KeyValue> done) {
  RangeRequest r{.key = prefix + "/", .range_end = prefix_range_end(prefix + "/"), .limit = 1,
                 .sort_order = SortOrder::kAscend, .sort_target = SortTarget::kCreate};
  std::weak_ptr<SessionHub> weak = hub;
  hub->transport().call("/v3/kv/range", encode_range(r), timeout,
                        [weak, done = std::move(done)](Result<std::string> body) mutable {
                          Result<KeyValue> out = Error::internal("");
                          if (!body) {
                            out = body.error();
                          } else if (auto rr = decode_range(*body); !rr) {
                            out = rr.error();
                          } else if (rr->kvs.empty()) {
                            out = Error::not_found("no candidate in the election");
                          } else {
                            out = rr->kvs.front();
                          }
                          if (auto s = weak.lock()) s->post([done = std::move(done), out = std::move(out)] { done(out); });
                        });
}

// What one watch line means for the leader view (decoded on the transport's
// thread).
struct LineNews {
  bool failed = false;
  bool created = false;
  bool put = false;                  // a candidate's key was written
  std::vector<std::string> deleted;  // keys deleted
};

LineNews news_of(std::string_view line) {
  LineNews n;
  auto item = decode_watch_line(line);
  if (!item || std::holds_alternative<GatewayError>(*item) || std::get<WatchResponse>(*item).cancel_error()) {
    n.failed = true;
    return n;
  }
  const auto& resp = std::get<WatchResponse>(*item);
  n.created = resp.created;
  for (const auto& ev : resp.events) {
    if (ev.type == Event::Type::kDelete) {
      n.deleted.push_back(ev.kv.key);
    } else {
      n.put = true;
    }
  }
  return n;
}

}  // namespace

// The watch of PREFIX/ and the reads it triggers; owned by the handle and by
// its pending callbacks, so a callback that comes after the handle is gone
// finds `closed` and does nothing. I/O thread only, except `closed`.
struct ElectionLock::Watch : std::enable_shared_from_this<Watch> {
  Runtime* rt = nullptr;
  std::weak_ptr<SessionHub> hub;  // weak: a callback left in the Runtime's heap must not own it
  std::string prefix;
  Duration timeout{};
  std::function<void(const std::optional<Versioned>&)> on_change;
  std::function<void(bool)> on_health;
  uint64_t stream = 0;
  uint64_t gen = 0;  // of the stream open now; callbacks of an older one are ignored
  bool reopening = false;
  bool reading = false, again = false;
  std::optional<std::string> leader_key;  // the last read's; nullopt: none known
  std::atomic<bool> closed{false};

  void open() {
    reopening = false;
    auto h = hub.lock();
    if (closed || !h) return;
    WatchCreateRequest req{.key = prefix + "/", .range_end = prefix_range_end(prefix + "/")};
    std::weak_ptr<Watch> weak = weak_from_this();
    uint64_t g = ++gen;
    stream = h->transport().watch(
        encode_watch_create(req),
        [weak, g](std::string_view line) {
          auto w = weak.lock();
          auto h = w ? w->hub.lock() : nullptr;
          if (h) {
            h->post([w, g, n = news_of(line)] {
              if (g != w->gen) return;
              n.failed ? w->broken() : w->event(n);
            });
          }
        },
        [weak, g](Error) {
          auto w = weak.lock();
          auto h = w ? w->hub.lock() : nullptr;
          if (h) {
            h->post([w, g] {
              if (g != w->gen) return;
              w->stream = 0;
              w->broken();
            });
          }
        });
  }

  // The leader changes only when its key goes (a new key is always the
  // newest), or when there was none: only then is the leader key read
  // again, so a join or leave of another candidate costs no read (no herd).
  // A read, not the event, decides: a resumed or replayed event never moves
  // the view back.
  void event(const LineNews& n) {
    if (closed) return;
    on_health(true);
    // A read in flight may have been served before this change: read again after it.
    if (reading && (n.put || !n.deleted.empty())) {
      again = true;
      return;
    }
    bool leader_gone = leader_key && std::find(n.deleted.begin(), n.deleted.end(), *leader_key) != n.deleted.end();
    if (n.created || leader_gone || (!leader_key && n.put)) reread();
  }

  // One reopen at a time: the stream's error line and its end both land here.
  void broken() {
    auto h = hub.lock();
    if (closed || !h || reopening) return;
    if (stream) h->transport().cancel(std::exchange(stream, 0));
    ++gen;  // whatever the old stream still delivers is ignored
    reopening = true;
    on_health(false);
    rt->post([w = shared_from_this()] { w->open(); }, std::chrono::seconds(1));
  }

  void reread() {
    if (reading) {
      again = true;
      return;
    }
    auto h = hub.lock();
    if (!h) return;
    reading = true;
    read_leader(h, prefix, timeout, [w = shared_from_this()](Result<KeyValue> r) {
      w->reading = false;
      if (w->closed) return;
      if (r) {
        w->leader_key = r->key;
        w->on_change(leader_record(*r));
      } else if (r.error().is(Code::kNotFound)) {
        w->leader_key.reset();
        w->on_change(std::nullopt);
      } else {
        // The view is unknown until a read succeeds: read again in a second.
        w->rt->post([w] { w->reread(); }, std::chrono::seconds(1));
        return;
      }
      if (std::exchange(w->again, false)) w->reread();
    });
  }
};

ElectionLock::ElectionLock(Runtime& rt, std::string url, std::string prefix, std::shared_ptr<SessionHub> hub)
    : rt_(rt), url_(std::move(url)), prefix_(std::move(prefix)), hub_(std::move(hub)) {}

ElectionLock::~ElectionLock() {
  if (!watch_) return;
  watch_->closed = true;
  // The stream id is the I/O thread's; cancel it there (through the gate: a
  // handle may be destroyed while the Runtime's heap is cleared).
  RuntimeAccess::io_gate(rt_)->post([w = watch_, h = hub_] {
    if (w->stream) h->transport().cancel(std::exchange(w->stream, 0));
  });
}

void ElectionLock::get(Completion<Versioned> done) {
  read_leader(hub_, prefix_, timeout_, [done = std::move(done)](Result<KeyValue> r) {
    if (!r) return done(r.error());
    done(leader_record(*r));
  });
}

void ElectionLock::create(const LeaseRecord&, Completion<Versioned> done) {
  hub_->post([done = std::move(done), url = url_] {
    done(Error::invalid(url + ": an etcd election has no record to create: candidates join through an Elector"));
  });
}

// An admin's release (`leasehold release --force`): the leader key whose
// create_revision is `version` is deleted, by a compare on that revision, so
// a newer leader's key is never touched. Its owner's watch ends its term;
// the next candidate in line leads.
void ElectionLock::update(const std::string& version, const LeaseRecord& record, Completion<Versioned> done) {
  int64_t rev = 0;
  auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), rev);
  if (!record.holder_identity.empty() || ec != std::errc() || end != version.data() + version.size() || rev <= 0) {
    hub_->post([done = std::move(done), url = url_, why = record.holder_identity.empty()
                                                          ? "\"" + version + "\" is not a leader key's revision"
                                                          : std::string("naming a holder is not possible: the "
                                                                        "order is the keys' creation order")] {
      done(Error::invalid(url + ": an etcd election has no record to write (" + why +
                          "); a release deletes the leader's key"));
    });
    return;
  }
  RangeRequest find{.key = prefix_ + "/", .range_end = prefix_range_end(prefix_ + "/"), .limit = 1,
                    .min_create_revision = rev, .max_create_revision = rev};
  std::weak_ptr<SessionHub> weak = hub_;
  Duration timeout = timeout_;
  hub_->transport().call(
      "/v3/kv/range", encode_range(find), timeout,
      [weak, rev, timeout, done = std::move(done)](Result<std::string> body) mutable {
        auto hub = weak.lock();
        if (!hub) return;
        auto fail = [&](Error e) { hub->post([done = std::move(done), e = std::move(e)] { done(e); }); };
        if (!body) return fail(body.error());
        auto rr = decode_range(*body);
        if (!rr) return fail(rr.error());
        if (rr->kvs.empty()) {
          return fail(Error::conflict("the leader key of revision " + std::to_string(rev) + " is gone already"));
        }
        KeyValue kv = rr->kvs[0];
        TxnRequest t;
        t.compare.push_back(Compare::create_revision(kv.key, rev));
        t.success.push_back(DeleteRangeRequest{.key = kv.key});
        hub->transport().call(
            "/v3/kv/txn", encode_txn(t), timeout, [weak, kv, done = std::move(done)](Result<std::string> body) mutable {
              auto hub = weak.lock();
              if (!hub) return;
              Result<Versioned> out = Error::internal("");
              if (!body) {
                out = body.error();
              } else if (auto r = decode_txn(*body); !r) {
                out = r.error();
              } else if (!r->succeeded) {
                out = Error::conflict("the leader key " + kv.key + " changed before its deletion");
              } else {
                Versioned freed = leader_record(kv);
                freed.record.holder_identity.clear();
                out = freed;
              }
              hub->post([done = std::move(done), out = std::move(out)] { done(out); });
            });
      });
}

bool ElectionLock::watch(std::function<void(const std::optional<Versioned>&)> on_change,
                         std::function<void(bool healthy)> on_health) {
  watch_ = std::make_shared<Watch>();
  watch_->rt = &rt_;
  watch_->hub = hub_;
  watch_->prefix = prefix_;
  watch_->timeout = timeout_;
  watch_->on_change = std::move(on_change);
  watch_->on_health = std::move(on_health);
  watch_->open();
  return true;
}

Result<std::shared_ptr<Lock>> open_etcd_lock(Runtime& rt, std::string_view url, const Credentials& creds) {
  auto u = parse_lock_url(url);
  if (!u) return u.error();
  auto conn = connection_for(*u, creds, kube::redact_url(std::string(url)));
  if (!conn) return conn.error();
  auto hub = RuntimeAccess::etcd_hub(rt, std::move(*conn));
  if (!hub) return hub.error();
  return std::shared_ptr<Lock>(std::make_shared<ElectionLock>(rt, std::string(url), u->prefix, std::move(*hub)));
}

}  // namespace leasehold::etcd
