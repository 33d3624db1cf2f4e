// The shared state of a TaskGroup (see task_group.h).
#pragma once

#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/future.h"

namespace weft::detail {

// Shared by the TaskGroup handle, the join, and the children's callbacks
// (which run on whatever thread finishes a child).
class TaskGroupState final : public RefCounted {
 public:
  detail::SpinLock mu;
  TaskBase* parent ABSL_GUARDED_BY(mu) = nullptr;  // set when the body starts
  bool entered ABSL_GUARDED_BY(mu) = false;
  std::vector<RefPtr<TaskBase>> children ABSL_GUARDED_BY(mu);
  std::size_t pending ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::exception_ptr> errors ABSL_GUARDED_BY(mu);
  bool aborting ABSL_GUARDED_BY(mu) = false;
  // Set, in the same section that sees the last child gone, when the join
  // ends: no child can be added after that.
  bool closed ABSL_GUARDED_BY(mu) = false;
  // A child's failure asked for the parent's cancellation, not yet withdrawn.
  bool parent_cancel_requested ABSL_GUARDED_BY(mu) = false;
  // Set once the abort has sent its cancellations (to the children, and to
  // the parent for a child's failure): from then on a member of the group
  // that has not received its cancellation has it pending (see
  // task_group.cc, refuse).
  bool abort_sent ABSL_GUARDED_BY(mu) = false;
  std::optional<Future<void>> joined ABSL_GUARDED_BY(mu);

  // Marks the group aborting and returns the children to cancel.
  std::vector<RefPtr<TaskBase>> abort_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    aborting = true;
    std::vector<RefPtr<TaskBase>> out;
    for (auto& c : children) {
      if (!c->done()) out.push_back(c);
    }
    return out;
  }

  // The child counts as pending until the parent has been cancelled: the
  // join cannot end (and the parent cannot finish, withdraw the request or
  // be freed) while that cancel() is still in flight on this thread. With
  // the decrement first, a join that saw pending == 0 could uncancel before
  // the request landed, leaking a CancelledError into the parent's next
  // await (and cancel() could touch a finished parent).
  void on_child_done(TaskBase& child) {
    std::vector<RefPtr<TaskBase>> to_cancel;
    TaskBase* parent_to_cancel = nullptr;
    bool aborted_here = false;
    {
      detail::SpinLockHolder lock(&mu);
      if (child.outcome() == FutureStateBase::Outcome::kException) {
        errors.push_back(child.exception());  // retrieved: not reported as lost
        if (!aborting) {
          aborted_here = true;
          to_cancel = abort_locked();
          if (parent != nullptr && !parent_cancel_requested) {
            parent_cancel_requested = true;
            parent_to_cancel = parent;
          }
        }
      }
    }
    for (auto& c : to_cancel) c->cancel("TaskGroup: a sibling task failed");
    // The parent is alive: its join waits for this child, still pending.
    if (parent_to_cancel != nullptr) parent_to_cancel->cancel("TaskGroup: a child task failed");
    std::optional<Future<void>> signal;
    {
      detail::SpinLockHolder lock(&mu);
      if (aborted_here) abort_sent = true;
      --pending;
      // A join in progress must see the end of the last child, or the abort.
      if (pending == 0 || parent_to_cancel != nullptr) signal = joined;
    }
    if (signal) signal->try_set_result();
  }
};

}  // namespace weft::detail
