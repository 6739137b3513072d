// libFuzzer: every protobuf decoder of the Lease codec (lease_proto.h) and the
// watch stream's length-prefixed framing. The first byte picks the decoder,
// the rest is its input. Never crash; an accepted Lease re-encodes as an
// update that decodes back to the same record and version. The codec reads
// and writes the wire format by hand (kube/pb_wire.h); each answer is held
// to protobuf's own parser on the same bytes (support/lease_proto_oracle.h):
// whatever protobuf accepts, it accepts with the same result, and it accepts
// more only where it does not look (inside metadata fields it skips); an
// update or create written from any accepted Lease carries the same Lease as
// protobuf's classes write.
#include <cstdint>
#include <string>
#include <string_view>

#include "kube/lease_proto.h"
#include "kube/pb_wire.h"
#include "kube/watch_peek.h"
#include "support/lease_proto_oracle.h"

namespace kube = leasehold::kube;
namespace oracle = leasehold::kube::pb::oracle;

namespace {

bool same(const kube::Lease& a, const kube::Lease& b) {
  return a.versioned.version == b.versioned.version && a.versioned.record == b.versioned.record &&
         a.name == b.name && a.format == b.format && a.proto == b.proto;
}

// The wire format reader alone: it fails exactly where protobuf does.
void check_reader(std::string_view bytes) {
  kube::pbw::Reader r(bytes);
  kube::pbw::Field f;
  size_t consumed = 0;
  while (r.next(f)) consumed += f.whole.size();
  if (r.failed() == oracle::well_formed(bytes)) __builtin_trap();
  if (!r.failed() && consumed != bytes.size()) __builtin_trap();
}

void check_envelope(std::string_view body) {
  auto fast = kube::pb::unwrap(body);
  auto ref = oracle::unwrap(body);
  if (fast.ok() != ref.ok()) __builtin_trap();
  if (!fast.ok()) {
    if (fast.error().message() != ref.error().message()) __builtin_trap();
    return;
  }
  if (fast->api_version != ref->api_version || fast->kind != ref->kind || fast->raw != ref->raw) __builtin_trap();
  if (kube::pb::wrap(fast->api_version, fast->kind, fast->raw) !=
      oracle::wrap(fast->api_version, fast->kind, fast->raw)) {
    __builtin_trap();
  }
}

// The Lease message `raw`, read by both; `salt` varies the record written back.
void check_lease(const std::string& raw, uint8_t salt) {
  auto fast = kube::pb::decode_lease_message(raw);
  auto ref = oracle::decode_lease_message(raw);
  if (ref.ok()) {
    if (!fast.ok() || !same(*fast, *ref)) __builtin_trap();
  } else if (fast.ok()) {
    // Only protobuf's deeper look may refuse what the codec reads.
    if (ref.error().message() != "Lease body is not a Lease protobuf message") __builtin_trap();
    return;
  } else {
    return;
  }
  leasehold::LeaseRecord r = fast->versioned.record;
  if (salt & 1) r.holder_identity = "fuzz-holder";
  if (salt & 2) r.preferred_holder = r.preferred_holder.empty() ? "fuzz-next" : "";
  if (salt & 4) r.strategy = r.strategy.empty() ? "OldestEmulationVersion" : "";
  if (salt & 8) r.acquire_time.reset();
  if (salt & 16) r.lease_transitions = -1;
  std::string a = kube::pb::encode_lease_update(*fast, r);
  std::string b = oracle::encode_lease_update(*ref, r);
  std::string ca = oracle::canonical_lease(a);
  if (ca.empty() || ca != oracle::canonical_lease(b)) __builtin_trap();
  std::string name = fast->name, ns = "ns-" + std::to_string(salt);
  if (oracle::canonical_lease(kube::pb::encode_lease_create(ns, name, r)) !=
      oracle::canonical_lease(oracle::encode_lease_create(ns, name, r))) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_reader(in);
  switch (data[0] % 5) {
    case 0: {  // a GET/PUT/POST answer
      check_envelope(in);
      if (auto e = kube::pb::unwrap(in); e.ok()) check_lease(e->raw, static_cast<uint8_t>(size));
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
      check_lease(std::string(in.substr(in.empty() ? 0 : 1)), in.empty() ? 0 : static_cast<uint8_t>(in[0]));
      break;
  }
  return 0;
}
