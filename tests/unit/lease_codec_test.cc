// The Lease codec: client-go's field forms, every "free" form, preservation
// of fields written by others, and Status bodies as named errors.
#include "kube/lease_codec.h"

#include <gtest/gtest.h>

#include "support/lease_records.h"

namespace leasehold::kube {
namespace {

using nlohmann::json;
using namespace std::chrono;

constexpr const char* kServerLease = R"({
  "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
  "metadata": {"name": "app", "namespace": "ns", "resourceVersion": "4711",
               "labels": {"team": "x"}, "annotations": {"note": "keep me"},
               "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}]},
  "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15,
           "acquireTime": "2026-11-23T10:00:00.000000Z", "renewTime": "2026-11-23T10:00:08.123456Z",
           "leaseTransitions": 4, "futureField": {"x": 1}},
  "status": {"somethingNew": true}
})";

TEST(LeaseCodecTest, DecodesWhatTheServerSends) {
  auto l = decode_lease(kServerLease);
  ASSERT_TRUE(l.ok()) << l.error().message();
  EXPECT_EQ(l->versioned.version, "4711");
  const LeaseRecord& r = l->versioned.record;
  EXPECT_EQ(r.holder_identity, "pod-b");
  EXPECT_EQ(r.lease_duration_seconds, 15);
  EXPECT_EQ(r.lease_transitions, 4);
  ASSERT_TRUE(r.renew_time);
  EXPECT_EQ(r.renew_time->time_since_epoch() % seconds(1), microseconds(123456));
}

TEST(LeaseCodecTest, ReadsEveryFreeForm) {
  for (const char* spec : {R"({})", R"({"holderIdentity": null})", R"({"holderIdentity": ""})",
                           R"({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": "1970-01-01T00:00:00.000000Z"})"}) {
    std::string body = std::string(R"({"metadata":{"resourceVersion":"1"},"spec":)") + spec + "}";
    auto l = decode_lease(body);
    ASSERT_TRUE(l.ok()) << spec << ": " << l.error().message();
    EXPECT_TRUE(l->versioned.record.is_free()) << spec;
  }
  auto nospec = decode_lease(R"({"metadata":{"resourceVersion":"1"}})");
  ASSERT_TRUE(nospec.ok());
  EXPECT_TRUE(nospec->versioned.record.is_free());
}

TEST(LeaseCodecTest, UpdateKeepsWhatOthersWroteAndWritesClientGoForms) {
  auto l = decode_lease(kServerLease);
  ASSERT_TRUE(l.ok());
  LeaseRecord r = testing::sample_lease_record();
  json out = json::parse(encode_lease_update(l->object, r));
  EXPECT_EQ(out["metadata"]["resourceVersion"], "4711");  // the CAS precondition
  EXPECT_EQ(out["metadata"]["labels"]["team"], "x");
  EXPECT_EQ(out["metadata"]["annotations"]["note"], "keep me");
  EXPECT_EQ(out["metadata"]["ownerReferences"][0]["uid"], "u1");
  EXPECT_EQ(out["spec"]["futureField"]["x"], 1);
  EXPECT_EQ(out["status"]["somethingNew"], true);
  EXPECT_EQ(out["spec"]["holderIdentity"], "pod-a");
  EXPECT_EQ(out["spec"]["leaseDurationSeconds"], 15);
  EXPECT_EQ(out["spec"]["leaseTransitions"], 5);
  EXPECT_EQ(out["spec"]["acquireTime"], "2026-11-23T12:00:00.000000Z");
  EXPECT_EQ(out["spec"]["renewTime"], "2026-11-23T12:00:00.000007Z");
  EXPECT_FALSE(out["spec"].contains("strategy"));
  EXPECT_FALSE(out["spec"].contains("preferredHolder"));
}

// managedFields are not kept (memory per Lease) and so not sent back: an
// update without them keeps the server's. Everything else others wrote stays.
TEST(LeaseCodecTest, APreferredHolderWithoutAStrategyTravelsInAnAnnotation) {
  // kube-apiserver refuses spec.preferredHolder without spec.strategy.
  auto l = decode_lease(kServerLease);
  ASSERT_TRUE(l.ok());
  LeaseRecord r = l->versioned.record;
  r.preferred_holder = "pod-c";
  json asked = json::parse(encode_lease_update(l->object, r));
  EXPECT_FALSE(asked["spec"].contains("preferredHolder"));
  EXPECT_EQ(asked["metadata"]["annotations"][kPreferredHolderAnnotation], "pod-c");
  EXPECT_EQ(asked["metadata"]["annotations"]["note"], "keep me");
  auto back = decode_lease(asked.dump());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->versioned.record.preferred_holder, "pod-c");
  // The next write without one (the hand-over, a renewal) removes it, and nothing else.
  r.preferred_holder.clear();
  json done = json::parse(encode_lease_update(back->object, r));
  EXPECT_FALSE(done["metadata"]["annotations"].contains(kPreferredHolderAnnotation));
  EXPECT_EQ(done["metadata"]["annotations"]["note"], "keep me");
  // Coordinated election (a strategy): the spec field, as kube-apiserver sets it.
  r.strategy = "OldestEmulationVersion";
  r.preferred_holder = "pod-c";
  json coordinated = json::parse(encode_lease_update(l->object, r));
  EXPECT_EQ(coordinated["spec"]["preferredHolder"], "pod-c");
  EXPECT_FALSE(coordinated["metadata"]["annotations"].contains(kPreferredHolderAnnotation));
  json created = json::parse(encode_lease_create("ns", "app", back->versioned.record));
  EXPECT_EQ(created["metadata"]["annotations"][kPreferredHolderAnnotation], "pod-c");
}

TEST(LeaseCodecTest, ManagedFieldsAreDroppedAndNothingElse) {
  json in = json::parse(kServerLease);
  in["metadata"]["managedFields"] = json::array({{{"manager", "kube-controller-manager"}, {"operation", "Update"},
                                                  {"fieldsV1", {{"f:spec", {{"f:holderIdentity", json::object()}}}}}}});
  auto l = decode_lease(in.dump());
  ASSERT_TRUE(l.ok()) << l.error().message();
  EXPECT_FALSE(l->object["metadata"].contains("managedFields"));
  LeaseRecord r = l->versioned.record;
  json out = json::parse(encode_lease_update(l->object, r));
  EXPECT_FALSE(out["metadata"].contains("managedFields"));
  EXPECT_EQ(out["metadata"]["annotations"]["note"], "keep me");
  EXPECT_EQ(out["metadata"]["resourceVersion"], "4711");
}

TEST(LeaseCodecTest, ReleaseAndCreateForms) {
  LeaseRecord rel;
  rel.lease_duration_seconds = 1;
  rel.lease_transitions = 5;
  rel.strategy = "OldestEmulationVersion";
  json out = json::parse(encode_lease_create("ns", "app", rel));
  EXPECT_EQ(out["apiVersion"], "coordination.k8s.io/v1");
  EXPECT_EQ(out["metadata"]["namespace"], "ns");
  EXPECT_EQ(out["spec"]["holderIdentity"], "");  // client-go writes "" rather than omitting
  EXPECT_EQ(out["spec"]["leaseDurationSeconds"], 1);
  EXPECT_EQ(out["spec"]["strategy"], "OldestEmulationVersion");
  EXPECT_FALSE(out["metadata"].contains("resourceVersion"));
}

TEST(LeaseCodecTest, RejectsMalformedLeasesNamingTheField) {
  struct {
    const char* body;
    const char* says;
  } cases[] = {
      {"", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"kind":"ConfigMap","metadata":{"resourceVersion":"1"}})", "kind Lease"},
      {R"({"spec":{}})", "metadata"},
      {R"({"metadata":{}})", "resourceVersion"},
      {R"({"metadata":{"resourceVersion":"1"},"spec":{"leaseDurationSeconds":"15"}})", "spec.leaseDurationSeconds"},
      {R"({"metadata":{"resourceVersion":"1"},"spec":{"leaseTransitions":-1}})", "spec.leaseTransitions"},
      {R"({"metadata":{"resourceVersion":"1"},"spec":{"renewTime":"yesterday"}})", "spec.renewTime"},
      {R"({"metadata":{"resourceVersion":"1"},"spec":{"holderIdentity":7}})", "spec.holderIdentity"},
  };
  for (const auto& c : cases) {
    auto l = decode_lease(c.body);
    ASSERT_FALSE(l.ok()) << c.body;
    EXPECT_NE(l.error().message().find(c.says), std::string::npos)
        << "\"" << l.error().message() << "\" should mention " << c.says;
  }
}

TEST(LeaseCodecTest, StatusBodiesBecomeNamedErrors) {
  RequestInfo req{"update", "coordination.k8s.io", "leases", "ns", "app"};
  auto conflict = error_from_response(409, R"({"kind":"Status","reason":"Conflict","message":"the object has been modified"})", req);
  EXPECT_EQ(conflict.code(), Code::kConflict);
  EXPECT_NE(conflict.message().find("update leases.coordination.k8s.io ns/app"), std::string::npos);
  auto exists = error_from_response(409, R"({"reason":"AlreadyExists"})", {"create", "coordination.k8s.io", "leases", "ns", "app"});
  EXPECT_EQ(exists.code(), Code::kAlreadyExists);
  auto forbidden = error_from_response(403, R"({"message":"User \"nobody\" cannot update"})", req);
  EXPECT_EQ(forbidden.code(), Code::kForbidden);
  EXPECT_NE(forbidden.message().find("grant verb \"update\" on resource \"leases\" in API group \"coordination.k8s.io\" in namespace \"ns\""),
            std::string::npos) << forbidden.message();
  EXPECT_EQ(error_from_response(401, "", req).code(), Code::kUnauthorized);
  EXPECT_EQ(error_from_response(404, "not json", req).code(), Code::kNotFound);
  EXPECT_EQ(error_from_response(410, "", req).code(), Code::kGone);
  EXPECT_EQ(error_from_response(429, "", req).code(), Code::kTooManyRequests);
  EXPECT_EQ(error_from_response(503, "", req).code(), Code::kUnavailable);
  EXPECT_EQ(error_from_response(504, "", req).code(), Code::kTimeout);
  EXPECT_EQ(error_from_response(422, "{}", req).code(), Code::kInvalid);
}

}  // namespace
}  // namespace leasehold::kube

namespace leasehold::kube {
namespace {

TEST(WatchEventTest, ParsesEveryType) {
  auto added = parse_watch_event(
      R"({"type":"ADDED","object":{"kind":"Lease","metadata":{"resourceVersion":"9"},"spec":{"holderIdentity":"a"}}})");
  ASSERT_TRUE(added.ok()) << added.error().message();
  EXPECT_EQ(added->type, WatchEvent::Type::kAdded);
  EXPECT_EQ(added->resource_version, "9");
  EXPECT_EQ(added->lease->versioned.record.holder_identity, "a");
  auto deleted = parse_watch_event(R"({"type":"DELETED","object":{"metadata":{"resourceVersion":"10"}}})");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->type, WatchEvent::Type::kDeleted);
  auto bookmark = parse_watch_event(R"({"type":"BOOKMARK","object":{"kind":"Lease","metadata":{"resourceVersion":"12"}}})");
  ASSERT_TRUE(bookmark.ok());
  EXPECT_EQ(bookmark->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(bookmark->resource_version, "12");
  auto error = parse_watch_event(R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})");
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->type, WatchEvent::Type::kError);
  EXPECT_EQ(error->error_code, 410);
  for (const char* bad : {"", "{", "[]", R"({"type":"ADDED"})", R"({"object":{}})", R"({"type":"NEW","object":{}})",
                          R"({"type":"MODIFIED","object":{"metadata":{}}})"}) {
    EXPECT_FALSE(parse_watch_event(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace leasehold::kube
