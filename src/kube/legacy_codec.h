// Internal: the legacy annotation locks' record and objects.
//
// Before Leases, client-go kept its leader election record as JSON in the
// annotation `control-plane.alpha.kubernetes.io/leader` of a core/v1
// ConfigMap or Endpoints object. The record is client-go's
// LeaderElectionRecord, field for field and in its order:
//   {"holderIdentity":"a","leaseDurationSeconds":15,
//    "acquireTime":"2026-11-23T10:00:00Z","renewTime":"2026-11-23T10:00:02Z",
//    "leaderTransitions":3,"strategy":"","preferredHolder":""}
// Times are metav1.Time: RFC 3339 in UTC with whole seconds (null when
// unset); note `leaderTransitions`, not the Lease's `leaseTransitions`.
// Reading accepts what any client-go release writes: fractional seconds or
// offsets, null times, a missing strategy/preferredHolder (before v0.31).
//
// The object is kept as read; an update rewrites only the annotation and
// keeps every other annotation, label, data key, subset and unknown field.
// An object without the annotation is a free record (client-go reads it so).
//
// Threading: free functions on values; safe from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "kube/lease_codec.h"
#include "leasehold/error.h"
#include "leasehold/record.h"

namespace leasehold::kube {

inline constexpr std::string_view kLeaderAnnotation = "control-plane.alpha.kubernetes.io/leader";

// Which core/v1 object carries the annotation.
enum class LegacyKind { kConfigMap, kEndpoints };
std::string_view kind_name(LegacyKind k);      // "ConfigMap", "Endpoints"
std::string_view resource_name(LegacyKind k);  // "configmaps", "endpoints"

// The annotation's value, exactly as client-go marshals a LeaderElectionRecord.
std::string encode_legacy_record(const LeaseRecord& record);
// Parses an annotation value. Errors name the field ("leaderTransitions: not
// an integer"); never throws, whatever the input.
Result<LeaseRecord> decode_legacy_record(std::string_view text);

struct LegacyObject {
  Versioned versioned;    // metadata.resourceVersion + the record (free if no annotation)
  bool has_record = false;  // the annotation was present
  std::string uid;        // metadata.uid, for Events' involvedObject
  nlohmann::json object;  // the whole object as read
};

// Parses a ConfigMap or Endpoints (the kind must match when present).
Result<LegacyObject> decode_legacy_object(std::string_view body, LegacyKind kind);
// The object to PUT: `base` as read (its metadata.resourceVersion is the
// compare-and-swap precondition) with only the annotation replaced.
std::string encode_legacy_update(const nlohmann::json& base, const LeaseRecord& record);
// The object to POST when it does not exist: just metadata and the annotation
// (an Endpoints without subsets, a ConfigMap without data, as client-go makes).
std::string encode_legacy_create(LegacyKind kind, const std::string& ns, const std::string& name,
                                 const LeaseRecord& record);

// One line of a watch stream on ConfigMaps or Endpoints.
struct LegacyWatchEvent {
  WatchEvent::Type type;
  std::string resource_version;          // of the object (or bookmark); may be empty
  std::optional<LegacyObject> object;    // kAdded / kModified / kDeleted
  long error_code = 0;                   // kError: the Status code (410: start over)
};
Result<LegacyWatchEvent> parse_legacy_watch_event(std::string_view line, LegacyKind kind);

}  // namespace leasehold::kube
