// Internal: what library components (not lock backends) need from a Runtime
// beyond its public interface.
//
// Threading: safe from any thread.
#pragma once

#include <memory>

#include "kube/client.h"
#include "leasehold/runtime.h"

namespace leasehold {

struct RuntimeAccess {
  // The Runtime's one Kubernetes client, made on first use from
  // Options::kubeconfig / kube_context (or discovery). The Runtime keeps it
  // until it is destroyed; callers on library threads keep only weak_ptrs.
  static Result<std::shared_ptr<kube::Client>> kube_client(Runtime& rt);
};

}  // namespace leasehold
