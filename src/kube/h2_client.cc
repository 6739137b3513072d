#include "kube/h2_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/wake_batch.h"
#include "kube/client_front.h"
#include "kube/rate_limiter.h"
#include "kube/wire_format.h"

namespace leasehold::kube {
namespace {

using namespace std::chrono_literals;

constexpr auto kConnectTimeout = 5s;
// A connect(2) to one address of several that has not completed this long
// gives way to the next address (the last keeps what is left of
// kConnectTimeout): a first address that drops SYNs costs 1 s, not the
// connection.
constexpr auto kAttemptTimeout = 1s;
constexpr auto kQueueSweep = 100ms;
constexpr size_t kMaxInFlight = 64;  // requests (not watches) at once, as the curl transport
constexpr auto kPingAfter = 3s;      // silence on a connection carrying streams
constexpr auto kPingTimeout = 2s;
constexpr auto kIdleAfter = 90s;    // a connection without streams this long is closed (Go's IdleConnTimeout)
constexpr auto kMinSilence = 500ms;  // a request timeout shorter than this says nothing of its connection
constexpr int kUserTimeoutMs = 5000;
constexpr int kKeepIdleS = 3, kKeepIntvlS = 1, kKeepCnt = 2;
constexpr int32_t kStreamWindow = 4 << 20;
constexpr int32_t kConnectionWindow = 16 << 20;
constexpr size_t kReadChunk = 32 << 10;
// After a read that completed requests while others are still in flight,
// the socket is left unread this long, so that the next answers (renewals
// sent on one tick come back over a few milliseconds) are read in one
// wake-up. It delays any answer or watch event on that connection by at most
// this much, and only while requests are in flight on it.
constexpr auto kGather = 1ms;
// After any read while renewals, and no other request, are in flight on a
// connection, its socket is left unread this long: a renewal's answer is
// awaited by nobody (its deadline counts from its sending), so the answers
// of one tick are read in a few wake-ups. It delays any answer or watch
// event on that connection by at most this much, and only while renewals
// alone are in flight on it.
constexpr auto kPatientGather = 4ms;
constexpr uint32_t kLastStreamIds = (1u << 31) - 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// OpenSSL's queued errors as one line (and the queue emptied); `*found`,
// when given, tells whether one of them had the reason `reason`.
std::string ssl_errors(int reason = 0, bool* found = nullptr) {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    if (found && ERR_GET_REASON(e) == reason) *found = true;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

struct Conn;

struct Transfer : TransferHead {
  size_t body_off = 0;
  Instant sent{};
  bool retried = false;   // sent again once after REFUSED_STREAM
  bool finished = false;  // done was called (or dropped: cancelled)
  bool reset = false;     // RST_STREAM submitted (a second one would be a protocol error)
  Conn* conn = nullptr;
  int32_t stream_id = -1;  // -1: not submitted yet
  long status = 0;
  std::string content_type;
  std::string authorization;  // the header's value, held from start() until submit()
};
using TransferPtr = std::unique_ptr<Transfer>;

// A name being resolved on a thread of its own (getaddrinfo may wait on DNS
// for seconds; the loop thread never does). The thread fills it and wakes
// the loop; a connection that gave up on it just drops its reference.
struct Resolution {
  std::mutex mu;
  bool done = false;                    // under mu
  int rc = 0;                           // getaddrinfo's result, under mu
  std::vector<sockaddr_storage> addrs;  // under mu
  std::vector<socklen_t> addr_lens;     // under mu
};

// The loop's eventfd, shared with resolver threads that may outlive the
// client: closed when the last of them lets go.
struct Waker {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ~Waker() {
    if (fd >= 0) ::close(fd);
  }
  void wake() const {
    uint64_t one = 1;
    ssize_t n = ::write(fd, &one, sizeof one);
    (void)n;  // EAGAIN: the counter is already non-zero, the loop wakes anyway
  }
};

struct Conn {
  enum class State { kResolving, kConnecting, kHandshaking, kReady, kDead };
  class H2Client* client = nullptr;
  uint64_t serial = 0;
  State state = State::kConnecting;
  int fd = -1;
  SSL* ssl = nullptr;
  nghttp2_session* h2 = nullptr;
  std::string cert;  // the client certificate PEM it was opened with ("" none)
  std::string key;
  std::vector<sockaddr_storage> addrs;
  std::vector<socklen_t> addr_lens;
  size_t addr_index = 0;
  std::shared_ptr<Resolution> resolution;  // while kResolving
  std::string last_connect_error;
  Instant idle_since{};  // when its last stream closed (or it opened)
  Instant connect_deadline{};
  Instant attempt_deadline = Instant::max();  // kConnecting: this address's (kAttemptTimeout)
  Instant last_recv{};
  bool ping_outstanding = false;
  Instant ping_sent{};
  bool goaway = false;
  bool want_write = false;         // the handshake or SSL_read waits until the socket is writable
  bool write_wants_read = false;   // SSL_write waits until the socket is readable
  std::string wbuf;
  size_t woff = 0;
  std::map<int32_t, Transfer*> streams;
  size_t unary_open = 0;    // of streams, those of requests (not watches)
  size_t impatient_open = 0;  // of those, the ones that are not renewals (Transfer::patient())
  // The gather (on_ready): until this instant poll(2) does not ask whether
  // the socket is readable. The real steady clock, as poll(2) sleeps on it,
  // whatever clock the client judges timeouts by.
  std::chrono::steady_clock::time_point read_after{};
  std::deque<Transfer*> waiting;  // assigned before the connection was ready
  std::string dead_reason;
};

class H2Client final : public ClientFront<Transfer> {
 public:
  H2Client(ClusterConfig c, ClientOptions o, std::function<std::shared_ptr<Client>()> fallback)
      : ClientFront(std::move(c), o),
        extra_headers_(parse_extra(o.extra_headers)),
        url_(split_server(cfg_.server)),
        getaddrinfo_(o.getaddrinfo ? o.getaddrinfo : &::getaddrinfo),
        gather_(o.h2_gather.value_or(kGather)),
        patient_gather_(o.h2_patient_gather.value_or(kPatientGather)),
        make_fallback_(std::move(fallback)) {
    host_ = url_.host;
    if (host_.size() >= 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
    verify_name_ = cfg_.tls_server_name.empty() ? host_ : cfg_.tls_server_name;
    if (verify_name_.size() >= 2 && verify_name_.front() == '[') verify_name_ = verify_name_.substr(1, verify_name_.size() - 2);
    authority_ = url_.host + ":" + url_.port;
    user_agent_ = "leasehold/" LEASEHOLD_VERSION;
    thread_ = std::thread([this] { loop(); });
  }

  ~H2Client() override {
    stop_wakes();
    stop_ = true;
    wake_loop();
    thread_.join();
    for (auto& c : conns_) kill(*c, "client shut down");
    sweep_dead();
    for (auto& t : retry_) finish(*t, Error::unavailable("client shut down"));
    fail_queued("client shut down");
    for (auto& [identity, ctx] : ctxs_) SSL_CTX_free(ctx);
    fallback_raw_.store(nullptr, std::memory_order_release);
    fallback_.reset();  // its last callbacks still find handed_ (below)
  }

  ClientStats stats() const override {
    ClientStats s = ClientFront::stats();
    if (Client* f = fallback_raw_.load(std::memory_order_acquire)) add_stats(s, f->stats());
    return s;
  }

 private:
  // "Name: value" lines as HTTP/2 wants them: lower-case names.
  static std::vector<std::pair<std::string, std::string>> parse_extra(const std::vector<std::string>& lines) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const std::string& l : lines) {
      size_t colon = l.find(':');
      if (colon == std::string::npos || colon == 0) continue;
      std::string_view v = std::string_view(l).substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      out.emplace_back(lower(std::string_view(l).substr(0, colon)), std::string(v));
    }
    return out;
  }

  void wake_loop() override { waker_->wake(); }

  void finish(Transfer& t, Result<HttpResponse> r) override {
    if (t.finished) return;
    t.finished = true;
    ++completed_;
    if (auto done = std::move(t.done)) done(std::move(r));
  }

  // ---- the loop ----

  void loop() {
    // OpenSSL writes to the socket with write(2): a connection the server
    // reset would raise SIGPIPE, whose default ends the process. Blocked on
    // this thread, the write fails with EPIPE instead (the signal stays
    // pending on this thread only, and is taken back after each failure).
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    Instant next_sweep = clock_->now();
    while (!stop_) {
      std::optional<core::WakeBatch> batch(std::in_place);
      Instant now = clock_->now();
      auto starter = [this](TransferPtr& t, Instant at) { return start(t, at); };
      for (uint64_t id : take_queued(now, starter)) cancel_now(id);
      for (auto& t : retry_) start(t, now);
      retry_.clear();
      if (now >= next_sweep) {
        expire_queued(now, starter);
        next_sweep = now + kQueueSweep;
      }
      size_t room = unary_.size() < kMaxInFlight ? kMaxInFlight - unary_.size() : 0;
      limiter_.pop_ready(now, [&](TransferPtr& t) { return start(t, now); }, room);
      queued_lease_ = limiter_.queued(Priority::kLease);
      queued_background_ = limiter_.queued(Priority::kBackground);
      take_resolutions();
      check_deadlines(now);
      check_health(now);
      for (auto& c : conns_) flush(*c);
      sweep_dead();
      Instant wake_at = now + 1s;
      // Full: an answer (socket activity) wakes the poll, and the sweep still
      // fails queued requests whose timeout passed.
      if (unary_.size() < kMaxInFlight) {
        if (auto next = limiter_.next_ready(now)) wake_at = std::min(wake_at, std::max(*next, now + 1ms));
      }
      if (queued_lease_ || queued_background_) wake_at = std::min(wake_at, now + kQueueSweep);
      if (!retry_.empty()) wake_at = now;
      wake_at = std::min(wake_at, next_deadline_);
      for (auto& c : conns_) wake_at = std::min(wake_at, health_due(*c));
      batch.reset();
      poll_once(std::max(Duration::zero(), wake_at - clock_->now()));
    }
  }

  void poll_once(Duration wait) {
    std::vector<pollfd> fds;
    std::vector<Conn*> owners;
    fds.push_back({waker_->fd, POLLIN, 0});
    owners.push_back(nullptr);
    auto now = std::chrono::steady_clock::now();
    for (auto& c : conns_) {
      if (c->fd < 0 || c->state == Conn::State::kDead) continue;
      short ev = POLLIN;
      if (c->read_after > now) {
        ev = 0;  // POLLERR and POLLHUP still come
        wait = std::min<Duration>(wait, std::chrono::duration_cast<Duration>(c->read_after - now));
      }
      if (c->state == Conn::State::kConnecting || c->want_write || (c->woff < c->wbuf.size() && !c->write_wants_read)) {
        ev |= POLLOUT;
      }
      fds.push_back({c->fd, ev, 0});
      owners.push_back(c.get());
    }
    wait = std::clamp<Duration>(wait, Duration::zero(), 1s);
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    int n = ::ppoll(fds.data(), fds.size(), &ts, nullptr);
    if (n <= 0) return;
    std::optional<core::WakeBatch> batch(std::in_place);
    if (fds[0].revents) {
      uint64_t v;
      while (::read(waker_->fd, &v, sizeof v) > 0) {
      }
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents) on_ready(*owners[i], fds[i].revents);
    }
  }

  // ---- starting transfers ----

  // Hands one transfer to a connection. Returns false (and completes it) when
  // it cannot start: no token is spent on it then.
  bool start(TransferPtr& owned, Instant now) {
    if (fallback_ && now < owned->deadline) {
      if (owned->retried) --started_;  // counted when first started; the fallback counts it
      hand_over(std::move(owned), now);
      return true;
    }
    std::optional<Credentials::Pick> pick = admit(owned, now);
    if (!pick) return !owned;  // parked for the exec plugin (true), or failed
    Transfer& t = *owned;
    t.sent = now;
    if (!t.retried) {
      ++started_;
      if (now > t.enqueued + 1ms) ++waited_;
    }
    Conn* c = connection_for(*pick->cert, *pick->key, now);
    if (c->state == Conn::State::kDead) {  // could not even start connecting
      finish(t, Error::unavailable(what(t) + ": " + c->dead_reason));
      return false;
    }
    t.authorization = std::move(pick->authorization);
    t.conn = c;
    Transfer* raw = owned.get();
    if (t.streaming) {
      streams_[t.id] = std::move(owned);
    } else {
      next_deadline_ = std::min(next_deadline_, t.deadline);
      unary_[t.id] = std::move(owned);
    }
    if (c->state == Conn::State::kReady) {
      submit(*c, *raw);
    } else {
      c->waiting.push_back(raw);
    }
    return true;
  }

  void forget(Transfer& t) {
    if (t.streaming) {
      streams_.erase(t.id);
    } else {
      unary_.erase(t.id);
    }
  }

  size_t remote_max_streams(const Conn& c) const {
    if (!c.h2) return 100;
    return nghttp2_session_get_remote_settings(c.h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }

  Conn* connection_for(const std::string& cert, const std::string& key, Instant now) {
    for (auto& c : conns_) {
      // A connection near the end of its stream ids (2^31, HTTP/2 never
      // reuses one) takes no new streams and ends once the last one closes.
      if (c->h2 && nghttp2_session_get_next_stream_id(c->h2) > kLastStreamIds) c->goaway = true;
      if (c->state == Conn::State::kDead || c->goaway || c->cert != cert || c->key != key) continue;
      if (c->streams.size() + c->waiting.size() < remote_max_streams(*c)) return c.get();
    }
    auto c = std::make_unique<Conn>();
    c->client = this;
    c->serial = ++conn_serial_;
    c->cert = cert;
    c->key = key;
    c->idle_since = now;
    c->last_recv = now;
    c->connect_deadline = now + kConnectTimeout;
    Conn* raw = c.get();
    conns_.push_back(std::move(c));
    begin_connect(*raw);
    return raw;
  }

  void submit(Conn& c, Transfer& t) {
    t.sent = clock_->now();  // the silence rule counts from here
    // nghttp2 copies each name and value inside nghttp2_submit_request: the
    // pairs point at the transfer's strings, constants and these locals.
    std::string joined;
    std::string_view path = t.path;
    if (!url_.prefix.empty()) path = joined = url_.prefix + t.path;
    char length[24];
    std::string_view content_length;
    nva_.clear();
    auto add = [&](std::string_view n, std::string_view v, uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
      nva_.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), flags});
    };
    add(":method", t.method);
    add(":scheme", "https");
    add(":authority", authority_);
    add(":path", path);
    add("user-agent", user_agent_);
    add("accept", t.lease() && lease_format_ == WireFormat::kProtobuf
                      ? "application/vnd.kubernetes.protobuf, application/json"
                      : "application/json");
    if (std::string_view(t.req_body).substr(0, kProtobufMagic.size()) == kProtobufMagic) {
      add("content-type", "application/vnd.kubernetes.protobuf");
      ++protobuf_sent_;
    } else if (!t.req_body.empty()) {
      add("content-type", t.method == "PATCH" ? "application/merge-patch+json" : "application/json");
    }
    bool has_body = !t.req_body.empty() || t.method == "POST" || t.method == "PUT";
    if (has_body) {
      int n = std::snprintf(length, sizeof length, "%zu", t.req_body.size());
      content_length = std::string_view(length, static_cast<size_t>(n));
      add("content-length", content_length);
    }
    if (!t.authorization.empty()) add("authorization", t.authorization, NGHTTP2_NV_FLAG_NO_INDEX);
    for (auto& [n, v] : extra_headers_) add(n, v);
    nghttp2_data_provider prd{};
    prd.source.ptr = &t;
    prd.read_callback = &H2Client::read_body;
    int32_t sid = nghttp2_submit_request(c.h2, nullptr, nva_.data(), nva_.size(), has_body ? &prd : nullptr, &t);
    t.authorization.clear();
    if (sid == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE && !t.retried) {
      // Stream ids ran out (or a GOAWAY came): the connection drains, the
      // request goes on another.
      c.goaway = true;
      t.retried = true;
      t.conn = nullptr;
      TransferPtr owned = t.streaming ? std::move(streams_[t.id]) : std::move(unary_[t.id]);
      forget(t);
      retry_.push_back(std::move(owned));
      return;
    }
    if (sid < 0) {
      finish(t, Error::unavailable(what(t) + ": cannot open an HTTP/2 stream: " + nghttp2_strerror(sid)));
      forget(t);
      return;
    }
    t.stream_id = sid;
    c.streams[sid] = &t;
    if (!t.streaming) {
      ++c.unary_open;
      if (!t.patient()) {
        ++c.impatient_open;
        c.read_after = {};  // its answer is awaited: no gather begun for renewals delays it
      }
    }
    // A connection that has been silent a while gets a PING with the
    // request, so a dead one is found while the request still has time.
    if (!c.ping_outstanding && clock_->now() - c.last_recv >= kPingAfter) send_ping(c);
  }

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    auto* t = static_cast<Transfer*>(source->ptr);
    size_t n = std::min(length, t->req_body.size() - t->body_off);
    std::memcpy(buf, t->req_body.data() + t->body_off, n);
    t->body_off += n;
    if (t->body_off == t->req_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  // ---- connecting ----

  void begin_connect(Conn& c) {
    if (c.addrs.empty() && c.addr_index == 0) {
      if (!resolve_numeric(c)) {
        start_resolving(c);
        return;  // take_resolutions() goes on when the name is resolved
      }
    }
    while (c.addr_index < c.addrs.size()) {
      const sockaddr_storage& a = c.addrs[c.addr_index];
      int fd = ::socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        c.last_connect_error = std::strerror(errno);
        ++c.addr_index;
        continue;
      }
      int on = 1, user = kUserTimeoutMs, idle = kKeepIdleS, intvl = kKeepIntvlS, cnt = kKeepCnt;
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof user);
      (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
      int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), c.addr_lens[c.addr_index]);
      if (rc == 0 || errno == EINPROGRESS) {
        c.fd = fd;
        c.state = Conn::State::kConnecting;
        c.attempt_deadline =
            c.addr_index + 1 < c.addrs.size() ? clock_->now() + kAttemptTimeout : Instant::max();
        if (rc == 0) connected(c);
        return;
      }
      c.last_connect_error = std::strerror(errno);
      ::close(fd);
      ++c.addr_index;
    }
    kill(c, "cannot connect to " + authority_ + ": " +
                (c.last_connect_error.empty() ? std::string("no address") : c.last_connect_error));
  }

  static void append_addresses(const addrinfo* list, std::vector<sockaddr_storage>& addrs,
                               std::vector<socklen_t>& lens) {
    for (const addrinfo* a = list; a; a = a->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
      addrs.push_back(ss);
      lens.push_back(a->ai_addrlen);
    }
  }

  // A literal address needs no lookup: taken at once (no thread).
  bool resolve_numeric(Conn& c) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host_.c_str(), url_.port.c_str(), &hints, &res) != 0) return false;
    append_addresses(res, c.addrs, c.addr_lens);
    ::freeaddrinfo(res);
    return true;
  }

  // A name goes to getaddrinfo on a thread of its own; the connection waits
  // in kResolving, bounded by its connect deadline like a connect. A lookup
  // still running is shared: one that hangs holds one thread, not one per
  // connection tried meanwhile.
  void start_resolving(Conn& c) {
    c.state = Conn::State::kResolving;
    if (lookup_) {
      std::lock_guard<std::mutex> g(lookup_->mu);
      if (!lookup_->done) {
        c.resolution = lookup_;
        return;
      }
    }
    // Names under .localhost are the loopback (RFC 6761), as curl resolves them.
    bool loopback = host_ == "localhost" || (host_.size() > 10 && lower(host_).ends_with(".localhost"));
    auto r = std::make_shared<Resolution>();
    c.resolution = r;
    lookup_ = r;
    try {
      std::thread([r, waker = waker_, gai = getaddrinfo_, host = loopback ? std::string("localhost") : host_,
                    port = url_.port] {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        int rc = EAI_FAIL;
        try {
          rc = gai(host.c_str(), port.c_str(), &hints, &res);
        } catch (...) {  // a throwing hook fails the lookup, not the process
          res = nullptr;
        }
        {
          std::lock_guard<std::mutex> g(r->mu);
          r->rc = rc;
          if (rc == 0) append_addresses(res, r->addrs, r->addr_lens);
          r->done = true;
        }
        if (rc == 0 && res) ::freeaddrinfo(res);
        waker->wake();
      }).detach();
    } catch (const std::system_error& e) {
      c.resolution.reset();
      kill(c, "cannot resolve " + host_ + ": cannot start a thread: " + e.what());
    }
  }

  // Connections whose name is resolved go on connecting.
  void take_resolutions() {
    for (auto& cp : conns_) {
      Conn& c = *cp;
      if (c.state != Conn::State::kResolving) continue;
      int rc = 0;
      {
        std::lock_guard<std::mutex> g(c.resolution->mu);
        if (!c.resolution->done) continue;
        rc = c.resolution->rc;
        c.addrs = c.resolution->addrs;  // copied: connections may share one lookup
        c.addr_lens = c.resolution->addr_lens;
      }
      c.resolution.reset();
      if (rc != 0) {
        kill(c, "cannot resolve " + host_ + ": " + gai_strerror(rc));
        continue;
      }
      if (c.addrs.empty()) {
        kill(c, "cannot resolve " + host_ + ": no address");
        continue;
      }
      c.state = Conn::State::kConnecting;
      begin_connect(c);
      if (c.state == Conn::State::kReady) flush(c);
    }
  }

  void on_ready(Conn& c, short revents) {
    if (c.state == Conn::State::kDead) return;
    if (c.state == Conn::State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0 && !(revents & (POLLOUT | POLLERR | POLLHUP))) return;
      if (err != 0 || (revents & (POLLERR | POLLHUP))) {
        c.last_connect_error = std::strerror(err ? err : ECONNREFUSED);
        ::close(c.fd);
        c.fd = -1;
        ++c.addr_index;
        begin_connect(c);
        return;
      }
      connected(c);
      return;
    }
    if (c.state == Conn::State::kHandshaking) {
      handshake(c);
      return;
    }
    size_t open_before = c.unary_open;
    read_some(c);
    if (c.state != Conn::State::kReady) return;
    // More answers are due: leave the socket unread for a moment, so the
    // next ones are read together. Renewals alone in flight: after any read
    // (kPatientGather); else only after a read that completed requests
    // (kGather).
    Duration pause = Duration::zero();
    if (c.unary_open > 0 && c.impatient_open == 0 && patient_gather_ > Duration::zero()) {
      pause = patient_gather_;
    } else if (c.unary_open > 0 && c.unary_open < open_before) {
      pause = gather_;
    }
    if (pause > Duration::zero()) c.read_after = std::chrono::steady_clock::now() + pause;
    flush(c);
  }

  SSL_CTX* context_for(const Conn& c, std::string& why) {
    std::string identity = c.cert + '\0' + c.key;
    if (auto it = ctxs_.find(identity); it != ctxs_.end()) return it->second;
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
      why = "TLS setup failed: " + ssl_errors();
      return nullptr;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);  // a peer's close without close_notify reads as EOF
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // TLS reads what the socket holds into its own buffer, not a record
    // header and then its body: one read(2) for a burst of answers.
    SSL_CTX_set_read_ahead(ctx, 1);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
    if (cfg_.insecure_skip_tls_verify) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      if (cfg_.ca_pem.empty()) {
        SSL_CTX_set_default_verify_paths(ctx);
      } else {
        BIO* bio = BIO_new_mem_buf(cfg_.ca_pem.data(), static_cast<int>(cfg_.ca_pem.size()));
        X509_STORE* store = SSL_CTX_get_cert_store(ctx);
        int added = 0;
        while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
          if (X509_STORE_add_cert(store, x) == 1) ++added;
          X509_free(x);
        }
        BIO_free(bio);
        ERR_clear_error();
        if (added == 0) {
          SSL_CTX_free(ctx);
          why = "TLS verification failed (server certificate; check the kubeconfig's certificate-authority and "
                "tls-server-name): the certificate authority holds no PEM certificate";
          return nullptr;
        }
      }
    }
    if (!c.cert.empty()) {
      BIO* bio = BIO_new_mem_buf(c.cert.data(), static_cast<int>(c.cert.size()));
      X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      bool ok = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1;
      if (leaf) X509_free(leaf);
      while (ok) {
        X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        if (!extra) break;
        if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) X509_free(extra);
      }
      BIO_free(bio);
      EVP_PKEY* pkey = nullptr;
      if (ok && !c.key.empty()) {
        BIO* kb = BIO_new_mem_buf(c.key.data(), static_cast<int>(c.key.size()));
        pkey = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
        BIO_free(kb);
      }
      ok = ok && pkey && SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
      if (pkey) EVP_PKEY_free(pkey);
      if (!ok) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        why = "TLS verification failed (client certificate; check the kubeconfig's client-certificate and "
              "client-key): the certificate or its key cannot be read, or they do not match";
        return nullptr;
      }
    }
    ctxs_[identity] = ctx;
    return ctx;
  }

  static bool is_ip(const std::string& s) {
    in6_addr a6;
    in_addr a4;
    return inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1;
  }

  void connected(Conn& c) {
    ++connections_;
    std::string why;
    SSL_CTX* ctx = context_for(c, why);
    if (!ctx) {
      kill(c, why);
      return;
    }
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, c.fd);
    if (!cfg_.insecure_skip_tls_verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(c.ssl);
      if (is_ip(verify_name_)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, verify_name_.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, verify_name_.c_str(), 0);
      }
    }
    if (!is_ip(verify_name_)) SSL_set_tlsext_host_name(c.ssl, verify_name_.c_str());
    SSL_set_connect_state(c.ssl);
    c.state = Conn::State::kHandshaking;
    handshake(c);
  }

  void handshake(Conn& c) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_connect(c.ssl);
    if (rc != 1) {
      int err = SSL_get_error(c.ssl, rc);
      if (err == SSL_ERROR_WANT_READ) {
        c.want_write = false;
        return;
      }
      if (err == SSL_ERROR_WANT_WRITE) {
        c.want_write = true;
        return;
      }
      long v = SSL_get_verify_result(c.ssl);
      if (!cfg_.insecure_skip_tls_verify && v != X509_V_OK) {
        std::string name = cfg_.tls_server_name.empty() ? "" : " (tls-server-name " + cfg_.tls_server_name + ")";
        kill(c, "TLS verification failed" + name +
                    " (server certificate; check the kubeconfig's certificate-authority and tls-server-name): " +
                    X509_verify_cert_error_string(v));
        return;
      }
      // A server with no protocol in common ends the handshake with this
      // alert (RFC 7301), as others answer without ALPN (below).
      bool no_h2 = false;
      std::string detail = ssl_errors(SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL, &no_h2);
      if (no_h2) return refused_http2(c);
      if (detail.empty()) detail = errno != 0 ? std::strerror(errno) : "the server closed the connection";
      kill(c, "TLS handshake with " + authority_ + " failed: " + detail);
      return;
    }
    c.want_write = false;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(c.ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) return refused_http2(c);
    start_session(c);
  }

  void start_session(Conn& c) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &H2Client::on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Client::on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Client::on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Client::on_stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    nghttp2_session_client_new2(&c.h2, cb, &c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
    };
    nghttp2_submit_settings(c.h2, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(c.h2, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
    c.state = Conn::State::kReady;
    c.last_recv = clock_->now();
    std::deque<Transfer*> waiting;
    waiting.swap(c.waiting);
    for (Transfer* t : waiting) submit(c, *t);
    flush(c);
    // TLS reads ahead: records that came with the end of the handshake (the
    // server's SETTINGS) may wait in OpenSSL's buffer, where poll(2) cannot
    // see them.
    if (c.state == Conn::State::kReady && SSL_has_pending(c.ssl)) {
      read_some(c);
      if (c.state == Conn::State::kReady) flush(c);
    }
  }

  // ---- reading and writing ----

  void read_some(Conn& c) {
    unsigned char buf[kReadChunk];
    c.want_write = false;
    c.write_wants_read = false;  // whatever SSL_write waited for, flush() tries again after this
    for (;;) {
      ERR_clear_error();
      errno = 0;
      int n = SSL_read(c.ssl, buf, sizeof buf);
      if (n > 0) {
        c.last_recv = clock_->now();
        ssize_t used = nghttp2_session_mem_recv(c.h2, buf, static_cast<size_t>(n));
        if (used < 0) {
          kill(c, std::string("HTTP/2 protocol error from the server: ") + nghttp2_strerror(static_cast<int>(used)));
          return;
        }
        if (c.state == Conn::State::kDead) return;
        continue;
      }
      int err = SSL_get_error(c.ssl, n);
      if (err == SSL_ERROR_WANT_READ) return;
      if (err == SSL_ERROR_WANT_WRITE) {
        c.want_write = true;
        return;
      }
      if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)) {
        kill(c, "the server closed the connection");
      } else if (err == SSL_ERROR_SYSCALL && errno != 0) {
        kill(c, std::string("connection failed: ") + std::strerror(errno));
      } else {
        kill(c, "TLS error: " + ssl_errors());
      }
      return;
    }
  }

  // Frames everything nghttp2 has to send into the buffer, then writes as
  // much of it as TLS takes: one write for all the requests of a round.
  void flush(Conn& c) {
    if (c.state != Conn::State::kReady) return;
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(c.h2, &data);
      if (n < 0) {
        kill(c, std::string("HTTP/2 framing failed: ") + nghttp2_strerror(static_cast<int>(n)));
        return;
      }
      if (n == 0) break;
      if (c.woff == c.wbuf.size()) {
        c.wbuf.clear();
        c.woff = 0;
      }
      c.wbuf.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    while (c.woff < c.wbuf.size()) {
      ERR_clear_error();
      errno = 0;
      int n = SSL_write(c.ssl, c.wbuf.data() + c.woff, static_cast<int>(std::min<size_t>(c.wbuf.size() - c.woff, 1 << 20)));
      if (n > 0) {
        c.woff += static_cast<size_t>(n);
        continue;
      }
      int err = SSL_get_error(c.ssl, n);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        c.write_wants_read = err == SSL_ERROR_WANT_READ;
        return;
      }
      if (errno == EPIPE) take_sigpipe();
      kill(c, err == SSL_ERROR_SYSCALL && errno != 0 ? std::string("connection failed: ") + std::strerror(errno)
                                                      : "TLS error: " + ssl_errors());
      return;
    }
    c.write_wants_read = false;
    c.wbuf.clear();
    c.woff = 0;
    if (!nghttp2_session_want_read(c.h2) && !nghttp2_session_want_write(c.h2)) {
      kill(c, "the HTTP/2 session ended");
    } else if (c.goaway && c.streams.empty()) {
      kill(c, "the server sent GOAWAY");
    }
  }

  // Takes back the SIGPIPE a failed write left pending on this thread.
  static void take_sigpipe() {
    int saved = errno;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    timespec zero{};
    while (sigtimedwait(&pipe, nullptr, &zero) == SIGPIPE) {
    }
    errno = saved;
  }

  // ---- nghttp2 callbacks (inside mem_recv / mem_send, on the loop thread) ----

  static Transfer* transfer_of(nghttp2_session* s, int32_t sid) {
    return static_cast<Transfer*>(nghttp2_session_get_stream_user_data(s, sid));
  }

  static int on_header(nghttp2_session* s, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Transfer* t = transfer_of(s, frame->hd.stream_id);
    if (!t) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      long status = 0;
      for (char ch : v) status = status * 10 + (ch - '0');
      t->status = status;
    } else if (n == "content-type") {
      t->content_type = std::string(v);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<Conn*>(user);
    if (c->state == Conn::State::kDead) return 0;
    H2Client* self = c->client;
    switch (frame->hd.type) {
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) c->ping_outstanding = false;
        break;
      case NGHTTP2_GOAWAY:
        c->goaway = true;
        break;
      case NGHTTP2_HEADERS: {
        Transfer* t = transfer_of(s, frame->hd.stream_id);
        if (!t || !(frame->hd.flags & NGHTTP2_FLAG_END_HEADERS) || t->status < 200) break;
        if (t->streaming && t->status == 200 && !t->stream_format) {
          bool pb = t->lease() && is_protobuf_content_type(t->content_type);
          t->stream_format = pb ? WireFormat::kProtobuf : WireFormat::kJson;
          if (pb) ++self->protobuf_received_;
          if (t->on_open && !t->finished) std::exchange(t->on_open, nullptr)();
        }
        break;
      }
      default:
        break;
    }
    return 0;
  }

  static int on_data(nghttp2_session* s, uint8_t, int32_t sid, const uint8_t* data, size_t len, void* user) {
    auto* c = static_cast<Conn*>(user);
    if (c->state == Conn::State::kDead) return 0;
    Transfer* t = transfer_of(s, sid);
    if (!t || t->finished || !t->too_large.empty()) return 0;
    if (!t->take_body(std::string_view(reinterpret_cast<const char*>(data), len))) {
      t->reset = true;
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session* s, int32_t sid, uint32_t error_code, void* user) {
    auto* c = static_cast<Conn*>(user);
    if (c->state == Conn::State::kDead) return 0;
    Transfer* t = transfer_of(s, sid);
    c->streams.erase(sid);
    if (c->streams.empty()) c->idle_since = c->client->clock_->now();
    if (!t) return 0;
    if (!t->streaming && c->unary_open > 0) {
      --c->unary_open;
      if (!t->patient() && c->impatient_open > 0) --c->impatient_open;
      if (c->unary_open == 0) c->read_after = {};  // no request in flight: nothing to gather
    }
    c->client->stream_closed(*c, *t, error_code);
    return 0;
  }

  void stream_closed(Conn& c, Transfer& t, uint32_t error_code) {
    (void)c;
    t.conn = nullptr;
    t.stream_id = -1;
    if (t.status == 401) creds_.unauthorized();  // an exec plugin runs again next time
    if (t.finished) {
      forget(t);
      return;
    }
    if (!t.too_large.empty()) {
      finish(t, Error::invalid(what(t) + ": " + t.too_large));
    } else if (error_code == NGHTTP2_NO_ERROR && t.status != 0) {
      ++http2_;
      if (!t.streaming && is_protobuf_content_type(t.content_type)) ++protobuf_received_;
      finish(t, HttpResponse{t.status, std::move(t.resp_body), std::move(t.content_type)});
    } else if (error_code == NGHTTP2_REFUSED_STREAM && t.status == 0 && !t.retried) {
      // Refused unprocessed (the server is going away, or over its stream
      // limit): sent once more, on the connection connection_for picks then
      // (another one if a GOAWAY has marked this one).
      t.retried = true;
      t.status = 0;
      t.body_off = 0;
      TransferPtr owned = t.streaming ? std::move(streams_[t.id]) : std::move(unary_[t.id]);
      forget(t);
      retry_.push_back(std::move(owned));
      return;
    } else {
      finish(t, Error::unavailable(what(t) + ": the server reset the stream (" + nghttp2_http2_strerror(error_code) + ")"));
    }
    forget(t);
  }

  // ---- deadlines, health, ending ----

  // Reads `c` now, a gather or not: before a verdict on it or on its
  // requests, what came in time must have been read.
  void read_now(Conn& c) {
    c.read_after = {};
    read_some(c);
  }

  // Fails the requests whose deadline passed. The walk over every request
  // in flight is made only once the earliest deadline seen so far is due
  // (next_deadline_ may be early: a request that finished since; never late).
  void check_deadlines(Instant now) {
    if (now < next_deadline_) return;
    std::vector<uint64_t> late;
    next_deadline_ = Instant::max();
    for (auto& [id, t] : unary_) {
      if (t->finished) continue;
      if (now >= t->deadline) late.push_back(id);
      else next_deadline_ = std::min(next_deadline_, t->deadline);
    }
    if (late.empty()) return;
    // An answer may have come and wait unread (the gather): read every
    // connection first, so that none is failed as late that is not.
    for (auto& c : conns_) {
      if (c->state == Conn::State::kReady) read_now(*c);
    }
    for (uint64_t id : late) {
      auto it = unary_.find(id);
      if (it == unary_.end()) continue;  // answered by that read, or ended with a connection retired for an earlier one
      Transfer* t = it->second.get();
      if (t->finished) continue;
      std::string note;
      Conn* c = t->conn;
      if (c && c->state == Conn::State::kReady && now - t->sent >= kMinSilence && c->last_recv <= t->sent) {
        note = " (its connection received nothing for " + std::to_string(ms_of(now - c->last_recv)) +
               " ms: closed; the next requests open a new one)";
      }
      finish(*t, Error::timeout(what(*t) + ": timed out after " + std::to_string(ms_of(now - t->enqueued)) + " ms" +
                                (!c || c->state == Conn::State::kReady ? ""
                                 : c->state == Conn::State::kResolving ? " (resolving " + host_ + ")"
                                                                       : " (connecting to " + authority_ + ")") +
                                note));
      if (!note.empty()) {
        ++retired_;
        kill(*c, "received nothing for " + std::to_string(ms_of(now - c->last_recv)) + " ms");
        continue;
      }
      if (c && t->stream_id >= 0) {
        reset_stream(*c, *t);
      } else {
        if (c) c->waiting.erase(std::remove(c->waiting.begin(), c->waiting.end(), t), c->waiting.end());
        forget(*t);
      }
    }
  }

  static void reset_stream(Conn& c, Transfer& t) {
    if (t.reset) return;
    t.reset = true;
    nghttp2_submit_rst_stream(c.h2, NGHTTP2_FLAG_NONE, t.stream_id, NGHTTP2_CANCEL);
  }

  Instant health_due(const Conn& c) const {
    if (c.state == Conn::State::kConnecting) return std::min(c.connect_deadline, c.attempt_deadline);
    if (c.state == Conn::State::kResolving || c.state == Conn::State::kHandshaking) return c.connect_deadline;
    if (c.state != Conn::State::kReady) return Instant::max();
    if (c.streams.empty()) return c.waiting.empty() && !c.goaway ? c.idle_since + kIdleAfter : Instant::max();
    return c.ping_outstanding ? c.ping_sent + kPingTimeout : c.last_recv + kPingAfter;
  }

  void send_ping(Conn& c) {
    nghttp2_submit_ping(c.h2, NGHTTP2_FLAG_NONE, nullptr);
    c.ping_outstanding = true;
    c.ping_sent = clock_->now();
    ++probes_;
  }

  void check_health(Instant now) {
    for (auto& cp : conns_) {
      Conn& c = *cp;
      if (c.state == Conn::State::kConnecting && now >= c.attempt_deadline && now < c.connect_deadline) {
        c.last_connect_error = "no answer in " + std::to_string(ms_of(kAttemptTimeout)) + " ms";
        ::close(c.fd);
        c.fd = -1;
        ++c.addr_index;
        begin_connect(c);  // the next address, or the connection fails naming this one's silence
        continue;
      }
      if (c.state == Conn::State::kResolving || c.state == Conn::State::kConnecting ||
          c.state == Conn::State::kHandshaking) {
        if (now >= c.connect_deadline) {
          const char* step = c.state == Conn::State::kResolving    ? "resolving "
                             : c.state == Conn::State::kConnecting ? "connecting to "
                                                                   : "TLS handshake with ";
          kill(c, step + (c.state == Conn::State::kResolving ? host_ : authority_) + " timed out after " +
                      std::to_string(ms_of(kConnectTimeout)) + " ms");
        }
        continue;
      }
      if (c.state != Conn::State::kReady) continue;
      if (c.streams.empty()) {
        // Idle: closed with a GOAWAY (flush() ends it once that is out), so
        // an unused connection (one whose client certificate was rotated,
        // or one opened for a burst) does not stay open for good.
        if (!c.goaway && c.waiting.empty() && now - c.idle_since >= kIdleAfter) {
          nghttp2_session_terminate_session(c.h2, NGHTTP2_NO_ERROR);
          c.goaway = true;
        }
        continue;
      }
      if (c.ping_outstanding && now - c.ping_sent >= kPingTimeout) {
        read_now(c);  // its answer may wait unread (a gather): read before judging
        if (c.state != Conn::State::kReady) continue;
      }
      if (c.ping_outstanding && c.last_recv > c.ping_sent) c.ping_outstanding = false;  // data proves it alive
      if (c.ping_outstanding && now - c.ping_sent >= kPingTimeout) {
        ++retired_;
        kill(c, "no answer to an HTTP/2 PING for " + std::to_string(ms_of(now - c.ping_sent)) + " ms after " +
                    std::to_string(ms_of(c.ping_sent - c.last_recv)) + " ms of silence");
      } else if (!c.ping_outstanding && now - c.last_recv >= kPingAfter) {
        send_ping(c);
      }
    }
  }

  // Ends a connection: every transfer on it or waiting for it fails with
  // Unavailable naming `why`. The object goes at sweep_dead().
  void kill(Conn& c, const std::string& why) {
    if (c.state == Conn::State::kDead) return;
    c.state = Conn::State::kDead;
    c.dead_reason = why;
    c.resolution.reset();  // its thread finishes on its own
    std::vector<Transfer*> riders(c.waiting.begin(), c.waiting.end());
    for (auto& [sid, t] : c.streams) riders.push_back(t);
    c.waiting.clear();
    c.streams.clear();
    for (Transfer* t : riders) {
      t->conn = nullptr;
      finish(*t, Error::unavailable(what(*t) + ": " + why));
      forget(*t);
    }
  }

  void sweep_dead() {
    for (auto it = conns_.begin(); it != conns_.end();) {
      Conn& c = **it;
      if (c.state != Conn::State::kDead) {
        ++it;
        continue;
      }
      if (c.h2) nghttp2_session_del(c.h2);
      if (c.ssl) SSL_free(c.ssl);
      if (c.fd >= 0) ::close(c.fd);
      it = conns_.erase(it);
    }
  }

  // ---- the fallback (a server that refused HTTP/2) ----

  // The server refused HTTP/2 on `c` (an ALPN answer other than h2, or
  // the handshake ended by its no_application_protocol alert). Without a
  // fallback, the transfers waiting for `c` fail, naming it; with one, they
  // and every transfer after them go to the fallback (none had been sent).
  void refused_http2(Conn& c) {
    static constexpr const char* kRefused = "the server did not agree to HTTP/2 (ALPN)";
    if (!make_fallback_) {
      kill(c, std::string(kRefused) + "; use the curl transport (LEASEHOLD_KUBE_TRANSPORT=curl)");
      return;
    }
    if (!fallback_) {
      try {
        fallback_ = make_fallback_();
      } catch (const std::exception& e) {
        kill(c, std::string(kRefused) + ", and its libcurl fallback could not be made: " + e.what());
        return;
      }
      fallback_raw_.store(fallback_.get(), std::memory_order_release);
    }
    std::deque<Transfer*> riders;
    riders.swap(c.waiting);
    Instant now = clock_->now();
    for (Transfer* t : riders) {
      TransferPtr owned = t->streaming ? std::move(streams_[t->id]) : std::move(unary_[t->id]);
      forget(*t);
      t->conn = nullptr;
      if (now < owned->deadline) {
        --started_;  // the fallback counts it
        hand_over(std::move(owned), now);
      } else {
        finish(*owned, Error::timeout(what(*owned) + ": timed out while connecting to " + authority_));
      }
    }
    kill(c, "the server did not agree to HTTP/2 (ALPN); its transfers went to libcurl");
  }

  // Gives a transfer not yet sent to the fallback, with what is left of its
  // timeout (`now` is before its deadline). A stream keeps its id here:
  // cancel_now() maps it to the fallback's.
  void hand_over(TransferPtr owned, Instant now) {
    Transfer& t = *owned;
    if (!t.streaming) {
      Duration left = t.deadline == Instant::max() ? Duration::zero() : t.deadline - now;
      fallback_->request(std::move(t.method), std::move(t.path), std::move(t.req_body), left, std::move(t.done),
                         t.priority, t.media);
      return;
    }
    uint64_t id = t.id;
    {
      std::lock_guard<std::mutex> g(handed_mu_);
      handing_ = id;
    }
    auto on_end = [this, id, end = std::move(t.done)](Result<HttpResponse> r) mutable {
      {
        std::lock_guard<std::mutex> g(handed_mu_);
        // Ended while hand_over still opens it: hand_over must not map it.
        if (handed_.erase(id) == 0 && handing_ == id) ended_early_ = true;
      }
      if (end) end(std::move(r));
    };
    uint64_t theirs;
    if (t.lease()) {
      theirs = fallback_->watch_leases(std::move(t.path), std::move(t.on_frame), std::move(on_end), t.priority,
                                       std::move(t.on_open));
    } else {
      auto on_line = [f = std::move(t.on_frame)](std::string_view line) { f(line, WireFormat::kJson); };
      theirs = t.method == "POST"
                   ? fallback_->stream_post(std::move(t.path), std::move(t.req_body), std::move(on_line),
                                            std::move(on_end), t.priority, std::move(t.on_open))
                   : fallback_->stream(std::move(t.path), std::move(on_line), std::move(on_end), t.priority,
                                       std::move(t.on_open));
    }
    std::lock_guard<std::mutex> g(handed_mu_);
    if (!ended_early_) handed_[id] = theirs;
    handing_ = 0;
    ended_early_ = false;
  }

  void cancel_now(uint64_t id) {
    if (fallback_) {
      std::unique_lock<std::mutex> g(handed_mu_);
      if (auto it = handed_.find(id); it != handed_.end()) {
        uint64_t theirs = it->second;
        handed_.erase(it);
        g.unlock();
        fallback_->cancel(theirs);
        return;
      }
    }
    if (cancel_queued(id)) return;
    for (auto it = retry_.begin(); it != retry_.end(); ++it) {
      if ((*it)->id != id) continue;
      (*it)->done = nullptr;
      finish(**it, Error::unavailable("cancelled"));
      retry_.erase(it);
      break;
    }
    for (auto* m : {&unary_, &streams_}) {
      auto it = m->find(id);
      if (it == m->end()) continue;
      Transfer& t = *it->second;
      t.done = nullptr;
      t.on_frame = nullptr;
      t.on_open = nullptr;
      finish(t, Error::unavailable("cancelled"));
      Conn* c = t.conn;
      if (c && t.stream_id >= 0) {
        reset_stream(*c, t);  // forgotten at close
      } else {
        if (c) c->waiting.erase(std::remove(c->waiting.begin(), c->waiting.end(), &t), c->waiting.end());
        forget(t);
      }
      break;
    }
  }

  std::vector<std::pair<std::string, std::string>> extra_headers_;
  ServerUrl url_;
  std::string host_;         // to resolve and connect to (no brackets)
  std::vector<nghttp2_nv> nva_;  // submit()'s headers, kept for their capacity
  std::string verify_name_;  // the certificate is verified against it (tls-server-name or host)
  std::string authority_;    // :authority, host:port of the server URL
  std::string user_agent_;
  std::function<int(const char*, const char*, const addrinfo*, addrinfo**)> getaddrinfo_;
  const Duration gather_;          // see kGather
  const Duration patient_gather_;  // see kPatientGather
  std::shared_ptr<Waker> waker_ = std::make_shared<Waker>();
  std::shared_ptr<Resolution> lookup_;  // the latest lookup started (loop thread only)
  std::thread thread_;
  std::atomic<bool> stop_{false};
  // Loop thread only:
  std::list<std::unique_ptr<Conn>> conns_;
  uint64_t conn_serial_ = 0;
  std::map<std::string, SSL_CTX*> ctxs_;  // by client certificate and key
  std::map<uint64_t, TransferPtr> unary_;    // started requests, until their stream closes
  Instant next_deadline_ = Instant::max();   // at or before the earliest deadline in unary_ (check_deadlines)
  std::map<uint64_t, TransferPtr> streams_;  // started streams, until they close
  std::deque<TransferPtr> retry_;
  // The fallback: made on the loop thread when a server first refuses
  // HTTP/2, and from then on given every transfer (hand_over).
  std::function<std::shared_ptr<Client>()> make_fallback_;  // null: none (kHttp2)
  std::mutex handed_mu_;
  std::unordered_map<uint64_t, uint64_t> handed_;  // GUARDED_BY(handed_mu_): our stream id -> the fallback's
  uint64_t handing_ = 0;      // GUARDED_BY(handed_mu_): the stream hand_over is opening (0: none)
  bool ended_early_ = false;  // GUARDED_BY(handed_mu_): it ended before hand_over could map it
  std::shared_ptr<Client> fallback_;                // loop thread (and the destructor)
  std::atomic<Client*> fallback_raw_{nullptr};      // the same, for stats() on any thread
};

}  // namespace

std::shared_ptr<Client> make_h2_client(ClusterConfig config, ClientOptions options,
                                       std::function<std::shared_ptr<Client>()> fallback) {
  return std::make_shared<H2Client>(std::move(config), std::move(options), std::move(fallback));
}

}  // namespace leasehold::kube
