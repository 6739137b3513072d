// Internal: the bodies of etcd v3's JSON gateway (grpc-gateway in front of
// the gRPC API, served under /v3/ on the client port), and the names
// concurrency.Election gives its keys. Pure: no I/O, no clock.
//
// The wire, as etcd v3.6 configures the gateway (server/embed/serve.go:
// grpc-gateway v2's JSONPb with protojson, UseProtoNames, EmitUnpopulated
// off, DiscardUnknown on; etcd v3.5's grpc-gateway v1 JSONPb{OrigName} writes
// the same forms):
//   - field names are the .proto names: "create_revision", "ID", "TTL";
//   - int64 and uint64 are decimal strings ("7587876543210123456"); they are
//     read here as strings or JSON integers, never through a double;
//   - `bytes` (keys, values) are base64, standard alphabet, padded;
//   - enums travel by name ("DELETE"); a zero value, false, "", an empty list
//     and an unset message are left out: a watch event without "type" is a
//     PUT, a Txn answer without "succeeded" failed its compare;
//   - a stream (/v3/watch, /v3/lease/keepalive) answers one JSON object per
//     line: {"result":{...}}, or {"error":{...}} as its last line;
//   - an error is a google.rpc.Status, {"code":5,"message":"etcdserver: ..."}
//     (a stream's: {"error":{"code":..,"message":..}}); grpc-gateway v1 wrote
//     {"error":"..","code":..,"message":..} and, on streams,
//     {"error":{"grpc_code":..,"http_code":..,"message":..,"http_status":..}}.
// Requests are written in the same forms (protojson also reads them).
//
// Decoders return Invalid for a body they cannot read, naming the field:
// "etcd Range answer: kvs[1].mod_revision: \"x\" is not an int64".
//
// Threading: plain values and pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "leasehold/error.h"

namespace leasehold::etcd {

// ---- keys -------------------------------------------------------------------

// The range_end that makes [prefix, end) every key starting with `prefix`
// (clientv3.GetPrefixRangeEnd): the last byte below 0xff plus one, the 0xff
// bytes after it dropped; "\0" (every key from `prefix` on) when there is no
// such byte, as for "" or "\xff\xff".
std::string prefix_range_end(std::string_view prefix);

// Go's fmt "%x" of the int64 lease ID: lower-case hex without leading zeros,
// a '-' before the magnitude of a negative one ("-1", "-8000000000000000").
std::string lease_hex(int64_t lease_id);
// The inverse: only the exact form lease_hex writes; std::nullopt otherwise.
std::optional<int64_t> parse_lease_hex(std::string_view hex);

// concurrency.Election's candidate key: NewElection(session, prefix) keeps
// prefix + "/" and Campaign writes fmt.Sprintf("%s%x", that, lease), so
// election_key("app", 0x694d...) is "app/694d...". The prefix is used as
// given (a trailing '/' doubles, as in Go).
std::string election_key(std::string_view prefix, int64_t lease_id);

// ---- requests ---------------------------------------------------------------
// Every member has an initializer, so a designated initializer may name only
// the fields it sets ({.key = k}) under -Wmissing-field-initializers.

enum class SortOrder { kNone, kAscend, kDescend };
enum class SortTarget { kKey, kVersion, kCreate, kMod, kValue };

// POST /v3/kv/range. Zero fields are left out of the body.
struct RangeRequest {
  std::string key{};
  std::string range_end{};  // "" only `key`; prefix_range_end(key) a prefix
  int64_t limit = 0;      // 0: no limit
  int64_t revision = 0;   // <= 0: the newest
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool serializable = false;  // a member-local read, possibly stale
  bool keys_only = false;
  bool count_only = false;
  int64_t min_create_revision = 0;  // 0: no bound
  int64_t max_create_revision = 0;  // 0: no bound
};

// POST /v3/kv/put.
struct PutRequest {
  std::string key{};
  std::string value{};
  int64_t lease = 0;  // 0: no lease
};

// POST /v3/kv/deleterange.
struct DeleteRangeRequest {
  std::string key{};
  std::string range_end{};  // as RangeRequest's
};

// One predicate of a Txn: `target` of `key` compared with a number (VERSION,
// CREATE, MOD, LEASE) or `value` (VALUE). A key that does not exist has
// create_revision, mod_revision, version and lease 0.
struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Op { kEqual, kGreater, kLess, kNotEqual };
  std::string key{};
  Target target = Target::kCreate;
  Op op = Op::kEqual;
  int64_t number = 0;  // every target but kValue
  std::string value{};   // kValue

  // `key`'s create_revision == rev (0: the key does not exist).
  static Compare create_revision(std::string key, int64_t rev, Op op = Op::kEqual);
  static Compare mod_revision(std::string key, int64_t rev, Op op = Op::kEqual);
  static Compare version(std::string key, int64_t version, Op op = Op::kEqual);
  static Compare value_is(std::string key, std::string value, Op op = Op::kEqual);
  static Compare lease_is(std::string key, int64_t lease, Op op = Op::kEqual);
};

using RequestOp = std::variant<RangeRequest, PutRequest, DeleteRangeRequest>;

// POST /v3/kv/txn: if every compare holds, `success`, else `failure`.
struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

// The create_request of a /v3/watch stream.
struct WatchCreateRequest {
  std::string key{};
  std::string range_end{};       // as RangeRequest's
  int64_t start_revision = 0;  // 0: from now on (the next revision)
  bool prev_kv = false;        // events carry the key as it was before
  bool progress_notify = false;
  bool no_put = false;         // filters: NOPUT
  bool no_delete = false;      // filters: NODELETE
};

// {"TTL":"15"} (+ "ID" when not 0: a lease ID of our choosing).
std::string encode_lease_grant(int64_t ttl_seconds, int64_t id = 0);
// {"ID":"..."}: the body of POST /v3/lease/keepalive (one answer line back).
std::string encode_lease_keep_alive(int64_t id);
std::string encode_lease_revoke(int64_t id);
std::string encode_lease_time_to_live(int64_t id, bool keys = false);
std::string encode_range(const RangeRequest& r);
std::string encode_put(const PutRequest& p);
std::string encode_delete_range(const DeleteRangeRequest& d);
std::string encode_txn(const TxnRequest& t);
// One newline-terminated JSON line for the /v3/watch request stream.
std::string encode_watch_create(const WatchCreateRequest& w);
std::string encode_watch_cancel(int64_t watch_id);
std::string encode_watch_progress();
// POST /v3/auth/authenticate; the answer's token goes in the Authorization header.
std::string encode_authenticate(std::string_view name, std::string_view password);

// ---- errors -----------------------------------------------------------------

// What an etcd error means for the caller, from etcd's message (the
// "etcdserver: ..." texts of api/v3rpc/rpctypes) or else its gRPC code.
enum class Fault {
  kAuthToken,         // invalid or expired token, stale auth revision, no user: authenticate again
  kAuthFailed,        // wrong user name or password
  kAuthNotEnabled,    // authenticate on a cluster without auth
  kPermissionDenied,  // the user's roles do not allow it
  kNotFound,
  kLeaseNotFound,     // "etcdserver: requested lease not found"
  kCompacted,         // the revision asked for is compacted (compact_revision, if known)
  kUnavailable,       // no leader, leader changed, timed out, stopped, unhealthy
  kTooManyRequests,
  kBadRequest,        // InvalidArgument, OutOfRange, FailedPrecondition
  kOther,
};
std::string_view fault_name(Fault f);

struct GatewayError {
  Fault fault = Fault::kOther;
  int grpc_code = 2;          // google.golang.org/grpc/codes; 2 (Unknown) if not given
  long http_status = 0;       // the HTTP status when known, else 0
  std::string message;        // etcd's own text
  int64_t compact_revision = 0;  // kCompacted from a watch: the oldest revision left

  // The leasehold Error: Unauthorized (kAuth*), Forbidden, NotFound, Gone
  // (kCompacted), Unavailable, Timeout (gRPC DeadlineExceeded),
  // TooManyRequests, Invalid, Internal; the message names the fault.
  Error to_error() const;
};

// The error an unsuccessful answer (HTTP status other than 200) carries:
// any of the gateway's error forms above; a body that is none of them (a
// proxy's page, an empty body) is judged by the HTTP status.
GatewayError decode_error(long http_status, std::string_view body);
// The Fault of an etcd error text and gRPC code (a watch's cancel_reason has
// no code: pass 2). Exposed for tests and the watch.
Fault classify(int grpc_code, std::string_view message);

// ---- answers ----------------------------------------------------------------

struct ResponseHeader {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  int64_t revision = 0;  // the store's revision when the request was applied
  uint64_t raft_term = 0;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct LeaseGrantResponse {
  ResponseHeader header;
  int64_t id = 0;
  int64_t ttl = 0;  // seconds, as the server granted
};

// A keepalive's answer. TTL 0 (left out) means the lease is gone.
struct LeaseKeepAliveResponse {
  ResponseHeader header;
  int64_t id = 0;
  int64_t ttl = 0;
  bool lease_gone() const { return ttl <= 0; }
};

// TTL -1: the lease is gone; 0: it expires within the second.
struct LeaseTimeToLiveResponse {
  ResponseHeader header;
  int64_t id = 0;
  int64_t ttl = 0;
  int64_t granted_ttl = 0;
  std::vector<std::string> keys;
  bool lease_gone() const { return ttl < 0; }
};

struct RangeResponse {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;
};

struct PutResponse {
  ResponseHeader header;
};

struct DeleteRangeResponse {
  ResponseHeader header;
  int64_t deleted = 0;
};

using ResponseOp = std::variant<RangeResponse, PutResponse, DeleteRangeResponse>;

struct TxnResponse {
  ResponseHeader header;
  bool succeeded = false;
  std::vector<ResponseOp> responses;  // of `success` or `failure`, in order
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // a DELETE's: the key, mod_revision = the deletion's revision
  std::optional<KeyValue> prev_kv;
};

struct WatchResponse {
  ResponseHeader header;
  int64_t watch_id = 0;  // the first watch of a stream is 0; -1 when refused
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;
  std::string cancel_reason;
  bool fragment = false;
  std::vector<Event> events;

  // Why the server canceled this watch: kCompacted (with the revision) when
  // start_revision was compacted, else cancel_reason classified (a refused
  // watch: permission denied, invalid token); nullopt if not canceled, or
  // canceled at our request.
  std::optional<GatewayError> cancel_error() const;
  // A progress notification (header.revision only), as clientv3 judges one.
  bool is_progress_notify() const;
};

struct AuthenticateResponse {
  ResponseHeader header;
  std::string token;
};

// The answers of the unary calls (HTTP 200 bodies). A LeaseGrant answer
// without ID or TTL is Invalid; one with a non-empty "error" (etcd v3 never
// writes it) is Internal with that text.
Result<LeaseGrantResponse> decode_lease_grant(std::string_view body);
Result<ResponseHeader> decode_lease_revoke(std::string_view body);
Result<LeaseTimeToLiveResponse> decode_lease_time_to_live(std::string_view body);
Result<RangeResponse> decode_range(std::string_view body);
Result<PutResponse> decode_put(std::string_view body);
Result<DeleteRangeResponse> decode_delete_range(std::string_view body);
Result<TxnResponse> decode_txn(std::string_view body);
Result<AuthenticateResponse> decode_authenticate(std::string_view body);

// One line of a stream: its result, or the error the server sent instead
// ({"error":{...}} on the stream, or a whole error body when the call failed
// before the stream began). Invalid only for a line that is neither.
template <class T>
using StreamItem = std::variant<T, GatewayError>;
Result<StreamItem<WatchResponse>> decode_watch_line(std::string_view line);
// Also takes the bare LeaseKeepAliveResponse object (no "result" wrapper).
Result<StreamItem<LeaseKeepAliveResponse>> decode_lease_keep_alive(std::string_view line);

}  // namespace leasehold::etcd
