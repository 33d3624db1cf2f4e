#include "weft/sched/detail/shared.h"

#include <thread>

#include "weft/sched/loop.h"

namespace weft::detail {

Shared::~Shared() = default;

void Shared::inject_task(TaskBase* t) noexcept {
  // Counted before the push: once the task is visible it may finish run(),
  // and the Runtime's destructor waits for us to leave (release pairs with
  // its acquire).
  outside_schedulers_.fetch_add(1, std::memory_order_acq_rel);
  inject.push(t);
  notify_parked();
  outside_schedulers_.fetch_sub(1, std::memory_order_release);
}

void Shared::wait_for_outside_schedulers() const noexcept {
  while (outside_schedulers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

void Shared::stop() noexcept {
  stopping_.store(true, std::memory_order_seq_cst);
  idle.wake_all();
}

}  // namespace weft::detail
