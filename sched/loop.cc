// Loop: the asyncio-facing handle of one worker (call_soon, timers, task
// start) and the timer handles. The worker itself (its construction, the run
// loop, where a woken task is queued, stealing and fairness) is in
// detail/worker.cc; parking, the IO polls and the busy-peer watch in
// detail/park.cc.
#include "weft/sched/loop.h"

#include <stdexcept>
#include <utility>

#include "absl/strings/str_format.h"
#include "weft/sched/detail/idle.h"
#include "weft/sched/detail/shared.h"
#include "weft/sched/detail/worker_thread.h"
#include "weft/sched/runtime.h"

namespace weft {

namespace {

using detail::t_worker;

}  // namespace


// On the owning loop the wheel cancels and takes the entry out at once;
// elsewhere a CAS against the firing decides, and the loop drops the entry
// when it reaches it (no lock of the loop's is taken).
bool TimerHandle::cancel() noexcept {
  if (!entry_) return false;
  if (t_worker != nullptr && t_worker == owner_) {
    return owner_->timers_.cancel(entry_.get(), false);
  }
  return entry_->try_cancel();
}

bool TimerHandle::cancel_and_reset() noexcept {
  if (!entry_) return false;
  detail::Worker* owner = std::exchange(owner_, nullptr);
  if (t_worker != nullptr && t_worker == owner) {
    return owner->timers_.cancel(entry_.leak(), true);
  }
  const bool cancelled = entry_->try_cancel();
  entry_.reset();
  return cancelled;
}

Loop::Loop(Runtime& rt, std::uint32_t index)
    : rt_(rt),
      shared_(rt.shared()),
      factory_installed_(&rt.factory_installed()),
      worker_(*this, rt, rt.shared(), index) {}

Loop::~Loop() = default;

TimePoint Loop::time() const noexcept { return rt_.clock().now(); }

void Loop::require_loop_thread(const char* what) const {
  if (t_worker != &worker_) {
    throw RuntimeError(absl::StrFormat(
        "%s must be called on the thread of loop %d (use call_soon_threadsafe from other "
        "threads)",
        what, index()));
  }
}

void Loop::call_soon(detail::Callback cb) {
  require_loop_thread("Loop::call_soon");
  worker_.ready_callbacks_.push_back(std::move(cb));
}

void Loop::call_soon_threadsafe(detail::Callback cb) {
  if (t_worker == &worker_) {
    worker_.ready_callbacks_.push_back(std::move(cb));
    return;
  }
  {
    detail::SpinLockHolder lock(&worker_.remote_mu_);
    worker_.remote_callbacks_.push_back(std::move(cb));
    // seq_cst: pairs with the parked worker's recheck (see detail/idle.h).
    worker_.remote_pending_.store(true, std::memory_order_seq_cst);
  }
  shared_.idle.wake_if_parked(&worker_);
}

TimerHandle Loop::call_later(Duration delay, detail::Callback cb) {
  if (delay.count() < 0) {
    throw std::invalid_argument(
        absl::StrFormat("call_later: negative delay (%d ns)", delay.count()));
  }
  require_loop_thread("Loop::call_later");
  const TimePoint now = time();
  return TimerHandle(worker_.timers_.add(now + delay, now, std::move(cb)), &worker_);
}

TimerHandle Loop::call_at(TimePoint when, detail::Callback cb) { return call_at(when, std::move(cb), time()); }

TimerHandle Loop::call_at(TimePoint when, detail::Callback cb, TimePoint now) {
  require_loop_thread("Loop::call_at");
  return TimerHandle(worker_.timers_.add(when, now, std::move(cb)), &worker_);
}

detail::TaskBase* Loop::start_task(detail::TaskBase* t, bool pinned, bool registered,
                                   detail::Wake how) {
  t->add_ref();  // for the caller's handle; the initial one is the running reference
  start_detached(t, pinned, registered, how);
  return t;
}

void Loop::start_detached(detail::TaskBase* t, bool pinned, bool registered, detail::Wake how) {
  t->set_pinned(pinned);
  if (registered) {
    rt_.register_task(t);
  } else {
    t->registry_shard_ = detail::TaskBase::kNotRegistered;
  }
  schedule(t, how);
}

void Loop::start_task_from_any_thread(detail::TaskBase* t, bool pinned, detail::Wake how, bool eager) {
  if (t_worker != nullptr && &t_worker->rt_ == &rt_) {
    t->add_ref();  // the running reference; the caller's handle exists already
    if (eager && (!pinned || t_worker == &worker_)) {
      run_eagerly(t, pinned);
    } else {
      start_detached(t, pinned, /*registered=*/true, how);
    }
    return;
  }
  // From outside the runtime an eager start is an ordinary one: a task's
  // steps run only on the runtime's workers.
  rt_.submit_external([&] {
    t->add_ref();
    start_detached(t, pinned);
  });
}

void Loop::apply_task_factory_slow(detail::TaskBase* t, bool* eager) const {
  rt_.apply_task_factory(t, eager);
}

void Loop::run_eagerly(detail::TaskBase* t, bool pinned) {
  t->set_pinned(pinned);
  rt_.register_task(t);
  // The first step, on this thread, nested in the caller's step. A task that
  // finishes in it is never queued; one that suspends is woken as usual.
  t->run();  // *t may be done, or running on another worker, past this point
}

void Loop::task_finished(detail::TaskBase* t) noexcept {
  if (t->registry_shard_ != detail::TaskBase::kNotRegistered) rt_.unregister_task(t);
}

void Loop::report_error(std::string_view message) noexcept { rt_.report_error(message); }

}  // namespace weft
