#include "weft/sched/runtime.h"

#include <pthread.h>
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "weft/sched/detail/idle.h"
#include "weft/sched/detail/local_queue.h"
#include "weft/sched/detail/offload_pool.h"
#include "weft/sched/detail/runtime_access.h"

namespace weft {

namespace {
// WEFT_DEBUG's spellings, as a user would write them in a shell. (Debian's
// Abseil has its own string_view: absl::string_view, not std's.)
std::optional<bool> parse_flag(absl::string_view v) {
  for (absl::string_view on : {"1", "true", "yes", "on"}) {
    if (absl::EqualsIgnoreCase(v, on)) return true;
  }
  for (absl::string_view off : {"0", "false", "no", "off"}) {
    if (absl::EqualsIgnoreCase(v, off)) return false;
  }
  return std::nullopt;
}

// A malformed environment variable is reported once per process (every
// runtime reads it; one warning is enough): true for the first caller.
// `warned` is per variable.
bool first_warning(std::atomic<bool>& warned) {
  // Relaxed: the flag guards nothing but itself; the exchange alone makes
  // exactly one runtime, on any thread, the one that reports.
  return !warned.exchange(true, std::memory_order_relaxed);
}
std::atomic<bool> g_warned_debug{false};
std::atomic<bool> g_warned_seed{false};

// RuntimeOptions::local_queue_slots, checked before any worker is made.
std::uint32_t checked_local_queue_slots(std::uint32_t asked) {
  const std::uint32_t slots = asked != 0 ? asked : detail::LocalQueue::kCapacity;
  if (!detail::LocalQueue::valid_slot_count(slots)) {
    throw std::invalid_argument(absl::StrFormat(
        "RuntimeOptions::local_queue_slots is %u; it must be 0 (all %u) or a power of two from "
        "4 to %u",
        asked, detail::LocalQueue::kCapacity, detail::LocalQueue::kCapacity));
  }
  return slots;
}

std::uint32_t worker_count(std::uint32_t asked) {
  return asked != 0 ? asked : std::max(1u, std::thread::hardware_concurrency());
}
}  // namespace

Runtime::Runtime(RuntimeOptions options)
    : options_(std::move(options)),
      local_queue_slots_(checked_local_queue_slots(options_.local_queue_slots)),
      shared_(worker_count(options_.workers)) {
  const std::uint32_t n = worker_count(options_.workers);
  if (options_.clock != nullptr) {
    clock_ = options_.clock;
  } else {
    own_clock_ = std::make_unique<SystemClock>();
    clock_ = own_clock_.get();
  }
  shuffle_seed_ = options_.shuffle_seed;
  if (const char* env = std::getenv("WEFT_SHUFFLE_SEED"); env != nullptr && *env != '\0') {
    if (std::uint64_t seed = 0; absl::SimpleAtoi(env, &seed)) {
      shuffle_seed_ = seed;
    } else if (first_warning(g_warned_seed)) {
      report_error(absl::StrFormat(
          "WEFT_SHUFFLE_SEED=\"%s\" is not a number (an unsigned 64-bit integer); it is ignored",
          env));
    }
  }
  if (shuffle_seed_ != 0) {
    std::fprintf(stderr, "weft: shuffle mode, seed %llu (WEFT_SHUFFLE_SEED=%llu reproduces it)\n",
                 static_cast<unsigned long long>(shuffle_seed_),
                 static_cast<unsigned long long>(shuffle_seed_));
  }
  // The environment can turn debug mode on, not off (as PYTHONASYNCIODEBUG;
  // unlike it, "0" and the other spellings of false mean off: docs/design.md).
  debug_ = options_.debug;
  if (const char* env = std::getenv("WEFT_DEBUG"); env != nullptr && *env != '\0') {
    if (std::optional<bool> on = parse_flag(env)) {
      debug_ = debug_ || *on;
    } else if (first_warning(g_warned_debug)) {
      report_error(absl::StrFormat(
          "WEFT_DEBUG=\"%s\" is not one of 1/true/yes/on or 0/false/no/off; debug mode is left %s",
          env, debug_ ? "on (RuntimeOptions::debug)" : "off"));
    }
  }
  if (options_.task_factory) set_task_factory(std::move(options_.task_factory));
  shared_.loops.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) shared_.loops.push_back(std::make_unique<Loop>(*this, i));
  if (clock_->is_manual()) {
    static_cast<ManualClock*>(clock_)->set_on_advance([this] { shared_.idle.wake_all(); });
  }
}

Runtime::~Runtime() {
  // A thread that woke one of our tasks may still be inside inject_task for
  // a few instructions; wait for it before freeing what it touches.
  shared_.wait_for_outside_schedulers();
  if (clock_->is_manual()) static_cast<ManualClock*>(clock_)->set_on_advance(nullptr);
  shared_.loops.clear();
  // The pool is destroyed last: the arena does not wait for running calls,
  // which hold only their own state.
  pool_.reset();
}

void Runtime::begin_run() {
  if (detail::current_loop() != nullptr) {
    throw RuntimeError("weft::run cannot be called from a thread that is running a weft loop");
  }
  if (running_.exchange(true, std::memory_order_acq_rel)) {
    throw RuntimeError("this weft::Runtime is already running");
  }
  shared_.begin_run();
  {
    detail::SpinLockHolder lock(&accept_mu_);
    accepting_ = true;
  }
  if (debug_) detail::set_debug_enabled(true);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (std::uint32_t i = 1; i < shared_.num_workers(); ++i) {
    threads_.emplace_back([this, i, cores] {
      if (options_.pin_threads) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(i % cores, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      }
      shared_.loop(i).worker().run();
    });
  }
}

void Runtime::end_run() {
  for (auto& t : threads_) t.join();
  threads_.clear();
  // Every task finished under the supervisor; anything still queued or
  // suspended here could only be left by a broken invariant or a task that
  // outlived shutdown. Finish them as cancelled so nothing leaks.
  for (auto& l : shared_.loops) l->worker().drain_for_shutdown();
  for (int round = 0; round < 100; ++round) {
    std::vector<detail::RefPtr<detail::TaskBase>> leftover;
    for (auto& l : shared_.loops) l->worker().take_queued_for_shutdown(leftover);
    while (detail::TaskBase* t = shared_.inject.pop()) leftover.emplace_back(t);
    for (AnyTask& t : all_tasks()) leftover.emplace_back(t.base());
    if (leftover.empty()) break;
    // abandon() is idempotent; the references keep duplicates alive.
    for (auto& t : leftover) t->abandon("runtime stopped");
    for (auto& l : shared_.loops) l->worker().drain_for_shutdown();
  }
  report_abandoned_offloads();
  if (debug_) detail::set_debug_enabled(false);
  running_.store(false, std::memory_order_release);
}

void Runtime::register_task(detail::TaskBase* t) noexcept {
  const auto shard = static_cast<std::uint16_t>(t->id() % kRegistryShards);
  t->registry_shard_ = shard;
  RegistryShard& s = registry_[shard];
  detail::SpinLockHolder lock(&s.mu);
  t->registry_prev_ = nullptr;
  t->registry_next_ = s.head;
  if (s.head != nullptr) s.head->registry_prev_ = t;
  s.head = t;
}

void Runtime::unregister_task(detail::TaskBase* t) noexcept {
  RegistryShard& s = registry_[t->registry_shard_];
  detail::SpinLockHolder lock(&s.mu);
  if (t->registry_prev_ != nullptr) {
    t->registry_prev_->registry_next_ = t->registry_next_;
  } else {
    s.head = t->registry_next_;
  }
  if (t->registry_next_ != nullptr) t->registry_next_->registry_prev_ = t->registry_prev_;
  t->registry_prev_ = t->registry_next_ = nullptr;
  t->registry_shard_ = detail::TaskBase::kNotRegistered;
}

std::vector<AnyTask> Runtime::all_tasks() const {
  std::vector<AnyTask> out;
  for (const RegistryShard& s : registry_) {
    detail::SpinLockHolder lock(&s.mu);
    for (detail::TaskBase* t = s.head; t != nullptr; t = t->registry_next_) {
      if (!t->done()) out.emplace_back(t);
    }
  }
  return out;
}

std::string Runtime::dump_tasks() const {
  std::string out;
  for (const AnyTask& t : all_tasks()) {
    const detail::TaskBase* b = t.base();
    // A snapshot taken while the task may move on: "suspended" means it was
    // waiting on something not done when we looked.
    std::string state = !b->started()               ? "not started"
                        : !b->waiting_on().empty() ? "suspended"
                                                    : "running or ready";
    if (int n = b->cancelling(); n > 0) absl::StrAppendFormat(&state, ", cancelling (%d)", n);
    out += absl::StrFormat("%s [%s]\n", b->await_chain(), state);
  }
  return out;
}

void Runtime::report_error(std::string_view message) noexcept {
  absl::MutexLock lock(&error_mu_);
  if (options_.error_handler) {
    options_.error_handler(message);
  } else {
    std::fprintf(stderr, "weft: %.*s\n", static_cast<int>(message.size()), message.data());
  }
}

void Runtime::submit_external(absl::FunctionRef<void()> start) {
  detail::SpinLockHolder lock(&accept_mu_);
  if (!accepting_) {
    throw RuntimeError("the weft runtime is not running or is shutting down");
  }
  start();
}

namespace detail {
IoDriver& RuntimeAccess::io_driver(Runtime& rt) noexcept { return rt.shared().io_driver; }
void RuntimeAccess::submit_external(Runtime& rt, absl::FunctionRef<void()> start) {
  rt.submit_external(start);
}
OffloadPool& RuntimeAccess::offload_pool(Runtime& rt) { return rt.offload_pool(); }
}  // namespace detail

Coro<void> Runtime::supervise(detail::RefPtr<detail::TaskBase> main) {
  co_await detail::DoneAwaiter(detail::RefPtr<detail::FutureStateBase>(main.get()));
  {
    // From here on outside threads cannot add tasks, so the loop below ends
    // (asyncio closes the loop the same way after cancelling what is left).
    detail::SpinLockHolder lock(&accept_mu_);
    accepting_ = false;
  }
  co_await cancel_remaining_tasks();
  shared_.stop();
}

Coro<void> Runtime::cancel_remaining_tasks() {
  for (;;) {
    std::vector<AnyTask> tasks = all_tasks();
    if (tasks.empty()) co_return;
    for (AnyTask& t : tasks) t.cancel();
    for (AnyTask& t : tasks) {
      co_await detail::DoneAwaiter(detail::RefPtr<detail::FutureStateBase>(t.base()));
      if (t.cancelled()) continue;
      if (std::exception_ptr e = t.base()->exception()) {
        report_error(absl::StrFormat("unhandled exception during shutdown in %s: %s",
                                     t.base()->describe(), describe_exception(e)));
      }
    }
  }
}

void eager_task_factory(TaskSpec& spec) { spec.eager_start = true; }

void Runtime::set_task_factory(TaskFactory factory) {
  absl::MutexLock lock(&factory_mu_);
  if (!factory) {
    task_factory_.store(nullptr, std::memory_order_release);
    factory_installed_.store(false, std::memory_order_relaxed);
    return;
  }
  factories_.push_back(std::make_unique<TaskFactory>(std::move(factory)));
  task_factory_.store(factories_.back().get(), std::memory_order_release);
  factory_installed_.store(true, std::memory_order_relaxed);
}

void Runtime::apply_task_factory(detail::TaskBase* t, bool* eager) const {
  // Acquire pairs with the release in set_task_factory: the factory object
  // is fully built before it is seen.
  const TaskFactory* factory = task_factory_.load(std::memory_order_acquire);
  if (factory == nullptr) return;
  TaskSpec spec{AnyTask(t), *eager};
  (*factory)(spec);
  *eager = spec.eager_start;
}

}  // namespace weft
