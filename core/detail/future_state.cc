#include "weft/core/detail/future_state.h"

#include <thread>

#include "absl/strings/str_format.h"
#include "weft/core/detail/weft_dcheck.h"

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

void FutureStateBase::report_if_never_retrieved() noexcept {
  if (outcome_ == Outcome::kException && !retrieved_.load(std::memory_order_relaxed)) {
    report_error(absl::StrFormat("exception was never retrieved: %s: %s", describe(),
                                 describe_exception(exception_)));
  }
}

void FutureStateBase::destroy() noexcept {
  report_if_never_retrieved();
  delete this;
}

FutureStateBase::~FutureStateBase() {
  // Never completed: the list still holds the callback nodes' references.
  // (A published list was handed over; the last release, acq_rel, orders
  // every push before this.)
  const std::uintptr_t list = waiters_.load(std::memory_order_relaxed);
  if (list == kDoneTag) return;
  for (Waiter* w = reinterpret_cast<Waiter*>(list); w != nullptr;) {
    Waiter* next = w->next_;
    if (w->is_callback()) static_cast<CallbackNode*>(w)->release();
    w = next;
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

std::uintptr_t FutureStateBase::wait_not_busy() const noexcept {
  // A compaction walks at most the registrations of this one future.
  for (int spins = 0;; ++spins) {
    // Acquire: the links the compactor rewrote are published by its release store.
    const std::uintptr_t v = waiters_.load(std::memory_order_acquire);
    if (v != kBusyTag) return v;
    if (spins >= 64) std::this_thread::yield();
  }
}

bool FutureStateBase::add_waiter(Waiter* w) noexcept {
  std::uintptr_t head = waiters_.load(std::memory_order_acquire);
  for (;;) {
    if (head == kDoneTag) return false;
    if (head == kBusyTag) {
      head = wait_not_busy();
      continue;
    }
    w->next_ = reinterpret_cast<Waiter*>(head);
    // Release: publishes *w to the completer's (and a compactor's) acquire.
    if (waiters_.compare_exchange_weak(head, reinterpret_cast<std::uintptr_t>(w),
                                       std::memory_order_release, std::memory_order_acquire)) {
      return true;
    }
  }
}

RefPtr<CallbackNode> FutureStateBase::add_done_callback(CallbackNode::Fn fn) {
  RefPtr<CallbackNode> node(new CallbackNode(std::move(fn), /*run_inline=*/false));
  add_callback_node(node.get());
  return node;
}

RefPtr<CallbackNode> FutureStateBase::add_inline_callback(CallbackNode::Fn fn) {
  RefPtr<CallbackNode> node(new CallbackNode(std::move(fn), /*run_inline=*/true));
  add_callback_node(node.get());
  return node;
}

void FutureStateBase::add_permanent_inline_callback(CallbackNode::Fn fn) {
  add_callback_node(new CallbackNode(std::move(fn), /*run_inline=*/true));
}

void FutureStateBase::add_callback_node(CallbackNode* node) {
  // The node's first reference is the list's.
  if (!add_waiter(node)) {  // already done: schedule it now
    node->notify(*this);
    node->release();
  }
}

std::size_t FutureStateBase::remove_done_callback(CallbackNode* node) noexcept {
  if (node == nullptr || !node->try_remove()) return 0;
  if (removed_since_compaction_.fetch_add(1, std::memory_order_relaxed) + 1 >= kCompactAfter) {
    compact_callbacks();
  }
  return 1;
}

void FutureStateBase::compact_callbacks() noexcept {
  std::uintptr_t head = waiters_.load(std::memory_order_acquire);
  do {
    // Done: publish handed the list over. Busy: another remover compacts.
    if (head == kDoneTag || head == kBusyTag || head == 0) return;
    // Acquire: every node pushed so far, and its link, is visible.
  } while (!waiters_.compare_exchange_weak(head, kBusyTag, std::memory_order_acquire,
                                           std::memory_order_acquire));
  removed_since_compaction_.store(0, std::memory_order_relaxed);
  // The list is ours until the store below: pushers and the completer wait.
  // Kept nodes stay in their order; removed ones lose the list's reference.
  Waiter* kept = nullptr;
  Waiter** tail = &kept;
  for (Waiter* w = reinterpret_cast<Waiter*>(head); w != nullptr;) {
    Waiter* next = w->next_;
    if (w->is_callback() && static_cast<CallbackNode*>(w)->removed()) {
      static_cast<CallbackNode*>(w)->release();
    } else {
      *tail = w;
      tail = &w->next_;
    }
    w = next;
  }
  *tail = nullptr;
  WEFT_DCHECK(waiters_.load(std::memory_order_relaxed) == kBusyTag);  // nobody else wrote it
  // Release: the rewritten links, to whoever takes the list next.
  waiters_.store(reinterpret_cast<std::uintptr_t>(kept), std::memory_order_release);
}

std::size_t FutureStateBase::callback_nodes_for_testing() const noexcept {
  const std::uintptr_t list = waiters_.load(std::memory_order_acquire);
  if (list == kDoneTag || list == kBusyTag) return 0;
  std::size_t n = 0;
  for (Waiter* w = reinterpret_cast<Waiter*>(list); w != nullptr; w = w->next_) {
    n += w->is_callback() ? 1 : 0;
  }
  return n;
}

void FutureStateBase::publish(Outcome outcome) noexcept {
  // Only the claimer publishes, once, a real outcome.
  WEFT_DCHECK(claimed_.load(std::memory_order_relaxed));
  WEFT_DCHECK(outcome != Outcome::kPending);
  outcome_ = outcome;
  std::uintptr_t list = waiters_.load(std::memory_order_relaxed);
  do {
    WEFT_DCHECK(list != kDoneTag);
    if (list == kBusyTag) list = wait_not_busy();
    // Acq_rel: takes the pushed nodes (acquire) and publishes the outcome
    // to whoever sees kDoneTag (release).
  } while (!waiters_.compare_exchange_weak(list, kDoneTag, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
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
    const bool callback = w->is_callback();
    w->notify(*this);
    if (callback) static_cast<CallbackNode*>(w)->release();  // the list's reference
  }
}

}  // namespace weft::detail
