// Parking (detail/worker.h): how a worker with nothing to do goes to sleep and
// what wakes it: its eventfd, its timers, IO on its own epoll instance or on
// the shared IO driver, and the busy-peer watch that gets it up when a peer
// is stuck in one step. The sleeping state and the protocol that loses no
// wake-up are Idle's (detail/idle.h); this file is the worker's side of it.
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "weft/sched/detail/idle.h"
#include "weft/sched/detail/shared.h"
#include "weft/sched/detail/io_driver.h"
#include "weft/sched/detail/worker.h"
#include "weft/sched/loop.h"
#include "weft/sched/runtime.h"

namespace weft {
namespace {

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

}  // namespace

namespace detail {

void Worker::wake() noexcept {
  std::uint64_t one = 1;
  // A full counter (EAGAIN) already means "wake up".
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
}

Worker::PeerView Worker::look_at_peers() {
  const std::uint32_t n = shared_.num_workers();
  if (peer_progress_.size() != n) peer_progress_.assign(n, UINT64_MAX);
  PeerView view = PeerView::kAllAsleep;
  for (std::uint32_t i = 0; i < n; ++i) {
    const Worker& l = shared_.loop(i).worker_;
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

bool Worker::wait_watching_peers(TimePoint deadline, bool watch) {
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
    if (ran || woken_ || !look_first || shared_.stopping()) {
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
        if (shared_.io_driver.registrations() == 0) {
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

bool Worker::pause_peer_watch() {
  // Dekker pairing with resume_peer_watches (all seq_cst): either a peer's
  // unpark (its parked_ store) comes before this load of parked_ and is
  // seen here, or this store of watch_paused_ comes first and the peer's
  // load after its unpark sees it and wakes this worker.
  watch_paused_.store(true, std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < shared_.num_workers(); ++i) {
    const Worker& l = shared_.loop(i).worker_;
    if (&l != this && !l.parked_.load(std::memory_order_seq_cst)) {
      watch_paused_.store(false, std::memory_order_relaxed);
      return false;
    }
  }
  return true;
}

void Worker::resume_peer_watches() {
  for (std::uint32_t i = 0; i < shared_.num_workers(); ++i) {
    Worker& l = shared_.loop(i).worker_;
    // seq_cst: the other half of pause_peer_watch's pairing.
    if (&l != this && l.watch_paused_.load(std::memory_order_seq_cst) &&
        l.watch_paused_.exchange(false, std::memory_order_seq_cst)) {
      l.wake();
    }
  }
}

bool Worker::has_work_anywhere() const {
  if (remote_pending_.load(std::memory_order_seq_cst)) return true;
  if (!pinned_ready_.empty() || !ready_callbacks_.empty()) return true;
  if (!shared_.inject.is_empty()) return true;
  for (std::uint32_t i = 0; i < shared_.num_workers(); ++i) {
    const Worker& l = shared_.loop(i).worker_;
    if (!l.queue_.looks_empty()) return true;
    if (l.lifo_.load(std::memory_order_seq_cst) != nullptr) return true;
  }
  return false;
}

void Worker::park() {
  detail::Idle& idle = shared_.idle;
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
  if (has_work_anywhere() || shared_.stopping()) {
    unpark_self();
    return;
  }

  Clock& clock = rt_.clock();
  timespec ts{};
  timespec* tsp = nullptr;
  if (clock.is_manual()) {
    auto& manual = static_cast<ManualClock&>(clock);
    if (manual.autojump() && unparked == 0 && io_watches_ == 0 &&
        shared_.io_driver.registrations() == 0) {
      // Everybody sleeps: jump to the earliest timer of any loop.
      std::int64_t earliest = INT64_MAX;
      Worker* owner = nullptr;
      for (std::uint32_t i = 0; i < shared_.num_workers(); ++i) {
        Worker& l = shared_.loop(i).worker_;
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
        idle.wake_if_parked(owner);
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
  detail::IoDriver& driver = shared_.io_driver;
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

bool Worker::poll_driver(const timespec* timeout) {
  static constexpr timespec kZero{};
  detail::IoDriver& driver = shared_.io_driver;
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

bool Worker::poll_io(const timespec* timeout) {
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

}  // namespace detail
}  // namespace weft
