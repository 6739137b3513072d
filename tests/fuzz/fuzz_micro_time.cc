// libFuzzer: MicroTime parsing. Accepted input formats back to a string that
// parses to the same instant.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backends/backends.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = leasehold::backends::parse_micro_time(text);
  if (!t.ok()) return 0;
  auto back = leasehold::backends::parse_micro_time(leasehold::backends::format_micro_time(*t));
  if (!back.ok() || *back != *t) std::abort();
  return 0;
}
