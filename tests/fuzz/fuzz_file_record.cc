// libFuzzer: the file lock's record decoder. Any input either fails with an
// error or decodes to a record that survives an encode/decode round trip.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backends/backends.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = leasehold::backends::decode_file_record(text);
  if (!r.ok()) {
    if (r.error().message().empty()) std::abort();
    return 0;
  }
  auto again = leasehold::backends::decode_file_record(leasehold::backends::encode_file_record(*r));
  if (!again.ok() || again->generation != r->generation || !(again->record == r->record)) std::abort();
  return 0;
}
