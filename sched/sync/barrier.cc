#include "weft/sched/sync/barrier.h"

#include "weft/core/detail/weft_dcheck.h"

#include <stdexcept>

namespace weft {

// One task's stay in the barrier: its parking node, and whether it is
// counted in count_. The destructor undoes whatever is left (cancellation,
// an exception, or the frame destroyed at runtime teardown).
class Barrier::Visit {
 public:
  explicit Visit(Barrier& b) : b_(b) {}
  Visit(const Visit&) = delete;
  Visit& operator=(const Visit&) = delete;
  ~Visit() {
    if (!node.parked() && !counted) return;
    detail::SpinLockHolder lock(&b_.mu_);
    if (node.linked()) b_.waiters_.remove(&node);
    if (counted) {
      counted = false;
      b_.leave_locked();
    }
  }
  detail::SyncWaiter node;
  bool counted = false;

 private:
  Barrier& b_;
};

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) throw std::invalid_argument("Barrier: parties must be > 0");
}

Barrier::~Barrier() {
  detail::SpinLockHolder lock(&mu_);
  WEFT_DCHECK(waiters_.empty() && "a Barrier was destroyed while tasks wait on it");
}

Coro<std::size_t> Barrier::wait() {
  detail::TaskBase* task = detail::current_task_base_checked("Barrier::wait()");
  Visit visit(*this);
  std::size_t index = 0;
  bool released_it = false;

  // Enter, waiting while a previous cycle drains or a reset completes.
  for (;;) {
    {
      detail::SpinLockHolder lock(&mu_);
      if (state_ == BarrierState::kBroken) {
        throw BrokenBarrierError("Barrier::wait(): the barrier is broken (aborted)");
      }
      if (state_ == BarrierState::kFilling) {
        index = count_++;
        visit.counted = true;
        if (count_ == parties_) {
          // The last arrival releases the cycle and leaves at once.
          state_ = BarrierState::kDraining;
          waiters_.wake_all();
          visit.counted = false;
          leave_locked();
          released_it = true;
        }
        break;
      }
      visit.node.park(waiters_, task, "Barrier::wait()");  // until the next state change
    }
    co_await detail::ParkAwaiter(visit.node);  // CancelledError: `visit` unparks
  }
  if (released_it) co_return index;

  // Wait for the cycle to fill (or to be reset or aborted).
  for (;;) {
    {
      detail::SpinLockHolder lock(&mu_);
      if (state_ != BarrierState::kFilling) {
        // We are counted, so the state cannot move on before we leave.
        const bool passed = state_ == BarrierState::kDraining;
        visit.counted = false;
        leave_locked();
        if (!passed) {
          throw BrokenBarrierError(
              "Barrier::wait(): the barrier was reset or aborted while waiting");
        }
        break;
      }
      visit.node.park(waiters_, task, "Barrier::wait()");  // until the next state change
    }
    co_await detail::ParkAwaiter(visit.node);  // CancelledError: `visit` unparks and leaves
  }
  co_return index;
}

void Barrier::leave_locked() {
  --count_;
  if (count_ == 0) {
    if (state_ == BarrierState::kResetting || state_ == BarrierState::kDraining) {
      state_ = BarrierState::kFilling;
    }
    waiters_.wake_all();
  }
}

void Barrier::reset() {
  detail::SpinLockHolder lock(&mu_);
  if (count_ > 0) {
    // The tasks inside raise BrokenBarrierError; newcomers wait until they left.
    state_ = BarrierState::kResetting;
  } else {
    state_ = BarrierState::kFilling;
  }
  waiters_.wake_all();
}

void Barrier::abort() {
  detail::SpinLockHolder lock(&mu_);
  state_ = BarrierState::kBroken;
  waiters_.wake_all();
}

std::size_t Barrier::n_waiting() const {
  detail::SpinLockHolder lock(&mu_);
  return state_ == BarrierState::kFilling ? count_ : 0;
}

bool Barrier::broken() const {
  detail::SpinLockHolder lock(&mu_);
  return state_ == BarrierState::kBroken;
}

BarrierState Barrier::state() const {
  detail::SpinLockHolder lock(&mu_);
  return state_;
}

BarrierStatistics Barrier::statistics() const {
  detail::SpinLockHolder lock(&mu_);
  return BarrierStatistics{parties_, state_ == BarrierState::kFilling ? count_ : 0, state_,
                           waiters_.size()};
}

}  // namespace weft
