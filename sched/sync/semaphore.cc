#include "weft/sched/sync/semaphore.h"

#include <stdexcept>

#include "absl/strings/str_format.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/weft_dcheck.h"

namespace weft {
namespace {
std::int64_t checked_value(std::int64_t value, bool bounded) {
  if (value < 0) {
    throw std::invalid_argument(absl::StrFormat("%s initial value must be >= 0 (got %d)",
                                                bounded ? "BoundedSemaphore" : "Semaphore",
                                                value));
  }
  return value;
}
}  // namespace

Semaphore::Semaphore(std::int64_t value, bool bounded)
    : bound_(bounded ? checked_value(value, true) : -1), value_(checked_value(value, bounded)) {}

Semaphore::~Semaphore() {
  detail::SpinLockHolder lock(&mu_);
  WEFT_DCHECK(waiters_.empty() && "a Semaphore was destroyed while tasks wait on it");
}

bool Semaphore::try_acquire() {
  detail::SpinLockHolder lock(&mu_);
  if (value_ == 0) return false;  // by the invariant, nobody is parked when value_ > 0
  --value_;
  return true;
}

bool Semaphore::locked() const {
  detail::SpinLockHolder lock(&mu_);
  return value_ == 0;
}

std::int64_t Semaphore::value() const {
  detail::SpinLockHolder lock(&mu_);
  return value_;
}

void Semaphore::release() {
  detail::SpinLockHolder lock(&mu_);
  if (bound_ >= 0 && value_ >= bound_) {
    throw std::invalid_argument(absl::StrFormat(
        "BoundedSemaphore released too many times (value %d, initial value %d)", value_,
        bound_));
  }
  release_locked();
}

void Semaphore::release_locked() {
  // Hand the permit to the oldest waiter that takes it, or count it.
  if (waiters_.wake_one()) return;
  ++value_;
}

void Semaphore::release_from_guard() noexcept {
  {
    detail::SpinLockHolder lock(&mu_);
    if (bound_ < 0 || value_ < bound_) {
      release_locked();
      return;
    }
  }
  // Outside the mutex: the error handler is user code.
  detail::report_error("SemaphoreGuard: BoundedSemaphore released too many times");
}

bool Semaphore::acquire_or_park(detail::SyncWaiter& node, detail::TaskBase* task, const char* what) {
  detail::SpinLockHolder lock(&mu_);
  if (value_ > 0) {
    --value_;
    return true;
  }
  node.park(waiters_, task, what);
  return false;
}

void Semaphore::abandon(detail::SyncWaiter& node) noexcept {
  detail::SpinLockHolder lock(&mu_);
  if (node.linked()) {
    waiters_.remove(&node);
  } else if (node.woken()) {
    // Handed a permit and cancelled before taking it: pass it on. Not a
    // release() by the user, so it is never "too many".
    release_locked();
  }
}

SemaphoreStatistics Semaphore::statistics() const {
  detail::SpinLockHolder lock(&mu_);
  return SemaphoreStatistics{value_, waiters_.size(), bound_};
}

}  // namespace weft
