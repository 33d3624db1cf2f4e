// WaitNode: a one-shot wait that needs no allocation of its own. It lives in
// the awaiting coroutine's frame (the awaiter is the node, as in cppcoro's
// async_mutex), and a task suspends on it instead of on a future: what a
// synchronization primitive's parked waiter is (sched/sync/detail/waiter.h).
//
// State (one atomic byte; every transition is a CAS, so exactly one party
// ends a wait):
//   kIdle      the owner made it and may be about to suspend on it
//   kArmed     the owner task is suspended on it (TaskBase::suspend_on_node)
//   kWoken     ended with success by a waker (wake())
//   kCancelled ended by a cancellation (Task::cancel, a cancel scope)
// Whoever moves it out of kArmed reschedules the task. A wait ended while
// kIdle is seen by the owner when it tries to arm, and it does not suspend
// (like adding a waiter to a future that is already done).
//
// Lifetime: the node dies with the owner's frame, which may run on another
// thread as soon as the wait ends. A waker reaches the node through its
// primitive's list, under that primitive's lock, which the owner needs too
// before it can leave. A canceller reaches it through the task
// (TaskBase::node_wait_), under the task's lock: the owner unpublishes it
// under that lock (TaskBase::end_node_wait) before the node dies, so a
// canceller holding the lock always sees a live node.
//
// Memory order: the winning CAS is acq_rel. A waker's writes before wake()
// (what it hands over) are released by it; the owner acquires them when its
// arm CAS fails or, once armed, through the scheduler's queue hand-off that
// resumes it. The cancellation message is written by the canceller under the
// task's lock after winning, and read by the owner under that lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace weft::detail {

class TaskBase;

class WaitNode {
 public:
  WaitNode() = default;
  WaitNode(const WaitNode&) = delete;
  WaitNode& operator=(const WaitNode&) = delete;

  // By the owner while no other party can reach the node: starts a new
  // wait of `task`, described as `what` in task dumps ("Event.wait").
  void reset(TaskBase* task, const char* what) noexcept {
    task_ = task;
    what_ = what;
    state_.store(kIdle, std::memory_order_relaxed);
  }

  // Any thread: ends the wait with success. False if it was already ended
  // (cancelled). If true, *this may be destroyed past this call.
  bool wake() noexcept;

  // True once a waker ended the wait (it handed over what it gives).
  bool woken() const noexcept { return state_.load(std::memory_order_acquire) == kWoken; }
  bool ended() const noexcept { return state_.load(std::memory_order_acquire) >= kWoken; }
  TaskBase* task() const noexcept { return task_; }
  const char* what() const noexcept { return what_; }

 private:
  friend class TaskBase;
  enum : std::uint8_t { kIdle, kArmed, kWoken, kCancelled };

  // The owner, as the last step of suspending: kIdle -> kArmed. False if
  // the wait ended already (the task must not suspend).
  bool arm() noexcept {
    std::uint8_t expected = kIdle;
    return state_.compare_exchange_strong(expected, kArmed, std::memory_order_acq_rel,
                                          std::memory_order_acquire);
  }
  // Under the task's lock: ends the wait as cancelled with `msg`. Returns the
  // state it ended from (kIdle or kArmed), or kWoken / kCancelled if it had
  // ended already and this call did nothing.
  std::uint8_t cancel_locked(const std::string& msg);

  TaskBase* task_ = nullptr;
  const char* what_ = "";
  std::atomic<std::uint8_t> state_{kIdle};
  // Only for a cancellation that carries one (guarded by the task's lock).
  std::unique_ptr<std::string> cancel_msg_;
};

}  // namespace weft::detail
