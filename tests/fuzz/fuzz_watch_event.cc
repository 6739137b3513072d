// libFuzzer: one line of a watch stream. Never crash; an accepted ADDED or
// MODIFIED event carries a Lease with a resourceVersion.
#include <cstdint>
#include <string_view>

#include "kube/lease_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto ev = leasehold::kube::parse_watch_event(line);
  using T = leasehold::kube::WatchEvent::Type;
  if (ev.ok() && (ev->type == T::kAdded || ev->type == T::kModified) &&
      (!ev->lease || ev->lease->versioned.version.empty())) {
    __builtin_trap();
  }
  return 0;
}
