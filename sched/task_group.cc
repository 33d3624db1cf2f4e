#include "weft/sched/task_group.h"
#include "weft/sched/detail/task_group_state.h"

#include <optional>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/task_base.h"
#include "weft/sched/cancel_scope.h"

namespace weft::detail {

RefPtr<TaskGroupState> make_task_group_state() {
  return RefPtr<TaskGroupState>(new TaskGroupState(), kAdoptRef);
}

void task_group_check_open(TaskGroupState& st) {
  detail::SpinLockHolder lock(&st.mu);
  if (st.closed) throw RuntimeError("TaskGroup::create_task: the group has finished");
  if (st.aborting) throw RuntimeError("TaskGroup::create_task: the group is shutting down");
}

void task_group_adopt(TaskGroupState& st, TaskBase& child) {
  {
    detail::SpinLockHolder lock(&st.mu);
    if (st.closed || st.aborting) {
      // Closed between the check and the start: the child must not outlive it.
      child.cancel("TaskGroup: the group is shutting down");
    }
    st.children.emplace_back(&child);
    ++st.pending;
  }
  RefPtr<TaskGroupState> self(&st);
  child.add_inline_callback([self = std::move(self)](FutureStateBase& s) {
    self->on_child_done(static_cast<TaskBase&>(s));
  });
}

namespace {

bool is_cancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

// The join's signal, or nothing if every child has finished.
std::optional<Future<void>> join_signal(TaskGroupState& st) {
  detail::SpinLockHolder lock(&st.mu);
  if (st.pending == 0) return std::nullopt;
  st.joined.emplace();
  return st.joined;
}

Coro<void> wait_signal(Future<void> f) { co_await f; }

}  // namespace

Coro<void> task_group_run(RefPtr<TaskGroupState> st, Coro<void> body) {
  TaskBase* parent = current_task_base_checked("task_group");
  {
    detail::SpinLockHolder lock(&st->mu);
    st->parent = parent;
  }
  std::exception_ptr body_error;
  try {
    co_await std::move(body);
  } catch (...) {
    body_error = std::current_exception();
  }

  bool propagate_cancel = false;
  // A cancellation that a child's failure asked for is ours: withdraw it.
  auto take_own_cancel = [&]() -> bool {
    detail::SpinLockHolder lock(&st->mu);
    if (!st->parent_cancel_requested) return false;
    st->parent_cancel_requested = false;
    parent->uncancel();
    return true;
  };
  auto abort_children = [&] {
    std::vector<RefPtr<TaskBase>> to_cancel;
    {
      detail::SpinLockHolder lock(&st->mu);
      to_cancel = st->abort_locked();
    }
    for (auto& c : to_cancel) c->cancel("TaskGroup: the body failed or was cancelled");
  };
  if (body_error) {
    if (is_cancellation(body_error)) {
      if (!take_own_cancel()) {
        propagate_cancel = true;
        abort_children();
      }
    } else {
      {
        detail::SpinLockHolder lock(&st->mu);
        st->errors.push_back(body_error);
      }
      abort_children();
    }
  }

  // Join. After a first cancellation the join is shielded: the children are
  // being cancelled and must be waited for.
  bool shield = false;
  for (;;) {
    std::optional<Future<void>> signal = join_signal(*st);
    if (!signal) break;
    if (shield) {
      co_await CancelScope(ScopeOptions{.shield = true}).run(wait_signal(*signal));
      continue;
    }
    bool cancelled = false;
    try {
      co_await *signal;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      if (!take_own_cancel()) propagate_cancel = true;
      abort_children();
      shield = true;
    }
  }

  std::vector<std::exception_ptr> errors;
  {
    detail::SpinLockHolder lock(&st->mu);
    st->closed = true;
    st->parent = nullptr;
    errors = std::move(st->errors);
  }
  take_own_cancel();  // a request not delivered yet must not leak out
  if (!errors.empty()) throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  if (propagate_cancel) throw CancelledError("TaskGroup: the enclosing task was cancelled");
}

}  // namespace weft::detail
