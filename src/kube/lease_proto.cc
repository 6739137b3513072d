#include "kube/lease_proto.h"

#include <chrono>

#include "kube/pb_wire.h"

#include "k8s.io/api/coordination/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/apis/meta/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/runtime/generated.pb.h"

namespace leasehold::kube::pb {
namespace {

namespace coord = k8s::io::api::coordination::v1;
namespace meta = k8s::io::apimachinery::pkg::apis::meta::v1;
namespace rt = k8s::io::apimachinery::pkg::runtime;

constexpr size_t kMaxBody = 4 << 20;  // as the JSON codec's
constexpr std::string_view kApiVersion = "coordination.k8s.io/v1";

bool parse(google::protobuf::MessageLite& m, std::string_view bytes) {
  return bytes.size() <= kMaxBody && m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

using pbw::Field;
using pbw::Reader;
using pbw::WireType;

// The protobuf fields these functions read and write.
namespace tag {
constexpr uint32_t kUnknownTypeMeta = 1, kUnknownRaw = 2, kUnknownContentEncoding = 3, kUnknownContentType = 4;
constexpr uint32_t kTypeMetaApiVersion = 1, kTypeMetaKind = 2;  // read_pair's 1 and 2
constexpr uint32_t kLeaseMetadata = 1, kLeaseSpec = 2;
constexpr uint32_t kMetaName = 1, kMetaNamespace = 3, kMetaResourceVersion = 6, kMetaAnnotations = 12,
                   kMetaManagedFields = 17;
constexpr uint32_t kEntryKey = 1, kEntryValue = 2;  // read_pair's 1 and 2
constexpr uint32_t kSpecHolder = 1, kSpecDuration = 2, kSpecAcquire = 3, kSpecRenew = 4, kSpecTransitions = 5,
                   kSpecStrategy = 6, kSpecPreferred = 7;
constexpr uint32_t kTimeSeconds = 1, kTimeNanos = 2;
}  // namespace tag

bool is(const Field& f, uint32_t number, WireType type) { return f.number == number && f.type == type; }

// A MicroTime as its fields came (a second occurrence merges into the first,
// as protobuf's parser merges a repeated message field).
struct MicroTime {
  bool has_seconds = false, has_nanos = false;
  int64_t seconds = 0;
  int32_t nanos = 0;
};

bool read_micro_time(std::string_view bytes, int depth, MicroTime& t) {
  Reader r(bytes, depth);
  Field f;
  while (r.next(f)) {
    if (is(f, tag::kTimeSeconds, WireType::kVarint)) {
      t.has_seconds = true;
      t.seconds = static_cast<int64_t>(f.value);
    } else if (is(f, tag::kTimeNanos, WireType::kVarint)) {
      t.has_nanos = true;
      t.nanos = static_cast<int32_t>(static_cast<uint32_t>(f.value));
    }
  }
  return !r.failed();
}

Result<void> read_time(const MicroTime& t, const char* field, std::optional<WallTime>& out) {
  if (!t.has_seconds && !t.has_nanos) return {};  // Go's zero time
  if (t.nanos < 0 || t.nanos >= 1'000'000'000) {
    return Error::invalid(std::string("spec.") + field + ": nanos " + std::to_string(t.nanos) + " out of range");
  }
  // Within what system_clock counts in nanoseconds (years 1678-2261).
  constexpr int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
  if (t.seconds > kMaxSeconds || t.seconds < -kMaxSeconds) {
    return Error::invalid(std::string("spec.") + field + ": seconds " + std::to_string(t.seconds) + " out of range");
  }
  using namespace std::chrono;
  out = WallTime(duration_cast<WallTime::duration>(seconds(t.seconds) + microseconds(t.nanos / 1000)));
  return {};
}

Result<void> read_int(bool has, int32_t v, const char* field, int32_t& out) {
  if (!has) return {};
  if (v < 0) return Error::invalid(std::string("spec.") + field + ": " + std::to_string(v) + " out of range");
  out = v;
  return {};
}

// Fields 1 and 2 of a message of two strings (a map<string, string> entry's
// key and value, a TypeMeta's apiVersion and kind), each the last one read,
// as protobuf reads them; a field absent here leaves what the caller had (a
// repeated message merges). False when the message is not well formed.
bool read_pair(std::string_view bytes, int depth, std::string_view& first, std::string_view& second) {
  Reader r(bytes, depth);
  Field f;
  while (r.next(f)) {
    if (is(f, 1, WireType::kLen)) first = f.bytes;
    else if (is(f, 2, WireType::kLen)) second = f.bytes;
  }
  return !r.failed();
}

void put_time(std::string& out, uint32_t number, WallTime w) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(w.time_since_epoch()).count();
  int64_t secs = us / 1'000'000, frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  std::string t;
  pbw::put_varint_field(t, tag::kTimeSeconds, static_cast<uint64_t>(secs));
  pbw::put_varint_field(t, tag::kTimeNanos, static_cast<uint64_t>(frac * 1000));
  pbw::put_len_field(out, number, t);
}

// An int32 as protobuf writes it: a negative one sign-extended to 64 bits.
uint64_t int32_wire(int32_t v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); }

// The spec's fields leasehold owns, then `kept` (the base spec's other
// fields, as they came).
std::string spec_bytes(const LeaseRecord& r, std::string_view kept) {
  std::string s;
  pbw::put_len_field(s, tag::kSpecHolder, r.holder_identity);
  pbw::put_varint_field(s, tag::kSpecDuration, int32_wire(r.lease_duration_seconds));
  if (r.acquire_time) put_time(s, tag::kSpecAcquire, *r.acquire_time);
  if (r.renew_time) put_time(s, tag::kSpecRenew, *r.renew_time);
  pbw::put_varint_field(s, tag::kSpecTransitions, int32_wire(r.lease_transitions));
  if (!r.strategy.empty()) pbw::put_len_field(s, tag::kSpecStrategy, r.strategy);
  // kube-apiserver accepts spec.preferredHolder only beside a strategy
  // (coordinated election); without one it travels in an annotation, as in
  // the JSON codec.
  if (!r.preferred_holder.empty() && !r.strategy.empty()) pbw::put_len_field(s, tag::kSpecPreferred, r.preferred_holder);
  s.append(kept);
  return s;
}

// The annotation kPreferredHolderAnnotation of a Lease without a strategy,
// appended to metadata bytes (a later map entry replaces an earlier one).
void put_preferred_annotation(std::string& md, const LeaseRecord& r) {
  if (r.preferred_holder.empty() || !r.strategy.empty()) return;
  std::string entry;
  pbw::put_len_field(entry, tag::kEntryKey, kPreferredHolderAnnotation);
  pbw::put_len_field(entry, tag::kEntryValue, r.preferred_holder);
  pbw::put_len_field(md, tag::kMetaAnnotations, entry);
}

std::string lease_body(std::string_view md, std::string_view spec, std::string_view kept) {
  std::string l;
  l.reserve(md.size() + spec.size() + kept.size() + 16);
  pbw::put_len_field(l, tag::kLeaseMetadata, md);
  pbw::put_len_field(l, tag::kLeaseSpec, spec);
  l.append(kept);
  return wrap(kApiVersion, "Lease", l);
}

}  // namespace

Result<Envelope> unwrap(std::string_view body) {
  if (body.size() > kMaxBody) {
    return Error::invalid("protobuf body of " + std::to_string(body.size()) + " bytes is too large");
  }
  if (body.substr(0, kProtobufMagic.size()) != kProtobufMagic) {
    return Error::invalid("protobuf body does not start with the Kubernetes magic \"k8s\\0\"");
  }
  std::string_view api_version, kind, raw, encoding, content_type;
  Reader r(body.substr(kProtobufMagic.size()));
  Field f;
  bool ok = true;
  while (ok && r.next(f)) {
    if (is(f, tag::kUnknownTypeMeta, WireType::kLen)) {
      ok = read_pair(f.bytes, 1, api_version, kind);
    } else if (is(f, tag::kUnknownRaw, WireType::kLen)) {
      raw = f.bytes;
    } else if (is(f, tag::kUnknownContentEncoding, WireType::kLen)) {
      encoding = f.bytes;
    } else if (is(f, tag::kUnknownContentType, WireType::kLen)) {
      content_type = f.bytes;
    }
  }
  if (!ok || r.failed()) return Error::invalid("protobuf body is not a runtime.Unknown message");
  if (!encoding.empty()) {
    return Error::invalid("protobuf body has contentEncoding \"" + std::string(encoding.substr(0, 32)) +
                          "\", which is not supported");
  }
  if (!content_type.empty() && !is_protobuf_content_type(content_type)) {
    return Error::invalid("protobuf body wraps contentType \"" + std::string(content_type.substr(0, 64)) + "\"");
  }
  Envelope e;
  e.api_version = api_version;
  e.kind = kind;
  e.raw = raw;
  return e;
}

std::string wrap(std::string_view api_version, std::string_view kind, std::string_view raw) {
  std::string type_meta;
  pbw::put_len_field(type_meta, tag::kTypeMetaApiVersion, api_version);
  pbw::put_len_field(type_meta, tag::kTypeMetaKind, kind);
  std::string out;
  out.reserve(kProtobufMagic.size() + type_meta.size() + raw.size() + 16);
  out.append(kProtobufMagic);
  pbw::put_len_field(out, tag::kUnknownTypeMeta, type_meta);
  pbw::put_len_field(out, tag::kUnknownRaw, raw);
  return out;
}

Result<Lease> decode_lease(std::string_view body) {
  auto e = unwrap(body);
  if (!e) return Error::invalid("Lease body: " + e.error().message());
  if (e->kind != "Lease" || e->api_version != kApiVersion) {
    return Error::invalid("expected kind Lease of " + std::string(kApiVersion) + ", got kind \"" +
                          e->kind.substr(0, 64) + "\" of \"" + e->api_version.substr(0, 64) + "\"");
  }
  return decode_lease_message(std::move(e->raw));
}

Result<Lease> decode_lease_message(std::string raw) {
  if (raw.size() > kMaxBody) return Error::invalid("Lease body is not a Lease protobuf message");
  bool has_meta = false, has_spec = false;
  std::string_view name, version, annotated_holder, holder, strategy, preferred;
  bool has_duration = false, has_transitions = false;
  int32_t duration = 0, transitions = 0;
  MicroTime acquire, renew;
  bool ok = true;
  Reader top(raw);
  Field f;
  while (ok && top.next(f)) {
    if (is(f, tag::kLeaseMetadata, WireType::kLen)) {
      has_meta = true;
      Reader m(f.bytes, 1);
      Field g;
      while (ok && m.next(g)) {
        if (is(g, tag::kMetaName, WireType::kLen)) {
          name = g.bytes;
        } else if (is(g, tag::kMetaResourceVersion, WireType::kLen)) {
          version = g.bytes;
        } else if (is(g, tag::kMetaAnnotations, WireType::kLen)) {
          std::string_view key, value;
          ok = read_pair(g.bytes, 2, key, value);
          if (ok && key == kPreferredHolderAnnotation) annotated_holder = value;
        }
      }
      ok = ok && !m.failed();
    } else if (is(f, tag::kLeaseSpec, WireType::kLen)) {
      has_spec = true;
      Reader s(f.bytes, 1);
      Field g;
      while (ok && s.next(g)) {
        if (is(g, tag::kSpecHolder, WireType::kLen)) {
          holder = g.bytes;
        } else if (is(g, tag::kSpecDuration, WireType::kVarint)) {
          has_duration = true;
          duration = static_cast<int32_t>(static_cast<uint32_t>(g.value));
        } else if (is(g, tag::kSpecAcquire, WireType::kLen)) {
          ok = read_micro_time(g.bytes, 2, acquire);
        } else if (is(g, tag::kSpecRenew, WireType::kLen)) {
          ok = read_micro_time(g.bytes, 2, renew);
        } else if (is(g, tag::kSpecTransitions, WireType::kVarint)) {
          has_transitions = true;
          transitions = static_cast<int32_t>(static_cast<uint32_t>(g.value));
        } else if (is(g, tag::kSpecStrategy, WireType::kLen)) {
          strategy = g.bytes;
        } else if (is(g, tag::kSpecPreferred, WireType::kLen)) {
          preferred = g.bytes;
        }
      }
      ok = ok && !s.failed();
    }
  }
  if (!ok || top.failed()) return Error::invalid("Lease body is not a Lease protobuf message");
  if (!has_meta) return Error::invalid("Lease without metadata");
  if (version.empty()) return Error::invalid("Lease without metadata.resourceVersion");
  Lease l;
  l.format = WireFormat::kProtobuf;
  l.versioned.version = version;
  l.name = name;
  if (has_spec) {
    LeaseRecord& r = l.versioned.record;
    r.holder_identity = holder;
    bool has_acquire = acquire.has_seconds || acquire.has_nanos;
    bool has_renew = renew.has_seconds || renew.has_nanos;
    for (auto res : {read_int(has_duration, duration, "leaseDurationSeconds", r.lease_duration_seconds),
                     has_acquire ? read_time(acquire, "acquireTime", r.acquire_time) : Result<void>{},
                     has_renew ? read_time(renew, "renewTime", r.renew_time) : Result<void>{},
                     read_int(has_transitions, transitions, "leaseTransitions", r.lease_transitions)}) {
      if (!res) return res.error();
    }
    r.strategy = strategy;
    r.preferred_holder = preferred;
    if (r.preferred_holder.empty() && r.strategy.empty()) r.preferred_holder = annotated_holder;
  }
  l.proto = std::move(raw);
  return l;
}

std::string encode_lease_update(const Lease& base, const LeaseRecord& record) {
  // Every field of `base` is written back as it came, but metadata's
  // managedFields, the preferred-holder annotation and the spec fields
  // leasehold owns. `base.proto` was read by decode_lease_message, so it is
  // well formed; should it not be, nothing of it is kept: the PUT then
  // carries no resourceVersion and the server refuses it (no blind
  // overwrite).
  std::string md, spec_kept, kept;
  md.reserve(base.proto.size());
  bool ok = true;
  Reader top(base.proto);
  Field f;
  while (ok && top.next(f)) {
    if (is(f, tag::kLeaseMetadata, WireType::kLen)) {
      // A repeated metadata field merges into one: its fields, in order.
      Reader m(f.bytes, 1);
      Field g;
      while (m.next(g)) {
        if (is(g, tag::kMetaManagedFields, WireType::kLen)) continue;
        if (is(g, tag::kMetaAnnotations, WireType::kLen)) {
          std::string_view key, value;
          if (read_pair(g.bytes, 2, key, value) && key == kPreferredHolderAnnotation) continue;
        }
        md.append(g.whole);
      }
      ok = !m.failed();
    } else if (is(f, tag::kLeaseSpec, WireType::kLen)) {
      Reader s(f.bytes, 1);
      Field g;
      while (s.next(g)) {
        bool owned = is(g, tag::kSpecHolder, WireType::kLen) || is(g, tag::kSpecDuration, WireType::kVarint) ||
                     is(g, tag::kSpecAcquire, WireType::kLen) || is(g, tag::kSpecRenew, WireType::kLen) ||
                     is(g, tag::kSpecTransitions, WireType::kVarint) || is(g, tag::kSpecStrategy, WireType::kLen) ||
                     is(g, tag::kSpecPreferred, WireType::kLen);
        if (!owned) spec_kept.append(g.whole);
      }
      ok = !s.failed();
    } else {
      kept.append(f.whole);
    }
  }
  if (!ok || top.failed()) {
    md.clear();
    spec_kept.clear();
    kept.clear();
  }
  put_preferred_annotation(md, record);
  return lease_body(md, spec_bytes(record, spec_kept), kept);
}

std::string encode_lease_create(const std::string& ns, const std::string& name, const LeaseRecord& record) {
  std::string md;
  pbw::put_len_field(md, tag::kMetaName, name);
  pbw::put_len_field(md, tag::kMetaNamespace, ns);
  put_preferred_annotation(md, record);
  return lease_body(md, spec_bytes(record, {}), {});
}

Result<WatchEvent> parse_watch_event(std::string_view frame) {
  meta::WatchEvent w;
  if (!parse(w, frame)) return Error::invalid("watch frame is not a WatchEvent protobuf message");
  const std::string& t = w.type();
  WatchEvent ev{};
  if (t == "ADDED") ev.type = WatchEvent::Type::kAdded;
  else if (t == "MODIFIED") ev.type = WatchEvent::Type::kModified;
  else if (t == "DELETED") ev.type = WatchEvent::Type::kDeleted;
  else if (t == "BOOKMARK") ev.type = WatchEvent::Type::kBookmark;
  else if (t == "ERROR") ev.type = WatchEvent::Type::kError;
  else return Error::invalid("watch event of unknown type \"" + t.substr(0, 32) + "\"");
  if (!w.has_object()) return Error::invalid("watch event without object");
  auto e = unwrap(w.object().raw());
  if (!e) return Error::invalid("watch event object: " + e.error().message());
  if (ev.type == WatchEvent::Type::kError) {
    if (e->kind != "Status") return Error::invalid("watch ERROR event with kind \"" + e->kind.substr(0, 64) + "\"");
    meta::Status st;
    if (!parse(st, e->raw)) return Error::invalid("watch ERROR event: not a Status protobuf message");
    ev.error_code = st.code();
    return ev;
  }
  if (e->kind != "Lease" || e->api_version != kApiVersion) {
    return Error::invalid("watch event: expected kind Lease of " + std::string(kApiVersion) + ", got kind \"" +
                          e->kind.substr(0, 64) + "\" of \"" + e->api_version.substr(0, 64) + "\"");
  }
  if (ev.type == WatchEvent::Type::kBookmark) {
    // Only metadata.resourceVersion (and annotations) is meaningful in a bookmark.
    coord::Lease m;
    if (!parse(m, e->raw)) return Error::invalid("watch BOOKMARK event: not a Lease protobuf message");
    ev.resource_version = m.metadata().resourceversion();
    return ev;
  }
  auto lease = decode_lease_message(std::move(e->raw));
  if (!lease) return Error::invalid("watch event: " + lease.error().message());
  ev.resource_version = lease->versioned.version;
  ev.lease = std::move(*lease);
  return ev;
}

Result<Status> decode_status(std::string_view body) {
  auto e = unwrap(body);
  if (!e) return Error::invalid("Status body: " + e.error().message());
  if (e->kind != "Status") return Error::invalid("expected kind Status, got \"" + e->kind.substr(0, 64) + "\"");
  meta::Status m;
  if (!parse(m, e->raw)) return Error::invalid("Status body is not a Status protobuf message");
  Status s;
  s.code = m.code();
  s.reason = m.reason();
  s.message = m.message();
  return s;
}

}  // namespace leasehold::kube::pb
