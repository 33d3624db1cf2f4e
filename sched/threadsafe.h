// Entry points for plain threads: submitting coroutines to a running runtime
// and waiting for them (asyncio.run_coroutine_threadsafe).
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <memory>
#include <string>

#include "weft/core/coro.h"
#include "weft/core/task.h"
#include "weft/sched/concurrent_future.h"
#include "weft/sched/loop.h"
#include "weft/sched/detail/runtime_access.h"
#include "weft/sched/runtime.h"

namespace weft {
namespace detail {

// Owns the completion of a ConcurrentFuture: if the coroutine frame holding
// it is destroyed before completing it (the runtime stopped before the task
// ran), the future is cancelled instead of leaving its waiters blocked.
template <typename T>
struct ConcurrentCompleter {
  std::shared_ptr<typename ConcurrentFuture<T>::State> st;
  explicit ConcurrentCompleter(std::shared_ptr<typename ConcurrentFuture<T>::State> s)
      : st(std::move(s)) {}
  ConcurrentCompleter(ConcurrentCompleter&&) noexcept = default;
  ~ConcurrentCompleter() {
    if (st) st->complete_cancelled("the runtime stopped before the task finished");
  }
};

template <typename T>
Coro<void> complete_concurrent(Coro<T> body, ConcurrentCompleter<T> completer) {
  auto& st = completer.st;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(body);
      st->complete_value();
    } else {
      st->complete_value(co_await std::move(body));
    }
  } catch (const CancelledError& e) {
    st->complete_cancelled(e.message());
    throw;  // the task ends cancelled too
  } catch (...) {
    st->complete_exception(std::current_exception());
  }
}

template <typename T>
ConcurrentFuture<T> submit_threadsafe(Coro<T> body, Loop& loop, bool pinned) {
  if (!body.valid()) throw std::invalid_argument("run_coroutine_threadsafe: empty Coro");
  auto st = std::make_shared<typename ConcurrentFuture<T>::State>();
  st->runtime_id = loop.runtime_id();
  auto* task = TaskState<void>::make(&loop, complete_concurrent(std::move(body), ConcurrentCompleter<T>(st)), "");
  {
    SpinLockHolder lock(&st->mu);
    st->task = RefPtr<TaskBase>(task);
  }
  RefPtr<TaskBase> owned(task, kAdoptRef);  // frees it if refused
  // Refused (by the task factory, or a runtime shutting down): break the
  // state -> task -> frame -> state cycle so that dropping the task frees
  // everything.
  auto drop_task = [&] {
    SpinLockHolder lock(&st->mu);
    st->task.reset();
  };
  bool eager = false;
  try {
    loop.apply_task_factory(task, &eager);
  } catch (...) {
    // The factory's error is the future's outcome, reported there once.
    st->complete_exception(std::current_exception());
    drop_task();
    return ConcurrentFuture<T>(std::move(st));
  }
  try {
    loop.start_task_from_any_thread(task, pinned, Wake::kYield, eager);
  } catch (...) {
    drop_task();
    throw;
  }
  return ConcurrentFuture<T>(std::move(st));
}

}  // namespace detail

// Submits `body` to a running runtime from any thread; the task may run on
// any worker. RuntimeError if the runtime is not running. The runtime's task
// factory sees the task on this thread; if it throws, the returned future
// holds that exception (and nothing runs). An eager start is honoured when
// the caller is one of the runtime's workers.
template <typename T>
ConcurrentFuture<T> run_coroutine_threadsafe(Coro<T> body, Runtime& rt) {
  return detail::submit_threadsafe(std::move(body), rt.loop(0), /*pinned=*/false);
}
// Submits `body` to run on `loop` only (a pinned task).
template <typename T>
ConcurrentFuture<T> run_coroutine_threadsafe(Coro<T> body, Loop& loop) {
  return detail::submit_threadsafe(std::move(body), loop, /*pinned=*/true);
}

// Starts `body` as a task of a running runtime from any thread and returns
// nothing: the fire-and-forget form of run_coroutine_threadsafe (Tokio's
// spawn with its JoinHandle dropped; asyncio's
// `loop.call_soon_threadsafe(loop.create_task, coro)`). It allocates only
// the task and the body's frame, where run_coroutine_threadsafe adds the
// ConcurrentFuture's state and a wrapper coroutine. The task may run on any
// worker; like any task, an exception nobody retrieved is reported through
// the runtime's error handler when the task is destroyed. Everything the
// caller did before the call is visible to the task (the submission queue's
// lock orders them). RuntimeError if the runtime is not running or is
// shutting down (the coroutine is then destroyed without running). The task
// factory sees the task on this thread; what it throws propagates.
template <typename T>
void spawn_threadsafe(Coro<T> body, Runtime& rt, std::string name = {}) {
  if (!body.valid()) throw std::invalid_argument("spawn_threadsafe: empty or moved-from Coro");
  Loop& loop = rt.loop(0);
  auto* task = detail::TaskState<T>::make(&loop, std::move(body), std::move(name));
  detail::RefPtr<detail::TaskBase> owned(task, detail::kAdoptRef);  // freed if refused
  bool eager = false;  // no handle to await: it starts as usual
  loop.apply_task_factory(task, &eager);
  // Detached: with a handle released after the start, the task could end
  // first and this thread would drop its last reference (and report an
  // unretrieved exception without the runtime's handler).
  auto start = [&] { loop.start_detached(owned.leak(), /*pinned=*/false); };
  if (detail::current_loop() != nullptr && detail::current_loop()->runtime_id() == loop.runtime_id()) {
    start();
  } else {
    detail::RuntimeAccess::submit_external(rt, start);
  }
}

// Runs `fn` on `loop` soon, from any thread (asyncio call_soon_threadsafe).
inline void call_soon_threadsafe(Loop& loop, detail::Callback fn) {
  loop.call_soon_threadsafe(std::move(fn));
}

}  // namespace weft
