#include "weft/sched/sync/event.h"

#include "weft/core/detail/weft_dcheck.h"

namespace weft {

Event::~Event() {
  detail::SpinLockHolder lock(&mu_);
  WEFT_DCHECK(waiters_.empty() && "an Event was destroyed while tasks wait on it");
}

void Event::set() {
  detail::SpinLockHolder lock(&mu_);
  if (flag_.load(std::memory_order_relaxed)) return;  // written only under mu_
  // Release: pairs with the acquire load of is_set() (the lock-free fast path
  // of wait()); parked waiters are ordered by their wait nodes instead.
  flag_.store(true, std::memory_order_release);
  waiters_.wake_all();
}

void Event::clear() {
  detail::SpinLockHolder lock(&mu_);
  // Relaxed: clearing publishes nothing; the mutex orders it with set().
  flag_.store(false, std::memory_order_relaxed);
}

EventStatistics Event::statistics() const {
  detail::SpinLockHolder lock(&mu_);
  return EventStatistics{flag_.load(std::memory_order_relaxed), waiters_.size()};
}

bool Event::WaitOp::try_now_or_park(Node& node, detail::TaskBase* task) {
  detail::SpinLockHolder lock(&event->mu_);
  if (event->flag_.load(std::memory_order_relaxed)) return true;  // under mu_
  node.park(event->waiters_, task, kWhat);
  return false;
}

void Event::WaitOp::abandon(Node& node) noexcept {
  detail::SpinLockHolder lock(&event->mu_);
  if (node.linked()) event->waiters_.remove(&node);
  // Woken or not, there is nothing to give back.
}

}  // namespace weft
