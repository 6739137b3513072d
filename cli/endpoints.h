// The sidecar's HTTP endpoints for one elector, for `leasehold run` and
// `leasehold serve`:
//   /healthz  200 while the sidecar works; 500 when it believes it leads but
//             its renew deadline passed, when the Runtime's I/O thread has not
//             run a probe within the renew deadline (stuck), or once stopped
//   /readyz   200 only while this replica leads, else 503: a readiness probe
//             that routes a Service to the leader only
//   /leader   JSON: holder, term (fencing token), transitions, seconds left,
//             our identity and phase
//   /metrics  Prometheus text format (names in metrics.h)
//
// Threading: handle() is called on the HTTP server's thread; it reads the
// elector's snapshot and posts a no-op probe to the Runtime, never blocks.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "http_server.h"
#include "leasehold/elector.h"
#include "metrics.h"

namespace leasehold::cli {

class Endpoints {
 public:
  // The elector and runtime must outlive this object and the server using it.
  Endpoints(Runtime& rt, const Elector& elector, std::string identity, std::string lock,
            Duration lease_duration, Duration renew_deadline);
  HttpResponse handle(const HttpRequest& req);

 private:
  ElectorView view() const;
  // Empty while the I/O thread answers probes; else why it is stuck.
  std::string io_stuck();

  struct Probe {
    std::mutex mu;
    std::optional<Instant> pending_since;  // GUARDED_BY(mu)
  };
  Runtime& rt_;
  const Elector& elector_;
  std::string identity_, lock_;
  Duration lease_duration_, renew_deadline_;
  std::shared_ptr<Probe> probe_ = std::make_shared<Probe>();
};

}  // namespace leasehold::cli
