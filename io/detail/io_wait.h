// The reactor's building blocks (see weft/io/reactor.h for the design):
//
//  - IoWait: one wait for readiness. It is a future state (what the waiting
//    task suspends on, so Task::cancel cancels it through the ordinary
//    protocol of core/detail/task_base.h) and, for one-shot waits on a raw
//    fd, also the epoll handler (`epoll_event.data.ptr`).
//  - IoWaitAwaiterBase: suspends the current task on an IoWait, with an
//    optional deadline, and turns its outcome into a return or an exception.
//  - release_registration: drops the reference an epoll registration holds,
//    on the owning loop's thread.
//
// Ownership of a one-shot registration: `arm_oneshot` (on the owning loop's
// thread) takes one reference for the epoll entry and counts one io watch
// on the loop. Exactly one party ends the registration: whoever wins
// `try_claim()` (on_io on the owner's thread, cancel from any thread, the
// deadline timer, or `complete/fail`). The winner removes the entry with
// EPOLL_CTL_DEL *before* publishing the outcome, so when the waiting task
// resumes the fd is no longer in any epoll set because of it (the task may
// close the fd and the number may be reused at once). The epoll reference is
// dropped on the owner's thread only (directly when the winner runs there,
// else through call_soon_threadsafe), because the owner may hold a batch of
// epoll events, returned before the DEL, that still points at the handler.
// The loop dispatches a whole batch before it runs posted callbacks, so the
// handler outlives every event that names it.
//
// Memory order: the registration fields are written by the owner's thread
// before the state is published to other threads (through the task's
// waiter_ under its mutex, or a watch list under the watch's mutex); every
// later reader acquired one of those. The claim is an acq_rel exchange in
// FutureStateBase; the outcome is published by FutureStateBase::publish.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>

#include "weft/core/detail/future_state.h"
#include "weft/core/detail/task_base.h"
#include "weft/sched/clock.h"
#include "weft/sched/detail/io_handler.h"
#include "weft/sched/loop.h"

namespace weft::detail {

// Drops one reference to `obj` together with one io watch of `loop`, on
// `loop`'s thread: at once if called there, else posted (the posted closure
// also does it if it is destroyed unrun, e.g. at runtime shutdown).
// The caller must not be inside `loop`'s dispatch of an epoll batch.
void release_registration(Loop& loop, const RefCounted* obj) noexcept;

// The running weft loop of this thread; RuntimeError naming `what` if none.
Loop& current_io_loop(const char* what);

class IoWait final : public FutureStateBase, public IoHandler {
 public:
  // A pending wait whose callbacks run on `loop`; `fd` and `what` are for
  // describe().
  IoWait(Loop& loop, int fd, const char* what)
      : FutureStateBase(&loop), loop_id_(static_cast<const LoopBase&>(loop).loop_id()), fd_(fd), what_(what) {}
  // A reference may outlive the runtime (an awaiter's, an io object's).
  std::uint64_t loop_id() const noexcept override { return loop_id_; }

  // Registers a one-shot epoll watch for `events` of `fd` on this state's
  // loop, which must be the calling thread's loop. Returns false if epoll
  // cannot watch `fd` because it is always ready (regular files: EPERM).
  // Throws OSError (e.g. EBADF). A second concurrent watch of the same fd
  // on the same loop (EEXIST) registers a dup of the fd.
  bool arm_oneshot(int fd, std::uint32_t events);

  // Complete / fail the wait; false if it was already done.
  bool complete() noexcept { return finish(Outcome::kValue, nullptr, {}); }
  bool fail(std::exception_ptr e) noexcept { return finish(Outcome::kException, std::move(e), {}); }
  bool cancel(std::string msg) override {
    return finish(Outcome::kCancelled, nullptr, std::move(msg));
  }

  void on_io(std::uint32_t events) noexcept override;
  std::string describe() const override;

  // Link in an FdWatch's waiter list (guarded by that watch's mutex).
  IoWait* watch_next_ = nullptr;

 private:
  ~IoWait() override = default;
  bool finish(Outcome o, std::exception_ptr e, std::string msg) noexcept;

  const std::uint64_t loop_id_;
  const int fd_;
  const char* const what_;
  // One-shot registration; written by arm_oneshot before publication.
  Loop* reg_loop_ = nullptr;
  int reg_fd_ = -1;
  bool reg_dup_ = false;
};

// Raises what a finished wait ended with: CancelledError if the task has a
// pending cancellation request or the wait was cancelled, the wait's
// exception if it failed. The exception is always marked retrieved.
void finish_wait(IoWait& wait, TaskBase* task);

// The common part of the io awaiters. Movable only before it is awaited
// (e.g. into a helper that awaits it): once suspended it is a node in the
// IoWait's waiter list and must stay where it is.
class IoWaitAwaiterBase : public Waiter {
 public:
  IoWaitAwaiterBase(IoWaitAwaiterBase&& o) noexcept : deadline_(o.deadline_) {}
  IoWaitAwaiterBase& operator=(IoWaitAwaiterBase&&) = delete;

 protected:
  IoWaitAwaiterBase() = default;
  explicit IoWaitAwaiterBase(std::optional<TimePoint> deadline) : deadline_(deadline) {}
  ~IoWaitAwaiterBase() = default;

  // Arms the deadline (if any) on `loop` and suspends `task_` on `state_`.
  // Returns what await_suspend must return.
  bool suspend(Loop& loop, std::coroutine_handle<> h);
  // Cancels the deadline timer; then finish_wait.
  void resume();

  RefPtr<IoWait> state_;
  TaskBase* task_ = nullptr;
  std::optional<TimePoint> deadline_;

 private:
  void notify(FutureStateBase&) noexcept override { task_->schedule(Wake::kNotify); }
  TimerHandle timer_;
};

// A cancellation point that suspends only when the running step has spent
// its budget (kStepBudget), so a task whose io never blocks still lets the
// others run. Socket operations start with it: a cancellation delivered
// here happens before the operation touched the fd.
class [[nodiscard]] BudgetAwaiter {
 public:
  bool await_ready() const noexcept { return consume_budget(); }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = current_task_base_checked("an io operation");
    task_->suspend_and_yield(h);
  }
  void await_resume() {
    if (task_ != nullptr) task_->throw_if_cancel_requested();
  }

 private:
  TaskBase* task_ = nullptr;
};

}  // namespace weft::detail
