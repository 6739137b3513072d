// Internal: the etcd:// lock's HTTP client for etcd v3's JSON gateway
// (testenv/etcd-gateway.md says what the gateway answers).
//
// One Transport per set of endpoints and credentials; every election of a
// Runtime on that cluster shares it. Built on kube::Client (libcurl, one
// thread driving every transfer): HTTP/2 over TLS (https://), HTTP/1.1 on
// plain http:// (the gateway serves JSON only over HTTP/1.1 there).
//
// Every call is POST /v3/...; each carries `Grpc-Metadata-hasleader: true`,
// so a member without a raft leader answers at once (Unavailable) instead of
// holding the call for 7 s.
//
// Endpoints: calls go to the current endpoint. A call that gets no HTTP
// answer (connection refused, reset, timeout) or a gRPC Unavailable (no
// leader, leader changed, stopped) moves the current endpoint to the next
// in the list, if it was still the one the call went to; the call itself
// fails with that error (its caller retries). Watches open on the current
// endpoint.
//
// Auth: with a user name, the first call authenticates (POST
// /v3/auth/authenticate) and every call carries the token in its
// Authorization header (the raw token, as etcd's clients send it). A call
// answered with an invalid-token error (a member restart forgets tokens;
// simple tokens expire unused) authenticates again and is sent once more.
// Wrong credentials fail every waiting call with Unauthorized, naming the
// user, never the password. Calls and watches made while an authenticate is
// under way wait for it; a waiting call whose timeout passes fails with
// Timeout. A watch refused for its token (a canceled answer whose
// cancel_reason is an invalid token) is passed on as it came, and the next
// call or watch authenticates first.
//
// Errors: Result errors carry the gateway's meaning (GatewayError::to_error:
// Unauthorized, Forbidden, NotFound, Gone for a compacted revision,
// Unavailable, Timeout, Invalid, ...), and the message names the endpoint
// and the call: "etcd http://127.0.0.1:2379 /v3/kv/txn: ...".
//
// Threading: every method is safe from any thread. Completions run on the
// transport's threads (one per endpoint used; a call that times out waiting
// for authentication, on the thread that watches those timeouts) and must be
// short (the driver posts them to the Runtime). The Transport must not be
// destroyed from a completion; its destruction fails what is under way
// (Unavailable) and calls those completions on the destroying thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "leasehold/clock.h"
#include "leasehold/error.h"

namespace leasehold::etcd {

struct ConnectionConfig {
  // "http://HOST:PORT" or "https://HOST:PORT", at least one; all of one scheme.
  std::vector<std::string> endpoints;
  std::string ca_pem;     // https: trust this CA (PEM); empty: the system store
  std::string cert_pem;   // https: client certificate (PEM), with key_pem
  std::string key_pem;
  bool insecure_skip_tls_verify = false;
  std::string user;       // empty: no authentication
  std::string password;
  std::string source;     // where this came from (the lock URL), for messages
};

struct TransportStats {
  uint64_t calls = 0;            // unary calls answered (any outcome), authenticate not counted
  uint64_t watches = 0;          // watch streams opened
  uint64_t authentications = 0;  // POST /v3/auth/authenticate sent
  uint64_t failovers = 0;        // moves of the current endpoint
  uint64_t connections = 0;      // TCP connections opened, all endpoints
};

class Transport {
 public:
  // Errors: no endpoints, an endpoint that is not http(s)://HOST:PORT, mixed
  // schemes, a certificate without a key.
  static Result<std::shared_ptr<Transport>> create(ConnectionConfig config, Clock* clock = nullptr);
  virtual ~Transport() = default;

  // POST `path` ("/v3/kv/range", ...) with a JSON body. `done` gets the body
  // of a 200 answer, or the error (see above). `timeout` counts from this
  // call, authentication included; zero or less: none.
  virtual void call(std::string path, std::string body, Duration timeout,
                    std::function<void(Result<std::string>)> done) = 0;
  // POST /v3/watch with `request` (one line, encode_watch_create) on the
  // current endpoint. `on_line` gets each answer line as it comes
  // (decode_watch_line reads it); `on_end` once when the stream ends (an
  // HTTP error, a broken connection). Returns an id for cancel().
  virtual uint64_t watch(std::string request, std::function<void(std::string_view)> on_line,
                         std::function<void(Error)> on_end) = 0;
  // Ends a watch: no callback of it starts after cancel() returns, except
  // one already under way on the client's thread (an on_line that passed
  // its check, an on_end already queued), so callers drop late ones by
  // their own generation or id.
  virtual void cancel(uint64_t id) = 0;

  // Ends every client thread now, on the calling thread (never call it from
  // a completion); open watches end, later calls fail with Unavailable.
  // Idempotent; the destructor does the same. The Runtime calls it before it
  // drops its transports, so none is ever destroyed on its own thread.
  virtual void shutdown() = 0;

  virtual std::string current_endpoint() const = 0;
  virtual TransportStats stats() const = 0;
  virtual const ConnectionConfig& config() const = 0;
};

}  // namespace leasehold::etcd
