// gather, wait, wait_for, shield, as_completed (sched/combinators.h), checked
// against Python 3.12's asyncio (test_tasks.py, test_waitfor.py). Timing
// tests run on a ManualClock with autojump: a sleep takes no wall time and
// the clock moves by exactly the time slept, so "when" is asserted exactly.
#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using testing::raises;
using testing::scaled;

Duration since(ManualClock* clock, TimePoint t0) { return clock->now() - t0; }

Coro<int> value_after(int v, Duration d) {
  co_await sleep(d);
  co_return v;
}
Coro<void> nothing_after(Duration d) { co_await sleep(d); }
Coro<int> fail_after(Duration d, std::string what) {
  co_await sleep(d);
  throw std::runtime_error(what);
}
// Sleeps for `d`; records that it finished.
Coro<int> finish_after(Duration d, std::atomic<bool>* finished, int v) {
  co_await sleep(d);
  finished->store(true);
  co_return v;
}
// Sleeps "forever"; on cancellation records it and runs `cleanup` of sleep
// before re-raising (what wait_for must wait for).
struct Seen {
  std::atomic<bool> started{false};
  std::atomic<bool> cancelled{false};
  std::atomic<bool> cleaned_up{false};
};
Coro<int> cancellable(Seen* seen, Duration cleanup) {
  seen->started = true;
  std::exception_ptr e;
  try {
    co_await sleep(hours(10));
  } catch (const CancelledError&) {
    e = std::current_exception();
  }
  if (!e) co_return -1;
  seen->cancelled = true;
  if (cleanup.count() > 0) co_await shielded(sleep(cleanup));
  seen->cleaned_up = true;
  std::rethrow_exception(e);
}

// --- gather ---------------------------------------------------------------------

WEFT_MANUAL_TEST(Gather, ResultsInArgumentOrderNotCompletionOrder, 1) {
  const TimePoint t0 = clock->now();
  auto [a, b, c] = co_await gather(value_after(1, milliseconds(30)), value_after(2, milliseconds(10)),
                                   value_after(3, milliseconds(20)));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(c, 3);
  EXPECT_EQ(since(clock, t0), milliseconds(30)) << "the children run concurrently";
}

WEFT_MANUAL_TEST(Gather, VoidChildrenGiveMonostateAndMixWithTasksAndFutures, 1) {
  Future<int> f;
  call_later(milliseconds(5), [f] { f.set_result(9); });
  Task<int> t = create_task(value_after(4, milliseconds(1)));
  auto r = co_await gather(nothing_after(milliseconds(2)), t, f);
  static_assert(std::is_same_v<decltype(r), std::tuple<std::monostate, int, int>>);
  EXPECT_EQ(std::get<1>(r), 4);
  EXPECT_EQ(std::get<2>(r), 9);
}

WEFT_MANUAL_TEST(Gather, RangeKeepsInputOrder, 2) {
  std::vector<Coro<int>> cs;
  for (int i = 0; i < 10; ++i) cs.push_back(value_after(i, milliseconds(10 - i)));
  std::vector<int> r = co_await gather(std::move(cs));
  WEFT_CO_ASSERT_EQ(r.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r[i], i);
  std::vector<Coro<void>> vs;
  vs.push_back(nothing_after(milliseconds(1)));
  vs.push_back(nothing_after(milliseconds(2)));
  auto v = co_await gather(std::move(vs));
  EXPECT_EQ(v.size(), 2u);
}

WEFT_MANUAL_TEST(Gather, FirstExceptionPropagatesAtOnceOthersKeepRunning, 1) {
  const TimePoint t0 = clock->now();
  std::atomic<bool> finished{false};
  Task<int> slow = create_task(finish_after(milliseconds(50), &finished, 5));
  std::string what;
  try {
    co_await gather(slow, fail_after(milliseconds(10), "first"), fail_after(milliseconds(20), "second"));
    ADD_FAILURE() << "gather should have raised";
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "first");
  EXPECT_EQ(since(clock, t0), milliseconds(10)) << "the first failure propagates at once";
  EXPECT_FALSE(slow.done()) << "the other children keep running";
  EXPECT_EQ(co_await slow, 5);
  EXPECT_TRUE(finished);
  EXPECT_EQ(since(clock, t0), milliseconds(50));
}

WEFT_MANUAL_TEST(Gather, RangeFirstExceptionPropagates, 1) {
  std::vector<Coro<int>> cs;
  cs.push_back(value_after(1, milliseconds(30)));
  cs.push_back(fail_after(milliseconds(5), "range"));
  auto e = co_await raises<std::runtime_error>(gather(std::move(cs)));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_STREQ(e->what(), "range");
}

WEFT_MANUAL_TEST(Gather, ReturnExceptionsReturnsEveryOutcome, 1) {
  Task<int> cancelled_child = create_task(value_after(3, hours(1)));
  call_later(milliseconds(5), [cancelled_child] { cancelled_child.cancel("child cancelled"); });
  const TimePoint t0 = clock->now();
  auto [a, b, c, d] = co_await gather(return_exceptions, value_after(1, milliseconds(20)),
                                      fail_after(milliseconds(1), "bad"), cancelled_child,
                                      nothing_after(milliseconds(3)));
  EXPECT_EQ(since(clock, t0), milliseconds(20)) << "waits for every child, raises nothing";
  EXPECT_TRUE(a.has_value());
  EXPECT_EQ(a.value(), 1);
  WEFT_CO_ASSERT_TRUE(!b.has_value());
  EXPECT_THROW(std::rethrow_exception(b.exception()), std::runtime_error);
  WEFT_CO_ASSERT_TRUE(!c.has_value());
  EXPECT_THROW(std::rethrow_exception(c.exception()), CancelledError)
      << "a cancelled child is reported as CancelledError";
  EXPECT_TRUE(d.has_value());
  EXPECT_EQ(current_task().cancelling(), 0) << "the gathering task itself is not cancelled";

  std::vector<Coro<int>> cs;
  cs.push_back(fail_after(milliseconds(2), "x"));
  cs.push_back(value_after(7, milliseconds(4)));
  auto rs = co_await gather(return_exceptions, std::move(cs));
  WEFT_CO_ASSERT_EQ(rs.size(), 2u);
  EXPECT_FALSE(rs[0].has_value());
  EXPECT_EQ(rs[1].value(), 7);
}

WEFT_MANUAL_TEST(Gather, CancelledChildCountsAsCancelledError, 1) {
  Task<int> child = create_task(value_after(1, hours(1)));
  Task<int> other = create_task(value_after(2, milliseconds(50)));
  call_later(milliseconds(5), [child] { child.cancel("only the child"); });
  auto e = co_await raises<CancelledError>(gather(child, other));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "only the child");
  EXPECT_FALSE(other.done()) << "the other children keep running";
  EXPECT_EQ(current_task().cancelling(), 0)
      << "the task awaiting gather was not cancelled (asyncio: the gather is not cancelled)";
  EXPECT_EQ(co_await other, 2);
}

Coro<std::tuple<int, int>> gather_two(Task<int> a, Task<int> b) { co_return co_await gather(a, b); }

WEFT_MANUAL_TEST(Gather, CancellingTheGatherCancelsEveryChild, 2) {
  Seen s1, s2;
  Task<int> a = create_task(cancellable(&s1, milliseconds(0)));
  Task<int> b = create_task(cancellable(&s2, milliseconds(3)));
  Task<std::tuple<int, int>> g = create_task(gather_two(a, b));
  co_await sleep(milliseconds(5));
  const TimePoint t0 = clock->now();
  EXPECT_TRUE(g.cancel("stop the gather"));
  auto e = co_await raises<CancelledError>(g);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "stop the gather");
  // asyncio: the first child that ends cancelled completes the gathering
  // future; the others may still be cleaning up.
  EXPECT_EQ(since(clock, t0), Duration(0));
  co_await gather(return_exceptions, a, b);
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
  EXPECT_TRUE(s1.cancelled);
  EXPECT_TRUE(s2.cleaned_up);
  EXPECT_EQ(since(clock, t0), milliseconds(3));
}

// With return_exceptions the gathering future waits for every child, then
// raises CancelledError if its cancel() was accepted (asyncio issue 32684).
WEFT_MANUAL_TEST(Gather, CancelledReturnExceptionsGatherWaitsForEveryChildThenRaises, 1) {
  Seen s1, s2;
  auto g = gather(return_exceptions, cancellable(&s1, milliseconds(0)), cancellable(&s2, milliseconds(3)));
  co_await sleep(milliseconds(1));
  const TimePoint t0 = clock->now();
  EXPECT_TRUE(g.cancel("stop"));
  auto e = co_await raises<CancelledError>(g);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "stop");
  EXPECT_TRUE(s2.cleaned_up);
  EXPECT_EQ(since(clock, t0), milliseconds(3));
  EXPECT_FALSE(g.cancelled()) << "asyncio: the gathering future holds a CancelledError, it is not cancelled";
  EXPECT_TRUE(g.done());
}

WEFT_MANUAL_TEST(Gather, EmptyGatherCompletesAtOnce, 1) {
  const TimePoint t0 = clock->now();
  std::tuple<> r = co_await gather();
  (void)r;
  auto v = co_await gather(std::vector<Coro<int>>{});
  EXPECT_TRUE(v.empty());
  auto rv = co_await gather(return_exceptions, std::vector<Coro<int>>{});
  EXPECT_TRUE(rv.empty());
  EXPECT_EQ(since(clock, t0), Duration(0));
}

// --- wait -----------------------------------------------------------------------

std::vector<Task<int>> three_tasks() {
  return {create_task(value_after(30, milliseconds(30))), create_task(value_after(10, milliseconds(10))),
          create_task(value_after(20, milliseconds(20)))};
}

WEFT_MANUAL_TEST(Wait, FirstCompleted, 1) {
  const TimePoint t0 = clock->now();
  auto ts = three_tasks();
  auto r = co_await wait(ts, std::nullopt, ReturnWhen::FIRST_COMPLETED);
  EXPECT_EQ(since(clock, t0), milliseconds(10));
  WEFT_CO_ASSERT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.done[0].result(), 10);
  EXPECT_EQ(r.pending.size(), 2u);
  for (auto& t : r.pending) EXPECT_FALSE(t.done());
  co_await gather(std::move(r.pending));
}

WEFT_MANUAL_TEST(Wait, FirstExceptionStopsAtTheFailure, 1) {
  const TimePoint t0 = clock->now();
  std::vector<Task<int>> ts = {create_task(value_after(1, milliseconds(5))),
                               create_task(fail_after(milliseconds(15), "boom")),
                               create_task(value_after(3, milliseconds(40)))};
  auto r = co_await wait(ts, std::nullopt, ReturnWhen::FIRST_EXCEPTION);
  EXPECT_EQ(since(clock, t0), milliseconds(15));
  EXPECT_EQ(r.done.size(), 2u);
  EXPECT_EQ(r.pending.size(), 1u);
  EXPECT_TRUE(ts[1].done());
  EXPECT_NE(ts[1].exception(), nullptr) << "wait raises nothing; the failure is in the task";
  co_await gather(std::move(r.pending));
}

WEFT_MANUAL_TEST(Wait, FirstExceptionWithoutFailureIsAllCompleted, 1) {
  const TimePoint t0 = clock->now();
  auto r = co_await wait(three_tasks(), std::nullopt, ReturnWhen::FIRST_EXCEPTION);
  EXPECT_EQ(since(clock, t0), milliseconds(30));
  EXPECT_EQ(r.done.size(), 3u);
  EXPECT_TRUE(r.pending.empty());
}

WEFT_MANUAL_TEST(Wait, AllCompleted, 1) {
  const TimePoint t0 = clock->now();
  auto r = co_await wait(three_tasks());
  EXPECT_EQ(since(clock, t0), milliseconds(30));
  EXPECT_EQ(r.done.size(), 3u);
  EXPECT_TRUE(r.pending.empty());
}

WEFT_MANUAL_TEST(Wait, TimeoutReturnsThePendingSetWithoutRaisingOrCancelling, 1) {
  const TimePoint t0 = clock->now();
  auto r = co_await wait(three_tasks(), milliseconds(15));
  EXPECT_EQ(since(clock, t0), milliseconds(15));
  EXPECT_EQ(r.done.size(), 1u);
  WEFT_CO_ASSERT_EQ(r.pending.size(), 2u);
  for (auto& t : r.pending) EXPECT_FALSE(t.cancelled()) << "wait's timeout cancels nothing";
  auto rest = co_await gather(std::move(r.pending));
  EXPECT_EQ(rest[0] + rest[1], 50);
}

WEFT_MANUAL_TEST(Wait, EmptySetAndInvalidReturnWhenAreErrors, 1) {
  EXPECT_TRUE((co_await raises<std::invalid_argument>(wait(std::vector<Task<int>>{}))).has_value());
  std::vector<Task<int>> ts = {create_task(value_after(1, milliseconds(1)))};
  auto e = co_await raises<std::invalid_argument>(wait(ts, std::nullopt, static_cast<ReturnWhen>(7)));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_NE(std::string(e->what()).find("return_when"), std::string::npos) << e->what();
  co_await gather(std::move(ts));
}

// asyncio: a zero or negative timeout has passed already: wait returns
// after one loop turn with what is done by then.
WEFT_MANUAL_TEST(Wait, NonPositiveTimeoutReturnsAfterOneTurn, 1) {
  const TimePoint t0 = clock->now();
  Future<int> done;
  done.set_result(1);
  Task<int> slow = create_task(value_after(2, milliseconds(5)));
  bool turned = false;
  Task<void> quick = create_task([](bool* turned) -> Coro<void> {
    *turned = true;
    co_return;
  }(&turned));
  std::vector<AnyFuture> with_quick = {quick, slow};
  auto first = co_await wait(with_quick, Duration(0));
  EXPECT_TRUE(turned) << "the other ready tasks ran first";
  EXPECT_EQ(first.done.size(), 1u);
  const std::vector<Duration> timeouts = {Duration(0), milliseconds(-1)};
  for (Duration t : timeouts) {
    std::vector<AnyFuture> fs = {done, slow};  // g++ 12: no braced list inside a co_await
    auto r = co_await wait(fs, t);
    EXPECT_EQ(r.done.size(), 1u);
    EXPECT_EQ(r.pending.size(), 1u);
  }
  EXPECT_EQ(clock->now(), t0);
  EXPECT_EQ(co_await slow, 2);
}

// asyncio takes a set: the same future twice counts once.
WEFT_MANUAL_TEST(Wait, TheSameFutureTwiceCountsOnce, 1) {
  Task<int> a = create_task(value_after(1, milliseconds(1)));
  Task<int> b = create_task(value_after(2, milliseconds(2)));
  std::vector<Task<int>> twice = {a, b, a, a};
  auto r = co_await wait(twice);
  EXPECT_EQ(r.done.size(), 2u);
  EXPECT_TRUE(r.pending.empty());
  std::vector<Task<int>> again = {b, a, b};
  auto it = as_completed(again);
  int handed = 0;
  while (it.has_next()) {
    (void)co_await it.next();
    ++handed;
  }
  EXPECT_EQ(handed, 2);
}

// Futures and tasks of different result types in one wait (asyncio takes
// any awaitable future), through AnyFuture.
WEFT_MANUAL_TEST(Wait, MixedResultTypesThroughAnyFuture, 1) {
  Task<int> number = create_task(value_after(3, milliseconds(3)));
  Task<std::string> text = create_task([]() -> Coro<std::string> {
    co_await sleep(milliseconds(1));
    co_return "one";
  }());
  Future<void> never;
  std::vector<AnyFuture> mixed = {number, text, never, AnyTask(number)};
  auto r = co_await wait(mixed, milliseconds(10), ReturnWhen::ALL_COMPLETED);
  EXPECT_EQ(r.done.size(), 2u) << "number given twice (as Task and AnyTask) counts once";
  WEFT_CO_ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_TRUE(r.pending[0] == AnyFuture(never));
  EXPECT_EQ(text.result(), "one");
  std::vector<AnyFuture> two = {never, number};
  auto first = co_await wait(two, std::nullopt, ReturnWhen::FIRST_COMPLETED);
  EXPECT_EQ(first.done.size(), 1u);
  std::vector<AnyFuture> order = {text, number};
  auto it = as_completed(order);
  AnyFuture f = co_await it.next();
  EXPECT_TRUE(f.done());
  co_await f;  // awaiting an AnyFuture gives no value, but rethrows a failure
  Future<int> failed;
  failed.set_exception(std::runtime_error("boom"));
  EXPECT_TRUE((co_await raises<std::runtime_error>(AnyFuture(failed))).has_value());
}

// --- wait_for -------------------------------------------------------------------

WEFT_MANUAL_TEST(WaitFor, ResultBeforeTheTimeout, 1) {
  const TimePoint t0 = clock->now();
  EXPECT_EQ(co_await wait_for(value_after(4, milliseconds(10)), milliseconds(20)), 4);
  EXPECT_EQ(since(clock, t0), milliseconds(10));
  // The timer was cancelled: nothing is left at t0 + 20ms for the clock to jump to.
  co_await sleep(milliseconds(1));
  EXPECT_EQ(since(clock, t0), milliseconds(11));
}

WEFT_MANUAL_TEST(WaitFor, TimeoutCancelsTheInnerWaitsForItThenRaises, 1) {
  Seen seen;
  const TimePoint t0 = clock->now();
  Task<int> inner = create_task(cancellable(&seen, milliseconds(5)));
  auto e = co_await raises<TimeoutError>(wait_for(inner, milliseconds(10)));
  EXPECT_TRUE(e.has_value());
  EXPECT_TRUE(seen.cancelled);
  EXPECT_TRUE(seen.cleaned_up) << "wait_for waits for the cancelled inner to finish";
  EXPECT_TRUE(inner.done());
  EXPECT_TRUE(inner.cancelled());
  EXPECT_EQ(since(clock, t0), milliseconds(15));
  EXPECT_EQ(current_task().cancelling(), 0) << "the timeout left no cancellation behind";
}

WEFT_MANUAL_TEST(WaitFor, ZeroTimeout, 1) {
  Future<int> ready;
  ready.set_result(5);
  EXPECT_EQ(co_await wait_for(ready, Duration(0)), 5) << "a ready result gets through";
  Task<int> done_task = create_task(value_after(6, Duration(0)));
  co_await sleep(milliseconds(1));
  EXPECT_EQ(co_await wait_for(done_task, Duration(0)), 6);
  // asyncio 3.12: a coroutine is not even started with a zero timeout.
  Seen seen;
  EXPECT_TRUE((co_await raises<TimeoutError>(wait_for(cancellable(&seen, Duration(0)), Duration(0))))
                  .has_value());
  EXPECT_FALSE(seen.started);
  Task<int> pending = create_task(value_after(1, hours(1)));
  EXPECT_TRUE((co_await raises<TimeoutError>(wait_for(pending, Duration(0)))).has_value());
  EXPECT_TRUE(pending.cancelled());
}

// The inner's result and the timer arrive in the same tick: the result was
// stored before the timer ran, so the timer's cancel fails and the result is
// returned.
WEFT_MANUAL_TEST(WaitFor, ResultAndTimeoutTogetherKeepTheResult, 1) {
  Future<int> f;
  call_later(milliseconds(10), [f] { f.set_result(42); });  // registered first: runs first
  EXPECT_EQ(co_await wait_for(f, milliseconds(10)), 42);
}

Coro<int> swallow_cancel_return(int v) {
  try {
    co_await sleep(hours(1));
  } catch (const CancelledError&) {
    co_return v;
  }
  co_return -1;
}

// asyncio 3.12 (GH-86296): an inner that suppresses the cancellation and
// returns a value: wait_for returns the value.
WEFT_MANUAL_TEST(WaitFor, InnerThatSuppressesTheCancellationReturnsItsValue, 1) {
  EXPECT_EQ(co_await wait_for(swallow_cancel_return(42), milliseconds(10)), 42);
}

WEFT_MANUAL_TEST(WaitFor, InnerErrorPropagates, 1) {
  auto e = co_await raises<std::runtime_error>(wait_for(fail_after(milliseconds(1), "inner"), milliseconds(10)));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_STREQ(e->what(), "inner");
}

Coro<int> wait_for_task(Task<int> inner, std::optional<Duration> timeout) {
  co_return co_await wait_for(inner, timeout);
}

WEFT_MANUAL_TEST(WaitFor, CancellingTheWaiterCancelsTheInnerAndWaitsForIt, 1) {
  Seen seen;
  const TimePoint t0 = clock->now();
  Task<int> inner = create_task(cancellable(&seen, milliseconds(5)));
  Task<int> waiter = create_task(wait_for_task(inner, hours(1)));
  co_await sleep(milliseconds(2));
  EXPECT_TRUE(waiter.cancel("outside"));
  auto e = co_await raises<CancelledError>(waiter);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outside");
  EXPECT_TRUE(inner.cancelled());
  EXPECT_TRUE(seen.cleaned_up) << "the waiter finished after the inner";
  EXPECT_EQ(since(clock, t0), milliseconds(7));
  EXPECT_EQ(waiter.cancelling(), 1);
}

// The timeout fired and the inner is still cleaning up when the waiter is
// cancelled from outside: the outside cancellation must win (asyncio 3.12's
// wait_for, built on asyncio.timeout, raises CancelledError here).
WEFT_MANUAL_TEST(WaitFor, TimeoutNeverSwallowsAnOutsideCancellation, 1) {
  Seen seen;
  Task<int> inner = create_task(cancellable(&seen, milliseconds(10)));
  Task<int> waiter = create_task(wait_for_task(inner, milliseconds(10)));
  co_await sleep(milliseconds(15));  // timer fired at 10; inner cleans up until 20
  EXPECT_TRUE(seen.cancelled);
  EXPECT_FALSE(inner.done());
  waiter.cancel("from outside");
  auto e = co_await raises<CancelledError>(waiter);
  EXPECT_TRUE(e.has_value()) << "the outside cancellation was turned into a TimeoutError";
  EXPECT_TRUE(waiter.cancelled());
}

WEFT_MANUAL_TEST(WaitFor, NoTimeoutWaitsForever, 1) {
  const TimePoint t0 = clock->now();
  EXPECT_EQ(co_await wait_for(value_after(8, hours(100)), std::nullopt), 8);
  EXPECT_EQ(since(clock, t0), hours(100));
}

// asyncio: a negative timeout is an expired one, as zero is
// (test_wait_for_timeout_less_then_0_or_0).
WEFT_MANUAL_TEST(WaitFor, NegativeTimeoutHasExpired, 1) {
  const TimePoint t0 = clock->now();
  Seen seen;
  Task<int> inner = create_task(cancellable(&seen, Duration(0)));
  co_await yield_now();
  EXPECT_TRUE((co_await raises<TimeoutError>(wait_for(inner, milliseconds(-1)))).has_value());
  EXPECT_TRUE(inner.cancelled()) << "cancelled by the expired timeout, and waited for";
  EXPECT_TRUE(seen.cleaned_up);
  Future<int> ready;
  ready.set_result(3);
  EXPECT_EQ(co_await wait_for(ready, std::chrono::seconds(-1)), 3) << "a ready result gets through";
  Seen unstarted;
  EXPECT_TRUE(
      (co_await raises<TimeoutError>(wait_for(cancellable(&unstarted, Duration(0)), milliseconds(-5))))
          .has_value());
  EXPECT_FALSE(unstarted.started) << "a Coro is not started once the timeout has expired";
  EXPECT_EQ(clock->now(), t0);
}

// CPython's test_wait_for_self_cancellation: the inner task holds up both
// cancellations (the timeout's, then the one from outside) and returns 42;
// the task running wait_for still ends cancelled, and the inner's value
// stays with the inner.
Coro<int> holds_up_cancellation() {
  for (int i = 0; i < 3; ++i) {
    bool cancelled = false;
    try {
      co_await sleep(milliseconds(300));
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (!cancelled) break;
  }
  co_return 42;
}

WEFT_MANUAL_TEST(WaitFor, SelfCancellationAfterTheTimeout, 1) {
  Task<int> inner = create_task(holds_up_cancellation());
  Task<int> waiter = create_task(wait_for_task(inner, milliseconds(100)));
  co_await sleep(milliseconds(200));  // the timeout fired at 100
  EXPECT_FALSE(inner.done());
  waiter.cancel("outside");
  auto e = co_await raises<CancelledError>(waiter);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outside");
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_EQ(waiter.cancelling(), 1);
  EXPECT_EQ(co_await inner, 42);
}

WEFT_MANUAL_TEST(WaitFor, SelfCancellationAtOnce, 1) {
  Task<int> inner = create_task(holds_up_cancellation());
  Task<int> waiter = create_task(wait_for_task(inner, milliseconds(100)));
  waiter.cancel("outside");
  EXPECT_TRUE((co_await raises<CancelledError>(waiter)).has_value());
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_EQ(co_await inner, 42);
}

// The general rule (asyncio 3.12+, cancelling() decides): an outside
// request that reached the inner, which swallowed it, still cancels the
// task running wait_for, with or without a timeout having fired.
WEFT_MANUAL_TEST(WaitFor, OutsideRequestSwallowedByTheInnerStillCancels, 1) {
  Task<int> inner = create_task(swallow_cancel_return(7));
  Task<int> waiter = create_task(wait_for_task(inner, hours(1)));
  co_await sleep(milliseconds(1));
  waiter.cancel("outside");
  auto e = co_await raises<CancelledError>(waiter);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outside");
  EXPECT_EQ(co_await inner, 7) << "the inner's value is its own";
}

// An outside request made while wait_for runs inside a shield is deferred:
// the value is returned and the request comes after the shield.
WEFT_MANUAL_TEST(WaitFor, OutsideRequestUnderAShieldWaitsForIt, 1) {
  Task<int> t = create_task([]() -> Coro<int> {
    int v = co_await shielded(wait_for(value_after(5, milliseconds(10)), hours(1)));
    EXPECT_EQ(v, 5);
    co_await yield_now();  // delivered here
    co_return -1;
  }());
  co_await sleep(milliseconds(2));
  t.cancel("deferred");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "deferred");
}

// --- the gathering future (asyncio's _GatheringFuture) ------------------------------

WEFT_MANUAL_TEST(GatheringFuture, IsAFutureCompletedByItsChildren, 1) {
  Future<int> f;
  auto g = gather(value_after(1, milliseconds(1)), f);
  EXPECT_FALSE(g.done());
  std::atomic<int> callbacks{0};
  g.add_done_callback([&callbacks](GatheringFuture<std::tuple<int, int>>& done) {
    EXPECT_TRUE(done.done());
    ++callbacks;
  });
  co_await sleep(milliseconds(2));
  EXPECT_FALSE(g.done()) << "one child is still pending";
  EXPECT_THROW((void)g.result(), InvalidStateError);
  f.set_result(2);
  auto [a, b] = co_await g;
  EXPECT_EQ(a + b, 3);
  EXPECT_EQ(std::get<1>(g.result()), 2) << "an awaited lvalue keeps its result";
  co_await yield_now();
  EXPECT_EQ(callbacks.load(), 1);
  auto ready = ensure_future(g);
  EXPECT_TRUE(ready == g) << "ensure_future returns a gathering future as it is";
  EXPECT_FALSE(g.cancel()) << "done: nothing to cancel";
}

// CPython's test_cancel_gather_1: cancel() once every child has finished
// returns false, and the gather ends with the children's results.
WEFT_MANUAL_TEST(GatheringFuture, CancelAfterTheChildrenFinishedReturnsFalse, 1) {
  Future<int> f;
  Task<int> child = create_task([](Future<int> f) -> Coro<int> { co_return co_await f; }(f));
  auto g = gather(child);
  std::optional<bool> cancel_result;
  // Runs once the child is done (asyncio: the callback on `fut` runs after
  // the child's wake-up).
  child.add_done_callback([&cancel_result, g](Task<int>&) { cancel_result = g.cancel(); });
  f.set_result(42);
  auto values = co_await g;
  co_await yield_now();
  WEFT_CO_ASSERT_TRUE(cancel_result.has_value());
  EXPECT_FALSE(*cancel_result) << "asyncio issue 26923";
  EXPECT_FALSE(g.cancelled());
  EXPECT_EQ(std::get<0>(values), 42);
}

// CPython's test_cancel_gather_2: a task looping on a gather of a sleep,
// cancelled with a message: the CancelledError reaches its caller with
// that message.
WEFT_MANUAL_TEST(GatheringFuture, CancellingTheAwaitingTaskPropagatesTheMessage, 1) {
  Task<void> looping = create_task([]() -> Coro<void> {
    for (int i = 0; i < 20; ++i) co_await gather(return_exceptions, sleep(milliseconds(50)));
  }());
  co_await sleep(milliseconds(200));
  looping.cancel("my message");
  auto e = co_await raises<CancelledError>(looping);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "my message");
}

// A cancelled child makes the gather raise CancelledError, but the gathering
// future reports an exception, not "cancelled" (asyncio).
WEFT_MANUAL_TEST(GatheringFuture, ACancelledChildIsAnExceptionOfTheGather, 1) {
  Task<int> child = create_task(value_after(1, hours(1)));
  auto g = gather(child, value_after(2, milliseconds(1)));
  child.cancel("child only");
  auto e = co_await raises<CancelledError>(g);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "child only");
  EXPECT_TRUE(g.done());
  EXPECT_FALSE(g.cancelled());
  std::exception_ptr ex = g.exception();
  WEFT_CO_ASSERT_TRUE(ex != nullptr);
  EXPECT_THROW(std::rethrow_exception(ex), CancelledError);
}

Coro<int> quick_value(int v) {
  co_await yield_now();
  co_return v;
}

// cancel() races with the children finishing on other workers: whenever it
// returns true the gather raises CancelledError, and when it returns false
// the gather has its results.
WEFT_CO_TEST_WITH(GatherRace, CancelReturnValueDecidesTheOutcome, testing::test_options(3)) {
  const int n = scaled(300, 6);
  for (int i = 0; i < n; ++i) {
    auto g = gather(return_exceptions, quick_value(i), quick_value(i + 1));
    for (int k = 0; k < i % 3; ++k) co_await yield_now();
    const bool accepted = g.cancel("race");
    bool raised = false;
    try {
      auto rs = co_await g;
      EXPECT_EQ(std::get<0>(rs).value(), i) << "refused: every child had finished";
      EXPECT_EQ(std::get<1>(rs).value(), i + 1);
    } catch (const CancelledError&) {
      raised = true;
    }
    EXPECT_EQ(raised, accepted) << "iteration " << i;
  }
}

// --- shield ---------------------------------------------------------------------

Coro<int> shield_task(Task<int> inner) { co_return co_await shield(inner); }

WEFT_MANUAL_TEST(Shield, CancellingTheOuterLeavesTheInnerRunning, 1) {
  std::atomic<bool> finished{false};
  Task<int> inner = create_task(finish_after(milliseconds(20), &finished, 7));
  Task<int> outer = create_task(shield_task(inner));
  co_await sleep(milliseconds(5));
  outer.cancel("outer only");
  auto e = co_await raises<CancelledError>(outer);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outer only");
  EXPECT_FALSE(inner.done());
  EXPECT_FALSE(inner.cancelled());
  EXPECT_EQ(co_await inner, 7);
  EXPECT_TRUE(finished);
}

WEFT_MANUAL_TEST(Shield, CancellingTheInnerCancelsTheOuter, 1) {
  Task<int> inner = create_task(value_after(1, hours(1)));
  Task<int> outer = create_task(shield_task(inner));
  co_await sleep(milliseconds(5));
  inner.cancel("inner");
  EXPECT_TRUE((co_await raises<CancelledError>(outer)).has_value());
  EXPECT_TRUE(outer.cancelled());
}

WEFT_MANUAL_TEST(Shield, ValueAndErrorPassThrough, 1) {
  EXPECT_EQ(co_await shield(value_after(3, milliseconds(1))), 3);
  EXPECT_TRUE((co_await raises<std::runtime_error>(shield(fail_after(milliseconds(1), "x")))).has_value());
}

// --- as_completed ---------------------------------------------------------------

WEFT_MANUAL_TEST(AsCompleted, CompletionOrder, 1) {
  const TimePoint t0 = clock->now();
  auto it = as_completed(three_tasks());
  std::vector<int> order;
  std::vector<Duration> when;
  while (it.has_next()) {
    Task<int> t = co_await it.next();
    order.push_back(t.result());
    when.push_back(since(clock, t0));
  }
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(when, (std::vector<Duration>{milliseconds(10), milliseconds(20), milliseconds(30)}));
}

WEFT_MANUAL_TEST(AsCompleted, Timeout, 1) {
  const TimePoint t0 = clock->now();
  auto ts = three_tasks();
  auto it = as_completed(ts, milliseconds(15));
  Task<int> first = co_await it.next();
  EXPECT_EQ(first.result(), 10);
  auto e = co_await raises<TimeoutError>(it.next());
  EXPECT_TRUE(e.has_value());
  EXPECT_EQ(since(clock, t0), milliseconds(15));
  co_await gather(std::move(ts));
}

// --- races across workers ---------------------------------------------------------
// Real clock, several workers: a result, the timeout and an outside
// cancellation race. Invariants, whatever the interleaving:
//  - a value that was set is never lost (wait_for returns it);
//  - TimeoutError only if the future was cancelled by the timeout;
//  - an outside cancellation always surfaces as CancelledError.

Coro<void> set_soon(Future<int> f, int v) {
  co_await yield_now();
  f.try_set_result(v);
}

WEFT_CO_TEST_WITH(WaitForRace, ResultVersusTimeoutAcrossWorkers, testing::test_options(3)) {
  const int n = scaled(200, 4);
  int values = 0, timeouts = 0;
  for (int i = 0; i < n; ++i) {
    Future<int> f;
    Task<void> setter = create_task(set_soon(f, i));
    try {
      int v = co_await wait_for(f, std::chrono::microseconds(i % 7 == 0 ? 0 : (i % 20) * 5));
      EXPECT_EQ(v, i);
      ++values;
    } catch (const TimeoutError&) {
      EXPECT_TRUE(f.cancelled()) << "TimeoutError although the value " << i << " had arrived";
      ++timeouts;
    }
    co_await setter;
  }
  EXPECT_EQ(values + timeouts, n);
}

// -2 for a TimeoutError. The yield after it is a suspension point: a
// cancellation request that raced with the end of wait_for (and was not
// spent on `f`) is delivered there. Only a request that wait_for consumed
// and turned into TimeoutError escapes it.
// A cancel() still in progress when the waiter finishes may legitimately
// miss it (a request racing completion), so -2 is a failure only if
// `cancel_returned` was already set when the TimeoutError arrived.
Coro<int> wait_for_future(Future<int> f, Duration d, std::atomic<bool>* cancel_returned) {
  bool cancel_was_done = false;
  try {
    co_return co_await wait_for(f, d);
  } catch (const TimeoutError&) {
    cancel_was_done = cancel_returned->load(std::memory_order_acquire);
  }
  co_await yield_now();
  co_return cancel_was_done ? -2 : -3;
}

WEFT_CO_TEST_WITH(WaitForRace, OutsideCancellationVersusTimeoutAcrossWorkers, testing::test_options(3)) {
  const int n = scaled(200, 4);
  for (int i = 0; i < n; ++i) {
    Future<int> f;
    std::atomic<bool> cancel_returned{false};
    Task<int> waiter =
        create_task(wait_for_future(f, std::chrono::microseconds(i % 10 * 10), &cancel_returned));
    if (i % 2) co_await yield_now();
    waiter.cancel("outside");
    cancel_returned.store(true, std::memory_order_release);
    if (i % 3 == 0) f.try_set_result(i);
    try {
      int v = co_await waiter;
      // Legal only if the result won before the cancellation was delivered.
      EXPECT_NE(v, -2) << "iteration " << i << ": the outside cancellation was swallowed by the timeout";
      if (v >= 0) {
        EXPECT_EQ(v, i);
      }
    } catch (const CancelledError&) {
    }
  }
}

// An inline Coro under wait_for or timeout, tasks moving between workers: the timer
// (on the loop that armed it) fires while the Coro finishes, often on
// another worker. Each call returns the Coro's value, untouched by a
// cancellation, or raises TimeoutError after the Coro saw its cancellation
// (or was never started, at a zero timeout); ASan and TSan check that the
// timer's callback is done with wait_for's frame before it goes.
Coro<int> yield_for(Duration d, int v, bool* cancelled) {
  const auto end = std::chrono::steady_clock::now() + d;
  try {
    while (std::chrono::steady_clock::now() < end) co_await yield_now();
  } catch (const CancelledError&) {
    *cancelled = true;
    throw;
  }
  co_return v;
}

Coro<int> inline_timeouts(int id, int rounds) {
  int ended = 0;
  for (int i = 0; i < rounds; ++i) {
    const auto work = std::chrono::microseconds((id + i) % 5 * 10);
    const auto limit = std::chrono::microseconds((id * 3 + i) % 7 * 10);
    bool cancelled = false;
    try {
      int v = -1;
      if (i % 2 == 0) {
        v = co_await wait_for(yield_for(work, i, &cancelled), limit);
      } else {
        v = co_await timeout(limit, yield_for(work, i, &cancelled));  // the same scope
      }
      EXPECT_EQ(v, i);
      EXPECT_FALSE(cancelled);
    } catch (const TimeoutError&) {
      // timeout() starts its body even at a zero limit (asyncio); wait_for does not.
      EXPECT_EQ(cancelled, limit.count() > 0 || i % 2 == 1) << "a timeout without the Coro's cancellation";
    }
    ++ended;
    if (i % 3 == 0) co_await yield_now();
  }
  co_return ended;
}

WEFT_CO_TEST_WITH(WaitForRace, InlineCoroTimeoutsAcrossWorkers, testing::test_options(3)) {
  const int tasks = 24;
  const int rounds = scaled(100, 4);
  std::vector<Task<int>> ts;
  for (int id = 0; id < tasks; ++id) ts.push_back(create_task(inline_timeouts(id, rounds)));
  int ended = 0;
  for (Task<int>& t : ts) ended += co_await t;
  EXPECT_EQ(ended, tasks * rounds);
}

Coro<std::tuple<int, int>> gather_futures(Future<int> a, Future<int> b) { co_return co_await gather(a, b); }

WEFT_CO_TEST_WITH(GatherRace, CancelVersusCompletionAcrossWorkers, testing::test_options(3)) {
  const int n = scaled(200, 4);
  for (int i = 0; i < n; ++i) {
    Future<int> a, b;
    Task<std::tuple<int, int>> g = create_task(gather_futures(a, b));
    Task<void> sa = create_task(set_soon(a, 1));
    Task<void> sb = create_task(set_soon(b, 2));
    if (i % 2) co_await yield_now();
    g.cancel();
    try {
      auto [x, y] = co_await g;
      EXPECT_EQ(x + y, 3);
    } catch (const CancelledError&) {
    }
    co_await sa;
    co_await sb;
    // A child either completed or was cancelled by the gather, never left pending.
    EXPECT_TRUE(a.done());
    EXPECT_TRUE(b.done());
  }
}

}  // namespace
}  // namespace weft
