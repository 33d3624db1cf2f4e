// SpinLock: the lock behind weft's short, non-blocking critical sections
// (a task's cancel state, the task registry, the global queue, wait sets,
// the sync primitives' waiter lists, fd watches).
//
// Why not absl::Mutex. Debian's libabsl is built without NDEBUG, so every
// absl::Mutex::Lock() runs Abseil's deadlock detector: it takes one
// process-wide spinlock and updates a global lock graph, and every Mutex
// destructor removes the mutex from that graph. weft creates one such lock
// per task, so the detector took over 75% of the cycles of the spawn-join
// workload (docs/performance.md). Turning the detector off is a process-wide
// switch that belongs to the application, not to a library. These sections
// are a few dozen instructions, their holders never wait for anything inside
// them, and contention is rare (it needs two threads on one object at once,
// e.g. a cancel() racing the task's own suspension), so one atomic flag is
// the right tool. absl::Mutex stays where a thread blocks: ConcurrentFuture's
// result(), parking, the clock.
//
// Protocol: `locked_` is the only state. lock() exchanges it to true with
// acquire (pairs with the release store in unlock(), so everything written
// inside the previous holder's section is visible inside ours). Waiters spin
// on a relaxed load (no cache-line ping-pong while the holder works), with a
// pause per probe; after kSpinsBeforeYield probes they yield the CPU, because
// on a 2-core machine the holder may be preempted and spinning would only
// delay it. Not fair and not recursive.
#pragma once

#include <atomic>

#include "absl/base/thread_annotations.h"

namespace weft::detail {

class ABSL_LOCKABLE SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() ABSL_UNLOCK_FUNCTION() { locked_.store(false, std::memory_order_release); }

 private:
  void lock_slow();

  std::atomic<bool> locked_{false};
};

// Holds a SpinLock for its scope (absl::MutexLock's shape).
class ABSL_SCOPED_LOCKABLE SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock* lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) {
    lock_->lock();
  }
  ~SpinLockHolder() ABSL_UNLOCK_FUNCTION() { lock_->unlock(); }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock* const lock_;
};

}  // namespace weft::detail
