// weft::task_group: structured concurrency with Python 3.11's TaskGroup
// semantics.
//
//   co_await weft::task_group([&](weft::TaskGroup& tg) -> weft::Coro<void> {
//     tg.create_task(fetch(a));
//     tg.create_task(fetch(b));
//     co_return;
//   });   // both children have finished here
//
// C++ has no asynchronous destructor, so the group is a function of its body:
// task_group() runs the body, then joins every child before it returns or
// throws. There is no way to leave the group's scope without joining.
//
//  - The first child that fails (with an exception other than
//    CancelledError) cancels the other children and the body; task_group
//    then raises an ExceptionGroup holding every failure (the body's own
//    exception last, as in Python), in the order they happened.
//  - A cancellation of the enclosing task from outside cancels the children,
//    waits for them, and propagates as that CancelledError (its message
//    kept). If children failed too, the ExceptionGroup wins and the outside
//    cancellation is delivered again at the enclosing task's next checkpoint
//    (Python 3.13: uncancel, then cancel), cancelling() unchanged.
//  - A child cancelled on its own is not a failure.
//  - create_task on a group that has not started, that is shutting down
//    after a failure, or that has finished raises RuntimeError naming the
//    state.
//
// Thread safety: TaskGroup::create_task may be called from any task of the
// runtime (children run on any worker); the group's state is under a mutex.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <concepts>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/core/coro.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/core/task.h"
#include "weft/sched/detail/task_group_state.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace detail {
// Throws RuntimeError naming the state if the group takes no children
// (not started, shutting down, or finished).
void task_group_check_open(TaskGroupState& st);
// Registers a new child (made, not started) with the group, or throws like
// task_group_check_open: the check and the registration are one step, so
// no child is added to a group that has finished.
void task_group_adopt(TaskGroupState& st, TaskBase& child);
Coro<void> task_group_run(RefPtr<TaskGroupState> st, Coro<void> body);
RefPtr<TaskGroupState> make_task_group_state();
}  // namespace detail

class TaskGroup;

// task_group's body: a callable taking TaskGroup& and returning Coro<void>,
// e.g. `[&](weft::TaskGroup& tg) -> weft::Coro<void> { ...; co_return; }`.
// A lambda without `-> weft::Coro<void>` (so returning void) fails at the
// call with this concept's name.
template <typename F>
concept TaskGroupBody =
    std::invocable<F&, TaskGroup&> && std::same_as<std::invoke_result_t<F&, TaskGroup&>, Coro<void>>;

class TaskGroup {
 public:
  // Starts `body` as a child task of the group. RuntimeError (and the Coro
  // is destroyed unrun, without a "never awaited" report) if the group has
  // not started, is shutting down after a failure, or has finished; also
  // from a handle copied out of the body, which stays safe to call.
  template <typename T>
  Task<T> create_task(Coro<T> body, TaskOptions options) {
    if (!body.valid()) throw std::invalid_argument("TaskGroup::create_task: empty or moved-from Coro");
    try {
      detail::task_group_check_open(*st_);
    } catch (...) {
      body.discard();
      throw;
    }
    Loop& loop = get_running_loop();
    bool eager = options.eager_start;
    Task<T> t = detail::prepare_task(loop, std::move(body), std::move(options.name), &eager);
    detail::task_group_adopt(*st_, t.base());  // throws if it closed meanwhile: t frees it
    loop.start_new_task(&t.base(), eager);
    return t;
  }
  template <typename T>
  Task<T> create_task(Coro<T> body, std::string name = {}) {
    return create_task(std::move(body), TaskOptions{.name = std::move(name), .eager_start = false});
  }
  // Anything but a Coro: the same one error as weft::create_task's.
  template <typename F, typename... Rest>
    requires(!detail::kIsCoro<std::remove_cvref_t<F>>)
  void create_task(F&&, Rest&&...) {
    detail::reject_non_coro<std::remove_cvref_t<F>>();
  }

 private:
  template <TaskGroupBody F>
  friend Coro<void> task_group(F body);
  explicit TaskGroup(detail::RefPtr<detail::TaskGroupState> st) : st_(std::move(st)) {}
  detail::RefPtr<detail::TaskGroupState> st_;
};

// Runs `body(group)` and joins every child of the group; see the file
// comment. `body` is a callable taking TaskGroup& and returning Coro<void>.
template <TaskGroupBody F>
Coro<void> task_group(F body) {
  auto st = detail::make_task_group_state();
  TaskGroup group(st);
  co_await detail::task_group_run(st, body(group));
}

}  // namespace weft
