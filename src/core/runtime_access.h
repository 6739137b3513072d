// Internal: what library components (not lock backends) need from a Runtime
// beyond its public interface.
//
// Threading: safe from any thread.
#pragma once

#include <memory>

#include "kube/client.h"
#include "leasehold/runtime.h"

namespace leasehold {
namespace backends {
class LeaseWatchHub;
}

struct RuntimeAccess {
  // The Runtime's one Kubernetes client, made on first use from
  // Options::kubeconfig / kube_context (or discovery). The Runtime keeps it
  // until it is destroyed; callers on library threads keep only weak_ptrs.
  static Result<std::shared_ptr<kube::Client>> kube_client(Runtime& rt);
  // The shared per-namespace Lease watch (backends/lease_watch_hub.h), made
  // on first use; nullptr before the Kubernetes client exists. Callers keep
  // only weak references: the Runtime ends it before its client.
  static std::shared_ptr<backends::LeaseWatchHub> lease_watch_hub(Runtime& rt);
};

}  // namespace leasehold
