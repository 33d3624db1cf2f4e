// weft::wrap_future: a weft Future completed by a future of plain threads
// (asyncio.wrap_future), so a task awaits it without blocking its loop.
//
//   std::future<int> f = std::async(std::launch::async, work);
//   int v = co_await weft::wrap_future(std::move(f));
//
// - ConcurrentFuture<T> (run_coroutine_threadsafe's): completed through its
//   done callback, on the thread that completes the source. Cancelling the
//   returned Future (e.g. cancelling the task that awaits it) cancels the
//   source, and so the task behind it.
// - std::future<T>, std::shared_future<T>: they have no callbacks, so one
//   thread of the runtime's to_thread pool waits for the source. Cancelling
//   the returned Future detaches from the source: the waiting thread gives
//   up within kDetachPoll and drops its handle (for a future of std::async,
//   dropping the last handle waits for the call to end, as it always does).
//   The source itself cannot be cancelled.
// The outcome is copied: a value (moved for a move-only T: the source's
// result is taken), an exception, or the cancellation with its message.
// Must be called on a loop thread of a running runtime (RuntimeError
// otherwise); the returned Future belongs to that loop.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <chrono>
#include <exception>
#include <future>
#include <utility>

#include "weft/core/errors.h"
#include "weft/core/future.h"
#include "weft/sched/concurrent_future.h"
#include "weft/sched/spawn.h"
#include "weft/sched/to_thread.h"

namespace weft {
namespace detail {

inline constexpr std::chrono::milliseconds kDetachPoll{10};

// Copies the outcome of a ready source `get()` (which returns the value or
// throws) into `out`; false if `out` was done already (cancelled).
template <typename T, typename Get>
bool complete_from(const Future<T>& out, Get&& get) {
  try {
    if constexpr (std::is_void_v<T>) {
      get();
      return out.try_set_result();
    } else {
      return out.try_set_result(get());
    }
  } catch (const CancelledError& e) {
    return out.cancel(e.message());
  } catch (...) {
    return out.try_set_exception(std::current_exception());
  }
}

// Waits for a std::future or std::shared_future on the to_thread pool.
template <typename T, typename Source>
Future<T> wrap_blocking(Source source) {
  Loop& loop = get_running_loop();
  Future<T> out(loop);
  submit_to_pool(loop.runtime(), [out, source = std::move(source)](OffloadTicket& ticket) mutable {
    ticket.begin();  // a wait in progress counts as a running call until it detaches
    while (source.wait_for(kDetachPoll) != std::future_status::ready) {
      if (out.done()) return;  // cancelled: detach
    }
    ticket.finish();
    complete_from(out, [&]() -> T { return source.get(); });
  });
  return out;
}

}  // namespace detail

template <typename T>
Future<T> wrap_future(ConcurrentFuture<T> source) {
  if (!source.valid()) throw std::invalid_argument("wrap_future: empty ConcurrentFuture");
  Future<T> out;  // RuntimeError off a loop thread
  // Registered first, so that a source already done cannot complete `out`
  // before it exists. Inline: a cancellation reaches the source at once.
  out.state_base()->add_permanent_inline_callback([source](detail::FutureStateBase& s) {
    if (s.cancelled()) source.cancel(s.cancel_message());
  });
  source.add_done_callback([out](ConcurrentFuture<T>& done) {
    // done: result() returns at once, also on a loop thread.
    detail::complete_from(out, [&]() -> T { return done.result(); });
  });
  return out;
}

template <typename T>
Future<T> wrap_future(std::future<T> source) {
  if (!source.valid()) throw std::invalid_argument("wrap_future: std::future without a shared state");
  return detail::wrap_blocking<T>(std::move(source));
}

template <typename T>
Future<T> wrap_future(std::shared_future<T> source) {
  if (!source.valid()) {
    throw std::invalid_argument("wrap_future: std::shared_future without a shared state");
  }
  return detail::wrap_blocking<T>(std::move(source));
}

}  // namespace weft
