// leasehold/runtime.h — the I/O thread, timers and lock factory shared by
// every Elector and Observer of a process (or of one test).
//
// A Runtime owns one I/O thread that runs every elector's state machine, lock
// completion and timer, and one notifier thread that runs on_new_leader
// callbacks in order. Electors have no threads of their own; each leadership
// term's work runs on a thread the elector starts for it.
//
// There is no global Runtime: create one (usually one per process) and pass
// it to every Elector. Destroy electors before their Runtime.
//
// Manual mode (Options::manual) starts no I/O thread: the owner calls
// run_ready() to run whatever is due, typically after SimulatedClock::advance.
//
// Threading: every public method is safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "leasehold/clock.h"
#include "leasehold/error.h"
#include "leasehold/lock.h"

namespace leasehold {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Receives every log line of the library. Called from library threads; must
// be thread-safe. Messages never contain credentials.
using LogSink = std::function<void(LogLevel, std::string_view name, std::string_view message)>;

class Runtime final : public LockHost {
 public:
  struct Options {
    // Time source; nullptr means the real clock. Must outlive the Runtime.
    Clock* clock = nullptr;
    // No I/O thread: the owner drives it with run_ready().
    bool manual = false;
    // Where log lines go; default: stderr, warnings and errors only.
    LogSink log;
    // Kubernetes locks (k8s://NAMESPACE/NAME): the kubeconfig file and context;
    // empty means discover (KUBECONFIG, in-cluster, ~/.kube/config).
    std::string kubeconfig;
    std::string kube_context;
    // The Kubernetes client's request budget, shared by every k8s:// lock of
    // this Runtime: a token bucket refilled at kube_qps requests per second
    // holding up to kube_burst. Lock reads and writes go before all other
    // traffic (events, watches, lists) and a quarter of the burst is kept for
    // them; over-budget requests wait (never dropped) until their timeout.
    // Defaults fit 10,000 electors per process at the default timings: a
    // leader renews every retry_period (2s), so 10,000 leases need up to
    // 5,000 requests/s, and a cold start of 10,000 electors (10,000 GETs) is
    // spread over about 2 s. Raise kube_qps to at least
    // (leases this process may lead) / renew_interval; lower it to protect a
    // small API server. Limits: kube_qps 0 (no limit) or 0.1 to 1,000,000
    // requests/s; kube_burst 1 to 1,000,000 requests. Checked by open_lock.
    double kube_qps = 5000;
    int kube_burst = 1000;
    // etcd:// and etcds:// locks (docs/etcd.md): files read when the first
    // lock of a cluster is opened. ca_file, cert_file and key_file (PEM) need
    // etcds://; cert_file and key_file go together. user (with
    // password_file, whose trailing newline is dropped) authenticates
    // through /v3/auth/authenticate. Empty: no client certificate, the
    // system trust store, no authentication.
    struct Etcd {
      std::string ca_file, cert_file, key_file;
      std::string user, password_file;
    } etcd;
  };

  Runtime();
  explicit Runtime(Options options);
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Clock& clock() override;
  void post(std::function<void()> fn, Duration delay = Duration::zero()) override;
  void post_at(Instant when, std::function<void()> fn);
  // A timer that can be withdrawn: post_timer returns its id (never 0; 0
  // when the Runtime is being destroyed and the timer will not run), and
  // cancel_timer(id) removes it if it has not started to run, returning
  // whether it did. A cancelled timer never runs and never wakes the I/O
  // thread.
  uint64_t post_timer(Instant when, std::function<void()> fn);
  bool cancel_timer(uint64_t id);

  // Opens a lock handle by URL: k8s://NAMESPACE/NAME (a Lease), mem://NAME,
  // file:///ABS/PATH, or etcd://HOST:PORT[,...]/PREFIX (etcds:// for TLS:
  // a concurrency.Election on etcd v3; an Elector on it runs the etcd
  // driver, and every etcd election of this Runtime on one cluster shares
  // one session lease). Each elector
  // needs its own handle. The error names what is wrong with the URL.
  Result<std::shared_ptr<Lock>> open_lock(std::string_view url);

  // Manual mode: runs every task that is due now, including tasks they post
  // for now. Returns how many ran.
  size_t run_ready();
  bool manual() const;

  // Runs `fn` on the notifier thread, after every notification posted before.
  void notify(std::function<void()> fn);
  // Blocks until the notifier queue is empty (tests).
  void drain_notifications();

  void log(LogLevel level, std::string_view name, std::string_view message) const;

 private:
  friend struct RuntimeAccess;  // internal (src/core/runtime_access.h)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace leasehold
