// Tests only: the Lease protobuf codec written on the classes protoc
// generates from k8s.io/api's .proto files (the library's first codec). The
// library reads and writes the wire format by hand (kube/pb_wire.h); the
// unit tests and the lease_proto fuzzer hold it to what these functions,
// and so protobuf's own parser, make of the same bytes.
//
// Threading: plain functions.
#pragma once

#include <string>
#include <string_view>

#include "kube/lease_proto.h"

namespace leasehold::kube::pb::oracle {

Result<Envelope> unwrap(std::string_view body);
std::string wrap(std::string_view api_version, std::string_view kind, std::string_view raw);
Result<Lease> decode_lease_message(std::string raw);
std::string encode_lease_update(const Lease& base, const LeaseRecord& record);
std::string encode_lease_create(const std::string& ns, const std::string& name, const LeaseRecord& record);

// Whether protobuf's parser takes `bytes` as a message at all (wire format
// well formed at the top level, groups included): parsed as a TypeMeta,
// whose two string fields it does not look into.
bool well_formed(std::string_view bytes);

// The Lease message inside an object body, parsed by protobuf and written
// back deterministically (map entries sorted), with metadata.managedFields
// and fields unknown inside the spec's times left out: two bodies whose
// results are equal carry the same Lease as leasehold reads and writes it.
// "" when the body does not parse.
std::string canonical_lease(std::string_view body);

}  // namespace leasehold::kube::pb::oracle
