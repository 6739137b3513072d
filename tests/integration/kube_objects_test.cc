// The object codecs (src/kube/objects.h) against the real kube-apiserver
// started by the testenv fixture (LEASEHOLD_TESTENV_DIR): what the encoders
// write is accepted by the server's validation, and what the server returns
// decodes. LeaseCandidate is coordination.k8s.io/v1beta1 (the fixture enables
// it); v1alpha2 is not served by this control plane and is covered by the
// unit tests only.
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/lease_codec.h"
#include "kube/objects.h"

namespace leasehold::kube {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* kNs = "leasehold-test";

std::string testenv_dir() {
  const char* v = std::getenv("LEASEHOLD_TESTENV_DIR");
  return v ? v : "";
}

std::string unique(const std::string& prefix) {
  static int n = 0;
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

class KubeObjectsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testenv_dir().empty()) << "LEASEHOLD_TESTENV_DIR is not set (run through ctest)";
    auto cfg = load_cluster_config({testenv_dir() + "/kubeconfig-admin", ""});
    ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
    auto c = Client::create(*cfg);
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    client_ = *c;
  }

  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = "") {
    std::promise<Result<HttpResponse>> p;
    client_->request(method, path, body, 10s, [&p](Result<HttpResponse> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : HttpResponse{};
  }

  std::shared_ptr<Client> client_;
  RealClock clock_;
};

TEST_F(KubeObjectsTest, LeaseCandidateV1beta1RoundTripsThroughTheServer) {
  const std::string name = unique("candidate");
  const std::string base = std::string("/apis/coordination.k8s.io/v1beta1/namespaces/") + kNs + "/leasecandidates";
  LeaseCandidateSpec spec;
  spec.lease_name = "app";
  spec.binary_version = "1.36.3";
  spec.emulation_version = "1.36.0";
  spec.strategy = "OldestEmulationVersion";
  // MicroTime carries microseconds: start from a whole microsecond.
  spec.renew_time = std::chrono::time_point_cast<std::chrono::microseconds>(clock_.wall_now());
  auto body = encode_lease_candidate_create(kNs, name, spec);
  ASSERT_TRUE(body.ok()) << body.error().to_string();
  HttpResponse created = call("POST", base, *body);
  ASSERT_EQ(created.status, 201) << created.body;
  auto c = decode_lease_candidate(created.body);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->version, LeaseCandidateVersion::kV1Beta1);
  EXPECT_EQ(c->name, name);
  EXPECT_EQ(c->ns, kNs);
  EXPECT_EQ(c->spec, spec);  // MicroTime kept to the microsecond

  // Someone else adds a label; our update (with the version read) keeps it.
  HttpResponse got = call("GET", base + "/" + name);
  ASSERT_EQ(got.status, 200) << got.body;
  json other = json::parse(got.body);
  other["metadata"]["labels"]["team"] = "x";
  HttpResponse labelled = call("PUT", base + "/" + name, other.dump());
  ASSERT_EQ(labelled.status, 200) << labelled.body;
  auto read = decode_lease_candidate(labelled.body);
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  LeaseCandidateSpec next = read->spec;
  next.renew_time = *next.renew_time + 5s;
  next.ping_time = *next.renew_time;
  auto update = encode_lease_candidate_update(read->object, next);
  ASSERT_TRUE(update.ok());
  HttpResponse updated = call("PUT", base + "/" + name, *update);
  ASSERT_EQ(updated.status, 200) << updated.body;
  auto after = decode_lease_candidate(updated.body);
  ASSERT_TRUE(after.ok()) << after.error().to_string();
  EXPECT_EQ(after->spec, next);
  EXPECT_EQ(after->object["metadata"]["labels"]["team"], "x");
  // The stale version is refused (compare-and-swap).
  HttpResponse stale = call("PUT", base + "/" + name, *update);
  EXPECT_EQ(stale.status, 409) << stale.body;
  EXPECT_EQ(call("DELETE", base + "/" + name).status, 200);
}

TEST_F(KubeObjectsTest, LeaderElectionEventIsAcceptedAndReadsBack) {
  // The involved Lease, as the legacy/lease locks will reference it.
  const std::string lease_name = unique("evlease");
  LeaseRecord r;
  r.holder_identity = "pod-a";
  r.lease_duration_seconds = 15;
  HttpResponse lease = call("POST", std::string("/apis/coordination.k8s.io/v1/namespaces/") + kNs + "/leases",
                            encode_lease_create(kNs, lease_name, r));
  ASSERT_EQ(lease.status, 201) << lease.body;
  json l = json::parse(lease.body);
  ObjectRef ref{"Lease", "coordination.k8s.io/v1", kNs, lease_name,
                l["metadata"]["uid"].get<std::string>(), l["metadata"]["resourceVersion"].get<std::string>()};
  WallTime now = clock_.wall_now();
  EventSpec e = leader_election_event(ref, "pod-a", "became leader", "leasehold", "pod-a", now);
  auto body = encode_event(e);
  ASSERT_TRUE(body.ok()) << body.error().to_string();
  HttpResponse posted = call("POST", "/api/v1/namespaces/" + event_namespace(e) + "/events", *body);
  ASSERT_EQ(posted.status, 201) << posted.body;
  json ev = json::parse(posted.body);
  std::string name = ev["metadata"]["name"];
  EXPECT_EQ(name.rfind(lease_name + ".", 0), 0u) << name;
  HttpResponse got = call("GET", "/api/v1/namespaces/" + std::string(kNs) + "/events/" + name);
  ASSERT_EQ(got.status, 200) << got.body;
  json back = json::parse(got.body);
  EXPECT_EQ(back["reason"], "LeaderElection");
  EXPECT_EQ(back["message"], "pod-a became leader");
  EXPECT_EQ(back["type"], "Normal");
  EXPECT_EQ(back["count"], 1);
  EXPECT_EQ(back["involvedObject"]["kind"], "Lease");
  EXPECT_EQ(back["involvedObject"]["uid"], l["metadata"]["uid"]);
  EXPECT_EQ(back["source"]["component"], "leasehold");
  EXPECT_EQ(back["reportingComponent"], "leasehold");
  EXPECT_EQ(back["firstTimestamp"], json::parse(*body)["firstTimestamp"]);

  // A Warning for a cluster-scoped object goes to "default".
  EventSpec w = e;
  w.involved = {"Node", "v1", "", unique("node"), "", ""};
  w.type = EventSpec::Type::kWarning;
  w.name.clear();
  auto wb = encode_event(w);
  ASSERT_TRUE(wb.ok());
  HttpResponse wp = call("POST", "/api/v1/namespaces/" + event_namespace(w) + "/events", *wb);
  EXPECT_EQ(wp.status, 201) << wp.body;
  EXPECT_EQ(call("DELETE", std::string("/apis/coordination.k8s.io/v1/namespaces/") + kNs + "/leases/" + lease_name).status,
            200);
}

TEST_F(KubeObjectsTest, PodAndNodeFromTheServerDecode) {
  // Pods need the namespace's default ServiceAccount. testenv's
  // kube-controller-manager runs only the garbage collector, not the
  // serviceaccount controller: the test creates it as that controller would.
  HttpResponse sa = call("POST", std::string("/api/v1/namespaces/") + kNs + "/serviceaccounts",
                         R"({"metadata":{"name":"default"}})");
  ASSERT_TRUE(sa.status == 201 || sa.status == 409) << sa.status << " " << sa.body;
  const std::string node_name = unique("node");
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", node_name}, {"labels", {{"team", "x"}}}}},
               {"status",
                {{"conditions",
                  {{{"type", "Ready"}, {"status", "False"}, {"reason", "KubeletNotReady"},
                    {"lastHeartbeatTime", "2026-11-23T12:00:00Z"}, {"lastTransitionTime", "2026-11-23T12:00:00Z"}}}}}}};
  HttpResponse n = call("POST", "/api/v1/nodes", node.dump());
  ASSERT_EQ(n.status, 201) << n.body;
  auto decoded_node = decode_node(n.body);
  ASSERT_TRUE(decoded_node.ok()) << decoded_node.error().to_string();
  EXPECT_EQ(decoded_node->name, node_name);
  EXPECT_EQ(decoded_node->ready, Node::Ready::kFalse);
  ASSERT_TRUE(decoded_node->ready_since);
  EXPECT_EQ(*decoded_node->ready_since, WallTime{} + std::chrono::seconds(1'795'435'200));

  const std::string pod_name = unique("pod");
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", pod_name}, {"labels", {{"app", "web"}}}}},
              {"spec",
               {{"nodeName", node_name},
                {"automountServiceAccountToken", false},
                {"containers", {{{"name", "c"}, {"image", "registry.invalid/none:1"}}}}}}};
  HttpResponse p = call("POST", std::string("/api/v1/namespaces/") + kNs + "/pods", pod.dump());
  ASSERT_EQ(p.status, 201) << p.body;
  auto decoded = decode_pod(p.body);
  ASSERT_TRUE(decoded.ok()) << decoded.error().to_string();
  EXPECT_EQ(decoded->name, pod_name);
  EXPECT_EQ(decoded->ns, kNs);
  EXPECT_FALSE(decoded->uid.empty());
  EXPECT_EQ(decoded->labels.at("app"), "web");
  EXPECT_EQ(decoded->node_name, node_name);
  EXPECT_EQ(decoded->phase, "Pending");
  EXPECT_FALSE(decoded->deleting);

  // The leader label: set by a merge patch (other labels kept), then removed.
  std::string pod_path = std::string("/api/v1/namespaces/") + kNs + "/pods/" + pod_name;
  auto set = pod_label_patch("leasehold.io/leader", std::string_view("true"));
  ASSERT_TRUE(set.ok());
  HttpResponse patched = call("PATCH", pod_path, *set);
  ASSERT_EQ(patched.status, 200) << patched.body;
  auto with = decode_pod(patched.body);
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(with->labels.at("leasehold.io/leader"), "true");
  EXPECT_EQ(with->labels.at("app"), "web");
  auto stale = pod_label_patch("leasehold.io/leader", std::nullopt, decoded->resource_version);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(call("PATCH", pod_path, *stale).status, 409) << "a patch carrying an old resourceVersion must conflict";
  auto unset = pod_label_patch("leasehold.io/leader", std::nullopt);
  HttpResponse removed = call("PATCH", pod_path, *unset);
  ASSERT_EQ(removed.status, 200) << removed.body;
  auto without = decode_pod(removed.body);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->labels.count("leasehold.io/leader"), 0u);
  EXPECT_EQ(without->labels.at("app"), "web");
  EXPECT_EQ(call("DELETE", std::string("/api/v1/namespaces/") + kNs + "/pods/" + pod_name).status, 200);
  EXPECT_EQ(call("DELETE", "/api/v1/nodes/" + node_name).status, 200);
}

}  // namespace
}  // namespace leasehold::kube
