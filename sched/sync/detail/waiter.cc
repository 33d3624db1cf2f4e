#include "weft/sched/sync/detail/waiter.h"

namespace weft::detail {

void SyncWaiter::park(WaiterList& list, TaskBase* task, Future<void> wakeup) noexcept {
  assert(!linked_);
  task_ = task;
  wakeup_.emplace(std::move(wakeup));
  list.push_back(this);
}

bool SyncWaiter::try_wake() noexcept {
  assert(!linked_ && wakeup_.has_value());
  // Complete through a handle of our own: once the future completes, the
  // woken task may run on another worker and destroy *this (and wakeup_)
  // while publication is still in progress.
  Future<void> wakeup = *wakeup_;
  return wakeup.try_set_result();
  // *this may be destroyed past this point if true.
}

bool SyncWaiter::suspend(std::coroutine_handle<> h) {
  return task_->suspend_on(*wakeup_->state_base(), *this, h);
}

void SyncWaiter::check_resumed() {
  // Woken and cancelled at once: the task's pending request wins, like for
  // any future the task awaited (StateAwaiter does the same).
  task_->throw_if_cancel_requested();
  wakeup_->state_base()->check_result();  // CancelledError if cancelled
}

void WaiterList::push_back(SyncWaiter* w) noexcept {
  w->list_prev_ = tail_;
  w->list_next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->list_next_ = w;
  } else {
    head_ = w;
  }
  tail_ = w;
  w->linked_ = true;
  ++size_;
}

void WaiterList::remove(SyncWaiter* w) noexcept {
  assert(w->linked_);
  if (w->list_prev_ != nullptr) {
    w->list_prev_->list_next_ = w->list_next_;
  } else {
    head_ = w->list_next_;
  }
  if (w->list_next_ != nullptr) {
    w->list_next_->list_prev_ = w->list_prev_;
  } else {
    tail_ = w->list_prev_;
  }
  w->list_prev_ = w->list_next_ = nullptr;
  w->linked_ = false;
  --size_;
}

SyncWaiter* WaiterList::pop_front() noexcept {
  SyncWaiter* w = head_;
  if (w != nullptr) remove(w);
  return w;
}

bool WaiterList::wake_one() noexcept {
  while (SyncWaiter* w = pop_front()) {
    if (w->try_wake()) return true;  // *w may be destroyed now
  }
  return false;
}

std::size_t WaiterList::wake(std::size_t n) noexcept {
  std::size_t woken = 0;
  while (woken < n) {
    SyncWaiter* w = pop_front();
    if (w == nullptr) break;
    if (w->try_wake()) ++woken;  // *w may be destroyed now
  }
  return woken;
}

}  // namespace weft::detail
