// libFuzzer: the Lease decoder and the Status mapper. Never crash; a decoded
// Lease re-encodes to one that decodes to the same record.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kube/lease_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  leasehold::kube::RequestInfo req{"get", "coordination.k8s.io", "leases", "ns", "n"};
  (void)leasehold::kube::error_from_response(403, body, req);
  auto l = leasehold::kube::decode_lease(body);
  if (!l.ok()) return 0;
  auto again = leasehold::kube::decode_lease(leasehold::kube::encode_lease_update(l->object, l->versioned.record));
  if (!again.ok() || !(again->versioned.record == l->versioned.record) ||
      again->versioned.version != l->versioned.version) {
    std::abort();
  }
  return 0;
}
