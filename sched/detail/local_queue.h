// The per-worker run queue: a bounded ring that its owner pushes and pops at
// one end and other workers steal half of at the other (Tokio's design).
//
// The capacity is a template parameter (a power of two, at least 4): the
// runtime's queue is LocalQueue (256 slots, Tokio's size); tests also run
// BasicLocalQueue<4>, where every few pushes overflow and every steal is at
// its limit. A queue may also be told to use fewer of its slots (`slots`, a
// power of two from 4 up): RuntimeOptions::local_queue_slots does that for
// every worker, so tests run the whole scheduler at 4 slots without a second
// build of it. Below, "the capacity" is that number.
//
// Roles are types: `LocalQueue` is the queue, `LocalQueue::Owner` the only
// handle that can push or pop (held by the worker thread), `LocalQueue::Stealer`
// the handle other threads use. A thief cannot call the owner's operations.
//
// State:
//  - `tail_` (u32): next slot the owner writes. Written only by the owner
//    (release, so a thief that acquires it sees the slot contents).
//  - `head_` (u64) packs two u32 positions: `real` (next slot to pop) and
//    `steal` (start of a range a thief is still copying; == real when no
//    steal is in flight). Every legal value has steal <= real <= tail
//    (mod 2^32) and tail - steal <= slots_used_ (<= kCapacity).
//  - Slots in [real, tail) hold queued tasks; slots in [steal, real) are
//    being copied by a thief and must not be overwritten: the owner only
//    writes while tail - steal < slots_used_.
//  - `slots_used_` is set at construction and never changes.
// Owner pop and thief claim race through CAS on `head_` (acq_rel); a thief
// claims half of [real, tail) by moving `real` forward, copies the tasks,
// then sets steal = real with a second CAS. Only one steal runs at a time.
// Slots are atomics accessed relaxed: their hand-over is ordered by the
// release/acquire on tail_ and head_ described above (no fences, so
// ThreadSanitizer sees every edge).
//
// The end-of-push store of tail_ and the emptiness loads are seq_cst: they
// are one half of the Dekker pairing with the idle protocol (a worker that
// goes to sleep decrements the idle counter then looks at every queue; a
// pusher stores tail then looks at the idle counter), see docs/scheduler.md.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "weft/core/detail/task_base.h"
#include "weft/core/detail/weft_dcheck.h"
#include "weft/sched/detail/inject_queue.h"

namespace weft::detail {

template <std::uint32_t Capacity>
class BasicLocalQueue {
 public:
  static_assert(Capacity >= 4 && (Capacity & (Capacity - 1)) == 0,
                "the capacity is a power of two, at least 4");
  static constexpr std::uint32_t kCapacity = Capacity;

  class Owner;
  class Stealer;

  // `slots`: how many of the Capacity slots the queue uses (a power of two,
  // at least 4); std::invalid_argument otherwise.
  explicit BasicLocalQueue(std::uint32_t slots = Capacity) : slots_used_(checked_slots(slots)) {
    for (auto& s : slots_) s.store(nullptr, std::memory_order_relaxed);
  }
  BasicLocalQueue(const BasicLocalQueue&) = delete;
  BasicLocalQueue& operator=(const BasicLocalQueue&) = delete;

  Owner owner() noexcept;
  Stealer stealer() noexcept;
  std::uint32_t slots() const noexcept { return slots_used_; }
  // What `slots` may be: a power of two from 4 to Capacity.
  static constexpr bool valid_slot_count(std::uint32_t slots) noexcept {
    return slots >= 4 && slots <= kCapacity && (slots & (slots - 1)) == 0;
  }

  // Any thread; a snapshot.
  bool looks_empty() const noexcept {
    std::uint64_t h = head_.load(std::memory_order_seq_cst);
    return real_of(h) == tail_.load(std::memory_order_seq_cst);
  }
  std::uint32_t size_hint() const noexcept {
    std::uint64_t h = head_.load(std::memory_order_acquire);
    return tail_.load(std::memory_order_acquire) - real_of(h);
  }

 private:
  // The state invariant of the file comment, for a head and tail read by
  // the owner (who alone moves tail).
  void check_state(std::uint64_t h, std::uint32_t tail) const noexcept {
    WEFT_DCHECK(real_of(h) - steal_of(h) <= tail - steal_of(h));  // steal <= real <= tail
    WEFT_DCHECK(tail - steal_of(h) <= slots_used_);
  }
  static std::uint32_t checked_slots(std::uint32_t slots) {
    if (!valid_slot_count(slots)) {
      throw std::invalid_argument("a local queue uses a power of two of slots from 4 to " +
                                  std::to_string(kCapacity) + ", not " + std::to_string(slots));
    }
    return slots;
  }
  static constexpr std::uint32_t kMask = kCapacity - 1;
  static std::uint32_t steal_of(std::uint64_t h) { return static_cast<std::uint32_t>(h >> 32); }
  static std::uint32_t real_of(std::uint64_t h) { return static_cast<std::uint32_t>(h); }
  static std::uint64_t pack(std::uint32_t steal, std::uint32_t real) {
    return (static_cast<std::uint64_t>(steal) << 32) | real;
  }

  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  // Beside tail_: both are read by the owner on every push.
  const std::uint32_t slots_used_;
  std::array<std::atomic<TaskBase*>, kCapacity> slots_;
};

// Owner-side operations. Only the owning worker thread may use it.
template <std::uint32_t Capacity>
class BasicLocalQueue<Capacity>::Owner {
 public:
  explicit Owner(BasicLocalQueue* q) : q_(q) {}
  // Pushes at the back; if full, moves half of the queue plus `t` to
  // `overflow` in one batch.
  void push_back(TaskBase* t, InjectQueue& overflow) noexcept;
  // Pops from the front; null if empty.
  TaskBase* pop() noexcept;
  bool is_empty() const noexcept { return q_->looks_empty(); }
  std::uint32_t size() const noexcept { return q_->size_hint(); }

 private:
  bool push_overflow(TaskBase* t, std::uint32_t real, InjectQueue& overflow) noexcept;
  BasicLocalQueue* q_;
};

// Thief-side operations. Any thread.
template <std::uint32_t Capacity>
class BasicLocalQueue<Capacity>::Stealer {
 public:
  explicit Stealer(BasicLocalQueue* q) : q_(q) {}
  // Moves about half of this queue into `dst` (whose owner is the caller)
  // and returns one of the stolen tasks to run now; null if nothing stolen.
  TaskBase* steal_into(Owner& dst_owner, BasicLocalQueue& dst) noexcept;
  bool looks_empty() const noexcept { return q_->looks_empty(); }

 private:
  BasicLocalQueue* q_;
};

template <std::uint32_t Capacity>
typename BasicLocalQueue<Capacity>::Owner BasicLocalQueue<Capacity>::owner() noexcept {
  return Owner(this);
}
template <std::uint32_t Capacity>
typename BasicLocalQueue<Capacity>::Stealer BasicLocalQueue<Capacity>::stealer() noexcept {
  return Stealer(this);
}

template <std::uint32_t Capacity>
void BasicLocalQueue<Capacity>::Owner::push_back(TaskBase* t, InjectQueue& overflow) noexcept {
  BasicLocalQueue& q = *q_;
  // Relaxed: tail_ is written only by us.
  std::uint32_t tail = q.tail_.load(std::memory_order_relaxed);
  for (;;) {
    // Acquire pairs with a thief's release of `steal`: its copies of the
    // slots we may now overwrite are finished.
    std::uint64_t head = q.head_.load(std::memory_order_acquire);
    std::uint32_t steal = steal_of(head);
    std::uint32_t real = real_of(head);
    q.check_state(head, tail);
    if (tail - steal < q.slots_used_) break;  // room
    if (steal != real) {
      // A thief is copying; it will free room soon. Do not wait for it.
      overflow.push(t);
      return;
    }
    if (push_overflow(t, real, overflow)) return;
    // Lost a race with a thief or our own pop; look again.
  }
  q.slots_[tail & kMask].store(t, std::memory_order_relaxed);
  // Release publishes the slot to thieves; seq_cst for the idle protocol.
  q.tail_.store(tail + 1, std::memory_order_seq_cst);
}

template <std::uint32_t Capacity>
bool BasicLocalQueue<Capacity>::Owner::push_overflow(TaskBase* t, std::uint32_t real,
                                                     InjectQueue& overflow) noexcept {
  BasicLocalQueue& q = *q_;
  const std::uint32_t half = q.slots_used_ / 2;
  // Claim the oldest half as if popped.
  std::uint64_t expected = pack(real, real);
  if (!q.head_.compare_exchange_strong(expected, pack(real + half, real + half),
                                       std::memory_order_acq_rel, std::memory_order_acquire)) {
    return false;
  }
  TaskBase* first = q.slots_[real & kMask].load(std::memory_order_relaxed);
  TaskBase* prev = first;
  for (std::uint32_t i = 1; i < half; ++i) {
    TaskBase* cur = q.slots_[(real + i) & kMask].load(std::memory_order_relaxed);
    prev->queue_next_ = cur;
    prev = cur;
  }
  prev->queue_next_ = t;
  overflow.push_batch(first, t, half + 1);
  return true;
}

template <std::uint32_t Capacity>
TaskBase* BasicLocalQueue<Capacity>::Owner::pop() noexcept {
  BasicLocalQueue& q = *q_;
  std::uint64_t head = q.head_.load(std::memory_order_acquire);
  for (;;) {
    std::uint32_t steal = steal_of(head);
    std::uint32_t real = real_of(head);
    const std::uint32_t tail = q.tail_.load(std::memory_order_relaxed);
    q.check_state(head, tail);
    if (real == tail) return nullptr;
    std::uint32_t next_real = real + 1;
    std::uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
    // acq_rel: orders against a thief's claim of the same slots.
    if (q.head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return q.slots_[real & kMask].load(std::memory_order_relaxed);
    }
  }
}

template <std::uint32_t Capacity>
TaskBase* BasicLocalQueue<Capacity>::Stealer::steal_into(Owner& dst_owner,
                                                         BasicLocalQueue& dst) noexcept {
  (void)dst_owner;  // proof that the caller owns dst
  BasicLocalQueue& src = *q_;
  // Relaxed: dst.tail_ is written only by the caller (its owner).
  std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
  std::uint64_t dst_head = dst.head_.load(std::memory_order_acquire);
  const std::uint32_t half = dst.slots_used_ / 2;
  if (dst_tail - steal_of(dst_head) > half) return nullptr;  // no room for half

  // Claim: move src's real forward by half of what is queued.
  std::uint64_t prev = src.head_.load(std::memory_order_acquire);
  std::uint32_t n;
  std::uint64_t next;
  for (;;) {
    std::uint32_t steal = steal_of(prev);
    std::uint32_t real = real_of(prev);
    if (steal != real) return nullptr;  // another thief is at work
    // Acquire pairs with the owner's tail store: the slots are readable.
    std::uint32_t src_tail = src.tail_.load(std::memory_order_acquire);
    const std::uint32_t queued = src_tail - real;
    n = queued - queued / 2;
    if (n == 0) return nullptr;
    if (n > half) n = half;
    next = pack(steal, real + n);
    if (src.head_.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      // The claim held, so `real` was current; the tail, read before, can
      // only be behind: what it counts fits in the ring.
      WEFT_DCHECK(queued <= src.slots_used_);
      break;
    }
  }
  // Room for the copies in dst (checked above; only its owner, the caller, adds).
  WEFT_DCHECK(dst_tail + n - 1 - steal_of(dst_head) <= dst.slots_used_);
  std::uint32_t first = steal_of(next);
  // Copy all but the last into dst; the last one is returned to run now.
  for (std::uint32_t i = 0; i + 1 < n; ++i) {
    TaskBase* t = src.slots_[(first + i) & kMask].load(std::memory_order_relaxed);
    dst.slots_[(dst_tail + i) & kMask].store(t, std::memory_order_relaxed);
  }
  TaskBase* ret = src.slots_[(first + n - 1) & kMask].load(std::memory_order_relaxed);
  // Release the claimed range: steal catches up with real (which the owner
  // may have moved meanwhile). Release pairs with the owner's acquire in push.
  prev = next;
  for (;;) {
    std::uint32_t real = real_of(prev);
    if (src.head_.compare_exchange_weak(prev, pack(real, real), std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      break;
    }
  }
  if (n > 1) dst.tail_.store(dst_tail + n - 1, std::memory_order_seq_cst);
  return ret;
}

// The runtime's queue.
using LocalQueue = BasicLocalQueue<256>;

}  // namespace weft::detail
