// The seam between core/ (which needs no threads or OS) and the scheduler in
// sched/. core/ completes futures and wakes tasks through LoopBase; sched/
// implements it and sets the per-thread "current loop" and "current task".
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/functional/any_invocable.h"

namespace weft::detail {

class TaskBase;

using Callback = absl::AnyInvocable<void()>;

// How a task is made runnable.
enum class Wake : unsigned char {
  kNotify,  // woken by what it waited for: run it soon (LIFO slot)
  kYield,   // new, or yielded: run it after the others
  // The task running on this worker yielded: run it after the others. The
  // worker is about to be free, so if nothing else is queued there is no
  // one to wake (the task would only migrate to a woken peer).
  kYieldCurrent,
};

// One event loop. Thread safety: every method may be called from any thread.
class LoopBase {
 public:
  // Registers the loop as live (see post_if_live).
  LoopBase();
  virtual ~LoopBase();
  LoopBase(const LoopBase&) = delete;
  LoopBase& operator=(const LoopBase&) = delete;
  // Unique for the life of the process (addresses may be reused).
  std::uint64_t loop_id() const noexcept { return loop_id_; }
  // Runs `cb` on this loop's thread soon (asyncio `call_soon_threadsafe`).
  // Callbacks posted from one thread run in the order they were posted.
  virtual void post(Callback cb) = 0;
  // Makes a suspended task runnable. The task runs on the current worker when
  // the caller is a worker of the same runtime and the task is not pinned to
  // another loop; otherwise it is handed to its runtime (or pinned loop).
  virtual void schedule(TaskBase* task, Wake how) = 0;
  // A task of this loop finished (its outcome is published).
  virtual void task_finished(TaskBase* task) noexcept = 0;
  // Identifies the runtime the loop belongs to: futures may only be awaited
  // by tasks of the same runtime.
  virtual const void* runtime_id() const noexcept = 0;
  // The runtime's clock, in nanoseconds on its own epoch (the ticks of a
  // weft::TimePoint): what cancel scopes compare their deadlines with at
  // every checkpoint.
  virtual std::int64_t now_ns() const noexcept = 0;
  // Reports an error nobody else will see (an exception from a callback, an
  // exception never retrieved). Never throws.
  virtual void report_error(std::string_view message) noexcept = 0;

 private:
  const std::uint64_t loop_id_;
};

// Posts `cb` to the loop with this id if it still exists; false (cb dropped)
// if it was destroyed. For futures that outlive their runtime.
bool post_if_live(std::uint64_t loop_id, Callback cb);

// The loop and task running on this thread; null outside a runtime or a task.
LoopBase* current_loop() noexcept;
TaskBase* current_task_base() noexcept;
void set_current_loop(LoopBase* loop) noexcept;
void set_current_task(TaskBase* task) noexcept;

// Cooperative budget: a task step may complete this many awaits without
// suspending (awaits of futures that are already done) before the next one
// yields to the other tasks, so a task cannot hog its worker.
inline constexpr int kStepBudget = 128;
// Consumes one unit of the running step's budget; false when exhausted (the
// budget is then refilled and the caller must yield).
bool consume_budget() noexcept;
void reset_budget() noexcept;

// Debug mode (RuntimeOptions::debug or WEFT_DEBUG=1): process-wide, on if
// any running runtime asked for it. Enables the extra checks and reports.
bool debug_enabled() noexcept;
void set_debug_enabled(bool on) noexcept;

// Reports through the current loop if any, otherwise the process-wide
// reporter (stderr by default).
void report_error(std::string_view message) noexcept;

}  // namespace weft::detail

namespace weft {
// Replaces the process-wide reporter used for errors raised where no loop is
// running (e.g. a future with an unretrieved exception destroyed after its
// runtime ended). Passing null restores the stderr reporter.
void set_fallback_error_reporter(absl::AnyInvocable<void(std::string_view)> fn);
}  // namespace weft
