// Internal: a thin HTTPS client for the Kubernetes API, with two transports
// (ClientOptions::transport): libcurl, described here, and leasehold's own
// HTTP/2 (h2_client.h says where it differs). The default, kAuto, takes the
// own HTTP/2 wherever it can serve the server and libcurl elsewhere.
//
// One thread per client runs a curl multi handle that drives every request
// and watch stream of the process; there is no thread per request or per
// elector. Transport: HTTP/2 where the server offers it (ALPN), one
// connection shared by all requests (multiplexed; curl waits for the first
// connection rather than opening more), TLS verification on unless the
// kubeconfig says insecure-skip-tls-verify: true, tls-server-name, proxy-url,
// User-Agent "leasehold/VERSION", a per-request timeout.
//
// Dead connections (a peer gone without a reset: a lost node, a blackholed
// route) are ended and replaced by the client, since neither the kernel
// (minutes) nor libcurl 7.88 (no HTTP/2 PING from a multi handle, and a timed
// out stream never closes its connection) would do it in time:
// - TCP_USER_TIMEOUT 5 s and keepalive probes after 3 s idle on every socket;
// - a request that times out after 0.5 s or more on a connection that
//   received nothing since it was sent ends that connection (a lock request
//   times out at renew_deadline / 2, so a leader's next try goes to a new
//   connection);
// - a connection carrying transfers that has received nothing for 3 s gets a
//   probe (GET /version, timeout 2 s) on the client's connections; if it
//   times out there, the rule above ends it.
// Bound: with one connection (the usual case: up to 100 streams), a dead
// connection carrying a watch or a request is ended within 5.5 s of its last
// byte, sooner if a request on it times out first. Transfers on it then fail
// with Unavailable and watches resume on a new connection. A connection kept
// busy by data (the watch of a renewed Lease) is never probed. With several
// connections curl picks the probe's, so a silent one may wait for TCP
// keepalive and TCP_USER_TIMEOUT (a peer that stopped acknowledging) instead.
//
// Credentials are taken per request (credentials.h): a token file is read
// again whenever stat(2) shows it changed, and after a 401; an exec
// plugin's answer is cached until it expires or a 401.
// No credential ever appears in an error message.
//
// Budget: a token bucket (ClientOptions::rate) in front of two queues. Lock
// traffic (Priority::kLease, the default of request()) always starts before
// everything else; requests over budget wait in their queue (never dropped)
// until a token frees or their own timeout passes (then done gets Timeout).
//
// Content negotiation: requests made with Media::kLease or kLeaseRenewal (a
// Lease's get, create, update and watch) accept application/vnd.kubernetes.protobuf
// first, then application/json, when the client's lease format is protobuf
// (ClientOptions::lease_format, the default); the server picks. Every other
// request accepts only JSON. A body that starts with the protobuf magic
// "k8s\0" is sent as application/vnd.kubernetes.protobuf, any other as JSON.
// Responses carry their Content-Type; callers decode by it.
//
// Threading: request/stream/cancel/stats are safe from any thread.
// Completions (`done`, `on_line`, `on_end`) run on the client's thread (or,
// once the own transport has handed its transfers to libcurl, on that
// client's thread: h2_client.h) and must be short; the lock backends post
// them to the Runtime.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kube/config.h"
#include "kube/rate_limiter.h"
#include "kube/wire_format.h"
#include "leasehold/clock.h"
#include "leasehold/error.h"

struct addrinfo;  // <netdb.h>

namespace leasehold::kube {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;  // the response's Content-Type header ("" if none)
};

// What a request may be answered in (see the content negotiation above).
enum class Media {
  kJson,   // application/json only
  kLease,  // a Lease: protobuf first when the client's lease format is protobuf
  // As kLease, for a Lease update that renews the term its writer holds
  // (same holder, same transitions): the own HTTP/2 transport may read its
  // answer up to ClientOptions::h2_patient_gather late (h2_client.h).
  kLeaseRenewal,
};

// Which HTTP implementation carries a client's requests.
enum class Transport {
  kCurl,   // libcurl: http:// and https://, HTTP/1.1 or HTTP/2, proxies
  kHttp2,  // leasehold's own HTTP/2 over TLS (h2_client.h): https:// only, no proxy
  // kHttp2 for an https:// server with no proxy (no proxy-url, none of
  // https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY set), kCurl otherwise; and
  // when a server refuses HTTP/2 in the TLS handshake (ALPN: an HTTP/1.1-only
  // front proxy), that request and every one after it go through libcurl
  // (h2_client.h).
  kAuto,
};

struct ClientOptions {
  RateLimit rate;            // see rate_limiter.h for units, defaults and limits
  Clock* clock = nullptr;    // time for the budget and exec expiry; nullptr: the real clock
  // The format asked for on Lease requests and watches (Media::kLease):
  // kProtobuf (default; the server may still answer JSON) or kJson. The
  // environment variable LEASEHOLD_KUBE_CONTENT_TYPE, when set and not
  // empty, overrides it: "json" or "protobuf" (anything else: create fails).
  // A build without protobuf (LEASEHOLD_PROTOBUF=OFF) uses JSON, and refuses
  // LEASEHOLD_KUBE_CONTENT_TYPE=protobuf.
  WireFormat lease_format = WireFormat::kProtobuf;
  // When set, called on the client's thread as each request and stream
  // starts; a non-empty result is the whole value of its Authorization
  // header (sent as is: no "Bearer " added), an empty one sends none. It
  // replaces the kubeconfig's token and token file, and the exec plugin's
  // token (its client certificate is still used). The own transport's
  // libcurl fallback gets a copy of it (and runs an exec plugin itself).
  std::function<std::string()> authorization;
  // Header lines ("Name: value") added to every request and stream.
  std::vector<std::string> extra_headers;
  // The GET /version probe of silent connections (above). Off for etcd's
  // gateway on plain HTTP/1.1, where a probe never shares the watch's
  // connection and so tests nothing: there TCP keepalive and
  // TCP_USER_TIMEOUT, and the timeout rule, are what end a dead connection.
  bool health_probes = true;
  // nullopt (default): the environment variable LEASEHOLD_KUBE_TRANSPORT
  // decides, "auto", "curl" or "http2"; unset or empty means auto (anything
  // else: create fails). kHttp2 with an http:// server, a proxy-url or a proxy
  // environment variable set: create fails, naming it; kHttp2 never falls
  // back to libcurl.
  std::optional<Transport> transport;
  // The own HTTP/2 transport's name lookup (tests: a resolver that stalls);
  // null: ::getaddrinfo. Called on a thread of its own, never on the
  // client's thread, possibly after the client is gone: it must own what it
  // uses. Its result is freed with freeaddrinfo; an exception fails the
  // lookup.
  std::function<int(const char* host, const char* port, const addrinfo* hints, addrinfo** res)>
      getaddrinfo;
  // The own HTTP/2 transport's gather (h2_client.h: how long a socket is
  // left unread while requests are in flight on it), for tests; nullopt:
  // 1 ms. Zero: none (the patient gather below is apart).
  std::optional<Duration> h2_gather;
  // The own HTTP/2 transport's patient gather (h2_client.h: how long a
  // socket is left unread after a read while renewals, and nothing else, are
  // in flight on it), for tests; nullopt: 4 ms. Zero: the gather above.
  std::optional<Duration> h2_patient_gather;
};

// Counters since the client was made (a snapshot; for tests and metrics).
struct ClientStats {
  uint64_t started = 0;          // transfers handed to curl
  uint64_t completed = 0;        // transfers that finished (any outcome)
  uint64_t connections = 0;      // new TCP connections opened (CURLINFO_NUM_CONNECTS summed)
  uint64_t http2 = 0;            // responses that came over HTTP/2
  uint64_t waited = 0;           // requests that had to wait in the budget queue
  uint64_t expired_in_queue = 0; // requests whose timeout passed while queued
  uint64_t queued_lease = 0;     // waiting now, lease class
  uint64_t queued_background = 0;  // waiting now, background class
  uint64_t probes = 0;           // connection health probes sent (GET /version; see below)
  uint64_t retired = 0;          // connections ended as dead
  uint64_t protobuf_sent = 0;      // request bodies sent as application/vnd.kubernetes.protobuf
  uint64_t protobuf_received = 0;  // responses and watch streams answered in it
};

// Adds `more`'s counters to `into` (a client that hands work to another).
void add_stats(ClientStats& into, const ClientStats& more);

class Client {
 public:
  // Errors: the server is not an http(s) URL, the rate limit is out of range,
  // LEASEHOLD_KUBE_CONTENT_TYPE is neither json nor protobuf (nor empty),
  // the transport cannot serve this server (ClientOptions::transport).
  static Result<std::shared_ptr<Client>> create(ClusterConfig config, ClientOptions options = {});
  virtual ~Client() = default;
  virtual const ClusterConfig& config() const = 0;
  // One request (a PATCH body is sent as application/merge-patch+json, any
  // other body as application/json); `done` gets the response for any HTTP status, or an error
  // (Timeout, Unavailable; Unauthorized when TLS verification or the exec
  // plugin failed) when no response came. `timeout` counts from this call,
  // time spent waiting for the budget included. Pass Priority::kBackground
  // for anything that is not a lock's get/create/update.
  virtual void request(std::string method, std::string path, std::string body, Duration timeout,
                       std::function<void(Result<HttpResponse>)> done, Priority priority = Priority::kLease,
                       Media media = Media::kJson) = 0;
  // A streaming GET (watch): `on_line` for each newline-terminated line of a
  // 200 response; `on_end` once, with the HTTP error or transport failure;
  // `on_open` (optional) once, when the headers of a 200 response have
  // arrived: the stream is established, before any line.
  // Its start takes a token of the budget at `priority`. Returns an id for cancel().
  virtual uint64_t stream(std::string path, std::function<void(std::string_view)> on_line,
                          std::function<void(Result<HttpResponse>)> on_end,
                          Priority priority = Priority::kBackground,
                          std::function<void()> on_open = nullptr) = 0;
  // As stream(), but a POST with `body` (sent as application/json) whose
  // answer is the stream. Its start takes a token of the budget at
  // `priority`. Returns an id for cancel(). This default supports nothing: it
  // calls on_end with Invalid at once and returns 0.
  virtual uint64_t stream_post(std::string /*path*/, std::string /*body*/,
                               std::function<void(std::string_view)> /*on_line*/,
                               std::function<void(Result<HttpResponse>)> on_end,
                               Priority /*priority*/ = Priority::kBackground,
                               std::function<void()> /*on_open*/ = nullptr) {
    on_end(Error::invalid("stream_post not supported"));
    return 0;
  }
  // A Lease watch (Media::kLease): as stream(), but `on_frame` gets each
  // event in the format the server chose: a JSON line (kJson), or the
  // payload of one length-prefixed frame (kProtobuf, Content-Type
  // application/vnd.kubernetes.protobuf;stream=watch). A frame announcing
  // more than 8 MiB ends the stream (on_end: Invalid). This default asks for
  // JSON through stream().
  virtual uint64_t watch_leases(std::string path, std::function<void(std::string_view, WireFormat)> on_frame,
                                std::function<void(Result<HttpResponse>)> on_end,
                                Priority priority = Priority::kBackground, std::function<void()> on_open = nullptr) {
    return stream(
        std::move(path), [f = std::move(on_frame)](std::string_view line) { f(line, WireFormat::kJson); },
        std::move(on_end), priority, std::move(on_open));
  }
  // The format Lease requests ask for first (after LEASEHOLD_KUBE_CONTENT_TYPE).
  virtual WireFormat lease_format() const { return WireFormat::kJson; }
  // Ends a stream (or a queued request) without calling its callbacks.
  virtual void cancel(uint64_t id) = 0;
  virtual ClientStats stats() const = 0;
};

}  // namespace leasehold::kube
