// weft::Future<T>: a result placeholder with asyncio.Future's semantics.
//
// A Future belongs to the loop that was running when it was made; its done
// callbacks run there. Completing, cancelling and observing a Future are safe
// from any thread: for any threads X and Y, everything X did before a
// successful set_result / set_exception / cancel is visible to Y once Y sees
// done() == true (or its callback or awaiting task runs).
//
// Handles are cheap to copy; copies share one state.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <concepts>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/core/detail/await.h"
#include "weft/core/detail/future_state.h"

namespace weft {

// Identifies one add_done_callback registration. It keeps the registration's
// node alive (not the future, not the callback), so it stays safe to pass to
// remove_done_callback whatever happened meanwhile.
class CallbackHandle {
 public:
  CallbackHandle() = default;

 private:
  template <typename T>
  friend class BasicFuture;
  explicit CallbackHandle(detail::RefPtr<detail::CallbackNode> n) : node_(std::move(n)) {}
  detail::RefPtr<detail::CallbackNode> node_;
};

// The read side shared by Future<T> and Task<T>: what `wait`, `gather` and
// callbacks see.
template <typename T>
class BasicFuture {
 public:
  using value_type = T;

  bool valid() const noexcept { return static_cast<bool>(state_); }
  bool done() const { return state().done(); }
  bool cancelled() const { return state().cancelled(); }

  // The value. InvalidStateError if not done, CancelledError if cancelled,
  // the stored exception if it failed.
  std::add_lvalue_reference_t<const T> result() const {
    state().check_result();
    return storage_->value();
  }
  // The value as `co_await` hands it back (a copy; a move-only value is
  // moved out, once), or throws like result(). Must be done.
  T take() const {
    state().check_result();
    return storage_->take_value();
  }

  // The stored exception, or null if it succeeded. InvalidStateError if not
  // done, CancelledError if cancelled.
  std::exception_ptr exception() const { return state().exception(); }

  // Removes a registration; returns how many were removed (0 or 1; 0 if it
  // already ran or was scheduled to run).
  std::size_t remove_done_callback(CallbackHandle h) const noexcept {
    return state().remove_done_callback(h.node_.get());
  }

  // `co_await f` suspends the task until f is done, then returns its value
  // (a copy; a move-only value is moved out, once) or throws.
  detail::StateAwaiter<T> operator co_await() const {
    return detail::StateAwaiter<T>(state_, storage_);
  }

  detail::FutureStateBase* state_base() const noexcept { return state_.get(); }
  std::string describe() const { return state().describe(); }
  friend bool operator==(const BasicFuture& a, const BasicFuture& b) {
    return a.state_ == b.state_;
  }

 protected:
  BasicFuture() = default;
  BasicFuture(detail::RefPtr<detail::FutureStateBase> s, detail::ValueStorage<T>* v)
      : state_(std::move(s)), storage_(v) {}

  detail::FutureStateBase& state() const {
    if (!state_) throw InvalidStateError("use of an empty Future or Task handle");
    return *state_;
  }
  // Registers `fn(handle)`; Handle is the concrete handle type, rebuilt from
  // the state when the callback runs (so the callback holds no reference
  // before it is scheduled).
  template <typename Handle, typename Fn>
  CallbackHandle add_callback_as(Fn&& fn) const {
    static_assert(std::invocable<Fn&, Handle&>, "callback must accept the future");
    return CallbackHandle(state().add_done_callback(
        [fn = std::forward<Fn>(fn)](detail::FutureStateBase& s) mutable {
          Handle h = Handle::from_state(s);
          fn(h);
        }));
  }

  detail::RefPtr<detail::FutureStateBase> state_;
  detail::ValueStorage<T>* storage_ = nullptr;
};

template <typename T = void>
class Future : public BasicFuture<T> {
  using State = detail::FutureState<T>;

 public:
  // A pending future of the running loop. RuntimeError if no loop runs on
  // this thread.
  Future() : Future(running_loop()) {}
  // A pending future of `loop`.
  explicit Future(detail::LoopBase& loop) : Future(new State(&loop)) {}

  // Completes the future. InvalidStateError if already done.
  template <typename... A>
    requires(std::is_void_v<T> ? sizeof...(A) == 0 : std::constructible_from<T, A&&...>)
  void set_result(A&&... a) const {
    static_cast<State&>(this->state()).set_result(std::forward<A>(a)...);
  }
  // Like set_result, but false instead of InvalidStateError when done (for
  // racing completers such as a timer and a canceller).
  template <typename... A>
    requires(std::is_void_v<T> ? sizeof...(A) == 0 : std::constructible_from<T, A&&...>)
  bool try_set_result(A&&... a) const {
    return static_cast<State&>(this->state()).try_set_result(std::forward<A>(a)...);
  }
  void set_exception(std::exception_ptr e) const { this->state().set_exception(std::move(e)); }
  bool try_set_exception(std::exception_ptr e) const {
    return this->state().try_set_exception(std::move(e));
  }
  template <typename E>
    requires(!std::same_as<std::decay_t<E>, std::exception_ptr>)
  void set_exception(E&& e) const {
    set_exception(std::make_exception_ptr(std::forward<E>(e)));
  }
  // Cancels the future and schedules its callbacks; false if already done.
  bool cancel(std::string msg = {}) const { return this->state().cancel(std::move(msg)); }

  // Schedules `fn(Future<T>&)` on the future's loop once it is done (at once
  // if it is already done). Callbacks run in registration order, never
  // inside set_result.
  template <typename Fn>
  CallbackHandle add_done_callback(Fn&& fn) const {
    return this->template add_callback_as<Future>(std::forward<Fn>(fn));
  }

  static Future from_state(detail::FutureStateBase& s) {
    return Future(detail::RefPtr<detail::FutureStateBase>(&s));
  }
  // For the runtime's own awaits: a pending future of `loop` that task dumps
  // show as `label` or "label(<type of fn>)" instead of its address.
  static Future labeled(detail::LoopBase& loop, const char* label,
                        const std::type_info* fn = nullptr) {
    return Future(new detail::LabeledFutureState<T>(&loop, label, fn));
  }

 private:
  explicit Future(State* adopted)
      : BasicFuture<T>(detail::RefPtr<detail::FutureStateBase>(adopted, detail::kAdoptRef),
                       adopted) {}
  explicit Future(detail::RefPtr<detail::FutureStateBase> s)
      : BasicFuture<T>(s, static_cast<State*>(s.get())) {}
  static detail::LoopBase& running_loop() {
    detail::LoopBase* l = detail::current_loop();
    if (l == nullptr) throw RuntimeError("Future() needs a running weft loop on this thread");
    return *l;
  }
};

// A handle on a future's state: a Future, Task, GatheringFuture, AnyTask or
// AnyFuture (not a Coro). What AnyFuture is made from, and what wait and
// as_completed take: a wrong argument fails at the call with this name.
template <typename F>
concept FutureHandle = requires(const F& f) {
  { f.state_base() } -> std::convertible_to<detail::FutureStateBase*>;
};

// A future or task of any result type, seen without its value (asyncio's
// duck-typed futures): what wait() and as_completed() take when futures of
// different result types are mixed. Made from any Future<T>, Task<T>,
// GatheringFuture or AnyTask; awaiting it waits and rethrows a failure, but
// hands back no value (read it from the typed handle). Thread safety: as
// for the handles it was made from.
class AnyFuture {
 public:
  AnyFuture() = default;
  template <FutureHandle F>
  AnyFuture(const F& f) : state_(f.state_base()) {}  // NOLINT: implicit on purpose

  bool valid() const noexcept { return static_cast<bool>(state_); }
  bool done() const { return state().done(); }
  bool cancelled() const { return state().cancelled(); }
  // Task::cancel for a task (a request), Future::cancel for a future.
  bool cancel(std::string msg = {}) const { return state().cancel(std::move(msg)); }
  // As BasicFuture::exception().
  std::exception_ptr exception() const { return state().exception(); }
  // Throws like result() would; returns nothing.
  void check_result() const { state().check_result(); }

  detail::StateAwaiter<void> operator co_await() const {
    return detail::StateAwaiter<void>(state_, &kNoValue);
  }

  detail::FutureStateBase* state_base() const noexcept { return state_.get(); }
  std::string describe() const { return state().describe(); }
  friend bool operator==(const AnyFuture& a, const AnyFuture& b) { return a.state_ == b.state_; }

 private:
  detail::FutureStateBase& state() const {
    if (!state_) throw InvalidStateError("use of an empty AnyFuture");
    return *state_;
  }
  static inline detail::ValueStorage<void> kNoValue{};
  detail::RefPtr<detail::FutureStateBase> state_;
};

}  // namespace weft
