#include "weft/sched/cancel_scope.h"

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <utility>

#include "absl/strings/str_format.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace {

std::int64_t ticks(TimePoint t) { return t.time_since_epoch().count(); }
TimePoint from_ticks(std::int64_t ns) { return TimePoint(Duration(ns)); }

// now + d, saturating at "no deadline" (a relative deadline of days is fine;
// Duration::max() means never).
std::int64_t add_saturating(std::int64_t now, std::int64_t d) {
  if (d > 0 && now > detail::CancelScopeState::kNoDeadline - d) {
    return detail::CancelScopeState::kNoDeadline;
  }
  return now + d;
}

}  // namespace

// Shared by the CancelScope handles and the deadline timer (which only
// calls expire()).
// Threads: `relative`, `relative_ns`, `timer`, `task` and `cancels_at_entry`
// are touched by whoever holds a handle before entry (the scope is not
// shared with a running task yet), then only by the task running the scope.
// `phase` and `clock` are atomics because cancel_called() reads them from
// any thread; `caught` is written by the task at exit and read anywhere.
struct CancelScope::State : detail::CancelScopeState {
  enum Phase : std::uint8_t { kNotEntered, kActive, kExited };
  std::atomic<std::uint8_t> phase{kNotEntered};
  // The runtime's clock, once known (at construction on a loop, or entry).
  // Release/acquire: the clock object outlives every scope of its runtime.
  std::atomic<Clock*> clock{nullptr};
  bool relative = false;
  std::int64_t relative_ns = 0;
  TimerHandle timer;
  int cancels_at_entry = 0;
  detail::TaskBase* task = nullptr;
  std::atomic<bool> caught{false};

  State() {
    if (auto* loop = static_cast<Loop*>(detail::current_loop()); loop != nullptr) {
      clock.store(&loop->runtime().clock(), std::memory_order_release);
    }
  }

  // `now`: the loop's clock reading, taken by the caller.
  void arm(Loop& loop, std::int64_t now) {
    const std::int64_t d = deadline_ns();
    if (d == kNoDeadline || cancel_called()) return;
    if (d <= now) {
      expire();
      return;
    }
    detail::RefPtr<State> self(this);
    timer = loop.call_at(from_ticks(d), [self = std::move(self)] { self->expire(); }, from_ticks(now));
  }
  void disarm() {
    timer.cancel();
    timer = TimerHandle();
  }
};

CancelScope::CancelScope() : s_(new State(), detail::kAdoptRef) {}
CancelScope::CancelScope(ScopeOptions options) : CancelScope() { s_->set_shield(options.shield); }
CancelScope::CancelScope(const CancelScope&) = default;
CancelScope::CancelScope(CancelScope&&) noexcept = default;
CancelScope& CancelScope::operator=(const CancelScope&) = default;
CancelScope& CancelScope::operator=(CancelScope&&) noexcept = default;
CancelScope::~CancelScope() = default;

CancelScope CancelScope::after(Duration d, ScopeOptions options) {
  if (d.count() < 0) {
    throw std::invalid_argument(
        absl::StrFormat("cancel scope: negative relative deadline (%d ns)", d.count()));
  }
  CancelScope scope(options);
  scope.s_->relative = true;
  scope.s_->relative_ns = d.count();
  return scope;
}

CancelScope CancelScope::expiring_after(Duration d) {
  CancelScope scope;
  scope.s_->relative = true;
  scope.s_->relative_ns = d.count();  // <= 0: expires at entry
  return scope;
}

CancelScope CancelScope::at(TimePoint deadline, ScopeOptions options) {
  CancelScope scope(options);
  scope.s_->set_deadline_ns(ticks(deadline));
  return scope;
}

bool CancelScope::shield() const noexcept { return s_->shield(); }
CancelScope& CancelScope::set_shield(bool on) {
  s_->set_shield(on);
  return *this;
}

bool CancelScope::cancel(std::string reason) const {
  if (reason.empty()) {
    reason = absl::StrFormat("cancelled by CancelScope::cancel (scope %p)",
                             static_cast<const void*>(s_.get()));
  }
  return s_->cancel(std::move(reason));
}

bool CancelScope::cancel_called() const {
  State& s = *s_;
  if (s.cancel_called()) return true;
  // Trio: before the scope exits, a deadline that has passed counts as
  // cancelled even if no checkpoint noticed it yet.
  const std::int64_t d = s.deadline_ns();
  Clock* clock = s.clock.load(std::memory_order_acquire);
  if (d != State::kNoDeadline && clock != nullptr &&
      s.phase.load(std::memory_order_acquire) != State::kExited && ticks(clock->now()) >= d) {
    s.expire();
  }
  return s.cancel_called();
}

bool CancelScope::cancelled_caught() const noexcept {
  return s_->caught.load(std::memory_order_acquire);
}
bool CancelScope::expired() const noexcept { return s_->expired(); }
bool CancelScope::is_relative() const noexcept {
  return s_->relative && s_->phase.load(std::memory_order_acquire) == State::kNotEntered;
}

TimePoint CancelScope::deadline() const {
  if (is_relative()) {
    throw RuntimeError("CancelScope::deadline: a relative scope has no deadline before it is entered");
  }
  return from_ticks(s_->deadline_ns());
}

std::string CancelScope::cancel_reason() const { return s_->reason(); }

void CancelScope::reschedule(TimePoint deadline) {
  State& s = *s_;
  const std::uint8_t phase = s.phase.load(std::memory_order_acquire);
  if (phase == State::kNotEntered && s.relative) {
    throw RuntimeError(
        "CancelScope::reschedule: a relative scope has no absolute deadline before it is entered");
  }
  if (phase == State::kActive && detail::current_task_base() != s.task) {
    throw RuntimeError("CancelScope::reschedule must be called by the task running the scope");
  }
  s.set_deadline_ns(ticks(deadline));
  if (phase != State::kActive) return;
  s.disarm();
  Loop& loop = get_running_loop();
  s.arm(loop, loop.now_ns());
}

void CancelScope::enter() {
  State& s = *s_;
  detail::TaskBase* task = detail::current_task_base_checked("a cancel scope");
  if (s.phase.load(std::memory_order_relaxed) != State::kNotEntered) {
    throw RuntimeError("a CancelScope can run only once");
  }
  Loop& loop = get_running_loop();
  s.clock.store(&loop.runtime().clock(), std::memory_order_release);
  const std::int64_t now = loop.now_ns();
  if (s.relative) s.set_deadline_ns(add_saturating(now, s.relative_ns));
  s.task = task;
  s.cancels_at_entry = task->cancelling();
  s.phase.store(State::kActive, std::memory_order_release);
  task->enter_scope(&s);
  s.arm(loop, now);  // a deadline already passed cancels the scope at entry
}

namespace detail {
namespace {

// Whether scope `s`, just left by `task` with the body's exception `e`,
// catches it; `cancels_at_entry` is task->cancelling() at entry.
bool scope_catches(TaskBase* task, CancelScopeState& s, int cancels_at_entry,
                   const std::exception_ptr& e) {
  if (!e || !s.cancel_called()) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
  } catch (...) {
    return false;  // not a cancellation: let it through
  }
  // An enclosing cancelled scope visible from here catches it instead (a
  // shield hides them: then this scope's own cancellation is ours).
  if (!s.shield()) {
    detail::CancelScopeState* outer = task->innermost_scope();
    if (outer != nullptr && task->check_scopes(outer, nullptr)) return false;
  }
  // A Task::cancel request made while the body ran is never swallowed:
  // the CancelledError propagates. Only a shielded scope catches its own
  // then, when the requests were deferred by its shield (still pending):
  // they are delivered at the first checkpoint after it.
  return task->cancelling() <= cancels_at_entry || (s.shield() && task->cancel_pending());
}

}  // namespace

bool InlineTimeout::enter(TaskBase* task, Duration d) {
  Loop& loop = get_running_loop();
  const std::int64_t now = loop.now_ns();
  const std::int64_t deadline = add_saturating(now, d.count());
  state_.set_deadline_ns(deadline);
  task_ = task;
  cancels_at_entry_ = task->cancelling();
  task->enter_scope(&state_, /*shared=*/false);  // the timer is armed after this
  if (deadline <= now) {
    state_.expire();
    return false;
  }
  if (deadline != CancelScopeState::kNoDeadline) {
    timer_ = loop.call_at(
        from_ticks(deadline),
        [this] {
          state_.expire();
          fire_done_.store(true, std::memory_order_release);
        },
        from_ticks(now));
    armed_ = true;
  }
  return true;
}

void InlineTimeout::disarm() noexcept {
  if (!armed_) return;
  armed_ = false;
  if (!timer_.cancel_and_reset()) {
    // The timer's loop claimed the callback; it may still be running there.
    while (!fire_done_.load(std::memory_order_acquire)) std::this_thread::yield();
  }
}

bool InlineTimeout::leave(const std::exception_ptr& e) {
  disarm();  // the callback is done with the scope, or will never run
  TaskBase* task = std::exchange(task_, nullptr);
  task->exit_scope(&state_, /*shared=*/false);
  return scope_catches(task, state_, cancels_at_entry_, e);
}

InlineTimeout::~InlineTimeout() {
  disarm();
  if (task_ != nullptr) task_->exit_scope(&state_, /*shared=*/false);
}

}  // namespace detail

bool CancelScope::leave(const std::exception_ptr& e) {
  State& s = *s_;
  detail::TaskBase* task = s.task;
  s.disarm();
  task->exit_scope(&s);
  s.phase.store(State::kExited, std::memory_order_release);
  if (!detail::scope_catches(task, s, s.cancels_at_entry, e)) return false;
  s.caught.store(true, std::memory_order_release);
  return true;
}

void CancelScope::throw_caught() const {
  if (expired()) {
    throw TimeoutError(detail::kTimeoutExpiredMessage);
  }
  throw CancelledError(cancel_reason());
}

void Timeout::reschedule(TimePoint when) {
  const auto phase = scope_.s_->phase.load(std::memory_order_acquire);
  if (phase == CancelScope::State::kNotEntered) {
    throw RuntimeError("Timeout::reschedule: the timeout has not been entered");
  }
  if (phase == CancelScope::State::kExited) {
    throw RuntimeError("Timeout::reschedule: cannot change the state of a finished timeout");
  }
  if (scope_.expired()) {
    throw RuntimeError("Timeout::reschedule: cannot change the state of an expiring timeout");
  }
  scope_.reschedule(when);
}

TimePoint current_effective_deadline() {
  detail::TaskBase* task = detail::current_task_base_checked("current_effective_deadline()");
  const std::int64_t d = task->effective_deadline_ns();
  if (d == INT64_MIN) return TimePoint::min();
  return from_ticks(d);
}

}  // namespace weft
