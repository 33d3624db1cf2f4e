// Helpers for the io tests: a watchdog that bounds a test's time, pipes and
// fd-limit guards. Everything they open is closed by their destructors.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>
#include <cstdlib>

#include "gtest/gtest.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft::testing {

using namespace std::chrono_literals;

// Cancels the task that made it if it is still alive after `limit` (and
// fails the test), so a hung io test ends instead of running into Bazel's
// timeout. Make it first thing in a test body; it disarms when destroyed.
class Watchdog {
 public:
  explicit Watchdog(Duration limit, std::string what = "test")
      : timer_(call_later(limit, [t = current_task(), what = std::move(what), limit] {
          ADD_FAILURE() << what << " still running after "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()
                        << " ms: cancelling it";
          t.cancel("watchdog");
        })) {}
  ~Watchdog() { timer_.cancel(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  TimerHandle timer_;
};

// Polls `cond` every millisecond until it holds; false if it did not
// within `timeout`.
template <typename Pred>
Coro<bool> wait_until(Pred cond, Duration timeout = std::chrono::seconds(2)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= end) co_return cond();
    co_await sleep(std::chrono::milliseconds(1));
  }
  co_return true;
}

// Echoes everything `s` receives until EOF, then closes it.
inline Coro<void> echo_until_eof(Socket s) {
  char buf[4096];
  for (;;) {
    std::size_t n = co_await s.recv_into(buf);
    if (n == 0) break;
    co_await s.sendall(std::string_view(buf, n));
  }
}

// A non-blocking, close-on-exec pipe closed on destruction.
struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (r >= 0) ::close(std::exchange(r, -1));
  }
  void close_write() {
    if (w >= 0) ::close(std::exchange(w, -1));
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

// Sets RLIMIT_NOFILE's soft limit for its lifetime (clamped to the hard
// limit); restores the old one when destroyed.
class FdLimit {
 public:
  explicit FdLimit(rlim_t soft) {
    getrlimit(RLIMIT_NOFILE, &old_);
    rlimit l = old_;
    l.rlim_cur = std::min(soft, old_.rlim_max);
    setrlimit(RLIMIT_NOFILE, &l);
    getrlimit(RLIMIT_NOFILE, &now_);
  }
  ~FdLimit() { setrlimit(RLIMIT_NOFILE, &old_); }
  rlim_t soft() const { return now_.rlim_cur; }
  FdLimit(const FdLimit&) = delete;
  FdLimit& operator=(const FdLimit&) = delete;

 private:
  rlimit old_{};
  rlimit now_{};
};

// The number of open descriptors of this process.
inline int open_fd_count() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    --n;  // the directory's own fd
  }
  return n;
}

// The RLIMIT_NOFILE soft limit under which exactly `n` more descriptors can
// be opened now (the limit bounds descriptor numbers, and new descriptors
// take the lowest free numbers).
inline rlim_t nofile_limit_allowing(int n) {
  std::vector<bool> used;
  if (DIR* d = opendir("/proc/self/fd")) {
    const int self = dirfd(d);
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      int fd = std::atoi(e->d_name);
      if (fd == self) continue;
      if (fd >= static_cast<int>(used.size())) used.resize(fd + 1);
      used[fd] = true;
    }
    closedir(d);
  }
  int free_seen = 0;
  rlim_t limit = 0;
  while (free_seen < n) {
    if (limit >= used.size() || !used[limit]) ++free_seen;
    ++limit;
  }
  while (limit < used.size() && used[limit]) ++limit;
  return limit;
}

}  // namespace weft::testing
