// Task cancellation with asyncio's protocol: cancel(msg) is a request,
// delivered as CancelledError(msg) at the task's next suspension point; what
// the task awaits (a future, a task, a sleep) is cancelled too; a task may
// catch it and go on; cancelling()/uncancel() count requests.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::Counted;
using testing::CountedScope;
using testing::ErrorLog;
using testing::raises;

using std::chrono::milliseconds;
using std::chrono::seconds;

// What a task body saw, written by the body and read after awaiting it.
struct Seen {
  bool started = false;
  bool caught = false;
  std::string message;
  int catches = 0;
  bool finished = false;
};

Coro<int> body_never_expected(bool* ran) {
  *ran = true;
  co_return 1;
}

// --- cancel before the task starts -----------------------------------------

WEFT_CO_TEST_WITH(CancelBeforeStart, BodyNeverRuns, testing::test_options(1)) {
  bool ran = false;
  Task<int> t = create_task(body_never_expected(&ran));
  EXPECT_TRUE(t.cancel("early"));
  EXPECT_EQ(t.cancelling(), 1);
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "early");
  EXPECT_FALSE(ran) << "the body of a task cancelled before it started must never run";
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled());
  EXPECT_THROW((void)t.result(), CancelledError);
  EXPECT_THROW((void)t.exception(), CancelledError);
}

Coro<int> counted_body(Counted c, bool* ran) {
  *ran = true;
  co_return c.value;
}

// One worker: with several, another worker may start a new task before its
// creator's step ends (docs/design.md), so "before it starts" is a race there.
WEFT_CO_TEST_WITH(CancelBeforeStart, FrameIsDestroyed, testing::test_options(1)) {
  CountedScope scope;
  bool ran = false;
  {
    Task<int> t = create_task(counted_body(Counted(1), &ran));
    t.cancel();
    EXPECT_THROW((void)co_await t, CancelledError);
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(Counted::alive(), 0);
}

// --- cancel while awaiting a future ----------------------------------------

Coro<int> wait_on(Future<int> f, Future<void> started, Seen* seen) {
  seen->started = true;
  started.set_result();
  try {
    co_return co_await f;
  } catch (const CancelledError& e) {
    seen->caught = true;
    seen->message = e.message();
    throw;
  }
}

WEFT_CO_TEST(CancelAwaitingFuture, FutureIsCancelledAndTaskGetsMessage) {
  Future<int> f;
  Future<void> started;
  Seen seen;
  Task<int> t = create_task(wait_on(f, started, &seen));
  co_await started;
  EXPECT_TRUE(t.cancel("stop it"));
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "stop it");
  EXPECT_TRUE(f.cancelled()) << "what the task awaited must be cancelled too";
  EXPECT_TRUE(seen.caught);
  EXPECT_EQ(seen.message, "stop it");
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel()) << "cancel() of a done task returns false";
}

// The future is shared: cancelling one of its waiters cancels it for all
// (asyncio; shield() exists for the other choice).
Coro<int> plain_wait(Future<int> f) { co_return co_await f; }

WEFT_CO_TEST(CancelAwaitingFuture, SharedFutureIsCancelledForEveryWaiter) {
  Future<int> f;
  Task<int> a = create_task(plain_wait(f));
  Task<int> b = create_task(plain_wait(f));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !a.waiting_on().empty() && !b.waiting_on().empty(); }));
  a.cancel("via a");
  EXPECT_THROW((void)co_await a, CancelledError);
  auto e = co_await raises<CancelledError>(b);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "via a");
  EXPECT_TRUE(f.cancelled());
}

// A future that completed before the cancelled task got to run again: the
// cancellation request still wins (asyncio's _must_cancel).
WEFT_CO_TEST_WITH(CancelAwaitingFuture, RequestWinsOverAResultNotYetSeen,
                  testing::test_options(1)) {
  Future<int> f;
  Future<void> started;
  Seen seen;
  Task<int> t = create_task(wait_on(f, started, &seen));
  co_await started;
  co_await yield_now();  // t is now suspended on f
  f.set_result(5);       // t is scheduled, not yet resumed
  EXPECT_TRUE(t.cancel("late"));
  auto e = co_await raises<CancelledError>(t);
  EXPECT_TRUE(e.has_value()) << "the task returned instead of raising CancelledError";
  EXPECT_TRUE(seen.caught);
  EXPECT_EQ(seen.message, "late");
  EXPECT_FALSE(f.cancelled());
}

Coro<void> wait_forever_in_nested_coros(Future<int> f, int depth) {
  if (depth == 0) {
    (void)co_await f;
    co_return;
  }
  co_await wait_forever_in_nested_coros(f, depth - 1);
}

WEFT_CO_TEST(CancelAwaitingFuture, DeliveredThroughNestedCoros) {
  Future<int> f;
  Task<void> t = create_task(wait_forever_in_nested_coros(f, 10));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  t.cancel("deep");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "deep");
  EXPECT_TRUE(f.cancelled());
}

WEFT_CO_TEST(CancelAwaitingFuture, WaitingOnNamesTheFuture) {
  Future<int> f;
  Task<int> t = create_task(plain_wait(f));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  EXPECT_EQ(t.waiting_on(), f.describe());
  f.set_result(1);
  co_await t;
  EXPECT_EQ(t.waiting_on(), "");
}

// --- cancel while sleeping ---------------------------------------------------

Coro<void> sleep_long(Seen* seen) {
  seen->started = true;
  try {
    co_await sleep(std::chrono::hours(1));
  } catch (const CancelledError& e) {
    seen->caught = true;
    seen->message = e.message();
    throw;
  }
}

TEST(CancelSleeping, WakesAtOnceAndTheTimerIsGone) {
  ManualClock clock;
  auto body = [](ManualClock* clock) -> Coro<void> {
    Seen seen;
    const TimePoint start = clock->now();
    Task<void> t = create_task(sleep_long(&seen));
    EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
    t.cancel("wake up");
    auto e = co_await raises<CancelledError>(t);
    EXPECT_TRUE(e.has_value());
    EXPECT_TRUE(seen.caught);
    EXPECT_EQ(seen.message, "wake up");
    // The hour-long timer was cancelled: nothing is left for the manual clock
    // to jump to when a short sleep parks the loop.
    co_await sleep(milliseconds(1));
    EXPECT_EQ(clock->now() - start, milliseconds(1));
  };
  run(body(&clock), testing::test_options(1, &clock));
}

// --- cancel while awaiting another task ---------------------------------------

Coro<int> outer_awaits_inner(Task<int> inner, Seen* seen) {
  try {
    co_return co_await inner;
  } catch (const CancelledError& e) {
    seen->caught = true;
    seen->message = e.message();
    throw;
  }
}

WEFT_CO_TEST(CancelAwaitingTask, InnerTaskIsCancelledToo) {
  Future<int> f;
  Future<void> started;
  Seen inner_seen;
  Seen outer_seen;
  Task<int> inner = create_task(wait_on(f, started, &inner_seen));
  Task<int> outer = create_task(outer_awaits_inner(inner, &outer_seen));
  co_await started;
  EXPECT_TRUE(co_await testing::yield_until([&] { return !outer.waiting_on().empty(); }));
  EXPECT_TRUE(outer.cancel("both"));
  auto e = co_await raises<CancelledError>(outer);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "both");
  EXPECT_TRUE(inner.cancelled()) << "the awaited task must be cancelled too";
  EXPECT_TRUE(outer.cancelled());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(inner_seen.caught);
  EXPECT_EQ(inner_seen.message, "both");
  EXPECT_TRUE(outer_seen.caught);
  EXPECT_EQ(inner.cancelling(), 1);
  EXPECT_EQ(outer.cancelling(), 1);
}

Coro<int> swallow_and_return(Future<int> f) {
  try {
    co_return co_await f;
  } catch (const CancelledError&) {
  }
  co_return 99;
}

// If the inner task refuses cancellation and returns a value, the outer task
// gets that value: cancellation of an awaited task is not forced on the
// awaiter (asyncio).
WEFT_CO_TEST(CancelAwaitingTask, InnerTaskThatSwallowsItReturnsValue) {
  Future<int> f;
  Task<int> inner = create_task(swallow_and_return(f));
  Seen outer_seen;
  Task<int> outer = create_task(outer_awaits_inner(inner, &outer_seen));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !outer.waiting_on().empty() && !inner.waiting_on().empty(); }));
  outer.cancel();
  EXPECT_EQ(co_await outer, 99);
  EXPECT_FALSE(outer.cancelled());
  EXPECT_FALSE(outer_seen.caught);
  EXPECT_EQ(co_await inner, 99);
}

// --- a task may catch CancelledError and continue ----------------------------

Coro<int> catch_and_continue(Future<int> f, Seen* seen) {
  try {
    (void)co_await f;
  } catch (const CancelledError& e) {
    seen->caught = true;
    seen->message = e.message();
    ++seen->catches;
  }
  // Not cancelled any more: it can suspend again normally.
  co_await yield_now();
  co_await sleep(milliseconds(1));
  seen->finished = true;
  co_return 7;
}

WEFT_CO_TEST(CatchCancelled, TaskContinuesAndReturnsValue) {
  Future<int> f;
  Seen seen;
  Task<int> t = create_task(catch_and_continue(f, &seen));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  EXPECT_TRUE(t.cancel("please"));
  EXPECT_EQ(co_await t, 7);
  EXPECT_TRUE(seen.caught);
  EXPECT_EQ(seen.message, "please");
  EXPECT_EQ(seen.catches, 1);
  EXPECT_TRUE(seen.finished);
  EXPECT_FALSE(t.cancelled());
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.cancelling(), 1) << "the request was not withdrawn";
  EXPECT_EQ(t.uncancel(), 0);
  EXPECT_EQ(t.cancelling(), 0);
  EXPECT_EQ(t.uncancel(), 0) << "uncancel never goes below zero";
  EXPECT_FALSE(t.cancel()) << "done";
}

Coro<int> catch_then_uncancel(Future<int> f, int* cancelling_in_handler, int* after_uncancel) {
  try {
    (void)co_await f;
  } catch (const CancelledError&) {
    *cancelling_in_handler = current_task().cancelling();
    *after_uncancel = current_task().uncancel();
  }
  co_return 1;
}

WEFT_CO_TEST(CatchCancelled, UncancelInsideTheTask) {
  Future<int> f;
  int in_handler = -1;
  int after = -1;
  Task<int> t = create_task(catch_then_uncancel(f, &in_handler, &after));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  t.cancel();
  EXPECT_EQ(co_await t, 1);
  EXPECT_EQ(in_handler, 1);
  EXPECT_EQ(after, 0);
  EXPECT_EQ(t.cancelling(), 0);
}

Coro<int> swallow_std_exceptions(Future<int> f, bool* swallowed) {
  try {
    (void)co_await f;
  } catch (const std::exception&) {
    *swallowed = true;
  }
  co_return 0;
}

// CancelledError is not a std::exception: a handler for failures does not
// swallow a cancellation.
WEFT_CO_TEST(CatchCancelled, StdExceptionHandlerDoesNotCatchIt) {
  Future<int> f;
  bool swallowed = false;
  Task<int> t = create_task(swallow_std_exceptions(f, &swallowed));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  t.cancel();
  EXPECT_THROW((void)co_await t, CancelledError);
  EXPECT_FALSE(swallowed);
  EXPECT_TRUE(t.cancelled());
}

// --- cancel() return values and counting -------------------------------------

Coro<int> quick(int v) { co_return v; }
Coro<int> quick_fail() {
  throw std::runtime_error("x");
  co_return 0;
}

// One worker: the new task must not start before cancel() (docs/design.md).
WEFT_CO_TEST_WITH(CancelResult, CancelOfDoneTaskIsFalse, testing::test_options(1)) {
  Task<int> ok = create_task(quick(1));
  co_await ok;
  EXPECT_FALSE(ok.cancel());
  EXPECT_FALSE(ok.cancelled());
  EXPECT_EQ(ok.cancelling(), 0) << "a refused request is not counted";

  Task<int> failed = create_task(quick_fail());
  EXPECT_THROW((void)co_await failed, std::runtime_error);
  EXPECT_FALSE(failed.cancel());

  Task<int> cancelled = create_task(quick(2));
  EXPECT_TRUE(cancelled.cancel());
  EXPECT_THROW((void)co_await cancelled, CancelledError);
  EXPECT_FALSE(cancelled.cancel());
}

WEFT_CO_TEST(CancelResult, RepeatedRequestsAreCountedAndDeliveredOnce) {
  Future<int> f;
  Seen seen;
  Task<int> t = create_task(catch_and_continue(f, &seen));
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  EXPECT_TRUE(t.cancel("one"));
  EXPECT_TRUE(t.cancel("two"));
  EXPECT_TRUE(t.cancel("three"));
  EXPECT_EQ(t.cancelling(), 3);
  EXPECT_EQ(co_await t, 7) << "one CancelledError, caught; the task then finishes normally";
  EXPECT_EQ(seen.catches, 1);
  EXPECT_TRUE(seen.finished);
  EXPECT_EQ(t.cancelling(), 3);
  EXPECT_EQ(t.uncancel(), 2);
  EXPECT_EQ(t.uncancel(), 1);
  EXPECT_EQ(t.uncancel(), 0);
}

// asyncio's Task.cancel stores each request's message (`_cancel_message =
// msg`), so the latest request decides, also when it carries none. (A task
// keeps its messages out of line, made by the first one that has text.)
WEFT_CO_TEST_WITH(CancelResult, TheLatestRequestsMessageWins, testing::test_options(1)) {
  Task<int> a = create_task(quick(1));
  a.cancel("first");
  a.cancel();
  auto ea = co_await raises<CancelledError>(a);
  WEFT_CO_ASSERT_TRUE(ea.has_value());
  EXPECT_EQ(ea->message(), "");
  Task<int> b = create_task(quick(1));
  b.cancel();
  b.cancel("second");
  auto eb = co_await raises<CancelledError>(b);
  WEFT_CO_ASSERT_TRUE(eb.has_value());
  EXPECT_EQ(eb->message(), "second");
  // A plain future's message: none stored for an empty one, the text for another.
  Future<int> f, g;
  f.cancel();
  g.cancel("why");
  auto ef = co_await raises<CancelledError>(f);
  auto eg = co_await raises<CancelledError>(g);
  WEFT_CO_ASSERT_TRUE(ef.has_value() && eg.has_value());
  EXPECT_EQ(ef->message(), "");
  EXPECT_EQ(eg->message(), "why");
}

// One worker: the new task must not start before cancel() (docs/design.md).
WEFT_CO_TEST_WITH(CancelResult, CancelBeforeStartCountsToo, testing::test_options(1)) {
  Task<int> t = create_task(quick(1));
  t.cancel();
  t.cancel();
  EXPECT_EQ(t.cancelling(), 2);
  EXPECT_THROW((void)co_await t, CancelledError);
  EXPECT_EQ(t.cancelling(), 2);
}

// --- self-cancellation --------------------------------------------------------

Coro<int> cancel_self_then_yield(Seen* seen) {
  current_task().cancel("self");
  try {
    co_await yield_now();
  } catch (const CancelledError& e) {
    seen->caught = true;
    seen->message = e.message();
    throw;
  }
  co_return 1;
}

WEFT_CO_TEST(SelfCancel, DeliveredAtTheNextYield) {
  Seen seen;
  Task<int> t = create_task(cancel_self_then_yield(&seen));
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "self");
  EXPECT_TRUE(seen.caught);
  EXPECT_TRUE(t.cancelled());
}

Coro<int> cancel_self_then_sleep(Seen* seen) {
  current_task().cancel("self-sleep");
  try {
    co_await sleep(std::chrono::hours(1));
  } catch (const CancelledError& e) {
    seen->caught = true;
    seen->message = e.message();
    throw;
  }
  co_return 1;
}

WEFT_CO_TEST(SelfCancel, DeliveredAtTheNextSleep) {
  Seen seen;
  Task<int> t = create_task(cancel_self_then_sleep(&seen));
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "self-sleep");
  EXPECT_TRUE(seen.caught);
}

Coro<int> cancel_self_and_return() {
  current_task().cancel("at return");
  co_return 5;
}

// asyncio: a task whose cancellation is still pending when its body returns
// ends cancelled, not with the value.
WEFT_CO_TEST(SelfCancel, PendingRequestAtReturnMakesTheTaskCancelled) {
  Task<int> t = create_task(cancel_self_and_return());
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "at return");
  EXPECT_TRUE(t.cancelled());
}

// --- cancellation from other threads and under load --------------------------

Coro<int> wait_then_value(Future<int> f) {
  try {
    co_return co_await f;
  } catch (const CancelledError&) {
    throw;
  }
}

Coro<void> cancel_from_plain_thread(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    Future<int> f;
    Task<int> t = create_task(wait_then_value(f));
    if (i % 2 == 0) co_await yield_now();
    std::thread th([t, i] { t.cancel("thread " + std::to_string(i)); });
    auto e = co_await raises<CancelledError>(t);
    th.join();
    EXPECT_TRUE(e.has_value());
    EXPECT_TRUE(t.cancelled());
  }
}

class CancelThreads : public ::testing::TestWithParam<int> {};

TEST_P(CancelThreads, CancelFromAPlainThread) {
  run(cancel_from_plain_thread(testing::scaled(200, 4)),
      testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

// Tasks alternate between yielding, sleeping and waiting on futures while a
// plain thread cancels them at random moments: every task ends, either
// cancelled or (if the request came after it finished) with its value.
Coro<int> busy_body(int i, Future<int> f) {
  for (int k = 0; k < 20; ++k) {
    switch ((i + k) % 3) {
      case 0:
        co_await yield_now();
        break;
      case 1:
        co_await sleep(std::chrono::microseconds(50));
        break;
      default:
        if (k == 19) (void)co_await f;
        break;
    }
  }
  co_return i;
}

Coro<void> cancel_storm(int n) {
  std::vector<Future<int>> futures(0);
  std::vector<Task<int>> tasks;
  for (int i = 0; i < n; ++i) {
    futures.emplace_back();
    futures.back().set_result(0);
    tasks.push_back(create_task(busy_body(i, futures.back())));
  }
  std::thread canceller([tasks] {
    for (std::size_t i = 0; i < tasks.size(); i += 2) {
      tasks[i].cancel();
      if (i % 16 == 0) std::this_thread::yield();
    }
  });
  int cancelled = 0;
  int finished = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    try {
      int v = co_await tasks[i];
      EXPECT_EQ(v, static_cast<int>(i));
      ++finished;
    } catch (const CancelledError&) {
      ++cancelled;
      EXPECT_EQ(i % 2, 0u) << "task " << i << " was never cancelled";
    }
  }
  canceller.join();
  EXPECT_EQ(cancelled + finished, n);
}

TEST_P(CancelThreads, CancelStorm) {
  run(cancel_storm(testing::scaled(400, 4)),
      testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

INSTANTIATE_TEST_SUITE_P(Workers, CancelThreads, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "workers" + std::to_string(i.param);
                         });

// --- cancelled tasks are not "never retrieved" errors -----------------------

Coro<void> drop_cancelled_tasks() {
  Future<int> f;
  for (int i = 0; i < 5; ++i) {
    Task<int> t = create_task(plain_wait(f));
    t.cancel();
  }
  co_await testing::yield_times(10);
}

TEST(CancelReports, CancelledTaskDroppedIsNotReported) {
  ErrorLog log;
  run(drop_cancelled_tasks(), testing::logged_options(log, 2));
  EXPECT_EQ(log.size(), 0u) << log.dump();
}

}  // namespace
}  // namespace weft
