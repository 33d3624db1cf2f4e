// Watches a set of futures/tasks and completes a signal future when a
// condition over them holds (the machinery behind wait and as_completed).
//
// Each watched state gets an inline callback node (run on the completing
// thread). The set's own bookkeeping is under `mu_`; the signal is a
// Future<void> of the watcher's loop, completed with try_set_result (so a
// cancelled signal, i.e. a cancelled watcher, is simply left alone).
// detach() removes the nodes of states still pending so that a long-lived
// child does not keep the set alive.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/detail/future_state.h"
#include "weft/core/future.h"

namespace weft::detail {

enum class WaitPolicy { kFirstCompleted, kFirstException, kAllCompleted };

class WaitSet final : public RefCounted {
 public:
  WaitSet(std::vector<RefPtr<FutureStateBase>> states, WaitPolicy policy)
      : states_(std::move(states)), policy_(policy), pending_(states_.size()) {}

  // Registers the callbacks; call once, from the watching task.
  void start() {
    nodes_.resize(states_.size());
    for (std::size_t i = 0; i < states_.size(); ++i) {
      RefPtr<WaitSet> self(this);
      nodes_[i] = states_[i]->add_inline_callback(
          [self = std::move(self), i](FutureStateBase& s) { self->on_done(i, s); });
    }
  }
  // Removes the callbacks of states not done yet.
  void detach() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      states_[i]->remove_done_callback(nodes_[i].get());
    }
  }

  // Completed when the policy's condition holds; await it from the watcher.
  // (Made lazily so that it belongs to the loop the watcher runs on.)
  Future<void> signal() {
    detail::SpinLockHolder lock(&mu_);
    if (!signal_) {
      signal_.emplace();
      if (triggered_) signal_->try_set_result();
    }
    return *signal_;
  }
  // Re-arms the signal (as_completed waits for one completion at a time).
  void rearm() {
    detail::SpinLockHolder lock(&mu_);
    signal_.emplace();
    triggered_ = !completed_.empty();
    if (triggered_) signal_->try_set_result();
  }

  bool triggered() const {
    detail::SpinLockHolder lock(&mu_);
    return triggered_;
  }
  // Indices in completion order, taken once each.
  bool pop_completed(std::size_t* i) {
    detail::SpinLockHolder lock(&mu_);
    if (completed_.empty()) return false;
    *i = completed_.front();
    completed_.pop_front();
    return true;
  }
  std::size_t size() const noexcept { return states_.size(); }
  FutureStateBase& state(std::size_t i) const { return *states_[i]; }

 private:
  void on_done(std::size_t i, FutureStateBase& s) noexcept {
    std::optional<Future<void>> to_signal;
    {
      detail::SpinLockHolder lock(&mu_);
      --pending_;
      completed_.push_back(i);
      bool failed = s.outcome() != FutureStateBase::Outcome::kValue;
      bool hit = pending_ == 0 || policy_ == WaitPolicy::kFirstCompleted ||
                 (policy_ == WaitPolicy::kFirstException && failed);
      if (!hit || triggered_) return;
      triggered_ = true;
      to_signal = signal_;
    }
    if (to_signal) to_signal->try_set_result();
  }

  const std::vector<RefPtr<FutureStateBase>> states_;
  // Set before any callback runs. A node's callback holds the set, and the
  // set holds the node; the cycle ends when the node fires or is removed
  // (either destroys the callback).
  std::vector<RefPtr<CallbackNode>> nodes_;
  const WaitPolicy policy_;
  mutable detail::SpinLock mu_;
  std::size_t pending_ ABSL_GUARDED_BY(mu_);
  bool triggered_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::size_t> completed_ ABSL_GUARDED_BY(mu_);
  std::optional<Future<void>> signal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::detail
