// weft::Condition: asyncio.Condition (a condition variable for tasks) for
// tasks on any worker.
//
//   auto guard = co_await cond.scoped();              // holds cond's lock
//   co_await cond.wait_for([&] { return !items.empty(); });
//   ...                                               // consume under the lock
//   // elsewhere, holding the lock: produce; cond.notify();
//
// A condition wraps a Lock: its own (Condition()) or a shared one
// (Condition(lock)); acquire/scoped/release/locked act on that lock.
//
// wait(): releases the lock, waits until notified, re-acquires the lock and
// returns. wait_for(pred): waits until pred() is truthy and returns its
// value (pred is evaluated with the lock held). notify(n) wakes up to n
// waiting tasks, oldest first; notify_all() wakes them all. Tasks woken
// together take the lock back in the order they run (which the scheduler
// does not promise across workers), each in turn. wait(),
// wait_for() (when it has to wait), notify() and notify_all() raise
// weft::RuntimeError unless the lock is held (as asyncio, weft checks only
// that the lock is locked, not by whom).
//
// Cancellation: wait() is a cancellation point. Like asyncio's, a cancelled
// wait() still re-acquires the lock before raising CancelledError, so the
// caller's guard stays valid; the re-acquire is shielded from cancellation
// (as in Trio: otherwise a cancelled cancel scope would make it fail again and
// again), and a cancellation that arrives while it waits for the lock is
// raised once the lock is held again. A waiter that was notified and then
// cancelled passes its notification on to the next waiter (Python 3.13), so
// a notify() is never lost to a cancellation; spurious wake-ups are allowed,
// as with any condition variable: always wait in a loop (wait_for).
//
// Visibility: the state guarded by the lock is published by the lock itself
// (see lock.h); a task returning from wait() holds the lock and sees
// everything done under it before.
//
// Thread safety: every method may be called from any thread (notify() needs
// the lock held, by any task); wait() and wait_for() must be awaited by a
// weft task. The condition (and a shared lock) must outlive its waiters.
//
// Design: the FIFO list of notification waiters lives under `mu_`, apart
// from the async lock. wait() parks its node *before* it releases the lock,
// so a notify() made by whoever takes the lock next always finds it.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>
#include <memory>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/coro.h"
#include "weft/sched/sync/detail/waiter.h"
#include "weft/sched/sync/lock.h"

namespace weft {

struct ConditionStatistics {
  std::size_t waiters = 0;  // tasks parked in wait()
  bool locked = false;      // the lock's state
  std::size_t lock_waiters = 0;
};

class Condition {
 public:
  // A condition with its own lock.
  Condition();
  // A condition on `lock`, which must outlive it.
  explicit Condition(Lock& lock);
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  ~Condition();

  Lock& lock() const noexcept { return *lock_; }
  [[nodiscard]] Lock::AcquireAwaiter acquire() { return lock_->acquire(); }
  [[nodiscard]] Lock::ScopedAwaiter scoped() { return lock_->scoped(); }
  bool try_acquire() { return lock_->try_acquire(); }
  void release() { lock_->release(); }
  bool locked() const { return lock_->locked(); }

  // Releases the lock, waits for a notification, re-acquires the lock. See
  // the file comment. A cancellation point.
  [[nodiscard]] Coro<void> wait();

  // Waits until pred() is truthy (its result must be testable as a bool, like
  // a bool, a pointer or an optional); returns pred()'s last value. pred runs with
  // the lock held (first before any wait, so a true predicate needs no
  // notification and does not check the lock). A cancellation point.
  template <typename Pred>
  [[nodiscard]] Coro<std::decay_t<std::invoke_result_t<Pred&>>> wait_for(Pred pred) {
    auto result = pred();
    while (!result) {
      co_await wait();
      result = pred();
    }
    co_return result;
  }

  // Wakes up to n waiters. RuntimeError unless the lock is held.
  void notify(std::size_t n = 1);
  void notify_all();

  ConditionStatistics statistics() const;

 private:
  class ParkedNode;  // one wait()'s parking node (condition.cc)

  void check_locked(const char* what) const;
  // Takes the lock back after a wait, without letting a cancellation
  // interrupt it.
  Coro<void> reacquire();

  std::unique_ptr<Lock> own_lock_;
  Lock* lock_;
  mutable detail::SpinLock mu_;
  detail::WaiterList waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft
