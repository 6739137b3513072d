// Internal: how a Lease travels between leasehold and kube-apiserver, and the
// length-prefixed framing of a protobuf watch stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace leasehold::kube {

// kJson: application/json. kProtobuf: application/vnd.kubernetes.protobuf,
// the "k8s\0" magic and a runtime.Unknown envelope (lease_proto.h).
enum class WireFormat { kJson, kProtobuf };

inline constexpr std::string_view kProtobufMediaType = "application/vnd.kubernetes.protobuf";
// Every protobuf object body starts with these 4 bytes; no JSON body can.
inline constexpr std::string_view kProtobufMagic{"k8s\0", 4};

// True for a Content-Type naming Kubernetes protobuf (parameters such as
// ";stream=watch" allowed), case-insensitively.
inline bool is_protobuf_content_type(std::string_view ct) {
  if (ct.size() < kProtobufMediaType.size()) return false;
  for (size_t i = 0; i < kProtobufMediaType.size(); ++i) {
    char c = ct[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kProtobufMediaType[i]) return false;
  }
  return ct.size() == kProtobufMediaType.size() || ct[kProtobufMediaType.size()] == ';' ||
         ct[kProtobufMediaType.size()] == ' ';
}

// A protobuf watch stream is a sequence of frames, each a 4-byte big-endian
// length and that many bytes (apimachinery's LengthDelimitedFramer). Bytes
// are appended as they arrive; next() hands out each complete frame once.
class LengthPrefixedFrames {
 public:
  explicit LengthPrefixedFrames(size_t max_frame) : max_(max_frame) {}
  void append(std::string_view bytes) { buf_.append(bytes); }
  enum class Next { kFrame, kNeedMore, kTooLarge };
  // kFrame: `frame` is valid until the next append() or next(). kTooLarge:
  // a frame announced more than max_frame bytes (`announced` says how many);
  // the stream cannot continue.
  Next next(std::string_view& frame, uint64_t& announced) {
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    size_t avail = buf_.size() - pos_;
    if (avail < 4) return compact(), Next::kNeedMore;
    const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    announced = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | uint64_t{p[3]};
    if (announced > max_) return Next::kTooLarge;
    if (avail - 4 < announced) return compact(), Next::kNeedMore;
    frame = std::string_view(buf_.data() + pos_ + 4, static_cast<size_t>(announced));
    pos_ += 4 + static_cast<size_t>(announced);
    return Next::kFrame;
  }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  void compact() {
    if (pos_ == 0) return;
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  size_t max_;
  std::string buf_;
  size_t pos_ = 0;  // bytes of buf_ already handed out
};

}  // namespace leasehold::kube
