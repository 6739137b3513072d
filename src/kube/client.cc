#include "kube/client.h"

#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "backends/backends.h"

extern char** environ;

namespace leasehold::kube {
namespace {

constexpr size_t kMaxBody = 8 << 20;

struct Transfer {
  uint64_t id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string method, path, req_body, resp_body, line_buf;
  bool streaming = false;
  long timeout_ms = 0;
  bool too_large = false;
  std::function<void(Result<HttpResponse>)> done;
  std::function<void(std::string_view)> on_line;
};

class CurlClient final : public Client, public std::enable_shared_from_this<CurlClient> {
 public:
  explicit CurlClient(ClusterConfig c) : cfg_(std::move(c)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    thread_ = std::thread([this] { loop(); });
  }

  ~CurlClient() override {
    stop_ = true;
    curl_multi_wakeup(multi_);
    thread_.join();
    for (auto& [easy, t] : active_) {
      curl_multi_remove_handle(multi_, easy);
      finish(*t, Error::unavailable("client shut down"));
    }
    curl_multi_cleanup(multi_);
  }

  const ClusterConfig& config() const override { return cfg_; }

  void request(std::string method, std::string path, std::string body, Duration timeout,
               std::function<void(Result<HttpResponse>)> done) override {
    auto t = std::make_unique<Transfer>();
    t->method = std::move(method);
    t->path = std::move(path);
    t->req_body = std::move(body);
    t->timeout_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    t->done = std::move(done);
    enqueue(std::move(t));
  }

  uint64_t stream(std::string path, std::function<void(std::string_view)> on_line,
                  std::function<void(Result<HttpResponse>)> on_end) override {
    auto t = std::make_unique<Transfer>();
    t->method = "GET";
    t->path = std::move(path);
    t->streaming = true;
    t->on_line = std::move(on_line);
    t->done = std::move(on_end);
    return enqueue(std::move(t));
  }

  void cancel(uint64_t id) override {
    std::lock_guard<std::mutex> g(mu_);
    cancels_.push_back(id);
    curl_multi_wakeup(multi_);
  }

 private:
  uint64_t enqueue(std::unique_ptr<Transfer> t) {
    std::lock_guard<std::mutex> g(mu_);
    t->id = ++next_id_;
    uint64_t id = t->id;
    pending_.push_back(std::move(t));
    curl_multi_wakeup(multi_);
    return id;
  }

  static size_t on_data(char* ptr, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (t->streaming && status == 200) {
      t->line_buf.append(ptr, len);
      size_t pos;
      while ((pos = t->line_buf.find('\n')) != std::string::npos) {
        t->on_line(std::string_view(t->line_buf.data(), pos));
        t->line_buf.erase(0, pos + 1);
      }
      if (t->line_buf.size() > kMaxBody) {
        t->too_large = true;
        return 0;  // aborts the transfer
      }
      return len;
    }
    if (t->resp_body.size() + len > kMaxBody) {
      t->too_large = true;
      return 0;
    }
    t->resp_body.append(ptr, len);
    return len;
  }

  // Runs the exec plugin (on the client thread) and caches its token until
  // its expirationTimestamp. Errors are logged into the token: the request
  // then goes out without one and fails with a readable 401.
  std::string exec_token() {
    auto now = std::chrono::system_clock::now();
    if (!exec_token_.empty() && (!exec_expiry_ || now + std::chrono::seconds(1) < *exec_expiry_)) return exec_token_;
    exec_token_.clear();
    exec_expiry_.reset();
    const ExecConfig& e = *cfg_.exec;
    int out[2];
    if (::pipe(out) != 0) return {};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::vector<std::string> argv_s{e.command};
    argv_s.insert(argv_s.end(), e.args.begin(), e.args.end());
    std::vector<std::string> env_s;
    for (char** p = environ; *p; ++p) env_s.emplace_back(*p);
    for (const auto& [k, v] : e.env) env_s.push_back(k + "=" + v);
    env_s.push_back(R"(KUBERNETES_EXEC_INFO={"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}})");
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& a : env_s) envp.push_back(a.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, e.command.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      exec_error_ = "exec plugin " + e.command + ": " + std::strerror(rc);
      return {};
    }
    std::string text;
    char buf[4096];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{out[0], POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0 || text.size() > (1 << 20)) break;
      text.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    ::kill(pid, SIGKILL);  // no-op if it already exited
    int st = 0;
    ::waitpid(pid, &st, 0);
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("status") || !j["status"].is_object() ||
        !j["status"].contains("token") || !j["status"]["token"].is_string()) {
      exec_error_ = "exec plugin " + e.command + ": output is not an ExecCredential with status.token";
      return {};
    }
    exec_token_ = j["status"]["token"].get<std::string>();
    if (j["status"].contains("expirationTimestamp") && j["status"]["expirationTimestamp"].is_string()) {
      if (auto t = backends::parse_micro_time(j["status"]["expirationTimestamp"].get<std::string>())) exec_expiry_ = *t;
    }
    exec_error_.clear();
    return exec_token_;
  }

  std::string bearer() {
    if (cfg_.exec) return exec_token();
    if (!cfg_.token_file.empty()) {
      std::ifstream f(cfg_.token_file);
      std::stringstream ss;
      ss << f.rdbuf();
      std::string tok = ss.str();
      while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r' || tok.back() == ' ')) tok.pop_back();
      if (!tok.empty()) return tok;
    }
    return cfg_.token;
  }

  void start(std::unique_ptr<Transfer> t) {
    CURL* e = curl_easy_init();
    t->easy = e;
    std::string url = cfg_.server + t->path;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method.c_str());
    if (!t->req_body.empty() || t->method == "POST" || t->method == "PUT") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req_body.c_str());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(t->req_body.size()));
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlClient::on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_USERAGENT, "leasehold/" LEASEHOLD_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (!t->streaming && t->timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t->timeout_ms);
    if (t->streaming) {
      // A watch is long-lived; a dead peer is noticed by low-speed limits.
      curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    }
    if (!cfg_.ca_pem.empty()) {
      curl_blob blob{const_cast<char*>(cfg_.ca_pem.data()), cfg_.ca_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (cfg_.insecure_skip_tls_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!cfg_.client_cert_pem.empty()) {
      curl_blob cert{const_cast<char*>(cfg_.client_cert_pem.data()), cfg_.client_cert_pem.size(), CURL_BLOB_COPY};
      curl_blob key{const_cast<char*>(cfg_.client_key_pem.data()), cfg_.client_key_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
      curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    t->headers = curl_slist_append(t->headers, "Accept: application/json");
    if (!t->req_body.empty()) t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    if (std::string tok = bearer(); !tok.empty()) {
      t->headers = curl_slist_append(t->headers, ("Authorization: Bearer " + tok).c_str());
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_multi_add_handle(multi_, e);
    active_[e] = std::move(t);
  }

  void finish(Transfer& t, Result<HttpResponse> r) {
    auto done = std::move(t.done);
    curl_slist_free_all(t.headers);
    curl_easy_cleanup(t.easy);
    if (done) done(std::move(r));
  }

  void loop() {
    while (!stop_) {
      std::deque<std::unique_ptr<Transfer>> add;
      std::vector<uint64_t> cancels;
      {
        std::lock_guard<std::mutex> g(mu_);
        add.swap(pending_);
        cancels.swap(cancels_);
      }
      for (auto& t : add) start(std::move(t));
      for (uint64_t id : cancels) {
        for (auto it = active_.begin(); it != active_.end(); ++it) {
          if (it->second->id != id) continue;
          curl_multi_remove_handle(multi_, it->first);
          auto t = std::move(it->second);
          active_.erase(it);
          t->done = nullptr;  // cancelled: no callback
          finish(*t, Error::unavailable("cancelled"));
          break;
        }
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
      CURLMsg* msg;
      int left;
      while ((msg = curl_multi_info_read(multi_, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL* e = msg->easy_handle;
        CURLcode code = msg->data.result;
        curl_multi_remove_handle(multi_, e);
        auto it = active_.find(e);
        if (it == active_.end()) continue;
        auto t = std::move(it->second);
        active_.erase(it);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (status == 401 && cfg_.exec) exec_token_.clear();  // run the plugin again next time
        std::string what = t->method + " " + cfg_.server + t->path;
        if (status == 401 && !exec_error_.empty()) {
          finish(*t, Error(Code::kUnauthorized, what + ": " + exec_error_));
          continue;
        }
        if (t->too_large) {
          finish(*t, Error::invalid(what + ": response larger than " + std::to_string(kMaxBody) + " bytes"));
        } else if (code == CURLE_OK || (status != 0 && code == CURLE_WRITE_ERROR)) {
          finish(*t, HttpResponse{status, std::move(t->resp_body)});
        } else if (code == CURLE_OPERATION_TIMEDOUT) {
          finish(*t, Error::timeout(what + ": " + curl_easy_strerror(code)));
        } else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
                   code == CURLE_SSL_CERTPROBLEM) {
          finish(*t, Error(Code::kUnauthorized, what + ": TLS verification failed: " + curl_easy_strerror(code)));
        } else {
          finish(*t, Error::unavailable(what + ": " + curl_easy_strerror(code)));
        }
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
  }

  ClusterConfig cfg_;
  CURLM* multi_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::deque<std::unique_ptr<Transfer>> pending_;  // GUARDED_BY(mu_)
  std::vector<uint64_t> cancels_;                 // GUARDED_BY(mu_)
  uint64_t next_id_ = 0;                          // GUARDED_BY(mu_)
  std::map<CURL*, std::unique_ptr<Transfer>> active_;  // loop thread only
  // Exec plugin state, loop thread only.
  std::string exec_token_;
  std::optional<WallTime> exec_expiry_;
  std::string exec_error_;
};

}  // namespace

Result<std::shared_ptr<Client>> Client::create(ClusterConfig config) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return Error::invalid(config.source + ": server \"" + config.server + "\" is not an http(s) URL");
  }
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  return std::shared_ptr<Client>(std::make_shared<CurlClient>(std::move(config)));
}

}  // namespace leasehold::kube
