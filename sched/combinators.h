// asyncio's combinators: gather, wait, wait_for, shield, as_completed.
//
// Awaitables given to them may be Coro<T> (wrapped in a new task, as asyncio
// does with coroutines), Task<T> or Future<T>. Semantics follow Python 3.12;
// docs/structured_concurrency.md lists where threads made us choose.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <concepts>
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

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "weft/core/coro.h"
#include "weft/core/detail/await.h"
#include "weft/core/future.h"
#include "weft/core/task.h"
#include "weft/sched/cancel_scope.h"
#include "weft/sched/detail/gather_state.h"
#include "weft/sched/detail/wait_set.h"
#include "weft/sched/result.h"
#include "weft/sched/spawn.h"

namespace weft {

enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };

// Tag for gather(return_exceptions, ...).
struct ReturnExceptions {};
inline constexpr ReturnExceptions return_exceptions{};

// asyncio's _GatheringFuture: what gather() returns. A future of the
// gathered results (awaitable, done(), result(), add_done_callback()) whose
// cancel() cancels every child: true if any child accepted (the gather then
// raises CancelledError once the children are done), false once every child
// has finished. The children run from the call of gather() on, whether or
// not the future is awaited. Thread safety: as for Future.
template <typename R>
class GatheringFuture : public BasicFuture<R> {
  using State = detail::GatherResultState<R>;

 public:
  GatheringFuture() = default;

  bool cancel(std::string msg = {}) const { return this->state().cancel(std::move(msg)); }

  // Schedules `fn(GatheringFuture&)` on the future's loop once it is done.
  template <typename Fn>
  CallbackHandle add_done_callback(Fn&& fn) const {
    return this->template add_callback_as<GatheringFuture>(std::forward<Fn>(fn));
  }

  // `co_await gather(...)` on the temporary moves the results out when no
  // other handle can see them; an awaited lvalue copies them, as a Future.
  detail::StateAwaiter<R> operator co_await() const& { return BasicFuture<R>::operator co_await(); }
  detail::StateAwaiter<R> operator co_await() && {
    return detail::StateAwaiter<R>(std::move(this->state_), this->storage_, /*move_if_sole=*/true);
  }

  static GatheringFuture from_state(detail::FutureStateBase& s) {
    return GatheringFuture(detail::RefPtr<detail::FutureStateBase>(&s));
  }
  // For gather(): a handle on a new state (adopts its reference).
  static GatheringFuture adopt(State* s) {
    return GatheringFuture(detail::RefPtr<detail::FutureStateBase>(s, detail::kAdoptRef));
  }

 private:
  explicit GatheringFuture(detail::RefPtr<detail::FutureStateBase> s)
      : BasicFuture<R>(s, static_cast<State*>(s.get())) {}
};

namespace detail {

// What each accepted kind of argument is awaited as (nothing for others).
template <typename A>
struct AwaitableTraits {};
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
template <typename R>
struct AwaitableTraits<GatheringFuture<R>> {
  using value = R;
  using future = GatheringFuture<R>;
  static GatheringFuture<R> to_future(GatheringFuture<R> f) { return f; }
};
}  // namespace detail

// What gather, wait_for and shield take: a Coro (started as a task), a Task,
// a Future or a GatheringFuture. A wrong argument fails at the call with
// this concept's name.
template <typename A>
concept FutureOrCoro = requires { typename detail::AwaitableTraits<std::decay_t<A>>::value; };

// wait and as_completed take a FutureHandle (core/future.h): not a Coro, as
// asyncio.wait no longer wraps coroutines.

namespace detail {
// The value an argument is awaited for; void for an argument that is not
// FutureOrCoro, so that a signature naming it stays well-formed and the call
// fails on the concept, with its name, whichever order a compiler checks
// constraints and return types in.
template <typename A>
struct AwaitableValueOf {
  using type = void;
};
template <FutureOrCoro A>
struct AwaitableValueOf<A> {
  using type = typename AwaitableTraits<std::decay_t<A>>::value;
};
template <typename A>
using AwaitableValue = typename AwaitableValueOf<A>::type;
template <typename A>
using AwaitableFuture = typename AwaitableTraits<std::decay_t<A>>::future;
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

// Waits until `state` is done, deferring the caller's own cancellation
// until then (a shielded join).
Coro<void> join_shielded(RefPtr<FutureStateBase> state);

// Builds a gather's result from its children, all done.
struct CollectValues {
  template <typename... F>
  auto operator()(std::tuple<F...>& fs) const {
    return std::apply(
        [](auto&... f) {
          return std::tuple<ValueOrMonostate<typename F::value_type>...>(take_value_or_monostate(f)...);
        },
        fs);
  }
  template <typename F>
  auto operator()(std::vector<F>& fs) const {
    std::vector<ValueOrMonostate<typename F::value_type>> out;
    out.reserve(fs.size());
    for (auto& f : fs) out.push_back(take_value_or_monostate(f));
    return out;
  }
};
struct CollectResults {
  template <typename... F>
  auto operator()(std::tuple<F...>& fs) const {
    return std::apply(
        [](auto&... f) { return std::tuple<Result<typename F::value_type>...>(take_result(f)...); },
        fs);
  }
  template <typename F>
  auto operator()(std::vector<F>& fs) const {
    std::vector<Result<typename F::value_type>> out;
    out.reserve(fs.size());
    for (auto& f : fs) out.push_back(take_result(f));
    return out;
  }
};

template <typename Collect, typename Children>
auto start_gather(Children children, bool return_exceptions) {
  using R = std::invoke_result_t<Collect, Children&>;
  std::vector<FutureStateBase*> states;
  if constexpr (requires { children.size(); }) {
    states.reserve(children.size());
    for (auto& f : children) states.push_back(f.state_base());
  } else {
    std::apply([&](auto&... f) { (states.push_back(f.state_base()), ...); }, children);
  }
  LoopBase* loop = current_loop();
  if (loop == nullptr) throw RuntimeError("gather() needs a running weft loop on this thread");
  auto* st = new GatherState<R, Children, Collect>(loop, std::move(children), std::move(states),
                                                   return_exceptions);
  GatheringFuture<R> handle = GatheringFuture<R>::adopt(st);
  st->start();
  return handle;
}

template <typename A>
AwaitableFuture<A> to_future(A&& a) {
  return AwaitableTraits<std::decay_t<A>>::to_future(std::forward<A>(a));
}

}  // namespace detail

// asyncio.gather(*aws): starts every Coro as a task at once and returns the
// gathering future of their values in argument order (std::monostate for
// void). The first child to fail (an exception, or a cancellation, raised
// as CancelledError) completes it at once; the others keep running.
// Cancelling the gathering future, or the task awaiting it, cancels every
// child. RuntimeError off a loop thread.
template <FutureOrCoro... A>
GatheringFuture<std::tuple<detail::ValueOrMonostate<detail::AwaitableValue<A>>...>> gather(A... aws) {
  // Braces: the children are made (and Coros started) left to right.
  return detail::start_gather<detail::CollectValues>(
      std::tuple<detail::AwaitableFuture<A>...>{detail::to_future(std::move(aws))...}, false);
}

// gather(return_exceptions=True): completes once every child is done, with
// every outcome; nothing is raised, unless the gather itself was cancelled.
template <FutureOrCoro... A>
GatheringFuture<std::tuple<Result<detail::AwaitableValue<A>>...>> gather(ReturnExceptions, A... aws) {
  return detail::start_gather<detail::CollectResults>(
      std::tuple<detail::AwaitableFuture<A>...>{detail::to_future(std::move(aws))...}, true);
}

// gather over a range: values in input order.
template <FutureOrCoro A>
GatheringFuture<std::vector<detail::ValueOrMonostate<detail::AwaitableValue<A>>>> gather(std::vector<A> aws) {
  std::vector<detail::AwaitableFuture<A>> futures;
  futures.reserve(aws.size());
  for (auto& a : aws) futures.push_back(detail::to_future(std::move(a)));
  return detail::start_gather<detail::CollectValues>(std::move(futures), false);
}

template <FutureOrCoro A>
GatheringFuture<std::vector<Result<detail::AwaitableValue<A>>>> gather(ReturnExceptions, std::vector<A> aws) {
  std::vector<detail::AwaitableFuture<A>> futures;
  futures.reserve(aws.size());
  for (auto& a : aws) futures.push_back(detail::to_future(std::move(a)));
  return detail::start_gather<detail::CollectResults>(std::move(futures), true);
}

// asyncio.ensure_future returns a future as it is.
template <typename R>
const GatheringFuture<R>& ensure_future(const GatheringFuture<R>& g) {
  return g;
}

template <typename F>
struct WaitResult {
  std::vector<F> done;
  std::vector<F> pending;
};

namespace detail {
// asyncio takes a set: a future given twice counts once (its first place).
template <typename F>
void drop_duplicates(std::vector<F>& fs) {
  absl::flat_hash_set<const FutureStateBase*> seen;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < fs.size(); ++i) {
    if (seen.insert(fs[i].state_base()).second) {
      if (kept != i) fs[kept] = std::move(fs[i]);
      ++kept;
    }
  }
  fs.resize(kept);
}
WaitPolicy wait_policy(ReturnWhen return_when);
}  // namespace detail

// asyncio.wait: waits until `return_when` holds or `timeout` passes, and
// returns the done and pending futures (input order; a future given twice
// counts once). A timeout does not raise and cancels nothing; a zero or
// negative one returns after one loop turn (asyncio). F may be AnyFuture to mix result types.
// std::invalid_argument for an empty set or an invalid return_when.
template <FutureHandle F>
Coro<WaitResult<F>> wait(std::vector<F> fs, std::optional<Duration> timeout = std::nullopt,
                         ReturnWhen return_when = ReturnWhen::ALL_COMPLETED) {
  if (fs.empty()) throw std::invalid_argument("wait: the set of futures is empty");
  const detail::WaitPolicy policy = detail::wait_policy(return_when);
  detail::drop_duplicates(fs);
  if (timeout && timeout->count() <= 0) {
    co_await yield_now();  // asyncio: one loop turn, then whatever is done
  } else {
    std::vector<detail::RefPtr<detail::FutureStateBase>> states;
    states.reserve(fs.size());
    for (auto& f : fs) states.emplace_back(f.state_base());
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
  }
  WaitResult<F> r;
  for (auto& f : fs) (f.done() ? r.done : r.pending).push_back(std::move(f));
  co_return r;
}

// asyncio.wait_for (3.12: `async with timeout(t): return await aw`):
// awaits `aw` inside a timeout scope; a Coro runs inline in the calling
// task (no task is made). If `timeout` passes first, `aw` is
// cancelled, waited for until it has finished, and TimeoutError is raised;
// a result that arrives together with the timeout, or that `aw` returns
// despite its cancellation, is returned. A zero or negative timeout has
// already expired (a ready result still gets through; a Coro is then not
// started). No timeout waits forever. Cancelling the waiter cancels `aw`
// too (and waits for it); a request from outside that reached `aw` raises
// CancelledError even if `aw` swallowed it and returned a value.
namespace detail {
inline std::string timeout_message(Duration d) {
  return absl::StrFormat("wait_for: timeout of %dns expired", d.count());
}
}  // namespace detail

template <FutureOrCoro A>
Coro<detail::AwaitableValue<A>> wait_for(A aw, std::optional<Duration> timeout) {
  using V = detail::AwaitableValue<A>;
  // A Coro runs inline in this task, under the timeout (Python 3.12: no task
  // is made); a task or future already scheduled is awaited.
  constexpr bool kInline = std::is_same_v<std::decay_t<A>, Coro<V>>;
  if (!timeout) co_return co_await std::move(aw);
  if constexpr (!kInline) {
    if (aw.done()) co_return aw.take();
  }
  detail::TaskBase* self = detail::current_task_base_checked("wait_for");
  // A request pending on entry is delivered here, before the timeout
  // exists: spent on `aw`, it could not be told from one that `aw` swallowed.
  std::exception_ptr early;
  try {
    self->throw_if_cancel_requested();
  } catch (const CancelledError&) {
    early = std::current_exception();
  }
  if (early) {
    if constexpr (kInline) {
      aw.discard();  // never started: the CancelledError is its report
    } else {
      aw.cancel();
      co_await detail::join_shielded(detail::RefPtr<detail::FutureStateBase>(aw.state_base()));
    }
    std::rethrow_exception(early);
  }
  detail::InlineTimeout scope;
  if (!scope.enter(self, *timeout)) {
    if constexpr (kInline) {
      // Expired at entry (a zero or negative timeout): the Coro is not
      // started (Python 3.12).
      scope.leave(nullptr);
      aw.discard();
      throw TimeoutError(detail::timeout_message(*timeout));
    }
  }
  std::exception_ptr error;
  std::optional<detail::ValueOrMonostate<V>> value;
  try {
    if constexpr (std::is_void_v<V>) {
      co_await std::move(aw);
      value.emplace();
    } else {
      value.emplace(co_await std::move(aw));
    }
  } catch (...) {
    error = std::current_exception();
  }
  const bool timed_out = scope.leave(error);
  // The rule of asyncio 3.12+ (cancelling() decides): a value or a
  // TimeoutError only if no request from outside came meanwhile. One that
  // reached `aw` (which perhaps swallowed it) is raised here; one still
  // pending is delivered now, or after the shield that defers it.
  // Requests from outside (Task::cancel) counted since entry: the scope
  // cancels what this task awaits, never this task, so growth means someone
  // else asked.
  if (self->cancelling() > scope.cancels_at_entry()) {
    if (!self->cancel_pending()) throw CancelledError(self->last_cancel_message());
    self->throw_if_request_pending();
  }
  if (timed_out) throw TimeoutError(detail::timeout_message(*timeout));
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<V>) co_return std::move(*value);
}

// asyncio.shield: awaits `aw`, but cancelling the awaiting task does not
// cancel `aw` (it keeps running); cancelling `aw` itself cancels the await.
template <FutureOrCoro A>
Coro<detail::AwaitableValue<A>> shield(A aw) {
  auto f = detail::AwaitableTraits<std::decay_t<A>>::to_future(std::move(aw));
  if (f.done()) co_return f.take();
  Future<void> outer;
  detail::RefPtr<detail::CallbackNode> node =
      f.state_base()->add_inline_callback([outer](detail::FutureStateBase&) { outer.try_set_result(); });
  try {
    co_await outer;
  } catch (const CancelledError&) {
    f.state_base()->remove_done_callback(node.get());
    throw;
  }
  co_return f.take();
}

// asyncio.as_completed: hands out the futures in the order they complete.
//   auto it = as_completed(tasks, 5s);
//   while (it.has_next()) { auto t = co_await it.next(); ... }
// next() raises TimeoutError once `timeout` (counted from the call to
// as_completed; zero or negative has passed already) has passed with
// futures still pending; the ones done by then are handed out first. A
// future given twice is handed out once.
template <typename F>
class AsCompleted {
 public:
  AsCompleted(std::vector<F> fs, std::optional<TimePoint> deadline)
      : fs_(std::move(fs)), deadline_(deadline) {
    detail::drop_duplicates(fs_);
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

template <FutureHandle F>
AsCompleted<F> as_completed(std::vector<F> fs, std::optional<Duration> timeout = std::nullopt) {
  std::optional<TimePoint> deadline;
  if (timeout) deadline = get_running_loop().time() + *timeout;
  return AsCompleted<F>(std::move(fs), deadline);
}

}  // namespace weft
