#include "weft/core/detail/loop_base.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace weft::detail {
namespace {
thread_local LoopBase* t_loop = nullptr;
thread_local TaskBase* t_task = nullptr;
thread_local int t_budget = kStepBudget;

absl::Mutex g_loops_mu;
std::uint64_t g_next_loop_id ABSL_GUARDED_BY(g_loops_mu) = 1;
absl::flat_hash_map<std::uint64_t, LoopBase*>& live_loops() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_loops_mu) {
  static auto* m = new absl::flat_hash_map<std::uint64_t, LoopBase*>();
  return *m;
}
std::uint64_t register_loop(LoopBase* l) {
  absl::MutexLock lock(&g_loops_mu);
  std::uint64_t id = g_next_loop_id++;
  live_loops()[id] = l;
  return id;
}

absl::Mutex g_reporter_mu;
absl::AnyInvocable<void(std::string_view)> g_reporter ABSL_GUARDED_BY(g_reporter_mu);
}  // namespace

LoopBase::LoopBase() : loop_id_(register_loop(this)) {}
LoopBase::~LoopBase() {
  absl::MutexLock lock(&g_loops_mu);
  live_loops().erase(loop_id_);
}

bool post_if_live(std::uint64_t loop_id, Callback cb) {
  // The lock keeps the loop from being destroyed while we post to it
  // (post itself is short and never blocks).
  absl::MutexLock lock(&g_loops_mu);
  auto it = live_loops().find(loop_id);
  if (it == live_loops().end()) return false;
  it->second->post(std::move(cb));
  return true;
}

LoopBase* current_loop() noexcept { return t_loop; }
TaskBase* current_task_base() noexcept { return t_task; }
void set_current_loop(LoopBase* loop) noexcept { t_loop = loop; }
void set_current_task(TaskBase* task) noexcept { t_task = task; }

namespace {
// Relaxed: a switch for diagnostics; no data is published through it.
std::atomic<int> g_debug{0};
}  // namespace
bool debug_enabled() noexcept { return g_debug.load(std::memory_order_relaxed) > 0; }
void set_debug_enabled(bool on) noexcept {
  g_debug.fetch_add(on ? 1 : -1, std::memory_order_relaxed);
}

bool consume_budget() noexcept {
  if (--t_budget > 0) return true;
  t_budget = kStepBudget;
  return false;
}
void reset_budget() noexcept { t_budget = kStepBudget; }

void report_error(std::string_view message) noexcept {
  if (t_loop != nullptr) {
    t_loop->report_error(message);
    return;
  }
  absl::MutexLock lock(&g_reporter_mu);
  if (g_reporter) {
    g_reporter(message);
  } else {
    std::fprintf(stderr, "weft: %.*s\n", static_cast<int>(message.size()), message.data());
  }
}

}  // namespace weft::detail

namespace weft {
void set_fallback_error_reporter(absl::AnyInvocable<void(std::string_view)> fn) {
  absl::MutexLock lock(&detail::g_reporter_mu);
  detail::g_reporter = std::move(fn);
}
}  // namespace weft
