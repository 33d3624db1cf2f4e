// The waiter mechanism shared by weft's synchronization primitives (Event,
// Lock, Semaphore, Condition, Barrier, the queues).
//
// Design. Every primitive keeps its state behind one SpinLock, together
// with FIFO lists of parked tasks. A task that must wait parks a SyncWaiter:
// an intrusive list node that lives in the awaiting coroutine's frame and is
// itself the one-shot wait the task suspends on (core/detail/wait_node.h), so
// a wait allocates nothing. TaskBase::suspend_on_node publishes it to the
// task's cancellation protocol: a Task::cancel() of the waiting task, or a
// cancelled scope around it, ends the node as cancelled and wakes the task,
// as for any other await.
//
// Waking ("hand-off"). A waker, holding the primitive's lock, unlinks a
// waiter, first writes whatever it hands over into the node (a queue item, a
// grant flag), then ends the wait with try_wake(). If the wait was cancelled
// first, try_wake() fails: the waker takes back what it wrote and offers it
// to the next waiter. Ownership of a resource (a lock, a permit, an item)
// therefore moves to a waiter at the moment its wait ends, under the lock,
// and never to a waiter that was cancelled.
//
// Cancellation. When the awaiting task resumes with CancelledError (its wait
// was cancelled, or it was woken and cancelled before it ran), it takes the
// lock and looks at its node:
//   linked            -> it was never woken: unlink it; nothing to give back.
//   unlinked, woken() -> a waker ended its wait: it owns what was handed over
//                        and must give it back (release the lock, return the
//                        permit, put the item back or pass it on).
//   unlinked, !woken()-> a waker tried it and failed (the wait was already
//                        cancelled): nothing was handed over.
// Because wakers end waits only under the lock, the waiter sees a settled
// state once it holds the lock.
//
// Invariants (under the primitive's lock):
//   - a node is linked in at most one list, and only between park() and the
//     unlink by a waker or by its own task;
//   - a linked node was never woken (wakers unlink before waking);
//   - after a successful try_wake() the waker never touches the node again:
//     the woken task may already run on another worker and destroy it.
//
// Memory ordering. Everything a waker writes before try_wake() (node fields
// and the primitive's state) happens-before the woken task reads it: the
// node's acq_rel state change, then the scheduler's queue hand-off, order it.
// Nodes are otherwise only read or written under the primitive's lock.
//
// Thread safety: a SyncWaiter is used by its own task and, under the lock of
// the primitive it is parked on, by wakers on any thread; cancellers reach
// it only through its task (see wait_node.h). WaiterList is not
// synchronized: its owner guards it with its lock.
#pragma once

#include <coroutine>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/core/coro.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/detail/wait_node.h"
#include "weft/core/detail/weft_dcheck.h"
#include "weft/core/errors.h"

namespace weft::detail {

class WaiterList;

// One task parked on a primitive. Not movable: lists point at it.
class SyncWaiter : public WaitNode {
 public:
  SyncWaiter() = default;
  ~SyncWaiter() {
    // Owners unlink their node before it dies (SyncAwaiter's destructor,
    // the RAII guards of Condition::wait and Barrier::wait).
    WEFT_DCHECK(!linked_ && "a SyncWaiter was destroyed while parked");
    // A frame destroyed while its task was suspended here (teardown).
    if (in_wait_) end_wait();
  }

  // --- Under the lock of the primitive owning `list` ---

  // Links *this at the back of `list`, to be woken by waking `task`; `what`
  // names the wait in task dumps ("Event::wait()"). A node may be parked
  // again once it has been unlinked and its last wait ended.
  void park(WaiterList& list, TaskBase* task, const char* what) noexcept;
  bool linked() const noexcept { return linked_; }
  // woken(): true if a waker ended the wait (the waiter was handed what the
  // primitive gives, and must give it back if it does not take it).
  // Ends the wait of an unlinked node. False if it was cancelled first. If
  // true, *this may be destroyed past this call (the woken task may already
  // be running on another worker).
  bool try_wake() noexcept { return wake(); }

  // --- By the parked task, without the lock ---

  // True once park() was called.
  bool parked() const noexcept { return task() != nullptr; }
  // Suspends the task until the wait ends (TaskBase::suspend_on_node).
  // False if it ended already (the task does not suspend).
  bool suspend(std::coroutine_handle<> h);
  // On resume: raises CancelledError if the wait was cancelled or a
  // cancellation of the task is pending (woken and cancelled at once).
  void check_resumed();

 private:
  friend class WaiterList;
  // Unpublishes the node from its task; true if the wait was cancelled.
  bool end_wait(std::string* msg = nullptr) noexcept;

  SyncWaiter* list_prev_ = nullptr;
  SyncWaiter* list_next_ = nullptr;
  bool linked_ = false;
  // Between suspend() and the end of the wait (the node is published to its
  // task's cancellers). Touched only by the owner task, on whichever thread
  // runs it; a wait's end and the next suspend() are ordered by its steps.
  bool in_wait_ = false;
};

// A waiter that can be handed an item (a queue's getter).
template <typename T>
class ItemWaiter final : public SyncWaiter {
 public:
  std::optional<T> item;  // written by the waker before try_wake()
};

// A waiter that can be granted a reserved slot (a queue's putter).
class GrantWaiter final : public SyncWaiter {
 public:
  bool granted = false;  // written by the waker before try_wake()
};

// FIFO intrusive list of parked waiters. Guarded by its owner's lock.
class WaiterList {
 public:
  WaiterList() = default;
  WaiterList(const WaiterList&) = delete;
  WaiterList& operator=(const WaiterList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

  void push_back(SyncWaiter* w) noexcept;
  void remove(SyncWaiter* w) noexcept;
  // Unlinks and returns the oldest waiter, or null.
  SyncWaiter* pop_front() noexcept;

  // Wakes the oldest waiter that has not been cancelled; false if none.
  bool wake_one() noexcept;
  // Wakes up to `n` waiters, oldest first, skipping cancelled ones; returns
  // how many were woken.
  std::size_t wake(std::size_t n) noexcept;
  // Wakes every waiter.
  std::size_t wake_all() noexcept { return wake(static_cast<std::size_t>(-1)); }

 private:
  SyncWaiter* head_ = nullptr;
  SyncWaiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

// Awaiting a parked node from a coroutine (Condition::wait, Barrier::wait).
class [[nodiscard]] ParkAwaiter {
 public:
  explicit ParkAwaiter(SyncWaiter& node) noexcept : node_(node) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return node_.suspend(h); }
  void await_resume() { node_.check_resumed(); }

 private:
  SyncWaiter& node_;
};

// The awaiter returned by a primitive's waiting call (Lock::acquire,
// Queue::get, ...). `Op` describes the operation:
//
//   using Node = SyncWaiter (or a subclass that carries a payload);
//   using Result = ...;                          // what co_await returns
//   static constexpr const char* kWhat;          // for error messages
//   bool try_now(Node&);        // takes the lock; completes the operation at
//                               // once if it can (may throw, e.g. QueueShutDown)
//   bool try_now_or_park(Node&, TaskBase*);
//                               // the same under one lock hold, parking the
//                               // node in the right list when it cannot
//   void undo(Node&) noexcept;  // gives back what try_now took (only used
//                               // when the frame is destroyed before resuming)
//   void abandon(Node&) noexcept;  // the parked task gave up (cancelled, or
//                               // its frame destroyed): unlink or give back
//   Result take(Node&, bool parked);  // the result once the wait succeeded
//
// Life cycle: kIdle -(await_ready/await_suspend completes at once)-> kReady;
// kIdle -(completes, but the step's budget is spent)-> kYielded: the task
// yields once (so a loop of uncontended awaits cannot starve its worker) and
// a cancellation requested meanwhile stays pending for the next suspension
// point (the operation already happened and is not undone); kIdle -(must
// wait)-> kParked. await_resume ends in kDone.
//
// An awaiter is movable until it is awaited, and awaited at most once.
template <typename Op>
class [[nodiscard]] SyncAwaiter {
 public:
  using Node = typename Op::Node;
  using Result = typename Op::Result;

  template <typename... A>
  explicit SyncAwaiter(std::in_place_t, A&&... a) : op_(std::forward<A>(a)...) {}
  SyncAwaiter(SyncAwaiter&& o) noexcept(std::is_nothrow_move_constructible_v<Op>)
      : op_(std::move(o.op_)) {
    WEFT_DCHECK(o.state_ == kIdle && "a SyncAwaiter can only be moved before it is awaited");
  }
  SyncAwaiter& operator=(SyncAwaiter&&) = delete;
  ~SyncAwaiter() {
    // Only reached with a live operation if the frame is destroyed while
    // the task is parked or yielded (runtime teardown), or if await_suspend
    // threw after parking.
    if (state_ == kParked) {
      op_.abandon(node_);
    } else if (state_ == kYielded) {
      op_.undo(node_);
    }
  }

  bool await_ready() {
    if (state_ != kIdle) throw InvalidStateError(std::string(Op::kWhat) + ": awaited twice");
    if (!op_.try_now(node_)) return false;
    if (consume_budget()) {
      state_ = kReady;
      return true;
    }
    state_ = kYielded;
    return false;
  }

  bool await_suspend(std::coroutine_handle<> h) {
    TaskBase* task = current_task_base();
    if (state_ == kYielded) {
      if (task == nullptr) {  // not awaited by a weft task: no yield needed
        state_ = kReady;
        return false;
      }
      task->suspend_and_yield(h);
      return true;
    }
    if (task == nullptr) {
      throw RuntimeError(std::string(Op::kWhat) + " must be awaited inside a weft task");
    }
    if (op_.try_now_or_park(node_, task)) {
      state_ = kReady;
      return false;
    }
    state_ = kParked;
    return node_.suspend(h);
    // If true, *this may already be resumed on another thread.
  }

  Result await_resume() {
    const bool parked = state_ == kParked;
    if (parked) {
      try {
        node_.check_resumed();
      } catch (...) {
        state_ = kDone;
        op_.abandon(node_);
        throw;
      }
    }
    state_ = kDone;
    return op_.take(node_, parked);
  }

  // The same wait as a Coro, for APIs that take one (create_task, the
  // combinators, cancel scopes): `create_task(q.get().as_coro())`.
  Coro<Result> as_coro() && { return run_as_coro(std::move(*this)); }

 private:
  enum State : unsigned char { kIdle, kReady, kYielded, kParked, kDone };

  static Coro<Result> run_as_coro(SyncAwaiter a) { co_return co_await std::move(a); }

  Op op_;
  Node node_;
  State state_ = kIdle;
};

}  // namespace weft::detail
