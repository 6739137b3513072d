// Internal: keeps one LeaseCandidate (coordination.k8s.io/v1beta1, falling
// back to v1alpha2 when v1beta1 is not served) for an elector in coordinated
// leader election (KEP-4355).
//
// start() creates NAMESPACE/IDENTITY with spec leaseName, binaryVersion,
// emulationVersion, strategy OldestEmulationVersion and renewTime (or
// rewrites an existing one, keeping what others wrote). renewTime is
// refreshed every renew_interval, and at once when a watch on the candidate
// shows a ping (kube-apiserver asking who is still there) not answered yet
// (PingAnswers). stop() deletes the candidate, so kube-apiserver stops considering
// us at once. Failures are logged and retried; they never affect the Lease.
//
// Threading: create/start/stop from any thread; the work runs on the
// Runtime's I/O thread (state) and the client's thread (parsing only).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "kube/objects.h"
#include "leasehold/config.h"
#include "leasehold/runtime.h"

namespace leasehold::core {

// Which pings to answer. pingTime is kube-apiserver's clock and renewTime
// ours, so the two are never compared: a ping is answered once, when its
// pingTime differs from the one our last landed write carried.
// Threading: none; the Keeper uses it on the I/O thread.
class PingAnswers {
 public:
  // `seen` is the candidate as a watch or a read showed it.
  bool wants_answer(const kube::LeaseCandidateSpec& seen) const {
    return seen.ping_time && seen.ping_time != answered_;
  }
  // A write carrying `ping` (the pingTime as last read) landed.
  void answered(const std::optional<WallTime>& ping) {
    if (ping) answered_ = ping;
  }

 private:
  std::optional<WallTime> answered_;
};

class LeaseCandidateKeeper {
 public:
  // `ns`/`lease` from the k8s:// lock URL; identity and versions from cfg.
  static Result<std::shared_ptr<LeaseCandidateKeeper>> create(Runtime& rt, const ElectorConfig& cfg,
                                                              std::string ns, std::string lease);
  virtual ~LeaseCandidateKeeper() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
};

}  // namespace leasehold::core
