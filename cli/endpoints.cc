#include "endpoints.h"

#include <cstdio>

namespace leasehold::cli {

Endpoints::Endpoints(Runtime& rt, const Elector& elector, std::string identity, std::string lock,
                     Duration lease_duration, Duration renew_deadline)
    : rt_(rt),
      elector_(elector),
      identity_(std::move(identity)),
      lock_(std::move(lock)),
      lease_duration_(lease_duration),
      renew_deadline_(renew_deadline) {}

ElectorView Endpoints::view() const {
  return {elector_.name(), identity_, lock_, lease_duration_, elector_.status()};
}

std::string Endpoints::io_stuck() {
  Instant now = rt_.clock().now();
  std::lock_guard<std::mutex> g(probe_->mu);
  if (probe_->pending_since) {
    Duration waited = now - *probe_->pending_since;
    if (waited < renew_deadline_) return "";
    char b[160];
    std::snprintf(b, sizeof b,
                  "unhealthy: the I/O thread has not run a probe posted %.3fs ago "
                  "(longer than the renew deadline; a lock request may be stuck)",
                  std::chrono::duration<double>(waited).count());
    return b;
  }
  probe_->pending_since = now;
  rt_.post([p = probe_] {
    std::lock_guard<std::mutex> g(p->mu);
    p->pending_since.reset();
  });
  return "";
}

HttpResponse Endpoints::handle(const HttpRequest& req) {
  if (req.path == "/healthz" || req.path == "/livez") {
    ElectorView v = view();
    Verdict h = health(v);
    if (h.ok) {
      if (std::string stuck = io_stuck(); !stuck.empty()) h = {false, stuck};
    }
    return {h.ok ? 200 : 500, "text/plain; charset=utf-8", h.text + "\n"};
  }
  if (req.path == "/readyz") {
    Verdict r = leader_readiness(view());
    return {r.ok ? 200 : 503, "text/plain; charset=utf-8", r.text + "\n"};
  }
  if (req.path == "/leader") return {200, "application/json", leader_json(view())};
  if (req.path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics({view()})};
  }
  return {404, "text/plain; charset=utf-8",
          "not found: " + req.path + " (try /healthz, /readyz, /leader, /metrics)\n"};
}

}  // namespace leasehold::cli
