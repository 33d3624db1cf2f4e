// Cancel scopes (Trio's CancelScope; asyncio.timeout): cancel everything a
// block of code awaits, by deadline or on request, and catch the resulting
// cancellation at the block's boundary.
//
//   auto v = co_await weft::move_on_after(100ms, fetch());     // optional<T>
//   T v = co_await weft::fail_after(100ms, fetch());           // or TimeoutError
//   T v = co_await weft::timeout(100ms, fetch());              // asyncio's name
//   weft::CancelScope scope = weft::CancelScope::after(1s);
//   co_await scope.run(work(scope));                           // scope.cancel() from anywhere
//
// Semantics (Trio's, docs/cancellation.md):
//  - Level-triggered: once a scope is cancelled, every checkpoint inside it
//    raises CancelledError (its message names the scope and why), also after
//    the body caught one, until the body leaves the scope. Deadlines are
//    compared with the clock at every checkpoint, not only when their timer
//    fires.
//  - At the boundary a scope catches a CancelledError if it was cancelled
//    itself and no enclosing cancelled scope is visible from it (a shield
//    hides them; otherwise the outermost cancelled scope catches it: the
//    earlier outer deadline wins). It never swallows a Task::cancel request
//    that reached its body (cancelling() grew and nothing is pending).
//  - A shielded scope keeps cancellation from outside it (enclosing scopes,
//    Task::cancel) away from its body; requests made meanwhile are delivered
//    at the first checkpoint after the shield. Its own cancel() and deadline
//    still cancel the body, and so do scopes nested inside it. The shield
//    may be raised or lowered at any time, from any thread.
//  - Relative deadlines (after(), move_on_after, fail_after, timeout) are
//    measured from the scope's entry, not from the call that made it.
//  - Durations: Trio's names (CancelScope::after, move_on_after, fail_after)
//    reject negative ones (std::invalid_argument); asyncio's (timeout) treat
//    zero or negative as already expired.
//  - The body runs inline in the calling task (no new task); a scope runs
//    once.
//
// Thread safety: cancel(), cancel_called(), cancelled_caught(), expired(),
// shield() and set_shield() may be called from any thread. reschedule()
// must be called by the task running the scope, or while the scope is not
// running.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <atomic>
#include <concepts>
#include <coroutine>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>

#include "weft/core/coro.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/errors.h"
#include "weft/sched/clock.h"
#include "weft/sched/loop.h"

namespace weft {

class Timeout;
class CancelScope;
namespace detail {
// For timeout(), whose zero or negative duration has expired at entry.
struct ScopeAccess;
template <typename F, typename T = void>
struct TimeoutBody {
  static constexpr bool value = false;
};
template <typename F>
  requires std::invocable<F&, Timeout&>
struct TimeoutBody<F> {
  using coro = std::invoke_result_t<F&, Timeout&>;
  static constexpr bool value = requires { typename coro::promise_type; };
};
// A callable taking Timeout& and returning a Coro.
template <typename F>
concept TimeoutCallable = TimeoutBody<F>::value;
template <typename F>
using TimeoutValue = typename std::invoke_result_t<F&, Timeout&>::value_type;
}  // namespace detail

// What a move-on scope returns: the body's value, or nothing if the scope
// caught a cancellation (for void bodies: true if the body completed).
template <typename T>
using ScopeResult = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

// How a scope starts (Trio's keyword arguments).
struct ScopeOptions {
  bool shield = false;
};

class CancelScope {
 public:
  // A scope with no deadline (cancelled only by cancel()).
  CancelScope();
  explicit CancelScope(ScopeOptions options);
  // Handles share one scope.
  CancelScope(const CancelScope&);
  CancelScope(CancelScope&&) noexcept;
  CancelScope& operator=(const CancelScope&);
  CancelScope& operator=(CancelScope&&) noexcept;
  ~CancelScope();
  // A scope whose deadline is `d` after it is entered (Trio's relative
  // deadline). std::invalid_argument if d is negative.
  static CancelScope after(Duration d, ScopeOptions options = {});
  // A scope whose deadline is `deadline` on the runtime's clock.
  static CancelScope at(TimePoint deadline, ScopeOptions options = {});

  // Trio's `shield` property: readable and settable at any time, from any
  // thread; takes effect at the body's next checkpoint.
  bool shield() const noexcept;
  CancelScope& set_shield(bool on);

  // Cancels the scope; false if it already was.
  bool cancel(std::string reason = {}) const;
  // True once the scope was cancelled, or (before it exits) once its
  // deadline has passed.
  bool cancel_called() const;
  // True once the scope caught a cancellation at its boundary.
  bool cancelled_caught() const noexcept;
  // True if the deadline passed and cancelled the scope (asyncio expired()).
  bool expired() const noexcept;
  // The absolute deadline (TimePoint::max() for none). RuntimeError for a
  // relative scope that has not been entered (it has no deadline yet).
  TimePoint deadline() const;
  // True for a relative scope not entered yet (Trio's is_relative).
  bool is_relative() const noexcept;
  std::string cancel_reason() const;
  // Moves the deadline (TimePoint::max() removes it). By the running task,
  // or while the scope is not running; RuntimeError for a relative scope
  // not entered yet (Trio).
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
  // TimeoutError when its deadline caused it (asyncio.timeout, Trio's
  // fail_after), or CancelledError naming the reason when cancel() did.
  template <typename T>
  Coro<T> run_or_timeout(Coro<T> body) const {
    return run_or_timeout_in(*this, std::move(body));
  }

  struct State;

 private:
  friend class Timeout;
  friend struct detail::ScopeAccess;
  template <typename T>
  static Coro<ScopeResult<T>> run_in(CancelScope self, Coro<T> body);
  template <typename T>
  static Coro<T> run_or_timeout_in(CancelScope self, Coro<T> body);
  // asyncio's relative timeout: like after(d), but zero or negative means
  // already expired at entry.
  static CancelScope expiring_after(Duration d);
  // Enters/leaves the scope in the current task; leave() returns true if
  // the scope catches `e` (a CancelledError it caused).
  void enter();
  bool leave(const std::exception_ptr& e);
  // What run_or_timeout raises once the scope caught a cancellation.
  [[noreturn]] void throw_caught() const;

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
  if (self.cancelled_caught()) self.throw_caught();
  if constexpr (!std::is_void_v<T>) co_return std::move(*r);
}

// asyncio's `async with timeout(d) as cm` handle, given to a timeout body:
// when(), reschedule(), expired(). reschedule() raises RuntimeError unless
// the timeout is running and has not expired (asyncio's states).
class Timeout {
 public:
  explicit Timeout(CancelScope scope) : scope_(std::move(scope)) {}
  // The deadline; TimePoint::max() for none (asyncio's None).
  TimePoint when() const { return scope_.deadline(); }
  // Moves the deadline; TimePoint::max() removes it. By the body's task.
  void reschedule(TimePoint when);
  bool expired() const noexcept { return scope_.expired(); }
  const CancelScope& scope() const noexcept { return scope_; }

 private:
  CancelScope scope_;
};

namespace detail {
// The timeout scope wait_for runs its awaitable in (Python 3.12's
// `async with timeout(t)`), kept in wait_for's own frame: no allocation and
// no handle, so only two parties ever reach it: the task running wait_for,
// and the deadline timer's callback.
//
// Threads: the timer is armed on the task's loop after the scope is
// entered, so its callback (on that loop's thread) sees the entered scope.
// The task may move to another worker meanwhile; leave() then either
// cancels the timer (the callback never runs) or finds the loop has claimed
// it and waits for `fire_done_` (release by the callback, acquire here)
// before the scope is left and the frame can go. On the timer's own loop the
// callback has already returned by then (callbacks run between steps).
class InlineTimeout {
 public:
  InlineTimeout() = default;
  InlineTimeout(const InlineTimeout&) = delete;
  InlineTimeout& operator=(const InlineTimeout&) = delete;
  // A frame destroyed while suspended inside the scope (a task abandoned
  // at shutdown) keeps the callback off the freed scope and takes the scope
  // off its task's chain (frames go innermost first, so it is the innermost).
  ~InlineTimeout();

  // Enters the scope in `task` (which is running) with a deadline `d` from
  // now; zero or negative has expired at entry (asyncio). Returns false if
  // it has: nothing may run in it then, leave() comes next.
  bool enter(TaskBase* task, Duration d);
  // Leaves; true if the scope catches `e`, a CancelledError its deadline
  // caused (CancelScope's rules).
  bool leave(const std::exception_ptr& e);
  // task->cancelling() at entry.
  int cancels_at_entry() const noexcept { return cancels_at_entry_; }

 private:
  // Cancels the timer, or waits until its claimed callback has returned.
  void disarm() noexcept;

  CancelScopeState state_;
  TimerHandle timer_;
  TaskBase* task_ = nullptr;  // while entered
  int cancels_at_entry_ = 0;
  bool armed_ = false;
  std::atomic<bool> fire_done_{false};
};

inline constexpr const char* kTimeoutExpiredMessage =
    "timeout: the scope's deadline passed before the operation finished";

struct ScopeAccess {
  static CancelScope expiring_after(Duration d) { return CancelScope::expiring_after(d); }
};

template <typename T, typename F>
Coro<T> run_timeout(CancelScope scope, F fn) {
  Timeout handle(scope);
  co_return co_await scope.run_or_timeout(fn(handle));
}
}  // namespace detail

// asyncio.timeout / timeout_at: TimeoutError if the deadline passes first.
// A zero or negative `d`, or a deadline in the past, has already expired:
// the body's first checkpoint raises (asyncio). `d` is measured from the
// moment the returned Coro starts.
template <typename T>
Coro<T> timeout(Duration d, Coro<T> body);
template <typename T>
Coro<T> timeout_at(TimePoint deadline, Coro<T> body) {
  return CancelScope::at(deadline).run_or_timeout(std::move(body));
}
// The same with the Timeout handle: `fn(Timeout&)` returns the body's Coro.
//   co_await weft::timeout(1s, [&](weft::Timeout& t) -> weft::Coro<void> {
//     t.reschedule(t.when() + 1s); ...
//   });
template <detail::TimeoutCallable F>
Coro<detail::TimeoutValue<F>> timeout(Duration d, F fn);
template <detail::TimeoutCallable F>
Coro<detail::TimeoutValue<F>> timeout_at(TimePoint deadline, F fn) {
  return detail::run_timeout<detail::TimeoutValue<F>, F>(CancelScope::at(deadline), std::move(fn));
}

// Trio's move_on_after / move_on_at: stop quietly at the deadline.
// std::invalid_argument for a negative `d`.
template <typename T>
Coro<ScopeResult<T>> move_on_after(Duration d, Coro<T> body, ScopeOptions options = {}) {
  return CancelScope::after(d, options).run(std::move(body));
}
template <typename T>
Coro<ScopeResult<T>> move_on_at(TimePoint deadline, Coro<T> body, ScopeOptions options = {}) {
  return CancelScope::at(deadline, options).run(std::move(body));
}
// Trio's fail_after / fail_at: TimeoutError at the deadline (Trio's
// TooSlowError). std::invalid_argument for a negative `d`.
template <typename T>
Coro<T> fail_after(Duration d, Coro<T> body, ScopeOptions options = {}) {
  return CancelScope::after(d, options).run_or_timeout(std::move(body));
}
template <typename T>
Coro<T> fail_at(TimePoint deadline, Coro<T> body, ScopeOptions options = {}) {
  return CancelScope::at(deadline, options).run_or_timeout(std::move(body));
}
// Runs body in a shielded scope: outside cancellation waits until it ends.
template <typename T>
Coro<T> shielded(Coro<T> body) {
  auto r = co_await CancelScope(ScopeOptions{.shield = true}).run(std::move(body));
  if constexpr (!std::is_void_v<T>) co_return std::move(*r);
}

// Trio's current_effective_deadline(): the earliest deadline that can
// cancel the running task's next checkpoint (scopes up to the innermost
// shield); TimePoint::max() if none, TimePoint::min() if one of them is
// already cancelled. RuntimeError outside a task.
TimePoint current_effective_deadline();

// Trio's checkpoint_if_cancelled(): raises CancelledError if the task is
// cancelled (a visible scope, a passed deadline, a pending request);
// otherwise returns without suspending.
class [[nodiscard]] CheckpointIfCancelled {
 public:
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const {
    detail::current_task_base_checked("checkpoint_if_cancelled()")->throw_if_cancel_requested();
  }
};
inline CheckpointIfCancelled checkpoint_if_cancelled() { return {}; }

// Trio's cancel_shielded_checkpoint(): lets the other ready tasks run, and
// raises nothing (a cancellation stays pending for the next checkpoint).
class [[nodiscard]] CancelShieldedCheckpoint {
 public:
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    detail::current_task_base_checked("cancel_shielded_checkpoint()")->suspend_and_yield(h);
  }
  void await_resume() const noexcept {}
};
inline CancelShieldedCheckpoint cancel_shielded_checkpoint() { return {}; }

// Without a Timeout handle nobody else can reach the scope: it is the one
// wait_for uses, in this frame (no allocation, no second frame).
template <typename T>
Coro<T> timeout(Duration d, Coro<T> body) {
  detail::InlineTimeout scope;
  // Expired at entry (d <= 0): the body still starts, and its first
  // checkpoint raises (asyncio).
  scope.enter(detail::current_task_base_checked("timeout()"), d);
  std::exception_ptr error;
  std::optional<detail::ValueOrMonostate<T>> value;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(body);
      value.emplace();
    } else {
      value.emplace(co_await std::move(body));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (scope.leave(error)) throw TimeoutError(detail::kTimeoutExpiredMessage);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*value);
}
template <detail::TimeoutCallable F>
Coro<detail::TimeoutValue<F>> timeout(Duration d, F fn) {
  return detail::run_timeout<detail::TimeoutValue<F>, F>(detail::ScopeAccess::expiring_after(d),
                                                      std::move(fn));
}

}  // namespace weft
