#include "weft/sched/sync/detail/waiter.h"

#include "weft/core/detail/weft_dcheck.h"

namespace weft::detail {

void SyncWaiter::park(WaiterList& list, TaskBase* task, const char* what) noexcept {
  WEFT_DCHECK(!linked_ && !in_wait_);
  reset(task, what);
  list.push_back(this);
}

bool SyncWaiter::suspend(std::coroutine_handle<> h) {
  in_wait_ = true;
  return task()->suspend_on_node(*this, h);
  // If true, *this may already be resumed on another thread.
}

bool SyncWaiter::end_wait(std::string* msg) noexcept {
  in_wait_ = false;
  std::string ignored;
  return task()->end_node_wait(*this, msg != nullptr ? msg : &ignored);
}

void SyncWaiter::check_resumed() {
  std::string msg;
  const bool cancelled = end_wait(&msg);
  // Woken and cancelled at once: the task's pending request wins, like for
  // any future the task awaited (StateAwaiter does the same).
  task()->throw_if_cancel_requested();
  if (cancelled) throw CancelledError(std::move(msg));
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
  WEFT_DCHECK(w->linked_);
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
