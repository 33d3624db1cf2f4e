#include "weft/io/detail/child_reaper.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace weft::detail {
namespace {

struct Child {
  pid_t pid;
  int pidfd;  // -1: polled with WNOHANG
};

// Created once and never destroyed (its thread may be blocked in poll while
// the program exits).
class ChildReaper {
 public:
  static ChildReaper& get() {
    static ChildReaper* const r = new ChildReaper;
    return *r;
  }

  void add(pid_t pid, int pidfd) {
    {
      absl::MutexLock lock(&mu_);
      children_.push_back({pid, pidfd});
    }
    const std::uint64_t one = 1;
    // A failed write leaves the new child to the next 100 ms check.
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  int size() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(children_.size());
  }

 private:
  ChildReaper() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    std::thread([this] { run(); }).detach();
  }

  void run() {
    std::vector<pollfd> fds;
    for (;;) {
      bool any_without_pidfd = false;
      fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
      {
        absl::MutexLock lock(&mu_);
        for (const Child& c : children_) {
          if (c.pidfd >= 0) {
            fds.push_back(pollfd{c.pidfd, POLLIN, 0});
          } else {
            any_without_pidfd = true;
          }
        }
      }
      const int timeout_ms = any_without_pidfd || wake_fd_ < 0 ? 100 : -1;
      if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
        ::usleep(100'000);  // cannot happen with valid fds; do not spin
      }
      if (fds[0].revents & POLLIN) {
        std::uint64_t n;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &n, sizeof n);
      }
      reap_exited();
    }
  }

  // Reaps every listed child that has exited (a pidfd being readable means
  // exactly that; WNOHANG makes the check cheap for the others).
  void reap_exited() {
    absl::MutexLock lock(&mu_);
    for (std::size_t i = 0; i < children_.size();) {
      siginfo_t info{};
      const int rc = ::waitid(P_PID, static_cast<id_t>(children_[i].pid), &info,
                              WEXITED | WNOHANG);
      // ECHILD: somebody else reaped it (WNOHANG never sleeps, so nothing
      // else is expected; anything else keeps the child for the next round).
      if ((rc < 0 && errno == ECHILD) || (rc == 0 && info.si_pid == children_[i].pid)) {
        if (children_[i].pidfd >= 0) ::close(children_[i].pidfd);
        children_[i] = children_.back();
        children_.pop_back();
      } else {
        ++i;
      }
    }
  }

  const int wake_fd_;
  absl::Mutex mu_;
  std::vector<Child> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void reap_when_exited(pid_t pid, int pidfd) { ChildReaper::get().add(pid, pidfd); }

int abandoned_children() { return ChildReaper::get().size(); }

}  // namespace weft::detail
