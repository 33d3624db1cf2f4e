// weft::Loop: one event loop, run by one worker thread of a Runtime.
//
// Each loop has a local run queue that other workers steal from (plus a LIFO
// slot for the task woken last), queues for work aimed at this loop in
// particular (pinned tasks, callbacks), its timers, and an epoll instance
// with an eventfd that wakes it when it sleeps. docs/scheduler.md tells the
// whole story.
//
// Thread safety: `call_soon_threadsafe`, `create_pinned_task`, `time`,
// `index` and `runtime` may be called from any thread. `call_soon`,
// `call_later` and `call_at` are loop-only, like asyncio's: calling them from
// another thread is a RuntimeError.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <time.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/task.h"
#include "weft/sched/clock.h"
#include "weft/sched/detail/io_handler.h"
#include "weft/sched/detail/local_queue.h"
#include "weft/sched/detail/timer_wheel.h"

namespace weft {

class Runtime;
class Loop;
namespace detail {
class Idle;
class Shared;
}

// A scheduled callback; `cancel()` is safe from any thread.
class TimerHandle {
 public:
  TimerHandle() = default;
  // True if the callback will now never run (false if it ran, is running,
  // or was already cancelled).
  bool cancel() noexcept;
  // cancel(), then lets go of the timer (the handle is empty after): on the
  // owning loop the handle's and the wheel's references go in one
  // decrement, for code that arms and cancels a timer around nearly every
  // operation (wait_for).
  bool cancel_and_reset() noexcept;
  bool cancelled() const noexcept { return entry_ && entry_->cancelled(); }
  TimePoint when() const noexcept { return entry_ ? entry_->deadline() : TimePoint{}; }

 private:
  friend class Loop;
  TimerHandle(detail::RefPtr<detail::TimerEntry> e, Loop* owner)
      : entry_(std::move(e)), owner_(owner) {}
  detail::RefPtr<detail::TimerEntry> entry_;
  Loop* owner_ = nullptr;  // the loop whose wheel holds the entry
};

class Loop final : public detail::LoopBase {
 public:
  // An IO batch wakes a parked peer only if the tasks it queued would take
  // longer than this to run here (docs/scheduler.md, "IO batches").
  static constexpr std::int64_t kIoShareThresholdNs = 1'000'000;

  Loop(Runtime& rt, std::uint32_t index);
  ~Loop() override;
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  Runtime& runtime() const noexcept { return rt_; }
  std::uint32_t index() const noexcept { return index_; }
  // The loop's clock reading (the runtime's clock).
  TimePoint time() const noexcept;
  bool is_current() const noexcept { return detail::current_loop() == this; }

  // asyncio call_soon: runs cb on this loop after the callbacks already
  // scheduled. Loop thread only.
  void call_soon(detail::Callback cb);
  // Any thread.
  void call_soon_threadsafe(detail::Callback cb);
  // Runs cb after `delay` (>= 0) / at `when`. Loop thread only.
  TimerHandle call_later(Duration delay, detail::Callback cb);
  TimerHandle call_at(TimePoint when, detail::Callback cb);
  // The same for a caller that has just read time(): `now` is that reading
  // (it spares a clock read).
  TimerHandle call_at(TimePoint when, detail::Callback cb, TimePoint now);

  // A task that always runs on this loop (for thread-affine code). Any thread.
  // From outside the runtime: RuntimeError once shutdown has begun.
  template <typename T>
  Task<T> create_pinned_task(Coro<T> body, std::string name = {}) {
    if (!body.valid()) throw std::invalid_argument("create_pinned_task: empty or moved-from Coro");
    auto* state = new detail::TaskState<T>(this, std::move(body), std::move(name));
    Task<T> handle = Task<T>::adopt(state);  // frees it if refused
    bool eager = false;
    apply_task_factory(state, &eager);
    start_task_from_any_thread(state, /*pinned=*/true, detail::Wake::kYield, eager);
    return handle;
  }

  // The loop's epoll instance, for the reactor (io/). Register descriptors
  // with data.ptr = a detail::IoHandler; its on_io runs on this loop's thread.
  int epoll_fd() const noexcept { return epoll_fd_; }
  // Number of descriptors registered through the reactor (a loop with
  // watched descriptors does not let the manual clock jump). Loop thread.
  void add_io_watch(int delta) noexcept { io_watches_ += delta; }

  // --- detail::LoopBase ---
  void post(detail::Callback cb) override { call_soon_threadsafe(std::move(cb)); }
  void schedule(detail::TaskBase* task, detail::Wake how) override;
  void task_finished(detail::TaskBase* task) noexcept override;
  const void* runtime_id() const noexcept override { return &rt_; }
  std::int64_t now_ns() const noexcept override { return time().time_since_epoch().count(); }
  void report_error(std::string_view message) noexcept override;

  // For the runtime and create_task: registers and schedules a new task,
  // returning it with one extra reference for the caller's handle.
  // `how` places it: kYield at the back of the queue (a new task), kNotify in
  // the LIFO slot (the caller is about to suspend on it: run it next here).
  detail::TaskBase* start_task(detail::TaskBase* t, bool pinned, bool registered,
                               detail::Wake how = detail::Wake::kYield);
  // The same without a handle: the caller's reference becomes the running
  // one. For fire-and-forget tasks: their last reference then ends on a
  // worker, so an exception nobody retrieved is reported to this runtime's
  // handler, not from the submitting thread.
  void start_detached(detail::TaskBase* t, bool pinned, bool registered = true,
                      detail::Wake how = detail::Wake::kYield);
  // Starts a task whose handle the caller already holds (registering it);
  // from outside the runtime only while it accepts submissions. `eager`:
  // on one of the runtime's workers, run its first step now, on this thread
  // (Python 3.12's eager tasks); elsewhere it starts as usual.
  void start_task_from_any_thread(detail::TaskBase* t, bool pinned,
                                  detail::Wake how = detail::Wake::kYield, bool eager = false);
  // Starts a task made on this loop's own thread (create_task), whose
  // handle the caller holds: start_task_from_any_thread without the checks.
  void start_new_task(detail::TaskBase* t, bool eager) {
    t->add_ref();  // the running reference
    if (ABSL_PREDICT_FALSE(eager)) {
      run_eagerly(t, /*pinned=*/false);
    } else {
      start_detached(t, /*pinned=*/false);
    }
  }
  // The runtime's task factory, if any, sees `t` before it starts
  // (Runtime::apply_task_factory). Inline: most runtimes have none.
  void apply_task_factory(detail::TaskBase* t, bool* eager) const {
    // Relaxed: a hint. A factory installed concurrently with this creation
    // may miss it (nothing orders the two); once the flag is seen, the slow
    // path reads the factory itself with acquire.
    if (factory_installed_->load(std::memory_order_relaxed)) apply_task_factory_slow(t, eager);
  }

 private:
  friend class Runtime;
  friend class TimerHandle;
  friend class detail::Idle;

  void run_eagerly(detail::TaskBase* t, bool pinned);
  void apply_task_factory_slow(detail::TaskBase* t, bool* eager) const;
  // The worker: runs until the runtime stops. On the worker's thread.
  void run_worker();
  detail::TaskBase* next_task();
  detail::TaskBase* search();
  void stop_searching();
  void park();
  bool has_work_anywhere() const;
  // Runs due timers and ready callbacks; true if it ran anything.
  bool run_callbacks_and_timers();
  bool run_ready_callbacks();
  void run_one_callback(detail::Callback& cb) noexcept;
  void run_task_timed(detail::TaskBase* t);  // debug mode
  void push_local(detail::TaskBase* t, detail::Wake how);
  bool coin_flip();  // shuffle mode only
  void notify_work();
  void wake() noexcept;  // writes the eventfd
  void take_remote();    // moves remote queues into the local ones
  // Waits up to `timeout` (null: forever; zero: poll) for IO or a wake-up
  // on this loop's own epoll instance and dispatches what is ready. Returns
  // true if an IO handler ran.
  bool poll_io(const timespec* timeout);
  // The same on the runtime's shared IoDriver, whose token the caller
  // holds; releases it. Also dispatches this loop's own instance when the
  // shared set reports it ready.
  bool poll_driver(const timespec* timeout);
  // After an IO batch: wakes a peer only if the tasks it queued here would
  // take longer than kIoShareThresholdNs to run locally.
  void share_io_work();
  void sample_step_cost();
  // The busy-peer check. look_at_peers compares each peer's progress with
  // the last look; wait_watching_peers is park's wait for a worker that does
  // not hold the IO driver: on its own instance until `deadline`, IO or a
  // wake-up, looking at the peers every kBusyPeerCheck while `watch`, and
  // returning early only for a stuck peer. Returns true if an IO handler ran.
  enum class PeerView { kStuck, kProgressing, kAllAsleep };
  PeerView look_at_peers();
  bool wait_watching_peers(TimePoint deadline, bool watch);
  // A parked worker whose peers all sleep stops looking at them
  // (pause_peer_watch: false if a peer turned out to be awake); every
  // worker leaving park wakes the paused ones (resume_peer_watches).
  bool pause_peer_watch();
  void resume_peer_watches();
  // At shutdown, on the thread ending the runtime after every worker
  // stopped: drops callbacks and timers / hands every task still queued
  // here (pinned, LIFO slot, ring) to `out`.
  void drain_for_shutdown();
  void take_queued_for_shutdown(std::vector<detail::RefPtr<detail::TaskBase>>& out);
  void require_loop_thread(const char* what) const;

  Runtime& rt_;
  detail::Shared& shared_;  // rt_'s: the other loops, the global queue, idle, IO driver
  const std::uint32_t index_;
  const std::atomic<bool>* const factory_installed_;  // Runtime::factory_installed_

  // Owner-only state (the worker thread).
  detail::LocalQueue queue_;
  std::deque<detail::TaskBase*> pinned_ready_;
  std::deque<detail::Callback> ready_callbacks_;
  detail::TimerWheel timers_;
  std::uint64_t tick_ = 0;
  std::uint32_t lifo_streak_ = 0;
  std::uint32_t pinned_streak_ = 0;
  bool searching_ = false;
  // Set while poll_io dispatches a batch: its wake-ups queue tasks here
  // without waking peers; share_io_work decides once for the batch.
  bool dispatching_io_ = false;
  // Estimate of one scheduling tick's cost (ns): the least of the last
  // kStepSamples samples taken by the busy polls (sample_step_cost).
  static constexpr int kStepSamples = 8;
  std::int64_t step_ns_ = 10'000;
  std::int64_t step_samples_[kStepSamples] = {10'000, 10'000, 10'000, 10'000,
                                              10'000, 10'000, 10'000, 10'000};
  int next_step_sample_ = 0;
  std::int64_t sample_ns_ = 0;
  std::uint64_t sample_tick_ = 0;
  bool parked_since_sample_ = true;
  std::uint64_t rng_;
  bool shuffle_ = false;  // seeded shuffle mode (RuntimeOptions::shuffle_seed)

  // Stealable LIFO slot: exchanged by the owner, taken by thieves.
  std::atomic<detail::TaskBase*> lifo_{nullptr};

  // Work for this loop from other threads.
  detail::SpinLock remote_mu_;
  std::vector<detail::TaskBase*> remote_tasks_ ABSL_GUARDED_BY(remote_mu_);
  std::vector<detail::Callback> remote_callbacks_ ABSL_GUARDED_BY(remote_mu_);
  // Set (seq_cst, the Dekker half for directed wake-ups) after a push; cleared
  // by the owner when it takes the queues.
  std::atomic<bool> remote_pending_{false};

  // Earliest timer, published before parking (for the manual clock's jumps).
  std::atomic<std::int64_t> parked_deadline_{INT64_MAX};
  // For the peers' busy checks (look_at_peers), a hint only (relaxed): the
  // tick of the step this worker runs, and whether it is parked (stored
  // seq_cst on unpark for pause_peer_watch's pairing).
  std::atomic<std::uint64_t> progress_{0};
  std::atomic<bool> parked_{false};
  // Parked with its busy-peer looks paused (pause_peer_watch).
  std::atomic<bool> watch_paused_{false};
  // Owner-only: the peers' progress at the last look; set by poll_io when
  // the eventfd fired (someone woke this worker).
  std::vector<std::uint64_t> peer_progress_;
  bool woken_ = false;

  int io_watches_ = 0;
  int epoll_fd_ = -1;
  int event_fd_ = -1;

  // This loop's epoll instance as seen from the shared IoDriver's set: the
  // driver's holder learns from it that this loop's own instance has events
  // (only the holder that is this loop acts on it; see poll_driver).
  class OwnEpollHandler final : public detail::IoHandler {
   public:
    void on_io(std::uint32_t) noexcept override {}
  };
  OwnEpollHandler own_epoll_handler_;
};

}  // namespace weft
