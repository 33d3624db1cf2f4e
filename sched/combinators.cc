#include "weft/sched/combinators.h"

namespace weft::detail {

Coro<void> await_children(RefPtr<WaitSet> ws, bool cancel_children_on_cancel) {
  // The callbacks stay registered after the gather returns (no detach): a
  // child still running when the first failure propagated, or when the
  // gather was cancelled, has its exception marked retrieved when it ends,
  // as asyncio's gather does. They hold the set only until the children end.
  ws->retrieve_exceptions();
  ws->start();
  std::exception_ptr cancelled;
  try {
    co_await ws->signal();
  } catch (const CancelledError&) {
    cancelled = std::current_exception();
  }
  if (!cancelled) co_return;
  if (cancel_children_on_cancel) {
    for (std::size_t i = 0; i < ws->size(); ++i) ws->state(i).cancel("gather cancelled");
    // asyncio's gathering future completes only once every child has: the
    // cancelled gather waits (shielded) for the children to finish.
    for (std::size_t i = 0; i < ws->size(); ++i) {
      co_await join_shielded(RefPtr<FutureStateBase>(&ws->state(i)));
    }
  }
  std::rethrow_exception(cancelled);
}

Coro<void> join_shielded(RefPtr<FutureStateBase> state) {
  co_await CancelScope(ScopeOptions{.shield = true}).run([](RefPtr<FutureStateBase> s) -> Coro<void> {
    co_await DoneAwaiter(std::move(s));
  }(std::move(state)));
}

std::optional<std::size_t> first_failure(WaitSet& ws) {
  std::size_t i;
  while (ws.pop_completed(&i)) {
    if (ws.state(i).outcome() != FutureStateBase::Outcome::kValue) return i;
  }
  return std::nullopt;
}

}  // namespace weft::detail
