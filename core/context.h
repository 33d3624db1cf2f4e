// Context variables (Python's contextvars): values that follow the logical
// flow of a computation instead of a thread.
//
// Every task runs in its own Context, a copy of its creator's context taken
// when the task is created (create_task, run_coroutine_threadsafe), so a
// value set inside a task is seen by that task and by the tasks and
// to_thread calls it starts afterwards, never by its parent or siblings.
// Code outside any task uses its thread's own context.
//
// A Context is an immutable map shared by copy; `set` replaces the current
// task's (or thread's) map with a new one, so taking a copy is O(1) and
// copies never see later changes.
//
// Thread safety: ContextVar objects may be used from any thread; each call
// acts on the context of the calling task (or thread).
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <any>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "weft/core/errors.h"

namespace weft {

// A ContextVar has no value in the current context and no default.
class LookupError : public Error {
 public:
  using Error::Error;
};

namespace detail {
using ContextMap = absl::flat_hash_map<std::uint64_t, std::shared_ptr<const std::any>>;
using ContextData = std::shared_ptr<const ContextMap>;

// The context of the running task, or of this thread outside tasks. The
// scheduler points it at a task's context for the duration of each step.
ContextData& current_context_data() noexcept;
// Makes `slot` the current context until the returned scope ends (used by
// task steps and by to_thread's pool threads).
class ContextScope {
 public:
  explicit ContextScope(ContextData* slot) noexcept;
  ~ContextScope();
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  ContextData* prev_;
};
std::uint64_t next_context_var_id() noexcept;
}  // namespace detail

// A snapshot of every context variable (contextvars.copy_context()).
class Context {
 public:
  Context() = default;
  // The current task's (or thread's) context.
  static Context current() { return Context(detail::current_context_data()); }
  const detail::ContextData& data() const noexcept { return data_; }

 private:
  explicit Context(detail::ContextData d) : data_(std::move(d)) {}
  detail::ContextData data_;
};

template <typename T>
class ContextVar {
 public:
  // Restores a variable to what it was before a set().
  class Token {
   private:
    friend class ContextVar;
    Token(std::uint64_t id, std::shared_ptr<const std::any> old) : id_(id), old_(std::move(old)) {}
    std::uint64_t id_;
    std::shared_ptr<const std::any> old_;  // null: the variable had no value
    bool used_ = false;
  };

  explicit ContextVar(std::string name) : name_(std::move(name)) {}
  ContextVar(std::string name, T default_value)
      : name_(std::move(name)), default_(std::move(default_value)) {}
  ContextVar(const ContextVar&) = delete;
  ContextVar& operator=(const ContextVar&) = delete;

  const std::string& name() const noexcept { return name_; }

  // The value in the current context, else the default; LookupError if
  // neither exists.
  T get() const {
    if (const T* v = find()) return *v;
    if (default_) return *default_;
    throw LookupError("ContextVar '" + name_ + "' has no value and no default");
  }
  T get(T fallback) const {
    if (const T* v = find()) return *v;
    return fallback;
  }

  // Sets the value in the current context; the token undoes it.
  [[nodiscard]] Token set(T value) {
    detail::ContextData& cur = detail::current_context_data();
    std::shared_ptr<const std::any> old;
    auto next = cur ? std::make_shared<detail::ContextMap>(*cur)
                    : std::make_shared<detail::ContextMap>();
    if (auto it = next->find(id_); it != next->end()) old = it->second;
    (*next)[id_] = std::make_shared<const std::any>(std::move(value));
    cur = std::move(next);
    return Token(id_, std::move(old));
  }
  // Restores the value the variable had before `token`'s set. A token is
  // single-use and belongs to its variable (else InvalidStateError).
  void reset(Token& token) {
    if (token.id_ != id_) throw InvalidStateError("Token was created by a different ContextVar");
    if (token.used_) throw InvalidStateError("Token has already been used once");
    token.used_ = true;
    detail::ContextData& cur = detail::current_context_data();
    auto next = cur ? std::make_shared<detail::ContextMap>(*cur)
                    : std::make_shared<detail::ContextMap>();
    if (token.old_) {
      (*next)[id_] = token.old_;
    } else {
      next->erase(id_);
    }
    cur = std::move(next);
  }

 private:
  const T* find() const {
    const detail::ContextData& cur = detail::current_context_data();
    if (!cur) return nullptr;
    auto it = cur->find(id_);
    if (it == cur->end()) return nullptr;
    return std::any_cast<T>(it->second.get());
  }

  const std::uint64_t id_ = detail::next_context_var_id();
  const std::string name_;
  const std::optional<T> default_;
};

}  // namespace weft
