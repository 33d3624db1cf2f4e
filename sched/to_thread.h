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
//   values, or pointers/references to objects that outlive the await. The
//   callable and the arguments are destroyed on the pool thread before the
//   result is handed over, so whatever they own is released when the await
//   returns (not when the call was cancelled: then they go when the call ends).
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <functional>
#include <optional>
#include <stop_token>
#include <tuple>
#include <typeinfo>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "weft/core/context.h"
#include "weft/core/coro.h"
#include "weft/core/future.h"
#include "weft/sched/runtime.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace detail {

// The call runs once, so the arguments are moved into it (A&&).
template <typename F, typename... A>
struct ToThreadCall {
  static constexpr bool kTakesStopToken = std::is_invocable_v<F&, std::stop_token, A&&...>;
};
// An alias, not a member: for an F that is not callable the substitution
// fails quietly, and the call fails on to_thread's constraint (every
// compiler, whatever order it checks them in).
template <typename F, typename... A>
using ToThreadResult =
    typename std::conditional_t<ToThreadCall<F, A...>::kTakesStopToken,
                                std::invoke_result<F&, std::stop_token, A&&...>,
                                std::invoke_result<F&, A&&...>>::type;

// Marks a pool job finished before it hands out its result, so that the
// shutdown report counts only calls whose result nobody waits for.
class OffloadTicket {
 public:
  virtual void finish() noexcept = 0;

 protected:
  ~OffloadTicket() = default;
};

// Submits a job to the runtime's to_thread pool (defined in to_thread.cc).
void submit_to_pool(Runtime& rt, absl::AnyInvocable<void(OffloadTicket&)> job);

}  // namespace detail

template <typename F, typename... A>
  requires(std::is_invocable_v<F&, A&&...> || std::is_invocable_v<F&, std::stop_token, A&&...>)
Coro<detail::ToThreadResult<F, A...>> to_thread(F fn, A... args) {
  using Call = detail::ToThreadCall<F, A...>;
  using R = detail::ToThreadResult<F, A...>;
  Loop& loop = get_running_loop();
  Future<R> result = Future<R>::labeled(loop, "to_thread", &typeid(F));
  std::stop_source stop;
  detail::submit_to_pool(
      loop.runtime(),
      [result, stop, context = Context::current(),
       work = std::optional<std::tuple<F, A...>>(std::in_place, std::move(fn),
                                                 std::move(args)...)](
          detail::OffloadTicket& ticket) mutable {
        if (result.done()) return;  // cancelled before it started
        detail::ContextData data = context.data();
        detail::ContextScope scope(&data);
        auto call = [&]() -> R {
          return std::apply(
              [&](F& f, A&... a) -> R {
                if constexpr (Call::kTakesStopToken) {
                  return std::invoke(f, stop.get_token(), std::move(a)...);
                } else {
                  return std::invoke(f, std::move(a)...);
                }
              },
              *work);
        };
        // The callable and the arguments are destroyed (work.reset()) and the
        // ticket is finished before the outcome is handed over. A failure to
        // hand it over means the awaiter was cancelled meanwhile: the caller is
        // gone and asked the call to stop, so it is discarded.
        try {
          if constexpr (std::is_void_v<R>) {
            call();
            work.reset();
            ticket.finish();
            result.try_set_result();
          } else {
            R value = call();
            work.reset();
            ticket.finish();
            result.try_set_result(std::move(value));
          }
        } catch (...) {
          work.reset();
          ticket.finish();
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
