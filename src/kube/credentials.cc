#include "kube/credentials.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <fstream>
#include <sstream>

namespace leasehold::kube {
namespace {
constexpr auto kPluginTimeout = std::chrono::seconds(10);
constexpr auto kRetryAfterFailure = std::chrono::seconds(1);
constexpr auto kExpirySlack = std::chrono::seconds(1);
}  // namespace

Credentials::Credentials(const ClusterConfig& config, Clock& clock, std::function<std::string()> authorization,
                         std::function<void()> wake)
    : cfg_(config), clock_(clock), authorization_(std::move(authorization)), wake_(std::move(wake)) {}

Credentials::~Credentials() { shutdown(); }

void Credentials::shutdown() {
  if (thread_.joinable()) {
    if (pid_t pid = pid_.load(); pid > 0) ::kill(pid, SIGKILL);
    thread_.join();
  }
}

const ExecCredential* Credentials::cached() const {
  if (!cred_) return nullptr;
  if (cred_->expiry && clock_.wall_now() + kExpirySlack >= *cred_->expiry) return nullptr;
  return &*cred_;
}

std::string Credentials::token_from_file_or_config() {
  if (cfg_.token_file.empty()) return cfg_.token;
  struct stat st;
  if (::stat(cfg_.token_file.c_str(), &st) != 0) {
    file_.reusable = false;
    return cfg_.token;
  }
  auto same = [](const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; };
  if (file_.reusable && st.st_dev == file_.dev && st.st_ino == file_.ino && st.st_size == file_.size &&
      same(st.st_mtim, file_.mtime) && same(st.st_ctim, file_.ctime)) {
    return file_.token.empty() ? cfg_.token : file_.token;
  }
  ++file_reads_;
  std::ifstream f(cfg_.token_file);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string tok = ss.str();
  while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r' || tok.back() == ' ')) tok.pop_back();
  // File times are the real clock's, whatever clock the client runs on.
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  // A file changed this recently may change again within its timestamps'
  // granularity: read for every request until it has settled. Its status
  // change time is its last change: every write, and every setting of its
  // modification time, moves it.
  auto age = std::chrono::seconds(now.tv_sec - st.st_ctim.tv_sec) +
             std::chrono::nanoseconds(now.tv_nsec - st.st_ctim.tv_nsec);
  file_.reusable = f.is_open() && age >= file_settle_;
  file_.dev = st.st_dev;
  file_.ino = st.st_ino;
  file_.size = st.st_size;
  file_.mtime = st.st_mtim;
  file_.ctime = st.st_ctim;
  file_.token = tok;
  return tok.empty() ? cfg_.token : tok;
}

Credentials::Pick Credentials::pick(Instant now) {
  Pick p;
  p.cert = &cfg_.client_cert_pem;
  p.key = &cfg_.client_key_pem;
  std::string token;
  if (cfg_.exec) {
    const ExecCredential* cred = cached();
    if (!cred && error_ && now < retry_at_) {
      p.state = Pick::State::kFailed;
      p.error = *error_;
      return p;
    }
    if (!cred) {
      begin_plugin();
      p.state = Pick::State::kWaitForPlugin;
      return p;
    }
    token = cred->token;
    if (!cred->client_cert_pem.empty()) {
      p.cert = &cred->client_cert_pem;
      p.key = &cred->client_key_pem;
    }
  } else if (!authorization_) {
    token = token_from_file_or_config();
  }
  if (authorization_) {
    p.authorization = authorization_();
  } else if (!token.empty()) {
    p.authorization = "Bearer " + token;
  }
  return p;
}

void Credentials::begin_plugin() {
  if (running_) return;
  if (thread_.joinable()) thread_.join();
  running_ = true;
  thread_ = std::thread([this] {
    auto r = run_exec_plugin(*cfg_.exec, clock_, kPluginTimeout, pid_);
    {
      std::lock_guard<std::mutex> g(mu_);
      answer_ = std::move(r);
    }
    wake_();
  });
}

bool Credentials::take_plugin_answer(Instant now) {
  std::optional<Result<ExecCredential>> r;
  {
    std::lock_guard<std::mutex> g(mu_);
    r.swap(answer_);
  }
  if (!r) return false;
  thread_.join();
  running_ = false;
  if (*r) {
    cred_ = std::move(**r);
    error_.reset();
  } else {
    cred_.reset();
    error_ = r->error();  // remembered so that a broken plugin is not run per request
    retry_at_ = now + kRetryAfterFailure;
  }
  return true;
}

void Credentials::unauthorized() {
  if (cfg_.exec) cred_.reset();
  file_.reusable = false;
}

}  // namespace leasehold::kube
