#include "kube/lease_codec.h"

#include "backends/backends.h"
#ifdef LEASEHOLD_PROTOBUF
#include "kube/lease_proto.h"
#endif

namespace leasehold::kube {
namespace {

using nlohmann::json;
using backends::format_micro_time;
using backends::parse_micro_time;

constexpr size_t kMaxBody = 4 << 20;

Result<void> read_time(const json& spec, const char* key, std::optional<WallTime>& out) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return {};
  if (!it->is_string()) return Error::invalid(std::string("spec.") + key + ": not a string");
  auto t = parse_micro_time(it->get_ref<const std::string&>());
  if (!t) return Error::invalid(std::string("spec.") + key + ": " + t.error().message());
  out = *t;
  return {};
}

Result<void> read_int(const json& spec, const char* key, int32_t& out) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return {};
  if (!it->is_number_integer()) return Error::invalid(std::string("spec.") + key + ": not an integer");
  auto v = it->get<int64_t>();
  if (v < 0 || v > INT32_MAX) {
    return Error::invalid(std::string("spec.") + key + ": " + std::to_string(v) + " out of range");
  }
  out = static_cast<int32_t>(v);
  return {};
}

Result<void> read_str(const json& spec, const char* key, std::string& out) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return {};
  if (!it->is_string()) return Error::invalid(std::string("spec.") + key + ": not a string");
  out = it->get<std::string>();
  return {};
}

void write_spec(json& spec, const LeaseRecord& r) {
  spec["holderIdentity"] = r.holder_identity;
  spec["leaseDurationSeconds"] = r.lease_duration_seconds;
  if (r.acquire_time) spec["acquireTime"] = format_micro_time(*r.acquire_time);
  else spec.erase("acquireTime");
  if (r.renew_time) spec["renewTime"] = format_micro_time(*r.renew_time);
  else spec.erase("renewTime");
  spec["leaseTransitions"] = r.lease_transitions;
  if (!r.strategy.empty()) spec["strategy"] = r.strategy;
  else spec.erase("strategy");
  // kube-apiserver accepts spec.preferredHolder only beside a strategy
  // (coordinated election); without one it travels in an annotation.
  if (!r.preferred_holder.empty() && !r.strategy.empty()) spec["preferredHolder"] = r.preferred_holder;
  else spec.erase("preferredHolder");
}

// The preferred holder of a Lease without a strategy (an admin's `leasehold
// handoff`): the annotation kPreferredHolderAnnotation, set or removed.
void write_preferred_annotation(json& obj, const LeaseRecord& r) {
  const bool set = !r.preferred_holder.empty() && r.strategy.empty();
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) {
    if (!set) return;
    obj["metadata"] = json::object();
    meta = obj.find("metadata");
  }
  auto ann = meta->find("annotations");
  if (set) {
    if (ann == meta->end() || !ann->is_object()) (*meta)["annotations"] = json::object();
    (*meta)["annotations"][kPreferredHolderAnnotation] = r.preferred_holder;
  } else if (ann != meta->end() && ann->is_object()) {
    ann->erase(kPreferredHolderAnnotation);
    if (ann->empty()) meta->erase("annotations");
  }
}

std::string describe(const RequestInfo& r) {
  std::string what = r.verb + " " + r.resource;
  if (!r.group.empty()) what += "." + r.group;
  if (!r.ns.empty() || !r.name.empty()) what += " " + (r.ns.empty() ? "" : r.ns + "/") + r.name;
  return what;
}

}  // namespace

Result<Lease> decode_lease(std::string_view body) {
  if (body.size() > kMaxBody) return Error::invalid("Lease body of " + std::to_string(body.size()) + " bytes is too large");
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error::invalid("Lease body is not valid JSON");
  return decode_lease_object(std::move(j));
}

Result<Lease> decode_lease_object(json&& j) {
  if (!j.is_object()) return Error::invalid("Lease body is not a JSON object");
  auto kind = j.find("kind");
  if (kind != j.end() && (!kind->is_string() || kind->get_ref<const std::string&>() != "Lease")) {
    return Error::invalid("expected kind Lease");
  }
  auto meta = j.find("metadata");
  if (meta == j.end() || !meta->is_object()) return Error::invalid("Lease without metadata");
  auto rv = meta->find("resourceVersion");
  if (rv == meta->end() || !rv->is_string() || rv->get_ref<const std::string&>().empty()) {
    return Error::invalid("Lease without metadata.resourceVersion");
  }
  Lease l;
  l.versioned.version = rv->get<std::string>();
  auto spec = j.find("spec");
  if (spec != j.end() && !spec->is_null()) {
    if (!spec->is_object()) return Error::invalid("Lease spec is not an object");
    LeaseRecord& r = l.versioned.record;
    for (auto res : {read_str(*spec, "holderIdentity", r.holder_identity),
                     read_int(*spec, "leaseDurationSeconds", r.lease_duration_seconds),
                     read_time(*spec, "acquireTime", r.acquire_time),
                     read_time(*spec, "renewTime", r.renew_time),
                     read_int(*spec, "leaseTransitions", r.lease_transitions),
                     read_str(*spec, "strategy", r.strategy),
                     read_str(*spec, "preferredHolder", r.preferred_holder)}) {
      if (!res) return res.error();
    }
    if (r.preferred_holder.empty() && r.strategy.empty()) {
      if (auto ann = meta->find("annotations"); ann != meta->end() && ann->is_object()) {
        if (auto res = read_str(*ann, kPreferredHolderAnnotation, r.preferred_holder); !res) return res.error();
      }
    }
  }
  // managedFields are the server's bookkeeping, often larger than the rest
  // of the Lease; we never read them. An update that omits them keeps the
  // server's (only an explicit empty entry resets them), so the object we
  // hold and send back does without: less memory per Lease held or watched.
  meta->erase("managedFields");
  if (auto n = meta->find("name"); n != meta->end() && n->is_string()) l.name = n->get<std::string>();
  l.object = std::move(j);
  return l;
}

Result<WatchFrame> parse_watch_frame(std::string_view line) {
  if (line.size() > kMaxBody) return Error::invalid("watch event too large");
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::invalid("watch event is not a JSON object");
  auto type = j.find("type");
  auto obj = j.find("object");
  if (type == j.end() || !type->is_string()) return Error::invalid("watch event without type");
  if (obj == j.end() || !obj->is_object()) return Error::invalid("watch event without object");
  const std::string& t = type->get_ref<const std::string&>();
  WatchFrame f{};
  if (t == "ERROR") {
    f.type = WatchEvent::Type::kError;
    if (auto c = obj->find("code"); c != obj->end() && c->is_number_integer()) f.error_code = c->get<long>();
    return f;
  }
  if (auto m = obj->find("metadata"); m != obj->end() && m->is_object()) {
    if (auto rv = m->find("resourceVersion"); rv != m->end() && rv->is_string()) f.resource_version = rv->get<std::string>();
  }
  if (t == "BOOKMARK") {
    f.type = WatchEvent::Type::kBookmark;
    return f;
  }
  if (t == "ADDED") f.type = WatchEvent::Type::kAdded;
  else if (t == "MODIFIED") f.type = WatchEvent::Type::kModified;
  else if (t == "DELETED") f.type = WatchEvent::Type::kDeleted;
  else return Error::invalid("watch event of unknown type \"" + t.substr(0, 32) + "\"");
  f.object = std::move(*obj);
  return f;
}

Result<WatchEvent> parse_watch_event(std::string_view line) {
  auto f = parse_watch_frame(line);
  if (!f) return f.error();
  WatchEvent ev{};
  ev.type = f->type;
  ev.resource_version = std::move(f->resource_version);
  ev.error_code = f->error_code;
  if (f->object.is_null()) return ev;  // ERROR, BOOKMARK
  auto lease = decode_lease_object(std::move(f->object));
  if (!lease) return Error::invalid("watch event: " + lease.error().message());
  ev.lease = std::move(*lease);
  return ev;
}

std::string encode_lease_update(const json& base, const LeaseRecord& record) {
  json obj = base;
  if (!obj.contains("spec") || !obj["spec"].is_object()) obj["spec"] = json::object();
  write_spec(obj["spec"], record);
  write_preferred_annotation(obj, record);
  return obj.dump();
}

std::string encode_lease_create(const std::string& ns, const std::string& name,
                                const LeaseRecord& record) {
  json obj = {{"apiVersion", "coordination.k8s.io/v1"},
              {"kind", "Lease"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"spec", json::object()}};
  write_spec(obj["spec"], record);
  write_preferred_annotation(obj, record);
  return obj.dump();
}

bool protobuf_supported() {
#ifdef LEASEHOLD_PROTOBUF
  return true;
#else
  return false;
#endif
}

Result<Lease> decode_lease(std::string_view body, std::string_view content_type) {
  if (!is_protobuf_content_type(content_type)) return decode_lease(body);
#ifdef LEASEHOLD_PROTOBUF
  return pb::decode_lease(body);
#else
  return Error::invalid("Lease body is Kubernetes protobuf, which this build does not speak (LEASEHOLD_PROTOBUF=OFF)");
#endif
}

std::string encode_lease_update(const Lease& base, const LeaseRecord& record) {
#ifdef LEASEHOLD_PROTOBUF
  if (base.format == WireFormat::kProtobuf) return pb::encode_lease_update(base, record);
#endif
  return encode_lease_update(base.object, record);
}

std::string encode_lease_create(WireFormat format, const std::string& ns, const std::string& name,
                                const LeaseRecord& record) {
#ifdef LEASEHOLD_PROTOBUF
  if (format == WireFormat::kProtobuf) return pb::encode_lease_create(ns, name, record);
#else
  (void)format;
#endif
  return encode_lease_create(ns, name, record);
}

Result<WatchEvent> parse_watch_event(std::string_view frame, WireFormat format) {
  if (format == WireFormat::kJson) return parse_watch_event(frame);
#ifdef LEASEHOLD_PROTOBUF
  return pb::parse_watch_event(frame);
#else
  return Error::invalid("watch event in Kubernetes protobuf, which this build does not speak (LEASEHOLD_PROTOBUF=OFF)");
#endif
}

Error error_from_response(long http_status, std::string_view body, const RequestInfo& req) {
  std::string server_message;
  std::string reason;
  if (body.substr(0, kProtobufMagic.size()) == kProtobufMagic) {
#ifdef LEASEHOLD_PROTOBUF
    if (auto st = pb::decode_status(body)) {
      server_message = std::move(st->message);
      reason = std::move(st->reason);
    }
#endif
  } else {
    auto j = json::parse(body.substr(0, std::min(body.size(), kMaxBody)), nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      if (auto m = j.find("message"); m != j.end() && m->is_string()) server_message = m->get<std::string>();
      if (auto r = j.find("reason"); r != j.end() && r->is_string()) reason = r->get<std::string>();
    }
  }
  if (server_message.size() > 512) server_message.resize(512);
  std::string what = describe(req);
  std::string tail = server_message.empty() ? "" : ": " + server_message;
  switch (http_status) {
    case 404: return Error(Code::kNotFound, what + ": not found" + tail);
    case 409:
      if (reason == "AlreadyExists" || req.verb == "create") {
        return Error(Code::kAlreadyExists, what + ": already exists" + tail);
      }
      return Error(Code::kConflict, what + ": the object changed since it was read" + tail);
    case 403: {
      std::string rule = "RBAC: grant verb \"" + req.verb + "\" on resource \"" + req.resource +
                         "\" in API group \"" + req.group + "\"" +
                         (req.ns.empty() ? "" : " in namespace \"" + req.ns + "\"");
      return Error(Code::kForbidden, what + ": forbidden (" + rule + ")" + tail);
    }
    case 401: return Error(Code::kUnauthorized, what + ": unauthorized (credentials missing, expired or rejected)");
    case 400:
    case 422: return Error(Code::kInvalid, what + ": rejected as invalid" + tail);
    case 410: return Error(Code::kGone, what + ": resource version too old (410 Gone)" + tail);
    case 429: return Error(Code::kTooManyRequests, what + ": too many requests" + tail);
    case 408:
    case 504: return Error(Code::kTimeout, what + ": timed out (HTTP " + std::to_string(http_status) + ")" + tail);
    case 500: return Error(Code::kInternal, what + ": server error" + tail);
    default:
      if (http_status >= 500) {
        return Error(Code::kUnavailable, what + ": unavailable (HTTP " + std::to_string(http_status) + ")" + tail);
      }
      return Error(Code::kInternal, what + ": unexpected HTTP " + std::to_string(http_status) + tail);
  }
}

}  // namespace leasehold::kube
