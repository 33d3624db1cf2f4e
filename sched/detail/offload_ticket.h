// What a to_thread pool job is handed (sched/detail/offload_pool.h runs the
// jobs, sched/to_thread.h makes them): shared by the two without either
// including the other.
#pragma once

namespace weft::detail {

// Counts a pool job for the shutdown report, which names the calls that
// began and whose result was not handed over yet. A job calls begin() before
// it claims its call, and finish() once the call is over (the pool calls it
// too when the job returns; a second call changes nothing). A job whose call
// was abandoned before it began is counted only between the two, never at
// shutdown: beginning before the claim means a caller that failed to abandon
// the call (it saw the claim, acquire) also sees the count, so the report,
// made after every caller finished, misses no call that runs.
class OffloadTicket {
 public:
  virtual void begin() noexcept = 0;
  virtual void finish() noexcept = 0;

 protected:
  ~OffloadTicket() = default;
};

}  // namespace weft::detail
