// Test support: a LeaseRecord in the forms client-go writes (microsecond
// renewTime, whole-second acquireTime), shared by the JSON and protobuf codec
// tests.
//
// Threading: a plain value.
#pragma once

#include <chrono>

#include "leasehold/record.h"

namespace leasehold::testing {

inline LeaseRecord sample_lease_record() {
  using namespace std::chrono;
  LeaseRecord r;
  r.holder_identity = "pod-a";
  r.lease_duration_seconds = 15;
  r.acquire_time = WallTime{} + seconds(1'795'435'200);
  r.renew_time = WallTime{} + seconds(1'795'435'200) + microseconds(7);
  r.lease_transitions = 5;
  return r;
}

}  // namespace leasehold::testing
