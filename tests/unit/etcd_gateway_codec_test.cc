// etcd's JSON gateway codec: request bodies in protojson's forms, answers as
// etcd v3.6's gateway writes them (64-bit integers as strings, bytes in
// base64, zero values left out), every error form, and malformed answers
// refused with the field named. Also the shared base64.
#include "etcd/gateway_codec.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <limits>

#include "core/base64.h"

namespace leasehold::etcd {
namespace {

using nlohmann::json;

// A lease ID above 2^53 whose nearest double is another number: it survives
// only if it is never parsed as a double. 0x694d8d83858ef0c1.
constexpr int64_t kLease = 7587876543210123457;
constexpr const char* kLeaseText = "7587876543210123457";
// A real-looking header: cluster and member IDs use all 64 bits.
constexpr const char* kHeader =
    R"("header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"42","raft_term":"7"})";

std::string with_header(const std::string& rest) { return "{" + std::string(kHeader) + (rest.empty() ? "" : "," + rest) + "}"; }

void expect_header(const ResponseHeader& h) {
  EXPECT_EQ(h.cluster_id, 14841639068965178418ULL);
  EXPECT_EQ(h.member_id, 10276657743932975437ULL);
  EXPECT_EQ(h.revision, 42);
  EXPECT_EQ(h.raft_term, 7U);
}

// Expects `r` to be Invalid with `field` in its message.
template <class T>
void expect_names(const Result<T>& r, const std::string& field) {
  ASSERT_FALSE(r.ok()) << "accepted; wanted an error naming " << field;
  EXPECT_EQ(r.error().code(), Code::kInvalid) << r.error().message();
  EXPECT_NE(r.error().message().find(field), std::string::npos) << r.error().message();
}

TEST(Base64Test, RoundTripsEveryByteAndReadsWhatGoWrites) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    auto back = base64_decode(base64_encode(all.substr(0, n)));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, all.substr(0, n));
  }
  EXPECT_EQ(base64_encode("\xff\xfe"), "//4=");
  EXPECT_EQ(base64_decode("//4"), std::optional<std::string>("\xff\xfe"));   // unpadded
  EXPECT_EQ(base64_decode("__4="), std::optional<std::string>("\xff\xfe"));  // URL-safe
  EXPECT_EQ(base64_decode("Q0VS\r\nVA=="), std::optional<std::string>("CERT"));
  for (const char* bad : {"Q0 VS", "Q=VS", "Q0VSV", "Q0VSVA=", "Q0VSVA===", "Q0VS*A==", "=="}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

TEST(EtcdGatewayCodecTest, PrefixRangeEndIsClientv3s) {
  EXPECT_EQ(prefix_range_end("app/"), "app0");
  EXPECT_EQ(prefix_range_end("a\xff"), "b");
  EXPECT_EQ(prefix_range_end("a\xff\xff"), "b");
  EXPECT_EQ(prefix_range_end("k\xfe"), "k\xff");
  EXPECT_EQ(prefix_range_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
}

TEST(EtcdGatewayCodecTest, ElectionKeysAreGoHexOfTheLeaseID) {
  EXPECT_EQ(lease_hex(kLease), "694d8d83858ef0c1");
  EXPECT_EQ(lease_hex(0), "0");
  EXPECT_EQ(lease_hex(255), "ff");
  EXPECT_EQ(lease_hex(-1), "-1");
  EXPECT_EQ(lease_hex(std::numeric_limits<int64_t>::min()), "-8000000000000000");
  EXPECT_EQ(lease_hex(std::numeric_limits<int64_t>::max()), "7fffffffffffffff");
  EXPECT_EQ(election_key("app", kLease), "app/694d8d83858ef0c1");
  EXPECT_EQ(election_key("app/", 1), "app//1");  // Go's NewElection appends "/" to whatever it is given
  for (int64_t id : {kLease, int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min(),
                     std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(parse_lease_hex(lease_hex(id)), std::optional<int64_t>(id)) << id;
  }
  for (const char* bad : {"", "-", "-0", "01", "0x1", "694D8D83858EF0C1", "8000000000000000",
                          "-8000000000000001", "10000000000000000", " 1", "1g"}) {
    EXPECT_FALSE(parse_lease_hex(bad).has_value()) << bad;
  }
}

TEST(EtcdGatewayCodecTest, LeaseRequestsCarryIDsAsDecimalStrings) {
  EXPECT_EQ(json::parse(encode_lease_grant(15)), json::parse(R"({"TTL":"15"})"));
  EXPECT_EQ(json::parse(encode_lease_grant(15, kLease)), json::parse(R"({"TTL":"15","ID":"7587876543210123457"})"));
  EXPECT_EQ(encode_lease_keep_alive(kLease), std::string(R"({"ID":")") + kLeaseText + "\"}");
  EXPECT_EQ(encode_lease_revoke(kLease), std::string(R"({"ID":")") + kLeaseText + "\"}");
  EXPECT_EQ(json::parse(encode_lease_time_to_live(kLease, true)), json::parse(R"({"ID":"7587876543210123457","keys":true})"));
  EXPECT_EQ(json::parse(encode_lease_time_to_live(-5)), json::parse(R"({"ID":"-5"})"));
}

TEST(EtcdGatewayCodecTest, RangeLeavesZeroFieldsOutAndNamesEnums) {
  // The leader of an election: the oldest key under the prefix.
  RangeRequest leader{.key = "app/", .range_end = prefix_range_end("app/"), .limit = 1};
  leader.sort_order = SortOrder::kAscend;
  leader.sort_target = SortTarget::kCreate;
  EXPECT_EQ(json::parse(encode_range(leader)),
            json::parse(R"({"key":"YXBwLw==","range_end":"YXBwMA==","limit":"1","sort_order":"ASCEND","sort_target":"CREATE"})"));
  RangeRequest all{.key = "k\xff", .range_end = std::string(1, '\0'), .revision = 9, .serializable = true,
                   .keys_only = true, .max_create_revision = kLease};
  EXPECT_EQ(json::parse(encode_range(all)),
            json::parse(R"({"key":"a/8=","range_end":"AA==","revision":"9","serializable":true,"keys_only":true,"max_create_revision":"7587876543210123457"})"));
  EXPECT_EQ(json::parse(encode_range({.key = "k"})), json::parse(R"({"key":"aw=="})"));
}

TEST(EtcdGatewayCodecTest, PutAndDeleteRange) {
  EXPECT_EQ(json::parse(encode_put({"app/694d8d83858ef0c1", "pod-a", kLease})),
            json::parse(R"({"key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE=","value":"cG9kLWE=","lease":"7587876543210123457"})"));
  EXPECT_EQ(json::parse(encode_put({"k", "", 0})), json::parse(R"({"key":"aw=="})"));
  EXPECT_EQ(json::parse(encode_delete_range({"app/", "app0"})), json::parse(R"({"key":"YXBwLw==","range_end":"YXBwMA=="})"));
}

TEST(EtcdGatewayCodecTest, TxnOfACampaignNamesTheZeroCreateRevision) {
  // concurrency.Election.Campaign: create the key only if it does not exist, else read it.
  const std::string key = election_key("app", kLease);
  TxnRequest t;
  t.compare.push_back(Compare::create_revision(key, 0));
  t.success.push_back(PutRequest{key, "pod-a", kLease});
  t.failure.push_back(RangeRequest{.key = key});
  json body = json::parse(encode_txn(t));
  EXPECT_EQ(body, json::parse(R"({
    "compare":[{"result":"EQUAL","target":"CREATE","key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE=","create_revision":"0"}],
    "success":[{"request_put":{"key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE=","value":"cG9kLWE=","lease":"7587876543210123457"}}],
    "failure":[{"request_range":{"key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE="}}]})"));

  // A release: delete our key only while it is still the one of our term.
  TxnRequest release;
  release.compare = {Compare::create_revision(key, 17), Compare::value_is(key, "pod-a"),
                     Compare::lease_is(key, kLease), Compare::mod_revision(key, 3, Compare::Op::kLess),
                     Compare::version(key, 0, Compare::Op::kGreater)};
  release.success.push_back(DeleteRangeRequest{key, ""});
  json r = json::parse(encode_txn(release));
  EXPECT_EQ(r["compare"][0], json::parse(R"({"result":"EQUAL","target":"CREATE","key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE=","create_revision":"17"})"));
  EXPECT_EQ(r["compare"][1]["target"], "VALUE");
  EXPECT_EQ(r["compare"][1]["value"], "cG9kLWE=");
  EXPECT_EQ(r["compare"][2]["target"], "LEASE");
  EXPECT_EQ(r["compare"][2]["lease"], kLeaseText);
  EXPECT_EQ(r["compare"][3]["result"], "LESS");
  EXPECT_EQ(r["compare"][3]["mod_revision"], "3");
  EXPECT_EQ(r["compare"][4]["result"], "GREATER");
  EXPECT_EQ(r["compare"][4]["version"], "0");
  EXPECT_EQ(r["success"], json::parse(R"([{"request_delete_range":{"key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE="}}])"));
  EXPECT_FALSE(r.contains("failure"));
}

TEST(EtcdGatewayCodecTest, WatchRequestsAreOneLineEach) {
  WatchCreateRequest w{.key = "app/", .range_end = "app0", .start_revision = 43, .prev_kv = true,
                       .progress_notify = true, .no_put = true};
  std::string line = encode_watch_create(w);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(json::parse(line), json::parse(R"({"create_request":{"key":"YXBwLw==","range_end":"YXBwMA==",
    "start_revision":"43","prev_kv":true,"progress_notify":true,"filters":["NOPUT"]}})"));
  EXPECT_EQ(json::parse(encode_watch_create({.key = "k"})), json::parse(R"({"create_request":{"key":"aw=="}})"));
  EXPECT_EQ(encode_watch_cancel(3), "{\"cancel_request\":{\"watch_id\":\"3\"}}\n");
  EXPECT_EQ(encode_watch_cancel(0), "{\"cancel_request\":{}}\n");  // watch 0: the field's zero value
  EXPECT_EQ(encode_watch_progress(), "{\"progress_request\":{}}\n");
}

TEST(EtcdGatewayCodecTest, AuthenticateBodyAndAnswer) {
  EXPECT_EQ(json::parse(encode_authenticate("root", "p\"w")), json::parse(R"({"name":"root","password":"p\"w"})"));
  EXPECT_FALSE(encode_authenticate("bad\xff", "x").empty());  // not UTF-8: written, not thrown
  auto a = decode_authenticate(with_header(R"("token":"ZAbCdE.42")"));
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->token, "ZAbCdE.42");
  expect_header(a->header);
  expect_names(decode_authenticate(with_header("")), "token");
}

TEST(EtcdGatewayCodecTest, LeaseGrantKeepsIDsAbove2To53Exactly) {
  auto g = decode_lease_grant(with_header(std::string(R"("ID":")") + kLeaseText + R"(","TTL":"15")"));
  ASSERT_TRUE(g.ok()) << g.error().message();
  EXPECT_EQ(g->id, kLease);
  EXPECT_EQ(g->ttl, 15);
  expect_header(g->header);
  expect_names(decode_lease_grant(with_header(R"("TTL":"15")")), "ID");
  expect_names(decode_lease_grant(with_header(R"("ID":"1")")), "TTL");
  expect_names(decode_lease_grant(with_header(R"("ID":7.587876543210124e18,"TTL":"15")")), "ID");
  auto err = decode_lease_grant(with_header(R"("error":"lessor is full")"));
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().message().find("lessor is full"), std::string::npos);
}

TEST(EtcdGatewayCodecTest, KeepAliveStreamLinesAndTheGoneLease) {
  auto live = decode_lease_keep_alive(std::string(R"({"result":{)") + kHeader + R"(,"ID":")" + kLeaseText + R"(","TTL":"15"}})");
  ASSERT_TRUE(live.ok()) << live.error().message();
  const auto& k = std::get<LeaseKeepAliveResponse>(*live);
  EXPECT_EQ(k.id, kLease);
  EXPECT_EQ(k.ttl, 15);
  EXPECT_FALSE(k.lease_gone());
  expect_header(k.header);
  // etcd answers a keepalive of an unknown lease with TTL 0, which protojson leaves out.
  auto gone = decode_lease_keep_alive(std::string(R"({"result":{)") + kHeader + R"(,"ID":")" + kLeaseText + R"("}})");
  ASSERT_TRUE(gone.ok()) << gone.error().message();
  EXPECT_TRUE(std::get<LeaseKeepAliveResponse>(*gone).lease_gone());
  auto bare = decode_lease_keep_alive(with_header(R"("ID":"5","TTL":"9")"));
  ASSERT_TRUE(bare.ok()) << bare.error().message();
  EXPECT_EQ(std::get<LeaseKeepAliveResponse>(*bare).ttl, 9);
  auto err = decode_lease_keep_alive(R"({"error":{"code":14,"message":"etcdserver: no leader"}})");
  ASSERT_TRUE(err.ok()) << err.error().message();
  const auto& e = std::get<GatewayError>(*err);
  EXPECT_EQ(e.fault, Fault::kUnavailable);
  EXPECT_EQ(e.to_error().code(), Code::kUnavailable);
  expect_names(decode_lease_keep_alive(R"({"result":{"ID":"5","TTL":"1x"}})"), "result.TTL");
}

TEST(EtcdGatewayCodecTest, TimeToLiveOfAGoneLeaseIsMinusOne) {
  auto t = decode_lease_time_to_live(with_header(R"("ID":"7587876543210123457","TTL":"-1")"));
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->id, kLease);
  EXPECT_TRUE(t->lease_gone());
  auto live = decode_lease_time_to_live(with_header(R"("ID":"5","grantedTTL":"15","keys":["YXBwLzU=","/w=="])"));
  ASSERT_TRUE(live.ok()) << live.error().message();
  EXPECT_FALSE(live->lease_gone());  // TTL 0: expires within the second
  EXPECT_EQ(live->granted_ttl, 15);
  EXPECT_EQ(live->keys, (std::vector<std::string>{"app/5", "\xff"}));
  expect_names(decode_lease_time_to_live(with_header(R"("keys":["YXBw","%%"])")), "keys[1]");
}

TEST(EtcdGatewayCodecTest, RangeAnswerWithBinaryKeysAndMissingZeroFields) {
  auto r = decode_range(with_header(R"("kvs":[
      {"key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE=","create_revision":"17","mod_revision":"17","version":"1",
       "value":"cG9kLWE=","lease":"7587876543210123457"},
      {"key":"a/8=","create_revision":"18","mod_revision":"20","version":"3"}],"count":"2")"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  expect_header(r->header);
  ASSERT_EQ(r->kvs.size(), 2U);
  EXPECT_EQ(r->kvs[0].key, "app/694d8d83858ef0c1");
  EXPECT_EQ(r->kvs[0].value, "pod-a");
  EXPECT_EQ(r->kvs[0].create_revision, 17);
  EXPECT_EQ(r->kvs[0].lease, kLease);
  EXPECT_EQ(r->kvs[1].key, "k\xff");
  EXPECT_EQ(r->kvs[1].value, "");  // left out: empty
  EXPECT_EQ(r->kvs[1].lease, 0);
  EXPECT_EQ(r->kvs[1].version, 3);
  EXPECT_EQ(r->count, 2);
  EXPECT_FALSE(r->more);
  auto none = decode_range(with_header(""));  // nothing under the prefix: no kvs, no count
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(none->kvs.empty());
  EXPECT_EQ(none->count, 0);
  // Integers as JSON numbers are read too (protojson accepts both); exactly.
  auto numbers = decode_range(R"({"header":{"revision":9007199254740993},"count":1,"more":true,"kvs":[{"key":"aw==","lease":7587876543210123457}]})");
  ASSERT_TRUE(numbers.ok()) << numbers.error().message();
  EXPECT_EQ(numbers->header.revision, 9007199254740993);
  EXPECT_EQ(numbers->kvs[0].lease, kLease);
  EXPECT_TRUE(numbers->more);
}

TEST(EtcdGatewayCodecTest, MalformedAnswersNameTheField) {
  expect_names(decode_range(with_header(R"("kvs":[{"key":"aw=="},{"key":"aw==","mod_revision":"x"}])")), "kvs[1].mod_revision");
  expect_names(decode_range(with_header(R"("kvs":[{"key":"not base64!"}])")), "kvs[0].key");
  expect_names(decode_range(with_header(R"("kvs":[{"value":"aw=="}])")), "kvs[0].key: missing");
  expect_names(decode_range(with_header(R"("kvs":{})")), "kvs");
  expect_names(decode_range(with_header(R"("more":"yes")")), "more");
  expect_names(decode_range(R"({"header":{"revision":1.5}})"), "header.revision");
  expect_names(decode_range(R"({"header":{"cluster_id":"-1"}})"), "header.cluster_id");
  expect_names(decode_range(R"({"header":{"revision":"9223372036854775808"}})"), "header.revision");
  expect_names(decode_range(R"({"header":{"revision":" 1"}})"), "header.revision");
  expect_names(decode_range(R"({"header":[]})"), "header");
  expect_names(decode_range("{\"kvs\":"), "not valid JSON");
  expect_names(decode_range("[1]"), "not a JSON object");
  expect_names(decode_put(R"({"header":{"raft_term":true}})"), "header.raft_term");
  expect_names(decode_delete_range(with_header(R"("deleted":"one")")), "deleted");
  expect_names(decode_lease_revoke(R"({"header":"x"})"), "header");
  expect_names(decode_watch_line(R"({"result":[]})"), "result");
  expect_names(decode_watch_line(R"({"header":{}})"), "neither result nor error");
}

// A few hundred KB of brackets where a key belongs: refused, naming the
// field. Describing the value once dumped it whole, one stack frame per level
// (review: a stack overflow on the transport's thread).
TEST(EtcdGatewayCodecTest, ADeeplyNestedValueIsRefusedWithoutRecursion) {
  const size_t depth = 300'000;
  auto r = decode_range(with_header(R"("kvs":[{"key":)" + std::string(depth, '[') + std::string(depth, ']') + "}]"));
  expect_names(r, "kvs[0].key");
  EXPECT_NE(r.error().message().find("nested more than 32 deep"), std::string::npos) << r.error().message();
  // A shallow one is still shown.
  auto shallow = decode_range(with_header(R"("kvs":[{"key":[[1]]}])"));
  EXPECT_NE(shallow.error().message().find("[[1]]"), std::string::npos) << shallow.error().message();
}

TEST(EtcdGatewayCodecTest, TxnAnswers) {
  // A campaign that found the key: succeeded is false, so left out.
  auto lost = decode_txn(with_header(R"("responses":[{"response_range":{"header":{"revision":"42"},
      "kvs":[{"key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE=","create_revision":"17","mod_revision":"17","version":"1","value":"cG9kLWE=","lease":"7587876543210123457"}],"count":"1"}}])"));
  ASSERT_TRUE(lost.ok()) << lost.error().message();
  EXPECT_FALSE(lost->succeeded);
  expect_header(lost->header);
  ASSERT_EQ(lost->responses.size(), 1U);
  const auto& range = std::get<RangeResponse>(lost->responses[0]);
  ASSERT_EQ(range.kvs.size(), 1U);
  EXPECT_EQ(range.kvs[0].create_revision, 17);
  EXPECT_EQ(range.header.revision, 42);
  auto won = decode_txn(with_header(R"("succeeded":true,"responses":[{"response_put":{"header":{"revision":"43"}}},{"response_delete_range":{"deleted":"1"}},{"response_put":{}}])"));
  ASSERT_TRUE(won.ok()) << won.error().message();
  EXPECT_TRUE(won->succeeded);
  ASSERT_EQ(won->responses.size(), 3U);
  EXPECT_EQ(std::get<PutResponse>(won->responses[0]).header.revision, 43);
  EXPECT_EQ(std::get<DeleteRangeResponse>(won->responses[1]).deleted, 1);
  EXPECT_TRUE(std::holds_alternative<PutResponse>(won->responses[2]));
  auto empty = decode_txn(with_header(""));  // a compare that failed with no failure ops
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_TRUE(empty->responses.empty());
  expect_names(decode_txn(with_header(R"("responses":[{"response_txn":{}}])")), "responses[0]");
  expect_names(decode_txn(with_header(R"("responses":[{"response_put":{},"response_range":{}}])")), "responses[0]");
  expect_names(decode_txn(with_header(R"("responses":[{"response_range":{"kvs":[{"key":""}]}}])")),
               "responses[0].response_range.kvs[0].key");
  expect_names(decode_txn(with_header(R"("succeeded":1)")), "succeeded");
}

TEST(EtcdGatewayCodecTest, WatchLines) {
  auto created = decode_watch_line(std::string(R"({"result":{)") + kHeader + R"(,"created":true}})");
  ASSERT_TRUE(created.ok()) << created.error().message();
  const auto& c = std::get<WatchResponse>(*created);
  EXPECT_TRUE(c.created);
  EXPECT_EQ(c.watch_id, 0);  // the first watch of a stream: 0, left out
  EXPECT_FALSE(c.cancel_error());
  EXPECT_FALSE(c.is_progress_notify());

  // A put (no "type": PUT is the enum's zero) and a deletion by lease expiry.
  auto events = decode_watch_line(std::string(R"({"result":{)") + kHeader + R"(,"watch_id":"2","events":[
      {"kv":{"key":"YXBwLzY5NGQ4ZDgzODU4ZWYwYzE=","create_revision":"42","mod_revision":"42","version":"1","value":"cG9kLWE=","lease":"7587876543210123457"}},
      {"type":"DELETE","kv":{"key":"a/8=","mod_revision":"43"},"prev_kv":{"key":"a/8=","create_revision":"18","mod_revision":"20","version":"3","value":"/w=="}}]}})");
  ASSERT_TRUE(events.ok()) << events.error().message();
  const auto& w = std::get<WatchResponse>(*events);
  EXPECT_EQ(w.watch_id, 2);
  ASSERT_EQ(w.events.size(), 2U);
  EXPECT_EQ(w.events[0].type, Event::Type::kPut);
  EXPECT_EQ(w.events[0].kv.lease, kLease);
  EXPECT_FALSE(w.events[0].prev_kv);
  EXPECT_EQ(w.events[1].type, Event::Type::kDelete);
  EXPECT_EQ(w.events[1].kv.key, "k\xff");
  EXPECT_EQ(w.events[1].kv.mod_revision, 43);
  EXPECT_EQ(w.events[1].kv.create_revision, 0);
  ASSERT_TRUE(w.events[1].prev_kv);
  EXPECT_EQ(w.events[1].prev_kv->value, "\xff");

  auto progress = decode_watch_line(std::string(R"({"result":{)") + kHeader + "}}");
  ASSERT_TRUE(progress.ok());
  EXPECT_TRUE(std::get<WatchResponse>(*progress).is_progress_notify());

  expect_names(decode_watch_line(R"({"result":{"events":[{"type":"EXPIRE","kv":{"key":"aw=="}}]}})"), "result.events[0].type");
  expect_names(decode_watch_line(R"({"result":{"events":[{"type":"DELETE"}]}})"), "result.events[0].kv");
  expect_names(decode_watch_line(R"({"result":{"events":[{"kv":{"key":"aw=="},"prev_kv":{"key":"?"}}]}})"), "result.events[0].prev_kv.key");
  expect_names(decode_watch_line(R"({"result":{"watch_id":"2","canceled":"true"}})"), "result.canceled");
}

TEST(EtcdGatewayCodecTest, ACompactedWatchIsGoneWithItsRevision) {
  // start_revision older than the compaction: canceled, with the oldest revision left.
  auto line = decode_watch_line(std::string(R"({"result":{)") + kHeader + R"(,"watch_id":"1","canceled":true,"compact_revision":"30"}})");
  ASSERT_TRUE(line.ok()) << line.error().message();
  const auto& w = std::get<WatchResponse>(*line);
  EXPECT_TRUE(w.canceled);
  EXPECT_EQ(w.compact_revision, 30);
  auto e = w.cancel_error();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->fault, Fault::kCompacted);
  EXPECT_EQ(e->compact_revision, 30);
  Error err = e->to_error();
  EXPECT_EQ(err.code(), Code::kGone);
  EXPECT_NE(err.message().find("30"), std::string::npos) << err.message();
  // A negative start_revision is refused with the compacted text, and no revision.
  auto refused = decode_watch_line(R"({"result":{"watch_id":"-1","created":true,"canceled":true,
      "cancel_reason":"etcdserver: mvcc: required revision has been compacted"}})");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(std::get<WatchResponse>(*refused).watch_id, -1);
  EXPECT_EQ(std::get<WatchResponse>(*refused).cancel_error()->fault, Fault::kCompacted);
  // Our own cancel: canceled without a reason is no error.
  auto ours = decode_watch_line(R"({"result":{"watch_id":"1","canceled":true}})");
  ASSERT_TRUE(ours.ok());
  EXPECT_FALSE(std::get<WatchResponse>(*ours).cancel_error());
}

TEST(EtcdGatewayCodecTest, AWatchRefusedByAuthSaysWhy) {
  auto line = decode_watch_line(R"({"result":{"watch_id":"-1","created":true,"canceled":true,
      "cancel_reason":"rpc error: code = PermissionDenied desc = etcdserver: permission denied"}})");
  ASSERT_TRUE(line.ok()) << line.error().message();
  auto e = std::get<WatchResponse>(*line).cancel_error();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->fault, Fault::kPermissionDenied);
  EXPECT_EQ(e->to_error().code(), Code::kForbidden);
  auto token = decode_watch_line(R"({"result":{"watch_id":"-1","created":true,"canceled":true,
      "cancel_reason":"rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"}})");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(std::get<WatchResponse>(*token).cancel_error()->fault, Fault::kAuthToken);
}

TEST(EtcdGatewayCodecTest, ErrorLinesOnAStreamInEveryForm) {
  struct Case {
    const char* line;
    Fault fault;
    int code;
  };
  for (const Case& c : {
           // grpc-gateway v2 (etcd v3.6): a Status under "error".
           Case{R"({"error":{"code":16,"message":"etcdserver: invalid auth token"}})", Fault::kAuthToken, 16},
           // The call failed before the stream began: a whole Status body.
           Case{R"({"code":7,"message":"etcdserver: permission denied","details":[]})", Fault::kPermissionDenied, 7},
           // grpc-gateway v1 (etcd v3.5): a StreamError, and the unary error body.
           Case{R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: leader changed","http_status":"Service Unavailable"}})",
                Fault::kUnavailable, 14},
           Case{R"({"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"})",
                Fault::kLeaseNotFound, 5},
       }) {
    auto item = decode_watch_line(c.line);
    ASSERT_TRUE(item.ok()) << c.line << ": " << item.error().message();
    ASSERT_TRUE(std::holds_alternative<GatewayError>(*item)) << c.line;
    const auto& e = std::get<GatewayError>(*item);
    EXPECT_EQ(e.fault, c.fault) << c.line;
    EXPECT_EQ(e.grpc_code, c.code) << c.line;
    EXPECT_EQ(e.message.rfind("etcdserver: ", 0), 0U) << c.line;
  }
  auto v1 = std::get<GatewayError>(*decode_watch_line(R"({"error":{"grpc_code":14,"http_code":503,"message":"x"}})"));
  EXPECT_EQ(v1.http_status, 503);
}

TEST(EtcdGatewayCodecTest, UnaryErrorsAreClassified) {
  struct Case {
    long http;
    const char* body;
    Fault fault;
    Code code;
  };
  for (const Case& c : {
           Case{401, R"({"code":16,"message":"etcdserver: invalid auth token"})", Fault::kAuthToken, Code::kUnauthorized},
           Case{400, R"({"code":3,"message":"etcdserver: revision of auth store is old"})", Fault::kAuthToken, Code::kUnauthorized},
           Case{400, R"({"code":3,"message":"etcdserver: user name is empty"})", Fault::kAuthToken, Code::kUnauthorized},
           Case{400, R"({"code":3,"message":"etcdserver: authentication failed, invalid user ID or password"})",
                Fault::kAuthFailed, Code::kUnauthorized},
           Case{400, R"({"code":9,"message":"etcdserver: authentication is not enabled"})", Fault::kAuthNotEnabled, Code::kInvalid},
           Case{403, R"({"code":7,"message":"etcdserver: permission denied"})", Fault::kPermissionDenied, Code::kForbidden},
           Case{404, R"({"code":5,"message":"etcdserver: requested lease not found"})", Fault::kLeaseNotFound, Code::kNotFound},
           Case{404, R"({"code":5,"message":"etcdserver: member not found"})", Fault::kNotFound, Code::kNotFound},
           Case{400, R"({"code":11,"message":"etcdserver: mvcc: required revision has been compacted"})", Fault::kCompacted, Code::kGone},
           Case{503, R"({"code":14,"message":"etcdserver: leader changed"})", Fault::kUnavailable, Code::kUnavailable},
           Case{503, R"({"code":14,"message":"etcdserver: request timed out"})", Fault::kUnavailable, Code::kUnavailable},
           Case{504, R"({"code":4,"message":"context deadline exceeded"})", Fault::kUnavailable, Code::kTimeout},
           Case{429, R"({"code":8,"message":"etcdserver: too many requests"})", Fault::kTooManyRequests, Code::kTooManyRequests},
           Case{400, R"({"code":3,"message":"etcdserver: duplicate key given in txn request"})", Fault::kBadRequest, Code::kInvalid},
           Case{400, R"({"code":3,"message":"proto: syntax error (line 1:2): unexpected token"})", Fault::kBadRequest, Code::kInvalid},
           Case{500, R"({"code":13,"message":"something broke"})", Fault::kOther, Code::kInternal},
           // Not a Status at all: judged by the HTTP status.
           Case{502, "<html>Bad Gateway</html>", Fault::kUnavailable, Code::kUnavailable},
           Case{401, "", Fault::kAuthToken, Code::kUnauthorized},
           Case{404, "Not Found\n", Fault::kNotFound, Code::kNotFound},
       }) {
    GatewayError e = decode_error(c.http, c.body);
    EXPECT_EQ(e.fault, c.fault) << c.body;
    EXPECT_EQ(e.http_status, c.http) << c.body;
    Error err = e.to_error();
    EXPECT_EQ(err.code(), c.code) << c.body << " -> " << err.to_string();
    EXPECT_EQ(err.message().rfind("etcd " + std::string(fault_name(c.fault)) + ": ", 0), 0U) << err.message();
  }
  GatewayError page = decode_error(502, "<html>Bad\x01Gateway</html>");
  EXPECT_EQ(page.message, "HTTP 502: <html>Bad Gateway</html>");
  EXPECT_EQ(decode_error(503, "").message, "HTTP 503");
}

}  // namespace
}  // namespace leasehold::etcd
