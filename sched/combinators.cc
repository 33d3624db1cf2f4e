#include "weft/sched/combinators.h"

#include <stdexcept>

#include "absl/strings/str_format.h"

namespace weft::detail {

Coro<void> join_shielded(RefPtr<FutureStateBase> state) {
  co_await CancelScope(ScopeOptions{.shield = true}).run([](RefPtr<FutureStateBase> s) -> Coro<void> {
    co_await DoneAwaiter(std::move(s));
  }(std::move(state)));
}

WaitPolicy wait_policy(ReturnWhen return_when) {
  switch (return_when) {
    case ReturnWhen::FIRST_COMPLETED:
      return WaitPolicy::kFirstCompleted;
    case ReturnWhen::FIRST_EXCEPTION:
      return WaitPolicy::kFirstException;
    case ReturnWhen::ALL_COMPLETED:
      return WaitPolicy::kAllCompleted;
  }
  throw std::invalid_argument(absl::StrFormat("wait: invalid return_when (%d)", static_cast<int>(return_when)));
}

}  // namespace weft::detail
