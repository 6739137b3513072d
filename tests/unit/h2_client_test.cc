// The own HTTP/2 transport (src/kube/h2_client.h) against an in-process
// HTTP/2 server on loopback (nghttp2 server session over OpenSSL, a
// self-signed certificate made here), for what kube-apiserver cannot be made
// to do on demand: refuse a stream with GOAWAY, go silent mid-stream, send
// too much. What the transport does with Kubernetes is tested on the real
// control plane (the whole suite runs on it; kube.curl.* on libcurl). Real time: the silent-connection case takes
// the PING bound (3 s + 2 s).
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kube/client.h"

namespace leasehold::kube {
namespace {

using namespace std::chrono_literals;

class TestH2Server {
 public:
  enum class Mode {
    kAnswer,         // 200 "ok\n" to every request
    kGoawayFirst,    // the first connection answers its first request with GOAWAY (last stream 0)
    kSilentStream,   // /watch: 200 headers, then neither reads nor writes again (a blackholed peer)
    kOpenStream,     // /watch: 200 headers, the stream kept open; other paths answered
    kHugeBody,       // 200 and 9 MiB of body
    kDelayed,        // /late answered 150 ms after it came, /slow 1 s after, /hold never; other paths at once
    kHttp11,         // no HTTP/2: ALPN http/1.1 when offered, else the handshake ends with the
                     // no_application_protocol alert (RFC 7301); then HTTP/1.1: 200 "ok\n" to every
                     // request; /watch: 200, one chunked line "ev\n", the stream kept open
    kHttp11NoAlpn,   // the same, but a client that does not offer http/1.1 gets no ALPN answer
  };

  explicit TestH2Server(Mode mode) : mode_(mode) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("h2-test"), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(ctx_, cert);
    SSL_CTX_use_PrivateKey(ctx_, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    SSL_CTX_set_alpn_select_cb(
        ctx_,
        [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
           void* arg) -> int {
          auto* server = static_cast<TestH2Server*>(arg);
          const unsigned char* http11 = nullptr;
          for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {  // length-prefixed names
            if (std::string_view(reinterpret_cast<const char*>(in + i + 1), std::min(inlen - i - 1, unsigned{in[i]})) ==
                "http/1.1") {
              http11 = in + i;
            }
          }
          if (http11) ++server->offered_http11;
          if (server->mode_ == Mode::kHttp11 || server->mode_ == Mode::kHttp11NoAlpn) {
            if (!http11) return server->mode_ == Mode::kHttp11 ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
            *out = http11 + 1;
            *outlen = http11[0];
            return SSL_TLSEXT_ERR_OK;
          }
          unsigned char* o = nullptr;
          if (nghttp2_select_next_protocol(&o, outlen, in, inlen) != 1) return SSL_TLSEXT_ERR_NOACK;
          *out = o;
          return SSL_TLSEXT_ERR_OK;
        },
        this);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }

  ~TestH2Server() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> connections{0};
  std::atomic<int> requests{0};
  std::atomic<int> cancelled{0};  // streams the client reset with CANCEL
  std::atomic<int> goaways{0};    // GOAWAY frames the client sent
  std::atomic<int> closed{0};     // connections that ended
  std::atomic<int> offered_http11{0};  // handshakes whose client offered http/1.1 (libcurl does, ours does not)
  std::atomic<int> watches_closed{0};  // kHttp11: connections carrying /watch that ended

 private:
  struct Session {
    TestH2Server* server = nullptr;
    nghttp2_session* h2 = nullptr;
    int index = 0;          // 1 for the first connection
    bool go_silent = false;  // kSilentStream: stop all I/O once what is queued is written
    bool silent = false;
    std::map<int32_t, std::string> paths;  // by stream
    size_t huge_left = 0;   // kHugeBody: bytes still to send
    std::vector<std::pair<std::chrono::steady_clock::time_point, int32_t>> later;  // kDelayed: /late, when due
  };

  void run() {
    std::vector<std::thread> conns;
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int index = ++connections;
      conns.emplace_back([this, fd, index] { serve(fd, index); });
    }
    for (auto& t : conns) t.join();
  }

  static ssize_t send_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* src, void* user) {
    auto* s = static_cast<Session*>(user);
    if (s->server->mode_ == Mode::kHugeBody) {
      size_t n = std::min(length, s->huge_left);
      std::memset(buf, 'x', n);
      s->huge_left -= n;
      if (s->huge_left == 0) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    }
    if (src->ptr == nullptr) return NGHTTP2_ERR_DEFERRED;  // a /watch: headers only, the stream stays open
    const char* body = static_cast<const char*>(src->ptr);
    size_t n = std::strlen(body);
    std::memcpy(buf, body, n);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_frame_recv(nghttp2_session* h2, const nghttp2_frame* frame, void* user) {
    auto* s = static_cast<Session*>(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) ++s->server->goaways;
    bool request_done = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    if (!request_done) return 0;
    ++s->server->requests;
    Mode mode = s->server->mode_;
    if (mode == Mode::kGoawayFirst && s->index == 1) {
      nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
      return 0;
    }
    if (mode == Mode::kDelayed && s->paths[frame->hd.stream_id] == "/hold") return 0;
    if (mode == Mode::kDelayed && (s->paths[frame->hd.stream_id] == "/late" || s->paths[frame->hd.stream_id] == "/slow")) {
      auto delay = s->paths[frame->hd.stream_id] == "/late" ? 150ms : 1000ms;
      s->later.emplace_back(std::chrono::steady_clock::now() + delay, frame->hd.stream_id);
      return 0;
    }
    respond(h2, frame->hd.stream_id, s);
    return 0;
  }

  static void respond(nghttp2_session* h2, int32_t stream_id, Session* s) {
    Mode mode = s->server->mode_;
    static char ok[] = "ok\n";
    nghttp2_nv hdrs[] = {
        {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(":status")),
         const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>("200")), 7, 3, NGHTTP2_NV_FLAG_NONE},
        {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>("content-type")),
         const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>("application/json")), 12, 16, NGHTTP2_NV_FLAG_NONE},
    };
    bool watch = s->paths[stream_id] == "/watch";
    bool hold = watch && (mode == Mode::kSilentStream || mode == Mode::kOpenStream);
    nghttp2_data_provider prd{};
    prd.source.ptr = hold ? nullptr : ok;
    prd.read_callback = &TestH2Server::send_body;
    if (mode == Mode::kHugeBody) s->huge_left = 9u << 20;
    nghttp2_submit_response(h2, stream_id, hdrs, 2, &prd);
    if (hold && mode == Mode::kSilentStream) s->go_silent = true;  // once these headers are out
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    if (std::string_view(reinterpret_cast<const char*>(name), namelen) == ":path") {
      static_cast<Session*>(user)->paths[frame->hd.stream_id] =
          std::string(reinterpret_cast<const char*>(value), valuelen);
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t, uint32_t error_code, void* user) {
    if (error_code == NGHTTP2_CANCEL) ++static_cast<Session*>(user)->server->cancelled;
    return 0;
  }

  void serve(int fd, int index) {
    // A client that goes while this thread writes must not end the test
    // process with SIGPIPE.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ERR_clear_error();
      SSL_free(ssl);
      ::close(fd);
      return;
    }
    if (mode_ == Mode::kHttp11 || mode_ == Mode::kHttp11NoAlpn) {
      serve_http11(ssl, fd);
    } else {
      serve_http2(ssl, fd, index);
    }
    SSL_free(ssl);
    ::close(fd);
    ++closed;
  }

  // One HTTP/1.1 connection: GET requests (no bodies), answered in turn.
  void serve_http11(SSL* ssl, int fd) {
    std::string in;
    bool watching = false;
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (SSL_pending(ssl) == 0 && ::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) {  // the client closed (a cancelled watch, or the client's end)
        if (watching) ++watches_closed;
        return;
      }
      if (watching) continue;
      in.append(buf, static_cast<size_t>(n));
      size_t end;
      while (!watching && (end = in.find("\r\n\r\n")) != std::string::npos) {
        std::string head = in.substr(0, end);
        in.erase(0, end + 4);
        ++requests;
        size_t sp = head.find(' ');
        std::string path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
        std::string out;
        if (path == "/watch") {
          watching = true;
          out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nev\n\r\n";
        } else {
          out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\nok\n";
        }
        if (SSL_write(ssl, out.data(), static_cast<int>(out.size())) <= 0) return;
      }
    }
  }

  void serve_http2(SSL* ssl, int fd, int index) {
    Session s;
    s.server = this;
    s.index = index;
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &TestH2Server::on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &TestH2Server::on_stream_close);
    nghttp2_session_callbacks_set_on_header_callback(cb, &TestH2Server::on_header);
    nghttp2_session_server_new(&s.h2, cb, &s);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    nghttp2_submit_settings(s.h2, NGHTTP2_FLAG_NONE, iv, 1);
    bool open = true;
    bool linger = false;  // close as servers do after a GOAWAY: no reset
    while (!stop_ && open) {
      for (size_t i = 0; i < s.later.size();) {  // kDelayed: the answers now due
        if (s.later[i].first > std::chrono::steady_clock::now()) {
          ++i;
          continue;
        }
        respond(s.h2, s.later[i].second, &s);
        s.later.erase(s.later.begin() + static_cast<std::ptrdiff_t>(i));
      }
      // Write what the session has (unless silent).
      if (!s.silent) {
        const uint8_t* data;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(s.h2, &data)) > 0) {
          if (SSL_write(ssl, data, static_cast<int>(n)) <= 0) {
            open = false;
            break;
          }
        }
        if (mode_ == Mode::kGoawayFirst && index == 1 && requests > 0 && !nghttp2_session_want_write(s.h2)) {
          open = false;  // the GOAWAY is out: close
          linger = true;
          break;
        }
        if (s.go_silent) s.silent = true;
      }
      if (s.silent) {  // blackholed: nothing read, nothing written, until the test ends
        std::this_thread::sleep_for(20ms);
        continue;
      }
      pollfd p{fd, POLLIN, 0};
      if (SSL_pending(ssl) == 0 && ::poll(&p, 1, s.later.empty() ? 50 : 5) <= 0) continue;
      uint8_t buf[16384];
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) break;
      if (nghttp2_session_mem_recv(s.h2, buf, static_cast<size_t>(n)) < 0) break;
    }
    if (linger) {
      // A close with unread bytes (the client's last frames) would be a TCP
      // reset, which can reach the client before it has read the GOAWAY:
      // end our side, then read until the client closes (at most 2 s).
      ::shutdown(fd, SHUT_WR);
      char sink[4096];
      for (int i = 0; i < 100; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0 && ::read(fd, sink, sizeof sink) <= 0) break;
      }
    }
    nghttp2_session_del(s.h2);
  }

  Mode mode_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A client of the own HTTP/2 transport (or of `transport`) for `server_url`
// (a TestH2Server's).
std::shared_ptr<Client> h2_client_for(const std::string& server_url, ClientOptions o = {},
                                      Transport transport = Transport::kHttp2) {
  ClusterConfig c;
  c.server = server_url;
  c.insecure_skip_tls_verify = true;  // the server's certificate is made per test
  c.source = "h2-test";
  o.transport = transport;
  auto r = Client::create(c, o);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? *r : nullptr;
}

std::shared_ptr<Client> client_to(const TestH2Server& server, Clock* clock = nullptr) {
  ClientOptions o;
  o.clock = clock;
  return h2_client_for(server.url(), o);
}

Result<HttpResponse> get(Client& c, const std::string& path, Duration timeout = 10s) {
  std::promise<Result<HttpResponse>> p;
  c.request("GET", path, "", timeout, [&](Result<HttpResponse> r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  if (f.wait_for(20s) != std::future_status::ready) return Error::internal("no answer in 20 s");
  return f.get();
}

TEST(H2ClientTest, ConcurrentRequestsShareOneConnection) {
  TestH2Server server(TestH2Server::Mode::kAnswer);
  auto c = client_to(server);
  ASSERT_TRUE(c);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, ok = 0;
  for (int i = 0; i < 50; ++i) {
    c->request("GET", "/r" + std::to_string(i), "", 10s, [&](Result<HttpResponse> r) {
      std::lock_guard<std::mutex> g(mu);
      ++done;
      ok += r.ok() && r->status == 200 && r->body == "ok\n" && r->content_type == "application/json";
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lk(mu);
  ASSERT_TRUE(cv.wait_for(lk, 20s, [&] { return done == 50; }));
  EXPECT_EQ(ok, 50);
  EXPECT_EQ(server.connections.load(), 1);
  EXPECT_EQ(c->stats().connections, 1u);
  EXPECT_EQ(c->stats().completed, 50u);
}

// Simulated time for the client's judgements; the test waits in real time
// for its loop, which looks at the clock at least once a second.
void wait_for_close(const TestH2Server& server, Duration at_most) {
  auto give_up = std::chrono::steady_clock::now() + at_most;
  while (server.closed.load() == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(20ms);
}

// Opens a /watch stream that counts its ends in `ends`; waits until its
// headers are in. Returns its id (0 when it did not open within 10 s).
uint64_t open_watch(Client& c, std::atomic<int>& ends) {
  auto opened = std::make_shared<std::promise<void>>();
  auto f = opened->get_future();
  uint64_t id = c.stream("/watch", [](std::string_view) {}, [&ends](Result<HttpResponse>) { ++ends; },
                         Priority::kBackground, [opened] { opened->set_value(); });
  return f.wait_for(10s) == std::future_status::ready ? id : 0;
}

TEST(H2ClientTest, AConnectionIdleFor90SecondsIsClosedWithAGoaway) {
  TestH2Server server(TestH2Server::Mode::kAnswer);
  SimulatedClock clock;
  auto c = client_to(server, &clock);
  ASSERT_TRUE(c);
  ASSERT_TRUE(get(*c, "/first").ok());
  clock.advance(60s);
  ASSERT_TRUE(get(*c, "/second").ok());
  clock.advance(89s);  // 149 s since it opened, 89 s since its last stream
  wait_for_close(server, 2500ms);
  EXPECT_EQ(server.closed.load(), 0) << "closed before 90 s without a stream";
  clock.advance(2s);
  wait_for_close(server, 10s);
  EXPECT_EQ(server.closed.load(), 1) << "an idle connection stayed open";
  EXPECT_EQ(server.goaways.load(), 1) << "closed without a GOAWAY";
  auto r = get(*c, "/next");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server.connections.load(), 2);
}

TEST(H2ClientTest, AConnectionCarryingAWatchIsNeverIdle) {
  TestH2Server server(TestH2Server::Mode::kOpenStream);
  std::atomic<int> ends{0};  // before the client: its end may come as the client goes
  SimulatedClock clock;
  auto c = client_to(server, &clock);
  ASSERT_TRUE(c);
  uint64_t id = open_watch(*c, ends);
  ASSERT_NE(id, 0u) << "the watch did not open";
  clock.advance(91s);  // its PINGs are answered: alive, and not idle
  wait_for_close(server, 2500ms);
  EXPECT_EQ(server.closed.load(), 0);
  EXPECT_EQ(server.goaways.load(), 0);
  EXPECT_EQ(ends.load(), 0);
  c->cancel(id);
}

TEST(H2ClientTest, ARequestRefusedByGoawayIsSentAgainOnANewConnection) {
  TestH2Server server(TestH2Server::Mode::kGoawayFirst);
  auto c = client_to(server);
  ASSERT_TRUE(c);
  auto r = get(*c, "/again");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server.connections.load(), 2);
  EXPECT_EQ(server.requests.load(), 2) << "refused once, answered once";
  EXPECT_EQ(c->stats().started, 1u) << "a retry is not a new request";
}

TEST(H2ClientTest, ASilentConnectionIsEndedByAnUnansweredPing) {
  TestH2Server server(TestH2Server::Mode::kSilentStream);
  auto c = client_to(server);
  ASSERT_TRUE(c);
  std::promise<void> opened;
  std::promise<Result<HttpResponse>> ended;
  auto t0 = std::chrono::steady_clock::now();
  c->stream("/watch", [](std::string_view) {}, [&](Result<HttpResponse> r) { ended.set_value(std::move(r)); },
            Priority::kBackground, [&] { opened.set_value(); });
  ASSERT_EQ(opened.get_future().wait_for(10s), std::future_status::ready);
  auto f = ended.get_future();
  ASSERT_EQ(f.wait_for(15s), std::future_status::ready) << "the watch on a silent connection never ended";
  auto took = std::chrono::steady_clock::now() - t0;
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("no answer to an HTTP/2 PING"), std::string::npos) << r.error().message();
  EXPECT_GE(took, 4500ms) << "3 s of silence, then 2 s for the PING's answer";
  EXPECT_LE(took, 8s);
  EXPECT_EQ(c->stats().retired, 1u);
  EXPECT_GE(c->stats().probes, 1u);
}

// A name lookup that stalls (a DNS server that does not answer) holds no
// request past its timeout and no shutdown: getaddrinfo runs on a thread of
// its own, never on the client's loop.
TEST(H2ClientTest, AStalledNameLookupDelaysNoTimeoutAndNoShutdown) {
  TestH2Server server(TestH2Server::Mode::kAnswer);
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    int calls = 0;
  };
  auto gate = std::make_shared<Gate>();
  auto make = [&] {
    ClientOptions o;
    o.getaddrinfo = [gate](const char*, const char* port, const addrinfo* hints, addrinfo** res) {
      std::unique_lock<std::mutex> lk(gate->mu);
      ++gate->calls;
      gate->cv.wait_for(lk, 20s, [&] { return gate->open; });  // the stall
      return ::getaddrinfo("127.0.0.1", port, hints, res);
    };
    return h2_client_for("https://stalled-dns.test:" + server.url().substr(server.url().rfind(':') + 1), o);
  };
  auto c = make();
  ASSERT_TRUE(c);
  auto t0 = std::chrono::steady_clock::now();
  auto stalled = get(*c, "/during-the-stall", 300ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(stalled.ok());
  EXPECT_EQ(stalled.error().code(), Code::kTimeout) << stalled.error().message();
  EXPECT_NE(stalled.error().message().find("(resolving stalled-dns.test)"), std::string::npos)
      << stalled.error().message();
  EXPECT_LT(took, 3s) << "the request's 300 ms timeout waited for the lookup";
  {
    std::lock_guard<std::mutex> g(gate->mu);
    gate->open = true;
  }
  gate->cv.notify_all();
  auto after = get(*c, "/after-the-stall");
  ASSERT_TRUE(after.ok()) << after.error().message();
  EXPECT_EQ(after->status, 200);

  // A client shut down while its lookup stalls does not wait for it.
  {
    std::lock_guard<std::mutex> g(gate->mu);
    gate->open = false;
  }
  auto c2 = make();
  ASSERT_TRUE(c2);
  std::promise<Result<HttpResponse>> p;
  c2->request("GET", "/never", "", 10s, [&](Result<HttpResponse> r) { p.set_value(std::move(r)); });
  auto lookups = [&] {
    std::lock_guard<std::mutex> g(gate->mu);
    return gate->calls;
  };
  for (int i = 0; i < 500 && lookups() < 2; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(lookups(), 2) << "the second client's lookup never began";
  t0 = std::chrono::steady_clock::now();
  c2.reset();
  took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 3s) << "shutting down waited for the stalled lookup";
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
  EXPECT_FALSE(f.get().ok());
  {
    std::lock_guard<std::mutex> g(gate->mu);
    gate->open = true;  // the lookup thread ends (its wake-up goes to a descriptor it shares)
  }
  gate->cv.notify_all();
}

TEST(H2ClientTest, ACancelledStreamIsResetAndNeverCalledBack) {
  TestH2Server server(TestH2Server::Mode::kOpenStream);
  std::atomic<int> ends{0};  // before the client: its end may come as the client goes
  auto c = client_to(server);
  ASSERT_TRUE(c);
  uint64_t id = open_watch(*c, ends);
  ASSERT_NE(id, 0u) << "the watch did not open";
  c->cancel(id);
  for (int i = 0; i < 200 && server.cancelled.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server.cancelled.load(), 1) << "the server saw no RST_STREAM(CANCEL)";
  // The connection is still good for the next request.
  auto r = get(*c, "/after");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(ends.load(), 0) << "cancel() must not call on_end";
}

TEST(H2ClientTest, AResponseOverEightMebibytesIsRefusedWithInvalid) {
  TestH2Server server(TestH2Server::Mode::kHugeBody);
  auto c = client_to(server);
  ASSERT_TRUE(c);
  auto r = get(*c, "/huge", 20s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kInvalid) << r.error().message();
  EXPECT_NE(r.error().message().find("response larger than 8388608 bytes"), std::string::npos)
      << r.error().message();
}

// A name with two addresses whose first never answers (a listener with a
// full accept queue drops new SYNs, as an unreachable route would): the
// connection moves to the second address after 1 s, well within its 5 s
// connect timeout, and the request is answered.
TEST(H2ClientTest, AnAddressThatNeverAnswersGivesWayToTheNext) {
  TestH2Server server(TestH2Server::Mode::kAnswer);
  int hole = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(hole, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(hole, 0), 0);
  socklen_t len = sizeof a;
  ::getsockname(hole, reinterpret_cast<sockaddr*>(&a), &len);
  std::string hole_port = std::to_string(ntohs(a.sin_port));
  std::vector<int> fillers;  // fill the accept queue (never accepted)
  for (int i = 0; i < 2; ++i) {
    int f = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    (void)::connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(f);
  }
  std::this_thread::sleep_for(50ms);
  {  // the precondition: a new connect to it now hangs
    int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    (void)::connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
    pollfd p{probe, POLLOUT, 0};
    int ready = ::poll(&p, 1, 300);
    ::close(probe);
    ASSERT_EQ(ready, 0) << "the full listener answered a new connect: no address that never answers here";
  }
  std::string port = server.url().substr(server.url().rfind(':') + 1);
  ClientOptions o;
  o.getaddrinfo = [hole_port, port](const char*, const char*, const addrinfo* hints, addrinfo** res) {
    addrinfo* first = nullptr;
    addrinfo* second = nullptr;
    if (int rc = ::getaddrinfo("127.0.0.1", hole_port.c_str(), hints, &first); rc != 0) return rc;
    if (int rc = ::getaddrinfo("127.0.0.1", port.c_str(), hints, &second); rc != 0) {
      ::freeaddrinfo(first);
      return rc;
    }
    addrinfo* last = first;
    while (last->ai_next) last = last->ai_next;
    last->ai_next = second;  // one list, freed whole by freeaddrinfo
    *res = first;
    return 0;
  };
  auto c = h2_client_for("https://two-addresses.test:" + port, o);
  ASSERT_TRUE(c);
  auto t0 = std::chrono::steady_clock::now();
  auto r = get(*c, "/x", 4s);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(took, 900ms) << "the first address answered: the test proved nothing";
  EXPECT_LT(took, 3s);
  c.reset();
  for (int f : fillers) ::close(f);
  ::close(hole);
}

// An answer read in the same batch as others is read together with them
// (the gather); one that comes while the socket is left unread must still
// count as in time: the client reads before it fails anything as late. With
// a gather of 2 s, /late's answer (150 ms after it was asked) waits unread
// until its 600 ms deadline, and is then delivered, not failed.
TEST(H2ClientTest, AnAnswerWaitingUnreadIsNotFailedAsLate) {
  TestH2Server server(TestH2Server::Mode::kDelayed);
  std::promise<Result<HttpResponse>> late;  // before the client: its answer may come as the client goes
  ClientOptions o;
  o.h2_gather = 2s;
  auto c = h2_client_for(server.url(), o);
  ASSERT_TRUE(c);
  ASSERT_TRUE(get(*c, "/warm").ok());  // the connection is up: both next requests share it
  auto t0 = std::chrono::steady_clock::now();
  c->request("GET", "/late", "", 600ms, [&](Result<HttpResponse> r) { late.set_value(std::move(r)); });
  auto fast = get(*c, "/fast");  // answered at once, while /late is in flight: the gather begins
  ASSERT_TRUE(fast.ok()) << fast.error().message();
  auto f = late.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  auto took = std::chrono::steady_clock::now() - t0;
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << "an answer that came in time was failed: " << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(took, 2s) << "held past its deadline";
}

// A client of `server` whose ordinary gather is off and whose patient
// gather is `patient`, its connection up.
std::shared_ptr<Client> patient_client(const TestH2Server& server, Duration patient) {
  ClientOptions o;
  o.h2_gather = Duration::zero();
  o.h2_patient_gather = patient;
  auto c = h2_client_for(server.url(), o);
  if (c) {
    EXPECT_TRUE(get(*c, "/warm").ok());  // both next requests share this connection
  }
  return c;
}

// GET `path` as `media`; the answer goes to `p`, which must outlive the client.
void send_as(Client& c, Media media, const std::string& path, Duration timeout,
             std::promise<Result<HttpResponse>>& p) {
  c.request("GET", path, "", timeout, [&p](Result<HttpResponse> r) { p.set_value(std::move(r)); },
            Priority::kLease, media);
}

// The answer `p` gets, within 15 s.
Result<HttpResponse> answer_of(std::promise<Result<HttpResponse>>& p) {
  auto f = p.get_future();
  if (f.wait_for(15s) != std::future_status::ready) return Error::internal("no answer in 15 s");
  return f.get();
}

// While renewals (Media::kLeaseRenewal), and nothing else, are in flight on
// a connection, it is left unread for the patient gather after any read:
// the first bytes of /fast's answer (at once) start it, so /slow's answer
// (1 s after it was asked) is read only once it ends. With requests that
// are not renewals in flight, /slow is read when it comes (the ordinary
// gather is off here). A patient gather of 3 s sets the two cases far apart.
TEST(H2ClientTest, OnlyRenewalsInFlightAreReadPatiently) {
  for (Media media : {Media::kLeaseRenewal, Media::kLease}) {
    bool renewals = media == Media::kLeaseRenewal;
    SCOPED_TRACE(renewals ? "renewals in flight" : "lease requests in flight");
    TestH2Server server(TestH2Server::Mode::kDelayed);
    std::promise<Result<HttpResponse>> slow, fast;  // before the client: answered at the latest as it goes
    auto c = patient_client(server, 3s);
    ASSERT_TRUE(c);
    auto t0 = std::chrono::steady_clock::now();
    send_as(*c, media, "/slow", 10s, slow);
    send_as(*c, media, "/fast", 10s, fast);
    auto r = answer_of(slow);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(answer_of(fast).ok());
    if (renewals) {
      EXPECT_GE(took, 2500ms) << "read before the patient gather ended";
    } else {
      EXPECT_LT(took, 2500ms) << "a request that is not a renewal waited for the patient gather";
    }
  }
}

// A request that is not a renewal, sent while a patient gather is under
// way, ends it: its answer is read when it comes, not when the gather would
// have ended.
TEST(H2ClientTest, ARequestThatIsNotARenewalEndsThePatientGather) {
  TestH2Server server(TestH2Server::Mode::kDelayed);
  std::promise<Result<HttpResponse>> late, fast;  // before the client: answered at the latest as it goes
  auto c = patient_client(server, 5s);
  ASSERT_TRUE(c);
  send_as(*c, Media::kLeaseRenewal, "/late", 10s, late);
  send_as(*c, Media::kLeaseRenewal, "/fast", 10s, fast);
  std::this_thread::sleep_for(300ms);  // /fast's answer has been read by now: the gather is under way
  auto t0 = std::chrono::steady_clock::now();
  auto r = get(*c, "/now", 10s);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_LT(took, 3s) << "an awaited answer waited for the renewals' gather";
  EXPECT_TRUE(answer_of(late).ok());
  EXPECT_TRUE(answer_of(fast).ok());
}

// A PING's answer that waits unread in a gather is read before the PING is
// judged unanswered. Here the patient gather (6 s) outlasts the PING's
// (sent after 3 s of silence) 2 s timeout: the connection is read then and
// lives, and /hold ends by its own timeout, not with the connection.
TEST(H2ClientTest, APingAnswerWaitingUnreadKeepsItsConnection) {
  TestH2Server server(TestH2Server::Mode::kDelayed);
  std::promise<Result<HttpResponse>> hold, fast;  // before the client: answered at the latest as it goes
  auto c = patient_client(server, 6s);
  ASSERT_TRUE(c);
  send_as(*c, Media::kLeaseRenewal, "/hold", 5500ms, hold);
  send_as(*c, Media::kLeaseRenewal, "/fast", 10s, fast);
  auto r = answer_of(hold);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kTimeout) << r.error().message();
  EXPECT_TRUE(answer_of(fast).ok());
  EXPECT_EQ(c->stats().connections, 1u) << "the connection was ended";
}

// The walk for deadlines is made when the earliest known one is due: a
// short timeout after a long one, and a timeout after the earliest request
// was answered, each still fire on time.
TEST(H2ClientTest, EveryTimeoutFiresOnTimeWhateverCameBefore) {
  TestH2Server server(TestH2Server::Mode::kDelayed);
  // Before the client: the 30 s request ends, at the latest, as the client goes.
  std::promise<Result<HttpResponse>> longer;
  auto c = client_to(server);
  ASSERT_TRUE(c);
  c->request("GET", "/hold", "", 30s, [&](Result<HttpResponse> r) { longer.set_value(std::move(r)); });
  auto t0 = std::chrono::steady_clock::now();
  auto shorter = get(*c, "/hold", 300ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(shorter.ok());
  EXPECT_EQ(shorter.error().code(), Code::kTimeout) << shorter.error().message();
  EXPECT_LT(took, 2s);
  // The earliest deadline now belongs to a request answered at once; the
  // next one's must be found all the same.
  ASSERT_TRUE(get(*c, "/quick", 200ms).ok());
  t0 = std::chrono::steady_clock::now();
  auto after = get(*c, "/hold", 800ms);
  took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code(), Code::kTimeout) << after.error().message();
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 2500ms);
}

// A client of the default transport (kAuto) for `server`, with no proxy
// variable set (one would send kAuto to libcurl).
std::shared_ptr<Client> auto_client_for(const TestH2Server& server) {
  for (const char* v : {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    EXPECT_EQ(std::getenv(v), nullptr) << v << " is set: this test needs the default's own transport";
  }
  return h2_client_for(server.url(), {}, Transport::kAuto);
}

// The default transport speaks the own HTTP/2 to a server that agrees to it
// (libcurl would have offered http/1.1 too).
TEST(H2ClientTest, TheDefaultSpeaksItsOwnHttp2ToAServerThatAgrees) {
  TestH2Server server(TestH2Server::Mode::kAnswer);
  auto c = auto_client_for(server);
  ASSERT_TRUE(c);
  auto r = get(*c, "/x");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->body, "ok\n");
  EXPECT_EQ(server.offered_http11.load(), 0) << "libcurl answered, not the own transport";
}

// Asked for HTTP/2 alone (kHttp2), a server that refuses it in the TLS
// handshake, by alert or by no ALPN answer, fails the request, naming why
// and what to use instead.
TEST(H2ClientTest, WithoutAFallbackARefusalOfHttp2FailsNamingIt) {
  for (auto mode : {TestH2Server::Mode::kHttp11, TestH2Server::Mode::kHttp11NoAlpn}) {
    TestH2Server server(mode);
    auto c = client_to(server);
    ASSERT_TRUE(c);
    auto r = get(*c, "/x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::kUnavailable) << r.error().message();
    EXPECT_NE(r.error().message().find("the server did not agree to HTTP/2 (ALPN)"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("LEASEHOLD_KUBE_TRANSPORT=curl"), std::string::npos)
        << r.error().message();
  }
}

// An HTTP/1.1-only server (a front proxy) under the default transport: the
// watch and the requests that waited for the first connection, refused
// HTTP/2, are carried by libcurl instead, and so is everything after;
// nothing fails, and cancel() reaches the watch where it now is. The server
// refuses by the no_application_protocol alert (RFC 7301) or, in the second
// case, by no ALPN answer.
class H2FallbackTest : public ::testing::TestWithParam<TestH2Server::Mode> {};

INSTANTIATE_TEST_SUITE_P(Refusals, H2FallbackTest,
                         ::testing::Values(TestH2Server::Mode::kHttp11, TestH2Server::Mode::kHttp11NoAlpn));

TEST_P(H2FallbackTest, AServerRefusingHttp2IsServedThroughLibcurlByDefault) {
  TestH2Server server(GetParam());
  // Before the client: its last callbacks may come as it goes.
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<std::string> failed;
  std::atomic<int> lines{0}, ends{0};
  auto opened = std::make_shared<std::promise<void>>();
  auto c = auto_client_for(server);
  ASSERT_TRUE(c);
  uint64_t watch = c->stream(
      "/watch", [&](std::string_view line) { lines += line == "ev"; }, [&](Result<HttpResponse>) { ++ends; },
      Priority::kBackground, [opened] { opened->set_value(); });
  for (int i = 0; i < 5; ++i) {
    c->request("GET", "/r" + std::to_string(i), "", 10s, [&](Result<HttpResponse> r) {
      std::lock_guard<std::mutex> g(mu);
      if (!r.ok()) failed.push_back(r.error().message());
      else if (r->status != 200 || r->body != "ok\n") failed.push_back("status " + std::to_string(r->status));
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> g(mu);
    ASSERT_TRUE(cv.wait_for(g, 20s, [&] { return done == 5; })) << done << " of 5 answered";
    EXPECT_TRUE(failed.empty()) << failed.front();
  }
  ASSERT_EQ(opened->get_future().wait_for(10s), std::future_status::ready) << "the watch did not open";
  auto after = get(*c, "/after");
  ASSERT_TRUE(after.ok()) << after.error().message();
  EXPECT_EQ(after->body, "ok\n");
  for (int i = 0; i < 500 && lines.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(lines.load(), 1) << "the watch's line did not arrive";
  c->cancel(watch);
  for (int i = 0; i < 500 && server.watches_closed.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server.watches_closed.load(), 1) << "the cancelled watch's connection stayed open";
  EXPECT_EQ(ends.load(), 0) << "cancel() must not call on_end";
  // libcurl counts the cancelled watch completed just after it closes its
  // connection: wait for the count, then check it.
  ClientStats s = c->stats();
  for (int i = 0; i < 500 && s.completed < 7; ++i) {
    std::this_thread::sleep_for(10ms);
    s = c->stats();
  }
  EXPECT_EQ(s.http2, 0u);
  EXPECT_EQ(s.started, 7u) << "each transfer counted once, by the transport that sent it";
  EXPECT_EQ(s.completed, 7u);
}

}  // namespace
}  // namespace leasehold::kube
