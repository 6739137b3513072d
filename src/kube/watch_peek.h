// Internal: what a Lease watch event is, read without decoding it.
//
// peek_watch_event finds an event's type and its object's
// metadata.resourceVersion by walking only the bytes on the way to them (a
// protobuf frame's nested length-delimited fields, or a JSON line's leading
// "type" and first "resourceVersion" key). It is enough to recognise an
// event whose object we already hold, our own write echoed by the watch,
// without paying for a full decode (the shared watch hub's use). It checks
// nothing else: an event it cannot read is std::nullopt, and the caller then
// decodes it in full (parse_watch_event), which reports what is wrong.
//
// Threading: pure functions.
#pragma once

#include <optional>
#include <string_view>

#include "kube/lease_codec.h"
#include "kube/wire_format.h"

namespace leasehold::kube {

struct WatchPeek {
  WatchEvent::Type type;
  std::string_view resource_version;  // points into the frame
  std::string_view name;              // metadata.name; may be empty
};

std::optional<WatchPeek> peek_watch_event(std::string_view frame, WireFormat format);

// The metadata.resourceVersion of a Lease body (a GET/PUT/POST answer) read
// the same way, by its Content-Type; std::nullopt when it cannot be read.
std::optional<std::string_view> peek_lease_version(std::string_view body, std::string_view content_type);

}  // namespace leasehold::kube
