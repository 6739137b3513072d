#include "kube/watch_peek.h"

#include <cstdint>

namespace leasehold::kube {
namespace {

std::optional<WatchEvent::Type> type_of(std::string_view t) {
  using T = WatchEvent::Type;
  if (t == "MODIFIED") return T::kModified;
  if (t == "ADDED") return T::kAdded;
  if (t == "DELETED") return T::kDeleted;
  if (t == "BOOKMARK") return T::kBookmark;
  if (t == "ERROR") return T::kError;
  return std::nullopt;
}

// The protobuf wire format, only as far as the walk needs it.
bool varint(std::string_view& s, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !s.empty(); shift += 7) {
    auto b = static_cast<unsigned char>(s.front());
    s.remove_prefix(1);
    v |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80u)) return true;
  }
  return false;
}

// The first length-delimited field numbered `want` of the message `msg`
// (protobuf's last-one-wins does not matter: the server writes each once).
std::optional<std::string_view> field(std::string_view msg, uint64_t want) {
  while (!msg.empty()) {
    uint64_t key = 0, n = 0;
    if (!varint(msg, key)) return std::nullopt;
    switch (key & 7) {
      case 0:  // varint
        if (!varint(msg, n)) return std::nullopt;
        break;
      case 1:  // 64-bit
        if (msg.size() < 8) return std::nullopt;
        msg.remove_prefix(8);
        break;
      case 5:  // 32-bit
        if (msg.size() < 4) return std::nullopt;
        msg.remove_prefix(4);
        break;
      case 2:  // length-delimited
        if (!varint(msg, n) || n > msg.size()) return std::nullopt;
        if ((key >> 3) == want) return msg.substr(0, static_cast<size_t>(n));
        msg.remove_prefix(static_cast<size_t>(n));
        break;
      default:
        return std::nullopt;  // groups: not in these messages
    }
  }
  return std::nullopt;
}

// "k8s\0" + runtime.Unknown{raw = 2}: the Lease message's
// metadata.resourceVersion.
std::optional<std::string_view> protobuf_body_version(std::string_view body) {
  if (body.substr(0, kProtobufMagic.size()) != kProtobufMagic) return std::nullopt;
  auto raw = field(body.substr(kProtobufMagic.size()), 2);
  if (!raw) return std::nullopt;
  auto meta = field(*raw, 1);
  if (!meta) return std::nullopt;
  auto rv = field(*meta, 6);
  if (!rv || rv->empty()) return std::nullopt;
  return rv;
}

// The first "resourceVersion" key after the first "metadata":{ (see peek_json).
std::optional<std::string_view> json_version(std::string_view text, size_t from) {
  constexpr std::string_view kMeta = "\"metadata\":{";
  size_t meta = text.find(kMeta, from);
  if (meta == std::string_view::npos) return std::nullopt;
  constexpr std::string_view kRv = "\"resourceVersion\":\"";
  size_t at = text.find(kRv, meta + kMeta.size());
  if (at == std::string_view::npos) return std::nullopt;
  at += kRv.size();
  size_t close = text.find('"', at);
  if (close == std::string_view::npos || close == at) return std::nullopt;
  std::string_view rv = text.substr(at, close - at);
  if (rv.find('\\') != std::string_view::npos) return std::nullopt;
  return rv;
}

// metav1.WatchEvent{type = 1, object = 2 RawExtension{raw = 1}}; raw is
// "k8s\0" + runtime.Unknown{typeMeta = 1, raw = 2}; that raw is the
// coordination.v1.Lease{metadata = 1 ObjectMeta{resourceVersion = 6}}.
std::optional<WatchPeek> peek_protobuf(std::string_view frame) {
  auto type = field(frame, 1);
  if (!type) return std::nullopt;
  auto t = type_of(*type);
  if (!t) return std::nullopt;
  auto object = field(frame, 2);
  if (!object) return std::nullopt;
  auto body = field(*object, 1);
  if (!body) return std::nullopt;
  auto rv = protobuf_body_version(*body);
  if (!rv) return std::nullopt;
  std::string_view name;
  if (auto raw = field(body->substr(kProtobufMagic.size()), 2)) {
    if (auto meta = field(*raw, 1)) name = field(*meta, 1).value_or(std::string_view{});
  }
  return WatchPeek{*t, *rv, name};
}

// {"type":"MODIFIED","object":{...,"metadata":{...,"resourceVersion":"N",...
// A JSON string holds no unescaped quote, so the sequence "resourceVersion":"
// is a key; kube-apiserver writes metadata's resourceVersion before any map
// (labels, annotations) that could hold a key of that name.
std::optional<WatchPeek> peek_json(std::string_view line) {
  constexpr std::string_view kType = "{\"type\":\"";
  if (line.substr(0, kType.size()) != kType) return std::nullopt;
  size_t end = line.find('"', kType.size());
  if (end == std::string_view::npos) return std::nullopt;
  auto t = type_of(line.substr(kType.size(), end - kType.size()));
  if (!t) return std::nullopt;
  auto rv = json_version(line, end);
  if (!rv) return std::nullopt;
  // metadata.name: kube-apiserver writes it first in metadata.
  std::string_view name;
  constexpr std::string_view kName = "\"metadata\":{\"name\":\"";
  if (size_t at = line.find(kName, end); at != std::string_view::npos) {
    at += kName.size();
    size_t close = line.find('"', at);
    if (close != std::string_view::npos) name = line.substr(at, close - at);
    if (name.find('\\') != std::string_view::npos) name = {};
  }
  return WatchPeek{*t, *rv, name};
}

}  // namespace

std::optional<std::string_view> peek_lease_version(std::string_view body, std::string_view content_type) {
  return is_protobuf_content_type(content_type) ? protobuf_body_version(body) : json_version(body, 0);
}

std::optional<WatchPeek> peek_watch_event(std::string_view frame, WireFormat format) {
  return format == WireFormat::kProtobuf ? peek_protobuf(frame) : peek_json(frame);
}

}  // namespace leasehold::kube
