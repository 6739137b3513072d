// The answers and errors of etcd's JSON gateway (gateway_codec.h); the
// request bodies are written in gateway_requests.cc.
#include "etcd/gateway_codec.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <limits>
#include <type_traits>

#include "core/base64.h"

namespace leasehold::etcd {
namespace {

using nlohmann::json;

// What one answer may cost us: a range or watch answer holds every key
// asked for, and etcd's gateway takes up to 2 GiB from its gRPC side.
constexpr size_t kMaxBody = 64 << 20;

// Whether v nests more than `limit` arrays and objects deep, found without
// recursion.
bool nests_deeper_than(const json& v, size_t limit) {
  std::vector<std::pair<const json*, size_t>> todo{{&v, 1}};
  while (!todo.empty()) {
    auto [p, depth] = todo.back();
    todo.pop_back();
    if (!p->is_structured()) continue;
    if (depth > limit) return true;
    for (const json& child : *p) todo.emplace_back(&child, depth + 1);
  }
  return false;
}

// A short, ASCII-only picture of a value for a message. A deeply nested
// value is only named: dump() recurses once per level (the parser does not),
// so an answer of a few MB of brackets would overflow the stack.
std::string show(const json& v) {
  constexpr size_t kMaxDepth = 32;
  if (nests_deeper_than(v, kMaxDepth)) return "(a value nested more than " + std::to_string(kMaxDepth) + " deep)";
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

std::string join(const std::string& base, std::string_view name) {
  return base.empty() ? std::string(name) : base + "." + std::string(name);
}
std::string index(const std::string& base, size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

// A 64-bit integer as protojson writes it (a decimal string) or reads it
// (also a JSON integer). nlohmann keeps JSON integers exact; a fraction or
// an exponent makes a float, which is refused.
template <class T>
std::optional<T> integer_of(const json& v) {
  static_assert(std::is_integral_v<T>);
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    T x{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return x;
  }
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return std::nullopt;
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {  // negative
    auto i = v.get<int64_t>();
    if (std::is_unsigned_v<T> || i < static_cast<int64_t>(std::numeric_limits<T>::min())) {
      return std::nullopt;
    }
    return static_cast<T>(i);
  }
  return std::nullopt;
}

// Reads the fields of an answer. The first problem is kept, with the path of
// the field ("kvs[1].key: not base64"), and every read after it does nothing.
class Reader {
 public:
  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }
  void fail(const std::string& path, const std::string& what) {
    if (ok()) problem_ = path + ": " + what;
  }

  // obj[name]; nullptr when absent or null (protojson's unset), or after a problem.
  const json* find(const json& obj, const char* name) const {
    if (!ok()) return nullptr;
    auto it = obj.find(name);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  template <class T>
  void integer(const json& obj, const std::string& base, const char* name, T& out) {
    const json* v = find(obj, name);
    if (!v) return;
    auto x = integer_of<T>(*v);
    constexpr const char* kType = std::is_signed_v<T> ? " is not an int64" : " is not a uint64";
    if (!x) return fail(join(base, name), show(*v) + kType);
    out = *x;
  }
  void boolean(const json& obj, const std::string& base, const char* name, bool& out) {
    const json* v = find(obj, name);
    if (!v) return;
    if (!v->is_boolean()) return fail(join(base, name), show(*v) + " is not a boolean");
    out = v->get<bool>();
  }
  void text(const json& obj, const std::string& base, const char* name, std::string& out) {
    const json* v = find(obj, name);
    if (!v) return;
    if (!v->is_string()) return fail(join(base, name), show(*v) + " is not a string");
    out = v->get<std::string>();
  }
  void bytes(const json& v, const std::string& path, std::string& out) {
    if (!ok()) return;
    if (!v.is_string()) return fail(path, show(v) + " is not a base64 string");
    auto b = base64_decode(v.get_ref<const std::string&>());
    if (!b) return fail(path, show(v) + " is not base64");
    out = std::move(*b);
  }
  void bytes(const json& obj, const std::string& base, const char* name, std::string& out) {
    if (const json* v = find(obj, name)) bytes(*v, join(base, name), out);
  }
  // A member that must be an object, or absent (nullptr).
  const json* object(const json& obj, const std::string& base, const char* name) {
    const json* v = find(obj, name);
    if (v && !v->is_object()) {
      fail(join(base, name), show(*v) + " is not an object");
      return nullptr;
    }
    return v;
  }
  // A member that must be a list, or absent (nullptr).
  const json* array(const json& obj, const std::string& base, const char* name) {
    const json* v = find(obj, name);
    if (v && !v->is_array()) {
      fail(join(base, name), show(*v) + " is not a list");
      return nullptr;
    }
    return v;
  }

 private:
  std::string problem_;
};

void read_header(Reader& r, const json& obj, const std::string& base, ResponseHeader& h) {
  const json* o = r.object(obj, base, "header");
  if (!o) return;
  const std::string p = join(base, "header");
  r.integer(*o, p, "cluster_id", h.cluster_id);
  r.integer(*o, p, "member_id", h.member_id);
  r.integer(*o, p, "revision", h.revision);
  r.integer(*o, p, "raft_term", h.raft_term);
}

void read_kv(Reader& r, const json& o, const std::string& p, KeyValue& kv) {
  if (!o.is_object()) return r.fail(p, show(o) + " is not an object");
  r.bytes(o, p, "key", kv.key);
  if (r.ok() && kv.key.empty()) return r.fail(join(p, "key"), "missing");  // etcd has no empty key
  r.bytes(o, p, "value", kv.value);
  r.integer(o, p, "create_revision", kv.create_revision);
  r.integer(o, p, "mod_revision", kv.mod_revision);
  r.integer(o, p, "version", kv.version);
  r.integer(o, p, "lease", kv.lease);
}

void read_kvs(Reader& r, const json& obj, const std::string& base, std::vector<KeyValue>& out) {
  const json* list = r.array(obj, base, "kvs");
  if (!list) return;
  out.resize(list->size());
  for (size_t i = 0; i < list->size() && r.ok(); ++i) {
    read_kv(r, (*list)[i], index(join(base, "kvs"), i), out[i]);
  }
}

void read_range(Reader& r, const json& o, const std::string& p, RangeResponse& out) {
  read_header(r, o, p, out.header);
  read_kvs(r, o, p, out.kvs);
  r.boolean(o, p, "more", out.more);
  r.integer(o, p, "count", out.count);
}

void read_event(Reader& r, const json& o, const std::string& p, Event& ev) {
  if (!o.is_object()) return r.fail(p, show(o) + " is not an object");
  if (const json* t = r.find(o, "type")) {
    if (*t == "DELETE" || *t == 1) ev.type = Event::Type::kDelete;
    else if (*t == "PUT" || *t == 0) ev.type = Event::Type::kPut;
    else return r.fail(join(p, "type"), show(*t) + " is not PUT or DELETE");
  }
  const json* kv = r.find(o, "kv");
  if (!kv) return r.fail(join(p, "kv"), "missing");
  read_kv(r, *kv, join(p, "kv"), ev.kv);
  if (const json* prev = r.find(o, "prev_kv")) {
    read_kv(r, *prev, join(p, "prev_kv"), ev.prev_kv.emplace());
  }
}

void read_watch(Reader& r, const json& o, WatchResponse& w) {
  const std::string p = "result";
  read_header(r, o, p, w.header);
  r.integer(o, p, "watch_id", w.watch_id);
  r.boolean(o, p, "created", w.created);
  r.boolean(o, p, "canceled", w.canceled);
  r.integer(o, p, "compact_revision", w.compact_revision);
  r.text(o, p, "cancel_reason", w.cancel_reason);
  r.boolean(o, p, "fragment", w.fragment);
  if (const json* list = r.array(o, p, "events")) {
    w.events.resize(list->size());
    for (size_t i = 0; i < list->size() && r.ok(); ++i) {
      read_event(r, (*list)[i], index(join(p, "events"), i), w.events[i]);
    }
  }
}

void read_keep_alive(Reader& r, const json& o, const std::string& p, LeaseKeepAliveResponse& k) {
  read_header(r, o, p, k.header);
  r.integer(o, p, "ID", k.id);
  r.integer(o, p, "TTL", k.ttl);
}

// The body as a JSON object, or Invalid naming `what`.
Result<json> parse_object(std::string_view body, std::string_view what) {
  if (body.size() > kMaxBody) {
    return Error::invalid(std::string(what) + ": " + std::to_string(body.size()) +
                          " bytes is too large");
  }
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error::invalid(std::string(what) + ": not valid JSON");
  if (!j.is_object()) return Error::invalid(std::string(what) + ": not a JSON object");
  return j;
}

// Decodes a unary answer with `read(reader, object, value)`.
template <class T, class Read>
Result<T> decode(std::string_view body, std::string_view what, Read read) {
  auto j = parse_object(body, what);
  if (!j) return j.error();
  Reader r;
  T value{};
  read(r, *j, value);
  if (!r.ok()) return Error::invalid(std::string(what) + ": " + r.problem());
  return value;
}

// ---- errors ----

// The gRPC code grpc-gateway answers with each HTTP status (the inverse of
// its HTTPStatusFromCode), for bodies that say nothing themselves.
int code_of_http(long status) {
  switch (status) {
    case 400: return 3;   // InvalidArgument (also FailedPrecondition, OutOfRange)
    case 401: return 16;  // Unauthenticated
    case 403: return 7;   // PermissionDenied
    case 404: return 5;   // NotFound
    case 409: return 10;  // Aborted (also AlreadyExists)
    case 429: return 8;   // ResourceExhausted
    case 499: return 1;   // Canceled
    case 501: return 12;  // Unimplemented
    case 502:
    case 503: return 14;  // Unavailable
    case 504: return 4;   // DeadlineExceeded
    default: return 2;    // Unknown
  }
}

// A google.rpc.Status in any of the gateway's forms (see the header), or
// nullopt when `o` carries neither a code nor a message.
std::optional<GatewayError> status_of(const json& o, long http_status) {
  GatewayError e;
  e.http_status = http_status;
  bool any = false;
  for (const char* key : {"code", "grpc_code"}) {
    if (auto it = o.find(key); it != o.end()) {
      if (auto c = integer_of<int32_t>(*it)) {
        e.grpc_code = *c;
        any = true;
        break;
      }
    }
  }
  for (const char* key : {"message", "error"}) {
    auto it = o.find(key);
    if (it != o.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      e.message = it->get<std::string>();
      any = true;
      break;
    }
  }
  if (auto it = o.find("http_code"); it != o.end() && e.http_status == 0) {
    if (auto h = integer_of<int32_t>(*it)) e.http_status = *h;
  }
  if (!any) return std::nullopt;
  if (e.message.empty()) e.message = "(no message)";
  e.fault = classify(e.grpc_code, e.message);
  return e;
}

GatewayError error_of_line(const json& o) {
  auto e = status_of(o, 0);
  if (e) return std::move(*e);
  GatewayError unknown;
  unknown.message = "an error without code or message: " + show(o);
  return unknown;
}

// A stream line: {"result":{...}} is the message; {"error":{...}} (any
// form), or a whole Status at the top (the call failed before the stream
// began), an error. With `bare`, any other object is the message itself.
using LinePart = std::variant<const json*, GatewayError>;
Result<LinePart> split_line(const json& j, std::string_view what, bool bare) {
  if (auto it = j.find("result"); it != j.end()) {
    if (!it->is_object()) {
      return Error::invalid(std::string(what) + ": result: " + show(*it) + " is not an object");
    }
    return LinePart(&*it);
  }
  auto err = j.find("error");
  if (err != j.end() && err->is_object()) return LinePart(error_of_line(*err));
  if (err != j.end() || j.contains("code")) return LinePart(error_of_line(j));
  if (bare) return LinePart(&j);
  return Error::invalid(std::string(what) + ": neither result nor error");
}

bool has(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

// ---- errors ----

std::string_view fault_name(Fault f) {
  switch (f) {
    case Fault::kAuthToken: return "auth token rejected";
    case Fault::kAuthFailed: return "authentication failed";
    case Fault::kAuthNotEnabled: return "auth not enabled";
    case Fault::kPermissionDenied: return "permission denied";
    case Fault::kNotFound: return "not found";
    case Fault::kLeaseNotFound: return "lease not found";
    case Fault::kCompacted: return "revision compacted";
    case Fault::kUnavailable: return "unavailable";
    case Fault::kTooManyRequests: return "too many requests";
    case Fault::kBadRequest: return "bad request";
    case Fault::kOther: break;
  }
  return "error";
}

Fault classify(int grpc_code, std::string_view m) {
  // etcd's own texts first (api/v3rpc/rpctypes): they are finer than the
  // codes, and a watch's cancel_reason has no code at all.
  if (has(m, "invalid auth token") || has(m, "revision of auth store is old") ||
      has(m, "user name is empty")) {
    return Fault::kAuthToken;
  }
  if (has(m, "authentication failed")) return Fault::kAuthFailed;
  if (has(m, "authentication is not enabled")) return Fault::kAuthNotEnabled;
  if (has(m, "permission denied")) return Fault::kPermissionDenied;
  if (has(m, "requested lease not found")) return Fault::kLeaseNotFound;
  if (has(m, "required revision has been compacted")) return Fault::kCompacted;
  if (has(m, "etcdserver: no leader") || has(m, "leader changed") || has(m, "not leader") ||
      has(m, "request timed out") || has(m, "server stopped") || has(m, "unhealthy cluster") ||
      has(m, "database space exceeded")) {
    return Fault::kUnavailable;
  }
  if (has(m, "too many requests")) return Fault::kTooManyRequests;
  switch (grpc_code) {
    case 16: return Fault::kAuthToken;         // Unauthenticated
    case 7: return Fault::kPermissionDenied;   // PermissionDenied
    case 5: return Fault::kNotFound;           // NotFound
    case 1:                                    // Canceled
    case 4:                                    // DeadlineExceeded
    case 10:                                   // Aborted
    case 14: return Fault::kUnavailable;       // Unavailable
    case 8: return Fault::kTooManyRequests;    // ResourceExhausted
    case 3:                                    // InvalidArgument
    case 6:                                    // AlreadyExists
    case 9:                                    // FailedPrecondition
    case 11:                                   // OutOfRange
    case 12: return Fault::kBadRequest;        // Unimplemented
    default: return Fault::kOther;
  }
}

Error GatewayError::to_error() const {
  Code code = Code::kInternal;
  switch (fault) {
    case Fault::kAuthToken:
    case Fault::kAuthFailed: code = Code::kUnauthorized; break;
    case Fault::kAuthNotEnabled:
    case Fault::kBadRequest: code = Code::kInvalid; break;
    case Fault::kPermissionDenied: code = Code::kForbidden; break;
    case Fault::kNotFound:
    case Fault::kLeaseNotFound: code = Code::kNotFound; break;
    case Fault::kCompacted: code = Code::kGone; break;
    case Fault::kUnavailable: code = grpc_code == 4 ? Code::kTimeout : Code::kUnavailable; break;
    case Fault::kTooManyRequests: code = Code::kTooManyRequests; break;
    case Fault::kOther: break;
  }
  std::string m = "etcd " + std::string(fault_name(fault)) + ": " + message;
  if (compact_revision != 0) {
    m += " (oldest revision left: " + std::to_string(compact_revision) + ")";
  }
  return {code, std::move(m)};
}

GatewayError decode_error(long http_status, std::string_view body) {
  if (body.size() <= kMaxBody) {
    auto j = json::parse(body, nullptr, false);
    if (j.is_object()) {
      auto err = j.find("error");
      const json& status = err != j.end() && err->is_object() ? *err : j;
      if (auto e = status_of(status, http_status)) return std::move(*e);
    }
  }
  // No Status: a proxy's page, a mux's "Not Found", nothing at all.
  GatewayError e;
  e.http_status = http_status;
  e.grpc_code = code_of_http(http_status);
  e.message = "HTTP " + std::to_string(http_status);
  std::string excerpt;
  for (char c : body.substr(0, 120)) excerpt.push_back(c >= 0x20 && c < 0x7f ? c : ' ');
  if (excerpt.find_first_not_of(' ') != std::string::npos) e.message += ": " + excerpt;
  e.fault = classify(e.grpc_code, "");
  return e;
}

// ---- answers ----

std::optional<GatewayError> WatchResponse::cancel_error() const {
  if (!canceled) return std::nullopt;
  if (compact_revision != 0) {
    GatewayError e{Fault::kCompacted, 11, 0, cancel_reason, compact_revision};
    if (e.message.empty()) e.message = "etcdserver: mvcc: required revision has been compacted";
    return e;
  }
  if (cancel_reason.empty()) return std::nullopt;
  return GatewayError{classify(2, cancel_reason), 2, 0, cancel_reason, 0};
}

bool WatchResponse::is_progress_notify() const {
  return events.empty() && !created && !canceled && compact_revision == 0 && header.revision != 0;
}

Result<LeaseGrantResponse> decode_lease_grant(std::string_view body) {
  constexpr std::string_view kWhat = "etcd LeaseGrant answer";
  std::string error;
  auto g = decode<LeaseGrantResponse>(body, kWhat, [&](Reader& r, const json& o,
                                                       LeaseGrantResponse& v) {
    read_header(r, o, "", v.header);
    r.integer(o, "", "ID", v.id);
    r.integer(o, "", "TTL", v.ttl);
    r.text(o, "", "error", error);
    if (r.ok() && error.empty() && v.id == 0) r.fail("ID", "missing");
    if (r.ok() && error.empty() && v.ttl <= 0) r.fail("TTL", "missing");
  });
  // etcd v3 never sets "error"; an answer that does has no usable lease.
  if (g && !error.empty()) return Error::internal(std::string(kWhat) + ": error: " + error);
  return g;
}

Result<ResponseHeader> decode_lease_revoke(std::string_view body) {
  return decode<ResponseHeader>(body, "etcd LeaseRevoke answer",
                                [](Reader& r, const json& o, ResponseHeader& h) {
    read_header(r, o, "", h);
  });
}

Result<LeaseTimeToLiveResponse> decode_lease_time_to_live(std::string_view body) {
  return decode<LeaseTimeToLiveResponse>(body, "etcd LeaseTimeToLive answer",
                                         [](Reader& r, const json& o, LeaseTimeToLiveResponse& v) {
    read_header(r, o, "", v.header);
    r.integer(o, "", "ID", v.id);
    r.integer(o, "", "TTL", v.ttl);
    r.integer(o, "", "grantedTTL", v.granted_ttl);
    if (const json* keys = r.array(o, "", "keys")) {
      v.keys.resize(keys->size());
      for (size_t i = 0; i < keys->size(); ++i) r.bytes((*keys)[i], index("keys", i), v.keys[i]);
    }
  });
}

Result<RangeResponse> decode_range(std::string_view body) {
  return decode<RangeResponse>(body, "etcd Range answer",
                               [](Reader& r, const json& o, RangeResponse& v) {
    read_range(r, o, "", v);
  });
}

Result<PutResponse> decode_put(std::string_view body) {
  return decode<PutResponse>(body, "etcd Put answer", [](Reader& r, const json& o, PutResponse& v) {
    read_header(r, o, "", v.header);
  });
}

Result<DeleteRangeResponse> decode_delete_range(std::string_view body) {
  return decode<DeleteRangeResponse>(body, "etcd DeleteRange answer",
                                     [](Reader& r, const json& o, DeleteRangeResponse& v) {
    read_header(r, o, "", v.header);
    r.integer(o, "", "deleted", v.deleted);
  });
}

Result<TxnResponse> decode_txn(std::string_view body) {
  return decode<TxnResponse>(body, "etcd Txn answer", [](Reader& r, const json& o, TxnResponse& v) {
    read_header(r, o, "", v.header);
    r.boolean(o, "", "succeeded", v.succeeded);
    const json* list = r.array(o, "", "responses");
    for (size_t i = 0; list && i < list->size() && r.ok(); ++i) {
      const json& item = (*list)[i];
      const std::string p = index("responses", i);
      if (!item.is_object() || item.size() != 1) {
        r.fail(p, show(item) + " is not one response_range, response_put or response_delete_range");
      } else if (const json* rr = r.object(item, p, "response_range")) {
        auto& range = std::get<RangeResponse>(v.responses.emplace_back(RangeResponse{}));
        read_range(r, *rr, join(p, "response_range"), range);
      } else if (const json* pr = r.object(item, p, "response_put")) {
        auto& put = std::get<PutResponse>(v.responses.emplace_back(PutResponse{}));
        read_header(r, *pr, join(p, "response_put"), put.header);
      } else if (const json* dr = r.object(item, p, "response_delete_range")) {
        auto& d = std::get<DeleteRangeResponse>(v.responses.emplace_back(DeleteRangeResponse{}));
        read_header(r, *dr, join(p, "response_delete_range"), d.header);
        r.integer(*dr, join(p, "response_delete_range"), "deleted", d.deleted);
      } else if (r.ok()) {
        r.fail(p, "unknown response " + show(item.begin().key()));
      }
    }
  });
}

Result<AuthenticateResponse> decode_authenticate(std::string_view body) {
  return decode<AuthenticateResponse>(body, "etcd Authenticate answer",
                                      [](Reader& r, const json& o, AuthenticateResponse& v) {
    read_header(r, o, "", v.header);
    r.text(o, "", "token", v.token);
    if (r.ok() && v.token.empty()) r.fail("token", "missing");
  });
}

Result<StreamItem<WatchResponse>> decode_watch_line(std::string_view line) {
  constexpr std::string_view kWhat = "etcd watch line";
  auto j = parse_object(line, kWhat);
  if (!j) return j.error();
  auto part = split_line(*j, kWhat, /*bare=*/false);
  if (!part) return part.error();
  if (auto* e = std::get_if<GatewayError>(&*part)) return StreamItem<WatchResponse>(std::move(*e));
  Reader r;
  WatchResponse w;
  read_watch(r, *std::get<const json*>(*part), w);
  if (!r.ok()) return Error::invalid(std::string(kWhat) + ": " + r.problem());
  return StreamItem<WatchResponse>(std::move(w));
}

Result<StreamItem<LeaseKeepAliveResponse>> decode_lease_keep_alive(std::string_view line) {
  constexpr std::string_view kWhat = "etcd LeaseKeepAlive answer";
  auto j = parse_object(line, kWhat);
  if (!j) return j.error();
  auto part = split_line(*j, kWhat, /*bare=*/true);
  if (!part) return part.error();
  if (auto* e = std::get_if<GatewayError>(&*part)) {
    return StreamItem<LeaseKeepAliveResponse>(std::move(*e));
  }
  const json* o = std::get<const json*>(*part);
  Reader r;
  LeaseKeepAliveResponse k;
  read_keep_alive(r, *o, o == &*j ? "" : "result", k);
  if (!r.ok()) return Error::invalid(std::string(kWhat) + ": " + r.problem());
  return StreamItem<LeaseKeepAliveResponse>(std::move(k));
}

}  // namespace leasehold::etcd
