// libFuzzer: the legacy annotation record, the ConfigMap/Endpoints decoder and
// their watch events. Never crash; a decoded record re-encodes to a fixed
// point (times are cut to whole seconds once, then stay), and an updated
// object decodes to the record written.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kube/legacy_codec.h"

using namespace leasehold::kube;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto r = decode_legacy_record(text); r.ok()) {
    std::string once = encode_legacy_record(*r);
    auto back = decode_legacy_record(once);
    if (!back.ok() || encode_legacy_record(*back) != once) std::abort();
  }
  for (LegacyKind kind : {LegacyKind::kConfigMap, LegacyKind::kEndpoints}) {
    (void)parse_legacy_watch_event(text, kind);
    auto o = decode_legacy_object(text, kind);
    if (!o.ok()) continue;
    auto again = decode_legacy_object(encode_legacy_update(o->object, o->versioned.record), kind);
    if (!again.ok() || again->versioned.version != o->versioned.version ||
        encode_legacy_record(again->versioned.record) != encode_legacy_record(o->versioned.record)) {
      std::abort();
    }
  }
  return 0;
}
