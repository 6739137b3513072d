// Internal: the request path every Kubernetes lock shares.
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

#include <functional>
#include <memory>
#include <string>

#include "kube/client.h"
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

}  // namespace leasehold::backends
