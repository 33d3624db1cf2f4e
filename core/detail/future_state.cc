#include "weft/core/detail/future_state.h"

#include "absl/strings/str_format.h"

namespace weft::detail {

const std::string FutureStateBase::kNoMessage;

bool CallbackNode::try_remove() noexcept {
  std::uint8_t expected = kArmed;
  if (!armed_.compare_exchange_strong(expected, kRemoved, std::memory_order_acq_rel)) {
    return false;
  }
  fn_ = nullptr;
  return true;
}

void CallbackNode::notify(FutureStateBase& state) noexcept {
  std::uint8_t expected = kArmed;
  if (!armed_.compare_exchange_strong(expected, kFired, std::memory_order_acq_rel)) return;
  if (inline_) {
    Fn fn = std::move(fn_);
    fn(state);
    return;
  }
  // The posted closure keeps the state alive until the callback ran.
  RefPtr<FutureStateBase> keep(&state);
  Fn fn = std::move(fn_);
  // The future may outlive its runtime: then the callback is dropped.
  if (!post_if_live(state.loop_id(),
                    [keep = std::move(keep), fn = std::move(fn)]() mutable { fn(*keep); })) {
    report_error("a done callback was dropped: the future's event loop is closed");
  }
}

void FutureStateBase::destroy() noexcept {
  // Here rather than in the destructor so that describe() still names a task.
  if (outcome_ == Outcome::kException && !retrieved_.load(std::memory_order_relaxed)) {
    report_error(absl::StrFormat("exception was never retrieved: %s: %s", describe(),
                                 describe_exception(exception_)));
  }
  delete this;
}

FutureStateBase::~FutureStateBase() {
  CallbackNode* n = owned_callbacks_.load(std::memory_order_relaxed);
  while (n != nullptr) {
    delete std::exchange(n, n->retired_next_);
  }
}

std::string FutureStateBase::describe() const {
  return absl::StrFormat("Future@%p", static_cast<const void*>(this));
}

bool FutureStateBase::cancel(std::string msg) {
  if (!try_claim()) return false;
  set_cancelled_outcome(std::move(msg));
  publish(Outcome::kCancelled);
  return true;
}

void FutureStateBase::set_exception(std::exception_ptr e) {
  if (!e) throw std::invalid_argument("set_exception needs an exception");
  if (!try_claim()) throw InvalidStateError("result is already set: " + describe());
  set_exception_outcome(std::move(e));
  publish(Outcome::kException);
}

bool FutureStateBase::try_set_exception(std::exception_ptr e) noexcept {
  if (!e || !try_claim()) return false;
  set_exception_outcome(std::move(e));
  publish(Outcome::kException);
  return true;
}

void FutureStateBase::set_cancelled_outcome(std::string msg) noexcept {
  if (!msg.empty()) cancel_msg_ = std::make_unique<std::string>(std::move(msg));
}

void FutureStateBase::set_exception_outcome(std::exception_ptr e) noexcept {
  exception_ = std::move(e);
}

std::exception_ptr FutureStateBase::exception() {
  if (!done()) throw InvalidStateError("exception is not set: " + describe() + " is pending");
  if (outcome_ == Outcome::kCancelled) throw CancelledError(cancel_message());
  mark_retrieved();
  return exception_;
}

void FutureStateBase::check_result() {
  if (!done()) throw InvalidStateError("result is not set: " + describe() + " is pending");
  switch (outcome_) {
    case Outcome::kCancelled:
      throw CancelledError(cancel_message());
    case Outcome::kException:
      mark_retrieved();
      std::rethrow_exception(exception_);
    default:
      return;
  }
}

bool FutureStateBase::add_waiter(Waiter* w) noexcept {
  std::uintptr_t head = waiters_.load(std::memory_order_acquire);
  do {
    if (head == kDoneTag) return false;
    w->next_ = reinterpret_cast<Waiter*>(head);
    // Release: publishes *w to the completer's acq_rel exchange.
  } while (!waiters_.compare_exchange_weak(head, reinterpret_cast<std::uintptr_t>(w),
                                           std::memory_order_release,
                                           std::memory_order_acquire));
  return true;
}

CallbackNode* FutureStateBase::add_done_callback(CallbackNode::Fn fn) {
  return add_callback_node(new CallbackNode(std::move(fn), /*run_inline=*/false));
}

CallbackNode* FutureStateBase::add_inline_callback(CallbackNode::Fn fn) {
  return add_callback_node(new CallbackNode(std::move(fn), /*run_inline=*/true));
}

CallbackNode* FutureStateBase::add_callback_node(CallbackNode* node) {
  // Ownership first, so the node is freed with the state whatever happens.
  CallbackNode* head = owned_callbacks_.load(std::memory_order_relaxed);
  do {
    node->retired_next_ = head;
  } while (!owned_callbacks_.compare_exchange_weak(head, node, std::memory_order_relaxed));
  if (!add_waiter(node)) node->notify(*this);  // already done: schedule it now
  return node;
}

std::size_t FutureStateBase::remove_done_callback(CallbackNode* node) noexcept {
  return node != nullptr && node->try_remove() ? 1 : 0;
}

void FutureStateBase::publish(Outcome outcome) noexcept {
  outcome_ = outcome;
  std::uintptr_t list = waiters_.exchange(kDoneTag, std::memory_order_acq_rel);
  // Reverse the LIFO list into registration order.
  Waiter* ordered = nullptr;
  for (Waiter* w = reinterpret_cast<Waiter*>(list); w != nullptr;) {
    Waiter* next = w->next_;
    w->next_ = ordered;
    ordered = w;
    w = next;
  }
  // The waking of a task may drop the last reference other than the caller's;
  // the caller of publish() holds one, so *this survives the loop.
  while (ordered != nullptr) {
    Waiter* w = ordered;
    ordered = w->next_;  // read before notify: w may be freed by it
    w->notify(*this);
  }
}

}  // namespace weft::detail
