#include "weft/sched/to_thread.h"

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "oneapi/tbb/global_control.h"
#include "weft/sched/detail/offload_pool.h"
#include "weft/sched/detail/runtime_access.h"

namespace weft {

namespace {
absl::Mutex g_control_mu;
std::size_t g_control_size ABSL_GUARDED_BY(g_control_mu) = 0;
std::unique_ptr<oneapi::tbb::global_control> g_control ABSL_GUARDED_BY(g_control_mu);

// Raises oneTBB's process-wide worker cap to at least `threads` + 1 (never
// lowers it: a smaller runtime must not shrink a larger one's pool).
void reserve_tbb_threads(std::size_t threads) {
  absl::MutexLock lock(&g_control_mu);
  if (threads + 1 <= g_control_size) return;
  g_control_size = threads + 1;
  auto bigger = std::make_unique<oneapi::tbb::global_control>(
      oneapi::tbb::global_control::max_allowed_parallelism, g_control_size);
  g_control = std::move(bigger);  // the old, smaller one goes after the new one exists
}
}  // namespace

OffloadPool::OffloadPool(int threads)
    : arena_((reserve_tbb_threads(static_cast<std::size_t>(threads)), threads),
             /*reserved_for_masters=*/0),
      running_(std::make_shared<std::atomic<std::int64_t>>(0)) {}

namespace detail {
void submit_to_pool(Runtime& rt, absl::AnyInvocable<void(OffloadTicket&)> job) {
  RuntimeAccess::offload_pool(rt).submit(std::move(job));
}
}  // namespace detail

OffloadPool& Runtime::offload_pool() {
  // Acquire pairs with the release store below: the pool is fully made.
  if (OffloadPool* p = pool_ptr_.load(std::memory_order_acquire)) return *p;
  absl::MutexLock lock(&pool_mu_);
  if (!pool_) {
    int n = options_.to_thread_threads;
    if (n <= 0) n = static_cast<int>(std::min(32u, std::thread::hardware_concurrency() + 4));
    pool_ = std::make_unique<OffloadPool>(n);
    pool_ptr_.store(pool_.get(), std::memory_order_release);
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
