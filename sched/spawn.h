// Task creation and the loop-level calls of asyncio, for code running inside
// a weft runtime: create_task, ensure_future, current_task, all_tasks,
// sleep, yield_now, get_running_loop, call_soon, call_later, call_at.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <stdexcept>
#include <string>
#include <vector>

#include "weft/core/coro.h"
#include "weft/core/future.h"
#include "weft/core/task.h"
#include "weft/sched/loop.h"
#include "weft/sched/runtime.h"

namespace weft {

// The loop running on this thread. RuntimeError if there is none.
Loop& get_running_loop();

// Schedules `body` as a new task on the running runtime and returns its
// handle (asyncio.create_task). With one worker the task starts after the
// current step, as in asyncio; with several, an idle worker may steal and
// start it at once. It may run on any worker, and runs to completion even if
// the handle is dropped.
// RuntimeError if no runtime runs on this thread.
template <typename T>
Task<T> create_task(Coro<T> body, std::string name = {}) {
  if (!body.valid()) throw std::invalid_argument("create_task: empty or moved-from Coro");
  Loop& loop = get_running_loop();
  auto* state = new detail::TaskState<T>(&loop, std::move(body), std::move(name));
  return Task<T>::adopt(
      static_cast<detail::TaskState<T>*>(loop.start_task(state, false, true)));
}

namespace detail {
// create_task for a caller that suspends on the new task right away (e.g.
// wait_for): the task goes to this worker's LIFO slot and runs next here, so
// no idle worker is woken just to steal it.
template <typename T>
Task<T> create_task_to_await(Coro<T> body) {
  if (!body.valid()) throw std::invalid_argument("create_task: empty or moved-from Coro");
  Loop& loop = get_running_loop();
  auto* state = new detail::TaskState<T>(&loop, std::move(body), std::string());
  return Task<T>::adopt(static_cast<detail::TaskState<T>*>(
      loop.start_task(state, false, true, detail::Wake::kNotify)));
}
}  // namespace detail

// Like create_task, but the task always runs on the current loop.
template <typename T>
Task<T> create_pinned_task(Coro<T> body, std::string name = {}) {
  return get_running_loop().create_pinned_task(std::move(body), std::move(name));
}

// asyncio.ensure_future: a task or future is returned as is; a Coro becomes
// a task.
template <typename T>
Task<T> ensure_future(Coro<T> body) {
  return create_task(std::move(body));
}
template <typename T>
const Task<T>& ensure_future(const Task<T>& t) {
  return t;
}
template <typename T>
const Future<T>& ensure_future(const Future<T>& f) {
  return f;
}

// The task running on this thread; an invalid handle outside a task.
AnyTask current_task();
// Every unfinished task of the running runtime.
std::vector<AnyTask> all_tasks();
// The running runtime's task dump (Runtime::dump_tasks).
std::string dump_tasks();

// Suspends the task for `d` (asyncio.sleep). sleep(0) yields once.
// std::invalid_argument for a negative duration.
Coro<void> sleep(Duration d);
template <typename T>
Coro<T> sleep(Duration d, T value) {
  co_await sleep(d);
  co_return std::move(value);
}

// Lets the other ready tasks run, then resumes (asyncio.sleep(0)).
// A cancellation point.
class [[nodiscard]] YieldAwaiter {
 public:
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = detail::current_task_base_checked("yield_now()");
    task_->suspend_and_yield(h);
  }
  void await_resume() { task_->throw_if_cancel_requested(); }

 private:
  detail::TaskBase* task_ = nullptr;
};
inline YieldAwaiter yield_now() { return {}; }

// The running loop's call_soon / call_later / call_at.
inline void call_soon(detail::Callback cb) { get_running_loop().call_soon(std::move(cb)); }
inline TimerHandle call_later(Duration d, detail::Callback cb) {
  return get_running_loop().call_later(d, std::move(cb));
}
inline TimerHandle call_at(TimePoint when, detail::Callback cb) {
  return get_running_loop().call_at(when, std::move(cb));
}

}  // namespace weft
