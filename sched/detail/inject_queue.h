// The runtime's global queue: tasks submitted from outside the runtime, and
// the overflow of full local queues. FIFO, any thread.
//
// An intrusive list (TaskBase::queue_next_) under an detail::SpinLock: pushes are
// rare next to local-queue traffic (remote submissions, overflow batches),
// and a batch moves under one lock. `len_` mirrors the length so that
// workers can skip an empty queue without the lock; it is stored seq_cst
// after each push as one half of the idle protocol's Dekker pairing (see
// local_queue.h).
#pragma once

#include <atomic>
#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/task_base.h"

namespace weft::detail {

class InjectQueue {
 public:
  // Appends a chain first..last (linked through queue_next_) of n tasks.
  void push_batch(TaskBase* first, TaskBase* last, std::size_t n) noexcept {
    last->queue_next_ = nullptr;
    detail::SpinLockHolder lock(&mu_);
    if (tail_ != nullptr) {
      tail_->queue_next_ = first;
    } else {
      head_ = first;
    }
    tail_ = last;
    len_.store(len_.load(std::memory_order_relaxed) + n, std::memory_order_seq_cst);
  }
  void push(TaskBase* t) noexcept { push_batch(t, t, 1); }

  // Pops one task; null if empty.
  TaskBase* pop() noexcept {
    if (is_empty()) return nullptr;
    detail::SpinLockHolder lock(&mu_);
    TaskBase* t = head_;
    if (t == nullptr) return nullptr;
    head_ = t->queue_next_;
    if (head_ == nullptr) tail_ = nullptr;
    len_.store(len_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    t->queue_next_ = nullptr;
    return t;
  }

  // Pops up to `max` tasks into out[]; returns how many.
  std::size_t pop_batch(TaskBase** out, std::size_t max) noexcept {
    if (is_empty()) return 0;
    detail::SpinLockHolder lock(&mu_);
    std::size_t n = 0;
    while (n < max && head_ != nullptr) {
      TaskBase* t = head_;
      head_ = t->queue_next_;
      t->queue_next_ = nullptr;
      out[n++] = t;
    }
    if (head_ == nullptr) tail_ = nullptr;
    len_.store(len_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    return n;
  }

  bool is_empty() const noexcept { return len_.load(std::memory_order_seq_cst) == 0; }
  std::size_t size() const noexcept { return len_.load(std::memory_order_relaxed); }

 private:
  mutable detail::SpinLock mu_;
  TaskBase* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  TaskBase* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::atomic<std::size_t> len_{0};  // written under mu_
};

}  // namespace weft::detail
