// leasehold/for_life.h — leader-for-life: the leader holds a ConfigMap owned
// by its own Pod until that Pod is gone.
//
// The operator-lib semantics, done more carefully:
//   * become_leader() creates ConfigMap NAMESPACE/NAME whose ownerReferences
//     name this Pod (apiVersion v1, kind Pod, name, uid: what the garbage
//     collector needs), and returns at once when the ConfigMap already names
//     this Pod.
//   * Otherwise it waits with backoff (initial_backoff, x2 up to max_backoff,
//     each wait jittered by +-20 %) while watching the ConfigMap, so a deletion (by the
//     garbage collector after the leader Pod was deleted) is seen at once.
//   * Between attempts it checks whether the holder is stale and, if so,
//     deletes the ConfigMap itself (a DELETE with the ConfigMap's uid and
//     resourceVersion as preconditions, so a fresh lock is never removed):
//     the owner Pod is gone, was replaced (same name, another uid), or is
//     Failed (any reason: Evicted, Preempting, ...) or Succeeded; or — only
//     when node_not_ready_grace is set — its Node has been NotReady or
//     Unknown for longer than that grace, measured on our monotonic clock
//     from when we first saw it so (never by comparing the Node's timestamps
//     with our wall clock).
//
// The Node rule trades safety for availability: a Node that is partitioned
// from the control plane but still running keeps running the old leader's
// process, so taking over after the grace can run two leaders until that
// Node's kubelet kills the Pod. Leave it unset unless the work tolerates that.
//
// There is no lease and no renewal: a leader stays leader until its Pod is
// deleted. A leader that shuts down cleanly can release() (delete the
// ConfigMap if it is still ours) so a standby takes over at once instead of
// waiting for the garbage collector. lost() reports when the ConfigMap stops
// naming us (deleted by an admin, or rewritten) — work must stop then.
//
// RBAC: configmaps get, watch, create, delete in the namespace; pods
// get (and nodes get, cluster-wide, when node_not_ready_grace is set).
//
// Threading: become_leader blocks the calling thread (not a library thread);
// ForLifeLeader's methods are safe from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "leasehold/clock.h"
#include "leasehold/error.h"
#include "leasehold/runtime.h"

namespace leasehold {

struct ForLifeConfig {
  // ConfigMap name (DNS subdomain: lowercase letters, digits, '-' and '.', at
  // most 253 characters). Required; validate() checks it.
  std::string lock_name;
  // Namespace of the ConfigMap and of our Pod (a DNS label). "":
  // $POD_NAMESPACE, else the service-account namespace file (namespace_file).
  std::string ns;
  // Our Pod's name. "": $POD_NAME (set it from the downward API,
  // fieldRef metadata.name).
  std::string pod_name;
  // Where the in-cluster namespace is read from when ns and POD_NAMESPACE
  // are empty; overridable for tests.
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
  // Wait before the second attempt; doubled each time up to max_backoff,
  // each wait jittered by +-20 %. Defaults 1s and 16s; 0 < initial <= max.
  Duration initial_backoff = std::chrono::seconds(1);
  Duration max_backoff = std::chrono::seconds(16);
  // Treat a holder whose Node has been NotReady/Unknown this long (on our
  // clock) as stale. Default: unset (never judge by the Node). See above.
  std::optional<Duration> node_not_ready_grace;
  // Per-request timeout. Default 10s; > 0.
  Duration request_timeout = std::chrono::seconds(10);

  Result<void> validate() const;
};

class ForLifeLeader {
 public:
  virtual ~ForLifeLeader() = default;
  // Requested when the ConfigMap is deleted or no longer names our Pod.
  virtual std::stop_token lost() const = 0;
  // Deletes the ConfigMap if it still names our Pod (uid precondition), so a
  // standby takes over at once. Call only after the work has stopped.
  virtual Result<void> release() = 0;
  // "NAMESPACE/NAME" of the ConfigMap, and our Pod.
  virtual const std::string& lock() const = 0;
  virtual const std::string& pod() const = 0;
};

// Blocks until this Pod holds the lock. Returns an error when `stop` is
// requested (kUnavailable, "stopped") or on a permanent error (kForbidden,
// kUnauthorized, kInvalid config, our own Pod not found); the error names
// what was wrong. Transient errors are logged and retried with the backoff.
Result<std::unique_ptr<ForLifeLeader>> become_leader(Runtime& rt, ForLifeConfig config,
                                                     std::stop_token stop = {});

}  // namespace leasehold
