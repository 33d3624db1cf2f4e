#include "weft/sched/combinators.h"

namespace weft::detail {

Coro<void> await_children(RefPtr<WaitSet> ws, bool cancel_children_on_cancel) {
  ws->start();
  try {
    co_await ws->signal();
  } catch (const CancelledError&) {
    ws->detach();
    if (cancel_children_on_cancel) {
      for (std::size_t i = 0; i < ws->size(); ++i) ws->state(i).cancel("gather cancelled");
    }
    throw;
  }
  ws->detach();
}

Coro<void> join_shielded(RefPtr<FutureStateBase> state) {
  CancelScope scope;
  scope.shield();
  co_await scope.run([](RefPtr<FutureStateBase> s) -> Coro<void> {
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
