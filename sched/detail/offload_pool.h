// The runtime's to_thread pool (see to_thread.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "oneapi/tbb/global_control.h"
#include "oneapi/tbb/task_arena.h"
#include "weft/core/detail/loop_base.h"

namespace weft {

// The runtime's pool: a oneTBB task_arena with no slot reserved for external
// threads, sized by RuntimeOptions::to_thread_threads. oneTBB caps its worker
// threads at the core count by default, which would make blocking calls wait
// for each other; a global_control raises the cap to the arena size.
class OffloadPool {
 public:
  explicit OffloadPool(int threads)
      : control_(oneapi::tbb::global_control::max_allowed_parallelism,
                 static_cast<std::size_t>(threads) + 1),
        arena_(threads, /*reserved_for_masters=*/0),
        running_(std::make_shared<std::atomic<std::int64_t>>(0)) {}

  void submit(detail::Callback job) {
    running_->fetch_add(1, std::memory_order_relaxed);
    // The job keeps the counter alive, not the pool: a call that outlives the
    // runtime touches nothing of it.
    arena_.enqueue(Job{std::move(job), running_});
  }
  // oneTBB invokes its functor through a const reference.
  struct Job {
    mutable detail::Callback fn;
    std::shared_ptr<std::atomic<std::int64_t>> running;
    void operator()() const {
      fn();
      running->fetch_sub(1, std::memory_order_relaxed);
    }
  };

  // Calls submitted and not finished (a diagnostic snapshot).
  std::int64_t running() const { return running_->load(std::memory_order_relaxed); }

 private:
  oneapi::tbb::global_control control_;
  oneapi::tbb::task_arena arena_;
  std::shared_ptr<std::atomic<std::int64_t>> running_;
};

}  // namespace weft
