// libFuzzer: the object decoders (LeaseCandidate, Pod, Node) and the encoders
// fed from fuzzed strings (label patch, Event). Never crash; a decoded
// LeaseCandidate re-encodes to one that decodes to the same spec.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kube/objects.h"

using namespace leasehold::kube;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)decode_pod(in);
  (void)decode_node(in);
  if (auto c = decode_lease_candidate(in); c.ok()) {
    auto body = encode_lease_candidate_update(c->object, c->spec);
    if (body.ok()) {  // refused only when a required field is empty
      auto again = decode_lease_candidate(*body);
      if (!again.ok() || !(again->spec == c->spec) || again->version != c->version ||
          again->resource_version != c->resource_version) {
        std::abort();
      }
    }
  }
  // Split the input at the first two NULs into key / value / rest for the encoders.
  size_t a = in.find('\0');
  std::string_view key = in.substr(0, a);
  std::string_view rest = a == in.npos ? std::string_view() : in.substr(a + 1);
  size_t b = rest.find('\0');
  std::string_view value = rest.substr(0, b);
  (void)pod_label_patch(key, value, rest);
  (void)pod_label_patch(key, std::nullopt);
  EventSpec e;
  e.involved = {std::string(key), "v1", std::string(value), std::string(key), "", ""};
  e.reason = std::string(value);
  e.message = std::string(rest);
  e.host = std::string(key);
  e.first_timestamp = leasehold::WallTime{} + std::chrono::nanoseconds(static_cast<int64_t>(size) * 7919 - 40000);
  if (auto ev = encode_event(e); ev.ok() && !nlohmann::json::accept(*ev)) std::abort();
  return 0;
}
