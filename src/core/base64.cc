#include "core/base64.h"

#include <array>
#include <cstdint>

namespace leasehold {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The 6-bit value of each character of either alphabet; -1 for the rest.
constexpr std::array<int8_t, 256> make_values() {
  std::array<int8_t, 256> v{};
  for (auto& x : v) x = -1;
  for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  v['-'] = 62;
  v['_'] = 63;
  return v;
}
constexpr std::array<int8_t, 256> kValues = make_values();

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  if (size_t rest = bytes.size() - i; rest > 0) {
    uint32_t n = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  size_t digits = 0;  // base64 digits read
  size_t pads = 0;
  for (char c : text) {
    if (c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++pads;
      continue;
    }
    int8_t v = kValues[static_cast<unsigned char>(c)];
    if (v < 0 || pads > 0) return std::nullopt;  // a stranger, or a digit after padding
    acc = acc << 6 | static_cast<uint32_t>(v);
    if (++digits % 4 == 0) {
      out.push_back(static_cast<char>(acc >> 16 & 0xff));
      out.push_back(static_cast<char>(acc >> 8 & 0xff));
      out.push_back(static_cast<char>(acc & 0xff));
      acc = 0;
    }
  }
  const size_t tail = digits % 4;  // 0, 2 or 3 digits in the last group
  if (tail == 1) return std::nullopt;
  if (pads > 0 && (tail == 0 || tail + pads != 4)) return std::nullopt;
  if (tail == 2) out.push_back(static_cast<char>(acc >> 4 & 0xff));
  if (tail == 3) {
    out.push_back(static_cast<char>(acc >> 10 & 0xff));
    out.push_back(static_cast<char>(acc >> 2 & 0xff));
  }
  return out;
}

}  // namespace leasehold
