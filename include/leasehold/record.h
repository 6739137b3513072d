// leasehold/record.h — the neutral lease record and the fencing token.
//
// LeaseRecord is what every lock backend stores: the fields of a
// coordination.k8s.io/v1 LeaseSpec, in client-go's meaning. Backends map it to
// their own format (a Lease, an annotation, a JSON file, memory).
//
// Threading: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "leasehold/clock.h"

namespace leasehold {

struct LeaseRecord {
  // Who holds the lease; empty means free (released, or never held).
  std::string holder_identity;
  // Whole seconds the holder may go without renewing. Released records use 1.
  int32_t lease_duration_seconds = 0;
  // Wall time the current holder acquired / last renewed (informational:
  // expiry is judged on the observer's steady clock, never from these).
  std::optional<WallTime> acquire_time;
  std::optional<WallTime> renew_time;
  // Incremented on each change of holder.
  int32_t lease_transitions = 0;
  // Coordinated leader election (KEP-4355); empty when unused.
  std::string strategy;
  std::string preferred_holder;

  bool is_free() const { return holder_identity.empty(); }
  bool operator==(const LeaseRecord&) const = default;
};

// A record as stored, with the backend's opaque version (a Kubernetes
// resourceVersion, a file's EPOCH:GENERATION). Versions are compared only for
// equality.
struct Versioned {
  std::string version;
  LeaseRecord record;
  // When this copy reached us from the store, on the Runtime's clock, if the
  // backend knows it: the Kubernetes Lease lock sets it on what its watches
  // deliver (read off the connection on the client's thread). A follower
  // counts the holder's lease from it rather than from when the I/O thread
  // got to the copy: the copy left the store after the write it shows was
  // committed, so it is still no earlier than that write (see
  // state_machine.h). Unset: the I/O thread's time of handling counts.
  std::optional<Instant> received_at{};
};

// The fencing token of one leadership term: the record that made us leader.
// Terms of one lease are ordered by `transitions`; hand it to downstream
// systems so they can reject writes from a stale term.
struct Term {
  int64_t transitions = -1;
  std::string holder;

  bool valid() const { return transitions >= 0; }
  // "7/pod-a"
  std::string to_string() const;
  bool operator==(const Term&) const = default;
};

}  // namespace leasehold
