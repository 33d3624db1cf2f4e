// The awaiter behind `co_await future` and `co_await task`.
#pragma once

#include <coroutine>

#include "weft/core/detail/future_state.h"
#include "weft/core/detail/task_base.h"

namespace weft::detail {

// Awaiting a done state does not suspend (asyncio). Otherwise the awaiting
// task suspends on the state; the awaiter itself is the waiter node, living
// in the awaiting coroutine's frame for the whole suspension.
template <typename T>
class StateAwaiter final : public Waiter {
 public:
  // `move_if_sole`: for an awaited temporary (a gathering future), the
  // value is moved out when this awaiter holds the state's last reference.
  StateAwaiter(RefPtr<FutureStateBase> state, ValueStorage<T>* storage, bool move_if_sole = false)
      : state_(std::move(state)), storage_(storage), move_if_sole_(move_if_sole) {}

  // A done state does not suspend, unless the step's budget is spent.
  bool await_ready() const noexcept { return state_->done() && consume_budget(); }
  bool await_suspend(std::coroutine_handle<> h) {
    task_ = current_task_base_checked("a Future or Task");
    if (state_->done()) {  // budget spent: let the others run first
      task_->suspend_and_yield(h);
      return true;
    }
    return task_->suspend_on(*state_, *this, h);
    // If true, *this may be resumed on another thread already.
  }
  T await_resume() {
    // The future's outcome decides, unless a request arrived meanwhile: a
    // result the awaited task produced despite a scope's cancellation is
    // returned (asyncio), and the next checkpoint raises.
    if (task_ != nullptr) task_->throw_if_request_pending();
    state_->check_result();
    return storage_->take_value(move_if_sole_ && state_->sole_owner());
  }

 private:
  void notify(FutureStateBase&) noexcept override { task_->schedule(Wake::kNotify); }

  RefPtr<FutureStateBase> state_;
  ValueStorage<T>* storage_;
  TaskBase* task_ = nullptr;
  bool move_if_sole_;
};

// Waits until a state is done without looking at its outcome (for joins
// that inspect the outcome themselves: run's supervisor, task groups).
class DoneAwaiter final : public Waiter {
 public:
  explicit DoneAwaiter(RefPtr<FutureStateBase> state) : state_(std::move(state)) {}
  bool await_ready() const noexcept { return state_->done(); }
  bool await_suspend(std::coroutine_handle<> h) {
    task_ = current_task_base_checked("a join");
    return task_->suspend_on(*state_, *this, h);
  }
  void await_resume() {
    if (task_ != nullptr) task_->throw_if_cancel_requested();
  }

 private:
  void notify(FutureStateBase&) noexcept override { task_->schedule(Wake::kNotify); }

  RefPtr<FutureStateBase> state_;
  TaskBase* task_ = nullptr;
};

}  // namespace weft::detail
