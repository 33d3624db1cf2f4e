// weft::Event: asyncio.Event for tasks on any worker.
//
// An event holds a flag, initially false. set() makes it true and wakes
// every task waiting in wait(); clear() makes it false again; wait() returns
// at once while the flag is true. As in asyncio, a task woken by set() is
// released even if clear() runs before it resumes.
//
// Visibility: for any tasks or threads X and Y, everything X did before a
// set() is visible to Y after a wait() of Y that the set() released (or that
// saw the flag true), and to Y after an is_set() of Y that returned true.
//
// Thread safety: every method may be called from any thread, including
// threads outside any runtime (e.g. set() from a std::thread wakes the tasks
// through their runtime). wait() must be awaited by a weft task. Waiting
// tasks may belong to several runtimes. The event must outlive its waiters.
//
// Cancellation: wait() is a cancellation point; a cancelled waiter leaves
// the event with no other effect.
//
// Design: the flag is an atomic (so that wait() on a set event and is_set()
// take no lock) mirrored under `mu_`, which also guards the FIFO list of
// parked waiters (see detail/waiter.h). set() wakes the waiters under the
// mutex, oldest first.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <atomic>
#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/sched/sync/detail/waiter.h"

namespace weft {

struct EventStatistics {
  bool is_set = false;
  std::size_t waiters = 0;  // tasks parked in wait()
};

class Event {
  struct WaitOp;

 public:
  using WaitAwaiter = detail::SyncAwaiter<WaitOp>;

  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();

  bool is_set() const noexcept {
    // Acquire: pairs with the release store in set().
    return flag_.load(std::memory_order_acquire);
  }
  // Sets the flag and wakes every waiting task.
  void set();
  // Clears the flag; tasks already released by set() are not affected.
  void clear();
  // Waits until the flag is set (at once if it is). A cancellation point.
  [[nodiscard]] WaitAwaiter wait() { return WaitAwaiter(std::in_place, this); }

  EventStatistics statistics() const;

 private:
  struct WaitOp {
    using Node = detail::SyncWaiter;
    using Result = void;
    static constexpr const char* kWhat = "Event::wait()";
    explicit WaitOp(Event* e) noexcept : event(e) {}

    bool try_now(Node&) noexcept { return event->is_set(); }
    bool try_now_or_park(Node& node, detail::TaskBase* task);
    void undo(Node&) noexcept {}
    void abandon(Node& node) noexcept;
    void take(Node&, bool) noexcept {}

    Event* event;
  };

  mutable detail::SpinLock mu_;
  // Written under mu_ only; read anywhere.
  std::atomic<bool> flag_{false};
  detail::WaiterList waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft
