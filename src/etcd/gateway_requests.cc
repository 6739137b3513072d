// The request bodies of etcd's JSON gateway and the names of election keys
// (gateway_codec.h); the answers are decoded in gateway_codec.cc.
#include "etcd/gateway_codec.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <limits>

#include "core/base64.h"

namespace leasehold::etcd {
namespace {

using nlohmann::json;

// Bodies we write: strings given to us (a user name) may not be UTF-8, and
// nlohmann's dump would throw on them; they are written with U+FFFD instead.
std::string body_of(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* sort_order_name(SortOrder o) {
  switch (o) {
    case SortOrder::kAscend: return "ASCEND";
    case SortOrder::kDescend: return "DESCEND";
    case SortOrder::kNone: break;
  }
  return "NONE";
}

const char* sort_target_name(SortTarget t) {
  switch (t) {
    case SortTarget::kVersion: return "VERSION";
    case SortTarget::kCreate: return "CREATE";
    case SortTarget::kMod: return "MOD";
    case SortTarget::kValue: return "VALUE";
    case SortTarget::kKey: break;
  }
  return "KEY";
}

// protojson's forms, zero values left out.
void put_bytes(json& o, const char* name, std::string_view b) {
  if (!b.empty()) o[name] = base64_encode(b);
}
void put_int(json& o, const char* name, int64_t v) {
  if (v != 0) o[name] = std::to_string(v);
}
void put_flag(json& o, const char* name, bool v) {
  if (v) o[name] = true;
}

json range_object(const RangeRequest& r) {
  json o = json::object();
  put_bytes(o, "key", r.key);
  put_bytes(o, "range_end", r.range_end);
  put_int(o, "limit", r.limit);
  put_int(o, "revision", r.revision);
  if (r.sort_order != SortOrder::kNone) o["sort_order"] = sort_order_name(r.sort_order);
  if (r.sort_target != SortTarget::kKey) o["sort_target"] = sort_target_name(r.sort_target);
  put_flag(o, "serializable", r.serializable);
  put_flag(o, "keys_only", r.keys_only);
  put_flag(o, "count_only", r.count_only);
  put_int(o, "min_create_revision", r.min_create_revision);
  put_int(o, "max_create_revision", r.max_create_revision);
  return o;
}

json put_object(const PutRequest& p) {
  json o = json::object();
  put_bytes(o, "key", p.key);
  put_bytes(o, "value", p.value);
  put_int(o, "lease", p.lease);
  return o;
}

json delete_object(const DeleteRangeRequest& d) {
  json o = json::object();
  put_bytes(o, "key", d.key);
  put_bytes(o, "range_end", d.range_end);
  return o;
}

// A Compare names its target's member of the target_union oneof even when
// it is zero ("create_revision":"0"), as clientv3 does.
json compare_object(const Compare& c) {
  static constexpr const char* kOps[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  static constexpr const char* kTargets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
  static constexpr const char* kMembers[] = {"version", "create_revision", "mod_revision", "value",
                                             "lease"};
  const auto t = static_cast<size_t>(c.target);
  json o = {{"result", kOps[static_cast<size_t>(c.op)]}, {"target", kTargets[t]}};
  put_bytes(o, "key", c.key);
  if (c.target == Compare::Target::kValue) o[kMembers[t]] = base64_encode(c.value);
  else o[kMembers[t]] = std::to_string(c.number);
  return o;
}

json ops_array(const std::vector<RequestOp>& ops) {
  json list = json::array();
  for (const RequestOp& op : ops) {
    if (auto* r = std::get_if<RangeRequest>(&op)) {
      list.push_back({{"request_range", range_object(*r)}});
    } else if (auto* p = std::get_if<PutRequest>(&op)) {
      list.push_back({{"request_put", put_object(*p)}});
    } else {
      list.push_back({{"request_delete_range", delete_object(std::get<DeleteRangeRequest>(op))}});
    }
  }
  return list;
}

json id_object(int64_t id) {
  json o = json::object();
  put_int(o, "ID", id);
  return o;
}

}  // namespace

// ---- keys ----

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string lease_hex(int64_t lease_id) {
  // The magnitude as uint64: -INT64_MIN does not fit an int64.
  const auto bits = static_cast<uint64_t>(lease_id);
  const uint64_t magnitude = lease_id < 0 ? 0 - bits : bits;
  char buf[17];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, magnitude, 16);
  (void)ec;  // 16 hex digits always fit
  return (lease_id < 0 ? "-" : "") + std::string(buf, end);
}

std::optional<int64_t> parse_lease_hex(std::string_view hex) {
  const bool negative = !hex.empty() && hex.front() == '-';
  std::string_view digits = negative ? hex.substr(1) : hex;
  if (digits.empty() || digits.size() > 16 || (digits.size() > 1 && digits.front() == '0')) {
    return std::nullopt;  // Go writes no leading zeros
  }
  for (char c : digits) {
    // Lower case only (from_chars would also take 'A'-'F').
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  uint64_t magnitude = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, 16);
  if (negative) {
    if (magnitude == 0 || magnitude > uint64_t{1} << 63) return std::nullopt;  // "-0" is not Go's
    return static_cast<int64_t>(0 - magnitude);
  }
  if (magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(magnitude);
}

std::string election_key(std::string_view prefix, int64_t lease_id) {
  return std::string(prefix) + "/" + lease_hex(lease_id);
}

// ---- requests ----

Compare Compare::create_revision(std::string key, int64_t rev, Op op) {
  return {std::move(key), Target::kCreate, op, rev, {}};
}
Compare Compare::mod_revision(std::string key, int64_t rev, Op op) {
  return {std::move(key), Target::kMod, op, rev, {}};
}
Compare Compare::version(std::string key, int64_t version, Op op) {
  return {std::move(key), Target::kVersion, op, version, {}};
}
Compare Compare::value_is(std::string key, std::string value, Op op) {
  return {std::move(key), Target::kValue, op, 0, std::move(value)};
}
Compare Compare::lease_is(std::string key, int64_t lease, Op op) {
  return {std::move(key), Target::kLease, op, lease, {}};
}

std::string encode_lease_grant(int64_t ttl_seconds, int64_t id) {
  json o = id_object(id);
  put_int(o, "TTL", ttl_seconds);
  return body_of(o);
}
std::string encode_lease_keep_alive(int64_t id) { return body_of(id_object(id)); }
std::string encode_lease_revoke(int64_t id) { return body_of(id_object(id)); }
std::string encode_lease_time_to_live(int64_t id, bool keys) {
  json o = id_object(id);
  put_flag(o, "keys", keys);
  return body_of(o);
}

std::string encode_range(const RangeRequest& r) { return body_of(range_object(r)); }
std::string encode_put(const PutRequest& p) { return body_of(put_object(p)); }
std::string encode_delete_range(const DeleteRangeRequest& d) { return body_of(delete_object(d)); }

std::string encode_txn(const TxnRequest& t) {
  json o = json::object();
  if (!t.compare.empty()) {
    json& list = o["compare"] = json::array();
    for (const Compare& c : t.compare) list.push_back(compare_object(c));
  }
  if (!t.success.empty()) o["success"] = ops_array(t.success);
  if (!t.failure.empty()) o["failure"] = ops_array(t.failure);
  return body_of(o);
}

std::string encode_watch_create(const WatchCreateRequest& w) {
  json c = json::object();
  put_bytes(c, "key", w.key);
  put_bytes(c, "range_end", w.range_end);
  put_int(c, "start_revision", w.start_revision);
  put_flag(c, "progress_notify", w.progress_notify);
  if (w.no_put || w.no_delete) {
    json& filters = c["filters"] = json::array();
    if (w.no_put) filters.push_back("NOPUT");
    if (w.no_delete) filters.push_back("NODELETE");
  }
  put_flag(c, "prev_kv", w.prev_kv);
  return body_of({{"create_request", c}}) + "\n";
}

std::string encode_watch_cancel(int64_t watch_id) {
  json c = json::object();
  put_int(c, "watch_id", watch_id);
  return body_of({{"cancel_request", c}}) + "\n";
}

std::string encode_watch_progress() {
  return body_of({{"progress_request", json::object()}}) + "\n";
}

std::string encode_authenticate(std::string_view name, std::string_view password) {
  return body_of({{"name", name}, {"password", password}});
}

}  // namespace leasehold::etcd
