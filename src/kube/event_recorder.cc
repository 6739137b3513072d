#include "kube/event_recorder.h"

#include <unistd.h>

#include <algorithm>

#include "kube/lease_codec.h"

namespace leasehold::kube {
namespace {

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "unknown";
  return host;
}

}  // namespace

std::shared_ptr<EventRecorder> EventRecorder::create(Runtime& rt, std::weak_ptr<Client> client,
                                                     EventRecorderOptions options) {
  return std::make_shared<EventRecorder>(rt, std::move(client), std::move(options));
}

EventRecorder::EventRecorder(Runtime& rt, std::weak_ptr<Client> client, EventRecorderOptions options)
    : rt_(rt), client_(std::move(client)), opt_(std::move(options)) {
  if (opt_.component.empty()) opt_.component = "leasehold";
  if (opt_.host.empty()) opt_.host = host_name();
  opt_.max_queue = std::max<size_t>(opt_.max_queue, 1);
  opt_.burst = std::max(opt_.burst, 1);
  if (!(opt_.per_second > 0)) opt_.per_second = 1.0;
  bucket_ = std::make_unique<TokenBucket>(RateLimit{opt_.per_second, opt_.burst}, rt_.clock().now());
}

void EventRecorder::leader_election(const ObjectRef& object, const std::string& identity, bool leading) {
  record(leader_election_event(object, identity, leading ? "became leader" : "stopped leading",
                               opt_.component, opt_.host, rt_.clock().wall_now()));
}

void EventRecorder::record(EventSpec spec) {
  if (queue_.size() >= opt_.max_queue) {
    ++dropped_;
    ++dropped_unlogged_;
    return;
  }
  if (spec.first_timestamp == WallTime{}) spec.first_timestamp = rt_.clock().wall_now();
  if (spec.component.empty()) spec.component = opt_.component;
  if (spec.host.empty()) spec.host = opt_.host;
  queue_.push_back(std::move(spec));
  pump();
}

EventRecorder::Stats EventRecorder::stats() const {
  return {sent_.load(), failed_.load(), dropped_.load()};
}

void EventRecorder::pump() {
  if (in_flight_ || queue_.empty()) return;
  Instant now = rt_.clock().now();
  if (!bucket_->try_take(now)) {
    if (wake_armed_) return;
    wake_armed_ = true;
    std::weak_ptr<EventRecorder> weak = weak_from_this();
    rt_.post_at(bucket_->when_available(now), [weak] {
      if (auto self = weak.lock()) {
        self->wake_armed_ = false;
        self->pump();
      }
    });
    return;
  }
  EventSpec spec = std::move(queue_.front());
  queue_.pop_front();
  send(std::move(spec));
}

void EventRecorder::send(EventSpec spec) {
  auto body = encode_event(spec);
  if (!body) {
    ++dropped_;
    rt_.log(LogLevel::kWarning, "events", "event not sent: " + body.error().message());
    return pump();
  }
  auto client = client_.lock();
  if (!client) {
    ++dropped_;
    return;
  }
  if (dropped_unlogged_ > 0) {
    rt_.log(LogLevel::kWarning, "events",
            std::to_string(dropped_unlogged_) + " event(s) dropped: more than " +
                std::to_string(opt_.max_queue) + " waiting");
    dropped_unlogged_ = 0;
  }
  in_flight_ = true;
  std::string path = "/api/v1/namespaces/" + event_namespace(spec) + "/events";
  std::weak_ptr<EventRecorder> weak = weak_from_this();
  Runtime* rt = &rt_;
  auto shared = std::make_shared<EventSpec>(std::move(spec));
  // The client's thread holds only weak references; the answer is handled on
  // the I/O thread.
  client->request("POST", path, std::move(*body), opt_.timeout,
                  [weak, rt, shared](Result<HttpResponse> r) {
                    rt->post([weak, shared, r = std::move(r)] {
                      if (auto self = weak.lock()) self->finished(*shared, r);
                    });
                  },
                  Priority::kBackground);  // never ahead of lock traffic
}

void EventRecorder::finished(const EventSpec& spec, const Result<HttpResponse>& r) {
  in_flight_ = false;
  if (r.ok() && (r->status == 201 || r->status == 200)) {
    ++sent_;
  } else {
    ++failed_;
    RequestInfo info{"create", "", "events", event_namespace(spec), ""};
    Error e = r.ok() ? error_from_response(r->status, r->body, info) : r.error();
    bool forbidden = e.is(Code::kForbidden);
    if (!forbidden || !forbidden_logged_) {
      rt_.log(LogLevel::kWarning, "events",
              "event \"" + spec.message + "\" on " + spec.involved.kind + " " + spec.involved.ns + "/" +
                  spec.involved.name + " not recorded: " + e.to_string() +
                  (forbidden ? " (logged once; the election is not affected)" : ""));
    }
    if (forbidden) forbidden_logged_ = true;
  }
  pump();
}

namespace {

class EventingLock final : public Lock, public std::enable_shared_from_this<EventingLock> {
 public:
  EventingLock(std::shared_ptr<Lock> inner, ObjectRef object, std::shared_ptr<EventRecorder> recorder)
      : inner_(std::move(inner)), object_(std::move(object)), recorder_(std::move(recorder)) {}

  const std::string& describe() const override { return inner_->describe(); }
  void get(Completion<Versioned> done) override { inner_->get(remember(std::move(done))); }
  void create(const LeaseRecord& record, Completion<Versioned> done) override {
    inner_->create(record, remember(std::move(done)));
  }
  void update(const std::string& version, const LeaseRecord& record, Completion<Versioned> done) override {
    inner_->update(version, record, remember(std::move(done)));
  }
  bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
             std::function<void(bool healthy)> on_health) override {
    return inner_->watch(std::move(on_change), std::move(on_health));
  }
  void set_request_timeout(Duration timeout) override { inner_->set_request_timeout(timeout); }
  void leadership_changed(const std::string& identity, bool leading) override {
    inner_->leadership_changed(identity, leading);
    recorder_->leader_election(object_, identity, leading);
  }

 private:
  Completion<Versioned> remember(Completion<Versioned> done) {
    std::weak_ptr<EventingLock> weak = weak_from_this();
    return [weak, done = std::move(done)](Result<Versioned> r) {
      if (auto self = weak.lock(); self && r.ok()) self->object_.resource_version = r->version;
      done(std::move(r));
    };
  }

  std::shared_ptr<Lock> inner_;
  ObjectRef object_;  // I/O thread only
  std::shared_ptr<EventRecorder> recorder_;
};

}  // namespace

std::shared_ptr<Lock> with_events(std::shared_ptr<Lock> inner, ObjectRef object,
                                  std::shared_ptr<EventRecorder> recorder) {
  return std::make_shared<EventingLock>(std::move(inner), std::move(object), std::move(recorder));
}

}  // namespace leasehold::kube
