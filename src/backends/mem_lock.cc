// mem://NAME: an in-process record shared by every handle of one Runtime,
// with per-handle faults.
#include <algorithm>
#include <vector>

#include "backends/backends.h"
#include "leasehold/mem_lock.h"

namespace leasehold::backends {

class MemHandle;

struct MemStore {
  std::mutex mu;
  std::optional<LeaseRecord> record;  // GUARDED_BY(mu)
  uint64_t generation = 0;            // GUARDED_BY(mu)
  std::vector<std::weak_ptr<MemHandle>> watchers;  // GUARDED_BY(mu)
};

class MemHandle final : public MemLock, public std::enable_shared_from_this<MemHandle> {
 public:
  MemHandle(Runtime& rt, std::shared_ptr<MemStore> store, std::string url)
      : rt_(rt), store_(std::move(store)), url_(std::move(url)) {}

  const std::string& describe() const override { return url_; }

  void set_faults(const Faults& f) override {
    bool healed;
    {
      std::lock_guard<std::mutex> g(fmu_);
      healed = faults_.partitioned && !f.partitioned;
      bool cut = !faults_.partitioned && f.partitioned;
      faults_ = f;
      if (cut && on_health_) rt_.post([h = on_health_] { h(false); });
    }
    if (healed) {
      // Deliver the current state, then report the watch live again.
      std::optional<Versioned> now;
      {
        std::lock_guard<std::mutex> g(store_->mu);
        now = current_locked();
      }
      std::lock_guard<std::mutex> g(fmu_);
      if (on_change_) {
        rt_.post([c = on_change_, h = on_health_, now] {
          c(now);
          h(true);
        });
      }
    }
  }

  Faults faults() const override {
    std::lock_guard<std::mutex> g(fmu_);
    return faults_;
  }

  void get(Completion<Versioned> done) override {
    run(std::move(done), [this]() -> Result<Versioned> {
      auto v = current_locked();
      if (!v) return Error::not_found(url_ + ": no record");
      return *v;
    });
  }

  void create(const LeaseRecord& rec, Completion<Versioned> done) override {
    run(std::move(done), [this, rec]() -> Result<Versioned> {
      if (store_->record) return Error::already_exists(url_ + ": record exists");
      return write_locked(rec);
    });
  }

  void update(const std::string& version, const LeaseRecord& rec,
              Completion<Versioned> done) override {
    run(std::move(done), [this, version, rec]() -> Result<Versioned> {
      if (!store_->record) return Error::not_found(url_ + ": record was deleted");
      if (std::to_string(store_->generation) != version) {
        return Error::conflict(url_ + ": version " + version + " is stale (now " +
                               std::to_string(store_->generation) + ")");
      }
      return write_locked(rec);
    });
  }

  bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
             std::function<void(bool)> on_health) override {
    {
      std::lock_guard<std::mutex> g(fmu_);
      on_change_ = std::move(on_change);
      on_health_ = std::move(on_health);
      rt_.post([h = on_health_, up = !faults_.partitioned] { h(up); });
    }
    std::lock_guard<std::mutex> g(store_->mu);
    store_->watchers.push_back(weak_from_this());
    return true;
  }

  void erase() override {
    std::lock_guard<std::mutex> g(store_->mu);
    store_->record.reset();
    ++store_->generation;
    broadcast_locked();
  }

  // Called with store_->mu held, from the writer's thread.
  void deliver(const std::optional<Versioned>& v) {
    std::lock_guard<std::mutex> g(fmu_);
    if (!on_change_ || faults_.partitioned) return;
    rt_.post([c = on_change_, v] { c(v); }, faults_.latency);
  }

 private:
  std::optional<Versioned> current_locked() const {
    if (!store_->record) return std::nullopt;
    return Versioned{std::to_string(store_->generation), *store_->record};
  }

  Result<Versioned> write_locked(const LeaseRecord& rec) {
    store_->record = rec;
    ++store_->generation;
    broadcast_locked();
    return *current_locked();
  }

  void broadcast_locked() {
    auto v = current_locked();
    auto& ws = store_->watchers;
    ws.erase(std::remove_if(ws.begin(), ws.end(), [](auto& w) { return w.expired(); }), ws.end());
    for (auto& w : ws) {
      if (auto h = w.lock()) h->deliver(v);
    }
  }

  void run(Completion<Versioned> done, std::function<Result<Versioned>()> op) {
    Faults f;
    {
      std::lock_guard<std::mutex> g(fmu_);
      f = faults_;
      if (!faults_.partitioned && faults_.fail_next > 0) --faults_.fail_next;
    }
    // The operation takes effect after the latency, as on a network: the
    // request travels half of it, the response the other half.
    auto self = shared_from_this();
    rt_.post(
        [self, f, done = std::move(done), op = std::move(op)]() mutable {
          Result<Versioned> r = Error::internal("unset");
          if (f.partitioned) {
            r = Error::unavailable(self->url_ + ": partitioned (fault injection)");
          } else if (f.fail_next > 0) {
            r = Error(f.fail_code, self->url_ + ": injected failure");
          } else {
            std::lock_guard<std::mutex> g(self->store_->mu);
            r = op();
          }
          self->rt_.post([done = std::move(done), r = std::move(r)] { done(r); }, f.latency / 2);
        },
        f.latency / 2);
  }

  Runtime& rt_;
  std::shared_ptr<MemStore> store_;
  std::string url_;
  mutable std::mutex fmu_;
  Faults faults_;  // GUARDED_BY(fmu_)
  std::function<void(const std::optional<Versioned>&)> on_change_;  // GUARDED_BY(fmu_)
  std::function<void(bool)> on_health_;                              // GUARDED_BY(fmu_)
};

Result<std::shared_ptr<Lock>> open_mem_lock(Runtime& rt, MemRegistry& reg, std::string url,
                                            const std::string& name) {
  std::shared_ptr<MemStore> store;
  {
    std::lock_guard<std::mutex> g(reg.mu);
    auto& s = reg.stores[name];
    if (!s) s = std::make_shared<MemStore>();
    store = s;
  }
  return std::shared_ptr<Lock>(std::make_shared<MemHandle>(rt, std::move(store), std::move(url)));
}

}  // namespace leasehold::backends
