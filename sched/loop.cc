#include "weft/sched/loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iterator>
#include <utility>
#include <stdexcept>

#include "absl/strings/str_format.h"
#include "weft/sched/detail/idle.h"
#include "weft/sched/runtime.h"

namespace weft {
namespace {

// The worker loop running on this thread (null on other threads). Unlike
// detail::current_loop() it is set only by run_worker.
thread_local Loop* t_worker = nullptr;

// Go and Tokio check the global queue and the reactor every 61 ticks: often
// enough for fairness, rarely enough to stay off the hot path.
constexpr std::uint64_t kGlobalCheckInterval = 61;
// Consecutive runs from the LIFO slot before the ring gets a turn, so two
// tasks that wake each other cannot starve the rest.
constexpr std::uint32_t kMaxLifoStreak = 3;
// Consecutive pinned tasks before the others get a turn.
constexpr std::uint32_t kMaxPinnedStreak = 8;
// A parked worker looks at the others this often while any of them is awake,
// and gets up if one has been stuck in a single step since its last look: a
// stuck worker strands the task it woke (its LIFO slot), its queue and the
// IO it would poll, which only a thief can rescue. Go's sysmon does the same
// job.
constexpr std::chrono::milliseconds kBusyPeerCheck{10};
// With sockets, a parked worker keeps looking while every peer sleeps (the
// parked holder of the IO driver may wake and get stuck), but only for this
// many looks in a row; then it pauses its looks until a peer unparks
// (resume_peer_watches), so an idle server is not woken 100 times a second.
constexpr int kQuietLooksBeforePause = 10;

timespec to_timespec(Duration d) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

std::uint64_t next_random(std::uint64_t& s) {
  // xorshift64*: victim choice only needs to be cheap and spread out.
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1DULL;
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

// On the owning loop the wheel cancels and takes the entry out at once;
// elsewhere a CAS against the firing decides, and the loop drops the entry
// when it reaches it (no lock of the loop's is taken).
bool TimerHandle::cancel() noexcept {
  if (!entry_) return false;
  if (t_worker != nullptr && t_worker == owner_) return owner_->timers_.cancel(entry_.get(), false);
  return entry_->try_cancel();
}

bool TimerHandle::cancel_and_reset() noexcept {
  if (!entry_) return false;
  Loop* owner = std::exchange(owner_, nullptr);
  if (t_worker != nullptr && t_worker == owner) return owner->timers_.cancel(entry_.leak(), true);
  const bool cancelled = entry_->try_cancel();
  entry_.reset();
  return cancelled;
}

Loop::Loop(Runtime& rt, std::uint32_t index)
    : rt_(rt),
      index_(index),
      factory_installed_(&rt.factory_installed()),
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
  rt.io_driver().add_loop(epoll_fd_, &own_epoll_handler_);
}

Loop::~Loop() {
  drain_for_shutdown();
  if (event_fd_ >= 0) close(event_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

TimePoint Loop::time() const noexcept { return rt_.clock().now(); }

void Loop::require_loop_thread(const char* what) const {
  if (t_worker != this) {
    throw RuntimeError(absl::StrFormat(
        "%s must be called on the thread of loop %d (use call_soon_threadsafe from other "
        "threads)",
        what, index_));
  }
}

void Loop::call_soon(detail::Callback cb) {
  require_loop_thread("Loop::call_soon");
  ready_callbacks_.push_back(std::move(cb));
}

void Loop::call_soon_threadsafe(detail::Callback cb) {
  if (t_worker == this) {
    ready_callbacks_.push_back(std::move(cb));
    return;
  }
  {
    detail::SpinLockHolder lock(&remote_mu_);
    remote_callbacks_.push_back(std::move(cb));
    // seq_cst: pairs with the parked loop's recheck (see detail/idle.h).
    remote_pending_.store(true, std::memory_order_seq_cst);
  }
  if (rt_.idle().unpark_specific(this)) wake();
}

TimerHandle Loop::call_later(Duration delay, detail::Callback cb) {
  if (delay.count() < 0) {
    throw std::invalid_argument(
        absl::StrFormat("call_later: negative delay (%d ns)", delay.count()));
  }
  require_loop_thread("Loop::call_later");
  const TimePoint now = time();
  return TimerHandle(timers_.add(now + delay, now, std::move(cb)), this);
}

TimerHandle Loop::call_at(TimePoint when, detail::Callback cb) { return call_at(when, std::move(cb), time()); }

TimerHandle Loop::call_at(TimePoint when, detail::Callback cb, TimePoint now) {
  require_loop_thread("Loop::call_at");
  return TimerHandle(timers_.add(when, now, std::move(cb)), this);
}

detail::TaskBase* Loop::start_task(detail::TaskBase* t, bool pinned, bool registered,
                                   detail::Wake how) {
  t->add_ref();  // for the caller's handle; the initial one is the running reference
  start_detached(t, pinned, registered, how);
  return t;
}

void Loop::start_detached(detail::TaskBase* t, bool pinned, bool registered, detail::Wake how) {
  t->set_pinned(pinned);
  if (registered) {
    rt_.register_task(t);
  } else {
    t->registry_shard_ = UINT32_MAX;
  }
  schedule(t, how);
}

void Loop::start_task_from_any_thread(detail::TaskBase* t, bool pinned, detail::Wake how, bool eager) {
  if (t_worker != nullptr && &t_worker->rt_ == &rt_) {
    t->add_ref();  // the running reference; the caller's handle exists already
    if (eager && (!pinned || t_worker == this)) {
      run_eagerly(t, pinned);
    } else {
      start_detached(t, pinned, /*registered=*/true, how);
    }
    return;
  }
  // From outside the runtime an eager start is an ordinary one: a task's
  // steps run only on the runtime's workers.
  rt_.submit_external([&] {
    t->add_ref();
    start_detached(t, pinned);
  });
}

void Loop::apply_task_factory_slow(detail::TaskBase* t, bool* eager) const {
  rt_.apply_task_factory(t, eager);
}

void Loop::run_eagerly(detail::TaskBase* t, bool pinned) {
  t->set_pinned(pinned);
  rt_.register_task(t);
  // The first step, on this thread, nested in the caller's step. A task that
  // finishes in it is never queued; one that suspends is woken as usual.
  t->run();  // *t may be done, or running on another worker, past this point
}

void Loop::task_finished(detail::TaskBase* t) noexcept {
  if (t->registry_shard_ != UINT32_MAX) rt_.unregister_task(t);
}

void Loop::report_error(std::string_view message) noexcept { rt_.report_error(message); }

void Loop::schedule(detail::TaskBase* t, detail::Wake how) {
  Loop* cur = t_worker;
  if (t->pinned()) {
    if (cur == this) {
      pinned_ready_.push_back(t);
      return;
    }
    {
      detail::SpinLockHolder lock(&remote_mu_);
      remote_tasks_.push_back(t);
      remote_pending_.store(true, std::memory_order_seq_cst);
    }
    if (rt_.idle().unpark_specific(this)) wake();
    return;
  }
  if (cur != nullptr && &cur->rt_ == &rt_) {
    cur->push_local(t, how);
  } else {
    rt_.inject_task(t);
  }
}

bool Loop::coin_flip() { return (next_random(rng_) >> 33) & 1; }

void Loop::push_local(detail::TaskBase* t, detail::Wake how) {
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
    owner.push_back(prev, rt_.inject());
  } else {
    // The running task yielded and nothing else is queued here: this worker
    // runs it next, so waking a peer would only make it steal the task (a
    // lone yielding task would bounce between workers). Only this thread
    // pushes to the ring and the LIFO slot, so "empty" cannot become false
    // behind us (thieves only make it emptier).
    const bool alone = how == detail::Wake::kYieldCurrent && owner.is_empty() &&
                       lifo_.load(std::memory_order_relaxed) == nullptr;
    owner.push_back(t, rt_.inject());
    if (alone) return;
  }
  // There is more work here than we can run right now: let a sleeper know
  // unless someone is already looking. An IO batch decides once, at its end
  // (share_io_work).
  if (!searching_ && !dispatching_io_) rt_.notify_parked();
}

void Loop::sample_step_cost() {
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

void Loop::share_io_work() {
  if (searching_) return;
  const std::int64_t queued = static_cast<std::int64_t>(queue_.owner().size()) +
                              (lifo_.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
  if (queued < 2 || queued * step_ns_ < kIoShareThresholdNs) return;
  rt_.notify_parked();
}

void Loop::wake() noexcept {
  std::uint64_t one = 1;
  // A full counter (EAGAIN) already means "wake up".
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
}

void Loop::take_remote() {
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

void Loop::run_task_timed(detail::TaskBase* t) {
  detail::RefPtr<detail::TaskBase> keep(t);  // to name it afterwards
  TimePoint start = std::chrono::steady_clock::now();
  t->run();
  Duration took = std::chrono::steady_clock::now() - start;
  if (took > rt_.slow_callback_threshold()) {
    report_error(absl::StrFormat("slow task step: %s blocked loop %d for %.3f ms",
                                 keep->describe(), index_, took.count() / 1e6));
  }
}

void Loop::run_one_callback(detail::Callback& cb) noexcept {
  TimePoint start{};
  if (rt_.debug()) start = std::chrono::steady_clock::now();
  try {
    cb();
  } catch (const CancelledError& e) {
    report_error(absl::StrFormat("callback raised CancelledError(%s)", e.message()));
  } catch (...) {
    report_error("exception in callback: " + describe_exception(std::current_exception()));
  }
  if (rt_.debug()) {
    Duration took = std::chrono::steady_clock::now() - start;
    if (took > rt_.slow_callback_threshold()) {
      report_error(absl::StrFormat("slow callback blocked loop %d for %.3f ms", index_,
                                   took.count() / 1e6));
    }
  }
}

bool Loop::run_ready_callbacks() {
  // Only those ready now; callbacks they schedule run on the next round.
  std::size_t n = ready_callbacks_.size();
  for (std::size_t i = 0; i < n; ++i) {
    detail::Callback cb = std::move(ready_callbacks_.front());
    ready_callbacks_.pop_front();
    run_one_callback(cb);
  }
  return n > 0;
}

bool Loop::run_callbacks_and_timers() {
  bool ran = false;
  detail::IoDriver& driver = rt_.io_driver();
  const bool shared_io = driver.registrations() > 0;
  if (io_watches_ > 0 || shared_io) {
    static constexpr timespec kZero{};
    sample_step_cost();
    if (io_watches_ > 0) ran = poll_io(&kZero);
    if (shared_io && driver.try_acquire() && poll_driver(&kZero)) ran = true;
    if (ran) share_io_work();
  }
  if (timers_.size() != 0) {
    const TimePoint now = time();
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

detail::TaskBase* Loop::next_task() {
  ++tick_;
  if (tick_ % kGlobalCheckInterval == 0) {
    run_callbacks_and_timers();
    if (detail::TaskBase* t = rt_.inject().pop()) return t;
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
  if (detail::TaskBase* t = rt_.inject().pop()) return t;
  if (!pinned_ready_.empty()) {
    detail::TaskBase* t = pinned_ready_.front();
    pinned_ready_.pop_front();
    return t;
  }
  return nullptr;
}

detail::TaskBase* Loop::search() {
  if (!searching_) {
    if (!rt_.idle().transition_to_searching()) return nullptr;
    searching_ = true;
  }
  auto owner = queue_.owner();
  const std::uint32_t n = rt_.num_workers();
  // Two passes; the second also takes victims' LIFO slots (a task woken by a
  // worker that is now stuck in a long step must not wait for it).
  for (int pass = 0; pass < 2; ++pass) {
    std::uint32_t start = static_cast<std::uint32_t>(next_random(rng_) % n);
    for (std::uint32_t i = 0; i < n; ++i) {
      Loop& victim = rt_.loop((start + i) % n);
      if (&victim == this) continue;
      if (detail::TaskBase* t = victim.queue_.stealer().steal_into(owner, queue_)) return t;
      if (pass == 1 && victim.lifo_.load(std::memory_order_relaxed) != nullptr) {
        if (detail::TaskBase* t = victim.lifo_.exchange(nullptr, std::memory_order_acq_rel)) {
          return t;
        }
      }
    }
    if (detail::TaskBase* t = rt_.inject().pop()) return t;
  }
  return nullptr;
}

void Loop::stop_searching() {
  if (!searching_) return;
  searching_ = false;
  // The last searcher found work: there may be more, let another look.
  if (rt_.idle().transition_from_searching()) rt_.notify_parked();
}

Loop::PeerView Loop::look_at_peers() {
  const std::uint32_t n = rt_.num_workers();
  if (peer_progress_.size() != n) peer_progress_.assign(n, UINT64_MAX);
  PeerView view = PeerView::kAllAsleep;
  for (std::uint32_t i = 0; i < n; ++i) {
    const Loop& l = rt_.loop(i);
    if (&l == this) continue;
    const std::uint64_t p = l.progress_.load(std::memory_order_relaxed);
    if (!l.parked_.load(std::memory_order_relaxed)) {
      if (p == peer_progress_[i]) {
        view = PeerView::kStuck;
      } else if (view == PeerView::kAllAsleep) {
        view = PeerView::kProgressing;
      }
    }
    peer_progress_[i] = p;
  }
  return view;
}

bool Loop::wait_watching_peers(TimePoint deadline, bool watch) {
  // Get up only for a peer stuck in one step since the last look: its LIFO
  // slot, queue and the IO it would poll then wait for this worker. A peer
  // that makes progress gets to them itself; taking them here would cost a
  // wake-up and, on a machine shared with other processes, preempt one of
  // them (W8's p99: 4.5 ms when every look got up, 1.1-1.8 ms now).
  // Liveness does not depend on these looks (docs/scheduler.md): they only
  // bound how long a stuck worker strands work.
  Clock& clock = rt_.clock();
  if (watch) look_at_peers();  // the baseline
  int quiet_looks = 0;
  for (;;) {
    const TimePoint now = clock.now();
    const bool timed = deadline != TimePoint::max();
    if (timed && now >= deadline) return false;
    const bool look_first = watch && (!timed || deadline - now > kBusyPeerCheck);
    timespec ts{};
    if (look_first) ts = to_timespec(kBusyPeerCheck);
    else if (timed) ts = to_timespec(deadline - now);
    woken_ = false;
    const bool ran = poll_io(look_first || timed ? &ts : nullptr);
    if (ran || woken_ || !look_first || rt_.stopping()) {
      // Relaxed: a resumer that finds the flag already clear skips a
      // wake-up this worker no longer needs.
      watch_paused_.store(false, std::memory_order_relaxed);
      return ran;
    }
    switch (look_at_peers()) {
      case PeerView::kStuck:
        return false;
      case PeerView::kAllAsleep:
        // Nobody can get stuck before someone wakes us. With sockets, keep
        // looking for a while: the parked holder of the driver may leave
        // and get stuck; then pause until a peer unparks.
        if (rt_.io_driver().registrations() == 0) {
          watch = false;
        } else if (++quiet_looks >= kQuietLooksBeforePause) {
          watch = !pause_peer_watch();
          quiet_looks = 0;
        }
        break;
      case PeerView::kProgressing:
        quiet_looks = 0;
        break;
    }
  }
}

bool Loop::pause_peer_watch() {
  // Dekker pairing with resume_peer_watches (all seq_cst): either a peer's
  // unpark (its parked_ store) comes before this load of parked_ and is
  // seen here, or this store of watch_paused_ comes first and the peer's
  // load after its unpark sees it and wakes this worker.
  watch_paused_.store(true, std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < rt_.num_workers(); ++i) {
    const Loop& l = rt_.loop(i);
    if (&l != this && !l.parked_.load(std::memory_order_seq_cst)) {
      watch_paused_.store(false, std::memory_order_relaxed);
      return false;
    }
  }
  return true;
}

void Loop::resume_peer_watches() {
  for (std::uint32_t i = 0; i < rt_.num_workers(); ++i) {
    Loop& l = rt_.loop(i);
    // seq_cst: the other half of pause_peer_watch's pairing.
    if (&l != this && l.watch_paused_.load(std::memory_order_seq_cst) &&
        l.watch_paused_.exchange(false, std::memory_order_seq_cst)) {
      l.wake();
    }
  }
}

bool Loop::has_work_anywhere() const {
  if (remote_pending_.load(std::memory_order_seq_cst)) return true;
  if (!pinned_ready_.empty() || !ready_callbacks_.empty()) return true;
  if (!rt_.inject().is_empty()) return true;
  for (std::uint32_t i = 0; i < rt_.num_workers(); ++i) {
    const Loop& l = rt_.loop(i);
    if (!l.queue_.looks_empty()) return true;
    if (l.lifo_.load(std::memory_order_seq_cst) != nullptr) return true;
  }
  return false;
}

void Loop::park() {
  detail::Idle& idle = rt_.idle();
  const bool was_searching = searching_;
  searching_ = false;
  const TimePoint deadline = timers_.next_deadline();
  parked_deadline_.store(deadline.time_since_epoch().count(), std::memory_order_seq_cst);
  const std::uint32_t unparked = idle.transition_to_parked(this, was_searching);
  parked_.store(true, std::memory_order_relaxed);

  auto unpark_self = [&] {
    // seq_cst: pairs with pause_peer_watch's load (resume_peer_watches).
    parked_.store(false, std::memory_order_seq_cst);
    if (idle.transition_from_parked(this)) searching_ = true;
    parked_deadline_.store(INT64_MAX, std::memory_order_relaxed);
    resume_peer_watches();
  };
  if (has_work_anywhere() || rt_.stopping()) {
    unpark_self();
    return;
  }

  Clock& clock = rt_.clock();
  timespec ts{};
  timespec* tsp = nullptr;
  if (clock.is_manual()) {
    auto& manual = static_cast<ManualClock&>(clock);
    if (manual.autojump() && unparked == 0 && io_watches_ == 0 &&
        rt_.io_driver().registrations() == 0) {
      // Everybody sleeps: jump to the earliest timer of any loop.
      std::int64_t earliest = INT64_MAX;
      Loop* owner = nullptr;
      for (std::uint32_t i = 0; i < rt_.num_workers(); ++i) {
        Loop& l = rt_.loop(i);
        std::int64_t d = l.parked_deadline_.load(std::memory_order_seq_cst);
        if (d < earliest) {
          earliest = d;
          owner = &l;
        }
      }
      if (owner != nullptr) {
        manual.jump_to(TimePoint(Duration(earliest)));
        if (owner == this) {
          unpark_self();
          return;
        }
        if (idle.unpark_specific(owner)) owner->wake();
      }
    }
  } else if (deadline != TimePoint::max()) {
    auto left = deadline - clock.now();
    if (left.count() <= 0) {
      unpark_self();
      return;
    }
    ts = to_timespec(left);
    tsp = &ts;
  }

  // The last worker to park waits on the shared set of sockets (and on its
  // own instance, which is in that set); the others on their own instance
  // only. While a worker is awake it polls the shared set itself (every 61
  // ticks and whenever it runs dry), so a parked peer is not woken for IO
  // that the awake one is about to take anyway.
  detail::IoDriver& driver = rt_.io_driver();
  bool ran;
  if (unparked == 0 && driver.registrations() > 0 && driver.acquire_for_park()) {
    ran = poll_driver(tsp);
  } else if (clock.is_manual()) {
    ran = poll_io(tsp);  // manual time does not pass while we block
  } else {
    // Watch the peers while one is awake, or while another parked worker
    // holds the driver (it may leave to run a long step).
    ran = wait_watching_peers(deadline, unparked > 0 || driver.registrations() > 0);
  }
  unpark_self();
  parked_since_sample_ = true;
  if (ran) share_io_work();
}

bool Loop::poll_driver(const timespec* timeout) {
  static constexpr timespec kZero{};
  detail::IoDriver& driver = rt_.io_driver();
  // The shared set reports this loop's instance edge-triggered, and a former
  // holder may have taken (and ignored) the edge of events still pending
  // there: look once before blocking. Without one-shot waits only the
  // eventfd is there, and a wake-up written from now on is a new edge.
  bool ran = io_watches_ > 0 && poll_io(&kZero);
  epoll_event events[64];
  const int n = driver.poll(events, 64, ran ? &kZero : timeout);
  bool own_ready = false;
  dispatching_io_ = true;
  for (int i = 0; i < n; ++i) {
    auto* h = static_cast<detail::IoHandler*>(events[i].data.ptr);
    if (h == &own_epoll_handler_) {
      own_ready = true;
      continue;
    }
    h->on_io(events[i].events);  // a socket, or another loop's instance (no-op)
    ran = true;
  }
  dispatching_io_ = false;
  driver.release();
  if (own_ready && poll_io(&kZero)) ran = true;
  return ran;
}

bool Loop::poll_io(const timespec* timeout) {
  epoll_event events[64];
  const int n = detail::wait_epoll(epoll_fd_, events, 64, timeout);
  bool ran = false;
  dispatching_io_ = true;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == nullptr) {
      std::uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(event_fd_, &v, sizeof v);
      woken_ = true;
      continue;
    }
    static_cast<detail::IoHandler*>(events[i].data.ptr)->on_io(events[i].events);
    ran = true;
  }
  dispatching_io_ = false;
  return ran;
}

void Loop::run_worker() {
  t_worker = this;
  detail::set_current_loop(this);
  while (!rt_.stopping()) {
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
    rt_.idle().transition_from_searching();
  }
  detail::set_current_loop(nullptr);
  t_worker = nullptr;
}

void Loop::drain_for_shutdown() {
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

}  // namespace weft
