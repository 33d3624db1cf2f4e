// detail::Shared: what all the workers of one runtime share (Tokio's
// multi_thread `Shared`): the loops themselves, the global inject queue, the
// idle protocol, the shared IO driver and the stop flag.
//
// Ownership: the Runtime owns one Shared and makes it before its loops; each
// Loop keeps a reference for its whole life (the loops are destroyed with
// it, first). `loops` is filled by the Runtime's constructor and never
// changes after, so any thread may read it without a lock. Every other
// member is safe from any thread by its own rules (inject_queue.h, idle.h,
// io_driver.h); `stopping` is set once per run by `stop`, seq_cst, before
// the wake-ups that make parked workers read it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "weft/core/detail/task_base.h"
#include "weft/sched/detail/idle.h"
#include "weft/sched/detail/inject_queue.h"
#include "weft/sched/detail/io_driver.h"

namespace weft {
class Loop;
}  // namespace weft

namespace weft::detail {

class Shared {
 public:
  explicit Shared(std::uint32_t num_workers) : idle(num_workers) {}
  ~Shared();  // out of line: Loop is complete there
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  std::uint32_t num_workers() const noexcept { return static_cast<std::uint32_t>(loops.size()); }
  Loop& loop(std::uint32_t i) const noexcept { return *loops[i]; }

  // New work may need a worker: wakes a sleeper if the idle rules say so.
  void notify_parked() noexcept { idle.wake_one_for_new_work(); }
  // Makes a task runnable from a thread that is not one of the workers (the
  // global queue, then a wake-up).
  void inject_task(TaskBase* t) noexcept;
  // For the Runtime's destructor: waits until no outside thread is inside
  // inject_task, which touches the queue and the idle state after the push
  // that may let the run finish.
  void wait_for_outside_schedulers() const noexcept;

  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  // Start of a run (before any worker starts) / its end: sets the flag and
  // wakes every parked worker so that it sees it.
  void begin_run() noexcept { stopping_.store(false, std::memory_order_seq_cst); }
  void stop() noexcept;

  IoDriver io_driver;  // before `loops`: each loop registers its epoll here
  InjectQueue inject;
  Idle idle;
  std::vector<std::unique_ptr<Loop>> loops;

 private:
  std::atomic<bool> stopping_{false};
  // Threads outside the runtime inside inject_task.
  std::atomic<int> outside_schedulers_{0};
};

}  // namespace weft::detail
