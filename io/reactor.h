// The reactor: waiting for a file descriptor to become readable or writable
// without blocking a loop (Python's selectors / loop.add_reader, as
// awaitables).
//
//   co_await weft::wait_readable(fd);                 // any pollable fd
//   co_await weft::wait_writable(fd, 500ms);          // TimeoutError after 500 ms
//
// Design (see also weft/io/detail/io_wait.h, weft/io/detail/fd_watch.h):
//
//  - Each Loop owns an epoll instance (Loop::epoll_fd) for raw-fd waits and
//    its wake-up eventfd; the loop calls the registered handler's on_io on
//    its own thread when it is idle (blocking, with the next timer as
//    timeout) and every 61 ticks while it is busy. Sockets live in the
//    runtime's shared set instead (sched/detail/io_driver.h; docs/io.md).
//
//  - Raw fds (this header): level-triggered, one-shot, per wait. A wait
//    registers the fd with EPOLLONESHOT on the loop whose thread runs the
//    awaiting task at that moment; that loop owns the registration for the
//    wait's life, whatever worker the task resumes on next. The entry is
//    removed (EPOLL_CTL_DEL) as soon as the wait ends, before the task
//    resumes, so no state outlives the wait and the caller may close the fd
//    right after. Level semantics: a fd that is already ready completes the
//    wait at once. Regular files (which epoll refuses) count as always
//    ready. Two concurrent waits on one fd in one loop (say a reader and a
//    writer task) each get their own entry (the second on a dup of the fd).
//    Cost: two epoll_ctl calls per wait; fine for a selectors-like API.
//
//  - Sockets (weft/io/socket.h) use a persistent, edge-triggered
//    registration instead (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, made on the
//    first wait, in the runtime's shared epoll set, kept until the socket
//    is closed): no epoll_ctl per operation, which is what the hot
//    request/response paths need. Operations try the system call first
//    and wait only after EAGAIN; per-direction sequence numbers bumped by
//    each edge close the race between the EAGAIN and the wait. Any worker
//    may wait on such a socket; whichever worker polls the shared set (the
//    last to park, or an awake one between tasks) dispatches its events and
//    queues the woken tasks on its own run queue. See fd_watch.h.
//
//  - Cancellation: a wait is an ordinary weft future, so Task::cancel (from
//    any thread) cancels it: the canceller removes the epoll entry at once
//    (epoll_ctl is thread-safe) and wakes the task with CancelledError; a
//    raw-fd wait's memory is released on the owning loop's thread (posted with
//    call_soon_threadsafe when the canceller runs elsewhere), because that
//    loop may be dispatching a batch of events that names it. Handlers are
//    reference counted; the loop never touches freed memory. (A socket's
//    registration is released through the shared set's token: fd_watch.h.)
//
//  - Lifetime: a registration refers to its loop; close sockets (and let
//    waits end) before the Runtime that ran them is destroyed.
//
// Errors are OSError (weft/io/errors.h) naming the failing call.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstdint>
#include <optional>

#include "weft/io/detail/io_wait.h"
#include "weft/sched/clock.h"

namespace weft {

// Awaitable returned by wait_readable / wait_writable. Completes (returns)
// when the fd is ready for the requested direction, or has an error or a
// hang-up (the next read or write reports it). Throws CancelledError if the
// task is cancelled, TimeoutError when the deadline passes, OSError if the
// fd cannot be watched (e.g. EBADF). Must be awaited inside a weft task.
class [[nodiscard]] ReadinessAwaiter : public detail::IoWaitAwaiterBase {
 public:
  ReadinessAwaiter(int fd, std::uint32_t events, const char* what,
                   std::optional<TimePoint> deadline)
      : IoWaitAwaiterBase(deadline), fd_(fd), events_(events), what_(what) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume() { resume(); }

 private:
  int fd_;
  std::uint32_t events_;
  const char* what_;
};

// Waits until `fd` is readable (EPOLLIN; also on error or hang-up).
ReadinessAwaiter wait_readable(int fd);
// Same, raising TimeoutError if it is not readable within `timeout` (>= 0).
ReadinessAwaiter wait_readable(int fd, Duration timeout);
// Waits until `fd` is writable (EPOLLOUT; also on error or hang-up).
ReadinessAwaiter wait_writable(int fd);
ReadinessAwaiter wait_writable(int fd, Duration timeout);

}  // namespace weft
