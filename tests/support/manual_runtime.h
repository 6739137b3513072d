// Test support: the Options of a Runtime that only the test drives (manual:
// nothing runs until the test calls run_ready) on a given clock, logging
// nothing.
//
// Threading: a plain value.
#pragma once

#include "leasehold/clock.h"
#include "leasehold/runtime.h"

namespace leasehold::testing {

inline Runtime::Options manual_runtime_options(Clock* clock) {
  Runtime::Options o;
  o.clock = clock;
  o.manual = true;
  o.log = [](auto...) {};
  return o;
}

}  // namespace leasehold::testing
