// The type-erased part of a task: running its steps, the suspension and
// cancellation protocol, naming and introspection.
//
// Ownership: a task holds a reference to itself from creation until its body
// finishes (the "running reference"), so a task nobody holds still runs to
// completion. Waiter nodes that wake it hold no reference: a suspended task is
// alive through that running reference.
//
// Threads: a task runs on one worker at a time. A step is started only by the
// worker that dequeued it; the task is enqueued again only by the single
// waker of its current suspension (one Waiter per suspension, notified once),
// so no two threads ever run it concurrently. After a step hands the task to
// a waker, that thread does not touch the task again (it may already be
// running elsewhere, or be gone).
//
// Cancellation (asyncio's protocol, made thread-safe with `mu_`, a SpinLock:
// every section under it is a few pointer or flag updates):
//  - `node_wait_` is the wait node (wait_node.h) the task is suspended on,
//    if it suspended on one: published and unpublished by the task under
//    `mu_`, ended as cancelled by cancel() under `mu_`, so cancel() never
//    touches a node whose frame is gone. While it is set, it is what the
//    task waits on, whatever `waiter_` holds.
//  - `waiter_` is the future the task last suspended on. It is written only
//    by the task itself (in suspend_on) and read by cancel(), both under
//    `mu_`. It is not cleared on resume: cancelling a stale, already-done
//    waiter fails, and cancel() then sets `must_cancel_`, which is exactly
//    asyncio's answer for a task that is running.
//  - cancel(): if the waiter can be cancelled, its completion wakes the task
//    and the awaiter raises CancelledError. Otherwise `must_cancel_` is set;
//    the task sees it at its next suspension (suspend_on cancels what it is
//    about to wait on) or when it resumes (throw_if_cancel_requested).
//  - `must_cancel_flag_` mirrors `must_cancel_` (stored under `mu_` with
//    release, read with acquire) so the common "not cancelled" resume path
//    takes no lock.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/context.h"
#include "weft/core/detail/future_state.h"
#include "weft/core/detail/wait_node.h"

namespace weft::detail {

class TaskBase;

// The part of a cancel scope (sched/cancel_scope.h) that the task's
// suspension protocol needs. Scopes active in a task form a chain from the
// innermost (TaskBase::scope_top_) outwards through `parent_`.
//
// Threads:
//  - `parent_` is written by the task's thread while the scope is not
//    active, then only read by that thread.
//  - `task_` (the task the scope is active in) and `reason_` are guarded by
//    `mu_`, so cancel() from any thread either sees the scope active and
//    wakes that task, or sees it inactive.
//  - `cancel_called_` and `expired_` are set under `mu_` after `reason_`
//    (release) and read lock-free (acquire) by the task at its checkpoints
//    and by anyone asking.
//  - `shield_` may be changed at any time from any thread (Trio's
//    `CancelScope.shield` property): stored with release, read with acquire
//    at the task's checkpoints and under the task's lock by Task::cancel.
//    Lowering it wakes the task if a cancellation became visible.
//  - `deadline_ns_` (absolute, on the runtime's clock; kNoDeadline for none)
//    is written by the task running the scope, or by anyone while the scope
//    is not active; the task compares it with the clock at every checkpoint
//    (relaxed: a stale read only delays the expiry to the scope's timer).
class CancelScopeState : public RefCounted {
 public:
  static constexpr std::int64_t kNoDeadline = INT64_MAX;

  // A scope is made for every timeout: from the frame pool, as futures are.
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { deallocate_frame(p, size); }

  // Requests cancellation of everything inside the scope; false if already
  // requested. Any thread.
  bool cancel(std::string reason);
  // The deadline passed: marks the scope expired and cancels it; false if it
  // was cancelled already (then it stays not expired). Any thread.
  bool expire();
  bool cancel_called() const noexcept { return cancel_called_.load(std::memory_order_acquire); }
  bool expired() const noexcept { return expired_.load(std::memory_order_acquire); }
  std::string reason() const;

  bool shield() const noexcept { return shield_.load(std::memory_order_acquire); }
  // Any thread, any time; takes effect at the task's next checkpoint (at
  // once if lowering it exposes a cancellation while the task waits).
  void set_shield(bool on);

  std::int64_t deadline_ns() const noexcept { return deadline_ns_.load(std::memory_order_relaxed); }
  void set_deadline_ns(std::int64_t d) noexcept { deadline_ns_.store(d, std::memory_order_relaxed); }

  // The byte-sized fields first: they fit in the tail padding of RefCounted
  // (after its 4-byte count), which the ABI lets a derived class reuse.
 private:
  mutable detail::SpinLock mu_;
  std::atomic<bool> cancel_called_{false};
  std::atomic<bool> expired_{false};
  std::atomic<bool> shield_{false};

 public:
  CancelScopeState* parent_ = nullptr;

 private:
  friend class TaskBase;
  bool cancel_impl(std::string reason, bool expiring);
  // For a scope no other thread can reach while this is called (see
  // TaskBase::enter_scope): its readers are ordered after or before it by
  // other means, so mu_ is not needed.
  void set_task_unshared(TaskBase* t) ABSL_NO_THREAD_SAFETY_ANALYSIS { task_ = t; }

  TaskBase* task_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string reason_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::int64_t> deadline_ns_{kNoDeadline};
};

struct PromiseBase;

class TaskBase : public FutureStateBase {
 public:
  TaskBase(LoopBase* loop, std::string&& name);
  ~TaskBase() override;

  // Runs one step; called by a worker that dequeued the task.
  // *this may be destroyed by the time it returns.
  void run() noexcept;
  // Makes the task runnable on its loop.
  void schedule(Wake how) noexcept { loop()->schedule(this, how); }

  // asyncio Task.cancel(msg): a request, see the file comment.
  bool cancel(std::string msg) override;
  int cancelling() const noexcept { return num_cancels_.load(std::memory_order_relaxed); }
  int uncancel() noexcept;
  // True while a request waits for the task's next checkpoint (it was not
  // delivered to what the task awaits, or a shield defers it). Any thread.
  bool cancel_pending() const noexcept {
    return must_cancel_flag_.load(std::memory_order_acquire);
  }
  // Takes a pending request that no shield defers, without raising it:
  // for built-ins that raise a CancelledError standing for it already.
  bool take_pending_request(std::string* msg) { return take_must_cancel(msg); }
  // The message of the latest request, delivered or not ("" if none).
  std::string last_cancel_message() const;

  std::string name() const;
  void set_name(std::string name);
  std::uint64_t id() const noexcept { return id_; }
  std::string describe() const override;
  // "weft::Coro<int> fetch(int) (src/fetch.cc:12)": the body's coroutine
  // function, while the body exists ("" after it finished).
  std::string body_where() const;
  // What the task is waiting on, for task dumps ("" when it is not waiting).
  std::string waiting_on() const;
  // "Task 'a' -> awaits Task 'b' -> awaits Future@0x..." for task dumps.
  std::string await_chain() const;
  bool started() const noexcept { return started_.load(std::memory_order_relaxed); }

  // --- Suspension protocol, used by awaiters running inside this task. ---
  // Suspends the task at `h` until `f` completes (waking through `w`).
  // Returns false when the task must not suspend (f already done).
  // Throws RuntimeError if f belongs to another runtime or is this task.
  // A checkpoint: a cancelled scope or a pending request cancels `f`.
  bool suspend_on(FutureStateBase& f, Waiter& w, std::coroutine_handle<> h);
  // The same for a wait that is a node in the awaiting frame (wait_node.h):
  // publishes `n` for cancellers, then arms it. A checkpoint like
  // suspend_on: a cancelled scope or a pending request ends `n` as
  // cancelled. False when the task must not suspend (n ended already).
  bool suspend_on_node(WaitNode& n, std::coroutine_handle<> h);
  // After a wait on `n` ended (or was given up): unpublishes it, so no
  // canceller touches it any more. True if it ended as cancelled; then
  // *msg is the cancellation's message.
  bool end_node_wait(WaitNode& n, std::string* msg) noexcept;
  // Suspends at `h` and reschedules the task at the back of the queue.
  void suspend_and_yield(std::coroutine_handle<> h) noexcept;
  // A checkpoint on resume: raises CancelledError if a scope visible from
  // the innermost one is cancelled (or its deadline has passed), or if a
  // request is pending.
  void throw_if_cancel_requested() {
    // Inline fast path: outside any scope, with no request pending (acquire:
    // pairs with the release store of the flag in deliver()).
    if (ABSL_PREDICT_TRUE(innermost_scope() == nullptr &&
                          !must_cancel_flag_.load(std::memory_order_acquire))) {
      return;
    }
    throw_if_cancelled_slow();
  }
  // For awaiters of a future that completed: raises CancelledError only for
  // a pending request (asyncio's rule: a request that arrived while the task
  // was being woken wins over the result). A scope's cancellation reached
  // the future itself if it was in time; otherwise the next checkpoint
  // delivers it.
  void throw_if_request_pending() {
    if (ABSL_PREDICT_FALSE(must_cancel_flag_.load(std::memory_order_acquire))) {
      throw_if_request_pending_slow();
    }
  }

  // --- Cancel scopes (task thread only) ---
  // Makes `s` the innermost active scope of this task. `shared`: whether
  // `s` may be cancelled from other threads through a handle (CancelScope);
  // one only this task and callbacks it orders after entry can reach
  // (wait_for's timeout) is marked active without taking its lock.
  void enter_scope(CancelScopeState* s, bool shared = true);
  // Leaves `s`, which must be the innermost scope; `shared` as at entry
  // (for an unshared one, nothing else may still be using it).
  void exit_scope(CancelScopeState* s, bool shared = true);
  // Unlocked read, valid on the task's own thread: only that thread writes scope_top_ (under
  // mu_, for the readers on other threads), so its own reads cannot race with a write.
  CancelScopeState* innermost_scope() const noexcept ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return scope_top_;
  }
  // True if a cancelled scope is visible from `from` (no shield in
  // between); sets *reason to that scope's reason.
  ABSL_ATTRIBUTE_NOINLINE bool scope_cancellation(const CancelScopeState* from,
                                                  std::string* reason) const;
  // The same, after expiring the visible scopes whose deadline has passed on
  // the runtime's clock (Trio checks deadlines at every checkpoint). Must
  // not be called under this task's lock (expiring a scope wakes the task).
  // (Out of line: the common checkpoint, outside any scope, stays short.)
  ABSL_ATTRIBUTE_NOINLINE bool check_scopes(CancelScopeState* from, std::string* reason);
  // The earliest deadline visible from the innermost scope (ns on the
  // runtime's clock), kNoDeadline if none, INT64_MIN if a visible scope is
  // cancelled (Trio's current_effective_deadline).
  std::int64_t effective_deadline_ns() const;

  // Pinned tasks always run on their loop (set before the first schedule).
  bool pinned() const noexcept { return pinned_; }
  void set_pinned(bool pinned) noexcept { pinned_ = pinned; }

  // Destroys the body of a task that can never finish (runtime teardown),
  // completing it as cancelled.
  void abandon(std::string msg) noexcept;

  // Link for the runtime's global (inject) queue; owned by that queue while
  // the task is in it.
  TaskBase* queue_next_ = nullptr;
  // Intrusive links for the runtime's registry of live tasks; owned by it.
  TaskBase* registry_prev_ = nullptr;
  TaskBase* registry_next_ = nullptr;
  // (The registry's shard index is with the small fields at the end.)

 protected:
  friend struct PromiseBase;
  friend class CancelScopeState;
  // The body's frame finished (its final suspend); complete the task.
  virtual void on_body_done() noexcept = 0;
  // The promise of `body` (this task's body frame), typed by the subclass.
  virtual const PromiseBase& promise_of(std::coroutine_handle<> body) const noexcept = 0;
  // Destroys the body frame, publishes the outcome and drops the running
  // reference. *this may be destroyed past this call.
  void finish(Outcome outcome) noexcept;
  // For TaskState::destroy: destroys the body if it is still there (a task
  // that never ran), keeping the block. Only the last reference's holder.
  void destroy_body_keeping_block() noexcept ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (body_) destroy_frame_keeping_block(std::exchange(body_, {}));
  }
  // The size of the body's frame, known once the frame is destroyed.
  std::size_t body_frame_bytes() const noexcept { return frame_bytes_; }
  // Adopts the body frame (the constructor of the subclass, before the task
  // is shared).
  void set_body_unshared(std::coroutine_handle<> body) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    body_ = body;
  }
  // The body frame, for the task's own thread (the only writer; dumps on
  // other threads read it under mu_).
  std::coroutine_handle<> body_unlocked() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return body_; }
  // For on_body_done: classifies the body's exception (CancelledError makes
  // the task cancelled) and records it. Returns the outcome to finish with.
  Outcome record_exception(std::exception_ptr e) noexcept;
  // If a cancellation is pending when the body returns, asyncio makes the
  // task cancelled instead of done. Returns true if that happened.
  bool take_cancel_at_return() noexcept;

  std::coroutine_handle<> resume_point_;

 private:
  void throw_if_cancelled_slow();
  void throw_if_request_pending_slow();
  // Every destruction of the body frame: the frame's block is this state's,
  // so the frame's operator delete leaves it to destroy() (coro.h) and
  // records the frame's size in frame_bytes_.
  void destroy_frame_keeping_block(std::coroutine_handle<> body) noexcept;
  bool take_must_cancel(std::string* msg);
  // Leaves a request pending for the task's next checkpoint.
  void set_must_cancel_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    must_cancel_ = true;
    // Release: pairs with the acquire loads of the lock-free checks.
    must_cancel_flag_.store(true, std::memory_order_release);
  }
  // Delivers a counted request: cancels what the task waits on, or leaves
  // the request pending for its next checkpoint.
  void deliver(std::string msg);
  // Called by CancelScopeState::cancel: wakes the task if it waits inside `s`.
  void wake_for_scope(CancelScopeState* s, const std::string& reason);
  // Called by CancelScopeState::set_shield(false): delivers what the shield
  // kept out, if the task still runs inside `s`.
  void on_shield_lowered(CancelScopeState* s);
  // True if an active scope shields the task from outside cancellation.
  bool shielded_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool inside_locked(const CancelScopeState* s) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Fields in an order without padding holes (the byte-sized ones last,
  // together): a task's size is what a million idle ones cost.
  const std::uint64_t id_;
  // The task's context variables: a copy of its creator's, current during
  // each step. Touched only by the thread running the task.
  ContextData context_;

  // What most tasks never use, out of line: made by the first name or the
  // first cancellation request with a message.
  struct Cold {
    // An unnamed task is called "Task-<id>" (asyncio's default), formatted
    // when asked for; set_name() names it, even with "".
    bool named = false;
    std::string name;
    // The latest request's message; kept after its delivery, for built-ins
    // that must re-raise a request their inner await swallowed (wait_for).
    std::string cancel_request_msg;
  };
  Cold& cold_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string cancel_request_msg_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cold_ ? cold_->cancel_request_msg : std::string();
  }
  void set_cancel_request_msg_locked(const std::string& msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (cold_ || !msg.empty()) cold_locked().cancel_request_msg = msg;
  }

  // The body's frame until it is destroyed (written under mu_ by the task's
  // thread, so a dump can read the promise's location under mu_).
  std::coroutine_handle<> body_ ABSL_GUARDED_BY(mu_);
  RefPtr<FutureStateBase> waiter_ ABSL_GUARDED_BY(mu_);
  WaitNode* node_wait_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::unique_ptr<Cold> cold_ ABSL_GUARDED_BY(mu_);
  // Innermost active cancel scope. Written by the task's thread under mu_;
  // that thread may read it without the lock.
  CancelScopeState* scope_top_ ABSL_GUARDED_BY(mu_) = nullptr;

  std::atomic<int> num_cancels_{0};
  // Written by the running thread; read by dumps from anywhere (relaxed: a
  // diagnostic only).
  std::atomic<bool> started_{false};
  std::atomic<bool> must_cancel_flag_{false};
  bool pinned_ = false;
  mutable detail::SpinLock mu_;
  bool must_cancel_ ABSL_GUARDED_BY(mu_) = false;

 public:
  // The shard of the runtime's registry that links this task
  // (kNotRegistered: none); owned by the registry.
  static constexpr std::uint16_t kNotRegistered = UINT16_MAX;
  std::uint16_t registry_shard_ = kNotRegistered;

 private:
  // Set when the body frame is destroyed (destroy_frame_keeping_block), by
  // the thread that destroys it, before the running reference goes; read by
  // TaskState::destroy after the last release, which the reference count's
  // acq_rel orders after that write.
  std::uint32_t frame_bytes_ = 0;
};

// The task running on this thread, or null.
inline TaskBase* current_task_base_checked(const char* what) {
  TaskBase* t = current_task_base();
  if (t == nullptr) {
    throw RuntimeError(std::string(what) + " must be awaited inside a weft task");
  }
  return t;
}

}  // namespace weft::detail
