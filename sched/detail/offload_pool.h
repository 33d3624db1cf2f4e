// The runtime's to_thread pool (see to_thread.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "oneapi/tbb/global_control.h"
#include "oneapi/tbb/task_arena.h"
#include "weft/sched/detail/offload_ticket.h"

namespace weft {

// The runtime's pool: a oneTBB task_arena with no slot reserved for external
// threads, sized by RuntimeOptions::to_thread_threads. oneTBB caps its worker
// threads process-wide (max_allowed_parallelism, default: the core count),
// which would make blocking calls wait for each other; the pool raises the
// cap through one process-wide global_control sized for the largest pool
// asked for so far (oneTBB applies the smallest live global_control value, so
// per-pool controls would cap every pool at the smallest).
class OffloadPool {
 public:
  explicit OffloadPool(int threads);

  void submit(absl::AnyInvocable<void(detail::OffloadTicket&)> job) {
    arena_.enqueue(Job{std::move(job), running_});
  }
  // Calls that began and whose result was not handed over yet (a snapshot;
  // detail/offload_ticket.h says why one made after every caller finished
  // counts exactly the calls still running).
  std::int64_t running() const { return running_->load(std::memory_order_relaxed); }

 private:
  // oneTBB invokes its functor through a const reference. The job keeps the
  // counter alive, not the pool: a call that outlives the runtime touches
  // nothing of it.
  struct Job {
    mutable absl::AnyInvocable<void(detail::OffloadTicket&)> fn;
    std::shared_ptr<std::atomic<std::int64_t>> running;
    void operator()() const {
      // Relaxed: the count is ordered with the callers through the call's
      // claim (detail/offload_ticket.h), not through the counter.
      struct Ticket final : detail::OffloadTicket {
        std::atomic<std::int64_t>* counter;
        bool begun = false;
        bool finished = false;
        void begin() noexcept override {
          if (!begun) counter->fetch_add(1, std::memory_order_relaxed);
          begun = true;
        }
        void finish() noexcept override {
          if (begun && !finished) counter->fetch_sub(1, std::memory_order_relaxed);
          finished = true;
        }
      } ticket;
      ticket.counter = running.get();
      fn(ticket);
      ticket.finish();
    }
  };

  oneapi::tbb::task_arena arena_;
  std::shared_ptr<std::atomic<std::int64_t>> running_;
};

}  // namespace weft
