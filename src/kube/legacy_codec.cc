#include "kube/legacy_codec.h"

#include <climits>

#include "backends/backends.h"

namespace leasehold::kube {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr size_t kMaxBody = 4 << 20;
constexpr size_t kMaxRecord = 64 << 10;

// metav1.Time: RFC 3339, UTC, whole seconds (Go truncates).
std::string format_seconds(WallTime t) {
  std::string micro = backends::format_micro_time(t);  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  return micro.substr(0, 19) + "Z";
}

std::string field(std::string_view name) { return std::string(name); }

Result<void> read_time(const json& j, const char* key, std::optional<WallTime>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) return Error::invalid(field(key) + ": not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return {};
  auto t = backends::parse_micro_time(s);
  if (!t) return Error::invalid(field(key) + ": " + t.error().message());
  out = *t;
  return {};
}

Result<void> read_int(const json& j, const char* key, int32_t& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_number_integer()) return Error::invalid(field(key) + ": not an integer");
  // Unsigned values above INT64_MAX are read as 0 by get<int64_t>: check both.
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT32_MAX)) {
    return Error::invalid(field(key) + ": " + it->dump() + " out of range");
  }
  auto v = it->get<int64_t>();
  if (v < 0 || v > INT32_MAX) return Error::invalid(field(key) + ": " + std::to_string(v) + " out of range");
  out = static_cast<int32_t>(v);
  return {};
}

Result<void> read_str(const json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) return Error::invalid(field(key) + ": not a string");
  out = it->get<std::string>();
  return {};
}

}  // namespace

std::string_view kind_name(LegacyKind k) { return k == LegacyKind::kConfigMap ? "ConfigMap" : "Endpoints"; }
std::string_view resource_name(LegacyKind k) {
  return k == LegacyKind::kConfigMap ? "configmaps" : "endpoints";
}

std::string encode_legacy_record(const LeaseRecord& r) {
  ordered_json j;
  j["holderIdentity"] = r.holder_identity;
  j["leaseDurationSeconds"] = r.lease_duration_seconds;
  j["acquireTime"] = r.acquire_time ? ordered_json(format_seconds(*r.acquire_time)) : ordered_json(nullptr);
  j["renewTime"] = r.renew_time ? ordered_json(format_seconds(*r.renew_time)) : ordered_json(nullptr);
  j["leaderTransitions"] = r.lease_transitions;
  j["strategy"] = r.strategy;
  j["preferredHolder"] = r.preferred_holder;
  return j.dump();
}

Result<LeaseRecord> decode_legacy_record(std::string_view text) {
  if (text.size() > kMaxRecord) {
    return Error::invalid("leader record of " + std::to_string(text.size()) + " bytes is too large");
  }
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error::invalid("leader record is not valid JSON");
  if (!j.is_object()) return Error::invalid("leader record is not a JSON object");
  LeaseRecord r;
  for (auto res : {read_str(j, "holderIdentity", r.holder_identity),
                   read_int(j, "leaseDurationSeconds", r.lease_duration_seconds),
                   read_time(j, "acquireTime", r.acquire_time),
                   read_time(j, "renewTime", r.renew_time),
                   read_int(j, "leaderTransitions", r.lease_transitions),
                   read_str(j, "strategy", r.strategy),
                   read_str(j, "preferredHolder", r.preferred_holder)}) {
    if (!res) return Error::invalid("leader record " + res.error().message());
  }
  return r;
}

Result<LegacyObject> decode_legacy_object(std::string_view body, LegacyKind kind) {
  std::string k(kind_name(kind));
  if (body.size() > kMaxBody) {
    return Error::invalid(k + " body of " + std::to_string(body.size()) + " bytes is too large");
  }
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error::invalid(k + " body is not valid JSON");
  if (!j.is_object()) return Error::invalid(k + " body is not a JSON object");
  if (auto kd = j.find("kind"); kd != j.end() && (!kd->is_string() || kd->get_ref<const std::string&>() != k)) {
    return Error::invalid("expected kind " + k);
  }
  auto meta = j.find("metadata");
  if (meta == j.end() || !meta->is_object()) return Error::invalid(k + " without metadata");
  auto rv = meta->find("resourceVersion");
  if (rv == meta->end() || !rv->is_string() || rv->get_ref<const std::string&>().empty()) {
    return Error::invalid(k + " without metadata.resourceVersion");
  }
  LegacyObject o;
  o.versioned.version = rv->get<std::string>();
  if (auto uid = meta->find("uid"); uid != meta->end() && uid->is_string()) o.uid = uid->get<std::string>();
  if (auto ann = meta->find("annotations"); ann != meta->end() && !ann->is_null()) {
    if (!ann->is_object()) return Error::invalid(k + " metadata.annotations is not an object");
    if (auto rec = ann->find(std::string(kLeaderAnnotation)); rec != ann->end()) {
      if (!rec->is_string()) {
        return Error::invalid(k + " annotation " + std::string(kLeaderAnnotation) + ": not a string");
      }
      auto r = decode_legacy_record(rec->get_ref<const std::string&>());
      if (!r) return Error::invalid(k + " annotation " + std::string(kLeaderAnnotation) + ": " + r.error().message());
      o.versioned.record = std::move(*r);
      o.has_record = true;
    }
  }
  o.object = std::move(j);
  return o;
}

std::string encode_legacy_update(const json& base, const LeaseRecord& record) {
  json obj = base.is_object() ? base : json::object();
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
  json& meta = obj["metadata"];
  if (!meta.contains("annotations") || !meta["annotations"].is_object()) meta["annotations"] = json::object();
  meta["annotations"][std::string(kLeaderAnnotation)] = encode_legacy_record(record);
  return obj.dump();
}

std::string encode_legacy_create(LegacyKind kind, const std::string& ns, const std::string& name,
                                 const LeaseRecord& record) {
  json obj = {{"apiVersion", "v1"},
              {"kind", std::string(kind_name(kind))},
              {"metadata",
               {{"name", name},
                {"namespace", ns},
                {"annotations", {{std::string(kLeaderAnnotation), encode_legacy_record(record)}}}}}};
  return obj.dump();
}

Result<LegacyWatchEvent> parse_legacy_watch_event(std::string_view line, LegacyKind kind) {
  auto f = parse_watch_frame(line);
  if (!f) return f.error();
  LegacyWatchEvent ev{};
  ev.type = f->type;
  ev.resource_version = std::move(f->resource_version);
  ev.error_code = f->error_code;
  if (f->object.is_null()) return ev;  // ERROR, BOOKMARK
  auto o = decode_legacy_object(f->object.dump(), kind);
  if (!o) return Error::invalid("watch event: " + o.error().message());
  ev.object = std::move(*o);
  return ev;
}

}  // namespace leasehold::kube
