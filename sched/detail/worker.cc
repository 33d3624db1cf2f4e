// A worker (detail/worker.h): its construction, where a woken task goes
// (Loop::schedule: the pinned queue, the waker's local queue or LIFO slot,
// the global queue), picking the next task (fairness ticks, the LIFO slot's
// streak, pinned tasks, the global queue), searching and stealing, the
// step-cost samples that decide when an IO batch is shared, and what it
// drops at shutdown. Parking is in park.cc. schedule and push_local share
// this file so that the wake path stays one inlined call.
#include "weft/sched/detail/worker.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "weft/sched/detail/idle.h"
#include "weft/sched/detail/shared.h"
#include "weft/sched/detail/worker_thread.h"
#include "weft/sched/loop.h"
#include "weft/sched/runtime.h"

namespace weft {
namespace {

using detail::t_worker;

// Go and Tokio check the global queue and the reactor every 61 ticks: often
// enough for fairness, rarely enough to stay off the hot path.
constexpr std::uint64_t kGlobalCheckInterval = 61;
// Consecutive runs from the LIFO slot before the ring gets a turn, so two
// tasks that wake each other cannot starve the rest.
constexpr std::uint32_t kMaxLifoStreak = 3;
// Consecutive pinned tasks before the others get a turn.
constexpr std::uint32_t kMaxPinnedStreak = 8;

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::uint64_t next_random(std::uint64_t& s) {
  // xorshift64*: victim choice only needs to be cheap and spread out.
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1DULL;
}

}  // namespace

namespace detail {

constinit thread_local Worker* t_worker = nullptr;

Worker::Worker(Loop& loop, Runtime& rt, Shared& shared, std::uint32_t index)
    : loop_(loop),
      rt_(rt),
      shared_(shared),
      index_(index),
      queue_(rt.local_queue_slots()),
      rng_(0x9E3779B97F4A7C15ULL * (index + 1) + rt.shuffle_seed()),
      shuffle_(rt.shuffle_seed() != 0) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("epoll_create1");
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw_errno("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // null marks the wake-up eventfd
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev) != 0) throw_errno("epoll_ctl");
  shared_.io_driver.add_loop(epoll_fd_, &own_epoll_handler_);
}

Worker::~Worker() {
  drain_for_shutdown();
  if (event_fd_ >= 0) close(event_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

}  // namespace detail

void Loop::schedule(detail::TaskBase* t, detail::Wake how) {
  detail::Worker* cur = t_worker;
  if (t->pinned()) {
    if (cur == &worker_) {
      worker_.pinned_ready_.push_back(t);
      return;
    }
    {
      detail::SpinLockHolder lock(&worker_.remote_mu_);
      worker_.remote_tasks_.push_back(t);
      worker_.remote_pending_.store(true, std::memory_order_seq_cst);
    }
    shared_.idle.wake_if_parked(&worker_);
    return;
  }
  if (cur != nullptr && &cur->rt_ == &rt_) {
    cur->push_local(t, how);
  } else {
    shared_.inject_task(t);
  }
}

namespace detail {

bool Worker::coin_flip() { return (next_random(rng_) >> 33) & 1; }

void Worker::push_local(detail::TaskBase* t, detail::Wake how) {
  auto owner = queue_.owner();
  // Shuffle mode: a woken task may go to the back, a new or yielding one to
  // the front.
  if (shuffle_ && coin_flip()) {
    how = how == detail::Wake::kNotify ? detail::Wake::kYield : detail::Wake::kNotify;
  }
  if (how == detail::Wake::kNotify) {
    // seq_cst: the producer's half of the idle protocol.
    detail::TaskBase* prev = lifo_.exchange(t, std::memory_order_seq_cst);
    if (prev == nullptr) return;  // one task in hand: we will run it ourselves
    owner.push_back(prev, shared_.inject);
  } else {
    // The running task yielded and nothing else is queued here: this worker
    // runs it next, so waking a peer would only make it steal the task (a
    // lone yielding task would bounce between workers). Only this thread
    // pushes to the ring and the LIFO slot, so "empty" cannot become false
    // behind us (thieves only make it emptier).
    const bool alone = how == detail::Wake::kYieldCurrent && owner.is_empty() &&
                       lifo_.load(std::memory_order_relaxed) == nullptr;
    // A step that queues more work puts the task it woke in line first,
    // where thieves can take it. Left in the LIFO slot, it would wait for as
    // long as a worker stuck in one long step keeps creating tasks: thieves
    // take a LIFO slot only when no ring has work (search's second pass).
    if (!alone && lifo_.load(std::memory_order_relaxed) != nullptr) {
      if (detail::TaskBase* woken = lifo_.exchange(nullptr, std::memory_order_acq_rel)) {
        owner.push_back(woken, shared_.inject);
      }
    }
    owner.push_back(t, shared_.inject);
    if (alone) return;
  }
  // There is more work here than we can run right now: let a sleeper know
  // unless someone is already looking. An IO batch decides once, at its end
  // (share_io_work).
  if (!searching_ && !dispatching_io_) shared_.notify_parked();
}

void Worker::sample_step_cost() {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  const std::uint64_t ticks = tick_ - sample_tick_;
  if (ticks > 0 && !parked_since_sample_) {
    // Wall time, since a thread's CPU clock costs a system call here. An
    // interval in which the OS preempted this thread reads long, and
    // preemption only ever adds: the least of the last few samples is the
    // cost of the steps themselves, and steps that really got longer raise
    // every sample, so the estimate follows within kStepSamples polls. (A
    // running average did not: on two cores shared with wrk, preempted
    // intervals pushed it past the sharing threshold 170 times in a W9 run,
    // and the woken peer then shared the core with the first worker.)
    step_samples_[next_step_sample_] = (now - sample_ns_) / static_cast<std::int64_t>(ticks);
    next_step_sample_ = (next_step_sample_ + 1) % kStepSamples;
    step_ns_ = *std::min_element(std::begin(step_samples_), std::end(step_samples_));
  }
  sample_ns_ = now;
  sample_tick_ = tick_;
  parked_since_sample_ = false;
}

void Worker::share_io_work() {
  if (searching_) return;
  const std::int64_t queued = static_cast<std::int64_t>(queue_.owner().size()) +
                              (lifo_.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
  if (queued < 2 || queued * step_ns_ < kIoShareThresholdNs) return;
  shared_.notify_parked();
}

void Worker::take_remote() {
  std::vector<detail::TaskBase*> tasks;
  std::vector<detail::Callback> callbacks;
  {
    detail::SpinLockHolder lock(&remote_mu_);
    tasks.swap(remote_tasks_);
    callbacks.swap(remote_callbacks_);
    remote_pending_.store(false, std::memory_order_relaxed);  // under the lock
  }
  for (detail::TaskBase* t : tasks) pinned_ready_.push_back(t);
  for (auto& cb : callbacks) ready_callbacks_.push_back(std::move(cb));
}

void Worker::run_task_timed(detail::TaskBase* t) {
  detail::RefPtr<detail::TaskBase> keep(t);  // to name it afterwards
  TimePoint start = std::chrono::steady_clock::now();
  t->run();
  Duration took = std::chrono::steady_clock::now() - start;
  if (took > rt_.slow_callback_threshold()) {
    loop_.report_error(absl::StrFormat("slow task step: %s blocked loop %d for %.3f ms",
                                 keep->describe(), index_, took.count() / 1e6));
  }
}

void Worker::run_one_callback(detail::Callback& cb) noexcept {
  TimePoint start{};
  if (rt_.debug()) start = std::chrono::steady_clock::now();
  try {
    cb();
  } catch (const CancelledError& e) {
    loop_.report_error(absl::StrFormat("callback raised CancelledError(%s)", e.message()));
  } catch (...) {
    loop_.report_error("exception in callback: " + describe_exception(std::current_exception()));
  }
  if (rt_.debug()) {
    Duration took = std::chrono::steady_clock::now() - start;
    if (took > rt_.slow_callback_threshold()) {
      loop_.report_error(absl::StrFormat("slow callback blocked loop %d for %.3f ms", index_,
                                   took.count() / 1e6));
    }
  }
}

bool Worker::run_ready_callbacks() {
  // Only those ready now; callbacks they schedule run on the next round.
  std::size_t n = ready_callbacks_.size();
  for (std::size_t i = 0; i < n; ++i) {
    detail::Callback cb = std::move(ready_callbacks_.front());
    ready_callbacks_.pop_front();
    run_one_callback(cb);
  }
  return n > 0;
}

bool Worker::run_callbacks_and_timers() {
  bool ran = false;
  detail::IoDriver& driver = shared_.io_driver;
  const bool shared_io = driver.registrations() > 0;
  if (io_watches_ > 0 || shared_io) {
    static constexpr timespec kZero{};
    sample_step_cost();
    if (io_watches_ > 0) ran = poll_io(&kZero);
    if (shared_io && driver.try_acquire() && poll_driver(&kZero)) ran = true;
    if (ran) share_io_work();
  }
  if (timers_.size() != 0) {
    const TimePoint now = loop_.time();
    detail::Callback cb;
    while (timers_.pop_one_due(now, &cb)) {
      run_one_callback(cb);
      cb = nullptr;
      ran = true;
    }
  }
  if (remote_pending_.load(std::memory_order_relaxed)) take_remote();
  if (run_ready_callbacks()) ran = true;
  return ran || !pinned_ready_.empty();
}

detail::TaskBase* Worker::next_task() {
  ++tick_;
  if (tick_ % kGlobalCheckInterval == 0) {
    run_callbacks_and_timers();
    if (detail::TaskBase* t = shared_.inject.pop()) return t;
  }
  if (!ready_callbacks_.empty() || remote_pending_.load(std::memory_order_relaxed)) {
    if (remote_pending_.load(std::memory_order_relaxed)) take_remote();
    run_ready_callbacks();
  }
  // Pinned tasks take turns with the others, so a pinned task that keeps
  // yielding cannot starve the rest of its loop.
  if (!pinned_ready_.empty() && pinned_streak_ < kMaxPinnedStreak) {
    ++pinned_streak_;
    detail::TaskBase* t = pinned_ready_.front();
    pinned_ready_.pop_front();
    return t;
  }
  pinned_streak_ = 0;
  if (lifo_streak_ < kMaxLifoStreak && !(shuffle_ && coin_flip()) && lifo_.load(std::memory_order_relaxed) != nullptr) {
    if (detail::TaskBase* t = lifo_.exchange(nullptr, std::memory_order_acq_rel)) {
      ++lifo_streak_;
      return t;
    }
  }
  lifo_streak_ = 0;
  auto owner = queue_.owner();
  if (detail::TaskBase* t = owner.pop()) return t;
  if (detail::TaskBase* t = lifo_.exchange(nullptr, std::memory_order_acq_rel)) return t;
  if (detail::TaskBase* t = shared_.inject.pop()) return t;
  if (!pinned_ready_.empty()) {
    detail::TaskBase* t = pinned_ready_.front();
    pinned_ready_.pop_front();
    return t;
  }
  return nullptr;
}

detail::TaskBase* Worker::search() {
  if (!searching_) {
    if (!shared_.idle.transition_to_searching()) return nullptr;
    searching_ = true;
  }
  auto owner = queue_.owner();
  const std::uint32_t n = shared_.num_workers();
  // Two passes; the second also takes victims' LIFO slots (a task woken by a
  // worker that is now stuck in a long step must not wait for it).
  for (int pass = 0; pass < 2; ++pass) {
    std::uint32_t start = static_cast<std::uint32_t>(next_random(rng_) % n);
    for (std::uint32_t i = 0; i < n; ++i) {
      Worker& victim = shared_.loop((start + i) % n).worker_;
      if (&victim == this) continue;
      if (detail::TaskBase* t = victim.queue_.stealer().steal_into(owner, queue_)) return t;
      if (pass == 1 && victim.lifo_.load(std::memory_order_relaxed) != nullptr) {
        if (detail::TaskBase* t = victim.lifo_.exchange(nullptr, std::memory_order_acq_rel)) {
          return t;
        }
      }
    }
    if (detail::TaskBase* t = shared_.inject.pop()) return t;
  }
  return nullptr;
}

void Worker::stop_searching() {
  if (!searching_) return;
  searching_ = false;
  // The last searcher found work: there may be more, let another look.
  if (shared_.idle.transition_from_searching()) shared_.notify_parked();
}

void Worker::run() {
  t_worker = this;
  detail::set_current_loop(&loop_);
  while (!shared_.stopping()) {
    detail::TaskBase* t = next_task();
    if (t == nullptr) {
      if (run_callbacks_and_timers()) continue;
      t = search();
      if (t == nullptr) {
        park();
        continue;
      }
    }
    stop_searching();
    progress_.store(tick_, std::memory_order_relaxed);
    if (rt_.debug()) {
      run_task_timed(t);
    } else {
      t->run();
    }
  }
  if (searching_) {
    searching_ = false;
    shared_.idle.transition_from_searching();
  }
  detail::set_current_loop(nullptr);
  t_worker = nullptr;
}

void Worker::drain_for_shutdown() {
  // Runs on the thread ending the runtime, after every worker stopped.
  {
    detail::SpinLockHolder lock(&remote_mu_);
    remote_callbacks_.clear();
    for (detail::TaskBase* t : remote_tasks_) pinned_ready_.push_back(t);
    remote_tasks_.clear();
    remote_pending_.store(false, std::memory_order_relaxed);
  }
  ready_callbacks_.clear();
  timers_.clear();
}

void Worker::take_queued_for_shutdown(std::vector<detail::RefPtr<detail::TaskBase>>& out) {
  // The same thread as drain_for_shutdown; the references keep a task that
  // is also in the registry (or queued twice) alive until it is abandoned.
  for (detail::TaskBase* t : pinned_ready_) out.emplace_back(t);
  pinned_ready_.clear();
  if (detail::TaskBase* t = lifo_.exchange(nullptr, std::memory_order_acq_rel)) out.emplace_back(t);
  auto owner = queue_.owner();
  while (detail::TaskBase* t = owner.pop()) out.emplace_back(t);
}

}  // namespace detail
}  // namespace weft
