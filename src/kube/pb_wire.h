// Internal: the protobuf wire format (encoding.md of protobuf), read and
// written by hand for the few messages the Lease codec touches on every
// renewal (lease_proto.cc): runtime.Unknown, Lease, LeaseSpec, MicroTime and
// the fields of ObjectMeta it needs. The generated classes parse a whole
// ObjectMeta into maps and strings and serialize it again, a few dozen
// allocations per renewal; this reads fields in place and copies the ones
// it does not change as the bytes they came in.
//
// What the reader accepts is what protobuf's parser accepts at one level:
// tags of at most 5 bytes with a field number of at least 1; varints of at
// most 10 bytes; wire types 0, 1, 2, 5, and groups (3 ... 4 of the same
// number, nested at most 100 deep) skipped whole; a length that fits what is
// left. Anything else (a truncated field, tag 0, wire type 6 or 7, an end
// group with no start) stops it with failed() true. It does not look inside
// the fields it hands out: a caller that reads a nested message runs another
// Reader on its bytes.
//
// Threading: plain values; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace leasehold::kube::pbw {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t value = 0;      // kVarint, kFixed64, kFixed32
  std::string_view bytes;  // kLen: the payload
  std::string_view whole;  // the field as it came: tag, and all of it
};

class Reader {
 public:
  // `depth`: how many messages (and groups) enclose this one; the top-level
  // message is at 0. A group nested deeper than 100 fails, as protobuf's
  // recursion limit.
  explicit Reader(std::string_view in, int depth = 0) : in_(in), depth_(depth) {}
  // The next field; false at the end of the input, or when the input is not
  // well formed (failed() then true, and every later call false).
  bool next(Field& f);
  bool failed() const { return failed_; }
  int depth() const { return depth_; }

 private:
  bool varint(uint64_t& v, int max_bytes);
  bool fixed(uint64_t& v, size_t bytes);
  bool skip_group(uint32_t number, int depth);
  std::string_view in_;
  int depth_ = 0;
  size_t pos_ = 0;
  bool failed_ = false;
};

void put_varint(std::string& out, uint64_t v);
void put_tag(std::string& out, uint32_t number, WireType type);
void put_varint_field(std::string& out, uint32_t number, uint64_t v);
void put_len_field(std::string& out, uint32_t number, std::string_view bytes);
// How many bytes put_varint writes for v.
size_t varint_size(uint64_t v);

}  // namespace leasehold::kube::pbw
