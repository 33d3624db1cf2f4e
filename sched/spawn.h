// Task creation and the loop-level calls of asyncio, for code running inside
// a weft runtime: create_task, ensure_future, current_task, all_tasks,
// sleep, yield_now, get_running_loop, call_soon, call_later, call_at.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <optional>
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

// How create_task starts a task.
struct TaskOptions {
  std::string name;
  // Run the task's first step inside create_task (Python 3.12's eager
  // tasks, asyncio.create_task(eager_start=True)): a task that finishes
  // there never touches a run queue. The task factory may change it.
  bool eager_start = false;
};

namespace detail {
// The one path of task creation on a runtime's thread: makes the task of
// `body` on the running loop, lets the runtime's task factory see it, and
// starts it. A refused body is destroyed without a "never awaited" report:
// the error raised is the report.
template <typename T>
Task<T> prepare_task(Loop& loop, Coro<T>&& body, std::string&& name, bool* eager) {
  auto* state = TaskState<T>::make(&loop, std::move(body), std::move(name));
  Task<T> handle = Task<T>::adopt(state);  // frees the task if the factory throws
  loop.apply_task_factory(state, eager);
  return handle;
}
template <typename T>
Task<T> spawn_task(Coro<T>& body, std::string&& name, bool eager) {
  if (!body.valid()) throw std::invalid_argument("create_task: empty or moved-from Coro");
  LoopBase* base = current_loop();
  if (base == nullptr) {
    body.discard();
    throw RuntimeError("create_task: no running weft loop on this thread");
  }
  Loop& loop = static_cast<Loop&>(*base);
  Task<T> t = prepare_task(loop, std::move(body), std::move(name), &eager);
  loop.start_new_task(&t.base(), eager);
  return t;
}
}  // namespace detail

// Schedules `body` as a new task on the running runtime and returns its
// handle (asyncio.create_task). With one worker the task starts after the
// current step, as in asyncio; with several, an idle worker may steal and
// start it at once. It may run on any worker, and runs to completion even if
// the handle is dropped. The runtime's task factory sees it first.
// RuntimeError if no runtime runs on this thread.
template <typename T>
Task<T> create_task(Coro<T> body, TaskOptions options) {
  return detail::spawn_task(body, std::move(options.name), options.eager_start);
}
template <typename T>
Task<T> create_task(Coro<T> body, std::string name = {}) {
  return detail::spawn_task(body, std::move(name), false);
}


namespace detail {
template <typename>
inline constexpr bool kIsCoro = false;
template <typename T>
inline constexpr bool kIsCoro<Coro<T>> = true;
}  // namespace detail

namespace detail {
// For the task-making calls given anything but a Coro (the coroutine
// function itself, a lambda, an awaiter): one error that says what they take.
template <typename F>
void reject_non_coro() {
  static_assert(kIsCoro<F>,
                "create_task takes a weft::Coro<T>: call the coroutine function "
                "(create_task(work(args)), not create_task(work)); for a synchronization "
                "primitive's awaiter, use as_coro() (create_task(queue.get().as_coro()))");
}
}  // namespace detail

template <typename F, typename... Rest>
  requires(!detail::kIsCoro<std::remove_cvref_t<F>>)
void create_task(F&&, Rest&&...) {
  detail::reject_non_coro<std::remove_cvref_t<F>>();
}

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

// The task running on this thread (asyncio.current_task); an invalid handle
// on a loop thread outside any task (in a callback). RuntimeError where no
// weft loop runs on this thread (asyncio: no running event loop).
AnyTask current_task();
// The task running on this thread, or nothing (also off a loop thread).
std::optional<AnyTask> try_current_task();
// Every unfinished task of the running runtime.
std::vector<AnyTask> all_tasks();
// The running runtime's task dump (Runtime::dump_tasks).
std::string dump_tasks();

// Suspends the task for `d` (asyncio.sleep). A zero or negative `d` yields
// once, as asyncio.sleep(0) does (a delay computed as `deadline - now` is
// often negative).
Coro<void> sleep(Duration d);
// Suspends the task until `deadline` on the runtime's clock (Trio's
// sleep_until); a deadline already passed yields once.
Coro<void> sleep_until(TimePoint deadline);
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
