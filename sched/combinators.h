// asyncio's combinators: gather, wait, wait_for, shield, as_completed.
//
// Awaitables given to them may be Coro<T> (wrapped in a new task, as asyncio
// does with coroutines), Task<T> or Future<T>. Semantics follow Python 3.12;
// docs/structured_concurrency.md lists where threads made us choose.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_format.h"
#include "weft/core/coro.h"
#include "weft/core/detail/await.h"
#include "weft/core/future.h"
#include "weft/core/task.h"
#include "weft/sched/cancel_scope.h"
#include "weft/sched/detail/wait_set.h"
#include "weft/sched/result.h"
#include "weft/sched/spawn.h"

namespace weft {

enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };

// Tag for gather(return_exceptions, ...).
struct ReturnExceptions {};
inline constexpr ReturnExceptions return_exceptions{};

namespace detail {

template <typename A>
struct AwaitableTraits;
template <typename T>
struct AwaitableTraits<Coro<T>> {
  using value = T;
  using future = Task<T>;
  static Task<T> to_future(Coro<T> c) { return create_task(std::move(c)); }
};
template <typename T>
struct AwaitableTraits<Task<T>> {
  using value = T;
  using future = Task<T>;
  static Task<T> to_future(Task<T> t) { return t; }
};
template <typename T>
struct AwaitableTraits<Future<T>> {
  using value = T;
  using future = Future<T>;
  static Future<T> to_future(Future<T> f) { return f; }
};
template <typename A>
using AwaitableValue = typename AwaitableTraits<std::decay_t<A>>::value;
template <typename T>
using ValueOrMonostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <typename F>
ValueOrMonostate<typename F::value_type> take_value_or_monostate(const F& f) {
  if constexpr (std::is_void_v<typename F::value_type>) {
    f.take();
    return {};
  } else {
    return f.take();
  }
}
template <typename F>
Result<typename F::value_type> take_result(const F& f) {
  using T = typename F::value_type;
  try {
    if constexpr (std::is_void_v<T>) {
      f.take();
      return Result<T>::success();
    } else {
      return Result<T>::success(f.take());
    }
  } catch (...) {
    return Result<T>::failure(std::current_exception());
  }
}

// Waits until `ws` triggers. If the waiting task is cancelled, cancels every
// child (gather's contract) and rethrows.
Coro<void> await_children(RefPtr<WaitSet> ws, bool cancel_children_on_cancel);
// Waits until `state` is done, deferring the caller's own cancellation
// until then (a shielded join).
Coro<void> join_shielded(RefPtr<FutureStateBase> state);
// First child, in completion order, that did not produce a value.
std::optional<std::size_t> first_failure(WaitSet& ws);

template <typename Tuple, std::size_t... I>
std::vector<RefPtr<FutureStateBase>> states_of(const Tuple& t, std::index_sequence<I...>) {
  return {RefPtr<FutureStateBase>(std::get<I>(t).state_base())...};
}

template <typename Tuple, std::size_t... I>
void rethrow_child(const Tuple& t, std::size_t which, std::index_sequence<I...>) {
  ((I == which ? (void)std::get<I>(t).take() : (void)0), ...);
}

}  // namespace detail

// asyncio.gather(*aws): awaits all; returns their values in argument order
// (std::monostate for void). The first child to fail (exception, or
// cancellation treated as CancelledError) propagates at once; the others
// keep running. Cancelling the gather cancels every child.
template <typename... A>
Coro<std::tuple<detail::ValueOrMonostate<detail::AwaitableValue<A>>...>> gather(A... aws) {
  auto futures = std::make_tuple(detail::AwaitableTraits<std::decay_t<A>>::to_future(std::move(aws))...);
  constexpr auto kIdx = std::index_sequence_for<A...>{};
  if constexpr (sizeof...(A) > 0) {
    auto ws = detail::RefPtr<detail::WaitSet>(
        new detail::WaitSet(detail::states_of(futures, kIdx), detail::WaitPolicy::kFirstException),
        detail::kAdoptRef);
    co_await detail::await_children(ws, true);
    if (auto bad = detail::first_failure(*ws)) detail::rethrow_child(futures, *bad, kIdx);
  }
  co_return std::apply(
      [](auto&... f) {
        return std::tuple<detail::ValueOrMonostate<detail::AwaitableValue<A>>...>(
            detail::take_value_or_monostate(f)...);
      },
      futures);
}

// gather(return_exceptions=True): waits for all; every outcome is returned.
template <typename... A>
Coro<std::tuple<Result<detail::AwaitableValue<A>>...>> gather(ReturnExceptions, A... aws) {
  auto futures = std::make_tuple(detail::AwaitableTraits<std::decay_t<A>>::to_future(std::move(aws))...);
  if constexpr (sizeof...(A) > 0) {
    auto ws = detail::RefPtr<detail::WaitSet>(
        new detail::WaitSet(detail::states_of(futures, std::index_sequence_for<A...>{}),
                            detail::WaitPolicy::kAllCompleted),
        detail::kAdoptRef);
    co_await detail::await_children(ws, true);
  }
  co_return std::apply(
      [](auto&... f) {
        return std::tuple<Result<detail::AwaitableValue<A>>...>(detail::take_result(f)...);
      },
      futures);
}

// gather over a range: values in input order.
template <typename A>
Coro<std::vector<detail::ValueOrMonostate<detail::AwaitableValue<A>>>> gather(std::vector<A> aws) {
  using Traits = detail::AwaitableTraits<std::decay_t<A>>;
  std::vector<typename Traits::future> futures;
  std::vector<detail::RefPtr<detail::FutureStateBase>> states;
  futures.reserve(aws.size());
  for (auto& a : aws) {
    futures.push_back(Traits::to_future(std::move(a)));
    states.emplace_back(futures.back().state_base());
  }
  std::vector<detail::ValueOrMonostate<detail::AwaitableValue<A>>> out;
  if (futures.empty()) co_return out;
  auto ws = detail::RefPtr<detail::WaitSet>(
      new detail::WaitSet(std::move(states), detail::WaitPolicy::kFirstException), detail::kAdoptRef);
  co_await detail::await_children(ws, true);
  if (auto bad = detail::first_failure(*ws)) futures[*bad].take();  // rethrows
  out.reserve(futures.size());
  for (auto& f : futures) out.push_back(detail::take_value_or_monostate(f));
  co_return out;
}

template <typename A>
Coro<std::vector<Result<detail::AwaitableValue<A>>>> gather(ReturnExceptions, std::vector<A> aws) {
  using Traits = detail::AwaitableTraits<std::decay_t<A>>;
  std::vector<typename Traits::future> futures;
  std::vector<detail::RefPtr<detail::FutureStateBase>> states;
  for (auto& a : aws) {
    futures.push_back(Traits::to_future(std::move(a)));
    states.emplace_back(futures.back().state_base());
  }
  std::vector<Result<detail::AwaitableValue<A>>> out;
  if (futures.empty()) co_return out;
  auto ws = detail::RefPtr<detail::WaitSet>(
      new detail::WaitSet(std::move(states), detail::WaitPolicy::kAllCompleted), detail::kAdoptRef);
  co_await detail::await_children(ws, true);
  for (auto& f : futures) out.push_back(detail::take_result(f));
  co_return out;
}

template <typename F>
struct WaitResult {
  std::vector<F> done;
  std::vector<F> pending;
};

// asyncio.wait: waits until `return_when` holds or `timeout` passes, and
// returns the done and pending futures (input order). A timeout does not
// raise and cancels nothing. std::invalid_argument for an empty set or a
// negative timeout.
template <typename F>
Coro<WaitResult<F>> wait(std::vector<F> fs, std::optional<Duration> timeout = std::nullopt,
                         ReturnWhen return_when = ReturnWhen::ALL_COMPLETED) {
  if (fs.empty()) throw std::invalid_argument("wait: the set of futures is empty");
  if (timeout && timeout->count() < 0) throw std::invalid_argument("wait: negative timeout");
  std::vector<detail::RefPtr<detail::FutureStateBase>> states;
  for (auto& f : fs) states.emplace_back(f.state_base());
  detail::WaitPolicy policy = return_when == ReturnWhen::FIRST_COMPLETED ? detail::WaitPolicy::kFirstCompleted
                              : return_when == ReturnWhen::FIRST_EXCEPTION
                                  ? detail::WaitPolicy::kFirstException
                                  : detail::WaitPolicy::kAllCompleted;
  auto ws = detail::RefPtr<detail::WaitSet>(new detail::WaitSet(std::move(states), policy),
                                            detail::kAdoptRef);
  ws->start();
  Future<void> signal = ws->signal();
  TimerHandle timer;
  if (timeout) timer = call_later(*timeout, [signal] { signal.try_set_result(); });
  try {
    co_await signal;
  } catch (...) {
    timer.cancel();
    ws->detach();
    throw;
  }
  timer.cancel();
  ws->detach();
  WaitResult<F> r;
  for (auto& f : fs) (f.done() ? r.done : r.pending).push_back(std::move(f));
  co_return r;
}

// asyncio.wait_for: awaits `aw`; if `timeout` passes first, cancels it,
// waits until it has finished, and raises TimeoutError. A result that
// arrives together with the timeout is returned, never lost; a zero
// timeout still lets a ready result through. No timeout waits forever.
// Cancelling the waiter cancels `aw` too (and waits for it).
namespace detail {
inline std::string timeout_message(Duration d) {
  return absl::StrFormat("wait_for: timeout of %dns expired", d.count());
}
}  // namespace detail

template <typename A>
Coro<detail::AwaitableValue<A>> wait_for(A aw, std::optional<Duration> timeout) {
  using Traits = detail::AwaitableTraits<std::decay_t<A>>;
  if (timeout && timeout->count() < 0) {
    throw std::invalid_argument(
        absl::StrFormat("wait_for: negative timeout (%d ns)", timeout->count()));
  }
  auto f = [&] {
    // We suspend on a new task at once: let it run next on this worker.
    if constexpr (std::is_same_v<std::decay_t<A>, Coro<detail::AwaitableValue<A>>>) {
      return detail::create_task_to_await(std::move(aw));
    } else {
      return Traits::to_future(std::move(aw));
    }
  }();
  if (!timeout) co_return co_await f;
  if (f.done()) co_return f.take();
  // The callback captures 16 bytes (no allocation) and formats its message
  // only if it fires, which most timeouts never do.
  const Duration d = *timeout;
  // Outside cancellations of this task (Task::cancel) counted so far: the
  // timer cancels `f`, never this task, so growth means someone else asked.
  // A request already pending is delivered here, before the timer exists:
  // it would otherwise be spent cancelling `f` and be indistinguishable
  // from the timeout.
  detail::TaskBase* self = detail::current_task_base_checked("wait_for");
  // Read before the check below: a request counted here but delivered after
  // the check is caught at the end (by f's message for a Future, by f's
  // request count for a Task).
  const int cancels_at_entry = self->cancelling();
  std::exception_ptr early;
  try {
    self->throw_if_cancel_requested();
  } catch (const CancelledError&) {
    early = std::current_exception();
  }
  if (early) {
    f.cancel();
    co_await detail::join_shielded(detail::RefPtr<detail::FutureStateBase>(f.state_base()));
    std::rethrow_exception(early);
  }
  auto expire = [f, d] { f.cancel(detail::timeout_message(d)); };
  TimerHandle timer;
  if (d.count() == 0) {
    expire();
  } else {
    timer = call_later(d, expire);
  }
  std::exception_ptr cancelled;
  try {
    co_await detail::DoneAwaiter(detail::RefPtr<detail::FutureStateBase>(f.state_base()));
  } catch (const CancelledError&) {
    cancelled = std::current_exception();
  }
  // Only this task cancels the timer: false means it fired (or is firing).
  const bool fired = d.count() == 0 || !timer.cancel();
  if (cancelled) {
    f.cancel();
    co_await detail::join_shielded(detail::RefPtr<detail::FutureStateBase>(f.state_base()));
    std::rethrow_exception(cancelled);
  }
  if (f.cancelled() && fired) {
    // The timer fired, but this task was also cancelled from outside while
    // `f` finished (its cancellation went to `f`, the task's waiter): that
    // cancellation wins, as with asyncio 3.12's timeout-based wait_for.
    self->throw_if_cancel_requested();  // a request not delivered yet
    if (self->cancelling() > cancels_at_entry) f.take();  // raises f's CancelledError
    if constexpr (std::is_same_v<typename Traits::future, Future<detail::AwaitableValue<A>>>) {
      // A plain future keeps the message of whoever cancelled it: if that
      // was not our timer, it was this task's cancellation, spent on `f`.
      if (f.state_base()->cancel_message() != detail::timeout_message(d)) f.take();
    } else {
      // A task counts the requests it received: the timer made one, so more
      // means another cancellation reached it too, e.g. this task's, counted
      // before cancels_at_entry was read but delivered to `f` only after.
      if (f.cancelling() > 1) f.take();
    }
    throw TimeoutError(detail::timeout_message(d));
  }
  co_return f.take();  // the value even if the timer fired, or aw's own error
}

// asyncio.shield: awaits `aw`, but cancelling the awaiting task does not
// cancel `aw` (it keeps running); cancelling `aw` itself cancels the await.
template <typename A>
Coro<detail::AwaitableValue<A>> shield(A aw) {
  auto f = detail::AwaitableTraits<std::decay_t<A>>::to_future(std::move(aw));
  if (f.done()) co_return f.take();
  Future<void> outer;
  detail::CallbackNode* node =
      f.state_base()->add_inline_callback([outer](detail::FutureStateBase&) { outer.try_set_result(); });
  try {
    co_await outer;
  } catch (const CancelledError&) {
    f.state_base()->remove_done_callback(node);
    throw;
  }
  co_return f.take();
}

// asyncio.as_completed: hands out the futures in the order they complete.
//   auto it = as_completed(tasks, 5s);
//   while (it.has_next()) { auto t = co_await it.next(); ... }
// next() raises TimeoutError once `timeout` (counted from the call to
// as_completed) has passed with futures still pending.
template <typename F>
class AsCompleted {
 public:
  AsCompleted(std::vector<F> fs, std::optional<TimePoint> deadline)
      : fs_(std::move(fs)), deadline_(deadline) {
    std::vector<detail::RefPtr<detail::FutureStateBase>> states;
    for (auto& f : fs_) states.emplace_back(f.state_base());
    ws_ = detail::RefPtr<detail::WaitSet>(
        new detail::WaitSet(std::move(states), detail::WaitPolicy::kFirstCompleted),
        detail::kAdoptRef);
    ws_->start();
  }
  AsCompleted(AsCompleted&&) = default;
  ~AsCompleted() {
    if (ws_) ws_->detach();
  }

  bool has_next() const noexcept { return handed_out_ < fs_.size(); }

  Coro<F> next() {
    if (!has_next()) throw InvalidStateError("as_completed: every future was already handed out");
    for (;;) {
      std::size_t i;
      if (ws_->pop_completed(&i)) {
        ++handed_out_;
        co_return fs_[i];
      }
      Future<void> signal = ws_->signal();
      TimerHandle timer;
      if (deadline_) {
        if (get_running_loop().time() >= *deadline_) {
          throw TimeoutError("as_completed: timeout expired with futures still pending");
        }
        timer = call_at(*deadline_, [signal] { signal.try_set_result(); });
      }
      try {
        co_await signal;
      } catch (...) {
        timer.cancel();
        throw;
      }
      timer.cancel();
      ws_->rearm();
    }
  }

 private:
  std::vector<F> fs_;
  std::optional<TimePoint> deadline_;
  detail::RefPtr<detail::WaitSet> ws_;
  std::size_t handed_out_ = 0;
};

template <typename F>
AsCompleted<F> as_completed(std::vector<F> fs, std::optional<Duration> timeout = std::nullopt) {
  if (timeout && timeout->count() < 0) throw std::invalid_argument("as_completed: negative timeout");
  std::optional<TimePoint> deadline;
  if (timeout) deadline = get_running_loop().time() + *timeout;
  return AsCompleted<F>(std::move(fs), deadline);
}

}  // namespace weft
