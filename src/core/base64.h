// Internal: base64 (RFC 4648), for kubeconfig's *-data fields and etcd's
// JSON gateway, whose keys and values are protobuf `bytes`.
//
// Decoding takes what Go's encoders write and protojson reads: the standard
// alphabet or the URL-safe one ('-', '_'), with or without '=' padding, and
// ignores CR and LF as Go does. Anything else (a space, a '=' before the end,
// a length no encoder gives) is std::nullopt.
//
// Threading: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace leasehold {

// Standard alphabet, padded: what protojson writes for `bytes`.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace leasehold
