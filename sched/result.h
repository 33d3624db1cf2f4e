// weft::Result<T>: the outcome of an awaitable as a value: what
// gather(return_exceptions) returns for each child.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

template <typename T>
class Result {
 public:
  using value_type = T;
  static Result success(T v) { return Result(std::move(v)); }
  static Result failure(std::exception_ptr e) { return Result(std::move(e)); }

  bool has_value() const noexcept { return v_.index() == 0; }
  // The value; rethrows the exception if it failed.
  const T& value() const& {
    if (!has_value()) std::rethrow_exception(std::get<1>(v_));
    return std::get<0>(v_);
  }
  T&& value() && {
    if (!has_value()) std::rethrow_exception(std::get<1>(v_));
    return std::get<0>(std::move(v_));
  }
  // The exception, or null.
  std::exception_ptr exception() const noexcept {
    return has_value() ? nullptr : std::get<1>(v_);
  }

 private:
  explicit Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
  explicit Result(std::exception_ptr e) : v_(std::in_place_index<1>, std::move(e)) {}
  std::variant<T, std::exception_ptr> v_;
};

template <>
class Result<void> {
 public:
  using value_type = void;
  static Result success() { return Result(nullptr); }
  static Result failure(std::exception_ptr e) { return Result(std::move(e)); }
  bool has_value() const noexcept { return !e_; }
  void value() const {
    if (e_) std::rethrow_exception(e_);
  }
  std::exception_ptr exception() const noexcept { return e_; }

 private:
  explicit Result(std::exception_ptr e) : e_(std::move(e)) {}
  std::exception_ptr e_;
};

}  // namespace weft
