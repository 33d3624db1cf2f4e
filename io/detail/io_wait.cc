#include "weft/io/detail/io_wait.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "weft/io/address.h"
#include "weft/io/errors.h"

namespace weft::detail {
namespace {

// Drops a registration's reference and io watch when destroyed: whether the
// posted closure runs, or is destroyed unrun by a loop shutting down (on
// the thread ending the runtime, after the workers stopped).
class RegistrationRelease {
 public:
  RegistrationRelease(Loop* loop, const RefCounted* obj) : loop_(loop), obj_(obj) {}
  RegistrationRelease(RegistrationRelease&& o) noexcept
      : loop_(o.loop_), obj_(std::exchange(o.obj_, nullptr)) {}
  RegistrationRelease& operator=(RegistrationRelease&&) = delete;
  ~RegistrationRelease() {
    if (obj_ == nullptr) return;
    loop_->add_io_watch(-1);
    obj_->release();
  }
  void operator()() {}

 private:
  Loop* loop_;
  const RefCounted* obj_;
};

}  // namespace

void release_registration(Loop& loop, const RefCounted* obj) noexcept {
  if (current_loop() == &loop) {
    loop.add_io_watch(-1);
    obj->release();
    return;
  }
  try {
    loop.call_soon_threadsafe(RegistrationRelease(&loop, obj));
  } catch (...) {
    // Allocation failure: leaking the handler is the only safe choice.
  }
}

Loop& current_io_loop(const char* what) {
  LoopBase* l = current_loop();
  if (l == nullptr) {
    throw RuntimeError(std::string(what) + " must be awaited inside a weft task");
  }
  return *static_cast<Loop*>(l);
}

bool IoWait::arm_oneshot(int fd, std::uint32_t events) {
  Loop& loop = *static_cast<Loop*>(this->loop());
  epoll_event ev{};
  ev.events = events | EPOLLONESHOT;
  ev.data.ptr = static_cast<IoHandler*>(this);
  int target = fd;
  bool dup = false;
  if (epoll_ctl(loop.epoll_fd(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    if (err == EPERM) return false;  // regular file or directory: always ready
    if (err != EEXIST) throw_os_error(err, "epoll_ctl(ADD)");
    // The fd is already in this epoll set (another wait, or a Socket's
    // watch): a dup is a distinct entry for the same open file.
    target = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (target < 0) throw_errno("fcntl(F_DUPFD_CLOEXEC)");
    if (epoll_ctl(loop.epoll_fd(), EPOLL_CTL_ADD, target, &ev) != 0) {
      const int err2 = errno;
      ::close(target);
      throw_os_error(err2, "epoll_ctl(ADD)");
    }
    dup = true;
  }
  add_ref();  // the epoll entry's reference
  loop.add_io_watch(1);
  reg_loop_ = &loop;
  reg_fd_ = target;
  reg_dup_ = dup;
  return true;
}

bool IoWait::finish(Outcome o, std::exception_ptr e, std::string msg) noexcept {
  if (!try_claim()) return false;
  Loop* reg = reg_loop_;
  if (reg != nullptr) {
    // Before publishing: once the task resumes, the fd may be closed and its
    // number reused. DEL is safe from any thread (epoll has its own lock).
    epoll_ctl(reg->epoll_fd(), EPOLL_CTL_DEL, reg_fd_, nullptr);
    // Our dup is ours alone; close it only after the DEL (closing one fd of
    // a file that has others open does not remove its epoll entry).
    if (reg_dup_) ::close(reg_fd_);
  }
  if (o == Outcome::kException) {
    set_exception_outcome(std::move(e));
  } else if (o == Outcome::kCancelled) {
    set_cancelled_outcome(std::move(msg));
  }
  // Our caller holds a reference (the epoll entry's for on_io, the task's or
  // a list's otherwise), so *this survives publish.
  publish(o);
  if (reg != nullptr) release_registration(*reg, this);  // *this may be destroyed
  return true;
}

void IoWait::on_io(std::uint32_t) noexcept {
  // A false claim means a canceller on another thread won and will release
  // the registration through the loop; nothing to do.
  complete();  // *this may be destroyed
}

std::string IoWait::describe() const {
  // "socket readable on fd 7 (127.0.0.1:40312)": the peer, for a connected
  // socket (looked up now: a dump is rare, a wait is not).
  std::string out = absl::StrFormat("%s on fd %d", what_, fd_);
  SocketAddress peer;
  socklen_t len = SocketAddress::capacity();
  if (::getpeername(fd_, peer.data(), &len) == 0) {
    peer.set_size(len);
    out += " (" + peer.to_string() + ")";
  }
  return out;
}

void finish_wait(IoWait& wait, TaskBase* task) {
  std::exception_ptr e;
  const auto outcome = wait.outcome();
  if (outcome == FutureStateBase::Outcome::kException) e = wait.exception();  // marks retrieved
  if (task != nullptr) task->throw_if_cancel_requested();
  if (outcome == FutureStateBase::Outcome::kCancelled) throw CancelledError(wait.cancel_message());
  if (e) std::rethrow_exception(e);
}

bool IoWaitAwaiterBase::suspend(Loop& loop, std::coroutine_handle<> h) {
  if (deadline_) {
    timer_ = loop.call_at(*deadline_, [s = state_] {
      s->fail(std::make_exception_ptr(TimeoutError(s->describe() + " timed out")));
    });
  }
  return task_->suspend_on(*state_, *this, h);
  // If true, *this may be resumed on another thread already.
}

void IoWaitAwaiterBase::resume() {
  timer_.cancel();
  finish_wait(*state_, task_);
}

}  // namespace weft::detail
