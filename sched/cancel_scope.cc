#include "weft/sched/cancel_scope.h"

#include <atomic>
#include <stdexcept>

#include "absl/strings/str_format.h"
#include "weft/sched/spawn.h"

namespace weft {

// Shared by the CancelScope handles and the deadline timer.
// Threads: `deadline`, `timer`, `loop` and `entered` are touched only by the
// task running the scope (and by the timer callback on that loop, which only
// calls cancel); `expired` and `caught` are atomics read from anywhere.
struct CancelScope::State : detail::CancelScopeState {
  TimePoint deadline = TimePoint::max();
  TimerHandle timer;
  bool entered = false;
  bool active = false;
  int cancels_at_entry = 0;
  detail::TaskBase* task = nullptr;
  std::atomic<bool> expired{false};
  std::atomic<bool> caught{false};

  void arm() {
    if (deadline == TimePoint::max() || cancel_called()) return;
    Loop& loop = get_running_loop();
    if (deadline <= loop.time()) {
      fire();
      return;
    }
    detail::RefPtr<State> self(this);
    timer = loop.call_at(deadline, [self = std::move(self)] { self->fire(); });
  }
  void fire() {
    if (cancel_called()) return;
    expired.store(true, std::memory_order_release);
    cancel(absl::StrFormat("cancelled by a cancel scope whose deadline passed (scope %p)",
                           static_cast<const void*>(this)));
  }
};

CancelScope::CancelScope() : s_(new State(), detail::kAdoptRef) {}
CancelScope::CancelScope(const CancelScope&) = default;
CancelScope::CancelScope(CancelScope&&) noexcept = default;
CancelScope& CancelScope::operator=(const CancelScope&) = default;
CancelScope& CancelScope::operator=(CancelScope&&) noexcept = default;
CancelScope::~CancelScope() = default;

CancelScope CancelScope::after(Duration d) {
  if (d.count() < 0) {
    throw std::invalid_argument(
        absl::StrFormat("cancel scope: negative timeout (%d ns)", d.count()));
  }
  return at(get_running_loop().time() + d);
}

CancelScope CancelScope::at(TimePoint deadline) {
  CancelScope scope;
  scope.s_->deadline = deadline;
  return scope;
}

CancelScope& CancelScope::shield(bool on) {
  if (s_->entered) throw RuntimeError("CancelScope::shield: the scope already ran");
  s_->shield_ = on;
  return *this;
}

bool CancelScope::cancel(std::string reason) const {
  if (reason.empty()) {
    reason = absl::StrFormat("cancelled by CancelScope::cancel (scope %p)",
                             static_cast<const void*>(s_.get()));
  }
  return s_->cancel(std::move(reason));
}

bool CancelScope::cancel_called() const noexcept { return s_->cancel_called(); }
bool CancelScope::cancelled_caught() const noexcept {
  return s_->caught.load(std::memory_order_acquire);
}
bool CancelScope::expired() const noexcept { return s_->expired.load(std::memory_order_acquire); }
TimePoint CancelScope::deadline() const noexcept { return s_->deadline; }
std::string CancelScope::cancel_reason() const { return s_->reason(); }

void CancelScope::reschedule(TimePoint deadline) {
  State& s = *s_;
  if (s.active && detail::current_task_base() != s.task) {
    throw RuntimeError("CancelScope::reschedule must be called by the task running the scope");
  }
  s.deadline = deadline;
  if (!s.active) return;
  s.timer.cancel();
  s.timer = TimerHandle();
  s.arm();
}

void CancelScope::enter() {
  State& s = *s_;
  detail::TaskBase* task = detail::current_task_base_checked("a cancel scope");
  if (s.entered) throw RuntimeError("a CancelScope can run only once");
  s.entered = true;
  s.active = true;
  s.task = task;
  s.cancels_at_entry = task->cancelling();
  task->enter_scope(&s);
  s.arm();
}

bool CancelScope::leave(const std::exception_ptr& e) {
  State& s = *s_;
  detail::TaskBase* task = s.task;
  s.timer.cancel();
  s.timer = TimerHandle();
  task->exit_scope(&s);
  s.active = false;
  if (!e || !s.cancel_called()) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
  } catch (...) {
    return false;  // not a cancellation: let it through
  }
  // Ours to catch only if no enclosing scope is cancelled too (the outer one
  // catches it then) and nobody cancelled the task from outside meanwhile.
  const detail::CancelScopeState* outer = task->innermost_scope();
  if (outer != nullptr && task->scope_cancellation(outer, nullptr)) return false;
  if (task->cancelling() > s.cancels_at_entry) return false;
  s.caught.store(true, std::memory_order_release);
  return true;
}

}  // namespace weft
