// detail::Worker: the scheduler's side of one Loop (Tokio's multi_thread
// worker and its core): the run queues, the timers, the epoll instance and
// eventfd, and the run loop that drives them on the worker's thread. Loop
// (sched/loop.h) is the asyncio-facing handle over it; detail::Shared
// (shared.h) is what the workers have in common.
//
// Where the code is: worker.cc (the run loop, next_task, where a woken task
// goes, stealing, fairness ticks, step-cost samples, the shutdown drop);
// park.cc (parking, polling the IO driver, the busy-peer watch, with the
// worker's half of the protocol that loses no wake-up; Idle's half is
// idle.h).
//
// Ownership and threads: the members under "owner only" are touched by the
// worker's thread alone (and, after every worker stopped, by the thread
// ending the runtime). `lifo_` is exchanged by the owner and taken by
// thieves; `queue_` is the owner's ring with a stealer side for the others;
// the remote queues are guarded by `remote_mu_`; the atomics below them are
// hints read by peers, each with its memory order where it is stored.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/task_base.h"
#include "weft/sched/clock.h"
#include "weft/sched/detail/io_handler.h"
#include "weft/sched/detail/local_queue.h"
#include "weft/sched/detail/timer_wheel.h"

namespace weft {
class Loop;
class Runtime;
class TimerHandle;
}  // namespace weft

namespace weft::detail {

class Idle;
class Shared;

class Worker {
 public:
  // An IO batch wakes a parked peer only if the tasks it queued would take
  // longer than this to run here (docs/scheduler.md, "IO batches").
  static constexpr std::int64_t kIoShareThresholdNs = 1'000'000;

  // Makes the epoll instance and the eventfd and registers the instance
  // with the shared IO driver. `loop` is the handle that owns this worker.
  Worker(Loop& loop, Runtime& rt, Shared& shared, std::uint32_t index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  std::uint32_t index() const noexcept { return index_; }
  Loop& loop() const noexcept { return loop_; }

  // The run loop: runs until the runtime stops. On the worker's thread.
  void run();
  // Writes the eventfd (any thread): a parked worker gets up.
  void wake() noexcept;
  // Queues a task made runnable on this worker's thread (the waker's local
  // queue or LIFO slot), waking a peer if there is more work than it runs.
  void push_local(TaskBase* t, Wake how);

  // At shutdown, on the thread ending the runtime after every worker
  // stopped: drops callbacks and timers / hands every task still queued
  // here (pinned, LIFO slot, ring) to `out`.
  void drain_for_shutdown();
  void take_queued_for_shutdown(std::vector<RefPtr<TaskBase>>& out);

 private:
  friend class weft::Loop;         // the handle queues callbacks, timers, pinned tasks
  friend class weft::TimerHandle;  // cancels on the owning worker's wheel

  TaskBase* next_task();
  TaskBase* search();
  void stop_searching();
  void park();
  bool has_work_anywhere() const;
  // Runs due timers and ready callbacks; true if it ran anything.
  bool run_callbacks_and_timers();
  bool run_ready_callbacks();
  void run_one_callback(Callback& cb) noexcept;
  void run_task_timed(TaskBase* t);  // debug mode
  bool coin_flip();                  // shuffle mode only
  void take_remote();                // moves remote queues into the local ones
  // Waits up to `timeout` (null: forever; zero: poll) for IO or a wake-up
  // on this worker's own epoll instance and dispatches what is ready.
  // Returns true if an IO handler ran.
  bool poll_io(const timespec* timeout);
  // The same on the runtime's shared IoDriver, whose token the caller
  // holds; releases it. Also dispatches this worker's own instance when the
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

  Loop& loop_;
  Runtime& rt_;
  Shared& shared_;
  const std::uint32_t index_;

  // Owner only.
  LocalQueue queue_;
  std::deque<TaskBase*> pinned_ready_;
  std::deque<Callback> ready_callbacks_;
  TimerWheel timers_;
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
  // The peers' progress at the last look; set by poll_io when the eventfd
  // fired (someone woke this worker).
  std::vector<std::uint64_t> peer_progress_;
  bool woken_ = false;
  // Descriptors registered through the reactor on this worker's instance
  // (a worker with watched descriptors does not let the manual clock jump).
  int io_watches_ = 0;

  // Stealable LIFO slot: exchanged by the owner, taken by thieves.
  std::atomic<TaskBase*> lifo_{nullptr};

  // Work for this worker from other threads.
  SpinLock remote_mu_;
  std::vector<TaskBase*> remote_tasks_ ABSL_GUARDED_BY(remote_mu_);
  std::vector<Callback> remote_callbacks_ ABSL_GUARDED_BY(remote_mu_);
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

  int epoll_fd_ = -1;
  int event_fd_ = -1;

  // This worker's epoll instance as seen from the shared IoDriver's set: the
  // driver's holder learns from it that this worker's own instance has events
  // (only the holder that is this worker acts on it; see poll_driver).
  class OwnEpollHandler final : public IoHandler {
   public:
    void on_io(std::uint32_t) noexcept override {}
  };
  OwnEpollHandler own_epoll_handler_;
};

}  // namespace weft::detail
