// weft::Coro<T>: the return type of a weft coroutine function.
//
// A Coro is lazy: calling the function allocates the frame and runs nothing.
// `co_await coro` runs it inline in the awaiting task (asyncio's `await
// coro`): control transfers straight into the callee and back (symmetric
// transfer, no scheduler involved, no stack growth), its result is returned
// and its exception is rethrown. To run it concurrently, give it to
// `create_task`. A Coro is single-shot and move-only.
//
// Lifetime: the Coro object owns the frame. Arguments taken by reference must
// outlive the Coro (see docs/pitfalls.md).
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "weft/core/detail/frame_alloc.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/task_base.h"
#include "weft/core/errors.h"

namespace weft {
template <typename T>
class Coro;
namespace detail {
class TaskBase;

// What a Coro<T> produced, as a value type (std::monostate for void).
template <typename T>
using ValueOrMonostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// One block per task. Every Coro frame is allocated with room in front of
// it for the state of a task (TaskState<T>, task.h), so that the task made
// of it (create_task) needs no second allocation, as Tokio's task cell holds
// header, future and output in one block:
//
//   [room for the task state: body_prefix_bytes<T>][frame]
//
// A frame that never becomes a task leaves the room unused
// (docs/scheduler.md, "What a task is made of", says what that costs). The
// block is freed by whichever of its two tenants goes last, and that order
// is fixed: a task destroys its frame (when the body finishes, is abandoned,
// or the state dies unstarted) before its state's last reference goes. So a
// frame's operator delete frees the block unless the task destroying it
// said to keep it (frame_alloc.h, KeepBodyBlock); the state frees the block
// when it is destroyed. The room holds no header: the state's size is a
// multiple of 16 for the common results, so the room is exactly the state
// and a task parked on an Event is one 320-byte block (a header would push
// it into the allocator's next class, 384).
//
// The layout relies on the frame beginning at the address operator new
// returned (coroutine_handle::address(); g++ and clang both do).

// The data of TaskState<T> (which adds only functions), for its size here.
template <typename T>
struct TaskStateLayout : TaskBase, ValueStorage<T> {};

template <typename T>
inline constexpr std::size_t body_prefix_bytes = (sizeof(TaskStateLayout<T>) + 15) / 16 * 16;

struct PromiseBase {
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.continuation_) return p.continuation_;
      if (p.root_task_ != nullptr) finish_root(p.root_task_);  // may destroy h
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  // Defined in task_base.cc: completes the task whose body this frame is.
  static void finish_root(TaskBase* task) noexcept;

  // Debug mode: a Coro destroyed before anyone awaited it or made it a task
  // is reported (asyncio's "coroutine was never awaited").
  static void report_never_awaited(const PromiseBase& p) noexcept;

  // "weft::Coro<int> fetch(int) (src/fetch.cc:12)": the coroutine function,
  // for reports and task dumps.
  std::string where() const;

  std::coroutine_handle<> continuation_;  // the awaiting coroutine, if awaited
  TaskBase* root_task_ = nullptr;         // the task, if this is a task's body
  std::exception_ptr exception_;
  // The coroutine function's definition (a pointer to static data: a store
  // per call, for reports that name code instead of frame addresses).
  std::source_location location_;

 protected:
  // The compiler constructs the promise with no arguments (no constructor
  // takes the coroutine's parameters), so the default argument is evaluated
  // in the coroutine function itself: its name and line.
  explicit PromiseBase(std::source_location where) noexcept : location_(where) {}
};

template <typename T>
struct Promise : PromiseBase {
  // The frame pool's blocks are 16-byte aligned; g++ 12 does not align a
  // coroutine frame beyond what operator new gives.
  static_assert(alignof(TaskStateLayout<T>) <= 16,
                "weft::Coro<T>: a result type aligned to more than 16 bytes is not supported "
                "(coroutine frames are 16-byte aligned)");
  static void* operator new(std::size_t size) {
    return allocate_body_block(size, body_prefix_bytes<T>);
  }
  static void operator delete(void* p, std::size_t size) noexcept {
    deallocate_body_block(p, size, body_prefix_bytes<T>);
  }

  explicit Promise(std::source_location where = std::source_location::current()) noexcept
      : PromiseBase(where) {}
  Coro<T> get_return_object() noexcept;
  template <typename U = T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(v));
  }
  T take() {
    if (exception_) std::rethrow_exception(exception_);
    return std::move(*value_);
  }
  std::optional<T> value_;
};

template <>
struct Promise<void> : PromiseBase {
  static void* operator new(std::size_t size) {
    return allocate_body_block(size, body_prefix_bytes<void>);
  }
  static void operator delete(void* p, std::size_t size) noexcept {
    deallocate_body_block(p, size, body_prefix_bytes<void>);
  }

  explicit Promise(std::source_location where = std::source_location::current()) noexcept
      : PromiseBase(where) {}
  Coro<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception_) std::rethrow_exception(exception_);
  }
};

}  // namespace detail

template <typename T = void>
class [[nodiscard]] Coro {
 public:
  using promise_type = detail::Promise<T>;
  using value_type = T;
  using Handle = std::coroutine_handle<promise_type>;

  Coro() noexcept = default;
  Coro(Coro&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Coro& operator=(Coro&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Coro(const Coro&) = delete;
  Coro& operator=(const Coro&) = delete;
  ~Coro() { reset(); }

  // False for a default-constructed or moved-from Coro.
  bool valid() const noexcept { return static_cast<bool>(h_); }

  class Awaiter {
   public:
    explicit Awaiter(Handle h) : h_(h) {}
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      h_.promise().continuation_ = awaiting;
      return h_;  // start the callee on this thread, in this task
    }
    T await_resume() { return h_.promise().take(); }

   private:
    Handle h_;
  };

  // Runs the coroutine inline; the Coro must be valid and not yet awaited.
  Awaiter operator co_await() && { return Awaiter(checked_handle()); }
  Awaiter operator co_await() & { return Awaiter(checked_handle()); }

  // Destroys the frame without running it and without the debug report of
  // a Coro never awaited: for a call that refuses the Coro with an error
  // (the error is the report).
  void discard() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }

  // For the runtime: the frame handle, and giving it up.
  Handle handle() const noexcept { return h_; }
  Handle release() noexcept { return std::exchange(h_, {}); }
  void reset() noexcept {
    if (!h_) return;
    auto h = std::exchange(h_, {});
    const detail::PromiseBase& p = h.promise();
    if (!h.done() && !p.continuation_ && p.root_task_ == nullptr && detail::debug_enabled()) {
      detail::PromiseBase::report_never_awaited(p);
    }
    h.destroy();
  }

 private:
  friend struct detail::Promise<T>;
  explicit Coro(Handle h) noexcept : h_(h) {}
  Handle checked_handle() {
    if (!h_) throw InvalidStateError("co_await of an empty or moved-from Coro");
    if (h_.promise().continuation_ || h_.done()) {
      throw InvalidStateError("a Coro can be awaited only once");
    }
    return h_;
  }

  Handle h_;
};

namespace detail {
template <typename T>
Coro<T> Promise<T>::get_return_object() noexcept {
  return Coro<T>(Coro<T>::Handle::from_promise(*this));
}
inline Coro<void> Promise<void>::get_return_object() noexcept {
  return Coro<void>(Coro<void>::Handle::from_promise(*this));
}
}  // namespace detail

}  // namespace weft
