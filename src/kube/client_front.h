// Internal: what both kube::Client transports share in front of their loop
// thread (client.cc's libcurl, h2_client.cc's own HTTP/2): the Client calls
// that queue a transfer or a cancel, the request ids, the budget's queues,
// the counters behind stats(), the checks a transfer passes before it is
// sent (its timeout, the credentials), and failing what is still queued when
// the client ends. The transport supplies the loop: wake_loop(), finish(),
// and starting a transfer.
//
// Threading: the Client calls (request, stream, stream_post, watch_leases,
// cancel, stats, config, lease_format) are safe from any thread; they touch
// only the queue under its mutex and wake the loop, once per emptied queue,
// at the end of the caller's core::WakeBatch. Everything protected is for
// the transport's loop thread, except the constructor and the destructor's
// helpers (stop_wakes, fail_queued), which the transport's own constructor
// and destructor call.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/wake_batch.h"
#include "kube/client.h"
#include "kube/credentials.h"
#include "kube/rate_limiter.h"
#include "kube/wire_format.h"

namespace leasehold::kube {

// The largest answer a client takes: a request's body, one line of a JSON
// stream, or one frame of a protobuf stream.
inline constexpr size_t kMaxBody = 8 << 20;

// The fields of a transfer that the front fills and both transports read,
// and what is made of its answer's body; each transport's transfer derives
// from it and adds its own.
struct TransferHead {
  uint64_t id = 0;  // from the front's counter, never 0; 0: the transport's own (a probe)
  std::string method, path, req_body;
  bool streaming = false;  // stream(), stream_post(), watch_leases()
  Media media = Media::kJson;  // what it was made with (streams: kJson, or kLease for watch_leases)
  bool lease() const { return media != Media::kJson; }            // kLease or kLeaseRenewal
  bool patient() const { return media == Media::kLeaseRenewal; }  // its answer may be read late (h2_client.h)
  Priority priority = Priority::kLease;
  Instant enqueued{};
  Instant deadline = Instant::max();  // streams: none
  std::function<void(Result<HttpResponse>)> done;  // a stream's on_end
  std::function<void(std::string_view, WireFormat)> on_frame;  // streams
  std::function<void()> on_open;  // streams: once, when a 200's headers are in

  // The answer. A stream answered 200 gets stream_format (from its
  // Content-Type) before its body arrives; its body goes to on_frame, the
  // body of any other answer to resp_body.
  std::optional<WireFormat> stream_format;
  std::string resp_body;
  std::string too_large;  // why the answer was refused, once it was ("" until then)

  // Takes the next bytes of the answer's body. False when the answer must
  // end (too_large says why): a body, a line or a frame over kMaxBody.
  bool take_body(std::string_view bytes) {
    if (!stream_format) {
      if (resp_body.size() + bytes.size() > kMaxBody) {
        too_large = "response larger than " + std::to_string(kMaxBody) + " bytes";
        return false;
      }
      resp_body.append(bytes);
      return true;
    }
    if (*stream_format == WireFormat::kProtobuf) {
      frames_.append(bytes);
      std::string_view frame;
      uint64_t announced = 0;
      for (;;) {
        auto next = frames_.next(frame, announced);
        if (next == LengthPrefixedFrames::Next::kNeedMore) return true;
        if (next == LengthPrefixedFrames::Next::kTooLarge) {
          too_large = "protobuf watch frame announces " + std::to_string(announced) + " bytes, more than " +
                      std::to_string(kMaxBody);
          return false;
        }
        on_frame(frame, WireFormat::kProtobuf);
      }
    }
    line_buf_.append(bytes);
    size_t start = 0, pos;
    while ((pos = line_buf_.find('\n', start)) != std::string::npos) {
      on_frame(std::string_view(line_buf_).substr(start, pos - start), WireFormat::kJson);
      start = pos + 1;
    }
    line_buf_.erase(0, start);
    if (line_buf_.size() > kMaxBody) {
      too_large = "response larger than " + std::to_string(kMaxBody) + " bytes";
      return false;
    }
    return true;
  }

 private:
  std::string line_buf_;                   // a JSON stream's partial line
  LengthPrefixedFrames frames_{kMaxBody};  // a protobuf stream's partial frame
};

template <class T>
class ClientFront : public Client {
  static_assert(std::is_base_of_v<TransferHead, T>);

 public:
  using TransferPtr = std::unique_ptr<T>;

  const ClusterConfig& config() const final { return cfg_; }
  WireFormat lease_format() const final { return lease_format_; }

  void request(std::string method, std::string path, std::string body, Duration timeout,
               std::function<void(Result<HttpResponse>)> done, Priority priority, Media media) final {
    auto t = make(std::move(method), std::move(path), std::move(body), media, priority);
    if (timeout > Duration::zero()) t->deadline = t->enqueued + timeout;
    t->done = std::move(done);
    enqueue(std::move(t));
  }

  uint64_t stream(std::string path, std::function<void(std::string_view)> on_line,
                  std::function<void(Result<HttpResponse>)> on_end, Priority priority,
                  std::function<void()> on_open) final {
    return open_stream("GET", std::move(path), "", Media::kJson, lines(std::move(on_line)), std::move(on_end), priority,
                       std::move(on_open));
  }

  uint64_t stream_post(std::string path, std::string body, std::function<void(std::string_view)> on_line,
                       std::function<void(Result<HttpResponse>)> on_end, Priority priority,
                       std::function<void()> on_open) final {
    return open_stream("POST", std::move(path), std::move(body), Media::kJson, lines(std::move(on_line)),
                       std::move(on_end), priority, std::move(on_open));
  }

  uint64_t watch_leases(std::string path, std::function<void(std::string_view, WireFormat)> on_frame,
                        std::function<void(Result<HttpResponse>)> on_end, Priority priority,
                        std::function<void()> on_open) final {
    return open_stream("GET", std::move(path), "", Media::kLease, std::move(on_frame), std::move(on_end), priority,
                       std::move(on_open));
  }

  void cancel(uint64_t id) final {
    bool first;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!closing_.empty()) return;
      first = pending_.empty() && cancels_.empty();
      cancels_.push_back(id);
    }
    if (first) core::request_wake(this, &ClientFront::wake);
  }

  ClientStats stats() const override {
    ClientStats s;
    s.started = started_;
    s.completed = completed_;
    s.connections = connections_;
    s.http2 = http2_;
    s.waited = waited_;
    s.expired_in_queue = expired_in_queue_;
    s.queued_lease = queued_lease_;
    s.queued_background = queued_background_;
    s.probes = probes_;
    s.retired = retired_;
    s.protobuf_sent = protobuf_sent_;
    s.protobuf_received = protobuf_received_;
    return s;
  }

 protected:
  ClientFront(ClusterConfig c, ClientOptions& o)
      : cfg_(std::move(c)),
        lease_format_(o.lease_format),
        clock_(o.clock ? o.clock : &real_clock_),
        creds_(cfg_, *clock_, std::move(o.authorization), [this] { wake_loop(); }),
        limiter_(o.rate, clock_->now()),
        server_for_messages_(redact_url(cfg_.server)) {}

  // Wakes the loop thread from any thread; must not block.
  virtual void wake_loop() = 0;
  // Completes a transfer: calls its `done` (unless cleared) and counts it.
  virtual void finish(T& t, Result<HttpResponse> r) = 0;

  // The transport's destructor calls this first: no wake recorded on its
  // thread runs after it.
  void stop_wakes() { core::WakeBatch::forget(this); }

  // The transport's destructor calls this once its loop thread has ended:
  // the exec plugin's thread is ended, and every transfer still queued,
  // waiting for the budget or for the exec plugin, fails with Unavailable
  // naming `why`; so does every call made from then on (a callback's
  // request, say), at once.
  void fail_queued(const std::string& why) {
    creds_.shutdown();
    {
      std::lock_guard<std::mutex> g(mu_);
      closing_ = why;
    }
    for (auto& t : exec_waiting_) finish(*t, Error::unavailable(why));
    exec_waiting_.clear();
    for (auto& t : limiter_.take_all()) finish(*t, Error::unavailable(why));
    std::deque<TransferPtr> pending;
    {
      std::lock_guard<std::mutex> g(mu_);
      pending.swap(pending_);
    }
    for (auto& t : pending) finish(*t, Error::unavailable(why));
    stop_wakes();  // a wake a callback above recorded on this thread
  }

  // The start of a loop round: moves what the Client calls queued into the
  // budget's queues, starts (start(TransferPtr&, Instant)) the transfers that
  // waited for an exec plugin that has now answered, and returns the ids to
  // cancel.
  template <class Start>
  std::vector<uint64_t> take_queued(Instant now, Start&& start) {
    std::deque<TransferPtr> add;
    std::vector<uint64_t> cancels;
    {
      std::lock_guard<std::mutex> g(mu_);
      add.swap(pending_);
      cancels.swap(cancels_);
    }
    if (creds_.take_plugin_answer(now)) {
      std::deque<TransferPtr> waiting;
      waiting.swap(exec_waiting_);
      for (auto& t : waiting) start(t, now);
    }
    for (auto& t : add) {
      Priority p = t->priority;
      limiter_.push(p, std::move(t));
    }
    return cancels;
  }

  // The checks before a transfer is sent. Returns the credentials to send
  // it with; or nullopt, when it is not sent now: either its timeout passed
  // before it could be sent (counted in expired_in_queue) or the
  // credentials failed (Unauthorized), and it was finished with that error
  // (`owned` still holds it), or it needs the exec plugin's answer and waits
  // for it, its token spent (`owned` is empty; take_queued starts it later).
  std::optional<Credentials::Pick> admit(TransferPtr& owned, Instant now) {
    T& t = *owned;
    if (now >= t.deadline) {
      ++expired_in_queue_;
      finish(t, Error::timeout(what(t) + ": timed out after waiting " + std::to_string(ms_of(now - t.enqueued)) +
                               " ms before it could be sent (for the client's request budget, kube_qps, or the "
                               "exec credential plugin)"));
      return std::nullopt;
    }
    Credentials::Pick pick = creds_.pick(now);
    if (pick.state == Credentials::Pick::State::kFailed) {
      finish(t, Error(Code::kUnauthorized, what(t) + ": " + pick.error->message()));
      return std::nullopt;
    }
    if (pick.state == Credentials::Pick::State::kWaitForPlugin) {
      exec_waiting_.push_back(std::move(owned));
      return std::nullopt;
    }
    return pick;
  }

  // Ends a transfer that has not been handed to the transport yet (in the
  // budget's queues or waiting for the plugin) without its callbacks. False
  // when none with this id waits there.
  bool cancel_queued(uint64_t id) {
    bool found = false;
    for (auto& t : limiter_.remove_if([&](const TransferPtr& t) { return t->id == id; })) {
      t->done = nullptr;
      finish(*t, Error::unavailable("cancelled"));
      found = true;
    }
    for (auto it = exec_waiting_.begin(); it != exec_waiting_.end(); ++it) {
      if ((*it)->id != id) continue;
      (*it)->done = nullptr;
      finish(**it, Error::unavailable("cancelled"));
      exec_waiting_.erase(it);
      return true;
    }
    return found;
  }

  // Fails, through start(), the queued transfers whose timeout passed.
  template <class Start>
  void expire_queued(Instant now, Start&& start) {
    for (auto& t : limiter_.remove_if([&](const TransferPtr& t) { return now >= t->deadline; })) start(t, now);
  }

  // "METHOD https://server/path", for error messages (never credentials).
  std::string what(const TransferHead& t) const { return t.method + " " + server_for_messages_ + t.path; }

  static long ms_of(Duration d) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  }

  ClusterConfig cfg_;
  const WireFormat lease_format_;
  RealClock real_clock_;
  Clock* const clock_;
  Credentials creds_;
  // Loop thread only:
  PriorityLimiter<TransferPtr> limiter_;
  const std::string server_for_messages_;
  // Counters (written by the loop thread, read by stats()).
  std::atomic<uint64_t> started_{0}, completed_{0}, connections_{0}, http2_{0}, waited_{0}, expired_in_queue_{0},
      queued_lease_{0}, queued_background_{0}, probes_{0}, retired_{0}, protobuf_sent_{0}, protobuf_received_{0};

 private:
  static void wake(void* self) { static_cast<ClientFront*>(self)->wake_loop(); }

  static std::function<void(std::string_view, WireFormat)> lines(std::function<void(std::string_view)> on_line) {
    return [f = std::move(on_line)](std::string_view line, WireFormat) { f(line); };
  }

  TransferPtr make(std::string method, std::string path, std::string body, Media media, Priority priority) {
    auto t = std::make_unique<T>();
    t->media = media;
    t->method = std::move(method);
    t->path = std::move(path);
    t->req_body = std::move(body);
    t->priority = priority;
    t->enqueued = clock_->now();
    return t;
  }

  uint64_t open_stream(std::string method, std::string path, std::string body, Media media,
                       std::function<void(std::string_view, WireFormat)> on_frame,
                       std::function<void(Result<HttpResponse>)> on_end, Priority priority,
                       std::function<void()> on_open) {
    auto t = make(std::move(method), std::move(path), std::move(body), media, priority);
    t->streaming = true;
    t->on_open = std::move(on_open);
    t->on_frame = std::move(on_frame);
    t->done = std::move(on_end);
    return enqueue(std::move(t));
  }

  // The loop takes pending_ and cancels_ whole at the start of every round
  // (take_queued), so only the first entry after that needs to wake it; the
  // wake waits for the end of the caller's core::WakeBatch (the I/O thread
  // queues a tick's renewals with one wake-up).
  uint64_t enqueue(TransferPtr t) {
    bool first = false;
    uint64_t id;
    std::string closing;
    {
      std::lock_guard<std::mutex> g(mu_);
      t->id = ++next_id_;
      id = t->id;
      closing = closing_;
      if (closing.empty()) {
        first = pending_.empty() && cancels_.empty();
        pending_.push_back(std::move(t));
      }
    }
    if (!closing.empty()) {
      ++completed_;
      if (t->done) t->done(Error::unavailable(closing));
      return id;
    }
    if (first) core::request_wake(this, &ClientFront::wake);
    return id;
  }

  std::mutex mu_;
  std::deque<TransferPtr> pending_;  // GUARDED_BY(mu_)
  std::vector<uint64_t> cancels_;    // GUARDED_BY(mu_)
  uint64_t next_id_ = 0;             // GUARDED_BY(mu_)
  std::string closing_;              // GUARDED_BY(mu_); fail_queued's reason, once called
  // Loop thread only:
  std::deque<TransferPtr> exec_waiting_;  // waiting for the exec plugin's answer, token spent
};

}  // namespace leasehold::kube
