// Internal: JSON codecs for the Kubernetes objects leasehold uses besides the
// Lease (see lease_codec.h): LeaseCandidate (coordinated election), Pod
// (leader-for-life, leader pod labelling), Node (stale-leader detection) and
// core/v1 Event (what client-go's event recorder writes).
//
// Decoders keep the whole object as read (`object`), and every encoder that
// writes an object back starts from it, so labels, annotations,
// ownerReferences and fields we do not know survive a round trip. Decoders
// never throw and never crash on malformed, truncated or oversized input
// (bodies over 4 MiB are refused); their errors name the offending field
// ("Pod metadata.labels.app: not a string").
//
// Threading: free functions on values; safe from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "leasehold/clock.h"
#include "leasehold/error.h"

namespace leasehold::kube {

// Object names as kube-apiserver validates them: a DNS-1123 subdomain
// (lowercase letters, digits, '-' and '.', at most 253, each dot-separated
// part starting and ending with a letter or digit) and a DNS-1123 label (a
// namespace: one such part, at most 63).
bool is_dns_subdomain(std::string_view s);
bool is_dns_label(std::string_view s);

// ---------------------------------------------------------------------------
// LeaseCandidate, coordination.k8s.io/v1beta1 (served by 1.33+ with
// --runtime-config=coordination.k8s.io/v1beta1=true) and v1alpha2 (same spec
// fields; older alpha clusters). v1alpha1 (preferredStrategies, a list) is not
// supported.

enum class LeaseCandidateVersion { kV1Beta1, kV1Alpha2 };
// "coordination.k8s.io/v1beta1" or "coordination.k8s.io/v1alpha2".
std::string_view api_version(LeaseCandidateVersion v);

struct LeaseCandidateSpec {
  std::string lease_name;         // spec.leaseName: the Lease this candidate runs for (required)
  std::string binary_version;     // spec.binaryVersion, e.g. "1.36.3" (required)
  std::string emulation_version;  // spec.emulationVersion; "" = omitted (required by the server
                                  // when strategy is OldestEmulationVersion)
  std::string strategy;           // spec.strategy, e.g. "OldestEmulationVersion" (required)
  std::optional<WallTime> ping_time;   // spec.pingTime (MicroTime); nullopt = omitted
  std::optional<WallTime> renew_time;  // spec.renewTime (MicroTime); nullopt = omitted
  bool operator==(const LeaseCandidateSpec&) const = default;
};

struct LeaseCandidate {
  LeaseCandidateVersion version = LeaseCandidateVersion::kV1Beta1;  // from apiVersion
  std::string name;
  std::string ns;
  std::string resource_version;  // the compare-and-swap precondition of an update
  LeaseCandidateSpec spec;
  nlohmann::json object;  // the whole object as read
};

// Parses a LeaseCandidate (v1beta1 or v1alpha2; a missing apiVersion is read
// as v1beta1). Requires metadata.name and metadata.resourceVersion.
Result<LeaseCandidate> decode_lease_candidate(std::string_view body);
// The body to POST. Errors if a required field (leaseName, binaryVersion,
// strategy, the name) is empty.
Result<std::string> encode_lease_candidate_create(const std::string& ns, const std::string& name,
                                                  const LeaseCandidateSpec& spec,
                                                  LeaseCandidateVersion version =
                                                      LeaseCandidateVersion::kV1Beta1);
// The body to PUT: `base` (as read, keeping metadata.resourceVersion and every
// other field) with the spec fields above replaced (omitted ones removed).
Result<std::string> encode_lease_candidate_update(const nlohmann::json& base,
                                                  const LeaseCandidateSpec& spec);

// ---------------------------------------------------------------------------
// Pod, core/v1: what leader-for-life and leader pod labelling read.

struct Pod {
  std::string name;
  std::string ns;
  std::string uid;  // metadata.uid (for ownerReferences)
  std::string resource_version;
  std::map<std::string, std::string> labels;  // metadata.labels
  std::string node_name;                      // spec.nodeName; "" until scheduled
  std::string phase;   // status.phase: Pending, Running, Succeeded, Failed, Unknown; "" if absent
  std::string reason;  // status.reason: "Evicted", "Preempting", "NodeLost", ...; "" if absent
  bool deleting = false;  // metadata.deletionTimestamp is set
  nlohmann::json object;  // the whole object as read
};
Result<Pod> decode_pod(std::string_view body);

// A JSON merge patch (RFC 7386; Content-Type application/merge-patch+json)
// that sets label `key` to `*value`, or removes it when `value` is nullopt.
// With a non-empty `resource_version` the patch carries it as a precondition
// (409 if the Pod changed). Errors if `key` is not a valid label key
// (optional DNS-subdomain prefix "/" name of at most 63 characters) or
// `value` not a valid label value.
Result<std::string> pod_label_patch(std::string_view key, std::optional<std::string_view> value,
                                    std::string_view resource_version = "");

// ---------------------------------------------------------------------------
// Node, core/v1: readiness, for detecting a leader stranded on a lost node.

struct Node {
  enum class Ready { kTrue, kFalse, kUnknown, kMissing };  // kMissing: no Ready condition
  std::string name;
  std::string resource_version;
  Ready ready = Ready::kMissing;
  std::optional<WallTime> ready_since;  // the Ready condition's lastTransitionTime
  nlohmann::json object;                // the whole object as read
};
Result<Node> decode_node(std::string_view body);

// ---------------------------------------------------------------------------
// Event, core/v1, in the form client-go's record.EventRecorder writes it.

struct ObjectRef {  // involvedObject
  std::string kind;         // "Lease", "ConfigMap", "Pod", ... (required)
  std::string api_version;  // "coordination.k8s.io/v1", "v1", ...
  std::string ns;           // "" for cluster-scoped objects
  std::string name;         // (required)
  std::string uid;
  std::string resource_version;
};

struct EventSpec {
  enum class Type { kNormal, kWarning };
  ObjectRef involved;
  std::string reason;   // UpperCamel, e.g. "LeaderElection" (required, at most 128 bytes)
  std::string message;  // human readable; cut at 1024 bytes (a UTF-8 boundary)
  Type type = Type::kNormal;
  std::string component;           // source.component and reportingComponent, e.g. "leasehold"
  std::string host;                // source.host and reportingInstance, e.g. the identity or node
  WallTime first_timestamp{};      // RFC 3339 seconds; also names the Event (see `name`)
  std::optional<WallTime> last_timestamp;  // nullopt: first_timestamp
  int32_t count = 1;               // >= 1
  std::string ns;    // where the Event lives; "": involved.ns, or "default" if that is empty
  std::string name;  // "": client-go's "<involved.name>.<hex of first_timestamp in unix ns>"
};

// The namespace to POST the Event to (/api/v1/namespaces/NS/events).
std::string event_namespace(const EventSpec& spec);
// The body to POST. Errors name the missing or invalid field
// (involved.kind, involved.name, reason, count).
Result<std::string> encode_event(const EventSpec& spec);

// client-go's leader election Event: type Normal, reason "LeaderElection",
// message "<identity> <what>" (what: "became leader" / "stopped leading").
EventSpec leader_election_event(ObjectRef lock, std::string_view identity, std::string_view what,
                                std::string component, std::string host, WallTime now);

}  // namespace leasehold::kube
