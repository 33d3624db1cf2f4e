#include "weft/sched/to_thread.h"

#include <atomic>
#include <memory>

#include "absl/strings/str_format.h"
#include "weft/sched/detail/offload_pool.h"

namespace weft {

namespace detail {
void submit_to_pool(Runtime& rt, Callback job) { rt.offload_pool().submit(std::move(job)); }
}  // namespace detail

OffloadPool& Runtime::offload_pool() {
  absl::MutexLock lock(&pool_mu_);
  if (!pool_) {
    int n = options_.to_thread_threads;
    if (n <= 0) n = static_cast<int>(std::min(32u, std::thread::hardware_concurrency() + 4));
    pool_ = std::make_unique<OffloadPool>(n);
  }
  return *pool_;
}

void Runtime::report_abandoned_offloads() {
  absl::MutexLock lock(&pool_mu_);
  if (!pool_) return;
  if (std::int64_t n = pool_->running(); n > 0) {
    report_error(absl::StrFormat(
        "%d to_thread call(s) still running when the runtime stopped; their callers were "
        "cancelled and their results will be discarded",
        n));
  }
}


}  // namespace weft
