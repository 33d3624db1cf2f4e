// FdWatch: the persistent, edge-triggered epoll registration behind a
// Socket (see weft/io/reactor.h for why sockets use it).
//
// Protocol (the "readiness sequence" of Tokio's ScheduledIo, simplified):
//  - `seq_[d]` counts the edges seen for direction d (read, write). An
//    operation loads it BEFORE trying its system call; after EAGAIN it waits
//    for `seq_[d] != observed`. on_io bumps the counters and takes the
//    waiter lists under `mu_`, and a waiter checks the counter and enqueues
//    itself under `mu_`, so an edge that arrives after the failed call is
//    either seen by the check or wakes the waiter: no lost wake-up. A stale
//    counter only costs one more (EAGAIN) try.
//  - Registration is lazy: the first wait adds the fd to the runtime's
//    shared epoll set (sched/detail/io_driver.h; ADD reports the current
//    readiness, so nothing is missed). It stays there until close(). Any
//    thread may wait afterwards.
//  - on_io runs on whichever worker holds the driver token; it wakes every
//    waiter of a direction (they retry; the losers wait again), queueing
//    their tasks on that worker.
//  - close() (any thread; before the fd is closed): marks the watch closed,
//    removes the epoll entry (EPOLL_CTL_DEL, thread-safe), fails the waiters
//    with OSError(EBADF), and hands the epoll entry's reference to
//    IoDriver::release_handler, which drops it when no event batch can name
//    this watch any more.
//
// Invariants (under mu_): `closed_` never goes back to false; waiters are
//   pending or done IoWaits (a cancelled one stays listed until its task
//   resumes and removes it); each listed IoWait holds one reference owned by
//   the list; `driver_` and `runtime_id_` are set once.
// Memory order: `seq_` is incremented under mu_ (release) and read without
//   it (acquire) as a hint only; every decision is re-checked under mu_.
//
// The drained hint (Tokio's "a partial read clears readiness"): a receive
// on a stream socket that returned fewer bytes than asked emptied the
// socket's queue, so the next receive may skip its system call (it would
// fail with EAGAIN) and wait for the next read edge at once. It is keyed by
// the read sequence loaded before that receive: any byte that arrived after
// the queue emptied makes an edge, hence a later sequence, so a hint that
// still matches the sequence is true. An end of stream or error (RDHUP,
// HUP, ERR) is sticky instead (`read_hup_`): after it the hint is ignored,
// since the bytes or the EOF it announced may have been reported by an edge
// older than the hint. Relaxed: `read_hup_` is stored before the release
// increment of `seq_[kRead]`, so a reader whose acquire load of the sequence
// sees that increment sees the flag; a reader that loads the older value
// waits for exactly that increment.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/io/detail/io_wait.h"
#include "weft/sched/detail/io_driver.h"
#include "weft/sched/detail/io_handler.h"
#include "weft/sched/loop.h"

namespace weft::detail {

class FdWatch final : public RefCounted, public IoHandler {
 public:
  enum Dir : int { kRead = 0, kWrite = 1 };

  explicit FdWatch(int fd) : fd_(fd) {}

  int fd() const noexcept { return fd_; }
  // The edge count of `d`; load it before the system call that may fail
  // with EAGAIN.
  std::uint64_t seq(Dir d) const noexcept { return seq_[d].load(std::memory_order_acquire); }

  // The drained hint (file comment). `observed` is the read sequence loaded
  // before the receive; only for receives on a stream socket without flags.
  void note_read_drained(std::uint64_t observed) noexcept {
    read_drained_.store(observed + 1, std::memory_order_relaxed);
  }
  bool read_drained(std::uint64_t observed) const noexcept {
    return read_drained_.load(std::memory_order_relaxed) == observed + 1 &&
           !read_hup_.load(std::memory_order_relaxed);
  }
  // Whether the fd is a SOCK_STREAM socket (a partial receive empties it;
  // not so for datagrams or SOCK_SEQPACKET records). Known from the
  // creator, or asked of the kernel once.
  void set_stream(bool stream) noexcept {
    stream_.store(stream ? 1 : 0, std::memory_order_relaxed);
  }
  std::optional<bool> known_stream() const noexcept {
    const std::int8_t s = stream_.load(std::memory_order_relaxed);
    return s < 0 ? std::nullopt : std::optional<bool>(s == 1);
  }
  bool is_stream() noexcept;

  class [[nodiscard]] Awaiter : public IoWaitAwaiterBase {
   public:
    Awaiter(FdWatch& w, Dir d, std::uint64_t observed, std::optional<TimePoint> deadline)
        : IoWaitAwaiterBase(deadline), watch_(&w), dir_(d), observed_(observed) {}
    bool await_ready() const noexcept { return watch_->seq(dir_) != observed_; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume();

   private:
    RefPtr<FdWatch> watch_;
    Dir dir_;
    std::uint64_t observed_;
  };

  // Waits until an edge of `d` newer than `observed`, the deadline
  // (TimeoutError) or close() (OSError EBADF). Returns at once, without a
  // cancellation point, if the edge already happened.
  Awaiter wait(Dir d, std::uint64_t observed, std::optional<TimePoint> deadline = std::nullopt) {
    return Awaiter(*this, d, observed, deadline);
  }

  // See the file comment. Idempotent.
  void close() noexcept;
  bool closed() const;

  void on_io(std::uint32_t events) noexcept override;

 private:
  ~FdWatch() override = default;
  // Enqueues `w` (taking a reference) unless the edge already happened or
  // the watch is closed; registers with `loop` first if needed. Returns
  // false if the caller must not wait; sets *closed if it was closed.
  bool enqueue(Dir d, IoWait* w, std::uint64_t observed, Loop& loop, bool* closed);
  void remove(Dir d, IoWait* w);
  void register_locked(Loop& loop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int fd_;
  std::atomic<std::uint64_t> seq_[2] = {0, 0};
  // The drained hint: 1 + the read sequence of the last partial receive.
  std::atomic<std::uint64_t> read_drained_{0};
  std::atomic<bool> read_hup_{false};
  std::atomic<std::int8_t> stream_{-1};  // -1: not known yet
  mutable detail::SpinLock mu_;
  // The runtime's shared poller, set by the first wait (register_locked).
  IoDriver* driver_ ABSL_GUARDED_BY(mu_) = nullptr;
  const void* runtime_id_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  IoWait* waiters_[2] ABSL_GUARDED_BY(mu_) = {nullptr, nullptr};
};

}  // namespace weft::detail
