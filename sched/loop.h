// weft::Loop: one event loop, run by one worker thread of a Runtime: the
// asyncio-facing handle of one detail::Worker (sched/detail/worker.h), which
// holds the run queues (a local ring that other workers steal from, a LIFO
// slot for the task woken last, queues for pinned tasks and callbacks), the
// timers and an epoll instance with an eventfd that wakes it when it sleeps.
// docs/scheduler.md tells the whole story.
//
// Thread safety: `call_soon_threadsafe`, `create_pinned_task`, `time`,
// `index` and `runtime` may be called from any thread. `call_soon`,
// `call_later` and `call_at` are loop-only, like asyncio's: calling them from
// another thread is a RuntimeError.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/task.h"
#include "weft/sched/clock.h"
#include "weft/sched/detail/timer_wheel.h"
#include "weft/sched/detail/worker.h"

namespace weft {

class Runtime;
class Loop;
namespace detail {
class Shared;
}

// A scheduled callback; `cancel()` is safe from any thread.
class TimerHandle {
 public:
  TimerHandle() = default;
  // True if the callback will now never run (false if it ran, is running,
  // or was already cancelled).
  bool cancel() noexcept;
  // cancel(), then lets go of the timer (the handle is empty after): on the
  // owning loop the handle's and the wheel's references go in one
  // decrement, for code that arms and cancels a timer around nearly every
  // operation (wait_for).
  bool cancel_and_reset() noexcept;
  bool cancelled() const noexcept { return entry_ && entry_->cancelled(); }
  TimePoint when() const noexcept { return entry_ ? entry_->deadline() : TimePoint{}; }

 private:
  friend class Loop;
  TimerHandle(detail::RefPtr<detail::TimerEntry> e, detail::Worker* owner)
      : entry_(std::move(e)), owner_(owner) {}
  detail::RefPtr<detail::TimerEntry> entry_;
  detail::Worker* owner_ = nullptr;  // the worker whose wheel holds the entry
};

class Loop final : public detail::LoopBase {
 public:
  Loop(Runtime& rt, std::uint32_t index);
  ~Loop() override;
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  Runtime& runtime() const noexcept { return rt_; }
  std::uint32_t index() const noexcept { return worker_.index(); }
  // The loop's clock reading (the runtime's clock).
  TimePoint time() const noexcept;
  bool is_current() const noexcept { return detail::current_loop() == this; }

  // asyncio call_soon: runs cb on this loop after the callbacks already
  // scheduled. Loop thread only.
  void call_soon(detail::Callback cb);
  // Any thread.
  void call_soon_threadsafe(detail::Callback cb);
  // Runs cb after `delay` (>= 0) / at `when`. Loop thread only.
  TimerHandle call_later(Duration delay, detail::Callback cb);
  TimerHandle call_at(TimePoint when, detail::Callback cb);
  // The same for a caller that has just read time(): `now` is that reading
  // (it spares a clock read).
  TimerHandle call_at(TimePoint when, detail::Callback cb, TimePoint now);

  // A task that always runs on this loop (for thread-affine code). Any thread.
  // From outside the runtime: RuntimeError once shutdown has begun.
  template <typename T>
  Task<T> create_pinned_task(Coro<T> body, std::string name = {}) {
    if (!body.valid()) throw std::invalid_argument("create_pinned_task: empty or moved-from Coro");
    auto* state = detail::TaskState<T>::make(this, std::move(body), std::move(name));
    Task<T> handle = Task<T>::adopt(state);  // frees it if refused
    bool eager = false;
    apply_task_factory(state, &eager);
    start_task_from_any_thread(state, /*pinned=*/true, detail::Wake::kYield, eager);
    return handle;
  }

  // The loop's epoll instance, for the reactor (io/). Register descriptors
  // with data.ptr = a detail::IoHandler; its on_io runs on this loop's thread.
  int epoll_fd() const noexcept { return worker_.epoll_fd_; }
  // Number of descriptors registered through the reactor (a loop with
  // watched descriptors does not let the manual clock jump). Loop thread.
  void add_io_watch(int delta) noexcept { worker_.io_watches_ += delta; }

  // --- detail::LoopBase ---
  void post(detail::Callback cb) override { call_soon_threadsafe(std::move(cb)); }
  void schedule(detail::TaskBase* task, detail::Wake how) override;
  void task_finished(detail::TaskBase* task) noexcept override;
  const void* runtime_id() const noexcept override { return &rt_; }
  std::int64_t now_ns() const noexcept override { return time().time_since_epoch().count(); }
  void report_error(std::string_view message) noexcept override;

  // For the runtime and create_task: registers and schedules a new task,
  // returning it with one extra reference for the caller's handle.
  // `how` places it: kYield at the back of the queue (a new task), kNotify in
  // the LIFO slot (the caller is about to suspend on it: run it next here).
  detail::TaskBase* start_task(detail::TaskBase* t, bool pinned, bool registered,
                               detail::Wake how = detail::Wake::kYield);
  // The same without a handle: the caller's reference becomes the running
  // one. For fire-and-forget tasks: their last reference then ends on a
  // worker, so an exception nobody retrieved is reported to this runtime's
  // handler, not from the submitting thread.
  void start_detached(detail::TaskBase* t, bool pinned, bool registered = true,
                      detail::Wake how = detail::Wake::kYield);
  // Starts a task whose handle the caller already holds (registering it);
  // from outside the runtime only while it accepts submissions. `eager`:
  // on one of the runtime's workers, run its first step now, on this thread
  // (Python 3.12's eager tasks); elsewhere it starts as usual.
  void start_task_from_any_thread(detail::TaskBase* t, bool pinned,
                                  detail::Wake how = detail::Wake::kYield, bool eager = false);
  // Starts a task made on this loop's own thread (create_task), whose
  // handle the caller holds: start_task_from_any_thread without the checks.
  void start_new_task(detail::TaskBase* t, bool eager) {
    t->add_ref();  // the running reference
    if (ABSL_PREDICT_FALSE(eager)) {
      run_eagerly(t, /*pinned=*/false);
    } else {
      start_detached(t, /*pinned=*/false);
    }
  }
  // The runtime's task factory, if any, sees `t` before it starts
  // (Runtime::apply_task_factory). Inline: most runtimes have none.
  void apply_task_factory(detail::TaskBase* t, bool* eager) const {
    // Relaxed: a hint. A factory installed concurrently with this creation
    // may miss it (nothing orders the two); once the flag is seen, the slow
    // path reads the factory itself with acquire.
    if (factory_installed_->load(std::memory_order_relaxed)) apply_task_factory_slow(t, eager);
  }

 private:
  friend class Runtime;            // runs worker 0 and takes the queues at shutdown
  friend class detail::Worker;     // its schedule path reaches other loops' workers

  detail::Worker& worker() noexcept { return worker_; }
  void run_eagerly(detail::TaskBase* t, bool pinned);
  void apply_task_factory_slow(detail::TaskBase* t, bool* eager) const;
  void require_loop_thread(const char* what) const;

  Runtime& rt_;
  detail::Shared& shared_;  // rt_'s: the other loops, the global queue, idle, IO driver
  const std::atomic<bool>* const factory_installed_;  // Runtime::factory_installed_
  detail::Worker worker_;
};

}  // namespace weft
