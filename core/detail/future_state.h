// The shared state behind Future<T> and Task<T>.
//
// Life cycle: PENDING -> DONE, where DONE holds exactly one outcome (a value,
// an exception, or cancellation with a message). Any thread may complete,
// cancel, observe or wait on a state.
//
// Protocol (two atomics):
//  - `claimed_` picks the single completer: set_result / set_exception /
//    cancel exchange it to true and only the first one proceeds; the others
//    fail (InvalidStateError, or `cancel()` returning false).
//  - `waiters_` is the publication word. Its legal values:
//      0              pending, nobody waiting
//      Waiter* (even) pending, a LIFO list of waiters (newest first)
//      kDoneTag (1)   done; the outcome is readable
//    A waiter is pushed with a CAS (release: the node's fields are visible to
//    the completer). The completer writes the outcome, then exchanges the word
//    to kDoneTag (acq_rel: release publishes the outcome to every reader that
//    acquires kDoneTag; acquire makes the pushed nodes readable), reverses the
//    list it took and notifies each waiter in registration order.
//  Outcome fields are written only by the claimer, before the exchange, and
//  are read only after an acquire load saw kDoneTag: no lock is needed.
//
// Callbacks are never run inline: each one is posted to the state's loop.
// A callback registration is a heap node with an `armed_` word; whoever moves
// it from armed to fired (the completer) or to removed (remove_done_callback)
// decides its fate, so a removal either prevents the call or reports 0.
// A node is reference counted: one reference for the state while the node is
// in its waiter list, one for each handle (CallbackHandle, a combinator's
// RefPtr), so a late remove_done_callback never touches freed memory. The
// state drops its reference when the node fires, and for removed nodes when
// it unlinks them: every kCompactAfter removals, the remover takes the list
// exclusively (waiters_ = kBusyTag), unlinks the removed nodes and puts the
// rest back in order, so a long-lived future polled by many wait() calls
// keeps only its armed registrations. While the tag is busy, add_waiter and
// publish wait for it (a short walk of the list; the only time either
// waits).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "weft/core/detail/frame_alloc.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/core/errors.h"

namespace weft::detail {

class FutureStateBase;

// Something waiting for a state to complete. `notify` is called once, on the
// completing thread, after the outcome is published.
class Waiter {
 public:
  Waiter* next_ = nullptr;

 protected:
  ~Waiter() = default;

 private:
  friend class FutureStateBase;
  // True for CallbackNodes, which the state holds a reference on. Other
  // nodes (a task's wait) may be destroyed as soon as notify starts waking
  // their owner: the state does not touch them after calling it.
  virtual bool is_callback() const noexcept { return false; }
  virtual void notify(FutureStateBase& state) noexcept = 0;
};

// A registration made by add_done_callback (posted to the state's loop) or
// by the runtime's own combinators (`inline_`: run on the completing thread,
// for short bookkeeping that must not wait for a loop turn).
class CallbackNode final : public Waiter {
 public:
  using Fn = absl::AnyInvocable<void(FutureStateBase&)>;
  CallbackNode(Fn fn, bool run_inline) : fn_(std::move(fn)), inline_(run_inline) {}
  // armed -> removed; true if the callback will now never run. The winner of
  // that transition owns fn_, so a successful remove also destroys it (and
  // what it captured) at once.
  bool try_remove() noexcept;
  bool removed() const noexcept { return armed_.load(std::memory_order_acquire) == kRemoved; }

  // Made with one reference, the state's (see the file comment).
  void add_ref() const noexcept { refs_.add(); }
  void release() const noexcept {
    if (refs_.drop()) delete this;
  }

 private:
  friend class FutureStateBase;
  enum : std::uint8_t { kArmed, kFired, kRemoved };
  ~CallbackNode() = default;
  bool is_callback() const noexcept override { return true; }
  void notify(FutureStateBase& state) noexcept override;

  Fn fn_;
  const bool inline_;
  std::atomic<std::uint8_t> armed_{kArmed};
  RefCount refs_;
};

class FutureStateBase : public RefCounted {
 public:
  enum class Outcome : std::uint8_t { kPending, kValue, kException, kCancelled };

  explicit FutureStateBase(LoopBase* loop) : loop_(loop) {}

  // Future and task states are made and freed as often as coroutine frames,
  // so they come from the same per-thread pool. The virtual destructor makes
  // `delete` pass the most-derived size. Over-aligned states bypass the pool.
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { deallocate_frame(p, size); }
  static void* operator new(std::size_t size, std::align_val_t align) {
    return ::operator new(size, align);
  }
  static void operator delete(void* p, std::size_t size, std::align_val_t align) noexcept {
    ::operator delete(p, size, align);
  }

  bool done() const noexcept {
    // Pairs with the acq_rel exchange in publish().
    return waiters_.load(std::memory_order_acquire) == kDoneTag;
  }
  bool cancelled() const noexcept { return done() && outcome_ == Outcome::kCancelled; }
  Outcome outcome() const noexcept { return done() ? outcome_ : Outcome::kPending; }
  // The home loop; valid while its runtime exists (tasks never outlive it;
  // a plain Future may, see loop_id()).
  LoopBase* loop() const noexcept { return loop_; }
  // The home loop's id, which stays valid after the loop is gone
  // (post_if_live). A state that may outlive its runtime overrides this: a
  // plain future, a gather and an IO wait keep a copy; a task keeps it in
  // its dead frame's storage once done (TaskState::loop_id), which spares 8
  // bytes of every task. This default reads the loop: only for states that
  // cannot outlive it.
  virtual std::uint64_t loop_id() const noexcept { return loop_->loop_id(); }

  // Future.cancel(): false if already done (or being completed). Task
  // overrides it with asyncio's request semantics.
  virtual bool cancel(std::string msg);

  void set_exception(std::exception_ptr e);
  // Like set_exception, but false instead of throwing when already done.
  bool try_set_exception(std::exception_ptr e) noexcept;

  // Throws InvalidStateError unless done; throws CancelledError if
  // cancelled; returns the exception (null if none). Marks it retrieved.
  std::exception_ptr exception();
  // Throws InvalidStateError unless done, CancelledError if cancelled, the
  // stored exception if failed. Marks the exception retrieved.
  void check_result();
  // The cancellation message; valid once cancelled.
  const std::string& cancel_message() const noexcept {
    return cancel_msg_ ? *cancel_msg_ : kNoMessage;
  }

  // Registers `w`; false if the state is already done (w not registered).
  bool add_waiter(Waiter* w) noexcept;
  // The returned reference identifies the registration for
  // remove_done_callback.
  RefPtr<CallbackNode> add_done_callback(CallbackNode::Fn fn);
  // For the runtime: `fn` runs on the completing thread, right after the
  // outcome is published (or at once, on this thread, if already done). It
  // must be short and must not throw.
  RefPtr<CallbackNode> add_inline_callback(CallbackNode::Fn fn);
  // The same, for a registration that is never removed (no handle is made).
  void add_permanent_inline_callback(CallbackNode::Fn fn);
  // 1 if `node` was removed before it was called, 0 otherwise. The caller
  // holds a reference on `node`.
  std::size_t remove_done_callback(CallbackNode* node) noexcept;
  // The callback nodes in the waiter list now (armed or removed, not yet
  // unlinked), for tests: call it only while nobody registers or completes.
  std::size_t callback_nodes_for_testing() const noexcept;

  // Printable description for errors and task dumps.
  virtual std::string describe() const;

 protected:
  ~FutureStateBase() override;
  void destroy() noexcept override;
  // The report of an exception nobody retrieved, made as the last reference
  // goes (here rather than in the destructor, so that describe() still
  // names a task).
  void report_if_never_retrieved() noexcept;

  // Completer side: claim, write the outcome, publish.
  bool try_claim() noexcept {
    return !claimed_.exchange(true, std::memory_order_acq_rel);
  }
  void publish(Outcome outcome) noexcept;
  // For Task: marks claimed without the check (only the task completes itself).
  void mark_claimed() noexcept { claimed_.store(true, std::memory_order_relaxed); }
  void set_cancelled_outcome(std::string msg) noexcept;
  void set_exception_outcome(std::exception_ptr e) noexcept;

  void mark_retrieved() noexcept { retrieved_.store(true, std::memory_order_relaxed); }

 private:
  void add_callback_node(CallbackNode* node);
  // Unlinks the removed callback nodes (see the file comment).
  void compact_callbacks() noexcept;
  // Waits until waiters_ is not kBusyTag; returns what it then holds.
  std::uintptr_t wait_not_busy() const noexcept;
  static constexpr std::uintptr_t kDoneTag = 1;
  static constexpr std::uintptr_t kBusyTag = 2;
  static constexpr std::uint8_t kCompactAfter = 16;

  // The byte-sized fields first: they fit in the tail padding of RefCounted
  // (after its 4-byte count), which the ABI lets a derived class reuse.
  std::atomic<bool> claimed_{false};
  Outcome outcome_ = Outcome::kPending;  // written by the claimer before publish
  // Relaxed: a diagnostic flag read only by the destructor, which the last
  // release (acq_rel) orders after every access.
  std::atomic<bool> retrieved_{false};
  // Removals since the last compaction. Relaxed: it only decides when to
  // compact; the compaction itself synchronizes through waiters_.
  std::atomic<std::uint8_t> removed_since_compaction_{0};
  LoopBase* const loop_;
  std::atomic<std::uintptr_t> waiters_{0};
  std::exception_ptr exception_;
  // Out of line and only when there is one: most cancellations carry no
  // message, and most futures are never cancelled.
  std::unique_ptr<std::string> cancel_msg_;
  static const std::string kNoMessage;
};

// Value storage for a state of T. Written once by the completer before
// publication; read after done() observed it.
template <typename T>
class ValueStorage {
 public:
  template <typename... A>
  void emplace_value(A&&... a) {
    value_.emplace(std::forward<A>(a)...);
  }
  // Only when the outcome is kValue.
  const T& value() const noexcept { return *value_; }
  // What `co_await` hands back: a copy, or for move-only types the value
  // itself, moved out once (a second take is an InvalidStateError). `sole`:
  // the caller holds the only reference to the state, so nobody can read
  // the value after it: moved out even if it could be copied.
  T take_value(bool sole = false) {
    if constexpr (std::is_copy_constructible_v<T>) {
      if (sole) return std::move(*value_);
      return *value_;
    } else {
      if (value_moved_.exchange(true, std::memory_order_acq_rel)) {
        throw InvalidStateError("the move-only result was already taken");
      }
      return std::move(*value_);
    }
  }

 private:
  struct NoFlag {};
  std::optional<T> value_;
  // Only move-only results need it: a copyable one is copied out each time.
  [[no_unique_address]] std::conditional_t<std::is_copy_constructible_v<T>, NoFlag,
                                           std::atomic<bool>>
      value_moved_{};
};

// Nothing to store for void: an empty base, which takes no room in a state.
template <>
class ValueStorage<void> {
 public:
  void emplace_value() noexcept {}
  void value() const noexcept {}
  void take_value(bool = false) noexcept {}
};

// The state of a plain Future<T>.
template <typename T>
class FutureState : public FutureStateBase, public ValueStorage<T> {
 public:
  explicit FutureState(LoopBase* loop) : FutureStateBase(loop), loop_id_(loop->loop_id()) {}
  // A plain future may outlive its runtime.
  std::uint64_t loop_id() const noexcept override { return loop_id_; }

  template <typename... A>
  void set_result(A&&... a) {
    if (!try_claim()) throw InvalidStateError("result is already set: " + describe());
    this->emplace_value(std::forward<A>(a)...);
    publish(Outcome::kValue);
  }
  // Like set_result, but returns false instead of throwing when done.
  template <typename... A>
  bool try_set_result(A&&... a) {
    if (!try_claim()) return false;
    this->emplace_value(std::forward<A>(a)...);
    publish(Outcome::kValue);
    return true;
  }

 private:
  const std::uint64_t loop_id_;
};

// A future that says what it stands for in task dumps: `label`, or
// "label(<type of fn>)" ("to_thread(fetch_rows(int)::{lambda()#1})").
template <typename T>
class LabeledFutureState final : public FutureState<T> {
 public:
  LabeledFutureState(LoopBase* loop, const char* label, const std::type_info* fn)
      : FutureState<T>(loop), label_(label), fn_(fn) {}
  std::string describe() const override {
    return fn_ == nullptr ? std::string(label_) : std::string(label_) + "(" + type_name(*fn_) + ")";
  }

 private:
  const char* const label_;  // static text
  const std::type_info* const fn_;
};

}  // namespace weft::detail
