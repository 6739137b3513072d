#include <gtest/gtest.h>

#include "leasehold/config.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;

ElectorConfig valid() {
  ElectorConfig c;
  c.lock = "mem://x";
  c.identity = "a";
  return c;
}

struct Case {
  const char* name;
  void (*mutate)(ElectorConfig&);
  const char* field;  // expected prefix of the error; nullptr = valid
};

TEST(ConfigTest, ValidationTable) {
  const Case cases[] = {
      {"defaults", [](ElectorConfig&) {}, nullptr},
      {"no lock", [](ElectorConfig& c) { c.lock.clear(); }, "lock:"},
      {"empty identity", [](ElectorConfig& c) { c.identity.clear(); }, "identity:"},
      {"huge identity", [](ElectorConfig& c) { c.identity.assign(300, 'x'); }, "identity:"},
      {"zero retry", [](ElectorConfig& c) { c.retry_period = 0s; }, "retry_period:"},
      {"negative retry", [](ElectorConfig& c) { c.retry_period = -1s; }, "retry_period:"},
      {"fractional lease", [](ElectorConfig& c) { c.lease_duration = 15500ms; }, "lease_duration:"},
      {"lease == deadline", [](ElectorConfig& c) { c.lease_duration = 10s; }, "lease_duration:"},
      {"lease < deadline", [](ElectorConfig& c) { c.lease_duration = 5s; }, "lease_duration:"},
      {"deadline == 1.2 retry", [](ElectorConfig& c) { c.renew_deadline = 2400ms; c.lease_duration = 3s; }, "renew_deadline:"},
      {"deadline just above 1.2 retry", [](ElectorConfig& c) { c.renew_deadline = 2401ms; c.lease_duration = 3s; }, nullptr},
      {"renew interval too long", [](ElectorConfig& c) { c.renew_interval = 10s; }, "renew_interval:"},
      {"negative renew interval", [](ElectorConfig& c) { c.renew_interval = -1s; }, "renew_interval:"},
      {"short renew interval", [](ElectorConfig& c) { c.renew_interval = 500ms; }, nullptr},
      {"lease over a day", [](ElectorConfig& c) { c.lease_duration = 86401s; }, "lease_duration:"},
      {"fast timings", [](ElectorConfig& c) { c.lease_duration = 3s; c.renew_deadline = 2s; c.retry_period = 500ms; }, nullptr},
  };
  for (const Case& tc : cases) {
    ElectorConfig c = valid();
    tc.mutate(c);
    auto r = c.validate();
    if (tc.field == nullptr) {
      EXPECT_TRUE(r.ok()) << tc.name << ": " << r.error().message();
    } else {
      ASSERT_FALSE(r.ok()) << tc.name;
      EXPECT_EQ(r.error().code(), Code::kInvalid) << tc.name;
      EXPECT_EQ(r.error().message().rfind(tc.field, 0), 0u)
          << tc.name << ": message \"" << r.error().message() << "\" should start with " << tc.field;
    }
  }
}

TEST(ConfigTest, RenewIntervalDefaultsToRetryPeriod) {
  ElectorConfig c = valid();
  EXPECT_EQ(c.effective_renew_interval(), 2s);
  c.renew_interval = 700ms;
  EXPECT_EQ(c.effective_renew_interval(), 700ms);
}

TEST(ErrorTest, NamesAndRetryClasses) {
  EXPECT_EQ(code_name(Code::kConflict), "Conflict");
  EXPECT_TRUE(is_transient(Code::kUnavailable));
  EXPECT_FALSE(is_transient(Code::kForbidden));
  EXPECT_FALSE(is_transient(Code::kConflict));
  EXPECT_EQ(Error::forbidden("no").to_string(), "Forbidden: no");
}

}  // namespace
}  // namespace leasehold
