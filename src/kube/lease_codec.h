// Internal: the coordination.k8s.io/v1 Lease as JSON, in exactly the field
// forms client-go writes, and Kubernetes Status bodies as leasehold Errors.
// The same Lease in Kubernetes protobuf is lease_proto.h's; the functions
// taking a WireFormat here pick the codec.
//
// A Lease is kept as the object the server returned; an update rewrites only
// the spec fields leasehold owns and keeps everything else (labels,
// annotations, ownerReferences, fields we do not know), so a write back never
// drops what others wrote.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "kube/wire_format.h"
#include "leasehold/error.h"
#include "leasehold/record.h"

namespace leasehold::kube {

struct Lease {
  Versioned versioned;   // resourceVersion + the spec as a LeaseRecord
  std::string name;      // metadata.name ("" if the server sent none)
  WireFormat format = WireFormat::kJson;  // as it was read, and as it is written back
  nlohmann::json object; // kJson: the whole object as read (managedFields left out)
  std::string proto;     // kProtobuf: the Lease message as read (the envelope's raw)
};

// kube-apiserver refuses spec.preferredHolder without spec.strategy (only
// coordinated election sets one). A LeaseRecord's preferred_holder on a Lease
// without a strategy (an admin's `leasehold handoff`) is written to, and read
// from, this annotation instead; a write without one removes it.
inline constexpr const char* kPreferredHolderAnnotation = "leasehold.io/preferred-holder";

// Parses a Lease. Reads every "free" form others write: a missing, null or
// empty holderIdentity is free. Errors name the field.
Result<Lease> decode_lease(std::string_view body);
// The same from an already-parsed object (a watch event's, a list item), so
// it is not printed and parsed again. Takes the object.
Result<Lease> decode_lease_object(nlohmann::json&& object);

// The object to PUT: `base` (as read; its metadata.resourceVersion is the
// compare-and-swap precondition) with the spec replaced by `record` in
// client-go's forms: holderIdentity, leaseDurationSeconds, acquireTime,
// renewTime (MicroTime, UTC, 6 fractional digits) and leaseTransitions always
// written; strategy and preferredHolder only when non-empty.
std::string encode_lease_update(const nlohmann::json& base, const LeaseRecord& record);
// The object to POST when the Lease does not exist yet.
std::string encode_lease_create(const std::string& ns, const std::string& name,
                                const LeaseRecord& record);

// A Lease request's answer, decoded by its Content-Type: Kubernetes protobuf
// (when this build speaks it) or else JSON.
Result<Lease> decode_lease(std::string_view body, std::string_view content_type);
// The body to PUT, in the format `base` was read in (its metadata kept as
// encode_lease_update above, or lease_proto.h's for protobuf).
std::string encode_lease_update(const Lease& base, const LeaseRecord& record);
// The body to POST in `format` (JSON when this build has no protobuf).
std::string encode_lease_create(WireFormat format, const std::string& ns, const std::string& name,
                                const LeaseRecord& record);
// True when this build speaks Kubernetes protobuf (LEASEHOLD_PROTOBUF).
bool protobuf_supported();

// One line of a watch stream.
struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type;
  std::string resource_version;  // of the object (or bookmark); may be empty
  std::optional<Lease> lease;    // kAdded / kModified / kDeleted
  long error_code = 0;           // kError: the Status code (410: start over)
};
// Parses one newline-delimited watch event; malformed lines are errors.
Result<WatchEvent> parse_watch_event(std::string_view line);
// One event of a Lease watch: a JSON line, or a protobuf frame's payload.
Result<WatchEvent> parse_watch_event(std::string_view frame, WireFormat format);

// The framing every watch event shares, whatever the resource: type,
// resourceVersion, the Status code of an ERROR, and (ADDED, MODIFIED,
// DELETED) the object still to be decoded. Oversized, malformed or unknown
// frames are errors. parse_watch_event and the legacy codec build on it.
struct WatchFrame {
  WatchEvent::Type type;
  std::string resource_version;
  long error_code = 0;
  nlohmann::json object;  // kAdded / kModified / kDeleted
};
Result<WatchFrame> parse_watch_frame(std::string_view line);

// What a request was, for error messages ("update leases leasehold-test/app").
struct RequestInfo {
  std::string verb;      // get, list, watch, create, update, patch, delete
  std::string group;     // "coordination.k8s.io", "" for core
  std::string resource;  // "leases"
  std::string ns;
  std::string name;
};

// Maps an HTTP status and its (possibly empty, JSON or protobuf Status) body
// to an Error whose message names the verb, resource, namespace and name. A
// 403 says which RBAC rule is missing.
Error error_from_response(long http_status, std::string_view body, const RequestInfo& req);

}  // namespace leasehold::kube
