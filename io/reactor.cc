#include "weft/io/reactor.h"

#include <sys/epoll.h>

#include <stdexcept>

#include "absl/strings/str_format.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace {

constexpr std::uint32_t kReadable = EPOLLIN | EPOLLRDHUP;
constexpr std::uint32_t kWritable = EPOLLOUT;

TimePoint deadline_after(Duration timeout) {
  if (timeout.count() < 0) {
    throw std::invalid_argument(
        absl::StrFormat("wait: negative timeout (%d ns)", timeout.count()));
  }
  return get_running_loop().time() + timeout;
}

}  // namespace

bool ReadinessAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = detail::current_task_base_checked("wait_readable / wait_writable");
  Loop& loop = detail::current_io_loop("wait_readable / wait_writable");
  state_ = detail::RefPtr<detail::IoWait>(new detail::IoWait(loop, fd_, what_), detail::kAdoptRef);
  if (!state_->arm_oneshot(fd_, events_)) state_->complete();  // always ready
  return suspend(loop, h);
}

ReadinessAwaiter wait_readable(int fd) {
  return ReadinessAwaiter(fd, kReadable, "readable", std::nullopt);
}
ReadinessAwaiter wait_readable(int fd, Duration timeout) {
  return ReadinessAwaiter(fd, kReadable, "readable", deadline_after(timeout));
}
ReadinessAwaiter wait_writable(int fd) {
  return ReadinessAwaiter(fd, kWritable, "writable", std::nullopt);
}
ReadinessAwaiter wait_writable(int fd, Duration timeout) {
  return ReadinessAwaiter(fd, kWritable, "writable", deadline_after(timeout));
}

}  // namespace weft
