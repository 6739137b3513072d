// Observer: reads a lease through its lock (watch, or polling while the watch
// is down) and reports changes of holder, without ever writing.
#include "leasehold/observer.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>

#include "core/state_machine.h"

namespace leasehold {

struct Observer::Impl : std::enable_shared_from_this<Impl> {
  Impl(Runtime& r, std::shared_ptr<Lock> l, Duration p) : rt(r), lock(std::move(l)), poll(p) {}

  Runtime& rt;
  std::shared_ptr<Lock> lock;
  Duration poll;

  // I/O thread only.
  bool running = false;
  bool watch_healthy = false;
  bool get_in_flight = false;
  // A watch event in doubt came while a read was in flight: read again
  // after it, unless its answer agrees (doubted: the event's version, "" for
  // a deletion).
  bool reread = false;
  std::string doubted;
  std::string last_error;  // of the last read; empty when it succeeded (404 included)
  std::optional<Versioned> record;
  Instant observed_at{};
  uint64_t timer_gen = 0;
  std::function<void(const LeaseView&)> on_change;

  mutable std::mutex mu;
  std::optional<LeaseView> view;  // GUARDED_BY(mu)
  // Cleared by stop() at once, so no on_change runs after stop() returned
  // (except one already running).
  std::atomic<bool> active{false};

  void observe(const std::optional<Versioned>& v) {
    Instant now = rt.clock().now();
    // Never earlier than before, as in the state machine.
    if (!v || !record || record->version != v->version) {
      observed_at = std::max(observed_at, v ? core::arrival(now, *v) : now);
    }
    record = v;
    publish();
  }

  // A watch event: applied when it renews the holder we know (same holder,
  // same transitions); otherwise read first, since it may be older news.
  void on_event(const std::optional<Versioned>& v) {
    if (v ? record && record->version == v->version : !record) return;  // nothing new
    if (v && record && !record->record.is_free() &&
        v->record.holder_identity == record->record.holder_identity &&
        v->record.lease_transitions == record->record.lease_transitions) {
      observe(v);
      return;
    }
    doubted = v ? v->version : "";
    if (get_in_flight) {
      reread = true;
    } else {
      fetch();
    }
  }

  void publish() {
    Instant now = rt.clock().now();
    LeaseView nv;
    nv.error = last_error;
    std::optional<Instant> expiry;
    if (record) {
      nv.exists = true;
      nv.named_holder = record->record.holder_identity;
      nv.transitions = record->record.lease_transitions;
      nv.version = record->version;
      if (!record->record.is_free()) {
        expiry = observed_at + std::chrono::seconds(record->record.lease_duration_seconds);
        nv.expired = now >= *expiry;
        if (!nv.expired) nv.holder = nv.named_holder;
      }
    }
    bool changed;
    {
      std::lock_guard<std::mutex> g(mu);
      // Only holder-level changes are news; a renewal (new version) is not.
      changed = !view || view->holder != nv.holder || view->exists != nv.exists ||
                view->expired != nv.expired || view->transitions != nv.transitions || view->error != nv.error;
      view = nv;
    }
    if (changed && on_change) {
      rt.notify([self = shared_from_this(), cb = on_change, nv] {
        if (self->active) cb(nv);
      });
    }
    arm(expiry && now < *expiry ? std::optional<Instant>(*expiry) : std::nullopt);
  }

  // Wakes at the holder's expiry, and at the next poll while not watching.
  void arm(std::optional<Instant> expiry) {
    uint64_t gen = ++timer_gen;
    std::optional<Instant> at = expiry;
    if (!watch_healthy) {
      Instant p = rt.clock().now() + poll;
      at = at ? std::min(*at, p) : p;
    }
    if (!at || !running) return;
    rt.post_at(*at, [self = shared_from_this(), gen] {
      if (gen != self->timer_gen || !self->running) return;
      if (!self->watch_healthy) {
        self->fetch();
      } else {
        self->publish();  // the expiry instant
      }
    });
  }

  void fetch() {
    if (get_in_flight) return;
    get_in_flight = true;
    lock->get([self = shared_from_this()](Result<Versioned> r) {
      self->get_in_flight = false;
      if (!self->running) return;
      const bool agrees = r.ok() ? r.value().version == self->doubted
                                 : r.error().is(Code::kNotFound) && self->doubted.empty();
      const bool again = std::exchange(self->reread, false) && !agrees;
      if (again) self->fetch();  // this answer may be older than the event; its own is not
      self->last_error = r.ok() || r.error().is(Code::kNotFound) ? "" : r.error().to_string();
      if (r.ok()) {
        self->observe(r.value());
      } else if (r.error().is(Code::kNotFound)) {
        self->observe(std::nullopt);
      } else {
        self->rt.log(LogLevel::kWarning, self->lock->describe(), "observe: " + self->last_error);
        self->publish();  // reports the error; keeps the poll timer going
      }
    });
  }
};

Result<std::unique_ptr<Observer>> Observer::create(Runtime& rt, const std::string& lock_url,
                                                   Duration poll_period) {
  if (poll_period <= Duration::zero()) return Error::invalid("poll_period: must be > 0");
  auto lock = rt.open_lock(lock_url);
  if (!lock) return lock.error();
  return std::unique_ptr<Observer>(
      new Observer(std::make_shared<Impl>(rt, std::move(*lock), poll_period)));
}

Result<std::unique_ptr<Observer>> Observer::create(Runtime& rt, std::shared_ptr<Lock> lock,
                                                   Duration poll_period) {
  if (poll_period <= Duration::zero()) return Error::invalid("poll_period: must be > 0");
  if (!lock) return Error::invalid("lock: null lock handle");
  return std::unique_ptr<Observer>(new Observer(std::make_shared<Impl>(rt, std::move(lock), poll_period)));
}

Observer::Observer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Observer::~Observer() { stop(); }

void Observer::start(std::function<void(const LeaseView&)> on_change) {
  impl_->active = true;
  impl_->rt.post([s = impl_, cb = std::move(on_change)]() mutable {
    s->on_change = std::move(cb);
    s->running = true;
    std::weak_ptr<Impl> weak = s;
    s->lock->watch(
        [weak](const std::optional<Versioned>& v) {
          if (auto x = weak.lock(); x && x->running) x->on_event(v);
        },
        [weak](bool healthy) {
          if (auto x = weak.lock(); x && x->running) {
            x->watch_healthy = healthy;
            if (!healthy) x->fetch();
          }
        });
    s->fetch();
  });
}

void Observer::stop() {
  impl_->active = false;
  impl_->rt.post([s = impl_] {
    s->running = false;
    s->on_change = nullptr;
    ++s->timer_gen;
  });
}

std::optional<LeaseView> Observer::current() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->view;
}

}  // namespace leasehold
