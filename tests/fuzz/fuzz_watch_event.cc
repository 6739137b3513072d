// libFuzzer: one line of a watch stream, peeked at (watch_peek.h) and
// parsed. Never crash; an accepted ADDED or
// MODIFIED event carries a Lease with a resourceVersion.
#include <cstdint>
#include <string_view>

#include "kube/lease_codec.h"
#include "kube/watch_peek.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto peek = leasehold::kube::peek_watch_event(line, leasehold::kube::WireFormat::kJson);
  if (peek && (peek->resource_version.empty() || peek->resource_version.data() < line.data() ||
               peek->resource_version.data() + peek->resource_version.size() > line.data() + line.size())) {
    __builtin_trap();  // the version is a non-empty slice of the line
  }
  auto ev = leasehold::kube::parse_watch_event(line);
  using T = leasehold::kube::WatchEvent::Type;
  if (ev.ok() && (ev->type == T::kAdded || ev->type == T::kModified) &&
      (!ev->lease || ev->lease->versioned.version.empty())) {
    __builtin_trap();
  }
  return 0;
}
