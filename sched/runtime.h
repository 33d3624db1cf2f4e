// weft::Runtime: a set of worker threads, one Loop each, that run tasks and
// steal work from each other; and weft::run, asyncio.run's counterpart.
//
// `run(main)` makes the calling thread worker 0 for its duration and starts
// the other workers; it returns main's result (or rethrows its exception)
// after main finished and every task left over was cancelled and joined.
// A thread already running a weft loop cannot call run (RuntimeError).
//
// Thread safety: `run` may be called by one thread at a time; `loop(i)`,
// `num_workers`, `clock`, `all_tasks` and `running` from any thread.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "weft/core/coro.h"
#include "weft/core/detail/await.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/task.h"
#include "weft/sched/clock.h"
#include "weft/sched/detail/shared.h"
#include "weft/sched/loop.h"

namespace weft {

namespace detail {
struct RuntimeAccess;
}  // namespace detail
class OffloadPool;

// A task handle without its result type: what current_task() and
// all_tasks() return.
class AnyTask {
 public:
  AnyTask() = default;
  explicit AnyTask(detail::TaskBase* t) : t_(t) {}
  template <typename T>
  AnyTask(const Task<T>& t) : t_(&t.base()) {}  // NOLINT: implicit on purpose

  bool valid() const noexcept { return static_cast<bool>(t_); }
  bool done() const { return t_->done(); }
  bool cancelled() const { return t_->cancelled(); }
  bool cancel(std::string msg = {}) const { return t_->cancel(std::move(msg)); }
  int cancelling() const { return t_->cancelling(); }
  int uncancel() const { return t_->uncancel(); }
  std::string get_name() const { return t_->name(); }
  void set_name(std::string n) const { t_->set_name(std::move(n)); }
  std::uint64_t id() const { return t_->id(); }
  std::string waiting_on() const { return t_->waiting_on(); }
  detail::TaskBase* base() const noexcept { return t_.get(); }
  detail::FutureStateBase* state_base() const noexcept { return t_.get(); }
  friend bool operator==(const AnyTask& a, const AnyTask& b) { return a.t_ == b.t_; }

 private:
  detail::RefPtr<detail::TaskBase> t_;
};

// What a task factory (asyncio's loop.set_task_factory) is given: every new
// task before it starts, and how it will start. The factory may rename the
// task, ask for an eager start, record it, or throw to refuse it: the
// throw is the error of the call that made the task (create_task,
// TaskGroup::create_task, the ConcurrentFuture of run_coroutine_threadsafe),
// and the task is destroyed without ever running.
struct TaskSpec {
  AnyTask task;
  // Run the first step inside the creating call (Python 3.12's eager
  // tasks); honoured on the runtime's workers only.
  bool eager_start = false;
};
// Called from the thread that creates the task, possibly several at once:
// const, and safe to call concurrently.
using TaskFactory = absl::AnyInvocable<void(TaskSpec&) const>;
// asyncio.eager_task_factory: every task starts eagerly.
void eager_task_factory(TaskSpec& spec);

struct RuntimeOptions {
  // Worker threads (loops); 0 means one per core.
  std::uint32_t workers = 0;
  // Pin worker i to CPU i % cores.
  bool pin_threads = false;
  // Use this clock instead of the system clock (e.g. a ManualClock). Not
  // owned; must outlive the runtime.
  Clock* clock = nullptr;
  // Threads of the to_thread pool; 0 means min(32, cores + 4), asyncio's
  // default executor size.
  int to_thread_threads = 0;
  // Seeded shuffle mode for tests: when non-zero, the scheduler makes
  // random (but seed-determined per worker) choices of queue order, to flush
  // out code that relies on a lucky interleaving. The environment variable
  // WEFT_SHUFFLE_SEED overrides it; the seed in use is printed to stderr (a
  // value that is not a number is reported once and ignored).
  std::uint64_t shuffle_seed = 0;
  // For tests: how many slots each worker's local run queue uses, a power of
  // two from 4 to 256 (0: all 256). At 4, every few pushes overflow to the
  // shared queue and every steal is at its limit, so a test runs those paths
  // under the whole scheduler. std::invalid_argument for another value.
  std::uint32_t local_queue_slots = 0;
  // Debug mode: warns about task steps and callbacks that block a loop
  // longer than `slow_callback_threshold`, naming them; reports Coros
  // destroyed without ever being awaited. WEFT_DEBUG=1 (true, yes, on, in
  // any case) turns it on too; 0, false, no, off or empty leave it as set
  // here (the environment never turns it off; unlike PYTHONASYNCIODEBUG,
  // "0" does not mean on: docs/design.md); anything else is reported once
  // and ignored.
  bool debug = false;
  Duration slow_callback_threshold = std::chrono::milliseconds(100);
  // Called with every error nobody else will see (exceptions from callbacks,
  // exceptions never retrieved). Default: a line on stderr.
  absl::AnyInvocable<void(std::string_view)> error_handler;
  // The task factory in place from the start (see set_task_factory).
  TaskFactory task_factory;
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Runs `main` to completion on this runtime, using the calling thread as
  // worker 0; see the file comment.
  template <typename T>
  T run(Coro<T> main);

  std::uint32_t num_workers() const noexcept { return shared_.num_workers(); }
  // std::out_of_range for an index not below num_workers().
  Loop& loop(std::uint32_t i) const { return *shared_.loops.at(i); }
  Clock& clock() const noexcept { return *clock_; }
  std::uint64_t shuffle_seed() const noexcept { return shuffle_seed_; }
  // The slots each worker's local queue uses (RuntimeOptions::local_queue_slots).
  std::uint32_t local_queue_slots() const noexcept { return local_queue_slots_; }
  bool running() const noexcept { return running_.load(std::memory_order_acquire); }
  // Every task of this runtime that is not done (asyncio.all_tasks).
  std::vector<AnyTask> all_tasks() const;
  // One line per live task: name, id, await chain and state ("not started",
  // "suspended", "running or ready", plus ", cancelling (N)" while N
  // cancellation requests are pending). A snapshot of tasks that keep moving.
  // Any thread; safe in production (it takes the registry and task locks
  // briefly).
  std::string dump_tasks() const;
  bool debug() const noexcept { return debug_; }
  // asyncio's loop.set_task_factory: `factory` sees every task created from
  // now on (create_task, create_pinned_task, TaskGroup::create_task,
  // gather's tasks, run_coroutine_threadsafe,
  // spawn_threadsafe; not run()'s main task). Null removes it. Any thread; a
  // replaced factory stays alive until the runtime is destroyed, since a
  // task being created on another worker may still be calling it.
  void set_task_factory(TaskFactory factory);
  bool has_task_factory() const noexcept {
    return task_factory_.load(std::memory_order_acquire) != nullptr;
  }
  Duration slow_callback_threshold() const noexcept { return options_.slow_callback_threshold; }

 private:
  // The scheduler's side, not API: the loops (friends) and weft's own code
  // outside them, through detail::RuntimeAccess (sched/detail/runtime_access.h).
  // What the workers share among themselves is detail::Shared.
  friend class Loop;
  friend struct detail::RuntimeAccess;

  detail::Shared& shared() noexcept { return shared_; }
  void register_task(detail::TaskBase* t) noexcept;
  void unregister_task(detail::TaskBase* t) noexcept;
  void report_error(std::string_view message) noexcept;
  // Runs `start` (which starts a task submitted from outside the runtime)
  // only while the runtime accepts outside submissions; RuntimeError once
  // shutdown has begun. Serialised with the closing, so a submission either
  // gets in before shutdown cancels the leftovers, or is refused.
  void submit_external(absl::FunctionRef<void()> start);
  // The to_thread pool, made on first use.
  OffloadPool& offload_pool();
  // True while a task factory is installed (relaxed; see Loop).
  const std::atomic<bool>& factory_installed() const noexcept { return factory_installed_; }
  // For task creation: lets the factory, if any, see `t` (not started) and
  // choose `*eager`; rethrows what the factory throws.
  void apply_task_factory(detail::TaskBase* t, bool* eager) const;

  void begin_run();
  void end_run();
  void report_abandoned_offloads();
  // Awaits the main task, cancels and joins the rest, stops the workers.
  Coro<void> supervise(detail::RefPtr<detail::TaskBase> main);
  Coro<void> cancel_remaining_tasks();

  RuntimeOptions options_;
  std::unique_ptr<Clock> own_clock_;
  Clock* clock_;
  std::uint64_t shuffle_seed_ = 0;
  const std::uint32_t local_queue_slots_;  // checked in the constructor's first step
  bool debug_ = false;
  // The loops and what they share; the loops are made in the constructor
  // (after the options are read) and destroyed first in the destructor.
  detail::Shared shared_;
  std::vector<std::thread> threads_;
  std::atomic<bool> running_{false};

  struct alignas(64) RegistryShard {
    mutable detail::SpinLock mu;
    detail::TaskBase* head ABSL_GUARDED_BY(mu) = nullptr;
  };
  static constexpr std::uint32_t kRegistryShards = 16;
  RegistryShard registry_[kRegistryShards];

  absl::Mutex error_mu_;
  detail::SpinLock accept_mu_;
  bool accepting_ ABSL_GUARDED_BY(accept_mu_) = false;
  absl::Mutex factory_mu_;
  // Every factory installed, kept until the runtime dies; the current one
  // is published through task_factory_ (release under factory_mu_, acquire
  // on each task creation: a null load is the common, lock-free case).
  std::vector<std::unique_ptr<TaskFactory>> factories_ ABSL_GUARDED_BY(factory_mu_);
  std::atomic<const TaskFactory*> task_factory_{nullptr};
  // task_factory_ != null, for the loops' inline check (Loop::apply_task_factory).
  std::atomic<bool> factory_installed_{false};
  absl::Mutex pool_mu_;
  std::unique_ptr<OffloadPool> pool_ ABSL_GUARDED_BY(pool_mu_);
  // pool_.get() once made (stored with release under pool_mu_, read with
  // acquire): every to_thread call after the first takes no lock.
  std::atomic<OffloadPool*> pool_ptr_{nullptr};
};

// Runs `main` on a new Runtime (asyncio.run).
template <typename T>
T run(Coro<T> main, RuntimeOptions options = {}) {
  Runtime rt(std::move(options));
  return rt.run(std::move(main));
}

template <typename T>
T Runtime::run(Coro<T> main) {
  if (!main.valid()) throw std::invalid_argument("weft::run: empty Coro");
  begin_run();
  Loop& l0 = *shared_.loops[0];
  auto* main_state = detail::TaskState<T>::make(&l0, std::move(main), "main");
  Task<T> main_task = Task<T>::adopt(static_cast<detail::TaskState<T>*>(
      l0.start_task(main_state, /*pinned=*/false, /*registered=*/true)));
  auto* sup = detail::TaskState<void>::make(
      &l0, supervise(detail::RefPtr<detail::TaskBase>(main_state)), "weft-supervisor");
  l0.start_task(sup, /*pinned=*/true, /*registered=*/false)->release();
  l0.worker().run();
  end_run();
  main_task.state_base()->check_result();
  return static_cast<detail::TaskState<T>*>(main_state)->take_value();
}

}  // namespace weft
