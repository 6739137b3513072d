// Leader-for-life (see leasehold/for_life.h): a ConfigMap owned by the
// leader's Pod. Blocking calls on the caller's thread, over the Runtime's
// Kubernetes client; one watch on the ConfigMap wakes the waiter early and,
// once leading, reports a lost lock.
#include "leasehold/for_life.h"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>

#include "core/runtime_access.h"
#include "kube/client.h"
#include "kube/lease_codec.h"
#include "kube/objects.h"

namespace leasehold {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string env_or(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Result<kube::HttpResponse> sync(kube::Client& c, const std::string& method, const std::string& path,
                                std::string body, Duration timeout) {
  auto p = std::make_shared<std::promise<Result<kube::HttpResponse>>>();
  auto f = p->get_future();
  c.request(method, path, std::move(body), timeout,
            [p](Result<kube::HttpResponse> r) { p->set_value(std::move(r)); }, kube::Priority::kBackground);
  return f.get();  // the client always completes, at the latest at its timeout
}

// What we need of a ConfigMap lock.
struct LockObject {
  std::string uid, resource_version;
  std::string owner_pod, owner_uid;  // the first ownerReference of kind Pod
};

Result<LockObject> decode_lock(std::string_view body, const std::string& what) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::invalid(what + ": response is not a JSON object");
  LockObject o;
  const json& md = j.value("metadata", json::object());
  if (!md.is_object()) return Error::invalid(what + ": metadata is not an object");
  if (md.contains("uid") && md["uid"].is_string()) o.uid = md["uid"];
  if (md.contains("resourceVersion") && md["resourceVersion"].is_string()) o.resource_version = md["resourceVersion"];
  if (md.contains("ownerReferences") && md["ownerReferences"].is_array()) {
    for (const json& r : md["ownerReferences"]) {
      if (!r.is_object() || r.value("kind", "") != "Pod" || r.value("apiVersion", "") != "v1") continue;
      o.owner_pod = r.value("name", "");
      o.owner_uid = r.value("uid", "");
      break;
    }
  }
  return o;
}

class Leader final : public ForLifeLeader {
 public:
  Leader(Runtime& rt, std::weak_ptr<kube::Client> client, std::string ns, std::string name, std::string pod,
         std::string pod_uid, std::string lock_uid, std::string lock_rv, Duration timeout)
      : w_(std::make_shared<Watcher>()), pod_(std::move(pod)), lock_uid_(std::move(lock_uid)), timeout_(timeout) {
    w_->rt = &rt;
    w_->client = std::move(client);
    w_->ns = std::move(ns);
    w_->name = std::move(name);
    w_->pod_uid = std::move(pod_uid);
    w_->rv = std::move(lock_rv);
    w_->desc = w_->ns + "/" + w_->name;
    Watcher::start(w_);
  }
  ~Leader() override {
    std::lock_guard<std::mutex> g(w_->mu);
    w_->closed = true;
    if (auto c = w_->client.lock(); c && w_->id) c->cancel(w_->id);
  }

  std::stop_token lost() const override { return w_->lost.get_token(); }
  const std::string& lock() const override { return w_->desc; }
  const std::string& pod() const override { return pod_; }

  Result<void> release() override {
    auto c = w_->client.lock();
    if (!c) return Error::unavailable("leader-for-life " + w_->desc + ": runtime shut down");
    json opts = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"preconditions", {{"uid", lock_uid_}}}};
    auto r = sync(*c, "DELETE", "/api/v1/namespaces/" + w_->ns + "/configmaps/" + w_->name, opts.dump(), timeout_);
    if (!r) return r.error();
    if (r->status == 200 || r->status == 202 || r->status == 404) return {};
    // 409: the uid precondition failed: the lock is someone else's now.
    return kube::error_from_response(r->status, r->body, {"delete", "", "configmaps", w_->ns, w_->name});
  }

 private:
  // The watch on our lock, resumed from the last resourceVersion after a
  // disconnect. Shared with the client's callbacks, which hold it weakly.
  struct Watcher {
    Runtime* rt = nullptr;
    std::weak_ptr<kube::Client> client;
    std::string ns, name, pod_uid, desc;
    std::stop_source lost;
    std::mutex mu;
    std::string rv;     // GUARDED_BY(mu)
    uint64_t id = 0;    // GUARDED_BY(mu)
    bool closed = false;  // GUARDED_BY(mu)

    static void start(const std::shared_ptr<Watcher>& self) {
      auto c = self->client.lock();
      if (!c) return;
      std::lock_guard<std::mutex> g(self->mu);
      if (self->closed || self->lost.stop_requested()) return;
      std::string path = "/api/v1/namespaces/" + self->ns + "/configmaps?watch=1&fieldSelector=metadata.name%3D" +
                         self->name + (self->rv.empty() ? "" : "&resourceVersion=" + self->rv);
      std::weak_ptr<Watcher> weak = self;
      self->id = c->stream(
          path,
          [weak](std::string_view line) {
            auto s = weak.lock();
            if (!s) return;
            json j = json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.is_object()) return;
            std::string type = j.value("type", "");
            const json& obj = j.contains("object") ? j["object"] : json::object();
            if (type == "DELETED") {
              s->rt->log(LogLevel::kWarning, s->desc, "leader-for-life lock was deleted: no longer leading");
              s->lost.request_stop();
            } else if (type == "ADDED" || type == "MODIFIED") {
              auto o = decode_lock(obj.dump(), s->desc);
              if (o && o->owner_uid != s->pod_uid) {
                s->rt->log(LogLevel::kWarning, s->desc, "leader-for-life lock now names another owner: no longer leading");
                s->lost.request_stop();
              }
              if (o && !o->resource_version.empty()) {
                std::lock_guard<std::mutex> g(s->mu);
                s->rv = o->resource_version;
              }
            } else if (type == "ERROR") {
              std::lock_guard<std::mutex> g(s->mu);
              s->rv.clear();  // e.g. 410 Gone: our version is too old; start from now
            }
          },
          [weak](Result<kube::HttpResponse>) {
            auto s = weak.lock();
            if (!s) return;
            s->rt->post([weak] {
              if (auto again = weak.lock()) start(again);
            }, std::chrono::seconds(1));
          });
    }
  };

  std::shared_ptr<Watcher> w_;
  std::string pod_, lock_uid_;
  Duration timeout_;
};

// The waiting side: attempts, stale-holder checks, backoff, the watch that
// cuts a wait short.
class Campaign {
 public:
  Campaign(Runtime& rt, std::shared_ptr<kube::Client> c, ForLifeConfig cfg, std::string ns, std::string pod)
      : rt_(rt), c_(std::move(c)), cfg_(std::move(cfg)), ns_(std::move(ns)), pod_(std::move(pod)),
        desc_("leader-for-life " + ns_ + "/" + cfg_.lock_name),
        cm_path_("/api/v1/namespaces/" + ns_ + "/configmaps/" + cfg_.lock_name) {}

  ~Campaign() {
    if (watch_id_) c_->cancel(watch_id_);
  }

  Result<std::unique_ptr<ForLifeLeader>> run(std::stop_token stop) {
    auto me = sync(*c_, "GET", "/api/v1/namespaces/" + ns_ + "/pods/" + pod_, "", cfg_.request_timeout);
    if (!me) return me.error();
    if (me->status != 200) {
      Error e = kube::error_from_response(me->status, me->body, {"get", "", "pods", ns_, pod_});
      if (me->status == 404) {
        return Error::not_found(desc_ + ": our own Pod " + ns_ + "/" + pod_ +
                                " does not exist (is POD_NAME set from the downward API?)");
      }
      return e;
    }
    auto pod = kube::decode_pod(me->body);
    if (!pod) return Error::invalid(desc_ + ": our Pod: " + pod.error().message());
    pod_uid_ = pod->uid;
    if (pod_uid_.empty()) return Error::invalid(desc_ + ": our Pod " + pod_ + " has no metadata.uid");
    start_watch();

    Duration backoff = cfg_.initial_backoff;
    std::mt19937_64 rng{std::random_device{}()};
    for (;;) {
      if (stop.stop_requested()) return Error::unavailable(desc_ + ": stopped before becoming leader");
      auto r = attempt();
      if (r && *r) {
        rt_.log(LogLevel::kInfo, desc_, "became leader (pod " + pod_ + ")");
        return std::unique_ptr<ForLifeLeader>(new Leader(rt_, c_, ns_, cfg_.lock_name, pod_, pod_uid_,
                                                         lock_uid_, lock_rv_, cfg_.request_timeout));
      }
      if (!r) {
        if (r.error().is(Code::kForbidden) || r.error().is(Code::kUnauthorized) || r.error().is(Code::kInvalid)) {
          return r.error();
        }
        rt_.log(LogLevel::kWarning, desc_, r.error().to_string());
      }
      if (retry_now_) {  // we just removed a stale lock: try again at once
        retry_now_ = false;
        continue;
      }
      std::uniform_real_distribution<double> jitter(0.8, 1.2);
      wait(std::chrono::duration_cast<Duration>(backoff * jitter(rng)), stop);
      backoff = std::min<Duration>(backoff * 2, cfg_.max_backoff);
    }
  }

 private:
  // One attempt: true when we hold the lock now.
  Result<bool> attempt() {
    auto got = sync(*c_, "GET", cm_path_, "", cfg_.request_timeout);
    if (!got) return got.error();
    if (got->status == 404) return create();
    if (got->status != 200) {
      return kube::error_from_response(got->status, got->body, {"get", "", "configmaps", ns_, cfg_.lock_name});
    }
    auto lock = decode_lock(got->body, desc_);
    if (!lock) return lock.error();
    if (lock->owner_uid == pod_uid_) {  // ours already (we restarted in the same Pod)
      lock_uid_ = lock->uid;
      lock_rv_ = lock->resource_version;
      return true;
    }
    auto stale = is_stale(*lock);
    if (!stale) return stale.error();
    if (!stale->empty()) {
      rt_.log(LogLevel::kWarning, desc_, "holder is stale (" + *stale + "): deleting its lock");
      json opts = {{"apiVersion", "v1"},
                   {"kind", "DeleteOptions"},
                   {"preconditions", {{"uid", lock->uid}, {"resourceVersion", lock->resource_version}}}};
      auto del = sync(*c_, "DELETE", cm_path_, opts.dump(), cfg_.request_timeout);
      if (!del) return del.error();
      if (del->status != 200 && del->status != 202 && del->status != 404 && del->status != 409) {
        return kube::error_from_response(del->status, del->body, {"delete", "", "configmaps", ns_, cfg_.lock_name});
      }
      retry_now_ = true;
    }
    return false;
  }

  Result<bool> create() {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata",
                {{"name", cfg_.lock_name},
                 {"namespace", ns_},
                 {"ownerReferences",
                  json::array({{{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod_}, {"uid", pod_uid_}}})}}}};
    auto r = sync(*c_, "POST", "/api/v1/namespaces/" + ns_ + "/configmaps", cm.dump(), cfg_.request_timeout);
    if (!r) return r.error();
    if (r->status == 409) return false;  // someone else created it first
    if (r->status != 201 && r->status != 200) {
      return kube::error_from_response(r->status, r->body, {"create", "", "configmaps", ns_, cfg_.lock_name});
    }
    auto lock = decode_lock(r->body, desc_);
    if (!lock) return lock.error();
    lock_uid_ = lock->uid;
    lock_rv_ = lock->resource_version;
    return true;
  }

  // Why the holder is stale; "" when it is not (or we cannot tell yet).
  Result<std::string> is_stale(const LockObject& lock) {
    if (lock.owner_pod.empty()) return std::string();  // not a for-life lock we understand: never touch it
    auto got = sync(*c_, "GET", "/api/v1/namespaces/" + ns_ + "/pods/" + lock.owner_pod, "", cfg_.request_timeout);
    if (!got) return got.error();
    if (got->status == 404) return "its Pod " + lock.owner_pod + " is gone";
    if (got->status != 200) {
      return kube::error_from_response(got->status, got->body, {"get", "", "pods", ns_, lock.owner_pod});
    }
    auto pod = kube::decode_pod(got->body);
    if (!pod) return Error::invalid(desc_ + ": holder Pod: " + pod.error().message());
    if (!lock.owner_uid.empty() && pod->uid != lock.owner_uid) {
      return "its Pod " + lock.owner_pod + " was replaced by another with the same name";
    }
    if (pod->phase == "Failed" || pod->phase == "Succeeded") {
      return "its Pod " + lock.owner_pod + " is " + pod->phase + (pod->reason.empty() ? "" : " (" + pod->reason + ")");
    }
    if (!cfg_.node_not_ready_grace || pod->node_name.empty()) return std::string();
    auto node = sync(*c_, "GET", "/api/v1/nodes/" + pod->node_name, "", cfg_.request_timeout);
    if (!node) return node.error();
    if (node->status == 404) return "its Node " + pod->node_name + " is gone";
    if (node->status != 200) {
      return kube::error_from_response(node->status, node->body, {"get", "", "nodes", "", pod->node_name});
    }
    auto n = kube::decode_node(node->body);
    if (!n) return Error::invalid(desc_ + ": holder Node: " + n.error().message());
    Instant now = rt_.clock().now();
    if (n->ready == kube::Node::Ready::kTrue) {
      not_ready_since_.erase(n->name);
      return std::string();
    }
    auto [it, fresh] = not_ready_since_.try_emplace(n->name, now);
    (void)fresh;
    if (now - it->second >= *cfg_.node_not_ready_grace) {
      return "its Node " + n->name + " has been NotReady for longer than " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*cfg_.node_not_ready_grace).count()) +
             "s";
    }
    return std::string();
  }

  void start_watch() {
    std::string path = "/api/v1/namespaces/" + ns_ + "/configmaps?watch=1&fieldSelector=metadata.name%3D" +
                       cfg_.lock_name;
    auto wake = wake_;
    watch_id_ = c_->stream(
        path,
        [wake](std::string_view line) {
          json j = json::parse(line, nullptr, false);
          if (j.is_discarded() || j.value("type", "") != "DELETED") return;
          std::lock_guard<std::mutex> g(wake->mu);
          wake->deleted = true;
          wake->cv.notify_all();
        },
        [](Result<kube::HttpResponse>) {});
  }

  void wait(Duration d, std::stop_token stop) {
    std::unique_lock<std::mutex> lk(wake_->mu);
    std::stop_callback on_stop(stop, [this] {
      std::lock_guard<std::mutex> g(wake_->mu);
      wake_->cv.notify_all();
    });
    wake_->cv.wait_for(lk, d, [&] { return wake_->deleted || stop.stop_requested(); });
    wake_->deleted = false;
  }

  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool deleted = false;
  };

  Runtime& rt_;
  std::shared_ptr<kube::Client> c_;
  ForLifeConfig cfg_;
  std::string ns_, pod_, desc_, cm_path_;
  std::string pod_uid_, lock_uid_, lock_rv_;
  bool retry_now_ = false;
  std::map<std::string, Instant> not_ready_since_;  // node -> first seen not ready (our clock)
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  uint64_t watch_id_ = 0;
};

}  // namespace

Result<void> ForLifeConfig::validate() const {
  if (lock_name.empty()) return Error::invalid("leader-for-life: lock_name is required");
  // Checked before any request: a name the server would refuse (422) is a
  // mistake to fix, not a failure to retry, and it goes into paths.
  if (!kube::is_dns_subdomain(lock_name)) {
    return Error::invalid("leader-for-life: lock_name \"" + lock_name + "\" is not a ConfigMap name "
                          "(lowercase letters, digits, '-' and '.', at most 253, starting and ending with a "
                          "letter or digit)");
  }
  if (!ns.empty() && !kube::is_dns_label(ns)) {
    return Error::invalid("leader-for-life: ns \"" + ns + "\" is not a namespace name (lowercase letters, digits "
                          "and '-', at most 63, starting and ending with a letter or digit)");
  }
  if (initial_backoff <= Duration::zero()) return Error::invalid("leader-for-life: initial_backoff must be > 0");
  if (max_backoff < initial_backoff) return Error::invalid("leader-for-life: max_backoff must be >= initial_backoff");
  if (request_timeout <= Duration::zero()) return Error::invalid("leader-for-life: request_timeout must be > 0");
  if (node_not_ready_grace && *node_not_ready_grace < Duration::zero()) {
    return Error::invalid("leader-for-life: node_not_ready_grace must be >= 0");
  }
  return {};
}

Result<std::unique_ptr<ForLifeLeader>> become_leader(Runtime& rt, ForLifeConfig cfg, std::stop_token stop) {
  if (auto v = cfg.validate(); !v) return v.error();
  std::string ns = cfg.ns;
  if (ns.empty()) ns = env_or("POD_NAMESPACE");
  if (ns.empty()) {
    std::ifstream f(cfg.namespace_file);
    std::string line;
    if (f && std::getline(f, line)) ns = trim(line);
  }
  if (ns.empty()) {
    return Error::invalid("leader-for-life: no namespace: set ForLifeConfig::ns or POD_NAMESPACE, or run in a Pod (" +
                          cfg.namespace_file + " is missing)");
  }
  std::string pod = cfg.pod_name.empty() ? env_or("POD_NAME") : cfg.pod_name;
  if (pod.empty()) {
    return Error::invalid("leader-for-life: no Pod name: set POD_NAME from the downward API "
                          "(env valueFrom fieldRef metadata.name) or ForLifeConfig::pod_name");
  }
  auto client = RuntimeAccess::kube_client(rt);
  if (!client) return client.error();
  Campaign c(rt, std::move(*client), std::move(cfg), std::move(ns), std::move(pod));
  return c.run(stop);
}

}  // namespace leasehold
