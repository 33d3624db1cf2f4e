// weft::to_thread: runs a blocking or CPU-heavy call on the runtime's oneTBB
// pool and awaits its result without blocking a loop (asyncio.to_thread).
//
//   int n = co_await weft::to_thread(count_lines, path);
//
// - The call runs with a copy of the awaiting task's context variables.
// - Its result is returned, its exception rethrown in the awaiting task.
// - Cancelling the awaiting task wakes it at once with CancelledError; the
//   call itself cannot be interrupted, but if it accepts a std::stop_token
//   as its first parameter it gets one that is signalled on cancellation, so
//   long work can end early. The result of a call whose awaiter was
//   cancelled is discarded.
// - At shutdown, calls still running are not waited for; the runtime
//   reports how many were abandoned.
// - The arguments are moved into the coroutine and then into the call: pass
//   values, or pointers/references to objects that outlive the await.
#pragma once

#include <functional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "weft/core/context.h"
#include "weft/core/coro.h"
#include "weft/core/future.h"
#include "weft/sched/runtime.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace detail {

template <typename F, typename... A>
struct ToThreadCall {
  static constexpr bool kTakesStopToken = std::is_invocable_v<F&, std::stop_token, A&...>;
  using Result = std::conditional_t<kTakesStopToken,
                                    std::invoke_result<F&, std::stop_token, A&...>,
                                    std::invoke_result<F&, A&...>>::type;
};

// Submits a job to the runtime's to_thread pool (defined in to_thread.cc).
void submit_to_pool(Runtime& rt, Callback job);

}  // namespace detail

template <typename F, typename... A>
  requires(std::is_invocable_v<F&, A&...> || std::is_invocable_v<F&, std::stop_token, A&...>)
Coro<typename detail::ToThreadCall<F, A...>::Result> to_thread(F fn, A... args) {
  using Call = detail::ToThreadCall<F, A...>;
  using R = typename Call::Result;
  Loop& loop = get_running_loop();
  Future<R> result;
  std::stop_source stop;
  detail::submit_to_pool(
      loop.runtime(),
      [result, stop, context = Context::current(), fn = std::move(fn),
       args = std::make_tuple(std::move(args)...)]() mutable {
        if (result.done()) return;  // cancelled before it started
        detail::ContextData data = context.data();
        detail::ContextScope scope(&data);
        try {
          auto call = [&]() -> R {
            if constexpr (Call::kTakesStopToken) {
              return std::apply(
                  [&](auto&... a) -> R { return std::invoke(fn, stop.get_token(), a...); }, args);
            } else {
              return std::apply([&](auto&... a) -> R { return std::invoke(fn, a...); }, args);
            }
          };
          if constexpr (std::is_void_v<R>) {
            call();
            result.try_set_result();
          } else {
            result.try_set_result(call());
          }
        } catch (...) {
          // Fails only if the awaiter was cancelled meanwhile: the caller is
          // gone and asked the call to stop, so the outcome is discarded.
          result.try_set_exception(std::current_exception());
        }
      });
  try {
    co_return co_await result;
  } catch (const CancelledError&) {
    stop.request_stop();
    throw;
  }
}

}  // namespace weft
