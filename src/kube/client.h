// Internal: a thin HTTPS client for the Kubernetes API on libcurl.
//
// One thread per client runs a curl multi handle that drives every request
// and watch stream of the process (HTTP/2 where offered, connections reused);
// there is no thread per request or per elector. Completions run on that
// thread and must be short (the lock backends post them to the Runtime).
//
// Threading: request/stream/cancel are safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kube/config.h"
#include "leasehold/clock.h"
#include "leasehold/error.h"

namespace leasehold::kube {

struct HttpResponse {
  long status = 0;
  std::string body;
};

class Client {
 public:
  static Result<std::shared_ptr<Client>> create(ClusterConfig config);
  virtual ~Client() = default;
  virtual const ClusterConfig& config() const = 0;
  // One request; `done` gets the response for any HTTP status, or an error
  // (Timeout, Unavailable) when no response came.
  virtual void request(std::string method, std::string path, std::string body, Duration timeout,
                       std::function<void(Result<HttpResponse>)> done) = 0;
  // A streaming GET (watch): `on_line` for each newline-terminated line of a
  // 200 response; `on_end` once, with the HTTP error or transport failure.
  // Returns an id for cancel().
  virtual uint64_t stream(std::string path, std::function<void(std::string_view)> on_line,
                          std::function<void(Result<HttpResponse>)> on_end) = 0;
  virtual void cancel(uint64_t id) = 0;
};

}  // namespace leasehold::kube
