// The LeaseCandidate of a coordinated elector; see lease_candidate.h.
#include "core/lease_candidate.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <mutex>

#include "core/runtime_access.h"
#include "kube/client.h"
#include "kube/lease_codec.h"
#include "kube/objects.h"

namespace leasehold::core {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class Keeper final : public LeaseCandidateKeeper, public std::enable_shared_from_this<Keeper> {
 public:
  Keeper(Runtime& rt, std::weak_ptr<kube::Client> client, const ElectorConfig& cfg, std::string ns,
         std::string lease)
      : rt_(rt), client_(std::move(client)), ns_(std::move(ns)), name_(cfg.identity),
        every_(cfg.coordinated.renew_interval) {
    spec_.lease_name = std::move(lease);
    spec_.binary_version = cfg.coordinated.binary_version;
    spec_.emulation_version = cfg.coordinated.emulation_version;
    if (spec_.emulation_version.empty()) {  // MAJOR.MINOR of the binary version
      auto dot = spec_.binary_version.find('.', spec_.binary_version.find('.') + 1);
      spec_.emulation_version = spec_.binary_version.substr(0, dot);
    }
    // The API wants a full semantic version; an emulation version is a minor
    // release, so "1.35" is written as "1.35.0".
    if (std::count(spec_.emulation_version.begin(), spec_.emulation_version.end(), '.') == 1) {
      spec_.emulation_version += ".0";
    }
    spec_.strategy = "OldestEmulationVersion";
    desc_ = "leasecandidate " + ns_ + "/" + name_;
  }

  void start() override {
    std::weak_ptr<Keeper> w = weak_from_this();
    rt_.post([w] {
      if (auto s = w.lock()) {
        s->running_ = true;
        s->write();
        s->watch();
      }
    });
  }

  void stop() override {
    std::weak_ptr<Keeper> w = weak_from_this();
    rt_.post([w] {
      auto s = w.lock();
      if (!s || !s->running_) return;
      s->running_ = false;
      auto c = s->client_.lock();
      if (!c) return;
      if (s->watch_id_) c->cancel(s->watch_id_);
      s->watch_id_ = 0;
      Runtime* rt = &s->rt_;
      std::string desc = s->desc_;
      c->request("DELETE", s->item_path(), "", 5s, [rt, desc](Result<kube::HttpResponse> r) {
        if (!r || (r->status != 200 && r->status != 202 && r->status != 404)) {
          rt->log(LogLevel::kWarning, desc, "could not delete the candidate; kube-apiserver drops it when it stops renewing");
        }
      }, kube::Priority::kBackground);
    });
  }

 private:
  std::string collection() const {
    return std::string("/apis/") + std::string(kube::api_version(version_)) + "/namespaces/" + ns_ + "/leasecandidates";
  }
  std::string item_path() const { return collection() + "/" + name_; }
  kube::RequestInfo info(const char* verb) const { return {verb, "coordination.k8s.io", "leasecandidates", ns_, name_}; }

  // I/O thread. Creates the candidate, or refreshes it (renewTime = now).
  void write() {
    if (!running_ || in_flight_) return;
    auto c = client_.lock();
    if (!c) return;
    in_flight_ = true;
    kube::LeaseCandidateSpec spec = spec_;
    spec.renew_time = rt_.clock().wall_now();
    if (base_) spec.ping_time = ping_;  // keep the server's ping as read
    sent_ping_ = spec.ping_time;
    std::string method = base_ ? "PUT" : "POST";
    auto body = base_ ? kube::encode_lease_candidate_update(*base_, spec)
                      : kube::encode_lease_candidate_create(ns_, name_, spec, version_);
    if (!body) {
      in_flight_ = false;
      rt_.log(LogLevel::kError, desc_, body.error().message());
      return;
    }
    std::weak_ptr<Keeper> w = weak_from_this();
    Runtime* rt = &rt_;
    c->request(method, base_ ? item_path() : collection(), *body, 10s,
               [w, rt, method](Result<kube::HttpResponse> r) {
                 rt->post([w, r, method] {
                   if (auto s = w.lock()) s->written(method, r);
                 });
               },
               kube::Priority::kBackground);
  }

  void written(const std::string& method, const Result<kube::HttpResponse>& r) {
    in_flight_ = false;
    if (!running_) return;
    if (r && (r->status == 200 || r->status == 201)) {
      auto cand = kube::decode_lease_candidate(r->body);
      pings_.answered(sent_ping_);
      if (cand) {
        base_ = cand->object;
        ping_ = cand->spec.ping_time;
      }
      if (!announced_) {
        announced_ = true;
        rt_.log(LogLevel::kInfo, desc_, "candidate for lease " + spec_.lease_name + " (binary " + spec_.binary_version +
                                            ", emulation " + spec_.emulation_version + ", " +
                                            std::string(kube::api_version(version_)) + ")");
      }
      again(every_);
      return;
    }
    if (r && r->status == 404 && method == "POST" && version_ == kube::LeaseCandidateVersion::kV1Beta1) {
      rt_.log(LogLevel::kWarning, desc_, "coordination.k8s.io/v1beta1 is not served; trying v1alpha2");
      version_ = kube::LeaseCandidateVersion::kV1Alpha2;
      if (watch_id_) {
        if (auto c = client_.lock()) c->cancel(watch_id_);
        watch_id_ = 0;
        watch();
      }
      write();
      return;
    }
    if (r && (r->status == 409 || r->status == 404)) {
      // Exists already (POST) or changed / vanished under us (PUT): read and retry.
      base_.reset();
      if (r->status == 409) return refresh_base();
      return write();
    }
    rt_.log(LogLevel::kWarning, desc_,
            r ? kube::error_from_response(r->status, r->body, info(method == "POST" ? "create" : "update")).to_string()
              : r.error().to_string());
    again(std::min<Duration>(every_, 10s));
  }

  void refresh_base() {
    auto c = client_.lock();
    if (!c) return;
    in_flight_ = true;
    std::weak_ptr<Keeper> w = weak_from_this();
    Runtime* rt = &rt_;
    c->request("GET", item_path(), "", 10s, [w, rt](Result<kube::HttpResponse> r) {
      rt->post([w, r] {
        auto s = w.lock();
        if (!s) return;
        s->in_flight_ = false;
        if (r && r->status == 200) {
          if (auto cand = kube::decode_lease_candidate(r->body)) {
            s->base_ = cand->object;
            s->ping_ = cand->spec.ping_time;
          }
        }
        s->write();
      });
    }, kube::Priority::kBackground);
  }

  void again(Duration after) {
    uint64_t gen = ++timer_gen_;
    std::weak_ptr<Keeper> w = weak_from_this();
    rt_.post([w, gen] {
      auto s = w.lock();
      if (s && s->timer_gen_ == gen) s->write();
    }, after);
  }

  void watch() {
    auto c = client_.lock();
    if (!c || !running_) return;
    std::weak_ptr<Keeper> w = weak_from_this();
    Runtime* rt = &rt_;
    watch_id_ = c->stream(
        collection() + "?watch=1&fieldSelector=metadata.name%3D" + name_,
        [w, rt](std::string_view line) {
          json j = json::parse(line, nullptr, false);
          if (j.is_discarded() || !j.is_object()) return;
          std::string type = j.value("type", "");
          if (type != "ADDED" && type != "MODIFIED") return;
          auto cand = kube::decode_lease_candidate(j["object"].dump());
          if (!cand) return;
          rt->post([w, cand = std::move(*cand)] {
            auto s = w.lock();
            if (!s || !s->running_) return;
            s->base_ = cand.object;
            s->ping_ = cand.spec.ping_time;
            if (s->pings_.wants_answer(cand.spec)) s->write();  // answer the ping at once
          });
        },
        [w, rt](Result<kube::HttpResponse>) {
          rt->post([w] {
            auto s = w.lock();
            if (!s || !s->running_) return;
            s->watch_id_ = 0;
            std::weak_ptr<Keeper> again = s;
            s->rt_.post([again] {
              if (auto k = again.lock()) k->watch();
            }, 2s);
          });
        });
  }

  Runtime& rt_;
  std::weak_ptr<kube::Client> client_;
  std::string ns_, name_, desc_;
  Duration every_;
  kube::LeaseCandidateSpec spec_;
  // I/O thread only.
  kube::LeaseCandidateVersion version_ = kube::LeaseCandidateVersion::kV1Beta1;
  std::optional<json> base_;
  std::optional<WallTime> ping_;
  std::optional<WallTime> sent_ping_;  // the pingTime the write in flight carries
  PingAnswers pings_;
  bool running_ = false, in_flight_ = false, announced_ = false;
  uint64_t timer_gen_ = 0;
  uint64_t watch_id_ = 0;
};

}  // namespace

Result<std::shared_ptr<LeaseCandidateKeeper>> LeaseCandidateKeeper::create(Runtime& rt, const ElectorConfig& cfg,
                                                                           std::string ns, std::string lease) {
  auto c = RuntimeAccess::kube_client(rt);
  if (!c) return c.error();
  return std::shared_ptr<LeaseCandidateKeeper>(
      std::make_shared<Keeper>(rt, std::weak_ptr<kube::Client>(*c), cfg, std::move(ns), std::move(lease)));
}

}  // namespace leasehold::core
