// The object codecs: LeaseCandidate (v1beta1, v1alpha2), Pod, the label merge
// patch, Node readiness and client-go's Event form. Every decoder keeps fields
// written by others and names the field in its errors.
#include "kube/objects.h"

#include <gtest/gtest.h>

namespace leasehold::kube {
namespace {

using nlohmann::json;
using namespace std::chrono;

// 2026-11-23T12:00:00Z
const WallTime kNoon = WallTime{} + seconds(1'795'435'200);

constexpr const char* kServerCandidate = R"({
  "kind": "LeaseCandidate", "apiVersion": "coordination.k8s.io/v1beta1",
  "metadata": {"name": "app-pod-a", "namespace": "ns", "resourceVersion": "77", "uid": "c1",
               "labels": {"team": "x"}, "annotations": {"note": "keep me"}},
  "spec": {"leaseName": "app", "binaryVersion": "1.36.3", "emulationVersion": "1.35.0",
           "strategy": "OldestEmulationVersion",
           "pingTime": "2026-11-23T12:00:00.000001Z", "renewTime": "2026-11-23T12:00:00.250000Z",
           "futureField": [1, 2]}
})";

TEST(ObjectsTest, DecodesLeaseCandidate) {
  auto c = decode_lease_candidate(kServerCandidate);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->version, LeaseCandidateVersion::kV1Beta1);
  EXPECT_EQ(c->name, "app-pod-a");
  EXPECT_EQ(c->ns, "ns");
  EXPECT_EQ(c->resource_version, "77");
  EXPECT_EQ(c->spec.lease_name, "app");
  EXPECT_EQ(c->spec.binary_version, "1.36.3");
  EXPECT_EQ(c->spec.emulation_version, "1.35.0");
  EXPECT_EQ(c->spec.strategy, "OldestEmulationVersion");
  ASSERT_TRUE(c->spec.ping_time);
  EXPECT_EQ(*c->spec.ping_time, kNoon + microseconds(1));
  ASSERT_TRUE(c->spec.renew_time);
  EXPECT_EQ(*c->spec.renew_time, kNoon + milliseconds(250));
}

TEST(ObjectsTest, LeaseCandidateVersions) {
  std::string alpha2 = kServerCandidate;
  alpha2.replace(alpha2.find("v1beta1"), 7, "v1alpha2");
  auto c = decode_lease_candidate(alpha2);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->version, LeaseCandidateVersion::kV1Alpha2);
  EXPECT_EQ(c->spec.strategy, "OldestEmulationVersion");

  std::string alpha1 = kServerCandidate;
  alpha1.replace(alpha1.find("v1beta1"), 7, "v1alpha1");
  auto old = decode_lease_candidate(alpha1);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().message().find("apiVersion"), std::string::npos) << old.error().message();

  LeaseCandidateSpec s{"app", "1.36.3", "1.36.0", "OldestEmulationVersion", std::nullopt, kNoon};
  auto body = encode_lease_candidate_create("ns", "app-x", s, LeaseCandidateVersion::kV1Alpha2);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(json::parse(*body)["apiVersion"], "coordination.k8s.io/v1alpha2");
}

TEST(ObjectsTest, LeaseCandidateCreateForms) {
  LeaseCandidateSpec s;
  s.lease_name = "app";
  s.binary_version = "1.36.3";
  s.emulation_version = "1.36.0";
  s.strategy = "OldestEmulationVersion";
  s.renew_time = kNoon + microseconds(7);
  auto body = encode_lease_candidate_create("ns", "app-pod-a", s);
  ASSERT_TRUE(body.ok()) << body.error().message();
  json out = json::parse(*body);
  EXPECT_EQ(out["apiVersion"], "coordination.k8s.io/v1beta1");
  EXPECT_EQ(out["kind"], "LeaseCandidate");
  EXPECT_EQ(out["metadata"]["name"], "app-pod-a");
  EXPECT_EQ(out["metadata"]["namespace"], "ns");
  EXPECT_EQ(out["spec"]["leaseName"], "app");
  EXPECT_EQ(out["spec"]["binaryVersion"], "1.36.3");
  EXPECT_EQ(out["spec"]["emulationVersion"], "1.36.0");
  EXPECT_EQ(out["spec"]["strategy"], "OldestEmulationVersion");
  EXPECT_EQ(out["spec"]["renewTime"], "2026-11-23T12:00:00.000007Z");
  EXPECT_FALSE(out["spec"].contains("pingTime"));
  // Round trip.
  out["metadata"]["resourceVersion"] = "1";
  auto back = decode_lease_candidate(out.dump());
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->spec, s);
}

TEST(ObjectsTest, LeaseCandidateUpdateKeepsWhatOthersWrote) {
  auto c = decode_lease_candidate(kServerCandidate);
  ASSERT_TRUE(c.ok());
  LeaseCandidateSpec s = c->spec;
  s.renew_time = kNoon + seconds(5);
  s.ping_time.reset();
  auto body = encode_lease_candidate_update(c->object, s);
  ASSERT_TRUE(body.ok()) << body.error().message();
  json out = json::parse(*body);
  EXPECT_EQ(out["metadata"]["resourceVersion"], "77");
  EXPECT_EQ(out["metadata"]["uid"], "c1");
  EXPECT_EQ(out["metadata"]["labels"]["team"], "x");
  EXPECT_EQ(out["metadata"]["annotations"]["note"], "keep me");
  EXPECT_EQ(out["spec"]["futureField"], json::array({1, 2}));
  EXPECT_EQ(out["spec"]["renewTime"], "2026-11-23T12:00:05.000000Z");
  EXPECT_FALSE(out["spec"].contains("pingTime"));
  EXPECT_EQ(out["apiVersion"], "coordination.k8s.io/v1beta1");
}

TEST(ObjectsTest, LeaseCandidateEncodeRefusesMissingRequiredFields) {
  LeaseCandidateSpec ok{"app", "1.36.3", "1.36.0", "OldestEmulationVersion", {}, {}};
  struct Case {
    void (*mutate)(LeaseCandidateSpec&);
    const char* field;
  } cases[] = {
      {[](LeaseCandidateSpec& s) { s.lease_name.clear(); }, "spec.leaseName"},
      {[](LeaseCandidateSpec& s) { s.binary_version.clear(); }, "spec.binaryVersion"},
      {[](LeaseCandidateSpec& s) { s.strategy.clear(); }, "spec.strategy"},
      {[](LeaseCandidateSpec& s) { s.emulation_version.clear(); }, "spec.emulationVersion"},
  };
  for (const auto& c : cases) {
    LeaseCandidateSpec s = ok;
    c.mutate(s);
    auto r = encode_lease_candidate_create("ns", "n", s);
    ASSERT_FALSE(r.ok()) << c.field;
    EXPECT_NE(r.error().message().find(c.field), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().code(), Code::kInvalid);
  }
  auto noname = encode_lease_candidate_create("ns", "", ok);
  ASSERT_FALSE(noname.ok());
  EXPECT_NE(noname.error().message().find("metadata.name"), std::string::npos);
  auto notobj = encode_lease_candidate_update(json::array(), ok);
  EXPECT_FALSE(notobj.ok());
}

TEST(ObjectsTest, LeaseCandidateDecodeErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"({"metadata":{"name":"n","resourceVersion":"1"},"spec":{"pingTime":"yesterday"}})",
       "spec.pingTime"},
      {R"({"metadata":{"name":"n","resourceVersion":"1"},"spec":{"leaseName":7}})",
       "spec.leaseName"},
      {R"({"metadata":{"name":"n","resourceVersion":"1"},"spec":[]})", "spec: not an object"},
      {R"({"metadata":{"name":"n"}})", "metadata.resourceVersion"},
      {R"({"metadata":{"resourceVersion":"1"}})", "metadata.name"},
      {R"({"kind":"Lease","metadata":{"name":"n","resourceVersion":"1"}})", "kind"},
      {R"({"spec":{}})", "metadata"},
      {R"([1,2])", "not a JSON object"},
      {R"({"metadata":)", "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto r = decode_lease_candidate(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.error().message().find(c.field), std::string::npos)
        << c.body << " -> " << r.error().message();
  }
}

constexpr const char* kServerPod = R"({
  "kind": "Pod", "apiVersion": "v1",
  "metadata": {"name": "app-7d9f", "namespace": "ns", "uid": "0b5c-11",
               "resourceVersion": "901", "labels": {"app": "web", "leasehold.io/leader": "true"},
               "ownerReferences": [{"kind": "ReplicaSet", "name": "app-7", "uid": "r1"}]},
  "spec": {"nodeName": "node-3", "containers": [{"name": "c", "image": "i"}]},
  "status": {"phase": "Failed", "reason": "Evicted",
             "message": "The node was low on resource: memory."}
})";

TEST(ObjectsTest, DecodesPod) {
  auto p = decode_pod(kServerPod);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->name, "app-7d9f");
  EXPECT_EQ(p->ns, "ns");
  EXPECT_EQ(p->uid, "0b5c-11");
  EXPECT_EQ(p->resource_version, "901");
  EXPECT_EQ(p->labels.size(), 2u);
  EXPECT_EQ(p->labels.at("leasehold.io/leader"), "true");
  EXPECT_EQ(p->node_name, "node-3");
  EXPECT_EQ(p->phase, "Failed");
  EXPECT_EQ(p->reason, "Evicted");
  EXPECT_FALSE(p->deleting);
  EXPECT_EQ(p->object["spec"]["containers"][0]["image"], "i");
}

TEST(ObjectsTest, PodMinimalAndDeleting) {
  auto p = decode_pod(
      R"({"metadata":{"name":"p","namespace":"n","resourceVersion":"1",
          "deletionTimestamp":"2026-11-23T12:00:00Z"},"status":{"phase":"Pending"}})");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_TRUE(p->deleting);
  EXPECT_TRUE(p->labels.empty());
  EXPECT_EQ(p->node_name, "");
  EXPECT_EQ(p->phase, "Pending");
  EXPECT_EQ(p->reason, "");
}

TEST(ObjectsTest, PodDecodeErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"({"metadata":{"name":"p","resourceVersion":"1","labels":{"app":1}}})",
       "metadata.labels.app"},
      {R"({"metadata":{"name":"p","resourceVersion":"1","labels":[]}})", "metadata.labels"},
      {R"({"metadata":{"name":"p","resourceVersion":"1"},"spec":{"nodeName":true}})",
       "spec.nodeName"},
      {R"({"metadata":{"name":"p","resourceVersion":"1"},"status":{"phase":{}}})",
       "status.phase"},
      {R"({"metadata":{"name":"p","resourceVersion":"1"},"status":{"reason":5}})",
       "status.reason"},
      {R"({"kind":"Node","metadata":{"name":"p","resourceVersion":"1"}})", "kind"},
  };
  for (const auto& c : cases) {
    auto r = decode_pod(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.error().message().find(c.field), std::string::npos)
        << c.body << " -> " << r.error().message();
    EXPECT_EQ(r.error().message().rfind("Pod", 0), 0u) << r.error().message();
  }
}

TEST(ObjectsTest, LabelMergePatch) {
  auto set = pod_label_patch("leasehold.io/leader", "true");
  ASSERT_TRUE(set.ok()) << set.error().message();
  EXPECT_EQ(*set, R"({"metadata":{"labels":{"leasehold.io/leader":"true"}}})");
  auto remove = pod_label_patch("leasehold.io/leader", std::nullopt);
  ASSERT_TRUE(remove.ok());
  EXPECT_EQ(*remove, R"({"metadata":{"labels":{"leasehold.io/leader":null}}})");
  auto cas = pod_label_patch("leader", "", "901");
  ASSERT_TRUE(cas.ok());
  EXPECT_EQ(*cas, R"({"metadata":{"labels":{"leader":""},"resourceVersion":"901"}})");
}

TEST(ObjectsTest, LabelMergePatchRefusesInvalidLabels) {
  for (const char* key : {"", "/x", "Bad.Prefix/x", "a/", "-x", "x-", "a b", "a/b/c",
                          "x234567890123456789012345678901234567890123456789012345678901234",
                          "pre..fix/x"}) {
    auto r = pod_label_patch(key, "v");
    EXPECT_FALSE(r.ok()) << key;
    if (!r.ok()) {
      EXPECT_NE(r.error().message().find("label key"), std::string::npos);
    }
  }
  for (const char* value : {"-v", "v v", "ü", "v234567890123456789012345678901234567890123456789012345678901234"}) {
    auto r = pod_label_patch("k", value);
    EXPECT_FALSE(r.ok()) << value;
    if (!r.ok()) {
      EXPECT_NE(r.error().message().find("value"), std::string::npos);
    }
  }
  for (const char* key : {"a", "A_b.c-d", "example.com/x", "a-1.b/Z9",
                          "x23456789012345678901234567890123456789012345678901234567890123"}) {
    EXPECT_TRUE(pod_label_patch(key, "v").ok()) << key;
  }
}

TEST(ObjectsTest, DecodesNodeReadiness) {
  auto n = decode_node(R"({"kind":"Node","apiVersion":"v1",
    "metadata":{"name":"node-3","resourceVersion":"12"},
    "status":{"conditions":[
      {"type":"MemoryPressure","status":"False","lastTransitionTime":"2026-11-23T10:00:00Z"},
      {"type":"Ready","status":"False","reason":"KubeletNotReady",
       "lastTransitionTime":"2026-11-23T12:00:00Z"}]}})");
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(n->name, "node-3");
  EXPECT_EQ(n->resource_version, "12");
  EXPECT_EQ(n->ready, Node::Ready::kFalse);
  ASSERT_TRUE(n->ready_since);
  EXPECT_EQ(*n->ready_since, kNoon);

  struct Case {
    const char* status;
    Node::Ready want;
  } cases[] = {{"True", Node::Ready::kTrue}, {"Unknown", Node::Ready::kUnknown},
               {"Bogus", Node::Ready::kUnknown}};
  for (const auto& c : cases) {
    std::string body = std::string(R"({"metadata":{"name":"n","resourceVersion":"1"},)") +
                       R"("status":{"conditions":[{"type":"Ready","status":")" + c.status +
                       R"("}]}})";
    auto r = decode_node(body);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->ready, c.want) << c.status;
    EXPECT_FALSE(r->ready_since);
  }
  auto none = decode_node(R"({"metadata":{"name":"n","resourceVersion":"1"}})");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->ready, Node::Ready::kMissing);
}

TEST(ObjectsTest, NodeDecodeErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"({"metadata":{"name":"n","resourceVersion":"1"},"status":{"conditions":{}}})",
       "status.conditions"},
      {R"({"metadata":{"name":"n","resourceVersion":"1"},"status":{"conditions":[3]}})",
       "status.conditions[0]"},
      {R"({"metadata":{"name":"n","resourceVersion":"1"},"status":{"conditions":[
          {"type":"Ready","status":"True","lastTransitionTime":"soon"}]}})",
       "status.conditions[0].lastTransitionTime"},
      {R"({"metadata":{"name":"n","resourceVersion":"1"},"status":{"conditions":[
          {"type":"PIDPressure"},{"type":"Ready","status":false}]}})",
       "status.conditions[1].status"},
  };
  for (const auto& c : cases) {
    auto r = decode_node(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.error().message().find(c.field), std::string::npos)
        << c.body << " -> " << r.error().message();
  }
}

TEST(ObjectsTest, EventInClientGoForm) {
  ObjectRef lease{"Lease", "coordination.k8s.io/v1", "ns", "app", "u-1", "4711"};
  EventSpec e = leader_election_event(lease, "pod-a", "became leader", "leasehold", "pod-a",
                                      kNoon + microseconds(123456));
  auto body = encode_event(e);
  ASSERT_TRUE(body.ok()) << body.error().message();
  json out = json::parse(*body);
  EXPECT_EQ(out["apiVersion"], "v1");
  EXPECT_EQ(out["kind"], "Event");
  // client-go: "%v.%x" of the name and UnixNano.
  EXPECT_EQ(out["metadata"]["name"], "app.18eaaacd48974a00");
  EXPECT_EQ(out["metadata"]["namespace"], "ns");
  EXPECT_EQ(event_namespace(e), "ns");
  EXPECT_EQ(out["involvedObject"],
            json({{"kind", "Lease"}, {"apiVersion", "coordination.k8s.io/v1"}, {"namespace", "ns"},
                  {"name", "app"}, {"uid", "u-1"}, {"resourceVersion", "4711"}}));
  EXPECT_EQ(out["reason"], "LeaderElection");
  EXPECT_EQ(out["message"], "pod-a became leader");
  EXPECT_EQ(out["type"], "Normal");
  EXPECT_EQ(out["source"], json({{"component", "leasehold"}, {"host", "pod-a"}}));
  EXPECT_EQ(out["reportingComponent"], "leasehold");
  EXPECT_EQ(out["reportingInstance"], "pod-a");
  EXPECT_EQ(out["firstTimestamp"], "2026-11-23T12:00:00Z");
  EXPECT_EQ(out["lastTimestamp"], "2026-11-23T12:00:00Z");
  EXPECT_EQ(out["count"], 1);
  EXPECT_TRUE(out["eventTime"].is_null());
}

TEST(ObjectsTest, EventOptionalFormsAndNames) {
  EventSpec e;
  e.involved = {"Node", "v1", "", "node-3", "", ""};
  e.reason = "LeaderOnLostNode";
  e.message = std::string(2000, 'm');
  e.type = EventSpec::Type::kWarning;
  e.first_timestamp = kNoon;
  e.last_timestamp = kNoon + seconds(90);
  e.count = 3;
  e.name = "fixed-name";
  auto body = encode_event(e);
  ASSERT_TRUE(body.ok()) << body.error().message();
  json out = json::parse(*body);
  EXPECT_EQ(out["metadata"]["namespace"], "default");  // cluster-scoped involved object
  EXPECT_EQ(out["metadata"]["name"], "fixed-name");
  EXPECT_FALSE(out["involvedObject"].contains("namespace"));
  EXPECT_FALSE(out["involvedObject"].contains("uid"));
  EXPECT_EQ(out["type"], "Warning");
  EXPECT_EQ(out["count"], 3);
  EXPECT_EQ(out["lastTimestamp"], "2026-11-23T12:01:30Z");
  EXPECT_EQ(out["message"].get<std::string>().size(), 1024u);
  EXPECT_EQ(out["source"], json::object());

  // A cut never splits a UTF-8 sequence, and invalid UTF-8 does not throw.
  e.message = std::string(1023, 'm') + "\xc3\xbc";
  body = encode_event(e);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(json::parse(*body)["message"].get<std::string>().size(), 1023u);
  e.message = "bad \xff byte";
  e.reason = "R\xc3";
  ASSERT_TRUE(encode_event(e).ok());
}

TEST(ObjectsTest, EventErrorsNameTheField) {
  EventSpec ok = leader_election_event({"Lease", "coordination.k8s.io/v1", "ns", "app", "", ""},
                                       "a", "stopped leading", "leasehold", "h", kNoon);
  struct Case {
    void (*mutate)(EventSpec&);
    const char* field;
  } cases[] = {
      {[](EventSpec& e) { e.involved.kind.clear(); }, "involvedObject.kind"},
      {[](EventSpec& e) { e.involved.name.clear(); }, "involvedObject.name"},
      {[](EventSpec& e) { e.reason.clear(); }, "reason"},
      {[](EventSpec& e) { e.reason.assign(129, 'R'); }, "reason"},
      {[](EventSpec& e) { e.count = 0; }, "count"},
      {[](EventSpec& e) { e.ns = "other"; }, "metadata.namespace"},
      {[](EventSpec& e) {
         e.involved.ns.clear();
         e.ns = "other";
       },
       "metadata.namespace"},
  };
  for (const auto& c : cases) {
    EventSpec e = ok;
    c.mutate(e);
    auto r = encode_event(e);
    ASSERT_FALSE(r.ok()) << c.field;
    EXPECT_NE(r.error().message().find(c.field), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().message().rfind("Event ", 0), 0u) << r.error().message();
  }
  ASSERT_TRUE(encode_event(ok).ok());
}

TEST(ObjectsTest, DecodersRefuseHugeBodies) {
  std::string big = R"({"metadata":{"name":"n","resourceVersion":"1","x":")" +
                    std::string(5 << 20, 'a') + R"("}})";
  for (auto r : {decode_pod(big).ok(), decode_node(big).ok(), decode_lease_candidate(big).ok()}) {
    EXPECT_FALSE(r);
  }
  auto p = decode_pod(big);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("too large"), std::string::npos);
}

}  // namespace
}  // namespace leasehold::kube
