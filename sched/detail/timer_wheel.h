// A loop's pending timers: a hierarchical timing wheel (Tokio's
// time/wheel: levels of 64 slots) in front of a small min-heap of the timers
// that are due or next.
//
// Why. Servers arm a timeout around nearly every read and cancel it before
// it fires. In the wheel, arming is an append to a slot's list and
// cancelling an unlink: O(1), no sifting, no comparison with other timers.
// Only the timers whose time has come (or that are next when the loop
// parks) pass through the heap, which orders them exactly.
//
// Resolution. A tick is 2^10 ns (1.024 us); level L has 64 slots of 64^L
// ticks, and 9 levels cover every deadline a TimePoint can hold. The wheel
// only sorts timers into slots: a timer fires when the clock has reached its
// exact deadline (never early), in (deadline, insertion) order, so sleeps
// and the ManualClock's jumps keep nanosecond precision. How late a timer
// fires is decided by the loop's wake-up (epoll_wait's millisecond timeout,
// rounded up), not by the wheel.
//
// Invariants (loop thread only):
//  - `elapsed_` is the last tick the wheel has processed. Every entry in the
//    heap has tick(deadline) <= elapsed_; every entry in the wheel has
//    tick > elapsed_, so every wheel entry is later than every heap entry.
//  - An entry at level L agrees with elapsed_ on all tick bits above
//    6(L+1) and differs in bits [6L, 6L+6) (level_for): lower levels hold
//    earlier entries, and within a level the slots after elapsed_'s
//    position are in time order (no wrap).
//  - `occupied_[L]` has bit s set iff slot s of level L is not empty.
//  - elapsed_ advances only to the start of the earliest occupied slot
//    (pull_next), so it never passes an entry still in the wheel.
//
// Threads: the wheel and heap are touched only by the loop's thread. A
// TimerEntry may be cancelled from any thread. The firing (loop thread) and
// a cancel from another thread move `state_` armed -> fired / armed ->
// cancelled by CAS, and the winner decides whether the callback runs; a
// cancel on the loop's thread needs only a load and a store (nothing fires
// meanwhile) and also takes the entry out at once (O(1) in the wheel,
// O(log n) in the heap). A cancel from another thread leaves the entry to be
// dropped when it is reached, so that thread takes no lock of the loop's.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "weft/core/detail/frame_alloc.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/sched/clock.h"

namespace weft::detail {

class TimerWheel;

// 64 bytes, one block of the frame pool's 64-byte class: an entry in the
// wheel needs its list links, one in the heap its index and sequence number,
// never both (a union); the reference count is its own, not RefCounted's, so
// there is no vtable pointer. An armed timer holds 65 bytes of resident
// memory (the pool's backing allocator keeps no header per block; 80 with
// glibc's malloc) against 120 in the 4-ary heap this replaced (an 88-byte
// entry and its slot in the heap's vector) and 144 with a 128-byte-class
// entry: micro_bench's BM_TimersArmedMemory (1,000,000 timers), the three
// builds run in one session.
class TimerEntry final {
 public:
  // Made and freed as often as the futures they complete: from the pool.
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { deallocate_frame(p, size); }

  TimerEntry(TimePoint deadline, Callback cb)
      : deadline_ns_(deadline.time_since_epoch().count()), cb_(std::move(cb)) {}
  TimerEntry(const TimerEntry&) = delete;
  TimerEntry& operator=(const TimerEntry&) = delete;

  // For RefPtr, from any thread (RefCount's orders).
  void add_ref() const noexcept { refs_.add(); }
  void release(std::uint32_t n = 1) const noexcept {
    if (refs_.drop(n)) delete this;
  }
  std::uint32_t ref_count_for_testing() const noexcept { return refs_.value_for_testing(); }

  TimePoint deadline() const noexcept { return TimePoint(Duration(deadline_ns_)); }
  // armed -> cancelled; true if the callback will now never run.
  bool try_cancel() noexcept {
    std::uint8_t e = kArmed;
    return state_.compare_exchange_strong(e, kCancelled, std::memory_order_acq_rel);
  }
  bool cancelled() const noexcept { return state_.load(std::memory_order_acquire) == kCancelled; }
  bool armed() const noexcept { return state_.load(std::memory_order_acquire) == kArmed; }

 private:
  friend class TimerWheel;
  enum : std::uint8_t { kArmed, kFired, kCancelled };
  enum : std::uint8_t { kNowhere, kInWheel, kInHeap };
  // armed -> cancelled on the loop thread, where nothing fires the entry
  // meanwhile: a load and a store. A try_cancel from another thread may
  // come between them; both then report the cancel, which both are.
  bool cancel_on_loop() noexcept {
    if (state_.load(std::memory_order_acquire) != kArmed) return false;
    state_.store(kCancelled, std::memory_order_release);
    return true;
  }
  bool try_fire() noexcept {
    std::uint8_t e = kArmed;
    return state_.compare_exchange_strong(e, kFired, std::memory_order_acq_rel);
  }

  // Born with two references, the wheel's and the caller's (TimerWheel::add):
  // no increment to hand the second one out.
  RefCount refs_{2};
  // Loop thread only, but state_.
  std::atomic<std::uint8_t> state_{kArmed};
  std::uint8_t where_ = kNowhere;  // picks the member of `at_`
  std::uint8_t level_ = 0;         // in the wheel: level and slot
  std::uint8_t slot_ = 0;
  const std::int64_t deadline_ns_;
  union {
    struct {
      TimerEntry* prev;
      TimerEntry* next;
    } wheel;  // where_ == kInWheel: the slot's list
    struct {
      std::uint32_t index;
      // Order of entry into the heap (wrap-aware): FIFO among equal
      // deadlines, because equal deadlines share a slot at every level and
      // leave it in list order (timer_wheel.cc, insert).
      std::uint32_t seq;
    } heap;  // where_ == kInHeap
  } at_{};
  Callback cb_;  // moved out by the loop thread when fired
};
static_assert(sizeof(TimerEntry) == 64, "one 64-byte block of the frame pool");

class TimerWheel {
 public:
  static constexpr int kTickShift = 10;  // 1 tick = 1024 ns
  static constexpr int kSlotBits = 6;
  static constexpr int kSlots = 1 << kSlotBits;
  static constexpr int kLevels = 9;  // 10 + 9 * 6 >= 63 bits

  TimerWheel() = default;
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  ~TimerWheel() { clear(); }

  // Adds a timer due at `deadline`; `now` is the loop's clock reading (an
  // empty wheel catches up with it, so a burst of timers after a quiet spell
  // lands on the levels of its own distances, not on the top one). The
  // returned entry is shared with the wheel.
  RefPtr<TimerEntry> add(TimePoint deadline, TimePoint now, Callback cb);
  // Cancels `e` if it is armed and takes it out at once (also one another
  // thread cancelled), dropping the wheel's reference and, with
  // `drop_caller`, the caller's in the same decrement. True if the callback
  // will now never run because of this call. Loop thread only: nothing
  // fires `e` meanwhile, so no CAS is needed (TimerEntry::cancel_on_loop).
  bool cancel(TimerEntry* e, bool drop_caller) noexcept;
  // Deadline of the earliest armed timer; TimePoint::max() if none.
  TimePoint next_deadline() noexcept;
  // Pops the earliest timer due at `now` (deadline order, FIFO among equal
  // deadlines) and returns its callback; false if none is due. One at a
  // time, so a callback can still cancel a timer due at the same instant.
  bool pop_one_due(TimePoint now, Callback* out);
  // Entries held, cancelled ones not dropped yet included.
  std::size_t size() const noexcept { return size_; }
  // Drops every entry without running it.
  void clear() noexcept;

  // For tests: the level an entry sits at (-1 if it is in the heap or gone).
  static int level_of_for_testing(const TimerEntry& e) noexcept {
    return e.where_ == TimerEntry::kInWheel ? e.level_ : -1;
  }

 private:
  static std::uint64_t tick_of(std::int64_t ns) noexcept {
    return ns <= 0 ? 0 : static_cast<std::uint64_t>(ns) >> kTickShift;
  }
  static int level_for(std::uint64_t elapsed, std::uint64_t tick) noexcept;
  void insert(TimerEntry* e) noexcept;  // into the wheel or the heap, by elapsed_
  void link(TimerEntry* e, int level, int slot) noexcept;
  void unlink(TimerEntry* e) noexcept;
  // The earliest occupied slot and the tick it starts at; false if empty.
  bool next_slot(int* level, int* slot, std::uint64_t* start) const noexcept;
  // Advances to the earliest occupied slot and moves its entries down a
  // level (or into the heap); false if the wheel is empty.
  bool pull_next() noexcept;
  // Drops the cancelled entries at the top of the heap.
  void drop_cancelled_top() noexcept;

  // The heap of due and next timers, ordered by (deadline, seq).
  static bool earlier(const TimerEntry* a, const TimerEntry* b) noexcept {
    return a->deadline_ns_ < b->deadline_ns_ ||
           (a->deadline_ns_ == b->deadline_ns_ &&
            static_cast<std::int32_t>(a->at_.heap.seq - b->at_.heap.seq) < 0);
  }
  void heap_push(TimerEntry* e) noexcept;
  void heap_erase(TimerEntry* e) noexcept;
  void heap_place(std::size_t i, TimerEntry* e) noexcept {
    heap_[i] = e;
    e->at_.heap.index = static_cast<std::uint32_t>(i);
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;

  struct Slot {
    TimerEntry* head = nullptr;
    TimerEntry* tail = nullptr;
  };
  std::array<std::array<Slot, kSlots>, kLevels> slots_{};
  std::array<std::uint64_t, kLevels> occupied_{};
  std::uint64_t elapsed_ = 0;
  std::size_t in_wheel_ = 0;
  std::vector<TimerEntry*> heap_;  // each entry, here or in a slot, holds one reference
  std::size_t size_ = 0;
  std::uint32_t next_seq_ = 0;
};

}  // namespace weft::detail
