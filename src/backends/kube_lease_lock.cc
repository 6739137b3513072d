// k8s://NAMESPACE/NAME: a coordination.k8s.io/v1 Lease. Writes are PUTs that
// carry the resourceVersion read (compare-and-swap); a 409 means someone else
// wrote first. An update PUTs the whole object at that version, as last
// read or written, or as the watch showed it, so labels, annotations,
// ownerReferences, finalizers and fields we do not know survive every write;
// a version never seen whole is answered as a conflict (re-read first). The
// Runtime's shared watch (or one on the one Lease, fieldSelector) feeds
// followers; while it is down they poll.
//
// Get, create, update and the Lease's own watch ask for Kubernetes protobuf
// first (Media::kLease; the client's lease format decides) and decode by the
// answer's Content-Type. An update is written in the format its base object
// was read in, a create in the client's lease format.
#include <nlohmann/json.hpp>

#include <random>

#include "backends/backends.h"
#include "backends/kube_call.h"
#include "backends/lease_watch_hub.h"
#include "core/runtime_access.h"
#include "kube/client.h"
#include "kube/lease_codec.h"
#include "kube/watch_peek.h"

namespace leasehold::backends {
namespace {

using nlohmann::json;

class KubeLeaseLock final : public Lock, public std::enable_shared_from_this<KubeLeaseLock> {
 public:
  KubeLeaseLock(Runtime& rt, std::weak_ptr<kube::Client> client, std::string url, std::string ns,
                std::string name)
      : rt_(rt), client_(std::move(client)), url_(std::move(url)), ns_(std::move(ns)), name_(std::move(name)) {
    collection_ = "/apis/coordination.k8s.io/v1/namespaces/" + ns_ + "/leases";
    item_ = collection_ + "/" + name_;
  }
  ~KubeLeaseLock() override {
    if (auto c = client_.lock(); c && watch_id_) c->cancel(watch_id_);
    if (auto h = hub_.lock(); h && hub_sub_) h->unsubscribe(hub_sub_);
  }

  const std::string& describe() const override { return url_; }
  void set_request_timeout(Duration timeout) override { request_timeout_ = timeout; }

  void get(Completion<Versioned> done) override {
    call("GET", item_, "", "get", 200, std::move(done));
  }

  void create(const LeaseRecord& record, Completion<Versioned> done) override {
    auto client = client_.lock();
    auto format = client ? client->lease_format() : kube::WireFormat::kJson;
    call("POST", collection_, kube::encode_lease_create(format, ns_, name_, record),
         "create", 201, std::move(done), echo_hook());
  }

  void update(const std::string& version, const LeaseRecord& record, Completion<Versioned> done) override {
    const kube::Lease* base = nullptr;
    if (cached_ && cached_->versioned.version == version) {
      base = &*cached_;
    } else if (watched_ && watched_->versioned.version == version) {
      base = &*watched_;
    }
    if (!base) {
      // A PUT of only the spec would drop the metadata others wrote.
      rt_.post([done = std::move(done), msg = url_ + ": update leases " + ns_ + "/" + name_ + ": version " +
                                              version + " was never read whole; re-read first"] {
        done(Error::conflict(msg));
      });
      return;
    }
    // A renewal (the holder writing its own term again) is sent as one, so
    // the transport may read its answer a little late (client.h).
    const LeaseRecord& was = base->versioned.record;
    bool renewal = !record.holder_identity.empty() && record.holder_identity == was.holder_identity &&
                   record.lease_transitions == was.lease_transitions;
    call("PUT", item_, kube::encode_lease_update(*base, record), "update", 200, std::move(done), echo_hook(),
         renewal ? kube::Media::kLeaseRenewal : kube::Media::kLease);
  }

  bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
             std::function<void(bool)> on_health) override {
    on_change_ = std::move(on_change);
    on_health_ = std::move(on_health);
    // The Runtime's shared watch on the namespace; our own, filtered by name,
    // if the server refuses a namespace-wide one.
    auto hub = RuntimeAccess::lease_watch_hub(rt_);
    if (!hub) {
      start_watch();
      return true;
    }
    hub_ = hub;
    std::weak_ptr<KubeLeaseLock> weak = weak_from_this();
    LeaseWatchSubscriber sub;
    sub.on_object = [weak](const kube::Lease* l) {
      auto self = weak.lock();
      if (!self) return;
      if (l) self->saw(*l);
      if (self->on_change_) self->on_change_(l ? std::optional<Versioned>(l->versioned) : std::nullopt);
    };
    sub.on_health = [weak](bool up) {
      if (auto self = weak.lock(); self && self->on_health_) self->on_health_(up);
    };
    sub.on_unsupported = [weak] {
      if (auto self = weak.lock(); self && !self->watch_id_) self->start_watch();
    };
    hub_sub_ = hub->subscribe(ns_, name_, std::move(sub));
    return true;
  }

 private:
  template <class L>
  friend void backends::kube_watch_ended(L& self, const Result<kube::HttpResponse>& end);  // kube_call.h
  template <class L>
  friend void backends::kube_server_answered(L& self);  // kube_call.h
  static constexpr const char* kGroup = "coordination.k8s.io";

  // What a request on this Lease is, for error messages.
  kube::RequestInfo info(const char* verb) const { return {verb, kGroup, "leases", ns_, name_}; }

  // Runs on the Runtime's I/O thread (see kube_call.h).
  // `verb` names the request in errors (info(verb)); a literal, so the
  // answer's handler carries a pointer, not strings.
  void call(const char* method, const std::string& path, std::string body, const char* verb,
            long ok_status, Completion<Versioned> done,
            std::function<void(const Result<kube::HttpResponse>&)> on_answer = {},
            kube::Media media = kube::Media::kLease) {
    kube_lock_call(rt_, client_, weak_from_this(), url_, method, path, std::move(body), request_timeout_,
                   [verb, ok_status](KubeLeaseLock& self, const Result<kube::HttpResponse>& r) {
                     return self.interpret(r, verb, ok_status);
                   },
                   std::move(done), media, std::move(on_answer));
  }

  // For a write, called before it is sent: the shared watch holds this
  // Lease's events until the answer, which the returned hook (on the client's
  // thread, as the answer arrives) hands it, so the echo is recognised
  // undecoded.
  std::function<void(const Result<kube::HttpResponse>&)> echo_hook() const {
    auto hub = hub_.lock();
    if (!hub || !hub_sub_) return {};
    hub->begin_write(hub_sub_, ns_, name_);
    std::weak_ptr<LeaseWatchHub> weak = hub;
    return [weak, sub = hub_sub_, ns = ns_, name = name_](const Result<kube::HttpResponse>& r) {
      std::string_view rv;
      if (r.ok() && (r->status == 200 || r->status == 201)) {
        rv = kube::peek_lease_version(r->body, r->content_type).value_or(std::string_view{});
      }
      if (auto h = weak.lock()) h->end_write(sub, ns, name, rv);
    };
  }

  Result<Versioned> interpret(const Result<kube::HttpResponse>& r, const char* verb, long ok_status) {
    if (!r) return r.error();
    kube_server_answered(*this);
    if (r->status != ok_status && !(ok_status == 201 && r->status == 200)) {
      return kube::error_from_response(r->status, r->body, info(verb));
    }
    auto lease = kube::decode_lease(r->body, r->content_type);
    if (!lease) return Error::invalid(url_ + ": " + lease.error().message());
    Versioned v = lease->versioned;
    cached_ = std::make_shared<const kube::Lease>(std::move(*lease));
    if (auto hub = hub_.lock(); hub && hub_sub_) hub->server_answered(ns_);
    return v;
  }

  // I/O thread: the watch showed the whole object.
  void saw(kube::Lease lease) { watched_ = std::move(lease); }

  void start_watch() {
    std::string path = collection_ + "?watch=1&allowWatchBookmarks=true&fieldSelector=metadata.name%3D" + name_;
    if (!watch_rv_.empty()) path += "&resourceVersion=" + watch_rv_;
    auto client = client_.lock();
    if (!client) return;
    std::weak_ptr<KubeLeaseLock> weak = weak_from_this();
    Runtime* rt = &rt_;
    auto first = std::make_shared<bool>(true);
    watch_id_ = client->watch_leases(
        path,
        [weak, rt, first](std::string_view frame, kube::WireFormat format) {  // the client's thread: weak refs only
          const Instant received_at = rt->clock().now();
          auto ev = kube::parse_watch_event(frame, format);
          if (!ev) {
            rt->log(LogLevel::kWarning, "watch", ev.error().message());
            return;
          }
          using T = kube::WatchEvent::Type;
          if (ev->type == T::kError) {
            rt->post([weak] {
              if (auto self = weak.lock()) self->watch_rv_.clear();  // e.g. 410 Gone: start over
            });
            return;
          }
          bool became_healthy = *first;
          *first = false;
          std::optional<Versioned> v;
          std::optional<kube::Lease> object;
          if (ev->type == T::kAdded || ev->type == T::kModified) {
            ev->lease->versioned.received_at = received_at;
            v = ev->lease->versioned;
            object = std::move(ev->lease);
          }
          bool deliver = ev->type != T::kBookmark;
          rt->post([weak, rv = ev->resource_version, v, object = std::move(object), deliver, became_healthy] {
            auto self = weak.lock();
            if (!self) return;
            if (!rv.empty()) self->watch_rv_ = rv;
            if (object) self->saw(*object);
            self->backoff_ = std::chrono::milliseconds(500);
            if (deliver && self->on_change_) self->on_change_(v);
            if (became_healthy && self->on_health_) self->on_health_(true);
          });
        },
        [weak, rt](Result<kube::HttpResponse> end) {
          rt->post([weak, end] {
            auto self = weak.lock();
            if (!self) return;
            kube_watch_ended(*self, end);
          });
        });
  }

  Duration request_timeout_ = std::chrono::seconds(10);  // I/O thread only
  Runtime& rt_;
  std::weak_ptr<kube::Client> client_;  // the Runtime owns the client
  std::string url_, ns_, name_, collection_, item_;
  // I/O thread only.
  std::shared_ptr<const kube::Lease> cached_;  // the object as last read or written
  std::optional<kube::Lease> watched_;  // the object as last seen on the watch
  std::string watch_rv_;
  uint64_t watch_id_ = 0;
  std::weak_ptr<LeaseWatchHub> hub_;
  uint64_t hub_sub_ = 0;
  Duration backoff_ = std::chrono::milliseconds(500);
  WatchRetry watch_retry_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::function<void(const std::optional<Versioned>&)> on_change_;
  std::function<void(bool)> on_health_;
};

}  // namespace

Result<std::shared_ptr<Lock>> open_kube_lease_lock(Runtime& rt, std::weak_ptr<kube::Client> client,
                                                   std::string url, std::string ns, std::string name) {
  return std::shared_ptr<Lock>(
      std::make_shared<KubeLeaseLock>(rt, std::move(client), std::move(url), std::move(ns), std::move(name)));
}

}  // namespace leasehold::backends
