#include "weft/io/detail/fd_watch.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "weft/core/detail/weft_dcheck.h"
#include "weft/io/errors.h"
#include "weft/sched/detail/runtime_access.h"
#include "weft/sched/runtime.h"

namespace weft::detail {
namespace {

constexpr std::uint32_t kReadEvents = EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t kWriteEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;

void complete_list(IoWait* w) noexcept {
  while (w != nullptr) {
    IoWait* next = w->watch_next_;
    w->watch_next_ = nullptr;
    w->complete();
    w->release();  // the list's reference
    w = next;
  }
}

}  // namespace

bool FdWatch::is_stream() noexcept {
  if (std::optional<bool> known = known_stream()) return *known;
  int type = 0;
  socklen_t len = sizeof type;
  // Not a socket, or closed: no hint (the receive reports the error).
  const bool stream = getsockopt(fd_, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
  set_stream(stream);
  return stream;
}

void FdWatch::register_locked(Loop& loop) {
  WEFT_DCHECK(driver_ == nullptr && !closed_);  // registered once, while open
  detail::IoDriver& driver = RuntimeAccess::io_driver(loop.runtime());
  try {
    driver.add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, static_cast<IoHandler*>(this));
  } catch (const std::system_error& e) {
    throw_os_error(e.code().value(), "epoll_ctl(ADD)");
  }
  add_ref();  // the epoll entry's reference
  driver_ = &driver;
  runtime_id_ = loop.runtime_id();
}

bool FdWatch::enqueue(Dir d, IoWait* w, std::uint64_t observed, Loop& loop, bool* closed) {
  detail::SpinLockHolder lock(&mu_);
  if (closed_) {
    *closed = true;
    return false;
  }
  if (seq_[d].load(std::memory_order_relaxed) != observed) return false;  // under mu_
  if (driver_ == nullptr) {
    register_locked(loop);
  } else if (runtime_id_ != loop.runtime_id()) {
    throw RuntimeError("a socket is bound to the runtime that first waited on it");
  }
  WEFT_DCHECK(w->watch_next_ == nullptr && waiters_[d] != w);  // listed at most once
  w->add_ref();
  w->watch_next_ = waiters_[d];
  waiters_[d] = w;
  return true;
}

void FdWatch::remove(Dir d, IoWait* w) {
  detail::SpinLockHolder lock(&mu_);
  for (IoWait** p = &waiters_[d]; *p != nullptr; p = &(*p)->watch_next_) {
    if (*p == w) {
      *p = w->watch_next_;
      w->watch_next_ = nullptr;
      w->release();  // the list's; the caller holds another
      return;
    }
  }
}

bool FdWatch::closed() const {
  detail::SpinLockHolder lock(&mu_);
  return closed_;
}

void FdWatch::on_io(std::uint32_t events) noexcept {
  IoWait* ready[2] = {nullptr, nullptr};
  {
    detail::SpinLockHolder lock(&mu_);
    if (events & kReadEvents) {
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        read_hup_.store(true, std::memory_order_relaxed);  // published by the increment
      }
      seq_[kRead].fetch_add(1, std::memory_order_release);
      ready[kRead] = std::exchange(waiters_[kRead], nullptr);
    }
    if (events & kWriteEvents) {
      seq_[kWrite].fetch_add(1, std::memory_order_release);
      ready[kWrite] = std::exchange(waiters_[kWrite], nullptr);
    }
  }
  // Outside the lock: completing wakes tasks, which may immediately (on
  // another worker) take mu_ again.
  complete_list(ready[kRead]);
  complete_list(ready[kWrite]);
}

void FdWatch::close() noexcept {
  IoDriver* driver;
  IoWait* lists[2];
  {
    detail::SpinLockHolder lock(&mu_);
    if (closed_) return;
    closed_ = true;
    driver = driver_;
    lists[0] = std::exchange(waiters_[0], nullptr);
    lists[1] = std::exchange(waiters_[1], nullptr);
    // Wake anyone who read a sequence number before the close.
    seq_[kRead].fetch_add(1, std::memory_order_release);
    seq_[kWrite].fetch_add(1, std::memory_order_release);
  }
  if (driver != nullptr) driver->remove(fd_);
  for (IoWait* w : lists) {
    while (w != nullptr) {
      IoWait* next = w->watch_next_;
      w->watch_next_ = nullptr;
      w->fail(std::make_exception_ptr(OSError(EBADF, "wait", "the socket was closed")));
      w->release();
      w = next;
    }
  }
  // The caller holds a reference, so *this survives this call.
  if (driver != nullptr) driver->release_handler(this);
}

bool FdWatch::Awaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = current_task_base_checked("a socket operation");
  Loop& loop = current_io_loop("a socket operation");
  state_ = RefPtr<IoWait>(
      new IoWait(loop, watch_->fd(), dir_ == kRead ? "socket readable" : "socket writable"),
      kAdoptRef);
  bool closed = false;
  if (!watch_->enqueue(dir_, state_.get(), observed_, loop, &closed)) {
    if (!closed) {
      state_.reset();  // the edge already happened: no wait, no cancellation point
      return false;
    }
    state_->fail(std::make_exception_ptr(OSError(EBADF, "wait", "the socket is closed")));
  }
  return suspend(loop, h);
}

void FdWatch::Awaiter::await_resume() {
  if (!state_) return;
  watch_->remove(dir_, state_.get());
  resume();
}

}  // namespace weft::detail
