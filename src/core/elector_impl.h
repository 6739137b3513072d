// Internal: what an Elector drives. Two drivers implement it: the Lease
// driver (src/core/elector.cc: core::StateMachine on a Lock's records, for
// mem://, file:// and the Kubernetes locks) and the etcd driver
// (src/etcd/etcd_elector.cc: etcd::ElectionMachine on a shared session).
// Elector's public methods forward to it; elector.h states their contract.
//
// Threading: every method is safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "leasehold/elector.h"

namespace leasehold {

struct Elector::Impl {
  virtual ~Impl() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual void resign() = 0;
  virtual Result<void> handoff(const std::string& target) = 0;
  virtual void wait() = 0;
  virtual bool is_leader() const = 0;
  virtual std::string leader() const = 0;
  virtual std::optional<Term> term() const = 0;
  virtual ElectorStatus status() const = 0;
  virtual const std::string& name() const = 0;

  // Elector::start's stop_token: a stop requested on it calls stop().
  std::mutex external_mu;
  std::optional<std::stop_callback<std::function<void()>>> external_stop;  // GUARDED_BY(external_mu)
};

namespace etcd {
class ElectionLock;
// The etcd driver for an etcd:// lock handle (src/etcd/etcd_elector.cc).
// `config` is validated already.
Result<std::shared_ptr<Elector::Impl>> make_etcd_elector(Runtime& rt, ElectorConfig config,
                                                         std::shared_ptr<ElectionLock> lock);
}  // namespace etcd

}  // namespace leasehold
