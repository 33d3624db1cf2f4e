// weft::Future<T>: asyncio.Future's semantics (state machine, exceptions,
// cancellation with a message, done callbacks scheduled on the loop in
// registration order, awaiting) plus weft's thread-safety promise: a future
// may be completed or cancelled from any thread.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::Counted;
using testing::CountedScope;
using testing::ErrorLog;
using testing::raises;

struct MyError : std::runtime_error {
  explicit MyError(int c) : std::runtime_error("my error " + std::to_string(c)), code(c) {}
  int code;
};

// --- state machine ---------------------------------------------------------

WEFT_CO_TEST(Future, InitialState) {
  Future<int> f;
  EXPECT_TRUE(f.valid());
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_THROW((void)f.result(), InvalidStateError);
  EXPECT_THROW((void)f.exception(), InvalidStateError);
  co_return;
}

WEFT_CO_TEST(Future, SetResult) {
  Future<int> f;
  f.set_result(42);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 42);
  EXPECT_EQ(f.result(), 42) << "result() can be read many times";
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(co_await f, 42);
}

// Future states come from the frame pool (16-byte blocks); an over-aligned
// value must take the aligned operator new instead (UBSan checks the access
// in the asan configuration). Outside a coroutine: g++ 12 aligns no
// coroutine frame beyond 16 bytes, so an over-aligned value must not live in
// one (docs/pitfalls.md).
struct alignas(64) CacheLineValue {
  int v = 0;
};

void check_over_aligned_future() {
  Future<CacheLineValue> f;
  f.set_result(CacheLineValue{7});
  const CacheLineValue& stored = f.result();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&stored) % alignof(CacheLineValue), 0u);
  EXPECT_EQ(f.result().v, 7);
}

WEFT_CO_TEST(Future, OverAlignedValueIsStoredAligned) {
  check_over_aligned_future();
  co_return;
}

WEFT_CO_TEST(Future, SetResultTwiceIsInvalidState) {
  Future<int> f;
  f.set_result(1);
  EXPECT_THROW(f.set_result(2), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::runtime_error("x")), InvalidStateError);
  EXPECT_FALSE(f.try_set_result(3));
  EXPECT_FALSE(f.cancel());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 1) << "the first outcome stays";
  co_return;
}

WEFT_CO_TEST(Future, TrySetResult) {
  Future<std::string> f;
  EXPECT_TRUE(f.try_set_result("first"));
  EXPECT_FALSE(f.try_set_result("second"));
  EXPECT_EQ(f.result(), "first");
  co_return;
}

WEFT_CO_TEST(Future, SetException) {
  Future<int> f;
  f.set_exception(MyError(7));
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  try {
    (void)f.result();
    ADD_FAILURE() << "result() must rethrow";
  } catch (const MyError& e) {
    EXPECT_EQ(e.code, 7);
  }
  std::exception_ptr e = f.exception();
  WEFT_CO_ASSERT_TRUE(e != nullptr);
  EXPECT_THROW(std::rethrow_exception(e), MyError);
  auto awaited = co_await raises<MyError>(f);
  WEFT_CO_ASSERT_TRUE(awaited.has_value());
  EXPECT_EQ(awaited->code, 7);
  EXPECT_THROW(f.set_exception(MyError(8)), InvalidStateError);
  EXPECT_THROW(f.set_result(1), InvalidStateError);
  EXPECT_FALSE(f.cancel());
}

WEFT_CO_TEST(Future, SetExceptionPtr) {
  Future<void> f;
  f.set_exception(std::make_exception_ptr(std::logic_error("logic")));
  EXPECT_THROW(f.result(), std::logic_error);
  EXPECT_THROW(co_await f, std::logic_error);
}

WEFT_CO_TEST(Future, SetExceptionOfNonStandardType) {
  Future<int> f;
  f.set_exception(std::make_exception_ptr(123));
  bool caught = false;
  try {
    (void)co_await f;
  } catch (int v) {
    caught = v == 123;
  }
  EXPECT_TRUE(caught);
}

WEFT_CO_TEST(Future, SetNullExceptionIsRejected) {
  Future<int> f;
  EXPECT_THROW(f.set_exception(std::exception_ptr()), std::invalid_argument);
  EXPECT_FALSE(f.done()) << "a rejected set_exception leaves the future pending";
  f.set_result(1);
  EXPECT_EQ(f.result(), 1);
  co_return;
}

WEFT_CO_TEST(Future, Cancel) {
  Future<int> f;
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.done());
  EXPECT_TRUE(f.cancelled());
  EXPECT_THROW((void)f.result(), CancelledError);
  EXPECT_THROW((void)f.exception(), CancelledError);
  EXPECT_FALSE(f.cancel()) << "cancel() of a done future returns false";
  EXPECT_THROW(f.set_result(1), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::runtime_error("x")), InvalidStateError);
  EXPECT_FALSE(f.try_set_result(1));
  EXPECT_THROW((void)co_await f, CancelledError);
}

WEFT_CO_TEST(Future, CancelMessageArrivesInCancelledError) {
  Future<int> f;
  EXPECT_TRUE(f.cancel("stop now"));
  try {
    (void)f.result();
    ADD_FAILURE() << "result() must throw";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "stop now");
  }
  try {
    (void)f.exception();
    ADD_FAILURE() << "exception() of a cancelled future must throw";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "stop now");
  }
  auto e = co_await raises<CancelledError>(f);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "stop now");
  EXPECT_FALSE(f.cancel("again"));
  auto e2 = co_await raises<CancelledError>(f);
  WEFT_CO_ASSERT_TRUE(e2.has_value());
  EXPECT_EQ(e2->message(), "stop now") << "a second cancel must not change the message";
}

WEFT_CO_TEST(Future, CancelWithoutMessageHasEmptyMessage) {
  Future<void> f;
  f.cancel();
  auto e = co_await raises<CancelledError>(f);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "");
}

WEFT_CO_TEST(Future, CancelledErrorIsNotAStdException) {
  static_assert(!std::is_base_of_v<std::exception, CancelledError>);
  static_assert(std::is_base_of_v<BaseException, CancelledError>);
  Future<int> f;
  f.cancel("m");
  bool by_std = false;
  bool by_name = false;
  try {
    try {
      (void)f.result();
    } catch (const std::exception&) {
      by_std = true;
    }
  } catch (const CancelledError&) {
    by_name = true;
  }
  EXPECT_FALSE(by_std);
  EXPECT_TRUE(by_name);
  co_return;
}

WEFT_CO_TEST(Future, CopiesShareOneState) {
  Future<int> f;
  Future<int> g = f;
  EXPECT_TRUE(f == g);
  Future<int> other;
  EXPECT_FALSE(f == other);
  g.set_result(5);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), 5);
  EXPECT_THROW(f.set_result(6), InvalidStateError);
  co_return;
}

WEFT_CO_TEST(Future, VoidFuture) {
  Future<void> f;
  EXPECT_THROW(f.result(), InvalidStateError);
  f.set_result();
  EXPECT_TRUE(f.done());
  f.result();  // does not throw
  co_await f;
  EXPECT_THROW(f.set_result(), InvalidStateError);
}

WEFT_CO_TEST(Future, ExplicitLoopConstructor) {
  Loop& loop = get_running_loop();
  Future<int> f(loop);
  f.set_result(3);
  EXPECT_EQ(co_await f, 3);
}

TEST(Future, ConstructionOutsideARuntimeIsRuntimeError) {
  EXPECT_THROW(Future<int>(), RuntimeError);
  EXPECT_THROW(Future<void>(), RuntimeError);
  EXPECT_THROW(Future<std::unique_ptr<int>>(), RuntimeError);
}

// A plain thread beside a running runtime still has no loop of its own.
WEFT_CO_TEST(Future, ConstructionOnANonLoopThreadIsRuntimeError) {
  bool threw = false;
  std::thread th([&] {
    try {
      Future<int> f;
    } catch (const RuntimeError&) {
      threw = true;
    }
  });
  th.join();
  EXPECT_TRUE(threw);
  co_return;
}

// --- awaiting ------------------------------------------------------------

Coro<void> complete_later(Future<int> f, int v) {
  co_await yield_now();
  f.set_result(v);
}

WEFT_CO_TEST(FutureAwait, PendingFutureSuspendsUntilSet) {
  Future<int> f;
  Task<void> setter = create_task(complete_later(f, 11));
  EXPECT_EQ(co_await f, 11);
  co_await setter;
}

Coro<int> await_future(Future<int> f) { co_return co_await f; }

WEFT_CO_TEST(FutureAwait, ManyWaitersAllWake) {
  Future<int> f;
  std::vector<Task<int>> waiters;
  for (int i = 0; i < 100; ++i) waiters.push_back(create_task(await_future(f)));
  co_await yield_now();
  f.set_result(9);
  for (auto& t : waiters) EXPECT_EQ(co_await t, 9);
}

WEFT_CO_TEST(FutureAwait, ManyWaitersAllSeeTheException) {
  Future<int> f;
  std::vector<Task<int>> waiters;
  for (int i = 0; i < 20; ++i) waiters.push_back(create_task(await_future(f)));
  co_await yield_now();
  f.set_exception(MyError(3));
  for (auto& t : waiters) {
    auto e = co_await raises<MyError>(t);
    EXPECT_TRUE(e.has_value());
  }
  (void)f.exception();
}

Coro<void> set_flag(bool* b) {
  *b = true;
  co_return;
}

// asyncio: awaiting a done future does not yield to the loop.
WEFT_CO_TEST_WITH(FutureAwait, DoneFutureDoesNotSuspend, testing::test_options(1)) {
  bool other_ran = false;
  Task<void> other = create_task(set_flag(&other_ran));
  Future<int> f;
  f.set_result(1);
  EXPECT_EQ(co_await f, 1);
  Future<void> failed;
  failed.set_exception(MyError(1));
  EXPECT_THROW(co_await failed, MyError);
  Future<void> cancelled;
  cancelled.cancel();
  EXPECT_THROW(co_await cancelled, CancelledError);
  EXPECT_FALSE(other_ran) << "another task ran while awaiting done futures";
  co_await other;
}

WEFT_CO_TEST(FutureAwait, MoveOnlyValueIsMovedOutOnce) {
  Future<std::unique_ptr<int>> f;
  f.set_result(std::make_unique<int>(77));
  EXPECT_NE(f.result(), nullptr) << "result() only looks";
  std::unique_ptr<int> p = co_await f;
  WEFT_CO_ASSERT_TRUE(p != nullptr);
  EXPECT_EQ(*p, 77);
  EXPECT_THROW((void)co_await f, InvalidStateError) << "the value was already moved out";
}

Coro<std::unique_ptr<int>> take_unique(Future<std::unique_ptr<int>> f) {
  co_return co_await f;
}

WEFT_CO_TEST(FutureAwait, MoveOnlyValueWithTwoWaiters) {
  Future<std::unique_ptr<int>> f;
  Task<std::unique_ptr<int>> a = create_task(take_unique(f));
  Task<std::unique_ptr<int>> b = create_task(take_unique(f));
  co_await yield_now();
  f.set_result(std::make_unique<int>(5));
  int got = 0;
  int invalid = 0;
  for (Task<std::unique_ptr<int>>* t : {&a, &b}) {
    try {
      std::unique_ptr<int> p = co_await *t;
      if (p && *p == 5) ++got;
    } catch (const InvalidStateError&) {
      ++invalid;
    }
  }
  EXPECT_EQ(got, 1);
  EXPECT_EQ(invalid, 1);
}

WEFT_CO_TEST(FutureAwait, CountedValueNeitherLeakedNorDestroyedTwice) {
  CountedScope scope;
  {
    Future<Counted> f;
    f.set_result(Counted(3));
    EXPECT_EQ(f.result().value, 3);
    Counted a = co_await f;  // a copy: the future keeps its value
    Counted b = co_await f;
    EXPECT_EQ(a.value, 3);
    EXPECT_EQ(b.value, 3);
    EXPECT_EQ(f.result().value, 3);
  }
  EXPECT_EQ(Counted::alive(), 0);
  {
    Future<Counted> never_set;  // pending when dropped
    Future<Counted> cancelled;
    cancelled.cancel();
  }
  EXPECT_EQ(Counted::alive(), 0);
}

// Awaiting needs a task to suspend: a coroutine resumed by hand from a loop
// callback (no task running) gets a clear RuntimeError, not a hang.
WEFT_CO_TEST(FutureAwait, AwaitedOutsideATaskIsRuntimeError) {
  Future<int> pending;
  Future<bool> threw;
  call_soon([pending, threw] {
    auto inner = [](Future<int> f, Future<bool> out) -> Coro<void> {
      try {
        (void)co_await f;
        out.set_result(false);
      } catch (const RuntimeError&) {
        out.set_result(true);
      }
    };
    Coro<void> c = inner(pending, threw);
    c.handle().resume();
  });
  EXPECT_TRUE(co_await threw);
  EXPECT_FALSE(pending.done());
}

// --- done callbacks --------------------------------------------------------

WEFT_CO_TEST(FutureCallbacks, NeverRunInsideSetResult) {
  Future<int> f;
  Future<void> ran;
  bool called = false;
  int seen = 0;
  f.add_done_callback([&](Future<int>& g) {
    called = true;
    seen = g.result();
    ran.set_result();
  });
  f.set_result(5);
  EXPECT_FALSE(called) << "a done callback ran inline inside set_result";
  co_await ran;
  EXPECT_TRUE(called);
  EXPECT_EQ(seen, 5);
}

WEFT_CO_TEST(FutureCallbacks, NeverRunInsideSetExceptionOrCancel) {
  Future<int> a;
  Future<int> b;
  std::atomic<int> calls{0};
  Future<void> done_a;
  Future<void> done_b;
  a.add_done_callback([&](Future<int>& g) {
    ++calls;
    EXPECT_NE(g.exception(), nullptr);
    done_a.set_result();
  });
  b.add_done_callback([&](Future<int>& g) {
    ++calls;
    EXPECT_TRUE(g.cancelled());
    done_b.set_result();
  });
  a.set_exception(MyError(1));
  b.cancel("c");
  EXPECT_EQ(calls.load(), 0);
  co_await done_a;
  co_await done_b;
  EXPECT_EQ(calls.load(), 2);
}

WEFT_CO_TEST(FutureCallbacks, RunInRegistrationOrderExactlyOnce) {
  Future<int> f;
  std::vector<int> order;
  Future<void> last;
  for (int i = 0; i < 10; ++i) {
    f.add_done_callback([&order, i](Future<int>&) { order.push_back(i); });
  }
  f.add_done_callback([&](Future<int>&) { last.set_result(); });
  f.set_result(0);
  co_await last;
  co_await testing::yield_times(5);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

WEFT_CO_TEST(FutureCallbacks, AddedToDoneFutureIsScheduledNotInline) {
  Future<int> f;
  f.set_result(8);
  bool called = false;
  Future<void> ran;
  f.add_done_callback([&](Future<int>& g) {
    called = true;
    EXPECT_EQ(g.result(), 8);
    ran.set_result();
  });
  EXPECT_FALSE(called) << "the callback ran inside add_done_callback";
  co_await ran;
  EXPECT_TRUE(called);
}

WEFT_CO_TEST(FutureCallbacks, OrderKeptAcrossBeforeAndAfterDone) {
  Future<int> f;
  std::vector<int> order;
  Future<void> last;
  f.add_done_callback([&](Future<int>&) { order.push_back(1); });
  f.add_done_callback([&](Future<int>&) { order.push_back(2); });
  f.set_result(0);
  f.add_done_callback([&](Future<int>&) { order.push_back(3); });
  f.add_done_callback([&](Future<int>&) {
    order.push_back(4);
    last.set_result();
  });
  co_await last;
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

WEFT_CO_TEST(FutureCallbacks, CallbackGetsTheSameFuture) {
  Future<int> f;
  Future<void> ran;
  bool same = false;
  f.add_done_callback([&](Future<int>& g) {
    same = g == f;
    ran.set_result();
  });
  f.set_result(1);
  co_await ran;
  EXPECT_TRUE(same);
}

WEFT_CO_TEST(FutureCallbacks, RemoveReturnsOneThenZeroAndPreventsTheCall) {
  Future<int> f;
  int removed_calls = 0;
  int kept_calls = 0;
  Future<void> ran;
  CallbackHandle h = f.add_done_callback([&](Future<int>&) { ++removed_calls; });
  f.add_done_callback([&](Future<int>&) {
    ++kept_calls;
    ran.set_result();
  });
  EXPECT_EQ(f.remove_done_callback(h), 1u);
  EXPECT_EQ(f.remove_done_callback(h), 0u);
  f.set_result(1);
  co_await ran;
  co_await testing::yield_times(5);
  EXPECT_EQ(removed_calls, 0);
  EXPECT_EQ(kept_calls, 1);
  EXPECT_EQ(f.remove_done_callback(h), 0u);
}

WEFT_CO_TEST(FutureCallbacks, RemoveAfterItRanReturnsZero) {
  Future<int> f;
  int calls = 0;
  Future<void> ran;
  CallbackHandle h = f.add_done_callback([&](Future<int>&) {
    ++calls;
    ran.set_result();
  });
  f.set_result(1);
  co_await ran;
  EXPECT_EQ(f.remove_done_callback(h), 0u);
  EXPECT_EQ(calls, 1);
}

// asyncio removes scheduled callbacks from the future when it completes: a
// remove after set_result finds nothing, and the callback still runs once.
WEFT_CO_TEST(FutureCallbacks, RemoveAfterCompletionReturnsZeroAndCallbackRuns) {
  Future<int> f;
  int calls = 0;
  Future<void> ran;
  CallbackHandle h = f.add_done_callback([&](Future<int>&) {
    ++calls;
    ran.set_result();
  });
  f.set_result(1);
  EXPECT_EQ(f.remove_done_callback(h), 0u);
  co_await ran;
  EXPECT_EQ(calls, 1);
}

// Removed registrations are unlinked as they pile up (every 16 removals),
// the armed ones keep their order, and the handles of unlinked ones stay
// safe to use.
WEFT_CO_TEST(FutureCallbacks, RemovedRegistrationsAreUnlinkedInOrder) {
  Future<int> f;
  std::vector<int> order;
  Future<void> ran;
  f.add_done_callback([&](Future<int>&) { order.push_back(1); });
  std::vector<CallbackHandle> removed;
  for (int i = 0; i < 1000; ++i) {
    removed.push_back(f.add_done_callback([&](Future<int>&) { order.push_back(-1); }));
  }
  f.add_done_callback([&](Future<int>&) { order.push_back(2); });
  for (const CallbackHandle& h : removed) EXPECT_EQ(f.remove_done_callback(h), 1u);
  EXPECT_LE(f.state_base()->callback_nodes_for_testing(), 2u + 16u);
  for (const CallbackHandle& h : removed) EXPECT_EQ(f.remove_done_callback(h), 0u);
  f.add_done_callback([&](Future<int>&) {
    order.push_back(3);
    ran.set_result();
  });
  f.set_result(7);
  co_await ran;
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  for (const CallbackHandle& h : removed) EXPECT_EQ(f.remove_done_callback(h), 0u);
}

Coro<void> wait_for_event(Event& e) { co_await e.wait(); }

// A long-lived task polled by wait() many times (each call registers a node
// on it and removes it) keeps only the registrations still armed.
WEFT_CO_TEST(FutureCallbacks, PollingALongLivedTaskKeepsItsRegistrationsBounded) {
  Event ev;
  Task<void> sleeper = create_task(wait_for_event(ev));
  Task<void> finished = create_task([]() -> Coro<void> { co_return; }());
  co_await finished;
  const int polls = testing::scaled(1'000'000, 20);
  for (int i = 0; i < polls; ++i) {
    std::vector<Task<void>> both = {sleeper, finished};  // not braced in the co_await (pitfalls.md)
    auto r = co_await wait(std::move(both), std::nullopt, ReturnWhen::FIRST_COMPLETED);
    WEFT_CO_ASSERT_EQ(r.pending.size(), 1u);
  }
  EXPECT_LE(sleeper.state_base()->callback_nodes_for_testing(), 16u);
  ev.set();
  co_await sleeper;
}

// Pollers on both workers register and remove nodes on one task (so
// compactions run beside registrations) while it completes: every poller
// sees it done, and nothing is lost or freed twice (ASan, TSan).
Coro<int> poll_until_done(Task<void> watched, Task<void> finished) {
  int polls = 0;
  for (;;) {
    ++polls;
    std::vector<Task<void>> both = {watched, finished};
    auto r = co_await wait(std::move(both), std::nullopt, ReturnWhen::FIRST_COMPLETED);
    if (r.pending.empty()) co_return polls;
    if (polls % 64 == 0) co_await yield_now();
  }
}

WEFT_CO_TEST(FutureCallbacks, CompactionsRaceRegistrationsAndCompletion) {
  for (int round = 0; round < testing::scaled(20, 4); ++round) {
    Event ev;
    Task<void> sleeper = create_task(wait_for_event(ev));
    Task<void> finished = create_task([]() -> Coro<void> { co_return; }());
    co_await finished;
    std::vector<Task<int>> pollers;
    for (int p = 0; p < 4; ++p) pollers.push_back(create_task(poll_until_done(sleeper, finished)));
    co_await sleep(std::chrono::milliseconds(2));
    ev.set();
    for (Task<int>& p : pollers) EXPECT_GE(co_await p, 1);
    co_await sleeper;
  }
}

WEFT_CO_TEST(FutureCallbacks, RemoveDefaultHandleReturnsZero) {
  Future<int> f;
  EXPECT_EQ(f.remove_done_callback(CallbackHandle()), 0u);
  f.set_result(1);
  co_return;
}

Coro<void> callbacks_with_a_thrower(bool* first, bool* third) {
  Future<int> f;
  Future<void> last;
  f.add_done_callback([first](Future<int>&) { *first = true; });
  f.add_done_callback([](Future<int>&) { throw MyError(99); });
  f.add_done_callback([third, last](Future<int>&) {
    *third = true;
    last.set_result();
  });
  f.set_result(1);
  co_await last;
}

TEST(FutureCallbacks, ThrowingCallbackIsReportedAndOthersStillRun) {
  ErrorLog log;
  bool first = false;
  bool third = false;
  run(callbacks_with_a_thrower(&first, &third), testing::logged_options(log, 1));
  EXPECT_TRUE(first);
  EXPECT_TRUE(third);
  EXPECT_EQ(log.count({"my error 99"}), 1) << log.dump();
  EXPECT_EQ(log.size(), 1u) << log.dump();
}

Coro<void> callback_throws_cancelled() {
  Future<int> f;
  Future<void> last;
  f.add_done_callback([](Future<int>&) { throw CancelledError("in a callback"); });
  f.add_done_callback([last](Future<int>&) { last.set_result(); });
  f.set_result(1);
  co_await last;
}

TEST(FutureCallbacks, CallbackRaisingCancelledErrorIsReported) {
  ErrorLog log;
  run(callback_throws_cancelled(), testing::logged_options(log, 1));
  EXPECT_EQ(log.count({"in a callback"}), 1) << log.dump();
}

// Callbacks run on the future's loop: with one worker, the thread that
// called run(), even when a plain thread completed the future.
WEFT_CO_TEST_WITH(FutureCallbacks, RunOnTheLoopThreadWhenSetFromAnotherThread,
                  testing::test_options(1)) {
  const std::thread::id loop_thread = std::this_thread::get_id();
  Future<int> f;
  Future<std::thread::id> callback_thread;
  f.add_done_callback([callback_thread](Future<int>&) {
    callback_thread.set_result(std::this_thread::get_id());
  });
  std::thread th([f] { f.set_result(1); });
  std::thread::id seen = co_await callback_thread;
  th.join();
  EXPECT_EQ(seen, loop_thread);
}

// A future made for loop 1 runs its callbacks on loop 1's thread.
Coro<std::thread::id> thread_of_this_loop() { co_return std::this_thread::get_id(); }

WEFT_CO_TEST_WITH(FutureCallbacks, RunOnTheFuturesOwnLoop, testing::test_options(2)) {
  Loop& loop1 = get_running_loop().runtime().loop(1);
  std::thread::id loop1_thread = co_await loop1.create_pinned_task(thread_of_this_loop());
  Future<int> f(loop1);
  Future<std::thread::id> where;
  f.add_done_callback([where](Future<int>&) { where.set_result(std::this_thread::get_id()); });
  f.set_result(1);
  EXPECT_EQ(co_await where, loop1_thread);
}

// --- completion from other threads ----------------------------------------

class FutureThreads : public ::testing::TestWithParam<int> {};

Coro<void> await_values_set_by_threads(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    Future<int> f;
    std::thread th([f, i] {
      if (i % 2 == 1) std::this_thread::sleep_for(std::chrono::microseconds(50));
      f.set_result(i);
    });
    int v = co_await f;
    th.join();
    EXPECT_EQ(v, i);
  }
}

TEST_P(FutureThreads, TaskAwaitingFutureSetByPlainThreadWakes) {
  run(await_values_set_by_threads(testing::scaled(300, 3)),
      testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

Coro<void> await_errors_and_cancels_from_threads(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    Future<int> f;
    std::thread th([f, i] {
      if (i % 2 == 0) {
        f.set_exception(MyError(i));
      } else {
        f.cancel("from thread");
      }
    });
    if (i % 2 == 0) {
      auto e = co_await raises<MyError>(f);
      EXPECT_TRUE(e.has_value() && e->code == i);
    } else {
      auto e = co_await raises<CancelledError>(f);
      EXPECT_TRUE(e.has_value() && e->message() == "from thread");
    }
    th.join();
  }
}

TEST_P(FutureThreads, ExceptionAndCancelFromPlainThread) {
  run(await_errors_and_cancels_from_threads(testing::scaled(100, 2)),
      testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

// Many tasks wait; one plain thread completes all their futures.
Coro<void> many_tasks_woken_by_one_thread(int n) {
  std::vector<Future<int>> futures;
  std::vector<Task<int>> tasks;
  for (int i = 0; i < n; ++i) {
    futures.emplace_back();
    tasks.push_back(create_task(await_future(futures.back())));
  }
  co_await yield_now();
  std::thread th([futures] {
    for (std::size_t i = 0; i < futures.size(); ++i) futures[i].set_result(static_cast<int>(i));
  });
  long sum = 0;
  for (auto& t : tasks) sum += co_await t;
  th.join();
  EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
}

TEST_P(FutureThreads, ManyTasksWokenByOneThread) {
  run(many_tasks_woken_by_one_thread(testing::scaled(2000)),
      testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

// Racing completers: exactly one wins, every other gets InvalidStateError
// (or false from cancel / try_set_result).
Coro<void> racing_completers(int rounds) {
  for (int r = 0; r < rounds; ++r) {
    Future<int> f;
    std::atomic<int> wins{0};
    std::atomic<int> losses{0};
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) {
      threads.emplace_back([&, k] {
        switch (k) {
          case 0:
            if (f.cancel("race")) ++wins; else ++losses;
            break;
          case 1:
            if (f.try_set_result(k)) ++wins; else ++losses;
            break;
          default:
            try {
              if (k == 2) {
                f.set_result(k);
              } else {
                f.set_exception(MyError(k));
              }
              ++wins;
            } catch (const InvalidStateError&) {
              ++losses;
            }
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(wins.load(), 1);
    EXPECT_EQ(losses.load(), 3);
    EXPECT_TRUE(f.done());
    if (!f.cancelled()) (void)f.exception();  // retrieved: no report
  }
  co_return;
}

TEST_P(FutureThreads, RacingCompletersExactlyOneWins) {
  run(racing_completers(testing::scaled(200, 4)),
      testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

// Callbacks registered from several plain threads while another thread
// completes the future: each one runs exactly once, on the future's loop.
Coro<void> callbacks_added_while_completing(int rounds) {
  for (int r = 0; r < rounds; ++r) {
    Future<int> f;
    const std::thread::id loop_thread = std::this_thread::get_id();
    std::atomic<int> calls{0};
    std::atomic<int> off_loop{0};
    constexpr int kAdders = 3;
    constexpr int kPerAdder = 20;
    std::vector<std::thread> threads;
    for (int a = 0; a < kAdders; ++a) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerAdder; ++i) {
          f.add_done_callback([&calls, &off_loop, loop_thread](Future<int>&) {
            if (std::this_thread::get_id() != loop_thread) ++off_loop;
            ++calls;
          });
        }
      });
    }
    threads.emplace_back([f] { f.set_result(1); });
    for (auto& t : threads) t.join();
    EXPECT_TRUE(co_await testing::yield_until(
        [&] { return calls.load() == kAdders * kPerAdder; }, 100000));
    co_await testing::yield_times(3);
    EXPECT_EQ(calls.load(), kAdders * kPerAdder);
    EXPECT_EQ(off_loop.load(), 0);
  }
}

TEST(FutureThreadsCallbacks, AddedFromThreadsWhileCompletingRunExactlyOnce) {
  // One worker: the future's loop is the thread that called run().
  run(callbacks_added_while_completing(testing::scaled(100, 4)), testing::test_options(1));
}

INSTANTIATE_TEST_SUITE_P(Workers, FutureThreads, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "workers" + std::to_string(i.param);
                         });

// --- a future that outlives its runtime ----------------------------------------

// Completing a future after its runtime is gone (a plain thread finishing
// late) must not touch the dead loop: the callback is dropped, or set_result
// raises RuntimeError (asyncio: "Event loop is closed"), but memory stays
// valid. Run in a child process: a use-after-free may crash.
void complete_after_runtime_is_gone() {
  std::optional<Future<int>> kept;
  auto body = [](std::optional<Future<int>>* out) -> Coro<void> {
    Future<int> f;
    f.add_done_callback([](Future<int>&) {});
    *out = f;
    co_return;
  };
  {
    Runtime rt(testing::test_options(2));
    rt.run(body(&kept));
  }
  try {
    kept->set_result(1);
  } catch (const RuntimeError&) {
  }
  EXPECT_TRUE(kept->done());
  kept.reset();
}

TEST(FutureOutlivesRuntime, CompletingItLaterIsSafe) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        complete_after_runtime_is_gone();
        std::_Exit(::testing::Test::HasFailure() ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "");
}

// The same for a task: its handle may outlive the runtime too. A done
// callback added then is dropped and reported (its loop is closed, asyncio's
// "Event loop is closed"), and the task's memory, not the dead loop's, says
// so. Run in a child process: a use-after-free may crash.
void task_callback_after_runtime_is_gone() {
  std::vector<std::string> reported;
  set_fallback_error_reporter([&](std::string_view m) { reported.emplace_back(m); });
  std::optional<Task<int>> kept;
  {
    Runtime rt(testing::test_options(2));
    kept = rt.run([]() -> Coro<Task<int>> {
      Task<int> t = create_task([]() -> Coro<int> { co_return 7; }());
      co_await t;
      co_return t;
    }());
  }
  bool ran = false;
  kept->add_done_callback([&ran](Task<int>&) { ran = true; });
  set_fallback_error_reporter(nullptr);
  EXPECT_FALSE(ran);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("event loop is closed"), std::string::npos) << reported[0];
  EXPECT_EQ(kept->result(), 7);
  kept.reset();
}

TEST(TaskOutlivesRuntime, ADoneCallbackAddedLaterIsDroppedAndReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        task_callback_after_runtime_is_gone();
        std::_Exit(::testing::Test::HasFailure() ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "");
}

// --- "exception was never retrieved" ---------------------------------------

Coro<void> drop_failed_future() {
  {
    Future<int> f;
    Future<int> copy = f;
    f.set_exception(MyError(1));
  }
  co_return;
}

TEST(FutureNeverRetrieved, ReportedExactlyOnceWhenDropped) {
  ErrorLog log;
  run(drop_failed_future(), testing::logged_options(log, 1));
  EXPECT_EQ(log.count({"never retrieved", "my error 1"}), 1) << log.dump();
  EXPECT_EQ(log.count({"weft::(anonymous namespace)::MyError: my error 1"}), 1)
      << "the report names the exception's type: " << log.dump();
  EXPECT_EQ(log.size(), 1u) << log.dump();
}

// --- describe_exception: the type and the text, for every report -----------------

template <typename E>
std::string describe(E e) {
  return describe_exception(std::make_exception_ptr(std::move(e)));
}

TEST(DescribeException, NamesTheTypeAndTheText) {
  EXPECT_EQ(describe(TimeoutError("late")), "weft::TimeoutError: late");
  EXPECT_EQ(describe(std::runtime_error("boom")), "std::runtime_error: boom");
  EXPECT_EQ(describe(CancelledError("stop")), "weft::CancelledError: stop");
  EXPECT_EQ(describe(CancelledError()), "weft::CancelledError") << "no empty text after a colon";
  EXPECT_EQ(describe(42), "int (not derived from std::exception)");
  EXPECT_EQ(describe_exception(nullptr), "no exception");
}

Coro<void> drop_futures_that_were_looked_at() {
  {
    Future<int> f;
    f.set_exception(MyError(2));
    EXPECT_THROW((void)f.result(), MyError);
  }
  {
    Future<int> f;
    f.set_exception(MyError(3));
    EXPECT_NE(f.exception(), nullptr);
  }
  {
    Future<int> f;
    f.set_exception(MyError(4));
    EXPECT_THROW((void)co_await f, MyError);
  }
  {
    Future<int> f;
    Future<void> ran;
    f.add_done_callback([ran](Future<int>& g) {
      EXPECT_NE(g.exception(), nullptr);
      ran.set_result();
    });
    f.set_exception(MyError(5));
    co_await ran;
  }
  {
    Future<int> ok;
    ok.set_result(1);
    Future<int> cancelled;
    cancelled.cancel("x");
    Future<int> pending;
  }
  co_await testing::yield_times(3);
}

TEST(FutureNeverRetrieved, NotReportedWhenRetrievedOrNotFailed) {
  ErrorLog log;
  run(drop_futures_that_were_looked_at(), testing::logged_options(log, 1));
  EXPECT_EQ(log.size(), 0u) << log.dump();
}

// A future that outlives its runtime reports through the process-wide
// fallback reporter instead.
TEST(FutureNeverRetrieved, ReportedThroughFallbackAfterTheRuntimeEnded) {
  std::vector<std::string> fallback;
  std::mutex mu;
  set_fallback_error_reporter([&](std::string_view m) {
    std::lock_guard<std::mutex> lock(mu);
    fallback.emplace_back(m);
  });
  ErrorLog log;
  std::optional<Future<int>> kept;
  auto body = [](std::optional<Future<int>>* out) -> Coro<void> {
    Future<int> f;
    f.set_exception(MyError(6));
    *out = f;
    co_return;
  };
  run(body(&kept), testing::logged_options(log, 1));
  EXPECT_EQ(log.size(), 0u) << log.dump();
  kept.reset();
  set_fallback_error_reporter(nullptr);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(fallback.size(), 1u);
  EXPECT_NE(fallback[0].find("never retrieved"), std::string::npos) << fallback[0];
  EXPECT_NE(fallback[0].find("my error 6"), std::string::npos) << fallback[0];
}

}  // namespace
}  // namespace weft
