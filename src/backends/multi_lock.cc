// configmapsleases://NS/NAME and endpointsleases://NS/NAME: the migration
// mode. One lock made of two, with client-go's MultiLock semantics, so a
// fleet moves from a legacy annotation lock to a Lease with never two
// leaders: old replicas on the legacy lock, migrating replicas on the pair,
// then new replicas on the Lease alone.
//
//   primary   the legacy lock (ConfigMap or Endpoints annotation)
//   secondary the Lease of the same namespace and name
//
// get     reads the primary (its error, NotFound included, is the answer),
//         then the secondary. Secondary missing: the primary's record (a
//         replica still on the legacy lock holds it). Both present with
//         different holders: the primary's record with holder
//         "leaderelection.k8s.io/unknown", so nobody takes it before it has
//         stood still for a whole lease duration.
// create  creates the primary, then the secondary.
// update  compare-and-swap on the primary, then on the secondary (created
//         if missing; a Lease deleted since it was read is created again).
//
// The version is "<primary resourceVersion>|<secondary resourceVersion>"
// (empty after the bar when the Lease is missing): any write to either object
// is a change of record, as client-go's comparison of both raw records is.
//
// Where client-go is looser we are stricter, never the other way round:
// client-go's Create ignores AlreadyExists on the primary and its Update
// overwrites the secondary after a fresh read; here every write is a
// compare-and-swap against what was observed, and a primary created by
// someone else in the meantime is a lost race (AlreadyExists). Leadership
// starts only when both writes succeeded.
//
// No watch: the two objects change separately and a watch could deliver a
// half-written pair; followers poll at retry_period, as client-go does.
#include "backends/backends.h"
#include "kube/event_recorder.h"
#include "kube/legacy_codec.h"

namespace leasehold::backends {
namespace {

constexpr const char* kUnknownLeader = "leaderelection.k8s.io/unknown";

struct Split {
  std::string primary, secondary;
  bool ok = false;
};

Split split_version(const std::string& v) {
  auto bar = v.find('|');
  if (bar == std::string::npos) return {};
  return {v.substr(0, bar), v.substr(bar + 1), true};
}

class MultiLock final : public Lock, public std::enable_shared_from_this<MultiLock> {
 public:
  MultiLock(Runtime& rt, std::string url, std::shared_ptr<Lock> primary, std::shared_ptr<Lock> secondary)
      : rt_(rt),
        url_(std::move(url)), primary_(std::move(primary)), secondary_(std::move(secondary)) {}

  const std::string& describe() const override { return url_; }

  void get(Completion<Versioned> done) override {
    auto self = shared_from_this();
    primary_->get([self, done = std::move(done)](Result<Versioned> p) mutable {
      if (!p) return done(p.error());
      self->secondary_->get([self, done = std::move(done), p = std::move(*p)](Result<Versioned> s) mutable {
        if (!s) {
          if (s.error().is(Code::kNotFound)) return done(Versioned{p.version + "|", p.record});
          return done(s.error());
        }
        Versioned out{p.version + "|" + s->version, p.record};
        if (p.record.holder_identity != s->record.holder_identity) {
          out.record.holder_identity = kUnknownLeader;
        }
        done(std::move(out));
      });
    });
  }

  void create(const LeaseRecord& record, Completion<Versioned> done) override {
    auto self = shared_from_this();
    primary_->create(record, [self, record, done = std::move(done)](Result<Versioned> p) mutable {
      if (!p) return done(p.error());
      self->secondary_->create(record, [done = std::move(done), record, pv = p->version](Result<Versioned> s) mutable {
        if (!s) return done(s.error());
        done(Versioned{pv + "|" + s->version, record});
      });
    });
  }

  void update(const std::string& version, const LeaseRecord& record, Completion<Versioned> done) override {
    Split v = split_version(version);
    if (!v.ok) {
      return done_later(std::move(done),
                        Error::conflict(url_ + ": version \"" + version + "\" is not a pair; re-read first"));
    }
    auto self = shared_from_this();
    primary_->update(v.primary, record,
                     [self, record, sv = v.secondary, done = std::move(done)](Result<Versioned> p) mutable {
                       if (!p) return done(p.error());
                       self->write_secondary(sv, record, p->version, std::move(done));
                     });
  }

  // A write is two requests in a row: each gets half of the budget.
  void set_request_timeout(Duration timeout) override {
    primary_->set_request_timeout(timeout / 2);
    secondary_->set_request_timeout(timeout / 2);
  }
  void leadership_changed(const std::string& identity, bool leading) override {
    primary_->leadership_changed(identity, leading);
    secondary_->leadership_changed(identity, leading);
  }

 private:
  void write_secondary(const std::string& sv, const LeaseRecord& record, std::string pv,
                       Completion<Versioned> done) {
    auto finish = [done = std::move(done), record, pv](Result<Versioned> s) mutable {
      if (!s) return done(s.error());
      done(Versioned{pv + "|" + s->version, record});
    };
    if (sv.empty()) return secondary_->create(record, std::move(finish));
    auto self = shared_from_this();
    secondary_->update(sv, record, [self, record, finish = std::move(finish)](Result<Versioned> s) mutable {
      // The Lease was deleted since it was read: make it again (client-go
      // does the same after its Get finds none).
      if (!s && s.error().is(Code::kNotFound)) return self->secondary_->create(record, std::move(finish));
      finish(std::move(s));
    });
  }

  // Completions never run inline inside the call.
  void done_later(Completion<Versioned> done, Error e) {
    rt_.post([done = std::move(done), e = std::move(e)] { done(e); });
  }

  Runtime& rt_;
  std::string url_;
  std::shared_ptr<Lock> primary_, secondary_;
};

}  // namespace

Result<std::shared_ptr<Lock>> open_multi_lock(Runtime& rt, std::string url, std::shared_ptr<Lock> primary,
                                              std::shared_ptr<Lock> secondary) {
  if (!primary || !secondary) return Error::invalid("lock URL \"" + url + "\": both locks are needed");
  return std::shared_ptr<Lock>(std::make_shared<MultiLock>(rt, std::move(url), std::move(primary), std::move(secondary)));
}

bool is_kube_scheme(std::string_view scheme) {
  return scheme == "k8s" || scheme == "configmap" || scheme == "endpoints" || scheme == "configmapsleases" ||
         scheme == "endpointsleases";
}

Result<std::shared_ptr<Lock>> open_kube_lock(Runtime& rt, std::weak_ptr<kube::Client> client,
                                             std::string_view scheme, std::string url, std::string ns,
                                             std::string name) {
  // One recorder per lock handle: its queue and token bucket bound what this
  // elector can send; nothing is sent unless the elector reports a change.
  auto events = kube::EventRecorder::create(rt, client);
  auto lease = [&]() -> Result<std::shared_ptr<Lock>> {
    auto l = open_kube_lease_lock(rt, client, url, ns, name);
    if (!l) return l;
    kube::ObjectRef ref{"Lease", "coordination.k8s.io/v1", ns, name, "", ""};
    return kube::with_events(std::move(*l), std::move(ref), events);
  };
  if (scheme == "k8s") return lease();
  kube::LegacyKind kind =
      scheme.starts_with("configmap") ? kube::LegacyKind::kConfigMap : kube::LegacyKind::kEndpoints;
  auto legacy = open_kube_annotation_lock(rt, client, url, kind, ns, name, events);
  if (!legacy) return legacy;
  if (scheme == "configmap" || scheme == "endpoints") return legacy;
  if (scheme != "configmapsleases" && scheme != "endpointsleases") {
    return Error::invalid("lock URL \"" + url + "\": unknown Kubernetes scheme \"" + std::string(scheme) + "\"");
  }
  auto secondary = lease();
  if (!secondary) return secondary;
  return open_multi_lock(rt, std::move(url), std::move(*legacy), std::move(*secondary));
}

}  // namespace leasehold::backends
