#include "kube/rate_limiter.h"

#include <cmath>

namespace leasehold::kube {

Result<void> validate_rate_limit(const RateLimit& l, const std::string& prefix) {
  if (!std::isfinite(l.qps) || l.qps < 0 || (l.qps > 0 && l.qps < 0.1) || l.qps > 1e6) {
    return Error::invalid(prefix + "qps: " + std::to_string(l.qps) +
                          " is out of range (0 turns the limiter off, else 0.1 to 1,000,000 requests per second)");
  }
  if (l.qps > 0 && (l.burst < 1 || l.burst > 1'000'000)) {
    return Error::invalid(prefix + "burst: " + std::to_string(l.burst) + " is out of range (1 to 1,000,000 requests)");
  }
  return {};
}

TokenBucket::TokenBucket(RateLimit limit, Instant now)
    : qps_(limit.qps), burst_(std::max(1, limit.burst)), tokens_(burst_), last_(now) {}

void TokenBucket::refill(Instant now) {
  if (now <= last_) return;  // time never runs backwards for the bucket
  double secs = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + secs * qps_);
  last_ = now;
}

double TokenBucket::available(Instant now) {
  if (unlimited()) return burst_;
  refill(now);
  return tokens_;
}

bool TokenBucket::try_take(Instant now, double keep) {
  if (unlimited()) return true;
  refill(now);
  if (tokens_ < 1 + keep) return false;
  tokens_ -= 1;
  return true;
}

Instant TokenBucket::when_available(Instant now, double keep) {
  if (unlimited()) return now;
  refill(now);
  double missing = 1 + keep - tokens_;
  if (missing <= 0) return now;
  // Round up so that the bucket really holds the token at the returned instant.
  auto wait = std::chrono::duration<double>(missing / qps_);
  return now + std::chrono::ceil<Duration>(wait) + Duration(1);
}

}  // namespace leasehold::kube
