#include "support/lease_proto_oracle.h"

#include <chrono>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "k8s.io/api/coordination/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/apis/meta/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/runtime/generated.pb.h"

namespace leasehold::kube::pb::oracle {
namespace {

namespace coord = k8s::io::api::coordination::v1;
namespace meta = k8s::io::apimachinery::pkg::apis::meta::v1;
namespace rt = k8s::io::apimachinery::pkg::runtime;

constexpr size_t kMaxBody = 4 << 20;  // as the JSON codec's
constexpr std::string_view kApiVersion = "coordination.k8s.io/v1";

bool parse(google::protobuf::MessageLite& m, std::string_view bytes) {
  return bytes.size() <= kMaxBody && m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

Result<void> read_time(const meta::MicroTime& t, const char* field, std::optional<WallTime>& out) {
  if (!t.has_seconds() && !t.has_nanos()) return {};  // Go's zero time
  if (t.nanos() < 0 || t.nanos() >= 1'000'000'000) {
    return Error::invalid(std::string("spec.") + field + ": nanos " + std::to_string(t.nanos()) + " out of range");
  }
  // Within what system_clock counts in nanoseconds (years 1678-2261).
  constexpr int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
  if (t.seconds() > kMaxSeconds || t.seconds() < -kMaxSeconds) {
    return Error::invalid(std::string("spec.") + field + ": seconds " + std::to_string(t.seconds()) + " out of range");
  }
  using namespace std::chrono;
  out = WallTime(duration_cast<WallTime::duration>(seconds(t.seconds()) + microseconds(t.nanos() / 1000)));
  return {};
}

Result<void> read_int(bool has, int32_t v, const char* field, int32_t& out) {
  if (!has) return {};
  if (v < 0) return Error::invalid(std::string("spec.") + field + ": " + std::to_string(v) + " out of range");
  out = v;
  return {};
}

void write_time(meta::MicroTime* t, WallTime w) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(w.time_since_epoch()).count();
  int64_t secs = us / 1'000'000, frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  t->set_seconds(secs);
  t->set_nanos(static_cast<int32_t>(frac * 1000));
}

void write_spec(coord::LeaseSpec* spec, const LeaseRecord& r) {
  spec->set_holderidentity(r.holder_identity);
  spec->set_leasedurationseconds(r.lease_duration_seconds);
  if (r.acquire_time) write_time(spec->mutable_acquiretime(), *r.acquire_time);
  else spec->clear_acquiretime();
  if (r.renew_time) write_time(spec->mutable_renewtime(), *r.renew_time);
  else spec->clear_renewtime();
  spec->set_leasetransitions(r.lease_transitions);
  if (!r.strategy.empty()) spec->set_strategy(r.strategy);
  else spec->clear_strategy();
  // kube-apiserver accepts spec.preferredHolder only beside a strategy
  // (coordinated election); without one it travels in an annotation, as in
  // the JSON codec.
  if (!r.preferred_holder.empty() && !r.strategy.empty()) spec->set_preferredholder(r.preferred_holder);
  else spec->clear_preferredholder();
}

// The preferred holder of a Lease without a strategy: the annotation
// kPreferredHolderAnnotation, set or removed.
void write_preferred_annotation(meta::ObjectMeta* m, const LeaseRecord& r) {
  if (!r.preferred_holder.empty() && r.strategy.empty()) {
    (*m->mutable_annotations())[kPreferredHolderAnnotation] = r.preferred_holder;
  } else {
    m->mutable_annotations()->erase(kPreferredHolderAnnotation);
  }
}

std::string lease_body(const coord::Lease& l) {
  return wrap(kApiVersion, "Lease", l.SerializeAsString());
}

}  // namespace

Result<Envelope> unwrap(std::string_view body) {
  if (body.size() > kMaxBody) {
    return Error::invalid("protobuf body of " + std::to_string(body.size()) + " bytes is too large");
  }
  if (body.substr(0, kProtobufMagic.size()) != kProtobufMagic) {
    return Error::invalid("protobuf body does not start with the Kubernetes magic \"k8s\\0\"");
  }
  rt::Unknown u;
  if (!parse(u, body.substr(kProtobufMagic.size()))) {
    return Error::invalid("protobuf body is not a runtime.Unknown message");
  }
  if (!u.contentencoding().empty()) {
    return Error::invalid("protobuf body has contentEncoding \"" + u.contentencoding().substr(0, 32) +
                          "\", which is not supported");
  }
  if (!u.contenttype().empty() && !is_protobuf_content_type(u.contenttype())) {
    return Error::invalid("protobuf body wraps contentType \"" + u.contenttype().substr(0, 64) + "\"");
  }
  Envelope e;
  e.api_version = u.typemeta().apiversion();
  e.kind = u.typemeta().kind();
  e.raw = std::move(*u.mutable_raw());
  return e;
}

std::string wrap(std::string_view api_version, std::string_view kind, std::string_view raw) {
  rt::Unknown u;
  u.mutable_typemeta()->set_apiversion(std::string(api_version));
  u.mutable_typemeta()->set_kind(std::string(kind));
  u.set_raw(std::string(raw));
  std::string out(kProtobufMagic);
  u.AppendToString(&out);
  return out;
}

Result<Lease> decode_lease_message(std::string raw) {
  coord::Lease m;
  if (!parse(m, raw)) return Error::invalid("Lease body is not a Lease protobuf message");
  if (!m.has_metadata()) return Error::invalid("Lease without metadata");
  if (m.metadata().resourceversion().empty()) return Error::invalid("Lease without metadata.resourceVersion");
  Lease l;
  l.format = WireFormat::kProtobuf;
  l.versioned.version = m.metadata().resourceversion();
  l.name = m.metadata().name();
  if (m.has_spec()) {
    const coord::LeaseSpec& s = m.spec();
    LeaseRecord& r = l.versioned.record;
    r.holder_identity = s.holderidentity();
    for (auto res : {read_int(s.has_leasedurationseconds(), s.leasedurationseconds(), "leaseDurationSeconds",
                              r.lease_duration_seconds),
                     s.has_acquiretime() ? read_time(s.acquiretime(), "acquireTime", r.acquire_time) : Result<void>{},
                     s.has_renewtime() ? read_time(s.renewtime(), "renewTime", r.renew_time) : Result<void>{},
                     read_int(s.has_leasetransitions(), s.leasetransitions(), "leaseTransitions",
                              r.lease_transitions)}) {
      if (!res) return res.error();
    }
    r.strategy = s.strategy();
    r.preferred_holder = s.preferredholder();
    if (r.preferred_holder.empty() && r.strategy.empty()) {
      const auto& ann = m.metadata().annotations();
      if (auto it = ann.find(kPreferredHolderAnnotation); it != ann.end()) r.preferred_holder = it->second;
    }
  }
  l.proto = std::move(raw);
  return l;
}

std::string encode_lease_update(const Lease& base, const LeaseRecord& record) {
  coord::Lease m;
  // `base.proto` parsed when it was read; should it not, the PUT carries
  // no resourceVersion and the server refuses it (no blind overwrite).
  m.ParseFromString(base.proto);
  m.mutable_metadata()->clear_managedfields();
  write_spec(m.mutable_spec(), record);
  write_preferred_annotation(m.mutable_metadata(), record);
  return lease_body(m);
}

std::string encode_lease_create(const std::string& ns, const std::string& name, const LeaseRecord& record) {
  coord::Lease m;
  m.mutable_metadata()->set_name(name);
  m.mutable_metadata()->set_namespace_(ns);
  write_spec(m.mutable_spec(), record);
  write_preferred_annotation(m.mutable_metadata(), record);
  return lease_body(m);
}

bool well_formed(std::string_view bytes) {
  meta::TypeMeta m;
  return m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

std::string canonical_lease(std::string_view body) {
  auto e = unwrap(body);
  if (!e) return "";
  coord::Lease m;
  if (!parse(m, e->raw)) return "";
  m.mutable_metadata()->clear_managedfields();
  // leasehold writes the spec's times afresh: fields unknown inside them are
  // not kept.
  if (m.spec().has_acquiretime()) m.mutable_spec()->mutable_acquiretime()->mutable_unknown_fields()->clear();
  if (m.spec().has_renewtime()) m.mutable_spec()->mutable_renewtime()->mutable_unknown_fields()->clear();
  std::string out;
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&cos);
  }
  return e->api_version + '\0' + e->kind + '\0' + out;
}

}  // namespace leasehold::kube::pb::oracle
