// The file lock's JSON record and Kubernetes MicroTime.
#include <nlohmann/json.hpp>

#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "backends/backends.h"

namespace leasehold::backends {
namespace {

constexpr std::string_view kKind = "leasehold.io/file-lock";
constexpr size_t kMaxRecordBytes = kMaxFileRecordBytes;

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::string format_micro_time(WallTime t) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  int64_t secs = us / 1'000'000;
  int64_t frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  time_t tt = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

Result<WallTime> parse_micro_time(std::string_view s) {
  auto bad = [&](const char* why) {
    return Error::invalid("time \"" + std::string(s.substr(0, 64)) + "\": " + why +
                          " (want RFC 3339, e.g. 2026-11-23T10:00:00.000000Z)");
  };
  int y, mo, d, h, mi, se;
  if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) ||
      s[7] != '-' || !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, se)) {
    return bad("malformed");
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    return bad("field out of range");
  }
  // The span a nanosecond system_clock can hold (found by fuzzing).
  if (y < 1678 || y > 2261) return bad("year outside 1678..2261");
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 6) micros += (s[pos] - '0') * scale, scale /= 10;
      ++pos;
    }
    if (pos == start || pos - start > 9) return bad("bad fractional seconds");
  }
  int64_t offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return bad("bad zone offset");
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad("missing zone (Z or +HH:MM)");
  }
  if (pos != s.size()) return bad("trailing characters");
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset;
  return WallTime{} + std::chrono::duration_cast<WallTime::duration>(
                          std::chrono::seconds(secs) + std::chrono::microseconds(micros));
}

std::string FileRecord::version() const {
  if (epoch == 0) return std::to_string(generation);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, epoch);
  return std::string(hex) + ":" + std::to_string(generation);
}

std::string encode_file_record(const FileRecord& f) {
  const LeaseRecord& r = f.record;
  nlohmann::ordered_json j;
  j["kind"] = kKind;
  j["apiVersion"] = 1;
  if (f.epoch != 0) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016" PRIx64, f.epoch);
    j["epoch"] = hex;
  }
  j["generation"] = f.generation;
  j["holderIdentity"] = r.holder_identity;
  j["leaseDurationSeconds"] = r.lease_duration_seconds;
  j["acquireTime"] = r.acquire_time ? format_micro_time(*r.acquire_time) : "";
  j["renewTime"] = r.renew_time ? format_micro_time(*r.renew_time) : "";
  j["leaseTransitions"] = r.lease_transitions;
  j["strategy"] = r.strategy;
  j["preferredHolder"] = r.preferred_holder;
  return j.dump() + "\n";
}

Result<FileRecord> decode_file_record(std::string_view text) {
  if (text.size() > kMaxRecordBytes) {
    return Error::invalid("record is " + std::to_string(text.size()) + " bytes; at most " +
                          std::to_string(kMaxRecordBytes) + " expected");
  }
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error::invalid("not valid JSON (torn or foreign file?)");
  if (!j.is_object()) return Error::invalid("not a JSON object");
  auto kind = j.find("kind");
  if (kind == j.end() || !kind->is_string() || kind->get_ref<const std::string&>() != kKind) {
    return Error::invalid("not a leasehold lock file (\"kind\" is not \"" + std::string(kKind) +
                          "\")");
  }
  auto api = j.find("apiVersion");
  if (api == j.end() || !api->is_number_integer() || api->get<int64_t>() != 1) {
    return Error::invalid("unsupported apiVersion (want 1)");
  }
  FileRecord f;
  auto get_int = [&](const char* key, int64_t lo, int64_t hi, int64_t& out) -> Result<void> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) {
      return Error::invalid(std::string("\"") + key + "\": missing or not an integer");
    }
    out = it->get<int64_t>();
    if (out < lo || out > hi) {
      return Error::invalid(std::string("\"") + key + "\": " + std::to_string(out) +
                            " out of range");
    }
    return {};
  };
  auto get_str = [&](const char* key, std::string& out) -> Result<void> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
      return Error::invalid(std::string("\"") + key + "\": missing or not a string");
    }
    out = it->get<std::string>();
    return {};
  };
  int64_t gen, dur, trans;
  if (auto r = get_int("generation", 0, INT64_MAX, gen); !r) return r.error();
  if (auto r = get_int("leaseDurationSeconds", 0, INT32_MAX, dur); !r) return r.error();
  if (auto r = get_int("leaseTransitions", 0, INT32_MAX, trans); !r) return r.error();
  f.generation = static_cast<uint64_t>(gen);
  if (auto it = j.find("epoch"); it != j.end()) {  // absent: written before epochs
    bool ok = it->is_string() && it->get_ref<const std::string&>().size() == 16;
    if (ok) {
      const std::string& e = it->get_ref<const std::string&>();
      auto [end, ec] = std::from_chars(e.data(), e.data() + e.size(), f.epoch, 16);
      ok = ec == std::errc() && end == e.data() + e.size() && f.epoch != 0;
    }
    if (!ok) return Error::invalid("\"epoch\": not 16 hex digits (and not all zero)");
  }
  f.record.lease_duration_seconds = static_cast<int32_t>(dur);
  f.record.lease_transitions = static_cast<int32_t>(trans);
  if (auto r = get_str("holderIdentity", f.record.holder_identity); !r) return r.error();
  if (auto r = get_str("strategy", f.record.strategy); !r) return r.error();
  if (auto r = get_str("preferredHolder", f.record.preferred_holder); !r) return r.error();
  for (auto [key, dst] : {std::pair{"acquireTime", &f.record.acquire_time},
                          std::pair{"renewTime", &f.record.renew_time}}) {
    std::string s;
    if (auto r = get_str(key, s); !r) return r.error();
    if (s.empty()) continue;
    auto t = parse_micro_time(s);
    if (!t) return Error::invalid(std::string("\"") + key + "\": " + t.error().message());
    *dst = *t;
  }
  return f;
}

}  // namespace leasehold::backends
