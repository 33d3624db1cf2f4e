#include "weft/sched/sync/condition.h"

#include <exception>
#include <string>

#include "weft/core/detail/weft_dcheck.h"
#include "weft/core/errors.h"
#include "weft/sched/cancel_scope.h"

namespace weft {

Condition::Condition() : own_lock_(std::make_unique<Lock>()), lock_(own_lock_.get()) {}

Condition::Condition(Lock& lock) : lock_(&lock) {}

Condition::~Condition() {
  detail::SpinLockHolder lock(&mu_);
  WEFT_DCHECK(waiters_.empty() && "a Condition was destroyed while tasks wait on it");
}

void Condition::check_locked(const char* what) const {
  if (!lock_->locked()) {
    throw RuntimeError(std::string(what) + ": the lock is not acquired (acquire it first)");
  }
}

// Owns the node of one wait() and unparks it when the wait ends, whatever
// the path (including the frame being destroyed at runtime teardown).
class Condition::ParkedNode {
 public:
  explicit ParkedNode(Condition& c) : c_(c) {}
  ParkedNode(const ParkedNode&) = delete;
  ParkedNode& operator=(const ParkedNode&) = delete;
  ~ParkedNode() {
    if (node.parked() && !settled_) unpark();
  }
  // Unlinks the node if no notify() took it; returns true if one did (the
  // caller then owns a notification).
  bool unpark() noexcept {
    detail::SpinLockHolder lock(&c_.mu_);
    settled_ = true;
    if (node.linked()) {
      c_.waiters_.remove(&node);
      return false;
    }
    return node.woken();
  }
  // The wait completed normally: a notify() unlinked and woke the node.
  void settle() noexcept { settled_ = true; }

  detail::SyncWaiter node;

 private:
  Condition& c_;
  bool settled_ = false;
};

Coro<void> Condition::wait() {
  check_locked("Condition::wait()");
  detail::TaskBase* task = detail::current_task_base_checked("Condition::wait()");
  ParkedNode parked(*this);
  {
    detail::SpinLockHolder lock(&mu_);
    parked.node.park(waiters_, task, "Condition::wait()");
  }
  // Only now release: whoever takes the lock next and notifies finds us parked.
  try {
    lock_->release();
  } catch (const RuntimeError&) {
    // Released by someone else since check_locked(); `parked` unparks.
    throw RuntimeError("Condition::wait(): the lock is not acquired (acquire it first)");
  }

  std::exception_ptr error;
  try {
    co_await detail::ParkAwaiter(parked.node);
  } catch (...) {
    error = std::current_exception();  // CancelledError
  }
  bool notified = true;
  if (error) {
    notified = parked.unpark();
  } else {
    parked.settle();
  }

  // Re-acquire the lock even if cancelled (asyncio): the caller's guard or
  // `finally: release()` expects to hold it.
  co_await reacquire();
  if (!error) {
    // A cancellation that arrived while we waited for the lock: raise it now
    // that we hold the lock again (asyncio raises it from wait() too).
    try {
      task->throw_if_cancel_requested();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) {
    // We are not going to act on the notification we consumed: pass it on,
    // so that a notify(1) racing with a cancellation still wakes somebody.
    if (notified) {
      detail::SpinLockHolder lock(&mu_);
      waiters_.wake_one();
    }
    std::rethrow_exception(error);
  }
}

Coro<void> Condition::reacquire() {
  if (lock_->try_acquire()) co_return;
  // Shielded: a cancelled cancel scope around us is level-triggered and would
  // otherwise make every attempt fail at once; Task::cancel() requests made
  // meanwhile are kept pending and raised by wait() afterwards.
  co_await shielded(lock_->acquire().as_coro());
}

void Condition::notify(std::size_t n) {
  check_locked("Condition::notify()");
  detail::SpinLockHolder lock(&mu_);
  waiters_.wake(n);
}

void Condition::notify_all() {
  check_locked("Condition::notify_all()");
  detail::SpinLockHolder lock(&mu_);
  waiters_.wake_all();
}

ConditionStatistics Condition::statistics() const {
  LockStatistics ls = lock_->statistics();
  detail::SpinLockHolder lock(&mu_);
  return ConditionStatistics{waiters_.size(), ls.locked, ls.waiters};
}

}  // namespace weft
