#include "weft/sched/task_group.h"
#include "weft/sched/detail/task_group_state.h"

#include <algorithm>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/task_base.h"
#include "weft/sched/cancel_scope.h"

namespace weft::detail {

RefPtr<TaskGroupState> make_task_group_state() {
  return RefPtr<TaskGroupState>(new TaskGroupState(), kAdoptRef);
}

namespace {

// Why the group takes no children, or null.
const char* refusal_locked(const TaskGroupState& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
  if (!st.entered) return "TaskGroup::create_task: the group has not started";
  if (st.closed) return "TaskGroup::create_task: the group has finished";
  if (st.aborting) return "TaskGroup::create_task: the group is shutting down";
  return nullptr;
}

bool is_cancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

// The join's signal, or nothing (and the group closed) if every child has
// finished.
std::optional<Future<void>> join_signal(TaskGroupState& st) {
  detail::SpinLockHolder lock(&st.mu);
  if (st.pending == 0) {
    st.closed = true;
    return std::nullopt;
  }
  st.joined.emplace();
  return st.joined;
}

Coro<void> wait_signal(Future<void> f) { co_await f; }

// True if `t` is the group's parent or one of its children: a task the
// group's abort cancels.
bool is_member_locked(const TaskGroupState& st, const TaskBase* t)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
  if (t == nullptr) return false;
  if (st.parent == t) return true;
  return std::any_of(st.children.begin(), st.children.end(),
                     [t](const RefPtr<TaskBase>& c) { return c.get() == t; });
}

// Threads make a case asyncio cannot have: a child, or the body, still
// running on another worker when the group starts shutting down, before the
// cancellation the shutdown sends it has reached it. asyncio would have
// delivered that cancellation before the task ran again; here the task meets
// the shutdown in create_task, so create_task delivers it (CancelledError)
// instead of raising a RuntimeError that asyncio could never give such a
// task. A member that already received its cancellation (and caught it), and
// any other caller, get the RuntimeError, as in asyncio. The wait for
// abort_sent is the short stretch in which the aborting thread is still
// sending its cancellations.
[[noreturn]] void refuse(TaskGroupState& st, const char* why, bool member_of_aborting_group) {
  if (member_of_aborting_group) {
    for (;;) {
      {
        detail::SpinLockHolder lock(&st.mu);
        if (st.abort_sent) break;
      }
      std::this_thread::yield();
    }
    current_task_base()->throw_if_request_pending();
  }
  throw RuntimeError(why);
}

}  // namespace

void task_group_check_open(TaskGroupState& st) {
  const char* why;
  bool member;
  {
    detail::SpinLockHolder lock(&st.mu);
    why = refusal_locked(st);
    member = why != nullptr && st.aborting && is_member_locked(st, current_task_base());
  }
  if (why != nullptr) refuse(st, why, member);
}

void task_group_adopt(TaskGroupState& st, TaskBase& child) {
  {
    const char* why;
    bool member;
    {
      detail::SpinLockHolder lock(&st.mu);
      why = refusal_locked(st);
      member = why != nullptr && st.aborting && is_member_locked(st, current_task_base());
      if (why == nullptr) {
        st.children.emplace_back(&child);
        ++st.pending;
      }
    }
    if (why != nullptr) refuse(st, why, member);
  }
  RefPtr<TaskGroupState> self(&st);
  child.add_permanent_inline_callback([self = std::move(self)](FutureStateBase& s) {
    self->on_child_done(static_cast<TaskBase&>(s));
  });
}

// Python 3.13's TaskGroup.__aexit__, step by step.
Coro<void> task_group_run(RefPtr<TaskGroupState> st, Coro<void> body) {
  TaskBase* parent = current_task_base_checked("task_group");
  {
    detail::SpinLockHolder lock(&st->mu);
    st->parent = parent;
    st->entered = true;
  }
  std::exception_ptr body_error;
  try {
    co_await std::move(body);
  } catch (...) {
    body_error = std::current_exception();
  }

  auto abort_children = [&] {
    std::vector<RefPtr<TaskBase>> to_cancel;
    {
      detail::SpinLockHolder lock(&st->mu);
      if (st->aborting) return false;
      to_cancel = st->abort_locked();
    }
    for (auto& c : to_cancel) c->cancel("TaskGroup: the body failed or was cancelled");
    detail::SpinLockHolder lock(&st->mu);
    st->abort_sent = true;
    return true;
  };
  // The CancelledError to raise if no child failed: the one that reached the
  // body or the join from outside, message and all.
  std::exception_ptr propagate_cancel;
  if (body_error) {
    if (is_cancellation(body_error)) propagate_cancel = body_error;
    abort_children();
  }

  // Join. The first cancellation of the join that comes while the group is
  // not aborting yet is the outside one to propagate (later ones are the
  // group's own, a failing child cancelling the parent, or repeats). Once
  // aborting, the join is shielded: the children are being cancelled and
  // must be waited for, and a cancelled scope around the group would
  // otherwise cancel every wait again (scopes are level-triggered).
  // Requests made meanwhile stay pending; see below.
  bool shielded_join = false;
  for (;;) {
    std::optional<Future<void>> signal = join_signal(*st);
    if (!signal) break;
    if (shielded_join) {
      co_await CancelScope(ScopeOptions{.shield = true}).run(wait_signal(*signal));
      continue;
    }
    try {
      co_await *signal;
    } catch (const CancelledError&) {
      if (abort_children()) propagate_cancel = std::current_exception();
      shielded_join = true;
    }
  }

  std::vector<std::exception_ptr> errors;
  bool own_cancel;
  {
    detail::SpinLockHolder lock(&st->mu);
    st->parent = nullptr;
    errors = std::move(st->errors);
    // The body's own failure comes after the children's (Python appends it).
    if (body_error && !is_cancellation(body_error)) errors.push_back(body_error);
    own_cancel = std::exchange(st->parent_cancel_requested, false);
  }
  // The cancellation a failing child asked for is withdrawn; if none is left
  // pending, no CancelledError propagates.
  if (own_cancel && parent->uncancel() == 0) propagate_cancel = nullptr;
  if (errors.empty()) {
    if (propagate_cancel) {
      // Python absorbs repeated cancellations of the join into the one
      // CancelledError it raises (cancelling() still counts them): a
      // request the shielded join deferred is that CancelledError too.
      std::string ignored;
      parent->take_pending_request(&ignored);
      std::rethrow_exception(propagate_cancel);
    }
    co_return;
  }
  // The ExceptionGroup wins; an outside cancellation still counted on the
  // parent is delivered again at its next checkpoint (Python 3.13:
  // uncancel, then cancel), so cancelling() does not change.
  if (parent->cancelling() > 0) {
    std::string msg = parent->last_cancel_message();  // the latest request's
    parent->uncancel();
    parent->cancel(std::move(msg));
  }
  throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
}

}  // namespace weft::detail
