#include "kube/pb_wire.h"

namespace leasehold::kube::pbw {
namespace {

constexpr int kRecursionLimit = 100;  // protobuf's default

}  // namespace

bool Reader::varint(uint64_t& v, int max_bytes) {
  v = 0;
  for (int i = 0; i < max_bytes; ++i) {
    if (pos_ >= in_.size()) return false;
    uint8_t b = static_cast<uint8_t>(in_[pos_++]);
    if (i < 10) v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (b < 0x80) return true;
  }
  return false;
}

bool Reader::fixed(uint64_t& v, size_t bytes) {
  if (in_.size() - pos_ < bytes) return false;
  v = 0;
  for (size_t i = bytes; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(in_[pos_ + i]);  // little-endian
  pos_ += bytes;
  return true;
}

bool Reader::skip_group(uint32_t number, int depth) {
  if (depth > kRecursionLimit) return false;
  for (;;) {
    uint64_t tag;
    if (!varint(tag, 5)) return false;
    auto t = static_cast<uint32_t>(tag);
    uint32_t n = t >> 3;
    if (n == 0) return false;
    switch (t & 7) {
      case 0: {
        uint64_t v;
        if (!varint(v, 10)) return false;
        break;
      }
      case 1: {
        uint64_t v;
        if (!fixed(v, 8)) return false;
        break;
      }
      case 2: {
        uint64_t len;
        if (!varint(len, 5) || len > in_.size() - pos_) return false;
        pos_ += len;
        break;
      }
      case 3:
        if (!skip_group(n, depth + 1)) return false;
        break;
      case 4:
        return n == number;
      case 5: {
        uint64_t v;
        if (!fixed(v, 4)) return false;
        break;
      }
      default:
        return false;
    }
  }
}

bool Reader::next(Field& f) {
  if (failed_ || pos_ >= in_.size()) return false;
  size_t start = pos_;
  uint64_t tag;
  bool ok = varint(tag, 5);
  auto t = static_cast<uint32_t>(tag);
  f.number = t >> 3;
  f.value = 0;
  f.bytes = {};
  if (ok && f.number != 0) {
    switch (t & 7) {
      case 0:
        f.type = WireType::kVarint;
        ok = varint(f.value, 10);
        break;
      case 1:
        f.type = WireType::kFixed64;
        ok = fixed(f.value, 8);
        break;
      case 2: {
        f.type = WireType::kLen;
        uint64_t len;
        ok = varint(len, 5) && len <= in_.size() - pos_;
        if (ok) {
          f.bytes = in_.substr(pos_, len);
          pos_ += len;
        }
        break;
      }
      case 3:
        f.type = WireType::kStartGroup;
        ok = skip_group(f.number, depth_ + 1);
        break;
      case 5:
        f.type = WireType::kFixed32;
        ok = fixed(f.value, 4);
        break;
      default:  // 4: an end group with no start; 6, 7: no such wire type
        ok = false;
    }
  } else {
    ok = false;
  }
  if (!ok) {
    failed_ = true;
    return false;
  }
  f.whole = in_.substr(start, pos_ - start);
  return true;
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, uint32_t number, WireType type) {
  put_varint(out, (static_cast<uint64_t>(number) << 3) | static_cast<uint8_t>(type));
}

void put_varint_field(std::string& out, uint32_t number, uint64_t v) {
  put_tag(out, number, WireType::kVarint);
  put_varint(out, v);
}

void put_len_field(std::string& out, uint32_t number, std::string_view bytes) {
  put_tag(out, number, WireType::kLen);
  put_varint(out, bytes.size());
  out.append(bytes);
}

}  // namespace leasehold::kube::pbw
