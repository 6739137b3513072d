#include "etcd/transport.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "etcd/gateway_codec.h"
#include "kube/client.h"

namespace leasehold::etcd {
namespace {

constexpr std::string_view kWatchPath = "/v3/watch";
constexpr std::string_view kAuthPath = "/v3/auth/authenticate";
// authenticate's timeout when no call waiting for it has one of its own.
constexpr Duration kAuthTimeout = std::chrono::seconds(10);

long ms_of(Duration d) { return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); }

// "http" or "https" when `e` is SCHEME://HOST:PORT (HOST letters, digits,
// '.', '-' and '_', or anything in brackets (IPv6); PORT 1 to 65535, nothing
// after it); else "".
std::string_view scheme_of(std::string_view e) {
  std::string_view scheme = e.starts_with("http://") ? "http" : e.starts_with("https://") ? "https" : "";
  if (scheme.empty()) return "";
  std::string_view rest = e.substr(scheme.size() + 3);
  size_t colon;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close == 1) return "";
    colon = close + 1;
    if (colon >= rest.size() || rest[colon] != ':') return "";
  } else {
    colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) return "";
    for (char c : rest.substr(0, colon)) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                c == '_';
      if (!ok) return "";
    }
  }
  std::string_view port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5) return "";
  long v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return "";
    v = v * 10 + (c - '0');
  }
  return v >= 1 && v <= 65535 ? scheme : "";
}

struct Call {
  std::string path, body;
  Instant started{};
  Instant deadline = Instant::max();  // max: none
  std::function<void(Result<std::string>)> done;
  bool resent = false;  // sent again after its token was rejected (at most once)
};
using CallPtr = std::shared_ptr<Call>;

struct Watch {
  uint64_t id = 0;
  std::string request;
  std::function<void(std::string_view)> on_line;
  std::function<void(Error)> on_end;
  std::atomic<bool> over{false};  // cancelled or ended: no callback any more
  // GUARDED_BY(Core::mu_):
  size_t endpoint = 0;
  kube::Client* client = nullptr;  // nullptr: waiting for authentication
  uint64_t stream = 0;             // the client's id of its stream
  uint64_t token_gen = 0;          // the token it was opened with
  // Its stream's callbacks only (one client thread): an {"error":...} line.
  std::optional<GatewayError> error_line;
};
using WatchPtr = std::shared_ptr<Watch>;

// The token every client sends (read on the client threads as transfers start).
struct TokenBox {
  std::mutex mu;
  std::string token;  // GUARDED_BY(mu)
};

// User callbacks collected under Core::mu_, run after it is released.
using Later = std::vector<std::function<void()>>;
void run(Later& later) {
  for (auto& f : later) f();
  later.clear();
}

// Everything the client callbacks touch. They hold it by shared_ptr; it owns
// the kube clients only until close() hands them to the Transport's
// destructor, so the last reference never ends a client from its own thread.
class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(ConnectionConfig cfg, Clock* clock)
      : cfg_(std::move(cfg)), clock_(clock ? clock : &real_clock_), clients_(cfg_.endpoints.size()) {}
  // The first endpoint's client (its errors are create()'s), and the thread
  // that fails calls whose timeout passes while they wait for authentication.
  Result<void> start() {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (auto c = client_locked(0); !c) return c.error();
    }
    if (!cfg_.user.empty()) expirer_ = std::thread([this] { expire_loop(); });
    return {};
  }

  // Fails what waits (Unavailable) and returns the clients, to be destroyed
  // by the caller: their destructors fail what they carry, through the
  // callbacks, which then find the Core closed.
  std::vector<std::shared_ptr<kube::Client>> close() {
    Later later;
    std::vector<std::shared_ptr<kube::Client>> clients;
    {
      std::lock_guard<std::mutex> g(mu_);
      closed_ = true;
      Error e = Error::unavailable(label() + ": transport closed");
      fail_waiting_locked(e, later);
      clients.swap(clients_);
      cv_.notify_all();
    }
    run(later);
    if (expirer_.joinable()) expirer_.join();
    return clients;
  }

  void call(std::string path, std::string body, Duration timeout, std::function<void(Result<std::string>)> done) {
    auto c = std::make_shared<Call>();
    c->path = std::move(path);
    c->body = std::move(body);
    c->started = clock_->now();
    if (timeout > Duration::zero()) c->deadline = c->started + timeout;
    c->done = std::move(done);
    Later later;
    {
      std::lock_guard<std::mutex> g(mu_);
      dispatch_locked(c, later);
    }
    run(later);
  }

  uint64_t watch(std::string request, std::function<void(std::string_view)> on_line,
                 std::function<void(Error)> on_end) {
    auto w = std::make_shared<Watch>();
    w->request = std::move(request);
    w->on_line = std::move(on_line);
    w->on_end = std::move(on_end);
    Later later;
    uint64_t id;
    {
      std::lock_guard<std::mutex> g(mu_);
      id = w->id = ++next_watch_id_;
      watches_[id] = w;
      open_locked(w, later);
    }
    run(later);
    return id;
  }

  void cancel(uint64_t id) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    WatchPtr w = it->second;
    watches_.erase(it);
    w->over = true;
    if (!w->client) {
      std::erase(waiting_watches_, w);
    } else if (!closed_) {
      w->client->cancel(w->stream);
    }
  }

  std::string current_endpoint() const { return cfg_.endpoints[current_.load()]; }

  TransportStats stats() const {
    TransportStats s;
    s.calls = calls_;
    s.watches = watches_opened_;
    s.authentications = authentications_;
    s.failovers = failovers_;
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& c : clients_) {
      if (c) s.connections += c->stats().connections;
    }
    return s;
  }

  const ConnectionConfig& config() const { return cfg_; }

 private:
  std::string label() const { return cfg_.source.empty() ? "etcd" : cfg_.source; }
  static std::string prefix(const std::string& endpoint, std::string_view path) {
    return "etcd " + endpoint + " " + std::string(path) + ": ";
  }

  // Why a kube client got no HTTP answer, without its "POST URL: " (ours
  // replaces it); its TLS hints name kubeconfig fields, put in our terms here.
  std::string transport_reason(size_t idx, std::string_view path, const Error& e) const {
    const std::string& ep = cfg_.endpoints[idx];
    std::string m = e.message();
    std::string theirs = "POST " + ep + std::string(path);
    if (m.starts_with(theirs)) {
      m.erase(0, theirs.size());
      if (m.starts_with(": ")) {
        m.erase(0, 2);
      } else if (m.starts_with(" ")) {
        m.erase(0, 1);
      }
    }
    auto replace = [&m](std::string_view from, std::string_view to) {
      if (size_t at = m.find(from); at != std::string::npos) m.replace(at, from.size(), to);
    };
    replace("check the kubeconfig's client-certificate and client-key", "check the client certificate and key");
    replace("check the kubeconfig's certificate-authority and tls-server-name", "check the CA certificate");
    if (ep.starts_with("https://") && cfg_.cert_pem.empty()) {
      // A server that requires a client certificate sends TLS 1.3's alert
      // after the handshake and closes the connection: curl reports the
      // alert, or, when the close overtook it, only the close.
      auto has = [&m](std::string_view s) { return m.find(s) != std::string::npos; };
      if (has("certificate required")) {
        m += " (the server requires a TLS client certificate; none is configured)";
      } else if (has("reset by peer") || has("Broken pipe") || has("getpeername") || has("unexpected eof") ||
                 has("SSL_ERROR_SYSCALL") || has("Empty reply")) {
        m += " (no TLS client certificate is configured: a server that requires one closes the connection)";
      }
    }
    return m;
  }
  Error transport_error(size_t idx, std::string_view path, const Error& e) const {
    return {e.code(), prefix(cfg_.endpoints[idx], path) + transport_reason(idx, path, e)};
  }
  // No answer from the endpoint (unreachable, reset, timed out), as opposed
  // to an answer the client refused (too large).
  static bool unreachable(const Error& e) { return e.is(Code::kUnavailable) || e.is(Code::kTimeout); }

  // An etcd error answer, as GatewayError::to_error says, with our prefix.
  Error gateway_error(size_t idx, std::string_view path, const GatewayError& ge) const {
    Error e = ge.to_error();
    std::string m = e.message();
    if (m.starts_with("etcd ")) m.erase(0, 5);
    if (ge.fault == Fault::kAuthToken && cfg_.user.empty()) m += " (no user is configured for this etcd)";
    return {e.code(), prefix(cfg_.endpoints[idx], path) + m};
  }

  // The failover rule (transport.h): the current endpoint moves on only if
  // it is still the one that failed.
  void failover_locked(size_t idx) {
    size_t n = cfg_.endpoints.size();
    if (n < 2) return;
    size_t expected = idx;
    if (current_.compare_exchange_strong(expected, (idx + 1) % n)) ++failovers_;
  }

  // Tokens are told apart by generation: a rejection of an older one than the
  // current is not the current one's.
  void token_rejected_locked(uint64_t gen) {
    if (gen == token_gen_) token_ok_ = false;
  }

  bool needs_token_locked() const { return !cfg_.user.empty() && !token_ok_; }

  Result<kube::Client*> client_locked(size_t idx) {
    if (closed_) return Error::unavailable(label() + ": transport closed");
    if (!clients_[idx]) {
      kube::ClusterConfig cc;
      cc.server = cfg_.endpoints[idx];
      cc.ca_pem = cfg_.ca_pem;
      cc.client_cert_pem = cfg_.cert_pem;
      cc.client_key_pem = cfg_.key_pem;
      cc.insecure_skip_tls_verify = cfg_.insecure_skip_tls_verify;
      cc.source = label();
      kube::ClientOptions o;
      o.rate = kube::RateLimit{.qps = 0, .burst = 1};  // no budget: etcd's own limits apply
      o.clock = clock_;
      o.lease_format = kube::WireFormat::kJson;
      if (!cfg_.user.empty()) {
        o.authorization = [box = token_] {
          std::lock_guard<std::mutex> g(box->mu);
          return box->token;
        };
      }
      o.extra_headers = {"Grpc-Metadata-hasleader: true"};
      o.health_probes = !cfg_.endpoints[idx].starts_with("http://");  // see ClientOptions::health_probes
      o.transport = kube::Transport::kCurl;  // the gateway may be http:// and HTTP/1.1
      auto c = kube::Client::create(std::move(cc), std::move(o));
      if (!c) return c.error();
      clients_[idx] = std::move(*c);
    }
    return clients_[idx].get();
  }

  void complete(const CallPtr& c, Result<std::string> r, Later& later) {
    ++calls_;
    later.push_back([c, r = std::move(r)]() mutable { c->done(std::move(r)); });
  }

  void end_watch_locked(const WatchPtr& w, Error e, Later& later) {
    watches_.erase(w->id);
    if (w->over.exchange(true)) return;
    later.push_back([w, e = std::move(e)]() mutable { w->on_end(std::move(e)); });
  }

  void dispatch_locked(const CallPtr& c, Later& later) {
    if (needs_token_locked() && !closed_) {
      waiting_calls_.push_back(c);
      cv_.notify_all();
      if (!auth_in_flight_) authenticate_locked(later);
      return;
    }
    size_t idx = current_.load();
    const std::string& ep = cfg_.endpoints[idx];
    Instant now = clock_->now();
    if (now >= c->deadline) {
      complete(c,
               Error::timeout(prefix(ep, c->path) + "timed out after " + std::to_string(ms_of(now - c->started)) +
                              " ms before it could be sent"),
               later);
      return;
    }
    auto client = client_locked(idx);
    if (!client) {
      complete(c, client.error(), later);
      return;
    }
    Duration left = c->deadline == Instant::max() ? Duration::zero() : c->deadline - now;
    (*client)->request(
        "POST", c->path, c->body, left,
        [self = shared_from_this(), c, idx, gen = token_gen_](Result<kube::HttpResponse> r) {
          self->on_answer(c, idx, gen, std::move(r));
        },
        kube::Priority::kLease, kube::Media::kJson);
  }

  void on_answer(const CallPtr& c, size_t idx, uint64_t gen, Result<kube::HttpResponse> r) {
    Later later;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!r) {
        if (unreachable(r.error())) failover_locked(idx);
        complete(c, transport_error(idx, c->path, r.error()), later);
      } else if (r->status == 200) {
        complete(c, std::move(r->body), later);
      } else {
        GatewayError ge = decode_error(r->status, r->body);
        if (ge.fault == Fault::kAuthToken && !cfg_.user.empty() && !c->resent) {
          c->resent = true;
          token_rejected_locked(gen);
          dispatch_locked(c, later);
        } else {
          if (ge.fault == Fault::kUnavailable) failover_locked(idx);
          complete(c, gateway_error(idx, c->path, ge), later);
        }
      }
    }
    run(later);
  }

  // POST /v3/auth/authenticate on the current endpoint, with the longest
  // time left to the calls waiting for it; kAuthTimeout when one of them has
  // no limit, or only watches wait.
  void authenticate_locked(Later& later) {
    size_t idx = current_.load();
    auto client = client_locked(idx);
    if (!client) {
      fail_waiting_locked(client.error(), later);
      return;
    }
    Instant now = clock_->now();
    Instant latest = waiting_calls_.empty() ? Instant::max() : now;
    for (const auto& c : waiting_calls_) latest = std::max(latest, c->deadline);
    Duration timeout = latest == Instant::max() || latest <= now ? kAuthTimeout : latest - now;
    auth_in_flight_ = true;
    ++authentications_;
    (*client)->request(
        "POST", std::string(kAuthPath), encode_authenticate(cfg_.user, cfg_.password), timeout,
        [self = shared_from_this(), idx](Result<kube::HttpResponse> r) { self->on_authenticated(idx, std::move(r)); },
        kube::Priority::kLease, kube::Media::kJson);
  }

  void on_authenticated(size_t idx, Result<kube::HttpResponse> r) {
    Later later;
    {
      std::lock_guard<std::mutex> g(mu_);
      auth_in_flight_ = false;
      std::string failed = "etcd " + cfg_.endpoints[idx] + ": authentication as \"" + cfg_.user + "\" failed: ";
      std::optional<Error> error;
      if (!r) {  // no answer: the credentials were never judged
        if (unreachable(r.error())) failover_locked(idx);
        error = Error(r.error().code(), "etcd " + cfg_.endpoints[idx] + ": no answer to authentication as \"" +
                                            cfg_.user + "\": " + transport_reason(idx, kAuthPath, r.error()));
      } else if (r->status != 200) {
        GatewayError ge = decode_error(r->status, r->body);
        if (ge.fault == Fault::kUnavailable) failover_locked(idx);
        error = Error(ge.to_error().code(), failed + ge.message);
      } else if (auto a = decode_authenticate(r->body); !a) {
        error = Error(a.error().code(), failed + a.error().message());
      } else if (a->token.empty()) {
        error = Error::internal(failed + "the answer carries no token");
      } else {
        {
          std::lock_guard<std::mutex> t(token_->mu);
          token_->token = std::move(a->token);
        }
        token_ok_ = true;
        ++token_gen_;
      }
      if (error) {
        fail_waiting_locked(*error, later);
      } else {
        std::vector<CallPtr> calls;
        calls.swap(waiting_calls_);
        for (const auto& c : calls) dispatch_locked(c, later);
        std::vector<WatchPtr> watches;
        watches.swap(waiting_watches_);
        for (const auto& w : watches) open_locked(w, later);
      }
    }
    run(later);
  }

  void fail_waiting_locked(const Error& e, Later& later) {
    std::vector<CallPtr> calls;
    calls.swap(waiting_calls_);
    for (const auto& c : calls) complete(c, e, later);
    std::vector<WatchPtr> watches;
    watches.swap(waiting_watches_);
    for (const auto& w : watches) end_watch_locked(w, e, later);
  }

  // Fails calls whose timeout passed while they waited for authentication.
  void expire_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!closed_) {
      Instant next = Instant::max();
      for (const auto& c : waiting_calls_) next = std::min(next, c->deadline);
      if (next == Instant::max()) {
        cv_.wait(lk);
        continue;
      }
      Instant now = clock_->now();
      if (now < next) {
        clock_->wait_until(lk, cv_, next);
        continue;
      }
      Later later;
      std::erase_if(waiting_calls_, [&](const CallPtr& c) {
        if (c->deadline > now) return false;
        complete(c,
                 Error::timeout(prefix(cfg_.endpoints[current_.load()], c->path) + "timed out after " +
                                std::to_string(ms_of(now - c->started)) + " ms waiting for authentication as \"" +
                                cfg_.user + "\""),
                 later);
        return true;
      });
      lk.unlock();
      run(later);
      lk.lock();
    }
  }

  void open_locked(const WatchPtr& w, Later& later) {
    if (needs_token_locked() && !closed_) {
      waiting_watches_.push_back(w);
      if (!auth_in_flight_) authenticate_locked(later);
      return;
    }
    size_t idx = current_.load();
    auto client = client_locked(idx);
    if (!client) {
      end_watch_locked(w, client.error(), later);
      return;
    }
    w->endpoint = idx;
    w->client = *client;
    w->token_gen = token_gen_;
    ++watches_opened_;
    auto self = shared_from_this();
    w->stream = (*client)->stream_post(
        std::string(kWatchPath), w->request,
        [self, w](std::string_view line) {
          if (w->over) return;
          self->peek(*w, line);
          w->on_line(line);
        },
        [self, w](Result<kube::HttpResponse> r) { self->on_watch_end(w, std::move(r)); }, kube::Priority::kLease);
  }

  // What the transport itself reads of a watch line: the stream's error
  // line (for on_end's message), and a refusal of its token (the next call
  // or watch authenticates first).
  void peek(Watch& w, std::string_view line) {
    if (line.starts_with("{\"error\"")) {
      w.error_line = decode_error(200, line);
      return;
    }
    if (line.find("\"cancel_reason\"") == std::string_view::npos) return;
    auto item = decode_watch_line(line);
    if (!item || !std::holds_alternative<WatchResponse>(*item)) return;
    auto why = std::get<WatchResponse>(*item).cancel_error();
    if (!why || why->fault != Fault::kAuthToken) return;
    std::lock_guard<std::mutex> g(mu_);
    token_rejected_locked(w.token_gen);
  }

  void on_watch_end(const WatchPtr& w, Result<kube::HttpResponse> r) {
    Later later;
    {
      std::lock_guard<std::mutex> g(mu_);
      size_t idx = w->endpoint;
      std::optional<Error> e;
      if (!r) {
        if (unreachable(r.error())) failover_locked(idx);
        e = transport_error(idx, kWatchPath, r.error());
      } else {
        std::optional<GatewayError> ge = w->error_line;
        if (r->status != 200) ge = decode_error(r->status, r->body);
        if (ge) {
          if (ge->fault == Fault::kUnavailable) failover_locked(idx);
          if (ge->fault == Fault::kAuthToken) token_rejected_locked(w->token_gen);
          e = gateway_error(idx, kWatchPath, *ge);
        } else {
          failover_locked(idx);
          e = Error::unavailable(prefix(cfg_.endpoints[idx], kWatchPath) + "stream ended");
        }
      }
      end_watch_locked(w, std::move(*e), later);
    }
    run(later);
  }

  const ConnectionConfig cfg_;
  RealClock real_clock_;
  Clock* clock_;
  std::shared_ptr<TokenBox> token_ = std::make_shared<TokenBox>();
  std::atomic<size_t> current_{0};
  std::atomic<uint64_t> calls_{0}, watches_opened_{0}, authentications_{0}, failovers_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;  // waiting_calls_ changed, or closed_
  bool closed_ = false;                                      // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<kube::Client>> clients_;       // GUARDED_BY(mu_): one per endpoint, made on first use
  bool token_ok_ = false;                                    // GUARDED_BY(mu_): token_ may be sent
  uint64_t token_gen_ = 0;                                   // GUARDED_BY(mu_): tokens received
  bool auth_in_flight_ = false;                              // GUARDED_BY(mu_)
  std::vector<CallPtr> waiting_calls_;                       // GUARDED_BY(mu_): for authentication
  std::vector<WatchPtr> waiting_watches_;                    // GUARDED_BY(mu_): for authentication
  std::map<uint64_t, WatchPtr> watches_;                     // GUARDED_BY(mu_): neither ended nor cancelled
  uint64_t next_watch_id_ = 0;                               // GUARDED_BY(mu_)
  std::thread expirer_;
};

class GatewayTransport final : public Transport {
 public:
  explicit GatewayTransport(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  // The clients close() returns end here, on this thread, after it.
  ~GatewayTransport() override { core_->close(); }
  void shutdown() override { core_->close(); }  // the clients it returns end here

  void call(std::string path, std::string body, Duration timeout,
            std::function<void(Result<std::string>)> done) override {
    core_->call(std::move(path), std::move(body), timeout, std::move(done));
  }
  uint64_t watch(std::string request, std::function<void(std::string_view)> on_line,
                 std::function<void(Error)> on_end) override {
    return core_->watch(std::move(request), std::move(on_line), std::move(on_end));
  }
  void cancel(uint64_t id) override { core_->cancel(id); }
  std::string current_endpoint() const override { return core_->current_endpoint(); }
  TransportStats stats() const override { return core_->stats(); }
  const ConnectionConfig& config() const override { return core_->config(); }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

Result<std::shared_ptr<Transport>> Transport::create(ConnectionConfig config, Clock* clock) {
  std::string what = config.source.empty() ? "etcd" : config.source;
  if (config.endpoints.empty()) return Error::invalid(what + ": no endpoints");
  std::string_view scheme;
  for (const std::string& e : config.endpoints) {
    std::string_view s = scheme_of(e);
    if (s.empty()) {
      return Error::invalid(what + ": endpoint \"" + kube::redact_url(e) +
                            "\" is not http://HOST:PORT or https://HOST:PORT");
    }
    if (scheme.empty()) scheme = s;
    if (s != scheme) {
      return Error::invalid(what + ": endpoints \"" + kube::redact_url(config.endpoints[0]) + "\" and \"" +
                            kube::redact_url(e) + "\" mix http:// and https://");
    }
  }
  if (config.cert_pem.empty() != config.key_pem.empty()) {
    return Error::invalid(what + (config.key_pem.empty() ? ": a client certificate without its key"
                                                         : ": a client key without its certificate"));
  }
  auto core = std::make_shared<Core>(std::move(config), clock);
  if (auto r = core->start(); !r) return r.error();
  return std::shared_ptr<Transport>(std::make_shared<GatewayTransport>(std::move(core)));
}

}  // namespace leasehold::etcd
