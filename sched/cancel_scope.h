// Cancel scopes (Trio's CancelScope; asyncio.timeout): cancel everything a
// block of code awaits, by deadline or on request, and catch the resulting
// cancellation at the block's boundary.
//
//   auto v = co_await weft::move_on_after(100ms, fetch());     // optional<T>
//   T v = co_await weft::timeout(100ms, fetch());              // or TimeoutError
//   weft::CancelScope scope = weft::CancelScope::after(1s);
//   co_await scope.run(work(scope));                           // scope.cancel() from anywhere
//
// Semantics:
//  - Level-triggered: once a scope is cancelled, every await inside it
//    raises CancelledError (its message names the scope and why), also after
//    the body caught one, until the body leaves the scope.
//  - At the boundary the scope catches the cancellation it caused, unless an
//    enclosing scope is cancelled too (then the outermost cancelled scope
//    catches it: the earlier outer deadline wins) or the task was cancelled
//    from outside meanwhile (Task::cancel; cancelling() grew): then the
//    CancelledError propagates, so a timeout never swallows an outside
//    cancellation.
//  - A shielded scope keeps cancellation from outside it (enclosing scopes,
//    Task::cancel) away from its body until the body leaves it; requests made
//    meanwhile are delivered at the first suspension after the shield.
//  - The body runs inline in the calling task (no new task); the scope must
//    be run by a task, once.
//
// Thread safety: cancel(), cancel_called(), cancelled_caught(), deadline()
// and expired() may be called from any thread. reschedule() must be called
// by the task running the scope.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <optional>
#include <string>
#include <type_traits>

#include "weft/core/coro.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/errors.h"
#include "weft/sched/clock.h"
#include "weft/sched/loop.h"

namespace weft {

// What a move-on scope returns: the body's value, or nothing if the scope
// caught a cancellation (for void bodies: true if the body completed).
template <typename T>
using ScopeResult = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

class CancelScope {
 public:
  // A scope with no deadline (cancelled only by cancel()).
  CancelScope();
  // Handles share one scope.
  CancelScope(const CancelScope&);
  CancelScope(CancelScope&&) noexcept;
  CancelScope& operator=(const CancelScope&);
  CancelScope& operator=(CancelScope&&) noexcept;
  ~CancelScope();
  // A scope whose deadline is `d` from now on the running loop's clock.
  // std::invalid_argument if d is negative.
  static CancelScope after(Duration d);
  static CancelScope at(TimePoint deadline);

  // Makes the scope shielded (before it runs).
  CancelScope& shield(bool on = true);

  // Cancels the scope; false if it already was.
  bool cancel(std::string reason = {}) const;
  bool cancel_called() const noexcept;
  // True once the scope caught a cancellation at its boundary.
  bool cancelled_caught() const noexcept;
  // True if the deadline passed and cancelled the scope (asyncio expired()).
  bool expired() const noexcept;
  TimePoint deadline() const noexcept;
  std::string cancel_reason() const;
  // Moves the deadline (TimePoint::max() removes it). By the running task.
  void reschedule(TimePoint deadline);

  // Runs `body` inside the scope; returns its value, or nothing if the
  // scope caught a cancellation.
  // (The coroutine keeps its own handle on the scope, so a temporary scope
  // such as `CancelScope::after(d).run(...)` is safe.)
  template <typename T>
  Coro<ScopeResult<T>> run(Coro<T> body) const {
    return run_in(*this, std::move(body));
  }
  // Runs `body` inside the scope; if the scope caught a cancellation, raises
  // TimeoutError when its deadline caused it (asyncio.timeout), or
  // CancelledError naming the reason when cancel() did.
  template <typename T>
  Coro<T> run_or_timeout(Coro<T> body) const {
    return run_or_timeout_in(*this, std::move(body));
  }

  struct State;

 private:
  template <typename T>
  static Coro<ScopeResult<T>> run_in(CancelScope self, Coro<T> body);
  template <typename T>
  static Coro<T> run_or_timeout_in(CancelScope self, Coro<T> body);
  // Enters/leaves the scope in the current task; leave() returns true if
  // the scope catches `e` (a CancelledError it caused).
  void enter();
  bool leave(const std::exception_ptr& e);

  detail::RefPtr<State> s_;
};

template <typename T>
Coro<ScopeResult<T>> CancelScope::run_in(CancelScope self, Coro<T> body) {
  self.enter();
  std::exception_ptr error;
  ScopeResult<T> result{};
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(body);
      result = true;
    } else {
      result.emplace(co_await std::move(body));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (self.leave(error)) co_return ScopeResult<T>{};
  if (error) std::rethrow_exception(error);
  co_return std::move(result);
}

template <typename T>
Coro<T> CancelScope::run_or_timeout_in(CancelScope self, Coro<T> body) {
  auto r = co_await run_in(self, std::move(body));
  if (self.cancelled_caught()) {
    if (self.expired()) {
      throw TimeoutError("timeout: the scope's deadline passed before the operation finished");
    }
    throw CancelledError(self.cancel_reason());
  }
  if constexpr (!std::is_void_v<T>) co_return std::move(*r);
}

// asyncio.timeout / timeout_at: TimeoutError if the deadline passes first.
template <typename T>
Coro<T> timeout(Duration d, Coro<T> body) {
  return CancelScope::after(d).run_or_timeout(std::move(body));
}
template <typename T>
Coro<T> timeout_at(TimePoint deadline, Coro<T> body) {
  return CancelScope::at(deadline).run_or_timeout(std::move(body));
}
// Trio's move_on_after / move_on_at: stop quietly at the deadline.
template <typename T>
Coro<ScopeResult<T>> move_on_after(Duration d, Coro<T> body) {
  return CancelScope::after(d).run(std::move(body));
}
template <typename T>
Coro<ScopeResult<T>> move_on_at(TimePoint deadline, Coro<T> body) {
  return CancelScope::at(deadline).run(std::move(body));
}
// Runs body in a shielded scope: outside cancellation waits until it ends.
template <typename T>
Coro<T> shielded(Coro<T> body) {
  CancelScope scope;
  scope.shield();
  auto r = co_await scope.run(std::move(body));
  if constexpr (!std::is_void_v<T>) co_return std::move(*r);
}

}  // namespace weft
