// The Lease in Kubernetes protobuf: the "k8s\0" + runtime.Unknown envelope,
// round trips in client-go's forms, fields others wrote (metadata and fields
// these messages do not know) kept by an update, watch frames, Status bodies,
// and truncated or garbage input refused with errors that say what was wrong.
#include "kube/lease_proto.h"
#include "kube/pb_wire.h"
#include "kube/watch_peek.h"
#include "support/lease_proto_oracle.h"
#include "support/lease_records.h"

#include <gtest/gtest.h>

#include "k8s.io/api/coordination/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/apis/meta/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/runtime/generated.pb.h"

namespace leasehold::kube {
namespace {

namespace coord = k8s::io::api::coordination::v1;
namespace meta = k8s::io::apimachinery::pkg::apis::meta::v1;
namespace rtpb = k8s::io::apimachinery::pkg::runtime;
using namespace std::chrono;

// Unknown fields as raw protobuf: field 99 (varint 42) and field 98 (bytes "future").
const std::string kUnknown = std::string("\x98\x06\x2a", 3) + std::string("\x92\x06\x06" "future", 9);

LeaseRecord record() { return testing::sample_lease_record(); }

// A Lease as the server sends it, with what others wrote and fields unknown
// at the top level, in metadata and in spec.
std::string server_lease_message() {
  meta::ObjectMeta m;
  m.set_name("app");
  m.set_namespace_("ns");
  m.set_resourceversion("4711");
  (*m.mutable_labels())["team"] = "x";
  (*m.mutable_annotations())["note"] = "keep me";
  auto* owner = m.add_ownerreferences();
  owner->set_apiversion("v1");
  owner->set_kind("Pod");
  owner->set_name("p");
  owner->set_uid("u1");
  m.add_finalizers("example.com/keep");
  m.add_managedfields()->set_manager("kube-controller-manager");
  meta::ObjectMeta meta_unknown;
  EXPECT_TRUE(meta_unknown.ParseFromString(m.SerializeAsString() + kUnknown));
  coord::LeaseSpec s;
  s.set_holderidentity("pod-b");
  s.set_leasedurationseconds(15);
  s.mutable_renewtime()->set_seconds(1'795'435'208);
  s.mutable_renewtime()->set_nanos(123'456'789);
  s.set_leasetransitions(4);
  s.set_strategy("OldestEmulationVersion");
  coord::LeaseSpec spec_unknown;
  EXPECT_TRUE(spec_unknown.ParseFromString(s.SerializeAsString() + kUnknown));
  coord::Lease l;
  *l.mutable_metadata() = meta_unknown;
  *l.mutable_spec() = spec_unknown;
  return l.SerializeAsString() + kUnknown;
}

std::string watch_frame(const std::string& type, const std::string& object_body) {
  meta::WatchEvent w;
  w.set_type(type);
  w.mutable_object()->set_raw(object_body);
  return w.SerializeAsString();
}

std::string status_body(int32_t code, const std::string& reason, const std::string& message) {
  meta::Status s;
  s.set_code(code);
  s.set_reason(reason);
  s.set_message(message);
  s.set_status("Failure");
  return pb::wrap("v1", "Status", s.SerializeAsString());
}

TEST(LeaseProtoTest, EnvelopeIsMagicThenRuntimeUnknown) {
  std::string body = pb::wrap("coordination.k8s.io/v1", "Lease", "raw bytes");
  ASSERT_EQ(body.substr(0, 4), std::string("k8s\0", 4));
  rtpb::Unknown u;
  ASSERT_TRUE(u.ParseFromString(body.substr(4)));
  EXPECT_EQ(u.typemeta().apiversion(), "coordination.k8s.io/v1");
  EXPECT_EQ(u.typemeta().kind(), "Lease");
  EXPECT_EQ(u.raw(), "raw bytes");
  EXPECT_FALSE(u.has_contentencoding());
  auto e = pb::unwrap(body);
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ(e->raw, "raw bytes");
}

TEST(LeaseProtoTest, CreateRoundTripsInClientGoForms) {
  auto body = pb::encode_lease_create("ns", "app", record());
  auto l = pb::decode_lease(body);
  ASSERT_FALSE(l.ok()) << "a created Lease has no resourceVersion yet";
  EXPECT_NE(l.error().message().find("resourceVersion"), std::string::npos) << l.error().message();
  auto e = pb::unwrap(body);
  ASSERT_TRUE(e.ok());
  coord::Lease m;
  ASSERT_TRUE(m.ParseFromString(e->raw));
  EXPECT_EQ(m.metadata().name(), "app");
  EXPECT_EQ(m.metadata().namespace_(), "ns");
  EXPECT_EQ(m.spec().holderidentity(), "pod-a");
  EXPECT_EQ(m.spec().leasedurationseconds(), 15);
  EXPECT_EQ(m.spec().acquiretime().seconds(), 1'795'435'200);
  EXPECT_EQ(m.spec().acquiretime().nanos(), 0);
  EXPECT_EQ(m.spec().renewtime().nanos(), 7000);
  EXPECT_TRUE(m.spec().has_leasetransitions());
  EXPECT_FALSE(m.spec().has_strategy());
  EXPECT_FALSE(m.spec().has_preferredholder());
  // As the server would return it: with a resourceVersion.
  m.mutable_metadata()->set_resourceversion("1");
  auto back = pb::decode_lease(pb::wrap("coordination.k8s.io/v1", "Lease", m.SerializeAsString()));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->versioned.version, "1");
  EXPECT_EQ(back->name, "app");
  EXPECT_EQ(back->format, WireFormat::kProtobuf);
  EXPECT_EQ(back->versioned.record, record());
}

TEST(LeaseProtoTest, DecodesWhatTheServerSends) {
  auto l = pb::decode_lease(pb::wrap("coordination.k8s.io/v1", "Lease", server_lease_message()));
  ASSERT_TRUE(l.ok()) << l.error().message();
  EXPECT_EQ(l->versioned.version, "4711");
  EXPECT_EQ(l->name, "app");
  const LeaseRecord& r = l->versioned.record;
  EXPECT_EQ(r.holder_identity, "pod-b");
  EXPECT_EQ(r.lease_duration_seconds, 15);
  EXPECT_EQ(r.lease_transitions, 4);
  EXPECT_FALSE(r.acquire_time);
  ASSERT_TRUE(r.renew_time);
  // Nanoseconds truncated to microseconds, as apimachinery's MicroTime.
  EXPECT_EQ(r.renew_time->time_since_epoch() % seconds(1), microseconds(123456));
  EXPECT_EQ(r.strategy, "OldestEmulationVersion");
}

TEST(LeaseProtoTest, UpdateKeepsMetadataAndUnknownFieldsAndDropsManagedFields) {
  auto l = pb::decode_lease(pb::wrap("coordination.k8s.io/v1", "Lease", server_lease_message()));
  ASSERT_TRUE(l.ok());
  auto e = pb::unwrap(encode_lease_update(*l, record()));
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ(e->kind, "Lease");
  EXPECT_EQ(e->api_version, "coordination.k8s.io/v1");
  coord::Lease out;
  ASSERT_TRUE(out.ParseFromString(e->raw));
  const meta::ObjectMeta& m = out.metadata();
  EXPECT_EQ(m.resourceversion(), "4711");  // the CAS precondition
  EXPECT_EQ(m.labels().at("team"), "x");
  EXPECT_EQ(m.annotations().at("note"), "keep me");
  ASSERT_EQ(m.ownerreferences_size(), 1);
  EXPECT_EQ(m.ownerreferences(0).uid(), "u1");
  ASSERT_EQ(m.finalizers_size(), 1);
  EXPECT_EQ(m.managedfields_size(), 0) << "omitted, so the server keeps its own";
  EXPECT_EQ(out.unknown_fields(), kUnknown);
  EXPECT_EQ(m.unknown_fields(), kUnknown);
  EXPECT_EQ(out.spec().unknown_fields(), kUnknown);
  EXPECT_EQ(out.spec().holderidentity(), "pod-a");
  EXPECT_EQ(out.spec().leasetransitions(), 5);
  EXPECT_EQ(out.spec().renewtime().seconds(), 1'795'435'200);
  EXPECT_EQ(out.spec().renewtime().nanos(), 7000);
  EXPECT_FALSE(out.spec().has_strategy()) << "empty strategy is not written, as client-go";
}

// As in the JSON codec: kube-apiserver refuses spec.preferredHolder without
// spec.strategy, so an admin's handoff travels in an annotation.
TEST(LeaseProtoTest, APreferredHolderWithoutAStrategyTravelsInAnAnnotation) {
  auto l = pb::decode_lease(pb::wrap("coordination.k8s.io/v1", "Lease", server_lease_message()));
  ASSERT_TRUE(l.ok());
  auto message = [](const std::string& body) {
    coord::Lease out;
    auto e = pb::unwrap(body);
    EXPECT_TRUE(e.ok() && out.ParseFromString(e->raw));
    return out;
  };
  LeaseRecord r = record();
  r.preferred_holder = "pod-c";
  coord::Lease asked = message(encode_lease_update(*l, r));
  EXPECT_FALSE(asked.spec().has_preferredholder());
  EXPECT_EQ(asked.metadata().annotations().at(kPreferredHolderAnnotation), "pod-c");
  EXPECT_EQ(asked.metadata().annotations().at("note"), "keep me");
  asked.mutable_metadata()->set_resourceversion("4712");
  auto back = pb::decode_lease(pb::wrap("coordination.k8s.io/v1", "Lease", asked.SerializeAsString()));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->versioned.record.preferred_holder, "pod-c");
  // The next write without one removes it, and nothing else.
  r.preferred_holder.clear();
  coord::Lease done = message(encode_lease_update(*back, r));
  EXPECT_EQ(done.metadata().annotations().count(kPreferredHolderAnnotation), 0u);
  EXPECT_EQ(done.metadata().annotations().at("note"), "keep me");
  // Coordinated election (a strategy): the spec field, as kube-apiserver sets it.
  r.strategy = "OldestEmulationVersion";
  r.preferred_holder = "pod-c";
  coord::Lease coordinated = message(encode_lease_update(*l, r));
  EXPECT_EQ(coordinated.spec().preferredholder(), "pod-c");
  EXPECT_EQ(coordinated.metadata().annotations().count(kPreferredHolderAnnotation), 0u);
  coord::Lease created = message(pb::encode_lease_create("ns", "app", back->versioned.record));
  EXPECT_EQ(created.metadata().annotations().at(kPreferredHolderAnnotation), "pod-c");
}

TEST(LeaseProtoTest, ReadsEveryFreeForm) {
  coord::Lease m;
  m.mutable_metadata()->set_resourceversion("1");
  auto nospec = pb::decode_lease_message(m.SerializeAsString());
  ASSERT_TRUE(nospec.ok()) << nospec.error().message();
  EXPECT_TRUE(nospec->versioned.record.is_free());
  m.mutable_spec()->set_holderidentity("");
  m.mutable_spec()->mutable_renewtime();  // Go's zero MicroTime: present, empty
  auto empty = pb::decode_lease_message(m.SerializeAsString());
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_TRUE(empty->versioned.record.is_free());
  EXPECT_FALSE(empty->versioned.record.renew_time);
}

TEST(LeaseProtoTest, RefusesGarbageWithErrorsNamingIt) {
  auto msg = [](const Result<Lease>& r) { return r.ok() ? std::string("accepted") : r.error().message(); };
  auto has = [](const std::string& s, const char* what) { return s.find(what) != std::string::npos; };
  std::string good = pb::wrap("coordination.k8s.io/v1", "Lease", server_lease_message());
  EXPECT_PRED2(has, msg(pb::decode_lease("{\"kind\":\"Lease\"}")), "magic");
  EXPECT_PRED2(has, msg(pb::decode_lease(std::string("k8s\0\xff\xff\xff", 7))), "runtime.Unknown");
  EXPECT_PRED2(has, msg(pb::decode_lease(pb::wrap("v1", "ConfigMap", server_lease_message()))), "kind");
  EXPECT_PRED2(has, msg(pb::decode_lease(pb::wrap("coordination.k8s.io/v1", "Lease", "\xff\xff"))), "Lease protobuf");
  rtpb::Unknown gz;
  gz.mutable_typemeta()->set_kind("Lease");
  gz.mutable_typemeta()->set_apiversion("coordination.k8s.io/v1");
  gz.set_raw(server_lease_message());
  gz.set_contentencoding("gzip");
  EXPECT_PRED2(has, msg(pb::decode_lease(std::string("k8s\0", 4) + gz.SerializeAsString())), "contentEncoding");
  // Every truncation of a valid body is refused, none read as another Lease.
  for (size_t cut = 0; cut < good.size(); ++cut) {
    auto r = pb::decode_lease(good.substr(0, cut));
    EXPECT_FALSE(r.ok()) << "accepted a body cut at " << cut << " of " << good.size();
  }
  coord::Lease bad;
  bad.mutable_metadata()->set_resourceversion("1");
  bad.mutable_spec()->set_leasedurationseconds(-1);
  EXPECT_PRED2(has, msg(pb::decode_lease_message(bad.SerializeAsString())), "spec.leaseDurationSeconds");
  bad.mutable_spec()->set_leasedurationseconds(1);
  bad.mutable_spec()->mutable_renewtime()->set_nanos(1'000'000'000);
  EXPECT_PRED2(has, msg(pb::decode_lease_message(bad.SerializeAsString())), "spec.renewTime");
  bad.mutable_spec()->mutable_renewtime()->set_nanos(0);
  bad.mutable_spec()->mutable_renewtime()->set_seconds(INT64_MAX);
  EXPECT_PRED2(has, msg(pb::decode_lease_message(bad.SerializeAsString())), "spec.renewTime");
}

TEST(LeaseProtoTest, WatchFrames) {
  std::string lease = pb::wrap("coordination.k8s.io/v1", "Lease", server_lease_message());
  for (auto [type, want] : {std::pair{"ADDED", WatchEvent::Type::kAdded}, {"MODIFIED", WatchEvent::Type::kModified},
                            {"DELETED", WatchEvent::Type::kDeleted}}) {
    auto ev = parse_watch_event(watch_frame(type, lease), WireFormat::kProtobuf);
    ASSERT_TRUE(ev.ok()) << type << ": " << ev.error().message();
    EXPECT_EQ(ev->type, want);
    EXPECT_EQ(ev->resource_version, "4711");
    ASSERT_TRUE(ev->lease);
    EXPECT_EQ(ev->lease->name, "app");
    EXPECT_EQ(ev->lease->versioned.record.holder_identity, "pod-b");
  }
  coord::Lease bm;
  bm.mutable_metadata()->set_resourceversion("5000");
  auto bookmark = parse_watch_event(
      watch_frame("BOOKMARK", pb::wrap("coordination.k8s.io/v1", "Lease", bm.SerializeAsString())),
      WireFormat::kProtobuf);
  ASSERT_TRUE(bookmark.ok()) << bookmark.error().message();
  EXPECT_EQ(bookmark->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(bookmark->resource_version, "5000");
  EXPECT_FALSE(bookmark->lease);
  auto gone = parse_watch_event(watch_frame("ERROR", status_body(410, "Expired", "too old resource version")),
                                WireFormat::kProtobuf);
  ASSERT_TRUE(gone.ok()) << gone.error().message();
  EXPECT_EQ(gone->type, WatchEvent::Type::kError);
  EXPECT_EQ(gone->error_code, 410);

  auto msg = [](const Result<WatchEvent>& r) { return r.ok() ? std::string("accepted") : r.error().message(); };
  auto has = [](const std::string& s, const char* what) { return s.find(what) != std::string::npos; };
  EXPECT_PRED2(has, msg(parse_watch_event(watch_frame("RENAMED", lease), WireFormat::kProtobuf)), "RENAMED");
  EXPECT_PRED2(has, msg(parse_watch_event(watch_frame("ADDED", server_lease_message()), WireFormat::kProtobuf)),
               "magic");
  EXPECT_PRED2(has,
               msg(parse_watch_event(watch_frame("ADDED", pb::wrap("v1", "ConfigMap", "")), WireFormat::kProtobuf)),
               "ConfigMap");
  EXPECT_PRED2(has, msg(parse_watch_event("\x0a\x05" "ADD", WireFormat::kProtobuf)), "WatchEvent");
  std::string frame = watch_frame("MODIFIED", lease);
  for (size_t cut = 0; cut < frame.size(); ++cut) {
    EXPECT_FALSE(parse_watch_event(frame.substr(0, cut), WireFormat::kProtobuf).ok()) << "cut at " << cut;
  }
}

// The shared watch recognises our own writes by type and resourceVersion
// alone: the walk to them agrees with the full decode on what the server
// sends, and whatever it cannot read (truncated, garbage) is left to it.
TEST(LeaseProtoTest, PeekReadsTypeAndVersionWithoutDecoding) {
  std::string lease = pb::wrap("coordination.k8s.io/v1", "Lease", server_lease_message());
  std::string frame = watch_frame("MODIFIED", lease);
  auto p = peek_watch_event(frame, WireFormat::kProtobuf);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, WatchEvent::Type::kModified);
  EXPECT_EQ(p->resource_version, "4711");
  auto full = parse_watch_event(frame, WireFormat::kProtobuf);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->lease->versioned.version, p->resource_version);
  EXPECT_EQ(peek_watch_event(watch_frame("ADDED", lease), WireFormat::kProtobuf)->type, WatchEvent::Type::kAdded);
  for (size_t cut = 0; cut < frame.size(); ++cut) {
    const std::string prefix = frame.substr(0, cut);  // the peek points into it
    auto part = peek_watch_event(prefix, WireFormat::kProtobuf);
    if (part) {
      EXPECT_EQ(part->resource_version, "4711") << "cut at " << cut;
    }
  }
  EXPECT_FALSE(peek_watch_event(watch_frame("MODIFIED", lease.substr(4)), WireFormat::kProtobuf)) << "no magic";
  EXPECT_FALSE(peek_watch_event(watch_frame("SOMETHING", lease), WireFormat::kProtobuf));
  EXPECT_FALSE(peek_watch_event(std::string("\xff\xff\xff", 3), WireFormat::kProtobuf));
}

TEST(LeaseProtoTest, StatusBodiesBecomeNamedErrors) {
  RequestInfo req{"update", "coordination.k8s.io", "leases", "ns", "app"};
  Error e = error_from_response(409, status_body(409, "Conflict", "the object has been modified"), req);
  EXPECT_EQ(e.code(), Code::kConflict);
  EXPECT_NE(e.message().find("the object has been modified"), std::string::npos) << e.message();
  Error exists = error_from_response(409, status_body(409, "AlreadyExists", "leases \"app\" already exists"),
                                     {"create", "coordination.k8s.io", "leases", "ns", "app"});
  EXPECT_EQ(exists.code(), Code::kAlreadyExists);
  // A torn Status still maps by HTTP status, without a server message.
  Error torn = error_from_response(404, status_body(404, "NotFound", "gone").substr(0, 9), req);
  EXPECT_EQ(torn.code(), Code::kNotFound);
  auto st = pb::decode_status(status_body(403, "Forbidden", "no"));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->code, 403);
  EXPECT_FALSE(pb::decode_status(pb::wrap("coordination.k8s.io/v1", "Lease", "")).ok());
}

TEST(LeaseProtoTest, DecodesByContentType) {
  std::string pbody = pb::wrap("coordination.k8s.io/v1", "Lease", server_lease_message());
  auto p = decode_lease(pbody, "application/vnd.kubernetes.protobuf");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->format, WireFormat::kProtobuf);
  auto j = decode_lease(R"({"metadata":{"name":"app","resourceVersion":"3"}})", "application/json");
  ASSERT_TRUE(j.ok()) << j.error().message();
  EXPECT_EQ(j->format, WireFormat::kJson);
  EXPECT_EQ(j->name, "app");
  EXPECT_FALSE(decode_lease(pbody, "application/json").ok());
  EXPECT_TRUE(is_protobuf_content_type("application/vnd.kubernetes.protobuf;stream=watch"));
  EXPECT_TRUE(is_protobuf_content_type("Application/Vnd.Kubernetes.Protobuf"));
  EXPECT_FALSE(is_protobuf_content_type("application/vnd.kubernetes.protobufx"));
  EXPECT_FALSE(is_protobuf_content_type("application/json"));
}

TEST(LeaseProtoTest, LengthPrefixedFramesSplitAcrossAnyChunking) {
  std::vector<std::string> frames = {"", "a", std::string(300, 'x'), std::string("\0\0\0\x01", 4)};
  std::string stream;
  for (auto& f : frames) {
    uint32_t n = static_cast<uint32_t>(f.size());
    stream += static_cast<char>(n >> 24);
    stream += static_cast<char>(n >> 16);
    stream += static_cast<char>(n >> 8);
    stream += static_cast<char>(n);
    stream += f;
  }
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{7}, stream.size()}) {
    LengthPrefixedFrames r(1024);
    std::vector<std::string> got;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      r.append(std::string_view(stream).substr(i, chunk));
      std::string_view f;
      uint64_t announced = 0;
      LengthPrefixedFrames::Next n;
      while ((n = r.next(f, announced)) == LengthPrefixedFrames::Next::kFrame) got.emplace_back(f);
      ASSERT_EQ(n, LengthPrefixedFrames::Next::kNeedMore);
    }
    EXPECT_EQ(got, frames) << "chunks of " << chunk;
    EXPECT_EQ(r.buffered(), 0u);
  }
  LengthPrefixedFrames r(1024);
  r.append(std::string("\0\0\x04\x01", 4));  // 1025 bytes announced
  std::string_view f;
  uint64_t announced = 0;
  EXPECT_EQ(r.next(f, announced), LengthPrefixedFrames::Next::kTooLarge);
  EXPECT_EQ(announced, 1025u);
}

// The codec reads the wire format by hand (kube/pb_wire.h). Its reader
// fails exactly where protobuf's parser does, on each rule at its edge.
TEST(LeaseProtoTest, TheWireReaderFailsWhereProtobufDoes) {
  auto groups = [](int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += '\x0b';  // field 1, start group
    for (int i = 0; i < depth; ++i) s += '\x0c';  // field 1, end group
    return s;
  };
  struct Case {
    std::string bytes;
    bool ok;
    const char* what;
  } cases[] = {
      {"", true, "empty"},
      {std::string("\x08\x01", 2), true, "a varint"},
      {std::string("\x08") + std::string(9, '\xff') + '\x01', true, "a varint of 10 bytes"},
      {std::string("\x08") + std::string(10, '\xff') + '\x01', false, "a varint of 11 bytes"},
      {std::string("\x08\xff", 2), false, "a varint cut short"},
      {std::string("\xf8\xff\xff\xff\x0f\x01", 6), true, "a tag of 5 bytes"},
      {std::string("\xf8\xff\xff\xff\x8f\x00\x01", 7), false, "a tag of 6 bytes"},
      {std::string("\x00\x01", 2), false, "tag 0"},
      {std::string("\x07\x01", 2), false, "field 0"},
      {std::string("\x0e\x01", 2), false, "wire type 6"},
      {std::string("\x0f\x01", 2), false, "wire type 7"},
      {std::string("\x0c", 1), false, "an end group with no start"},
      {std::string("\x0b\x14", 2), false, "a group ended by another number"},
      {std::string("\x0b", 1), false, "a group never ended"},
      {groups(100), true, "groups 100 deep"},
      {groups(101), false, "groups 101 deep"},
      {std::string("\x12\x03" "ab", 4), false, "a length past the end"},
      {std::string("\x12\x02" "ab", 4), true, "a length to the end"},
      {std::string("\x09") + std::string(7, '\0'), false, "a fixed64 cut short"},
      {std::string("\x09") + std::string(8, '\0'), true, "a fixed64"},
      {std::string("\x0d") + std::string(3, '\0'), false, "a fixed32 cut short"},
      {std::string("\x0d") + std::string(4, '\0'), true, "a fixed32"},
  };
  for (const Case& c : cases) {
    pbw::Reader r(c.bytes);
    pbw::Field f;
    while (r.next(f)) {
    }
    EXPECT_EQ(!r.failed(), c.ok) << c.what;
    EXPECT_EQ(pb::oracle::well_formed(c.bytes), c.ok) << c.what << " (protobuf)";
  }
}

// What the hand codec writes carries the same Lease as what protobuf's
// classes write from the same base and record, for the base the server
// sends with fields of every kind, and each of the record's forms.
TEST(LeaseProtoTest, TheHandCodecWritesWhatProtobufWrites) {
  std::string raw = server_lease_message();
  auto fast = pb::decode_lease_message(raw);
  auto ref = pb::oracle::decode_lease_message(raw);
  ASSERT_TRUE(fast.ok() && ref.ok());
  EXPECT_EQ(fast->versioned.version, ref->versioned.version);
  EXPECT_TRUE(fast->versioned.record == ref->versioned.record);
  EXPECT_EQ(fast->name, ref->name);
  std::vector<LeaseRecord> records(6, record());
  records[1].preferred_holder = "pod-c";
  records[2].strategy = "OldestEmulationVersion";
  records[2].preferred_holder = "pod-c";
  records[3].acquire_time.reset();
  records[3].renew_time.reset();
  records[4].holder_identity.clear();
  records[5].lease_transitions = -1;
  records[5].renew_time = WallTime(std::chrono::microseconds(-1'500'001));  // before 1970
  for (size_t i = 0; i < records.size(); ++i) {
    std::string mine = encode_lease_update(*fast, records[i]);
    ASSERT_FALSE(pb::oracle::canonical_lease(mine).empty()) << i;
    EXPECT_EQ(pb::oracle::canonical_lease(mine), pb::oracle::canonical_lease(pb::oracle::encode_lease_update(*ref, records[i])))
        << "record " << i;
    EXPECT_EQ(pb::oracle::canonical_lease(pb::encode_lease_create("ns", "app", records[i])),
              pb::oracle::canonical_lease(pb::oracle::encode_lease_create("ns", "app", records[i])))
        << "record " << i;
  }
  // The envelope, byte for byte.
  EXPECT_EQ(pb::wrap("coordination.k8s.io/v1", "Lease", raw), pb::oracle::wrap("coordination.k8s.io/v1", "Lease", raw));
}

}  // namespace
}  // namespace leasehold::kube
