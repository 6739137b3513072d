#include "kube/client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "core/wake_batch.h"
#include "kube/client_front.h"
#include "kube/connections.h"
#include "kube/h2_client.h"
#include "kube/lease_codec.h"

namespace leasehold::kube {
namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr auto kQueueSweep = std::chrono::milliseconds(100);
// HTTP/2 streams per connection curl may use before it opens another (its
// default is 100); the server's SETTINGS_MAX_CONCURRENT_STREAMS caps it.
constexpr long kMaxStreams = 1000;
constexpr long kMaxIdleConnections = 4;
// Requests (not watches) in flight at once. Each costs ~90 KiB in curl and
// nghttp2 while it runs (easy handle, buffers, stream state), and glibc keeps
// what a burst used: 1,000 Leases renewed in the same instant left ~90 MiB
// resident. 64 in flight, plus the watches, stays within the 100 streams
// kube-apiserver grants one connection, and is more than it serves at once
// on a small control plane; the rest wait in the budget's queues, in
// priority order, with their timeouts running.
constexpr size_t kMaxInFlight = 64;
// Finished easy handles kept for reuse (at most one per request in flight).
constexpr size_t kMaxIdleEasy = kMaxInFlight;
// Dead connections (client.h states the rules and the bound; connections.h why).
constexpr SocketTuning kTcpTuning{std::chrono::seconds(5), std::chrono::seconds(3), std::chrono::seconds(1), 2};
constexpr auto kProbeAfter = std::chrono::seconds(3);
constexpr auto kProbeTimeout = std::chrono::seconds(2);
constexpr auto kHealthSweep = std::chrono::milliseconds(500);
// A request's timeout ends its connection only after it waited this long: a
// shorter one says nothing about the connection.
constexpr auto kMinSilence = std::chrono::milliseconds(500);

struct Transfer : TransferHead {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::atomic<uint64_t>* protobuf_counter = nullptr;  // the client's protobuf_received_
  bool probe = false;  // a connection health probe: not counted in started/completed
  Instant sent{};  // handed to curl
  char errbuf[CURL_ERROR_SIZE] = {};
};
using TransferPtr = std::unique_ptr<Transfer>;

class CurlClient final : public ClientFront<Transfer> {
 public:
  CurlClient(ClusterConfig c, ClientOptions o)
      : ClientFront(std::move(c), o), health_probes_(o.health_probes), extra_headers_(std::move(o.extra_headers)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    url_base_ = cfg_.server;
    if (!cfg_.tls_server_name.empty()) {
      // Ask curl for https://NAME:PORT (so SNI and certificate verification use
      // NAME) but connect to the server URL's host, and keep its Host header,
      // as client-go's TLSClientConfig.ServerName does.
      ServerUrl u = split_server(cfg_.server);
      std::string name = cfg_.tls_server_name;
      if (name.find(':') != std::string::npos && name.front() != '[') name = "[" + name + "]";
      url_base_ = u.scheme + "://" + name + ":" + u.port + u.prefix;
      connect_to_ = curl_slist_append(nullptr, (name + ":" + u.port + ":" + u.host + ":" + u.port).c_str());
      host_header_ = "Host: " + u.host + ":" + u.port;
    }
    if (!cfg_.proxy_url.empty()) {
      // client-go's socks5 dialer lets the proxy resolve names: curl's socks5h.
      proxy_ = cfg_.proxy_url.rfind("socks5://", 0) == 0 ? "socks5h://" + cfg_.proxy_url.substr(9) : cfg_.proxy_url;
    }
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    // Every request and watch of the Runtime shares one HTTP/2 connection.
    // curl opens another one once more streams are in flight than it or the
    // server allows, and keeps it cached: 1,000 Leases renewing at once held
    // ~600 TLS connections, each with its TLS and HTTP/2 buffers and one more
    // fd in every poll. Now our own limit is high (the server's
    // SETTINGS_MAX_CONCURRENT_STREAMS decides: kube-apiserver has granted
    // 100 since the 2023 rapid-reset fix), at most kMaxInFlight requests run
    // at once (below), and at most kMaxIdleConnections are kept once idle.
    // More connections are still opened when the server's limit is reached
    // (per-name watches of many Leases) or it speaks HTTP/1.1.
    curl_multi_setopt(multi_, CURLMOPT_MAX_CONCURRENT_STREAMS, kMaxStreams);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, kMaxIdleConnections);
    thread_ = std::thread([this] { loop(); });
  }

  ~CurlClient() override {
    stop_wakes();
    stop_ = true;
    curl_multi_wakeup(multi_);
    thread_.join();
    for (auto& [easy, t] : active_) {
      curl_multi_remove_handle(multi_, easy);
      finish(*t, Error::unavailable("client shut down"));
    }
    active_.clear();
    fail_queued("client shut down");
    for (CURL* e : idle_easy_) curl_easy_cleanup(e);
    idle_easy_.clear();
    curl_multi_cleanup(multi_);
    curl_slist_free_all(connect_to_);
  }

 private:
  void wake_loop() override { curl_multi_wakeup(multi_); }

  // Header lines; the empty one ends them. A stream answered 200 is open.
  static size_t on_header(char* ptr, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * n;
    std::string_view line(ptr, len);
    if (t->on_open && (line == "\r\n" || line == "\n")) {
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      if (status == 200) std::exchange(t->on_open, nullptr)();
    }
    return len;
  }

  static size_t on_data(char* ptr, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * n;
    if (t->streaming && !t->stream_format) {
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      if (status == 200) {
        char* ct = nullptr;
        curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
        bool pb = t->lease() && ct && is_protobuf_content_type(ct);
        t->stream_format = pb ? WireFormat::kProtobuf : WireFormat::kJson;
        if (pb && t->protobuf_counter) ++*t->protobuf_counter;
      }
    }
    return t->take_body(std::string_view(ptr, len)) ? len : 0;  // 0 aborts the transfer
  }

  static void set_blob(CURL* e, CURLoption opt, const std::string& data) {
    curl_blob blob{const_cast<char*>(data.data()), data.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, opt, &blob);
  }

  // Hands one transfer to curl. Returns false (and completes it) when it
  // cannot start: no token is spent on it then. A transfer that needs a new
  // exec credential waits for it (admit(), its token spent) and starts when
  // the plugin has answered.
  bool start(TransferPtr& owned, Instant now) {
    std::optional<Credentials::Pick> pick = admit(owned, now);
    if (!pick) return !owned;  // parked for the exec plugin (true), or failed
    Transfer& t = *owned;
    const std::string* cert = pick->cert;
    const std::string* key = pick->key;
    CURL* e = nullptr;
    if (!idle_easy_.empty()) {
      e = idle_easy_.back();
      idle_easy_.pop_back();
    } else {
      e = curl_easy_init();
    }
    t.easy = e;
    conns_.attach(e);
    std::string url = url_base_ + t.path;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t.method.c_str());
    if (!t.req_body.empty() || t.method == "POST" || t.method == "PUT") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.req_body.c_str());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(t.req_body.size()));
    }
    t.protobuf_counter = &protobuf_received_;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlClient::on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    if (t.on_open) {
      curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &CurlClient::on_header);
      curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    }
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "leasehold/" LEASEHOLD_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);  // multiplex on the one connection being made
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    Duration connect = kConnectTimeout;
    if (!t.streaming) {
      Duration left = t.deadline - now;
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, std::max(1L, ms_of(left)));
      connect = std::min(connect, left);
    }
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::max(1L, ms_of(connect)));
    if (!cfg_.ca_pem.empty()) set_blob(e, CURLOPT_CAINFO_BLOB, cfg_.ca_pem);
    if (cfg_.insecure_skip_tls_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (connect_to_) curl_easy_setopt(e, CURLOPT_CONNECT_TO, connect_to_);
    if (!proxy_.empty()) curl_easy_setopt(e, CURLOPT_PROXY, proxy_.c_str());
    if (!cert->empty()) {
      set_blob(e, CURLOPT_SSLCERT_BLOB, *cert);
      curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
      set_blob(e, CURLOPT_SSLKEY_BLOB, *key);
      curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    t.headers = curl_slist_append(t.headers, t.lease() && lease_format_ == WireFormat::kProtobuf
                                                 ? "Accept: application/vnd.kubernetes.protobuf, application/json"
                                                 : "Accept: application/json");
    if (std::string_view(t.req_body).substr(0, kProtobufMagic.size()) == kProtobufMagic) {
      t.headers = curl_slist_append(t.headers, "Content-Type: application/vnd.kubernetes.protobuf");
      ++protobuf_sent_;
    } else if (!t.req_body.empty()) {
      // PATCH bodies are JSON merge patches (RFC 7386); everything else is an object.
      t.headers = curl_slist_append(t.headers, t.method == "PATCH" ? "Content-Type: application/merge-patch+json"
                                                                   : "Content-Type: application/json");
    }
    if (!host_header_.empty()) t.headers = curl_slist_append(t.headers, host_header_.c_str());
    if (!pick->authorization.empty()) {
      t.headers = curl_slist_append(t.headers, ("Authorization: " + pick->authorization).c_str());
    }
    for (const std::string& h : extra_headers_) t.headers = curl_slist_append(t.headers, h.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers);
    curl_multi_add_handle(multi_, e);
    if (!t.probe) ++started_;
    t.sent = now;
    if (now > t.enqueued + std::chrono::milliseconds(1)) ++waited_;
    if (!t.streaming) ++unary_active_;
    active_[e] = std::move(owned);
    return true;
  }

  void finish(Transfer& t, Result<HttpResponse> r) override {
    auto done = std::move(t.done);
    curl_slist_free_all(t.headers);
    t.headers = nullptr;
    if (t.easy) {
      // Kept for the next transfer (curl_easy_reset drops every option, and
      // keeps the handle's buffers): a new handle per request was a large
      // share of the client's allocations at 1,000 Leases.
      if (idle_easy_.size() < kMaxIdleEasy) {
        curl_easy_reset(t.easy);
        idle_easy_.push_back(t.easy);
      } else {
        curl_easy_cleanup(t.easy);
      }
    }
    t.easy = nullptr;
    if (!t.probe) ++completed_;
    if (done) done(std::move(r));
  }

  // curl's own explanation when it wrote one (names the host or the
  // certificate problem; never headers), else the generic text of `code`.
  static std::string reason(const Transfer& t, CURLcode code) {
    std::string detail = t.errbuf;
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    return detail.empty() ? curl_easy_strerror(code) : detail;
  }

  void complete(CURL* e, CURLcode code) {
    curl_multi_remove_handle(multi_, e);
    auto it = active_.find(e);
    if (it == active_.end()) return;
    auto t = std::move(it->second);
    active_.erase(it);
    if (!t->streaming) --unary_active_;
    long status = 0, version = 0, conns = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
    connections_ += static_cast<uint64_t>(conns);
    if (version == CURL_HTTP_VERSION_2_0 && status != 0) ++http2_;
    if (status == 401) creds_.unauthorized();  // an exec plugin runs again next time
    std::string w = what(*t);
    if (!t->too_large.empty()) {
      finish(*t, Error::invalid(w + ": " + t->too_large));
    } else if (code == CURLE_OK || (status != 0 && code == CURLE_WRITE_ERROR)) {
      char* ct = nullptr;
      curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
      std::string content_type = ct ? ct : "";
      if (!t->streaming && is_protobuf_content_type(content_type)) ++protobuf_received_;
      finish(*t, HttpResponse{status, std::move(t->resp_body), std::move(content_type)});
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      std::string retired = retire_if_silent(e, *t);
      finish(*t, Error::timeout(w + ": " + reason(*t, code) + retired));
    } else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
               code == CURLE_SSL_CERTPROBLEM) {
      // A certificate problem, not a credentials one: labelled as what the
      // transport saw (Unavailable, retried like any unreachable server, so
      // a corrected CA or certificate is picked up), never Unauthorized.
      std::string name = cfg_.tls_server_name.empty() ? "" : " (tls-server-name " + cfg_.tls_server_name + ")";
      const char* check = code == CURLE_SSL_CERTPROBLEM
                              ? "client certificate; check the kubeconfig's client-certificate and client-key"
                              : "server certificate; check the kubeconfig's certificate-authority and tls-server-name";
      finish(*t, Error::unavailable(w + name + ": TLS verification failed (" + check + "): " + reason(*t, code)));
    } else {
      std::string via = proxy_.empty() ? "" : " (via proxy " + redact_url(cfg_.proxy_url) + ")";
      finish(*t, Error::unavailable(w + via + ": " + reason(*t, code)));
    }
  }

  void loop() {
    Instant next_sweep = clock_->now();
    Instant next_health = next_sweep;
    while (!stop_) {
      // The answers and watch events of this round are posted to the I/O
      // thread with one wake-up (core::WakeBatch), at the end of the round,
      // before the poll.
      std::optional<core::WakeBatch> batch(std::in_place);
      Instant now = clock_->now();
      auto starter = [this](TransferPtr& t, Instant at) { return start(t, at); };
      for (uint64_t id : take_queued(now, starter)) cancel_now(id);
      if (now >= next_sweep) {
        // Queued requests whose timeout passed fail now, not when a token frees.
        expire_queued(now, starter);
        next_sweep = now + kQueueSweep;
      }
      // At most kMaxInFlight requests at once (watches not counted); the rest
      // wait in the queues, in priority order, and start as answers come.
      size_t room = unary_active_ < kMaxInFlight ? kMaxInFlight - unary_active_ : 0;
      limiter_.pop_ready(now, [&](TransferPtr& t) { return start(t, now); }, room);
      queued_lease_ = limiter_.queued(Priority::kLease);
      queued_background_ = limiter_.queued(Priority::kBackground);
      perform();
      if (retired_now_) {
        // Let curl see the ended connection (and fail what rode on it) before
        // the next transfers are added, so none of them is put on it.
        retired_now_ = false;
        perform();
      }
      if (now >= next_health) {
        check_health(now);
        next_health = now + kHealthSweep;
      }
      long wait_ms = 1000;
      if (!active_.empty()) wait_ms = std::min(wait_ms, ms_of(kHealthSweep));
      // Full: a finished request (socket activity) wakes the poll, and the
      // sweep still fails queued requests whose timeout passed.
      if (unary_active_ >= kMaxInFlight && (queued_lease_ || queued_background_)) {
        wait_ms = std::min(wait_ms, ms_of(kQueueSweep));
      } else if (auto next = limiter_.next_ready(clock_->now())) {
        wait_ms = std::min(wait_ms, ms_of(*next - clock_->now()) + 1);
        wait_ms = std::min(wait_ms, ms_of(kQueueSweep));
      }
      batch.reset();
      if (wait_ms > 0) curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait_ms), nullptr);
    }
  }

  void perform() {
    int running = 0;
    curl_multi_perform(multi_, &running);
    CURLMsg* msg;
    int left;
    while ((msg = curl_multi_info_read(multi_, &left))) {
      if (msg->msg == CURLMSG_DONE) complete(msg->easy_handle, msg->data.result);
    }
  }

  // `t` timed out: its connection is ended if it received nothing since `t`
  // was sent. Returns a note for the error message.
  std::string retire_if_silent(CURL* e, const Transfer& t) {
    Duration age = clock_->now() - t.sent;
    if (age < kMinSilence) return "";
    auto quiet = conns_.retire_if_silent(e, age);
    if (!quiet) return "";
    ++retired_;
    retired_now_ = true;
    return " (its connection received nothing for " + std::to_string(ms_of(*quiet)) +
           " ms: closed; the next requests open a new one)";
  }

  // Sends a probe when a connection that carries transfers has received
  // nothing for kProbeAfter (one probe at a time, at most one per kProbeAfter).
  void check_health(Instant now) {
    if (!health_probes_ || probing_ || now < next_probe_) return;
    std::vector<CURL*> in_use;
    for (auto& [easy, t] : active_) in_use.push_back(easy);
    if (!conns_.any_silent(in_use, kProbeAfter)) return;
    auto t = std::make_unique<Transfer>();
    t->id = 0;  // never cancelled by id
    t->method = "GET";
    t->path = "/version";
    t->probe = true;
    t->priority = Priority::kLease;
    t->enqueued = now;
    t->deadline = now + kProbeTimeout;
    t->done = [this](const Result<HttpResponse>&) { probing_ = false; };
    probing_ = true;
    next_probe_ = now + kProbeAfter;
    ++probes_;
    start(t, now);  // not through the budget: a health check must not wait behind requests
  }

  void cancel_now(uint64_t id) {
    if (cancel_queued(id)) return;
    for (auto it = active_.begin(); it != active_.end(); ++it) {
      if (it->second->id != id) continue;
      curl_multi_remove_handle(multi_, it->first);
      auto t = std::move(it->second);
      active_.erase(it);
      if (!t->streaming) --unary_active_;
      t->done = nullptr;
      finish(*t, Error::unavailable("cancelled"));
      break;
    }
  }

  const bool health_probes_;
  std::vector<std::string> extra_headers_;
  std::string url_base_;               // cfg_.server, or its tls-server-name form
  curl_slist* connect_to_ = nullptr;   // tls-server-name: NAME:PORT:HOST:PORT
  std::string host_header_;            // tls-server-name: the server URL's authority
  std::string proxy_;                  // as curl wants it
  CURLM* multi_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  // Loop thread only:
  Connections conns_{kTcpTuning};
  bool probing_ = false;       // a probe is in flight
  Instant next_probe_{};       // no probe before this
  bool retired_now_ = false;   // a connection was ended in this round of the loop
  std::map<CURL*, TransferPtr> active_;
  std::vector<CURL*> idle_easy_;  // finished handles, reset, for the next transfers
  size_t unary_active_ = 0;  // entries of active_ that are not watches
};

}  // namespace

void add_stats(ClientStats& into, const ClientStats& more) {
  static_assert(sizeof(ClientStats) == 12 * sizeof(uint64_t), "a new ClientStats field belongs in the list below");
  for (uint64_t ClientStats::*f :
       {&ClientStats::started, &ClientStats::completed, &ClientStats::connections, &ClientStats::http2,
        &ClientStats::waited, &ClientStats::expired_in_queue, &ClientStats::queued_lease,
        &ClientStats::queued_background, &ClientStats::probes, &ClientStats::retired, &ClientStats::protobuf_sent,
        &ClientStats::protobuf_received}) {
    into.*f += more.*f;
  }
}

Result<std::shared_ptr<Client>> Client::create(ClusterConfig config, ClientOptions options) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return Error::invalid(config.source + ": server \"" + redact_url(config.server) + "\" is not an http(s) URL");
  }
  if (config.server.size() <= config.server.find("://") + 3) {
    return Error::invalid(config.source + ": server \"" + config.server + "\" names no host");
  }
  if (auto v = validate_rate_limit(options.rate, "kube_"); !v) return v.error();
  if (const char* env = std::getenv("LEASEHOLD_KUBE_CONTENT_TYPE"); env && *env) {
    std::string_view v(env);
    if (v == "json") {
      options.lease_format = WireFormat::kJson;
    } else if (v == "protobuf") {
      if (!protobuf_supported()) {
        return Error::invalid("LEASEHOLD_KUBE_CONTENT_TYPE=protobuf: this build has no protobuf support "
                              "(LEASEHOLD_PROTOBUF=OFF)");
      }
      options.lease_format = WireFormat::kProtobuf;
    } else {
      return Error::invalid("LEASEHOLD_KUBE_CONTENT_TYPE=\"" + std::string(v.substr(0, 32)) +
                            "\": expected json or protobuf");
    }
  }
  if (!protobuf_supported()) options.lease_format = WireFormat::kJson;
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  std::string asked = "ClientOptions::transport";
  if (!options.transport) {
    options.transport = Transport::kAuto;
    if (const char* env = std::getenv("LEASEHOLD_KUBE_TRANSPORT"); env && *env) {
      std::string_view v(env);
      asked = "LEASEHOLD_KUBE_TRANSPORT=" + std::string(v.substr(0, 32));
      if (v == "http2") {
        options.transport = Transport::kHttp2;
      } else if (v == "curl") {
        options.transport = Transport::kCurl;
      } else if (v != "auto") {
        return Error::invalid(asked + ": expected auto, curl or http2");
      }
    }
  }
  const char* proxy_var = nullptr;
  for (const char* var : {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    if (const char* p = std::getenv(var); p && *p) {
      proxy_var = var;
      break;
    }
  }
  bool https = config.server.rfind("https://", 0) == 0;
  if (*options.transport == Transport::kAuto) {
    if (!https || !config.proxy_url.empty() || proxy_var) {
      options.transport = Transport::kCurl;
    } else {
      // libcurl, should the server refuse HTTP/2: made only then, with the
      // same settings but no budget of its own (the requests it gets have
      // passed this client's).
      ClientOptions curl_options = options;
      curl_options.transport = Transport::kCurl;
      curl_options.rate.qps = 0;
      auto fallback = [config, curl_options]() -> std::shared_ptr<Client> {
        return std::make_shared<CurlClient>(config, curl_options);
      };
      return make_h2_client(std::move(config), std::move(options), std::move(fallback));
    }
  }
  if (*options.transport == Transport::kHttp2) {
    if (!https) {
      return Error::invalid(asked + ": the http2 transport speaks only https://, and the server is \"" +
                            redact_url(config.server) + "\" (" + config.source + "); use the curl transport");
    }
    if (!config.proxy_url.empty()) {
      return Error::invalid(asked + ": the http2 transport has no proxy support, and " + config.source +
                            " sets proxy-url; use the curl transport");
    }
    if (proxy_var) {
      return Error::invalid(asked + ": the http2 transport has no proxy support, and " + proxy_var +
                            " is set; unset it or use the curl transport");
    }
    return make_h2_client(std::move(config), std::move(options));
  }
  return std::shared_ptr<Client>(std::make_shared<CurlClient>(std::move(config), std::move(options)));
}

}  // namespace leasehold::kube
