// weft::Task<T>: a coroutine scheduled to run concurrently, with
// asyncio.Task's semantics. Made by `weft::create_task` (sched/spawn.h).
//
// A Task is a future that only its body completes: it has no set_result or
// set_exception. `cancel(msg)` requests cancellation: CancelledError(msg) is
// raised inside the body at its next suspension point, and what the body
// awaits is cancelled too. The body may catch it and go on; `cancelling()`
// counts requests not yet withdrawn with `uncancel()`.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <new>
#include <string>
#include <utility>

#include "weft/core/coro.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/future.h"

namespace weft {
namespace detail {

template <typename T>
class TaskState final : public TaskBase, public ValueStorage<T> {
  using Handle = typename Coro<T>::Handle;

 public:
  // Makes the task of `body` (valid) in the room its frame's block keeps
  // for it (coro.h): a task is one block. Returns the state with one
  // reference. If the constructor throws, the Coro still owns its frame, and
  // the block goes with it.
  static TaskState* make(LoopBase* loop, Coro<T>&& body, std::string&& name) {
    static_assert(sizeof(TaskState) == sizeof(TaskStateLayout<T>) &&
                  alignof(TaskState) == alignof(TaskStateLayout<T>));
    char* block = static_cast<char*>(body.handle().address()) - body_prefix_bytes<T>;
    return ::new (block) TaskState(loop, std::move(body), std::move(name));
  }


 private:
  TaskState(LoopBase* loop, Coro<T>&& body, std::string&& name)
      : TaskBase(loop, std::move(name)) {
    Handle h = body.release();
    h.promise().root_task_ = this;
    set_body_unshared(h);
    resume_point_ = h;
  }

  static Promise<T>& promise(std::coroutine_handle<> body) noexcept {
    return Handle::from_address(body.address()).promise();
  }
  const PromiseBase& promise_of(std::coroutine_handle<> body) const noexcept override {
    return promise(body);
  }
  void on_body_done() noexcept override {
    Promise<T>& p = promise(body_unlocked());
    Outcome outcome;
    if (p.exception_) {
      outcome = record_exception(std::move(p.exception_));
    } else if (take_cancel_at_return()) {
      outcome = Outcome::kCancelled;
    } else {
      if constexpr (!std::is_void_v<T>) this->emplace_value(std::move(*p.value_));
      outcome = Outcome::kValue;
    }
    finish(outcome);  // destroys the frame (at its final suspend: safe); *this may be destroyed
  }
  // A done task's handle may outlive its runtime, and the loop with it:
  // finish() left the home loop's id where the frame was. Done callbacks ask
  // (CallbackNode::notify) only after the outcome is published, so they take
  // the first branch; a task not done has a live runtime (its teardown
  // finishes every task).
  std::uint64_t loop_id() const noexcept override {
    if (!this->done()) return this->loop()->loop_id();
    const char* frame = reinterpret_cast<const char*>(this) + body_prefix_bytes<T>;
    return *std::launder(reinterpret_cast<const std::uint64_t*>(frame));
  }
  // The last reference went. The frame is gone (finish), or goes here with
  // the block kept; then the block, which begins with this state, is freed.
  void destroy() noexcept override {
    report_if_never_retrieved();
    destroy_body_keeping_block();
    const std::size_t bytes = body_prefix_bytes<T> + body_frame_bytes();
    void* block = this;
    this->~TaskState();
    deallocate_frame(block, bytes);
  }
};

}  // namespace detail

template <typename T = void>
class Task : public BasicFuture<T> {
  using State = detail::TaskState<T>;

 public:
  Task() = default;  // empty handle; valid() is false

  // Requests cancellation (see the file comment). False if the task is done.
  bool cancel(std::string msg = {}) const { return base().cancel(std::move(msg)); }
  int cancelling() const { return base().cancelling(); }
  int uncancel() const { return base().uncancel(); }

  std::string get_name() const { return base().name(); }
  void set_name(std::string name) const { base().set_name(std::move(name)); }
  std::uint64_t id() const { return base().id(); }
  // What the task is suspended on, for debugging ("" if it is not waiting).
  std::string waiting_on() const { return base().waiting_on(); }

  // Schedules `fn(Task<T>&)` on the task's loop once it is done.
  template <typename Fn>
  CallbackHandle add_done_callback(Fn&& fn) const {
    return this->template add_callback_as<Task>(std::forward<Fn>(fn));
  }

  static Task from_state(detail::FutureStateBase& s) {
    return Task(detail::RefPtr<detail::FutureStateBase>(&s));
  }
  // For the runtime: a handle on a new task (adopts one reference).
  static Task adopt(State* s) {
    return Task(detail::RefPtr<detail::FutureStateBase>(s, detail::kAdoptRef));
  }
  detail::TaskBase& base() const {
    return static_cast<detail::TaskBase&>(this->state());
  }

 private:
  explicit Task(detail::RefPtr<detail::FutureStateBase> s)
      : BasicFuture<T>(s, static_cast<State*>(static_cast<detail::TaskBase*>(s.get()))) {}
};

}  // namespace weft
