#include <gtest/gtest.h>

#include "leasehold/config.h"
#include "leasehold/for_life.h"

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

TEST(ConfigTest, ForLifeNamesAreCheckedBeforeAnyRequest) {
  auto err = [](std::string name, std::string ns) {
    ForLifeConfig c;
    c.lock_name = std::move(name);
    c.ns = std::move(ns);
    auto r = c.validate();
    return r ? std::string("ok") : r.error().message();
  };
  auto not_a_name = [](const std::string& name) {
    return "leader-for-life: lock_name \"" + name + "\" is not a ConfigMap name (lowercase letters, digits, '-' "
           "and '.', at most 253, starting and ending with a letter or digit)";
  };
  EXPECT_EQ(err("app-lock", ""), "ok");
  EXPECT_EQ(err("app.lock-1", "prod"), "ok");
  // Upper case, '_', a trailing '-' and a bad namespace once passed here and
  // were refused only by kube-apiserver, as a 422 on every attempt.
  EXPECT_EQ(err("App_Lock", ""), not_a_name("App_Lock"));
  EXPECT_EQ(err("app-lock-", ""), not_a_name("app-lock-"));
  EXPECT_EQ(err("a/b", ""), not_a_name("a/b"));
  EXPECT_EQ(err("app-lock", "a.b"),
            "leader-for-life: ns \"a.b\" is not a namespace name (lowercase letters, digits and '-', at most 63, "
            "starting and ending with a letter or digit)");
  EXPECT_EQ(err("", ""), "leader-for-life: lock_name is required");
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
