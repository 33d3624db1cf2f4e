// weft::Barrier: asyncio.Barrier (Python 3.11) for tasks on any worker.
//
// A barrier of `parties` releases its waiters once `parties` tasks are
// waiting in wait(), then lets the next cycle start. wait() returns the
// caller's arrival index in the cycle: 0 for the first, parties - 1 for the
// last (the one that released the others).
//
// States, as asyncio's: kFilling (tasks arrive and wait), kDraining (the
// barrier was released; the tasks of that cycle are leaving; newcomers wait
// until the last one left, then the barrier fills again), kResetting (reset()
// was called while tasks were inside: they raise BrokenBarrierError;
// newcomers wait until they left, then kFilling), kBroken (abort(): every
// waiting task and every later wait() raises BrokenBarrierError, until
// reset()).
//
// Cancellation: wait() is a cancellation point. A task cancelled while it
// waits for the barrier to fill leaves it (n_waiting() drops by one: the
// cycle then needs one more arrival), as in asyncio; a task cancelled after
// the barrier released it raises CancelledError but does not hold up the
// others.
//
// Visibility: for any tasks X and Y of one cycle, everything X did before its
// wait() is visible to Y after Y's wait() returns.
//
// Thread safety: every method may be called from any thread; wait() must be
// awaited by a weft task. Unlike asyncio's, reset() and abort() never wait,
// so they are plain functions. The barrier must outlive its waiters.
//
// Design: the state, the count of tasks inside the barrier and the list of
// parked tasks live under `mu_`. Every state change wakes every parked task,
// which re-checks what it waits for (asyncio's notify_all on its Condition),
// so no wake-up is ever consumed and cancellation cannot lose one.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/coro.h"
#include "weft/sched/sync/detail/waiter.h"
#include "weft/sched/sync/errors.h"

namespace weft {

enum class BarrierState { kFilling, kDraining, kResetting, kBroken };

struct BarrierStatistics {
  std::size_t parties = 0;
  std::size_t n_waiting = 0;  // tasks waiting for the barrier to fill
  BarrierState state = BarrierState::kFilling;
  std::size_t parked = 0;  // tasks parked (filling, or blocked by a drain/reset)
};

class Barrier {
 public:
  // std::invalid_argument if parties < 1.
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;
  ~Barrier();

  // Waits until `parties` tasks wait; returns the arrival index. Raises
  // BrokenBarrierError if the barrier is or becomes broken or is reset while
  // waiting. A cancellation point.
  [[nodiscard]] Coro<std::size_t> wait();
  // Puts the barrier back into kFilling; tasks waiting in it raise
  // BrokenBarrierError (see the file comment).
  void reset();
  // Breaks the barrier: waiting and future wait() calls raise
  // BrokenBarrierError until reset().
  void abort();

  std::size_t parties() const noexcept { return parties_; }
  // Tasks waiting for the barrier to fill (0 unless kFilling).
  std::size_t n_waiting() const;
  bool broken() const;
  BarrierState state() const;

  BarrierStatistics statistics() const;

 private:
  class Visit;
  // A task leaves the barrier (asyncio's _exit).
  void leave_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::size_t parties_;
  mutable detail::SpinLock mu_;
  BarrierState state_ ABSL_GUARDED_BY(mu_) = BarrierState::kFilling;
  std::size_t count_ ABSL_GUARDED_BY(mu_) = 0;  // tasks inside (arrived, not left)
  detail::WaiterList waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft
