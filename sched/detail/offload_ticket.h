// What a to_thread pool job is handed (sched/detail/offload_pool.h runs the
// jobs, sched/to_thread.h makes them): shared by the two without either
// including the other.
#pragma once

namespace weft::detail {

// Marks a pool job finished before it hands out its result, so that the
// shutdown report counts only calls whose result nobody waits for.
class OffloadTicket {
 public:
  virtual void finish() noexcept = 0;

 protected:
  ~OffloadTicket() = default;
};

}  // namespace weft::detail
