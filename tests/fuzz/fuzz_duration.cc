// libFuzzer: the command's duration parser ("15s", "1m30s", ...): never
// crashes, never returns a negative duration.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "flags.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto d = leasehold::cli::parse_duration(text);
  if (d.ok() && d->count() < 0) std::abort();
  return 0;
}
