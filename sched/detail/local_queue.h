// The per-worker run queue: a bounded ring that its owner pushes and pops at
// one end and other workers steal half of at the other (Tokio's design).
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
//    (mod 2^32) and tail - steal <= kCapacity.
//  - Slots in [real, tail) hold queued tasks; slots in [steal, real) are
//    being copied by a thief and must not be overwritten: the owner only
//    writes while tail - steal < kCapacity.
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

#include "weft/core/detail/task_base.h"

namespace weft::detail {

class InjectQueue;

class LocalQueue {
 public:
  static constexpr std::uint32_t kCapacity = 256;

  class Owner;
  class Stealer;

  LocalQueue() {
    for (auto& s : slots_) s.store(nullptr, std::memory_order_relaxed);
  }
  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;

  Owner owner() noexcept;
  Stealer stealer() noexcept;

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
  static constexpr std::uint32_t kMask = kCapacity - 1;
  static std::uint32_t steal_of(std::uint64_t h) { return static_cast<std::uint32_t>(h >> 32); }
  static std::uint32_t real_of(std::uint64_t h) { return static_cast<std::uint32_t>(h); }
  static std::uint64_t pack(std::uint32_t steal, std::uint32_t real) {
    return (static_cast<std::uint64_t>(steal) << 32) | real;
  }

  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::array<std::atomic<TaskBase*>, kCapacity> slots_;
};

// Owner-side operations. Only the owning worker thread may use it.
class LocalQueue::Owner {
 public:
  explicit Owner(LocalQueue* q) : q_(q) {}
  // Pushes at the back; if full, moves half of the queue plus `t` to
  // `overflow` in one batch.
  void push_back(TaskBase* t, InjectQueue& overflow) noexcept;
  // Pops from the front; null if empty.
  TaskBase* pop() noexcept;
  bool is_empty() const noexcept { return q_->looks_empty(); }
  std::uint32_t size() const noexcept { return q_->size_hint(); }

 private:
  bool push_overflow(TaskBase* t, std::uint32_t real, std::uint32_t tail,
                     InjectQueue& overflow) noexcept;
  LocalQueue* q_;
};

// Thief-side operations. Any thread.
class LocalQueue::Stealer {
 public:
  explicit Stealer(LocalQueue* q) : q_(q) {}
  // Moves about half of this queue into `dst` (whose owner is the caller)
  // and returns one of the stolen tasks to run now; null if nothing stolen.
  TaskBase* steal_into(Owner& dst_owner, LocalQueue& dst) noexcept;
  bool looks_empty() const noexcept { return q_->looks_empty(); }

 private:
  LocalQueue* q_;
};

inline LocalQueue::Owner LocalQueue::owner() noexcept { return Owner(this); }
inline LocalQueue::Stealer LocalQueue::stealer() noexcept { return Stealer(this); }

}  // namespace weft::detail
