#include "weft/sched/sync/lock.h"

#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/weft_dcheck.h"
#include "weft/core/errors.h"

namespace weft {

Lock::~Lock() {
  detail::SpinLockHolder lock(&mu_);
  WEFT_DCHECK(waiters_.empty() && "a Lock was destroyed while tasks wait on it");
}

bool Lock::try_acquire() {
  detail::SpinLockHolder lock(&mu_);
  if (locked_) return false;  // by the invariant, nobody is parked when unlocked
  locked_ = true;
  return true;
}

bool Lock::locked() const {
  detail::SpinLockHolder lock(&mu_);
  return locked_;
}

void Lock::release() {
  detail::SpinLockHolder lock(&mu_);
  if (!locked_) throw RuntimeError("Lock::release(): the lock is not acquired");
  release_locked();
}

void Lock::release_locked() {
  // Hand the lock over: it stays locked, now owned by the woken waiter.
  if (waiters_.wake_one()) return;
  locked_ = false;
}

void Lock::release_from_guard() noexcept {
  {
    detail::SpinLockHolder lock(&mu_);
    if (locked_) {
      release_locked();
      return;
    }
  }
  // Outside the mutex: the error handler is user code.
  detail::report_error("LockGuard: the lock was already released by someone else");
}

bool Lock::acquire_or_park(detail::SyncWaiter& node, detail::TaskBase* task, const char* what) {
  detail::SpinLockHolder lock(&mu_);
  if (!locked_) {
    locked_ = true;
    return true;
  }
  node.park(waiters_, task, what);
  return false;
}

void Lock::abandon(detail::SyncWaiter& node) noexcept {
  detail::SpinLockHolder lock(&mu_);
  if (node.linked()) {
    waiters_.remove(&node);
  } else if (node.woken()) {
    // Handed the lock and cancelled before taking it: pass it on.
    release_locked();
  }
}

LockStatistics Lock::statistics() const {
  detail::SpinLockHolder lock(&mu_);
  return LockStatistics{locked_, waiters_.size()};
}

}  // namespace weft
