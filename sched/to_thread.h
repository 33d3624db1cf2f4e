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
//
// weft::to_thread_joined is to_thread for a call that must not outlive its
// caller (it uses memory the caller owns, or the caller must know, once it
// is cancelled, that nothing of the call still runs; Trio's run_sync without
// abandon_on_cancel). A cancelled caller still raises CancelledError, but
// only when the call is over: either the call never started and never will,
// or the caller waited, shielded, until it returned (asked to stop through
// its stop_token if it takes one). Its result is then discarded. weft::File
// rests its cancel-safety contract on it; the pipeline example uses it so
// that Ctrl-C leaves no compression running.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
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
#include "weft/sched/cancel_scope.h"
#include "weft/sched/detail/offload_ticket.h"
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

// Submits a job to the runtime's to_thread pool (defined in to_thread.cc).
void submit_to_pool(Runtime& rt, absl::AnyInvocable<void(OffloadTicket&)> job);

}  // namespace detail

namespace detail {

// A pool call's phase: kPending (submitted) moves once, to kRunning (the
// pool thread claimed it: the call runs) or to kAbandoned (the cancelled
// caller claimed it: the call never runs). Both claims are compare-exchanges
// from kPending, so exactly one wins. acq_rel: a caller whose claim fails
// sees the pool's count of the call (detail/offload_ticket.h); the call's
// effects reach the caller through the result or `returned`.
struct OffloadClaim {
  enum : int { kPending, kRunning, kAbandoned };
  std::atomic<int> phase{kPending};
  // to_thread_joined only: completed once a call that ran is over (it
  // returned or threw, its callable and arguments are destroyed and its pool
  // ticket is finished, so a runtime stopping right after does not count it
  // as still running).
  std::optional<Future<void>> returned;

  bool claim(int by) noexcept {
    int expected = kPending;
    return phase.compare_exchange_strong(expected, by, std::memory_order_acq_rel);
  }
};

inline Coro<void> wait_returned(Future<void> returned) { co_await returned; }

template <typename R>
struct Offload {
  Future<R> result;
  std::stop_source stop;
};

// Submits fn(args...) (or fn(stop_token, args...)) to the pool of the
// calling loop's runtime. The pool thread runs it only if its result is
// still awaited and it claims the call first; it completes claim->returned,
// if there is one, when the call is over.
template <typename F, typename... A>
Offload<ToThreadResult<F, A...>> start_offload(std::shared_ptr<OffloadClaim> claim, F fn,
                                               A... args) {
  using Call = ToThreadCall<F, A...>;
  using R = ToThreadResult<F, A...>;
  Loop& loop = get_running_loop();
  Offload<R> o{Future<R>::labeled(loop, "to_thread", &typeid(F)), {}};
  submit_to_pool(
      loop.runtime(),
      [result = o.result, stop = o.stop, claim = std::move(claim), context = Context::current(),
       work = std::optional<std::tuple<F, A...>>(std::in_place, std::move(fn),
                                                 std::move(args)...)](
          OffloadTicket& ticket) mutable {
        ticket.begin();  // before the claim: see detail/offload_ticket.h
        if (result.done() || !claim->claim(OffloadClaim::kRunning)) {
          return;  // cancelled before it started (the pool finishes the ticket)
        }
        // The callable and the arguments are destroyed (work.reset()) and the
        // ticket is finished before the outcome is handed over, and a joined
        // caller is released only after both.
        struct Over {
          OffloadTicket& ticket;
          std::optional<std::tuple<F, A...>>& work;
          OffloadClaim& claim;
          void operator()() noexcept {
            work.reset();
            ticket.finish();
          }
          ~Over() {
            if (claim.returned) claim.returned->try_set_result();
          }
        } over{ticket, work, *claim};
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
        // A failure to hand the outcome over means the awaiter was cancelled
        // meanwhile: the caller is gone and asked the call to stop, so it is
        // discarded.
        try {
          if constexpr (std::is_void_v<R>) {
            call();
            over();
            result.try_set_result();
          } else {
            R value = call();
            over();
            result.try_set_result(std::move(value));
          }
        } catch (...) {
          over();
          result.try_set_exception(std::current_exception());
        }
      });
  return o;
}

}  // namespace detail

template <typename F, typename... A>
  requires(std::is_invocable_v<F&, A&&...> || std::is_invocable_v<F&, std::stop_token, A&&...>)
Coro<detail::ToThreadResult<F, A...>> to_thread(F fn, A... args) {
  auto claim = std::make_shared<detail::OffloadClaim>();
  auto o = detail::start_offload(claim, std::move(fn), std::move(args)...);
  try {
    co_return co_await o.result;
  } catch (const CancelledError&) {
    o.stop.request_stop();
    claim->claim(detail::OffloadClaim::kAbandoned);  // a call not begun never runs
    throw;
  }
}

template <typename F, typename... A>
  requires(std::is_invocable_v<F&, A&&...> || std::is_invocable_v<F&, std::stop_token, A&&...>)
Coro<detail::ToThreadResult<F, A...>> to_thread_joined(F fn, A... args) {
  auto joined = std::make_shared<detail::OffloadClaim>();
  joined->returned.emplace();
  auto o = detail::start_offload(joined, std::move(fn), std::move(args)...);
  std::exception_ptr cancelled;
  try {
    co_return co_await o.result;
  } catch (const CancelledError&) {
    cancelled = std::current_exception();
  }
  o.stop.request_stop();
  if (!joined->claim(detail::OffloadClaim::kAbandoned)) {
    // The call runs or ran: wait until it is over.
    co_await shielded(detail::wait_returned(*joined->returned));
  }
  std::rethrow_exception(cancelled);
}

}  // namespace weft
