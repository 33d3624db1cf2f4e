// weft::Semaphore and weft::BoundedSemaphore: asyncio's, for tasks on any
// worker.
//
// A semaphore manages a counter of permits: acquire() takes one (waiting
// while there are none), release() gives one back. BoundedSemaphore raises
// std::invalid_argument (asyncio: ValueError) when release() would raise the
// counter above its initial value.
//
// Fairness: strictly FIFO. release() hands its permit directly to the oldest
// waiting task that has not been cancelled, so permits are granted in the
// order acquire() was called and a newcomer never takes a permit while tasks
// wait. (asyncio 3.12 also decrements the counter when it wakes a waiter; it
// differs only in that a task calling acquire() while a woken waiter has not
// run yet also waits: weft's woken waiter already owns its permit, so the
// newcomer may take a permit that is still free.)
//
// Cancellation: acquire() is a cancellation point. A cancelled waiter never
// keeps a permit: if it had been handed one when the cancellation arrived, it
// passes it to the next waiter (or back to the counter) before raising
// CancelledError. No permit is ever lost.
//
// Visibility: for any tasks X and Y, everything X did before a release() is
// visible to Y after the acquire() that got that permit returns.
//
// Thread safety: every method may be called from any thread (release() and
// try_acquire() even outside a runtime); acquire() and scoped() must be
// awaited by a weft task. The semaphore must outlive its waiters.
//
// Design: `value_` and the FIFO list of parked acquirers live under `mu_`.
// Invariant: value_ > 0 implies no waiter is parked (release() hands a permit
// over before it would count it). Waiting uses detail/waiter.h.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/sched/sync/detail/waiter.h"
#include "weft/sched/sync/guard.h"

namespace weft {

class Semaphore;
using SemaphoreGuard = ScopedRelease<Semaphore>;

struct SemaphoreStatistics {
  std::int64_t value = 0;   // permits available now
  std::size_t waiters = 0;  // tasks parked in acquire()
  // The initial value of a BoundedSemaphore; -1 for a plain Semaphore.
  std::int64_t bound = -1;
};

class Semaphore {
  template <bool kScoped>
  struct AcquireOp;

 public:
  using AcquireAwaiter = detail::SyncAwaiter<AcquireOp<false>>;
  using ScopedAwaiter = detail::SyncAwaiter<AcquireOp<true>>;

  // std::invalid_argument if value < 0.
  explicit Semaphore(std::int64_t value = 1) : Semaphore(value, false) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore();

  // Waits for a permit and takes it. A cancellation point.
  [[nodiscard]] AcquireAwaiter acquire() { return AcquireAwaiter(std::in_place, this); }
  // Like acquire(), returning a SemaphoreGuard that gives the permit back
  // when it goes out of scope.
  [[nodiscard]] ScopedAwaiter scoped() { return ScopedAwaiter(std::in_place, this); }
  // Takes a permit if one is free; never waits.
  bool try_acquire();
  // Gives a permit back (to the oldest waiter, if any). For a
  // BoundedSemaphore, std::invalid_argument if that exceeds the initial value.
  void release();
  // True if acquire() would wait (asyncio's locked()).
  bool locked() const;
  std::int64_t value() const;

  SemaphoreStatistics statistics() const;

 protected:
  Semaphore(std::int64_t value, bool bounded);

 private:
  friend class ScopedRelease<Semaphore>;
  template <bool kScoped>
  struct AcquireOp {
    using Node = detail::SyncWaiter;
    using Result = std::conditional_t<kScoped, SemaphoreGuard, void>;
    static constexpr const char* kWhat =
        kScoped ? "Semaphore::scoped()" : "Semaphore::acquire()";
    explicit AcquireOp(Semaphore* s) noexcept : sem(s) {}

    bool try_now(Node&) { return sem->try_acquire(); }
    bool try_now_or_park(Node& node, detail::TaskBase* task) {
      return sem->acquire_or_park(node, task, kWhat);
    }
    void undo(Node&) noexcept { sem->release_from_guard(); }
    void abandon(Node& node) noexcept { sem->abandon(node); }
    Result take(Node&, bool) noexcept {
      if constexpr (kScoped) return SemaphoreGuard(sem);
    }

    Semaphore* sem;
  };

  bool acquire_or_park(detail::SyncWaiter& node, detail::TaskBase* task, const char* what);
  void abandon(detail::SyncWaiter& node) noexcept;
  // Gives back a permit that was acquired (guards, cleanup): never throws.
  void release_from_guard() noexcept;
  void release_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::int64_t bound_;  // -1: unbounded
  mutable detail::SpinLock mu_;
  std::int64_t value_ ABSL_GUARDED_BY(mu_);
  detail::WaiterList waiters_ ABSL_GUARDED_BY(mu_);
};

// A semaphore whose release() raises std::invalid_argument when it would
// raise the counter above its initial value (asyncio.BoundedSemaphore).
class BoundedSemaphore : public Semaphore {
 public:
  // std::invalid_argument if value < 0.
  explicit BoundedSemaphore(std::int64_t value = 1) : Semaphore(value, true) {}
};

}  // namespace weft
