#include "weft/sched/detail/local_queue.h"

#include "weft/sched/detail/inject_queue.h"

namespace weft::detail {

void LocalQueue::Owner::push_back(TaskBase* t, InjectQueue& overflow) noexcept {
  LocalQueue& q = *q_;
  // Relaxed: tail_ is written only by us.
  std::uint32_t tail = q.tail_.load(std::memory_order_relaxed);
  for (;;) {
    // Acquire pairs with a thief's release of `steal`: its copies of the
    // slots we may now overwrite are finished.
    std::uint64_t head = q.head_.load(std::memory_order_acquire);
    std::uint32_t steal = steal_of(head);
    std::uint32_t real = real_of(head);
    if (tail - steal < kCapacity) break;  // room
    if (steal != real) {
      // A thief is copying; it will free room soon. Do not wait for it.
      overflow.push(t);
      return;
    }
    if (push_overflow(t, real, tail, overflow)) return;
    // Lost a race with a thief or our own pop; look again.
  }
  q.slots_[tail & kMask].store(t, std::memory_order_relaxed);
  // Release publishes the slot to thieves; seq_cst for the idle protocol.
  q.tail_.store(tail + 1, std::memory_order_seq_cst);
}

bool LocalQueue::Owner::push_overflow(TaskBase* t, std::uint32_t real, std::uint32_t tail,
                                      InjectQueue& overflow) noexcept {
  LocalQueue& q = *q_;
  constexpr std::uint32_t kHalf = kCapacity / 2;
  // Claim the oldest half as if popped.
  std::uint64_t expected = pack(real, real);
  if (!q.head_.compare_exchange_strong(expected, pack(real + kHalf, real + kHalf),
                                       std::memory_order_acq_rel, std::memory_order_acquire)) {
    return false;
  }
  (void)tail;
  TaskBase* first = q.slots_[real & kMask].load(std::memory_order_relaxed);
  TaskBase* prev = first;
  for (std::uint32_t i = 1; i < kHalf; ++i) {
    TaskBase* cur = q.slots_[(real + i) & kMask].load(std::memory_order_relaxed);
    prev->queue_next_ = cur;
    prev = cur;
  }
  prev->queue_next_ = t;
  overflow.push_batch(first, t, kHalf + 1);
  return true;
}

TaskBase* LocalQueue::Owner::pop() noexcept {
  LocalQueue& q = *q_;
  std::uint64_t head = q.head_.load(std::memory_order_acquire);
  for (;;) {
    std::uint32_t steal = steal_of(head);
    std::uint32_t real = real_of(head);
    if (real == q.tail_.load(std::memory_order_relaxed)) return nullptr;
    std::uint32_t next_real = real + 1;
    std::uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
    // acq_rel: orders against a thief's claim of the same slots.
    if (q.head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return q.slots_[real & kMask].load(std::memory_order_relaxed);
    }
  }
}

TaskBase* LocalQueue::Stealer::steal_into(Owner& dst_owner, LocalQueue& dst) noexcept {
  (void)dst_owner;  // proof that the caller owns dst
  LocalQueue& src = *q_;
  // Relaxed: dst.tail_ is written only by the caller (its owner).
  std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
  std::uint64_t dst_head = dst.head_.load(std::memory_order_acquire);
  if (dst_tail - steal_of(dst_head) > kCapacity / 2) return nullptr;  // no room for half

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
    n = src_tail - real;
    n -= n / 2;
    if (n == 0) return nullptr;
    if (n > kCapacity / 2) n = kCapacity / 2;
    next = pack(steal, real + n);
    if (src.head_.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      break;
    }
  }
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

}  // namespace weft::detail
