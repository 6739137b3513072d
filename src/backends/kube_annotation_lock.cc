// configmap://NAMESPACE/NAME and endpoints://NAMESPACE/NAME: client-go's
// legacy locks, a LeaderElectionRecord as JSON in the annotation
// control-plane.alpha.kubernetes.io/leader of a core/v1 ConfigMap or
// Endpoints. Writes are PUTs of the object last read, carrying its
// resourceVersion (compare-and-swap), with only the annotation changed; the
// object is created when missing. An object without the annotation reads as
// a free record. Followers watch the one object (fieldSelector) and poll while
// the watch is down, exactly as the Lease lock does.
#include <nlohmann/json.hpp>

#include <random>

#include "backends/backends.h"
#include "backends/kube_call.h"
#include "kube/client.h"
#include "kube/event_recorder.h"
#include "kube/legacy_codec.h"

namespace leasehold::backends {
namespace {

using nlohmann::json;
using kube::LegacyKind;

class KubeAnnotationLock final : public Lock, public std::enable_shared_from_this<KubeAnnotationLock> {
 public:
  KubeAnnotationLock(Runtime& rt, std::weak_ptr<kube::Client> client, std::string url, LegacyKind kind,
                     std::string ns, std::string name, std::shared_ptr<kube::EventRecorder> events)
      : rt_(rt),
        client_(std::move(client)),
        url_(std::move(url)),
        kind_(kind),
        ns_(std::move(ns)),
        name_(std::move(name)),
        events_(std::move(events)) {
    collection_ = "/api/v1/namespaces/" + ns_ + "/" + std::string(kube::resource_name(kind_));
    item_ = collection_ + "/" + name_;
  }
  ~KubeAnnotationLock() override {
    if (auto c = client_.lock(); c && watch_id_) c->cancel(watch_id_);
  }

  const std::string& describe() const override { return url_; }
  void set_request_timeout(Duration timeout) override { request_timeout_ = timeout; }

  void get(Completion<Versioned> done) override { call("GET", item_, "", info("get"), 200, std::move(done)); }

  void create(const LeaseRecord& record, Completion<Versioned> done) override {
    call("POST", collection_, kube::encode_legacy_create(kind_, ns_, name_, record), info("create"), 201,
         std::move(done));
  }

  void update(const std::string& version, const LeaseRecord& record, Completion<Versioned> done) override {
    // PUT the whole object at that version (as last read, or as the watch
    // showed it), so data, subsets and other annotations survive. A version
    // we never saw whole is answered like a stale one: re-read first.
    const json* base = nullptr;
    if (cached_ && cached_version_ == version) base = &*cached_;
    else if (watched_ && watched_version_ == version) base = &*watched_;
    if (!base) {
      rt_.post([done = std::move(done), msg = url_ + ": update " + std::string(kube::resource_name(kind_)) + " " +
                                              ns_ + "/" + name_ + ": version " + version +
                                              " was never read whole; re-read first"] {
        done(Error::conflict(msg));
      });
      return;
    }
    call("PUT", item_, kube::encode_legacy_update(*base, record), info("update"), 200, std::move(done));
  }

  bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
             std::function<void(bool)> on_health) override {
    on_change_ = std::move(on_change);
    on_health_ = std::move(on_health);
    start_watch();
    return true;
  }

  void leadership_changed(const std::string& identity, bool leading) override {
    if (!events_) return;
    kube::ObjectRef ref{std::string(kube::kind_name(kind_)), "v1", ns_, name_, uid_, cached_version_};
    events_->leader_election(ref, identity, leading);
  }

 private:
  template <class L>
  friend void backends::kube_watch_ended(L& self, const Result<kube::HttpResponse>& end);  // kube_call.h
  template <class L>
  friend void backends::kube_server_answered(L& self);  // kube_call.h
  kube::RequestInfo info(const char* verb) const {
    return {verb, "", std::string(kube::resource_name(kind_)), ns_, name_};
  }

  // Runs on the Runtime's I/O thread (see kube_call.h).
  void call(const char* method, const std::string& path, std::string body, kube::RequestInfo info,
            long ok_status, Completion<Versioned> done) {
    kube_lock_call(rt_, client_, weak_from_this(), url_, method, path, std::move(body), request_timeout_,
                   [info, ok_status](KubeAnnotationLock& self, const Result<kube::HttpResponse>& r) {
                     return self.interpret(r, info, ok_status);
                   },
                   std::move(done));
  }

  Result<Versioned> interpret(const Result<kube::HttpResponse>& r, const kube::RequestInfo& info,
                              long ok_status) {
    if (!r) return r.error();
    kube_server_answered(*this);
    if (r->status != ok_status && !(ok_status == 201 && r->status == 200)) {
      return kube::error_from_response(r->status, r->body, info);
    }
    auto obj = kube::decode_legacy_object(r->body, kind_);
    if (!obj) return Error::invalid(url_ + ": " + info.verb + " " + info.resource + " " + ns_ + "/" + name_ +
                                    ": " + obj.error().message());
    cached_ = std::move(obj->object);
    cached_version_ = obj->versioned.version;
    if (!obj->uid.empty()) uid_ = obj->uid;
    return obj->versioned;
  }

  void start_watch() {
    std::string path = collection_ + "?watch=1&allowWatchBookmarks=true&fieldSelector=metadata.name%3D" + name_;
    if (!watch_rv_.empty()) path += "&resourceVersion=" + watch_rv_;
    auto client = client_.lock();
    if (!client) return;
    std::weak_ptr<KubeAnnotationLock> weak = weak_from_this();
    Runtime* rt = &rt_;
    auto first = std::make_shared<bool>(true);
    LegacyKind kind = kind_;
    std::string url = url_;
    watch_id_ = client->stream(
        path,
        [weak, rt, first, kind, url](std::string_view line) {  // client's thread: weak refs only
          auto ev = kube::parse_legacy_watch_event(line, kind);
          if (!ev) {
            rt->log(LogLevel::kWarning, url, "watch: " + ev.error().message());
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
          std::optional<json> object;
          if (ev->type == T::kAdded || ev->type == T::kModified) {
            v = ev->object->versioned;
            object = std::move(ev->object->object);
          }
          bool deliver = ev->type != T::kBookmark;
          rt->post([weak, rv = ev->resource_version, v, object = std::move(object), deliver, became_healthy] {
            auto self = weak.lock();
            if (!self) return;
            if (!rv.empty()) self->watch_rv_ = rv;
            self->backoff_ = std::chrono::milliseconds(500);
            if (v) {
              self->watched_ = object;
              self->watched_version_ = v->version;
            }
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
  std::string url_;
  LegacyKind kind_;
  std::string ns_, name_, collection_, item_;
  std::shared_ptr<kube::EventRecorder> events_;  // null: no Events
  // I/O thread only.
  std::optional<json> cached_;  // the object as last read or written
  std::string cached_version_;
  std::optional<json> watched_;  // the object as last seen on the watch
  std::string watched_version_;
  std::string uid_;
  std::string watch_rv_;
  uint64_t watch_id_ = 0;
  Duration backoff_ = std::chrono::milliseconds(500);
  WatchRetry watch_retry_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::function<void(const std::optional<Versioned>&)> on_change_;
  std::function<void(bool)> on_health_;
};

}  // namespace

Result<std::shared_ptr<Lock>> open_kube_annotation_lock(Runtime& rt, std::weak_ptr<kube::Client> client,
                                                        std::string url, kube::LegacyKind kind,
                                                        std::string ns, std::string name,
                                                        std::shared_ptr<kube::EventRecorder> events) {
  return std::shared_ptr<Lock>(std::make_shared<KubeAnnotationLock>(
      rt, std::move(client), std::move(url), kind, std::move(ns), std::move(name), std::move(events)));
}

}  // namespace leasehold::backends
