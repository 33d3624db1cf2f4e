// A loop's pending timers: a 4-ary min-heap ordered by (deadline, sequence).
//
// Why a heap and not a wheel: inserts and cancels of the short-lived timers
// that dominate (timeouts that never fire) cost O(log n) with n the number of
// pending timers, which stays small for them, with no per-tick work while
// idle and exact deadlines for the manual clock. A 4-ary layout keeps the
// sift paths short and cache friendly.
//
// Threads: the heap is touched only by its loop's thread. A TimerEntry may be
// cancelled from any thread: `state_` moves armed -> cancelled or
// armed -> fired by CAS, and the winner decides whether the callback runs. A
// cancel on the loop's thread also removes the entry from the heap at once;
// a cancel from another thread leaves it to be discarded when it reaches the
// top (or when the heap is cleared).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/sched/clock.h"

namespace weft::detail {

class TimerHeap;

class TimerEntry final : public RefCounted {
 public:
  TimerEntry(TimePoint deadline, Callback cb, const TimerHeap* owner)
      : deadline_(deadline), cb_(std::move(cb)), owner_(owner) {}

  TimePoint deadline() const noexcept { return deadline_; }
  // armed -> cancelled; true if the callback will now never run.
  bool try_cancel() noexcept {
    std::uint8_t e = kArmed;
    return state_.compare_exchange_strong(e, kCancelled, std::memory_order_acq_rel);
  }
  bool cancelled() const noexcept { return state_.load(std::memory_order_acquire) == kCancelled; }
  bool armed() const noexcept { return state_.load(std::memory_order_acquire) == kArmed; }
  const TimerHeap* owner() const noexcept { return owner_; }

 private:
  friend class TimerHeap;
  enum : std::uint8_t { kArmed, kFired, kCancelled };
  bool try_fire() noexcept {
    std::uint8_t e = kArmed;
    return state_.compare_exchange_strong(e, kFired, std::memory_order_acq_rel);
  }

  const TimePoint deadline_;
  std::uint64_t seq_ = 0;          // insertion order, for FIFO among equal deadlines
  std::size_t index_ = SIZE_MAX;   // position in the heap; SIZE_MAX when not in it
  Callback cb_;                    // moved out by the loop thread when fired
  std::atomic<std::uint8_t> state_{kArmed};
  const TimerHeap* const owner_;
};

class TimerHeap {
 public:
  TimerHeap() = default;
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;
  ~TimerHeap() { clear(); }

  // Adds a timer; the returned entry is shared with the heap.
  RefPtr<TimerEntry> add(TimePoint deadline, Callback cb);
  // Removes a (cancelled) entry now. Loop thread only.
  void remove(TimerEntry* e) noexcept;
  // Deadline of the earliest armed timer; TimePoint::max() if none.
  TimePoint next_deadline() noexcept;
  // Pops the earliest timer due at `now` (deadline order, FIFO among equal
  // deadlines) and returns its callback; false if none is due. One at a
  // time, so a callback can still cancel a timer due at the same instant.
  bool pop_one_due(TimePoint now, Callback* out);
  std::size_t size() const noexcept { return heap_.size(); }
  // Drops every entry without running it.
  void clear() noexcept;

 private:
  static bool less(const TimerEntry* a, const TimerEntry* b) noexcept {
    return a->deadline_ < b->deadline_ || (a->deadline_ == b->deadline_ && a->seq_ < b->seq_);
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void place(std::size_t i, TimerEntry* e) noexcept {
    heap_[i] = e;
    e->index_ = i;
  }
  void pop_top() noexcept;

  std::vector<TimerEntry*> heap_;  // each holds one reference
  std::uint64_t next_seq_ = 0;
};

}  // namespace weft::detail
