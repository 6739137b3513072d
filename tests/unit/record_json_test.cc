#include <gtest/gtest.h>

#include "backends/backends.h"

namespace leasehold::backends {
namespace {

using namespace std::chrono;

TEST(MicroTimeTest, FormatsUtcWithSixDigits) {
  WallTime t = WallTime{} + seconds(1'795'435'200) + microseconds(123456);
  EXPECT_EQ(format_micro_time(t), "2026-11-23T12:00:00.123456Z");
  EXPECT_EQ(format_micro_time(WallTime{}), "1970-01-01T00:00:00.000000Z");
}

TEST(MicroTimeTest, ParsesWhatKubernetesAndOthersWrite) {
  WallTime t = WallTime{} + seconds(1'795'435'200) + microseconds(123456);
  EXPECT_EQ(*parse_micro_time("2026-11-23T12:00:00.123456Z"), t);
  EXPECT_EQ(*parse_micro_time("2026-11-23T13:00:00.123456+01:00"), t);
  EXPECT_EQ(*parse_micro_time("2026-11-23T12:00:00.123456789Z"), t);  // nanos truncated
  EXPECT_EQ(*parse_micro_time("2026-11-23T12:00:00Z"), t - microseconds(123456));
  for (const char* bad : {"", "2026-11-24", "2026-11-23T12:00:00", "2026-13-24T06:00:00Z",
                          "2026-11-23T12:00:00.Z", "2026-11-23T12:00:00Zjunk", "garbage-garbage-garbage"}) {
    auto r = parse_micro_time(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::kInvalid);
  }
}

TEST(FileRecordTest, RoundTrip) {
  FileRecord f;
  f.generation = 42;
  f.record.holder_identity = "pod-a";
  f.record.lease_duration_seconds = 15;
  f.record.acquire_time = WallTime{} + seconds(1'795'435'200);
  f.record.renew_time = WallTime{} + seconds(1'795'435'210) + microseconds(5);
  f.record.lease_transitions = 7;
  f.record.strategy = "OldestEmulationVersion";
  auto back = decode_file_record(encode_file_record(f));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->generation, 42u);
  EXPECT_EQ(back->record, f.record);
}

TEST(FileRecordTest, EpochRoundTripsAndOldFilesHaveNone) {
  FileRecord f;
  f.epoch = 0x9f86d081884c7d65;
  f.generation = 3;
  std::string text = encode_file_record(f);
  EXPECT_NE(text.find("\"epoch\":\"9f86d081884c7d65\""), std::string::npos) << text;
  auto back = decode_file_record(text);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->epoch, f.epoch);
  EXPECT_EQ(back->version(), "9f86d081884c7d65:3");
  // Written before epochs: read as before, version is the generation alone.
  auto old = decode_file_record(
      R"({"kind":"leasehold.io/file-lock","apiVersion":1,"generation":7,"holderIdentity":"a",)"
      R"("leaseDurationSeconds":15,"acquireTime":"","renewTime":"","leaseTransitions":0,"strategy":"","preferredHolder":""})");
  ASSERT_TRUE(old.ok()) << old.error().message();
  EXPECT_EQ(old->epoch, 0u);
  EXPECT_EQ(old->version(), "7");
  for (const char* bad : {"\"zz86d081884c7d65\"", "\"9f86d081\"", "\"0000000000000000\"", "12"}) {
    std::string t = text;
    t.replace(t.find("\"9f86d081884c7d65\""), 18, bad);
    auto r = decode_file_record(t);
    ASSERT_FALSE(r.ok()) << t;
    EXPECT_NE(r.error().message().find("epoch"), std::string::npos);
  }
}

TEST(FileRecordTest, RejectsTornForeignAndMistypedFiles) {
  FileRecord f;
  f.generation = 1;
  std::string good = encode_file_record(f);
  struct {
    std::string text;
    const char* says;
  } cases[] = {
      {"", "not valid JSON"},
      {good.substr(0, good.size() / 2), "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"holderIdentity":"a"})", "not a leasehold lock file"},
      {R"({"kind":"leasehold.io/file-lock","apiVersion":2})", "apiVersion"},
      {R"({"kind":"leasehold.io/file-lock","apiVersion":1,"generation":"7"})", "\"generation\""},
      {R"({"kind":"leasehold.io/file-lock","apiVersion":1,"generation":1,"leaseDurationSeconds":-1,"leaseTransitions":0})",
       "\"leaseDurationSeconds\""},
      {std::string(100000, ' '), "bytes"},
  };
  for (const auto& c : cases) {
    auto r = decode_file_record(c.text);
    ASSERT_FALSE(r.ok()) << c.text.substr(0, 80);
    EXPECT_NE(r.error().message().find(c.says), std::string::npos)
        << "\"" << r.error().message() << "\" should mention " << c.says;
  }
}

}  // namespace
}  // namespace leasehold::backends

namespace leasehold::backends {
namespace {
// Found by fuzz_micro_time: years past 2262 overflowed the nanosecond clock.
TEST(MicroTimeTest, RejectsYearsTheClockCannotHold) {
  EXPECT_FALSE(parse_micro_time("2423-11-23T10:00:00.123456Z").ok());
  EXPECT_FALSE(parse_micro_time("0001-01-01T00:00:00Z").ok());
  EXPECT_TRUE(parse_micro_time("2261-01-01T00:00:00Z").ok());
}
}  // namespace
}  // namespace leasehold::backends
