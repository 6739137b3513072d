// libFuzzer: every decoder of etcd's JSON gateway codec on the same input,
// and the pure helpers beside them. Never crash; decoded keys are never
// empty; base64, lease IDs in hex and prefix range ends keep their laws.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/base64.h"
#include "etcd/gateway_codec.h"

namespace etcd = leasehold::etcd;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_kv(const etcd::KeyValue& kv) { check(!kv.key.empty()); }

template <class T>
void check_error(const leasehold::Result<T>& r) {
  if (!r.ok()) check(!r.error().message().empty());
}

// [prefix, end) holds exactly the keys starting with prefix.
void check_range_end(std::string_view prefix) {
  std::string end = etcd::prefix_range_end(prefix);
  if (end == std::string(1, '\0')) {
    for (char c : prefix) check(static_cast<unsigned char>(c) == 0xff);
    return;
  }
  check(!end.empty() && end.size() <= prefix.size());
  check(prefix.substr(0, end.size() - 1) == std::string_view(end).substr(0, end.size() - 1));
  const auto last = static_cast<unsigned char>(prefix[end.size() - 1]);
  check(static_cast<unsigned char>(end.back()) == last + 1);
  for (char c : prefix.substr(end.size())) check(static_cast<unsigned char>(c) == 0xff);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto g = etcd::decode_lease_grant(in); g.ok()) check(g->id != 0 && g->ttl > 0);
  else check_error(g);
  check_error(etcd::decode_lease_revoke(in));
  check_error(etcd::decode_lease_time_to_live(in));
  if (auto r = etcd::decode_range(in); r.ok()) {
    for (const auto& kv : r->kvs) {
      check_kv(kv);
      etcd::RangeRequest under{.key = kv.key, .range_end = etcd::prefix_range_end(kv.key)};
      check(!etcd::encode_range(under).empty());
    }
  } else {
    check_error(r);
  }
  check_error(etcd::decode_put(in));
  check_error(etcd::decode_delete_range(in));
  if (auto t = etcd::decode_txn(in); t.ok()) {
    for (const auto& op : t->responses) {
      if (auto* range = std::get_if<etcd::RangeResponse>(&op)) {
        for (const auto& kv : range->kvs) check_kv(kv);
      }
    }
  } else {
    check_error(t);
  }
  if (auto a = etcd::decode_authenticate(in); a.ok()) check(!a->token.empty());
  else check_error(a);
  if (auto w = etcd::decode_watch_line(in); w.ok()) {
    if (auto* resp = std::get_if<etcd::WatchResponse>(&*w)) {
      for (const auto& ev : resp->events) {
        check_kv(ev.kv);
        if (ev.prev_kv) check_kv(*ev.prev_kv);
      }
      if (auto e = resp->cancel_error()) check(!e->to_error().message().empty());
    } else {
      check(!std::get<etcd::GatewayError>(*w).to_error().message().empty());
    }
  } else {
    check_error(w);
  }
  if (auto k = etcd::decode_lease_keep_alive(in); k.ok()) {
    if (auto* e = std::get_if<etcd::GatewayError>(&*k)) check(!e->message.empty());
  } else {
    check_error(k);
  }
  const long http = size > 0 ? 400 + data[0] % 200 : 500;
  etcd::GatewayError e = etcd::decode_error(http, in);
  check(e.http_status != 0 && !e.message.empty() && !e.to_error().message().empty());

  // The helpers, on the same bytes.
  auto back = leasehold::base64_decode(leasehold::base64_encode(in));
  check(back && *back == in);
  if (auto bytes = leasehold::base64_decode(in)) {
    check(leasehold::base64_decode(leasehold::base64_encode(*bytes)) == bytes);
  }
  check_range_end(in);
  if (size >= 8) {
    int64_t id;
    std::memcpy(&id, data, sizeof id);
    check(etcd::parse_lease_hex(etcd::lease_hex(id)) == id);
  }
  if (auto id = etcd::parse_lease_hex(in)) check(etcd::lease_hex(*id) == in);
  check(!etcd::encode_authenticate(in, in).empty());
  check(!etcd::encode_put({std::string(in), std::string(in), 1}).empty());
  return 0;
}
