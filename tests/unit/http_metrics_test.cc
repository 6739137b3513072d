// The sidecar's HTTP request parser, response format, and the metrics text
// and JSON the endpoints serve, from hand-made snapshots (no sockets, no
// clock). One test runs the server on a loopback socket to check that
// malformed, oversized and non-GET requests are answered and closed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "endpoints.h"
#include "http_server.h"
#include "leasehold/mem_lock.h"
#include "metrics.h"

namespace leasehold::cli {
namespace {

using namespace std::chrono_literals;

TEST(HttpParseTest, AcceptsGetAndHead) {
  HttpRequest r;
  EXPECT_EQ(parse_http_request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 8192, r), ParseResult::kOk);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/healthz");
  EXPECT_EQ(r.query, "");
  EXPECT_EQ(parse_http_request("HEAD /metrics?x=1 HTTP/1.0\n\n", 8192, r), ParseResult::kOk);
  EXPECT_EQ(r.method, "HEAD");
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query, "x=1");
  // Other methods parse; the server answers them 405.
  EXPECT_EQ(parse_http_request("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 8192, r), ParseResult::kOk);
}

TEST(HttpParseTest, WaitsForTheBlankLine) {
  HttpRequest r;
  EXPECT_EQ(parse_http_request("", 8192, r), ParseResult::kIncomplete);
  EXPECT_EQ(parse_http_request("GET /healthz HTTP/1.1\r\n", 8192, r), ParseResult::kIncomplete);
  EXPECT_EQ(parse_http_request("GET /healthz HTTP/1.1\r\nHost: x\r\n", 8192, r), ParseResult::kIncomplete);
}

TEST(HttpParseTest, RejectsMalformed) {
  HttpRequest r;
  for (const char* bad : {
           "\r\n\r\n",                                       // no request line
           "GET\r\n\r\n",                                    // no target
           "GET /x\r\n\r\n",                                 // no version
           "GET /x HTTP/2.0\r\n\r\n",                        // not HTTP/1.x
           "GET /x HTTP/1.1 extra\r\n\r\n",                  // too many parts
           "GET x HTTP/1.1\r\n\r\n",                         // target not absolute path
           "G(T /x HTTP/1.1\r\n\r\n",                        // method not a token
           "GET /x HTTP/1.1\r\nno colon\r\n\r\n",            // header without ':'
           "GET /x HTTP/1.1\r\n: empty name\r\n\r\n",        // empty header name
           "GET /x\x01 HTTP/1.1\r\n\r\n",                    // control character
           "GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",  // a body
           "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
       }) {
    EXPECT_EQ(parse_http_request(bad, 8192, r), ParseResult::kBad) << bad;
  }
}

TEST(HttpParseTest, RejectsOversized) {
  HttpRequest r;
  std::string big = "GET /x HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a');
  EXPECT_EQ(parse_http_request(big, 8192, r), ParseResult::kTooLarge);  // no end in sight
  EXPECT_EQ(parse_http_request(big + "\r\n\r\n", 8192, r), ParseResult::kTooLarge);
  std::string fits = "GET /x HTTP/1.1\r\nX-Pad: " + std::string(100, 'a') + "\r\n\r\n";
  EXPECT_EQ(parse_http_request(fits, 8192, r), ParseResult::kOk);
}

TEST(HttpFormatTest, ResponseAndHead) {
  HttpResponse resp{503, "text/plain", "not leading\n"};
  EXPECT_EQ(format_http_response(resp, false),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\nnot leading\n");
  std::string head = format_http_response(resp, true);
  EXPECT_NE(head.find("Content-Length: 12\r\n"), std::string::npos);
  EXPECT_TRUE(head.ends_with("\r\n\r\n"));
}

ElectorView leader_view() {
  ElectorView v;
  v.name = "file:///run/a.lease";
  v.identity = "pod-a";
  v.lock = "file:///run/a.lease";
  v.status.phase = "leading";
  v.status.leading = true;
  v.status.leader = "pod-a";
  v.status.term = Term{7, "pod-a"};
  v.status.time_left = 9500ms;
  v.status.lease_left = 14500ms;
  v.status.lease_transitions = 7;
  v.status.renewals = 42;
  v.status.slow_path = 3;
  v.status.leader_changes = 2;
  v.status.terms_started = 1;
  v.status.failed_renewals[static_cast<size_t>(Code::kConflict)] = 3;
  v.status.failed_renewals[static_cast<size_t>(Code::kTimeout)] = 1;
  v.status.renew_latency.add(800us);   // <= 0.001
  v.status.renew_latency.add(7ms);     // <= 0.01
  v.status.renew_latency.add(7ms);
  v.status.renew_latency.add(30s);     // +Inf only
  return v;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(MetricsTest, ClientGoNamesAndCounters) {
  std::string m = render_metrics({leader_view()});
  const std::string n = "name=\"file:///run/a.lease\"";
  EXPECT_TRUE(has_line(m, "# TYPE leader_election_master_status gauge")) << m;
  EXPECT_TRUE(has_line(m, "leader_election_master_status{" + n + "} 1")) << m;
  EXPECT_TRUE(has_line(m, "# TYPE leader_election_slowpath_total counter")) << m;
  EXPECT_TRUE(has_line(m, "leader_election_slowpath_total{" + n + "} 3")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_leader_changes_total{" + n + "} 2")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_lease_transitions{" + n + "} 7")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_renewals_total{" + n + "} 42")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_renew_failures_total{" + n + ",reason=\"Conflict\"} 3")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_renew_failures_total{" + n + ",reason=\"Timeout\"} 1")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_renew_failures_total{" + n + ",reason=\"Forbidden\"} 0")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_lease_seconds_left{" + n + "} 14.5")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_leader_info{" + n + ",holder=\"pod-a\"} 1")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_phase{" + n + ",phase=\"leading\"} 1")) << m;
}

TEST(MetricsTest, HistogramIsCumulative) {
  std::string m = render_metrics({leader_view()});
  const std::string b = "leasehold_renew_duration_seconds_bucket{name=\"file:///run/a.lease\",";
  EXPECT_TRUE(has_line(m, "# TYPE leasehold_renew_duration_seconds histogram")) << m;
  EXPECT_TRUE(has_line(m, b + "le=\"0.001\"} 1")) << m;
  EXPECT_TRUE(has_line(m, b + "le=\"0.005\"} 1")) << m;
  EXPECT_TRUE(has_line(m, b + "le=\"0.01\"} 3")) << m;
  EXPECT_TRUE(has_line(m, b + "le=\"5\"} 3")) << m;
  EXPECT_TRUE(has_line(m, b + "le=\"+Inf\"} 4")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_renew_duration_seconds_count{name=\"file:///run/a.lease\"} 4")) << m;
  EXPECT_TRUE(has_line(m, "leasehold_renew_duration_seconds_sum{name=\"file:///run/a.lease\"} 30.0148")) << m;
}

TEST(MetricsTest, EveryLineIsCommentOrSample) {
  ElectorView f;
  f.name = "we\"ird\\name\nx";
  f.status.phase = "following";
  std::string m = render_metrics({leader_view(), f});
  EXPECT_NE(m.find("name=\"we\\\"ird\\\\name\\nx\""), std::string::npos) << m;
  // Follower with no holder known: no seconds-left sample, an empty holder label.
  EXPECT_EQ(m.find("leasehold_lease_seconds_left{name=\"we"), std::string::npos);
  EXPECT_NE(m.find("leasehold_leader_info{name=\"we\\\"ird\\\\name\\nx\",holder=\"\"} 1"), std::string::npos);
  EXPECT_NE(m.find("leader_election_master_status{name=\"we\\\"ird\\\\name\\nx\"} 0"), std::string::npos);
  size_t start = 0;
  while (start < m.size()) {
    size_t nl = m.find('\n', start);
    ASSERT_NE(nl, std::string::npos) << "last line not terminated";
    std::string line = m.substr(start, nl - start);
    start = nl + 1;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    size_t brace = line.find('{');
    ASSERT_NE(brace, std::string::npos) << line;
    size_t close = line.rfind("} ");
    ASSERT_NE(close, std::string::npos) << line;
    std::string value = line.substr(close + 2);
    ASSERT_FALSE(value.empty()) << line;
    EXPECT_EQ(value.find(' '), std::string::npos) << line;
  }
}

TEST(LeaderJsonTest, Fields) {
  EXPECT_EQ(leader_json(leader_view()),
            "{\"identity\":\"pod-a\",\"lock\":\"file:///run/a.lease\",\"name\":\"file:///run/a.lease\","
            "\"phase\":\"leading\",\"leading\":true,\"holder\":\"pod-a\",\"term\":7,\"transitions\":7,"
            "\"seconds_left\":14.500,\"renew_deadline_seconds_left\":9.500,\"leader_changes\":2}\n");
  ElectorView f;
  f.identity = "pod-\"b\"";
  f.status.phase = "following";
  EXPECT_EQ(leader_json(f),
            "{\"identity\":\"pod-\\\"b\\\"\",\"lock\":\"\",\"name\":\"\",\"phase\":\"following\","
            "\"leading\":false,\"holder\":\"\",\"term\":null,\"transitions\":null,\"seconds_left\":null,"
            "\"renew_deadline_seconds_left\":null,\"leader_changes\":0}\n");
}

TEST(HealthTest, FailsOnlyWhenLeadingPastTheDeadline) {
  ElectorView v = leader_view();
  EXPECT_TRUE(health(v).ok);
  EXPECT_TRUE(leader_readiness(v).ok);
  v.status.leading = false;  // phase still "leading", deadline passed
  v.status.time_left = -1500ms;
  Verdict h = health(v);
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.text.find("renew deadline passed 1.500s ago"), std::string::npos) << h.text;
  EXPECT_FALSE(leader_readiness(v).ok);
  ElectorView f;
  f.status.phase = "following";
  f.status.leader = "pod-a";
  EXPECT_TRUE(health(f).ok);
  Verdict r = leader_readiness(f);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.text, "not leading: the leader is pod-a (phase following)");
}

TEST(EndpointsTest, StuckIoThreadFailsHealthz) {
  // A manual runtime runs nothing until run_ready(): the probe /healthz posts
  // stays pending, as on a stuck I/O thread.
  SimulatedClock clock;
  Runtime::Options o;
  o.clock = &clock;
  o.manual = true;
  Runtime rt(o);
  ElectorConfig cfg;
  cfg.lock = "mem://ep";
  cfg.identity = "pod-a";
  auto e = Elector::create(rt, cfg);
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  Endpoints ep(rt, **e, "pod-a", "mem://ep", cfg.lease_duration, cfg.renew_deadline);
  HttpRequest get{"GET", "/healthz", ""};
  EXPECT_EQ(ep.handle(get).status, 200);  // posts the probe
  clock.advance(cfg.renew_deadline - 1ms);
  EXPECT_EQ(ep.handle(get).status, 200);
  clock.advance(1ms);
  HttpResponse stuck = ep.handle(get);
  EXPECT_EQ(stuck.status, 500);
  EXPECT_NE(stuck.body.find("I/O thread has not run a probe"), std::string::npos) << stuck.body;
  rt.run_ready();  // the I/O thread catches up: healthy again
  EXPECT_EQ(ep.handle(get).status, 200);
  EXPECT_EQ(ep.handle({"GET", "/readyz", ""}).status, 503);
  EXPECT_EQ(ep.handle({"GET", "/nope", ""}).status, 404);
  HttpResponse leader = ep.handle({"GET", "/leader", ""});
  EXPECT_EQ(leader.content_type, "application/json");
  EXPECT_NE(leader.body.find("\"phase\":\"idle\""), std::string::npos) << leader.body;
}

// ---- what the elector records for the metrics (simulated clock, mem lock) ----

TEST(ElectorStatusTest, RenewLatencyFailuresByCodeAndCounters) {
  SimulatedClock clock;
  Runtime::Options o;
  o.clock = &clock;
  o.manual = true;
  o.log = [](auto...) {};
  Runtime rt(o);
  ElectorConfig cfg;
  cfg.lock = "mem://metrics";
  cfg.identity = "pod-a";  // 15s lease, 10s renew deadline, renewals every 2s
  auto lock = rt.open_lock(cfg.lock);
  ASSERT_TRUE(lock.ok());
  auto& mem = dynamic_cast<MemLock&>(**lock);
  mem.set_faults({.latency = 30ms});
  auto e = Elector::create(rt, cfg, *lock);
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  auto advance = [&](Duration d) {
    for (Duration t{0}; t < d; t += 10ms) {
      clock.advance(10ms);
      rt.run_ready();
    }
  };
  (*e)->start();
  advance(200ms);  // get (30ms), create (30ms)
  ElectorStatus s = (*e)->status();
  ASSERT_EQ(s.phase, "leading");
  EXPECT_EQ(s.leader_changes, 1u);
  EXPECT_EQ(s.terms_started, 1u);
  EXPECT_EQ(s.renew_latency.count, 0u);  // acquiring is not renewing
  advance(4s);                           // two renewals, 30ms each
  s = (*e)->status();
  EXPECT_EQ(s.renewals, 2u);
  EXPECT_EQ(s.renew_latency.count, 2u);
  EXPECT_EQ(s.renew_latency.counts[5], 2u);  // (0.025, 0.05]
  // 30ms of injected latency, seen at the 10ms granularity of advance().
  EXPECT_GE(s.renew_latency.sum_seconds, 0.060 - 1e-9);
  EXPECT_LE(s.renew_latency.sum_seconds, 0.080 + 1e-9);
  ASSERT_TRUE(s.lease_left.has_value());
  EXPECT_GT(*s.lease_left, 12s);  // renewed within the last 2s of a 15s lease
  EXPECT_LE(*s.lease_left, 15s);
  mem.set_faults({.latency = 30ms, .fail_next = 2, .fail_code = Code::kTooManyRequests});
  advance(6s);
  s = (*e)->status();
  EXPECT_EQ(s.failed_renewals[static_cast<size_t>(Code::kTooManyRequests)], 2u);
  EXPECT_EQ(s.failed_renewals[static_cast<size_t>(Code::kConflict)], 0u);
  EXPECT_EQ(s.failed_requests, 2u);
  EXPECT_TRUE(s.leading);
  std::string m = render_metrics({{"n", "pod-a", cfg.lock, cfg.lease_duration, s}});
  EXPECT_NE(m.find("leasehold_renew_failures_total{name=\"n\",reason=\"TooManyRequests\"} 2\n"),
            std::string::npos) << m;
  // Stop: nobody else drives this manual runtime, so pump it (and give the
  // term thread real turns, as elector_test does) until the release is done.
  mem.set_faults({});
  (*e)->stop();
  std::mutex mu;
  std::condition_variable cv;
  for (int i = 0; i < 5000 && (*e)->status().phase != "stopped"; ++i) {
    clock.advance(10ms);
    rt.run_ready();
    std::unique_lock<std::mutex> lk(mu);
    cv.wait_for(lk, 1ms);
  }
  ASSERT_EQ((*e)->status().phase, "stopped");
}

// ---- the server on a loopback socket ----

std::string round_trip(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (431)
    off += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;  // the server closes after one response
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

TEST(HttpServerTest, AnswersAndCloses) {
  auto s = HttpServer::listen("127.0.0.1:0", [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", "path " + r.path + "\n"};
  });
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  (*s)->start();
  int port = std::stoi((*s)->bound().substr((*s)->bound().rfind(':') + 1));
  EXPECT_TRUE(round_trip(port, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n").ends_with("\r\n\r\npath /a\n"));
  EXPECT_TRUE(round_trip(port, "GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(round_trip(port, "DELETE /a HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
  EXPECT_TRUE(round_trip(port, "GET /a HTTP/1.1\r\nX: " + std::string(20000, 'a')).starts_with("HTTP/1.1 431 "));
  std::string head = round_trip(port, "HEAD /a HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(head.ends_with("Content-Length: 8\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")) << head;
  (*s)->stop();
  auto taken = HttpServer::listen((*s)->bound(), [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.error().message().find("bind: Address already in use"), std::string::npos)
      << taken.error().message();
  for (const char* bad : {"8080", "host:port", ":99999", ":"}) {
    auto r = HttpServer::listen(bad, [](const HttpRequest&) { return HttpResponse{}; });
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find(std::string("--http-address \"") + bad + "\""), std::string::npos)
        << r.error().message();
  }
}

}  // namespace
}  // namespace leasehold::cli
