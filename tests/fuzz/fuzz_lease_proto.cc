// libFuzzer: every protobuf decoder of the Lease codec (lease_proto.h) and the
// watch stream's length-prefixed framing. The first byte picks the decoder,
// the rest is its input. Never crash; an accepted Lease re-encodes as an
// update that decodes back to the same record and version.
#include <cstdint>
#include <string_view>

#include "kube/lease_proto.h"
#include "kube/watch_peek.h"

namespace kube = leasehold::kube;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {  // a GET/PUT/POST answer
      auto l = kube::pb::decode_lease(in);
      if (l.ok()) {
        auto again = kube::pb::decode_lease(kube::encode_lease_update(*l, l->versioned.record));
        if (!again.ok() || again->versioned.version != l->versioned.version ||
            !(again->versioned.record == l->versioned.record)) {
          __builtin_trap();
        }
      }
      break;
    }
    case 1: {  // one watch frame's payload, peeked at and parsed
      auto peek = kube::peek_watch_event(in, kube::WireFormat::kProtobuf);
      if (peek && (peek->resource_version.empty() || peek->resource_version.data() < in.data() ||
                   peek->resource_version.data() + peek->resource_version.size() > in.data() + in.size())) {
        __builtin_trap();  // the version is a non-empty slice of the frame
      }
      auto ev = kube::parse_watch_event(in, kube::WireFormat::kProtobuf);
      using T = kube::WatchEvent::Type;
      if (ev.ok() && (ev->type == T::kAdded || ev->type == T::kModified) &&
          (!ev->lease || ev->lease->versioned.version.empty())) {
        __builtin_trap();
      }
      break;
    }
    case 2:  // an error response
      (void)kube::pb::decode_status(in);
      (void)kube::error_from_response(409, in, {"update", "coordination.k8s.io", "leases", "ns", "n"});
      break;
    case 3: {  // a watch stream, split into frames, each parsed
      kube::LengthPrefixedFrames frames(4096);
      size_t step = in.empty() ? 1 : static_cast<uint8_t>(in[0]) % 17 + 1;
      for (size_t i = 0; i < in.size(); i += step) {
        frames.append(in.substr(i, step));
        std::string_view f;
        uint64_t announced = 0;
        kube::LengthPrefixedFrames::Next n;
        while ((n = frames.next(f, announced)) == kube::LengthPrefixedFrames::Next::kFrame) {
          if (f.size() > 4096) __builtin_trap();
          (void)kube::parse_watch_event(f, kube::WireFormat::kProtobuf);
        }
        if (n == kube::LengthPrefixedFrames::Next::kTooLarge) {
          if (announced <= 4096) __builtin_trap();
          break;
        }
      }
      break;
    }
    default:  // a bare Lease message
      (void)kube::pb::decode_lease_message(std::string(in));
      break;
  }
  return 0;
}
