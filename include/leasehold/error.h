// leasehold/error.h — the one error type and Result<T>.
//
// Every fallible call in leasehold returns Result<T>: a value or an Error with
// a code from a closed set and a message naming what was wrong. No exception
// crosses the public API. The codes follow absl::StatusCode's retry guidance:
//   Conflict        someone else wrote first: re-read, then decide (409)
//   Unavailable,
//   Timeout,
//   TooManyRequests,
//   Internal        transient: retry with backoff (is_transient())
//   Forbidden,
//   Unauthorized,
//   Invalid         fix the configuration or permissions first
//
// Threading: plain values; safe to copy and move between threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace leasehold {

enum class Code {
  kNotFound,
  kConflict,
  kAlreadyExists,
  kForbidden,
  kUnauthorized,
  kInvalid,
  kGone,
  kTimeout,
  kUnavailable,
  kTooManyRequests,
  kInternal,
};

// The name used in messages and metrics, e.g. "Conflict".
std::string_view code_name(Code code);

// True for codes worth retrying unchanged after a backoff.
bool is_transient(Code code);

class Error {
 public:
  Error(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Error not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Error conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Error already_exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Error forbidden(std::string m) { return {Code::kForbidden, std::move(m)}; }
  static Error invalid(std::string m) { return {Code::kInvalid, std::move(m)}; }
  static Error timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Error unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Error internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool is(Code c) const { return code_ == c; }
  // "Conflict: <message>"
  std::string to_string() const;

 private:
  Code code_;
  std::string message_;
};

// A value or an Error. Result<void> carries only success or an Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  // Precondition: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // Precondition: !ok().
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{Code::kInternal, ""};
  bool ok_ = true;
};

}  // namespace leasehold
