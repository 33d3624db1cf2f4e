// IoDriver: the runtime's shared epoll instance for persistent registrations
// (sockets: io/detail/fd_watch.h), polled by one worker at a time.
//
// Why shared: with a registration per loop, every worker slept in its own
// epoll set and was woken by its own sockets, so a server with two workers
// took twice the wake-ups in batches half the size (W8: 0.4 context switches
// per echoed message, against 0.05 on one worker). Here, like Tokio's IO
// driver, one parked worker (the holder of the driver token) waits on the
// shared set and the others sleep until there is work to share
// (Loop::share_io_work). Each loop keeps its own epoll instance for its
// wake-up eventfd and for one-shot raw-fd waits (io/reactor.h); every loop's
// instance is itself registered here, edge-triggered, so the holder also
// wakes for its own loop's events.
//
// The token: `try_acquire` / `release`. Only the holder calls `poll`, and it
// dispatches the batch before releasing, so a batch naming a handler exists
// only under the token.
//
// Handler lifetime: a handler removed with `remove` may still be named by a
// batch the holder is dispatching. `release_handler` therefore drops the
// registration's reference under the token: at once if the token is free,
// else by the holder when it releases the token (the pending list). The
// runtime's destructor drops what is left.
//
// Thread safety: everything may be called from any thread. Memory order:
// the token is an acquire/release flag, so a releasing holder's dispatch
// happens before the next holder's; the pending list is under `mu_`; a
// handler is published to the holders by add()'s release increment of
// `registrations_` (made before the ADD) and poll()'s acquire load of it.
#pragma once

#include <sys/epoll.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/sched/detail/io_handler.h"

namespace weft::detail {

// epoll_pwait2 (nanosecond timeout; null: forever), falling back to
// epoll_wait on kernels without it. Returns what they return.
int wait_epoll(int epfd, epoll_event* events, int max,
               const timespec* timeout) noexcept;

class IoDriver {
 public:
  IoDriver();
  ~IoDriver();
  IoDriver(const IoDriver&) = delete;
  IoDriver& operator=(const IoDriver&) = delete;

  int epoll_fd() const noexcept { return epoll_fd_; }

  // Registers `fd` with `events` and data.ptr = `h`. Throws OSError-like
  // std::system_error naming epoll_ctl on failure. Counts one registration.
  void add(int fd, std::uint32_t events, IoHandler* h);
  // Registers a loop's own epoll instance (edge-triggered, not counted).
  void add_loop(int loop_epoll_fd, IoHandler* h);
  // Removes `fd` (no-op if it is not registered, e.g. already closed).
  void remove(int fd) noexcept;
  // Drops `obj`'s registration reference once no batch can name it, and
  // uncounts the registration (see the file comment).
  void release_handler(const RefCounted* obj) noexcept;
  // Registrations not yet released (the manual clock does not jump while a
  // descriptor is watched).
  int registrations() const noexcept { return registrations_.load(std::memory_order_acquire); }

  bool try_acquire() noexcept {
    return !held_.load(std::memory_order_relaxed) &&
           !held_.exchange(true, std::memory_order_acquire);
  }
  // For a worker about to block on the shared set: takes the token unless a
  // parked worker holds it (then that one watches the set). Waits out a
  // brief holder (release_handler, a busy worker's poll).
  // `parked_holder_` is a relaxed hint, and a false answer is safe even
  // when stale (the holder has just released): that holder is a worker
  // leaving park, which either parks again as the last one and takes the
  // token, or stays awake and polls the set itself every 61 ticks; and the
  // caller, not holding the token, keeps the busy-peer check.
  bool acquire_for_park() noexcept;
  // Drops the pending handlers, then the token.
  void release() noexcept;

  // Holder only: waits on the shared set (null timeout: forever).
  int poll(epoll_event* events, int max, const timespec* timeout) noexcept {
    const int n = wait_epoll(epoll_fd_, events, max, timeout);
    // A handler registered on another thread is dispatched here: the kernel
    // orders its ADD before the event, but in C++ terms (and TSan's) it is
    // this acquire, pairing with add()'s release increment made before the
    // ADD, that orders the handler's construction before its on_io.
    if (n > 0) registrations_.load(std::memory_order_acquire);
    return n;
  }

 private:
  void drop_pending() noexcept;

  int epoll_fd_ = -1;
  std::atomic<bool> held_{false};
  // Set by a parking holder while it holds the token (acquire_for_park).
  std::atomic<bool> parked_holder_{false};
  std::atomic<int> registrations_{0};
  SpinLock mu_;
  std::vector<const RefCounted*> pending_ ABSL_GUARDED_BY(mu_);
  // Set under mu_ when pending_ is non-empty, so release() skips the lock
  // when there is nothing to drop.
  std::atomic<bool> has_pending_{false};
};

}  // namespace weft::detail
