// weft's error types, mirroring asyncio's.
//
// `CancelledError` deliberately does NOT derive from std::exception: a
// `catch (const std::exception&)` written to handle ordinary failures must not
// swallow a cancellation request (the reason Python 3.8 moved
// asyncio.CancelledError under BaseException). Catch it by name, or with
// `catch (...)` and rethrow.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <exception>
#include <optional>
#include <utility>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

namespace weft {

// Root of errors that are not failures but control flow (cancellation).
class BaseException {
 public:
  explicit BaseException(std::string message) : message_(std::move(message)) {}
  virtual ~BaseException() = default;
  virtual const char* what() const noexcept { return message_.c_str(); }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

// Delivered to a task at its next suspension point after `cancel(msg)`; also
// raised by `result()` / `co_await` of a cancelled future. `message()` is the
// message given to `cancel`, empty when none was given.
class CancelledError : public BaseException {
 public:
  explicit CancelledError(std::string message = {})
      : BaseException(std::move(message)) {}
};

// Base of weft's ordinary errors.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An operation exceeded its deadline.
class TimeoutError : public Error {
 public:
  explicit TimeoutError(const std::string& what = "operation timed out")
      : Error(what) {}
};

// An operation is not allowed in the object's current state (e.g. `result()`
// of a pending future, completing a future twice).
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

// A runtime API was misused: no running loop, a loop already running on this
// thread, a call from the wrong thread.
class RuntimeError : public Error {
 public:
  using Error::Error;
};

// Several exceptions raised together (Python 3.11 ExceptionGroup), e.g. by
// the children of a TaskGroup. Holds every exception in the order they were
// collected.
class ExceptionGroup : public Error {
 public:
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);

  const std::vector<std::exception_ptr>& exceptions() const noexcept {
    return exceptions_;
  }
  const std::string& message() const noexcept { return message_; }

  // `except* E` (PEP 654): splits the group, recursively through nested
  // groups, into the exceptions that are E (or derive from it) and the rest;
  // each part keeps the nesting and message, and is empty when nothing fits.
  template <typename E>
  std::pair<std::optional<ExceptionGroup>, std::optional<ExceptionGroup>> split() const {
    std::vector<std::exception_ptr> match, rest;
    for (const auto& e : exceptions_) {
      try {
        std::rethrow_exception(e);
      } catch (const ExceptionGroup& inner) {
        auto [m, r] = inner.split<E>();
        if (m) match.push_back(std::make_exception_ptr(*m));
        if (r) rest.push_back(std::make_exception_ptr(*r));
      } catch (const E&) {
        match.push_back(e);
      } catch (...) {
        rest.push_back(e);
      }
    }
    auto part = [this](std::vector<std::exception_ptr> v) -> std::optional<ExceptionGroup> {
      if (v.empty()) return std::nullopt;
      return ExceptionGroup(message_, std::move(v));
    };
    return {part(std::move(match)), part(std::move(rest))};
  }
  // The part of split<E>() that matches.
  template <typename E>
  std::optional<ExceptionGroup> subgroup() const {
    return split<E>().first;
  }
  // True if any exception in the group (or a nested group) is an E.
  template <typename E>
  bool contains() const {
    return subgroup<E>().has_value();
  }

 private:
  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
};

// Text of any exception for diagnostics: its dynamic type, demangled, and
// its what() ("weft::TimeoutError: operation timed out",
// "weft::CancelledError" for one without a message, "int (not derived from
// std::exception)").
std::string describe_exception(const std::exception_ptr& e);

namespace detail {
// A type's name as written in C++ ("weft::TimeoutError"), for diagnostics.
std::string type_name(const std::type_info& type);
}  // namespace detail

}  // namespace weft
