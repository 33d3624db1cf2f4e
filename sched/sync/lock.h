// weft::Lock: asyncio.Lock (a non-reentrant mutual-exclusion lock for tasks)
// for tasks on any worker.
//
//   co_await lock.acquire();           // or: auto guard = co_await lock.scoped();
//   ...                                // critical section
//   lock.release();
//
// Fairness: strictly FIFO. release() hands the lock directly to the oldest
// waiting task that has not been cancelled; the lock stays locked across the
// hand-off, so a task that calls acquire() meanwhile (on any worker) queues
// behind the waiters instead of barging in. (asyncio marks the lock unlocked
// until the woken task runs; weft reports it locked: it is owned by then.)
//
// Errors: release() of an unlocked lock raises weft::RuntimeError. Like
// asyncio's, the lock has no owner: any task may release it.
//
// Cancellation: acquire() is a cancellation point. A cancelled waiter never
// takes the lock; if it had already been handed the lock when the
// cancellation arrived, it passes the lock on to the next waiter (or unlocks
// it) before raising CancelledError. So no cancellation ever leaves the lock
// held by nobody, and no hand-off is lost.
//
// Visibility: for any tasks X and Y, everything X did before release() is
// visible to Y after the acquire() that took the lock next returns.
//
// Thread safety: every method may be called from any thread (release() and
// try_acquire() even outside a runtime); acquire() and scoped() must be
// awaited by a weft task. The lock must outlive its waiters.
//
// Design: `locked_` and the FIFO list of parked acquirers live under `mu_`.
// Invariant: !locked_ implies no waiter is parked (release() hands the lock
// over before it would unlock it). Waiting uses detail/waiter.h.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/sched/sync/detail/waiter.h"
#include "weft/sched/sync/guard.h"

namespace weft {

class Lock;
using LockGuard = ScopedRelease<Lock>;

struct LockStatistics {
  bool locked = false;
  std::size_t waiters = 0;  // tasks parked in acquire()
};

class Lock {
  template <bool kScoped>
  struct AcquireOp;

 public:
  using AcquireAwaiter = detail::SyncAwaiter<AcquireOp<false>>;
  using ScopedAwaiter = detail::SyncAwaiter<AcquireOp<true>>;

  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock();

  // Waits until the lock is free and takes it. A cancellation point.
  [[nodiscard]] AcquireAwaiter acquire() { return AcquireAwaiter(std::in_place, this); }
  // Like acquire(), returning a LockGuard that releases the lock when it goes
  // out of scope: `auto guard = co_await lock.scoped();`.
  [[nodiscard]] ScopedAwaiter scoped() { return ScopedAwaiter(std::in_place, this); }
  // Takes the lock if it is free (and nobody waits); never waits.
  bool try_acquire();
  // Hands the lock to the oldest waiter, or unlocks it. RuntimeError if the
  // lock is not locked.
  void release();
  bool locked() const;

  LockStatistics statistics() const;

 private:
  friend class ScopedRelease<Lock>;
  template <bool kScoped>
  struct AcquireOp {
    using Node = detail::SyncWaiter;
    using Result = std::conditional_t<kScoped, LockGuard, void>;
    static constexpr const char* kWhat = kScoped ? "Lock::scoped()" : "Lock::acquire()";
    explicit AcquireOp(Lock* l) noexcept : lock(l) {}

    bool try_now(Node&) { return lock->try_acquire(); }
    bool try_now_or_park(Node& node, detail::TaskBase* task) {
      return lock->acquire_or_park(node, task, kWhat);
    }
    void undo(Node&) noexcept { lock->release_from_guard(); }
    void abandon(Node& node) noexcept { lock->abandon(node); }
    Result take(Node&, bool) noexcept {
      if constexpr (kScoped) return LockGuard(lock);
    }

    Lock* lock;
  };

  bool acquire_or_park(detail::SyncWaiter& node, detail::TaskBase* task, const char* what);
  void abandon(detail::SyncWaiter& node) noexcept;
  // Releases without throwing (guards, cleanup); reports a misuse instead.
  void release_from_guard() noexcept;
  void release_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable detail::SpinLock mu_;
  bool locked_ ABSL_GUARDED_BY(mu_) = false;
  detail::WaiterList waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft
