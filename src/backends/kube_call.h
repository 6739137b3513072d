// Internal: the request path and the watch's end every Kubernetes lock shares.
//
// kube_lock_call sends one request through the Runtime's client and hands
// the answer to `interpret(lock, response)` on the Runtime's I/O thread, then
// to `done`; `on_answer`, if given, sees the response first, on the client's
// thread (it must touch nothing of the lock's). The client's thread holds
// only a weak reference to the lock: it
// must never drop the last reference to a lock (whose destruction could end
// the client on its own thread). A lock already gone answers Unavailable.
//
// Threading: call on the Runtime's I/O thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "kube/client.h"
#include "kube/lease_codec.h"
#include "leasehold/lock.h"
#include "leasehold/runtime.h"

namespace leasehold::backends {

template <class L, class Interpret>
void kube_lock_call(Runtime& rt, const std::weak_ptr<kube::Client>& client_ref, std::weak_ptr<L> weak,
                    const std::string& url, const char* method, const std::string& path, std::string body,
                    Duration timeout, Interpret interpret, Completion<Versioned> done,
                    kube::Media media = kube::Media::kJson,
                    std::function<void(const Result<kube::HttpResponse>&)> on_answer = {}) {
  auto client = client_ref.lock();
  if (!client) {
    Error e = Error::unavailable(url + ": runtime shut down");
    if (on_answer) on_answer(e);
    rt.post([done = std::move(done), e] { done(e); });
    return;
  }
  Runtime* r = &rt;
  auto shared_done = std::make_shared<Completion<Versioned>>(std::move(done));
  client->request(method, path, std::move(body), timeout,
                  [weak, r, interpret, shared_done, on_answer](Result<kube::HttpResponse> resp) {
                    if (on_answer) on_answer(resp);  // the client's thread
                    r->post([weak, interpret, shared_done, resp = std::move(resp)] {
                      auto self = weak.lock();
                      if (!self) return (*shared_done)(Error::unavailable("lock closed"));
                      (*shared_done)(interpret(*self, resp));
                    });
                  },
                  kube::Priority::kLease, media);
}

// The per-lock watch's retry after its stream ended (I/O thread only).
struct WatchRetry {
  uint64_t gen = 0;           // of the retry armed last: a posted retry of an older one does nothing
  std::optional<Instant> at;  // when the armed retry fires; unset: none armed
  // The stream that ended was ended by no HTTP answer (no server reached,
  // or the connection lost).
  bool unreachable = false;
};

// What a per-lock watch of either Kubernetes lock does when its stream ends,
// on the I/O thread: reports the watch unhealthy, forgets a resourceVersion
// the server called expired (410), logs any other refusal, and starts the
// watch again after the lock's jittered, doubling backoff (at most 30 s), or
// sooner (kube_server_answered).
// L has watch_id_, on_health_, watch_rv_, watch_retry_, rt_, url_, backoff_,
// rng_, info(verb) and start_watch().
template <class L>
void kube_watch_ended(L& self, const Result<kube::HttpResponse>& end) {
  self.watch_id_ = 0;
  if (self.on_health_) self.on_health_(false);
  if (end.ok() && end->status == 410) self.watch_rv_.clear();
  if (end.ok() && end->status != 200) {
    self.rt_.log(LogLevel::kWarning, self.url_,
                 "watch: " + kube::error_from_response(end->status, end->body, self.info("watch")).to_string());
  }
  std::uniform_real_distribution<double> jitter(1.0, 1.5);
  auto delay = std::chrono::duration_cast<Duration>(self.backoff_ * jitter(self.rng_));
  self.backoff_ = std::min<Duration>(self.backoff_ * 2, std::chrono::seconds(30));
  self.watch_retry_.unreachable = !end.ok();
  self.watch_retry_.at = self.rt_.clock().now() + delay;
  const uint64_t gen = ++self.watch_retry_.gen;
  std::weak_ptr<L> w = self.shared_from_this();
  self.rt_.post([w, gen] {
    auto s = w.lock();
    if (!s || s->watch_retry_.gen != gen || s->watch_id_) return;
    s->watch_retry_.at.reset();
    s->start_watch();
  }, delay);
}

// A request of the lock got an HTTP answer (any status), on the I/O thread.
// If its watch ended by no answer (no server reached, or the connection
// lost) and waits more than a second yet to start again, kube-apiserver
// answers again (after an outage, most often): the watch starts now, with
// the first backoff. One that the server ended with an answer (a 403, a
// 500) keeps its backoff, or every lock answer would bring a refused watch
// back. L as for kube_watch_ended.
template <class L>
void kube_server_answered(L& self) {
  WatchRetry& r = self.watch_retry_;
  if (self.watch_id_ || !r.at || !r.unreachable || *r.at <= self.rt_.clock().now() + std::chrono::seconds(1)) {
    return;
  }
  r.at.reset();
  ++r.gen;
  self.backoff_ = std::chrono::milliseconds(500);
  self.start_watch();
}

}  // namespace leasehold::backends
