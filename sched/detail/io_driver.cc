#include "weft/sched/detail/io_driver.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>

namespace weft::detail {

int wait_epoll(int epfd, epoll_event* events, int max, const timespec* timeout) noexcept {
  int n = epoll_pwait2(epfd, events, max, timeout, nullptr);
  if (n < 0 && errno == ENOSYS) {
    int ms = -1;
    if (timeout != nullptr) {
      const std::int64_t ns = timeout->tv_sec * 1'000'000'000LL + timeout->tv_nsec;
      ms = static_cast<int>(std::min<std::int64_t>((ns + 999'999) / 1'000'000, INT32_MAX));
    }
    n = epoll_wait(epfd, events, max, ms);
  }
  return n;
}

IoDriver::IoDriver() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

IoDriver::~IoDriver() {
  drop_pending();
  ::close(epoll_fd_);
}

void IoDriver::add(int fd, std::uint32_t events, IoHandler* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  // Before the ADD: this release is what poll's acquire pairs with.
  registrations_.fetch_add(1, std::memory_order_release);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    registrations_.fetch_sub(1, std::memory_order_relaxed);
    throw std::system_error(err, std::generic_category(), "epoll_ctl(ADD)");
  }
}

void IoDriver::add_loop(int loop_epoll_fd, IoHandler* h) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = h;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, loop_epoll_fd, &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(ADD)");
  }
}

void IoDriver::remove(int fd) noexcept { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

void IoDriver::release_handler(const RefCounted* obj) noexcept {
  if (try_acquire()) {
    registrations_.fetch_sub(1, std::memory_order_release);
    obj->release();
    release();
    return;
  }
  {
    SpinLockHolder lock(&mu_);
    pending_.push_back(obj);  // a failed allocation terminates: noexcept
    // seq_cst: with release()'s store of held_ and load of has_pending_,
    // either the holder sees this or the try_acquire below sees it gone.
    has_pending_.store(true, std::memory_order_seq_cst);
  }
  if (!held_.exchange(true, std::memory_order_seq_cst)) release();
}

void IoDriver::drop_pending() noexcept {
  std::vector<const RefCounted*> drop;
  {
    SpinLockHolder lock(&mu_);
    drop.swap(pending_);
    has_pending_.store(false, std::memory_order_relaxed);
  }
  for (const RefCounted* obj : drop) {
    registrations_.fetch_sub(1, std::memory_order_release);
    obj->release();
  }
}

bool IoDriver::acquire_for_park() noexcept {
  for (;;) {
    if (try_acquire()) {
      parked_holder_.store(true, std::memory_order_relaxed);
      return true;
    }
    if (parked_holder_.load(std::memory_order_relaxed)) return false;
    std::this_thread::yield();
  }
}

void IoDriver::release() noexcept {
  parked_holder_.store(false, std::memory_order_relaxed);
  for (;;) {
    if (has_pending_.load(std::memory_order_relaxed)) drop_pending();
    held_.store(false, std::memory_order_seq_cst);
    // A handler queued after our look: drop it now unless another thread
    // took the token (then it will).
    if (!has_pending_.load(std::memory_order_seq_cst) ||
        held_.exchange(true, std::memory_order_seq_cst)) {
      return;
    }
  }
}

}  // namespace weft::detail
