// Internal: the request path every Kubernetes lock shares.
//
// kube_lock_call sends one request through the Runtime's client and hands
// the answer to `interpret(lock, response)` on the Runtime's I/O thread, then
// to `done`. The client's thread holds only a weak reference to the lock: it
// must never drop the last reference to a lock (whose destruction could end
// the client on its own thread). A lock already gone answers Unavailable.
//
// Threading: call on the Runtime's I/O thread.
#pragma once

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
                    kube::Media media = kube::Media::kJson) {
  auto client = client_ref.lock();
  if (!client) {
    rt.post([done = std::move(done), url] { done(Error::unavailable(url + ": runtime shut down")); });
    return;
  }
  Runtime* r = &rt;
  auto shared_done = std::make_shared<Completion<Versioned>>(std::move(done));
  client->request(method, path, std::move(body), timeout,
                  [weak, r, interpret, shared_done](Result<kube::HttpResponse> resp) {
                    r->post([weak, interpret, shared_done, resp = std::move(resp)] {
                      auto self = weak.lock();
                      if (!self) return (*shared_done)(Error::unavailable("lock closed"));
                      (*shared_done)(interpret(*self, resp));
                    });
                  },
                  kube::Priority::kLease, media);
}

}  // namespace leasehold::backends
