// Internal: the coordination.k8s.io/v1 Lease in Kubernetes protobuf
// (application/vnd.kubernetes.protobuf), as kube-apiserver and client-go
// speak it. Built only with LEASEHOLD_PROTOBUF (messages generated from
// k8s.io/api's .proto files at build time, cmake/KubeProto.cmake).
//
// Wire format (k8s.io/apimachinery/pkg/runtime/serializer/protobuf):
// - An object body (GET/PUT/POST request or response, a Status): the 4 bytes
//   "k8s\0", then a runtime.Unknown message: typeMeta {apiVersion, kind},
//   raw (the object's own message), contentEncoding and contentType (both
//   empty: anything else is refused).
// - A watch stream (Content-Type application/vnd.kubernetes.protobuf;
//   stream=watch): frames of a 4-byte big-endian length and that many bytes
//   (wire_format.h splits them); each frame is a metav1.WatchEvent message
//   with no magic and no envelope: type ("ADDED", ...) and object.raw, which
//   is an object body as above (magic + runtime.Unknown of the Lease, or of a
//   Status for ERROR).
//
// A Lease is kept as its message's bytes. An update copies them field by
// field as they came (kube/pb_wire.h), rewriting only the spec fields
// leasehold owns: metadata (labels, annotations, ownerReferences,
// finalizers) and fields these messages do not know (at the top level, in
// metadata and in the spec; not inside the spec's times, which are written
// afresh) go back to the server as read; only metadata.managedFields is left out, which the
// server then keeps, and the preferred-holder annotation is set or removed.
//
// The envelope, decode_lease(_message) and the two encoders read and write
// the wire format by hand: a renewal is one of each, and the generated
// classes spent a few dozen allocations on it parsing ObjectMeta into maps.
// They accept whatever protobuf's parser accepts, with the same result
// (tests/support/lease_proto_oracle.h holds them to it in the unit tests and
// the lease_proto fuzzer); inside the metadata fields they do not read
// (ownerReferences, managedFields, labels, timestamps) they do not look, so
// garbage there that protobuf would refuse is carried, not refused.
// parse_watch_event and decode_status use the generated classes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kube/lease_codec.h"

namespace leasehold::kube::pb {

// An object body: kProtobufMagic + runtime.Unknown.
struct Envelope {
  std::string api_version, kind;
  std::string raw;  // the object's message
};
// Errors: too large, no magic, not a runtime.Unknown, a contentEncoding or
// contentType (other than protobuf) we cannot read.
Result<Envelope> unwrap(std::string_view body);
std::string wrap(std::string_view api_version, std::string_view kind, std::string_view raw);

// A Lease body (kind Lease, apiVersion coordination.k8s.io/v1). Errors name
// what is wrong: the envelope, the kind, the message, a field out of range.
Result<Lease> decode_lease(std::string_view body);
// A Lease message (an envelope's raw). Reads every "free" form: a missing or
// empty holderIdentity is free; a MicroTime with neither seconds nor nanos is
// Go's zero time (absent). Nanoseconds are truncated to microseconds, as
// apimachinery's MicroTime does.
Result<Lease> decode_lease_message(std::string raw);

// The body to PUT: `base` (read as protobuf; its resourceVersion is the
// compare-and-swap precondition) with the spec's holderIdentity,
// leaseDurationSeconds, acquireTime, renewTime and leaseTransitions always
// written, strategy only when non-empty; preferredHolder in the spec beside a
// strategy, otherwise in the annotation kPreferredHolderAnnotation (set when
// non-empty, removed when empty), as the JSON codec writes it.
std::string encode_lease_update(const Lease& base, const LeaseRecord& record);
// The body to POST when the Lease does not exist yet.
std::string encode_lease_create(const std::string& ns, const std::string& name, const LeaseRecord& record);

// One watch frame's payload (a metav1.WatchEvent). Errors: not a WatchEvent,
// an unknown type, an object that is not a Lease (or a Status for ERROR).
Result<WatchEvent> parse_watch_event(std::string_view frame);

// A metav1.Status body (an error response).
struct Status {
  int32_t code = 0;
  std::string reason, message;
};
Result<Status> decode_status(std::string_view body);

}  // namespace leasehold::kube::pb
