// Internal: what library components (not lock backends) need from a Runtime
// beyond its public interface.
//
// Threading: safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "kube/client.h"
#include "leasehold/runtime.h"

namespace leasehold {
namespace backends {
class LeaseWatchHub;
}
namespace etcd {
class SessionHub;
struct ConnectionConfig;
}

// Posts onto a Runtime's I/O thread from a thread that may outlive the
// Runtime (a file lock's blocking operation). Once the Runtime's destructor
// has begun, post() returns false and `fn` is destroyed on the caller's
// thread without running.
class IoGate {
 public:
  explicit IoGate(Runtime* rt) : rt_(rt) {}
  bool post(std::function<void()> fn);
  void close();  // the Runtime's destructor, first thing

 private:
  std::mutex mu_;
  Runtime* rt_;  // GUARDED_BY(mu_); nullptr once closed
};

struct RuntimeAccess {
  // The Runtime's one Kubernetes client, made on first use from
  // Options::kubeconfig / kube_context (or discovery). The Runtime keeps it
  // until it is destroyed; callers on library threads keep only weak_ptrs.
  static Result<std::shared_ptr<kube::Client>> kube_client(Runtime& rt);
  // The shared per-namespace Lease watch (backends/lease_watch_hub.h), made
  // on first use; nullptr before the Kubernetes client exists. Callers keep
  // only weak references: the Runtime ends it before its client.
  static std::shared_ptr<backends::LeaseWatchHub> lease_watch_hub(Runtime& rt);
  // The session hub of the etcd cluster `c` names (etcd/etcd_lock.h), made
  // on first use with its transport; one per distinct ConnectionConfig. The
  // Runtime keeps it until destroyed.
  static Result<std::shared_ptr<etcd::SessionHub>> etcd_hub(Runtime& rt, etcd::ConnectionConfig c);
  // The Runtime's IoGate, for threads that may outlive it.
  static std::shared_ptr<IoGate> io_gate(Runtime& rt);
  // Tasks and timers waiting in the I/O thread's heap, cancelled timers not
  // counted (tests).
  static size_t pending_tasks(Runtime& rt);
};

}  // namespace leasehold
