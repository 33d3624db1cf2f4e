// The state of a gathering future (asyncio's _GatheringFuture), behind
// weft::gather (sched/combinators.h).
//
// It is a future of the result `R`, completed by its children (tasks and
// futures it watches through inline callbacks, run on whatever thread
// completes a child):
//  - without return_exceptions, by the first child that fails or is
//    cancelled (its exception, or CancelledError with the child's message:
//    the gathering future then reports an exception, not "cancelled");
//  - otherwise once every child is done: with their collected results, or
//    with CancelledError if a cancel() of the gathering future was accepted
//    by a child (asyncio's _cancel_requested).
// cancel() cancels every child and returns whether any accepted; false once
// every child has finished.
//
// Protocol (`mu_`, a SpinLock; never held while a child is cancelled, since
// cancelling a child may run this state's own callback on this thread):
//  - `decided_`: the outcome is chosen; set once, by the thread that then
//    completes the state (outside the lock).
//  - `holds_` counts cancel() calls in flight. The last child's callback
//    does not decide while one is in flight: it sets `deferred_`, and the
//    last cancel() to finish decides instead, knowing whether a child
//    accepted. So cancel() returning true always ends the gather with
//    CancelledError, and false never changes its outcome.
//  - After the decision, children that end later have their exceptions
//    marked retrieved (asyncio), so they are not reported as lost.
// Children's outcomes are read after their done() (acquire) was observed by
// their own callback; `collect` reads them through their handles.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "weft/core/detail/future_state.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/errors.h"

namespace weft::detail {

// What a GatheringFuture<R> handle sees, whatever the children.
template <typename R>
class GatherResultState : public FutureStateBase, public ValueStorage<R> {
 public:
  explicit GatherResultState(LoopBase* loop)
      : FutureStateBase(loop), loop_id_(loop->loop_id()) {}
  // The handle may outlive the runtime.
  std::uint64_t loop_id() const noexcept override { return loop_id_; }

 private:
  const std::uint64_t loop_id_;
};

// `Children` holds the typed handles (a tuple or a vector); `Collect` is a
// stateless functor building R from them once all are done.
template <typename R, typename Children, typename Collect>
class GatherState final : public GatherResultState<R> {
  using Outcome = FutureStateBase::Outcome;

 public:
  GatherState(LoopBase* loop, Children children, std::vector<FutureStateBase*> states,
              bool return_exceptions)
      : GatherResultState<R>(loop),
        children_(std::move(children)),
        states_(std::move(states)),
        return_exceptions_(return_exceptions) {}

  // Registers the callbacks; an empty gather completes here.
  void start() {
    if (states_.empty()) {
      {
        SpinLockHolder lock(&mu_);
        decided_ = true;
      }
      complete_all(false, {});
      return;
    }
    for (FutureStateBase* s : states_) {
      RefPtr<GatherState> self(this);
      s->add_permanent_inline_callback([self = std::move(self)](FutureStateBase& child) {
        self->on_child_done(child);
      });
    }
  }

  bool cancel(std::string msg) override {
    {
      SpinLockHolder lock(&mu_);
      if (decided_) return false;
      ++holds_;
    }
    bool accepted = false;
    for (FutureStateBase* s : states_) accepted |= s->cancel(msg);
    bool complete = false;
    bool cancelled = false;
    std::string cancel_msg;
    {
      SpinLockHolder lock(&mu_);
      --holds_;
      if (accepted && !cancel_accepted_) {
        cancel_accepted_ = true;
        cancel_msg_ = std::move(msg);
      }
      if (holds_ == 0 && deferred_ && !decided_) {
        decided_ = complete = true;
        cancelled = cancel_accepted_;
        cancel_msg = cancel_msg_;
      }
    }
    if (complete) complete_all(cancelled, std::move(cancel_msg));
    return accepted;
  }

  std::string describe() const override {
    return absl::StrFormat("GatheringFuture@%p (%d children)", static_cast<const void*>(this),
                           states_.size());
  }

 private:
  static bool failed(const FutureStateBase& s) { return s.outcome() != Outcome::kValue; }

  void on_child_done(FutureStateBase& child) noexcept {
    enum { kNothing, kLate, kFail, kAll } action = kNothing;
    bool cancelled = false;
    std::string cancel_msg;
    {
      SpinLockHolder lock(&mu_);
      ++finished_;
      if (decided_) {
        action = kLate;
      } else if (!return_exceptions_ && failed(child)) {
        decided_ = true;
        action = kFail;
      } else if (finished_ == states_.size()) {
        if (holds_ > 0) {
          deferred_ = true;  // the cancel() in flight decides
        } else {
          decided_ = true;
          action = kAll;
          cancelled = cancel_accepted_;
          cancel_msg = cancel_msg_;
        }
      }
    }
    switch (action) {
      case kLate:
        mark_child_retrieved(child);
        break;
      case kFail:
        complete_failed(child);
        break;
      case kAll:
        complete_all(cancelled, std::move(cancel_msg));
        break;
      case kNothing:
        break;
    }
  }

  static void mark_child_retrieved(FutureStateBase& child) noexcept {
    if (child.outcome() == Outcome::kException) (void)child.exception();  // cannot throw
  }

  void complete_failed(FutureStateBase& child) noexcept {
    std::exception_ptr e = child.cancelled()
                               ? std::make_exception_ptr(CancelledError(child.cancel_message()))
                               : child.exception();  // marks it retrieved
    this->try_claim();
    this->set_exception_outcome(std::move(e));
    this->publish(Outcome::kException);
  }

  void complete_all(bool cancelled, std::string msg) noexcept {
    this->try_claim();
    if (cancelled) {
      for (FutureStateBase* s : states_) mark_child_retrieved(*s);
      this->set_exception_outcome(std::make_exception_ptr(CancelledError(std::move(msg))));
      this->publish(Outcome::kException);
      return;
    }
    try {
      this->emplace_value(Collect{}(children_));
    } catch (...) {
      // Copying a child's value threw (its copy constructor): that is the
      // gather's outcome, not a lost exception.
      this->set_exception_outcome(std::current_exception());
      this->publish(Outcome::kException);
      return;
    }
    this->publish(Outcome::kValue);
  }

  Children children_;
  // Raw views of the children's states, owned through children_.
  const std::vector<FutureStateBase*> states_;
  const bool return_exceptions_;

  SpinLock mu_;
  std::size_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  bool decided_ ABSL_GUARDED_BY(mu_) = false;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  bool deferred_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_accepted_ ABSL_GUARDED_BY(mu_) = false;
  std::string cancel_msg_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::detail
