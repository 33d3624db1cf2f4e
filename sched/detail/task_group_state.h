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
  std::vector<RefPtr<TaskBase>> children ABSL_GUARDED_BY(mu);
  std::size_t pending ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::exception_ptr> errors ABSL_GUARDED_BY(mu);
  bool aborting ABSL_GUARDED_BY(mu) = false;
  bool closed ABSL_GUARDED_BY(mu) = false;
  // A child's failure asked for the parent's cancellation, not yet withdrawn.
  bool parent_cancel_requested ABSL_GUARDED_BY(mu) = false;
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

  void on_child_done(TaskBase& child) {
    std::vector<RefPtr<TaskBase>> to_cancel;
    TaskBase* parent_to_cancel = nullptr;
    std::optional<Future<void>> signal;
    {
      detail::SpinLockHolder lock(&mu);
      --pending;
      if (child.outcome() == FutureStateBase::Outcome::kException) {
        errors.push_back(child.exception());  // retrieved: not reported as lost
        if (!aborting) {
          to_cancel = abort_locked();
          if (parent != nullptr && !parent_cancel_requested) {
            parent_cancel_requested = true;
            parent_to_cancel = parent;
          }
          signal = joined;  // a join in progress must see the abort
        }
      }
      if (pending == 0) signal = joined;
    }
    for (auto& c : to_cancel) c->cancel("TaskGroup: a sibling task failed");
    // The parent is alive: it cannot finish before the join saw every child.
    if (parent_to_cancel != nullptr) parent_to_cancel->cancel("TaskGroup: a child task failed");
    if (signal) signal->try_set_result();
  }
};

}  // namespace weft::detail
