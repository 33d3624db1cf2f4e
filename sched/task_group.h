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
//    exception included), in the order they happened.
//  - A cancellation of the enclosing task from outside cancels the children,
//    waits for them, and propagates as CancelledError (unless children
//    failed: then the ExceptionGroup wins, as in Python).
//  - A child cancelled on its own is not a failure.
//  - create_task on a group that has finished, or that is shutting down
//    after a failure, raises RuntimeError.
//
// Thread safety: TaskGroup::create_task may be called from any task of the
// runtime (children run on any worker); the group's state is under a mutex.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/coro.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/core/task.h"
#include "weft/sched/detail/task_group_state.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace detail {
// Registers a new child (already started) with the group; throws
// RuntimeError (after cancelling the child) if the group is closed.
void task_group_adopt(TaskGroupState& st, TaskBase& child);
// Throws RuntimeError if the group no longer accepts children.
void task_group_check_open(TaskGroupState& st);
Coro<void> task_group_run(RefPtr<TaskGroupState> st, Coro<void> body);
RefPtr<TaskGroupState> make_task_group_state();
}  // namespace detail

class TaskGroup {
 public:
  // Starts `body` as a child task of the group.
  template <typename T>
  Task<T> create_task(Coro<T> body, std::string name = {}) {
    detail::task_group_check_open(*st_);
    Task<T> t = weft::create_task(std::move(body), std::move(name));
    detail::task_group_adopt(*st_, t.base());
    return t;
  }

 private:
  template <typename F>
  friend Coro<void> task_group(F body);
  explicit TaskGroup(detail::RefPtr<detail::TaskGroupState> st) : st_(std::move(st)) {}
  detail::RefPtr<detail::TaskGroupState> st_;
};

// Runs `body(group)` and joins every child of the group; see the file
// comment. `body` is a callable taking TaskGroup& and returning Coro<void>.
template <typename F>
Coro<void> task_group(F body) {
  auto st = detail::make_task_group_state();
  TaskGroup group(st);
  co_await detail::task_group_run(st, body(group));
}

}  // namespace weft
