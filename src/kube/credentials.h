// Internal to the kube::Client transports: what each request authenticates
// with (kubeconfig token, token file, exec plugin, client certificate, or
// ClientOptions::authorization), decided per request.
//
// A token file (bound service-account tokens rotate) is read again whenever
// stat(2) shows it changed (another file, size, modification or status
// change time), after a 401, and for every request while it changed under
// 2 s ago (a file rewritten within its timestamps' granularity would
// otherwise look unchanged); otherwise its last contents are used. An exec plugin's token or client certificate is cached until its
// expirationTimestamp (less 1 s) and fetched again after a 401. The plugin
// runs on a short-lived thread of its own (one run at a time, at most 10 s):
// only requests that need its answer wait for it. A failed run is reported to
// the requests of the next second without running it again. No credential
// ever appears in an error message.
//
// Threading: the client's loop thread calls pick(), take_plugin_answer() and
// unauthorized(); shutdown() and the destructor run on the thread that ends
// the client, after that loop has ended. `wake` is called from the plugin's
// thread when its answer is ready; the loop then calls take_plugin_answer().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kube/config.h"
#include "leasehold/clock.h"
#include "leasehold/error.h"

namespace leasehold::kube {

class Credentials {
 public:
  Credentials(const ClusterConfig& config, Clock& clock, std::function<std::string()> authorization,
              std::function<void()> wake);
  ~Credentials();  // shutdown()
  // Kills a plugin still running and waits for its thread; after it, `wake`
  // is never called. Call it before whatever `wake` touches goes.
  void shutdown();
  Credentials(const Credentials&) = delete;
  Credentials& operator=(const Credentials&) = delete;

  struct Pick {
    enum class State { kReady, kWaitForPlugin, kFailed } state = State::kReady;
    std::string authorization;  // the whole Authorization header value ("" sends none)
    // The client certificate and key (PEM) for this request's connection;
    // both empty when none. They point into the config or the cached
    // credential and stay valid until the next call on this object.
    const std::string* cert = nullptr;
    const std::string* key = nullptr;
    std::optional<Error> error;  // kFailed: Unauthorized, naming the plugin
  };
  // What the next request sends. kWaitForPlugin: the plugin was started (or
  // is running); hold the request until take_plugin_answer() returns true.
  Pick pick(Instant now);

  // Takes a finished plugin run's answer, if one came since the last call.
  // True when it did: held requests may call pick() again.
  bool take_plugin_answer(Instant now);

  // A request was answered 401: the plugin runs again for the next request,
  // and the token file is read again.
  void unauthorized();

  // For tests: how many times the token file was read, and how recent a
  // change makes it read for every request (default 2 s).
  uint64_t token_file_reads() const { return file_reads_; }
  void set_token_file_settle(Duration d) { file_settle_ = d; }

 private:
  const ExecCredential* cached() const;
  void begin_plugin();
  std::string token_from_file_or_config();

  const ClusterConfig& cfg_;
  Clock& clock_;
  std::function<std::string()> authorization_;
  std::function<void()> wake_;
  // The token file as last read, and what stat(2) said of it then.
  struct FileToken {
    bool reusable = false;  // read, and its modification time was then 2 s old or more
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    timespec ctime{};
    std::string token;
  } file_;
  uint64_t file_reads_ = 0;
  Duration file_settle_ = std::chrono::seconds(2);
  std::optional<ExecCredential> cred_;
  std::optional<Error> error_;
  Instant retry_at_{};
  bool running_ = false;
  std::thread thread_;
  std::atomic<pid_t> pid_{-1};
  std::mutex mu_;
  std::optional<Result<ExecCredential>> answer_;  // GUARDED_BY(mu_)
};

}  // namespace leasehold::kube
