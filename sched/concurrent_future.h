// weft::ConcurrentFuture<T>: a future for plain threads (Python's
// concurrent.futures.Future), returned by run_coroutine_threadsafe.
//
// It blocks instead of suspending. Every method may be called from any
// thread, but blocking on it from a loop of the runtime that must complete it
// could deadlock that loop, so result()/exception() called on such a loop
// raise RuntimeError (await the task instead).
//
// Visibility: everything the completing task did before finishing is visible
// to a thread once result()/exception() returned or done() returned true
// (all state is under State::mu, a SpinLock: its sections only copy fields).
// A thread that blocks does so on a Blocker (absl::Mutex + CondVar) that the
// first blocking caller creates: a future nobody blocks on, e.g. every
// fire-and-forget submission, never creates an absl::Mutex (which costs a
// global lock in Debian's Abseil build, see core/detail/spin_lock.h).
// No lost wake-up: the waiter creates or finds the Blocker and reads `done`
// under `mu`; the completer sets `done` and reads the Blocker under `mu`.
// If the waiter came first, the completer sees the Blocker and sets its flag
// under the Blocker's mutex, which the waiter checks under the same mutex.
// Done callbacks run on the thread that completes the future, or at once on
// the caller's thread if it is already done (concurrent.futures semantics).
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "weft/core/detail/spin_lock.h"
#include "absl/time/time.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/errors.h"
#include "weft/sched/clock.h"

namespace weft {

template <typename T>
class ConcurrentFuture {
 public:
  struct State;

  ConcurrentFuture() = default;
  explicit ConcurrentFuture(std::shared_ptr<State> s) : s_(std::move(s)) {}

  bool valid() const noexcept { return static_cast<bool>(s_); }
  bool done() const {
    detail::SpinLockHolder lock(&s_->mu);
    return s_->done;
  }
  bool cancelled() const {
    detail::SpinLockHolder lock(&s_->mu);
    return s_->done && s_->cancelled;
  }

  // Blocks until done; returns the value (a copy; a move-only value is
  // moved out once) or throws the task's exception / CancelledError.
  T result() const { return result_impl(std::nullopt); }
  // As result(), but TimeoutError if not done within `timeout`.
  T result(Duration timeout) const { return result_impl(timeout); }
  // Blocks until done; the exception, or null on success.
  std::exception_ptr exception(std::optional<Duration> timeout = std::nullopt) const {
    wait(timeout);
    detail::SpinLockHolder lock(&s_->mu);
    if (s_->cancelled) throw CancelledError(s_->cancel_msg);
    return s_->exception;
  }

  // Cancels the task behind the future. The future is cancelled at once
  // (result() raises CancelledError); the task receives the request at its
  // next suspension point. False if already done.
  bool cancel(std::string msg = {}) const {
    detail::RefPtr<detail::TaskBase> task;
    {
      detail::SpinLockHolder lock(&s_->mu);
      if (s_->done) return false;
      task = s_->task;
    }
    if (!s_->complete_cancelled(msg)) return false;
    if (task) task->cancel(std::move(msg));
    return true;
  }

  template <typename Fn>
  void add_done_callback(Fn fn) const {
    {
      detail::SpinLockHolder lock(&s_->mu);
      if (!s_->done) {
        s_->callbacks.emplace_back(std::move(fn));
        return;
      }
    }
    ConcurrentFuture self(s_);
    absl::AnyInvocable<void(ConcurrentFuture&)> cb(std::move(fn));
    run_callback(cb, self);
  }

  // A callback's exception is reported, never lost, and never stops the others.
  static void run_callback(absl::AnyInvocable<void(ConcurrentFuture&)>& cb,
                           ConcurrentFuture& self) noexcept {
    try {
      cb(self);
    } catch (...) {
      detail::report_error("exception in ConcurrentFuture callback: " +
                           describe_exception(std::current_exception()));
    }
  }

  // Where threads block until the future is done (see the file comment).
  struct Blocker {
    absl::Mutex mu;
    absl::CondVar cv;
    bool done ABSL_GUARDED_BY(mu) = false;
  };

  struct State : std::enable_shared_from_this<State> {
    mutable detail::SpinLock mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    bool cancelled ABSL_GUARDED_BY(mu) = false;
    bool moved ABSL_GUARDED_BY(mu) = false;
    std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value ABSL_GUARDED_BY(mu){};
    std::exception_ptr exception ABSL_GUARDED_BY(mu);
    std::string cancel_msg ABSL_GUARDED_BY(mu);
    std::vector<absl::AnyInvocable<void(ConcurrentFuture&)>> callbacks ABSL_GUARDED_BY(mu);
    // The task completing it; dropped when done. Set before the future is
    // handed out.
    detail::RefPtr<detail::TaskBase> task ABSL_GUARDED_BY(mu);
    // Made by the first thread that blocks; never replaced.
    std::unique_ptr<Blocker> blocker ABSL_GUARDED_BY(mu);
    const void* runtime_id = nullptr;  // immutable after creation

    // First completion wins; each returns false if already done.
    template <typename... V>
    bool complete_value(V&&... v) {
      return finish([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        if constexpr (!std::is_void_v<T>) value.emplace(std::forward<V>(v)...);
      });
    }
    bool complete_exception(std::exception_ptr e) {
      return finish([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { exception = std::move(e); });
    }
    bool complete_cancelled(const std::string& msg) {
      return finish([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        cancelled = true;
        cancel_msg = msg;
      });
    }

   private:
    template <typename F>
    bool finish(F&& set_fields) {
      std::vector<absl::AnyInvocable<void(ConcurrentFuture&)>> cbs;
      detail::RefPtr<detail::TaskBase> finished_task;
      Blocker* b;
      {
        detail::SpinLockHolder lock(&mu);
        if (done) return false;
        done = true;
        set_fields();
        finished_task = std::move(task);  // released outside the lock
        cbs.swap(callbacks);
        b = blocker.get();
      }
      if (b != nullptr) {
        absl::MutexLock lock(&b->mu);
        b->done = true;
        b->cv.SignalAll();
      }
      ConcurrentFuture self(this->shared_from_this());
      for (auto& cb : cbs) run_callback(cb, self);
      return true;
    }
  };


 private:
  // Blocks until done; TimeoutError after `timeout`.
  void wait(std::optional<Duration> timeout) const {
    Blocker* b;
    {
      detail::SpinLockHolder lock(&s_->mu);
      if (s_->done) return;
      if (!s_->blocker) s_->blocker = std::make_unique<Blocker>();
      b = s_->blocker.get();  // lives as long as *s_
    }
    detail::LoopBase* l = detail::current_loop();
    if (l != nullptr && l->runtime_id() == s_->runtime_id) {
      throw RuntimeError(
          "ConcurrentFuture::result() would block a loop of the runtime that must complete "
          "it; co_await the task instead");
    }
    absl::MutexLock lock(&b->mu);
    if (!timeout) {
      while (!b->done) b->cv.Wait(&b->mu);
      return;
    }
    const absl::Time deadline = absl::Now() + absl::FromChrono(*timeout);
    while (!b->done) {
      if (b->cv.WaitWithDeadline(&b->mu, deadline) && !b->done) {
        throw TimeoutError("ConcurrentFuture::result timed out");
      }
    }
  }
  T result_impl(std::optional<Duration> timeout) const {
    wait(timeout);
    detail::SpinLockHolder lock(&s_->mu);
    if (s_->cancelled) throw CancelledError(s_->cancel_msg);
    if (s_->exception) std::rethrow_exception(s_->exception);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_copy_constructible_v<T>) {
      return *s_->value;
    } else {
      if (s_->moved) throw InvalidStateError("the move-only result was already taken");
      s_->moved = true;
      return std::move(*s_->value);
    }
  }

  std::shared_ptr<State> s_;
};

}  // namespace weft
