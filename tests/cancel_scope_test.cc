// Cancel scopes (sched/cancel_scope.h): asyncio.timeout / timeout_at
// (test_timeouts.py) and Trio's CancelScope, move_on_after / move_on_at
// (trio/_tests/test_timeouts.py, test_cancel_scope). On a ManualClock with
// autojump, so every deadline is hit exactly and no test sleeps.
#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "tests/testing.h"

namespace weft {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using testing::raises;
using testing::scaled;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Coro<int> value_after(int v, Duration d) {
  co_await sleep(d);
  co_return v;
}

// Sleeps an hour; records the CancelledError's message.
Coro<int> sleep_recording(std::string* msg) {
  try {
    co_await sleep(hours(1));
  } catch (const CancelledError& e) {
    *msg = e.message();
    throw;
  }
  co_return 0;
}

// --- timeout / timeout_at ------------------------------------------------------------

WEFT_MANUAL_TEST(Timeout, RaisesTimeoutErrorAtTheDeadline, 1) {
  const TimePoint t0 = clock->now();
  std::string msg;
  auto e = co_await raises<TimeoutError>(timeout(milliseconds(10), sleep_recording(&msg)));
  EXPECT_TRUE(e.has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
  EXPECT_TRUE(contains(msg, "deadline passed")) << "the body's CancelledError says who: " << msg;
  EXPECT_TRUE(contains(msg, "scope 0x")) << msg;
  EXPECT_EQ(current_task().cancelling(), 0);
}

WEFT_MANUAL_TEST(Timeout, TimeoutAt, 1) {
  const TimePoint t0 = clock->now();
  std::string msg;
  EXPECT_TRUE((co_await raises<TimeoutError>(timeout_at(t0 + milliseconds(7), sleep_recording(&msg))))
                  .has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(7));
  // A deadline already in the past cancels at the first await.
  EXPECT_TRUE((co_await raises<TimeoutError>(timeout_at(t0, sleep_recording(&msg)))).has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(7));
}

WEFT_MANUAL_TEST(Timeout, ValueBeforeTheDeadlineAndTheTimerIsGone, 1) {
  const TimePoint t0 = clock->now();
  EXPECT_EQ(co_await timeout(milliseconds(10), value_after(3, milliseconds(4))), 3);
  co_await sleep(milliseconds(1));
  EXPECT_EQ(clock->now() - t0, milliseconds(5)) << "nothing left at t0+10ms to jump to";
}

WEFT_MANUAL_TEST(Timeout, ZeroAndNegative, 1) {
  const TimePoint t0 = clock->now();
  EXPECT_TRUE((co_await raises<TimeoutError>(timeout(Duration(0), value_after(1, milliseconds(1))))).has_value());
  // asyncio: a negative delay (often `deadline - now`) is an expired timeout.
  EXPECT_TRUE(
      (co_await raises<TimeoutError>(timeout(milliseconds(-1), value_after(1, milliseconds(1))))).has_value());
  EXPECT_TRUE(
      (co_await raises<TimeoutError>(timeout_at(t0 - hours(1), value_after(1, milliseconds(1))))).has_value());
  EXPECT_EQ(clock->now(), t0) << "nothing waited";
  // A body that never suspends is not cancelled, even with a zero timeout.
  EXPECT_EQ(co_await timeout(Duration(0), []() -> Coro<int> { co_return 5; }()), 5);
  EXPECT_EQ(co_await timeout(milliseconds(-3), []() -> Coro<int> { co_return 6; }()), 6);
}

Coro<void> reschedule_body(CancelScope scope, ManualClock* clock, TimePoint t0) {
  EXPECT_EQ(scope.deadline(), t0 + milliseconds(10)) << "measured from entry";
  co_await sleep(milliseconds(5));
  scope.reschedule(clock->now() + milliseconds(20));
  co_await sleep(hours(1));
}

WEFT_MANUAL_TEST(Timeout, Reschedule, 1) {
  CancelScope scope = CancelScope::after(milliseconds(10));
  EXPECT_TRUE(scope.is_relative());
  EXPECT_THROW((void)scope.deadline(), RuntimeError) << "a relative scope has no deadline before entry";
  co_await sleep(milliseconds(7));  // not counted: the deadline is measured from entry
  const TimePoint t0 = clock->now();
  EXPECT_TRUE((co_await raises<TimeoutError>(scope.run_or_timeout(reschedule_body(scope, clock, t0)))).has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(25)) << "the rescheduled deadline, not the first";
  EXPECT_EQ(scope.deadline(), t0 + milliseconds(25));
  EXPECT_FALSE(scope.is_relative());
  EXPECT_TRUE(scope.expired());
}

Coro<void> remove_deadline_body(CancelScope scope) {
  co_await sleep(milliseconds(5));
  scope.reschedule(TimePoint::max());
  co_await sleep(milliseconds(50));
}

WEFT_MANUAL_TEST(Timeout, RescheduleToNeverRemovesTheDeadline, 1) {
  CancelScope scope = CancelScope::after(milliseconds(10));
  co_await scope.run_or_timeout(remove_deadline_body(scope));
  EXPECT_FALSE(scope.expired());
  EXPECT_FALSE(scope.cancel_called());
}

WEFT_MANUAL_TEST(Timeout, RescheduleBeforeRunningAndIntoThePast, 1) {
  const TimePoint t0 = clock->now();
  CancelScope scope = CancelScope::at(t0 + hours(1));
  scope.reschedule(t0 + milliseconds(3));  // not running yet: just moves the deadline
  EXPECT_TRUE((co_await raises<TimeoutError>(scope.run_or_timeout(value_after(1, hours(1))))).has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(3));
  // Trio: an unentered relative scope has no absolute deadline to move.
  CancelScope relative = CancelScope::after(hours(1));
  EXPECT_THROW(relative.reschedule(t0), RuntimeError);
}

WEFT_MANUAL_TEST(Timeout, Expired, 1) {
  CancelScope a = CancelScope::after(milliseconds(5));
  co_await a.run(value_after(1, hours(1)));
  EXPECT_TRUE(a.expired());
  EXPECT_TRUE(a.cancel_called());
  EXPECT_TRUE(a.cancelled_caught());
  CancelScope b = CancelScope::after(milliseconds(5));
  co_await b.run(value_after(1, milliseconds(1)));
  EXPECT_FALSE(b.expired());
  EXPECT_FALSE(b.cancelled_caught());
  CancelScope c = CancelScope::after(milliseconds(50));
  Task<void> canceller = create_task([](CancelScope c) -> Coro<void> {
    co_await sleep(milliseconds(1));
    c.cancel();
  }(c));
  co_await c.run(value_after(1, hours(1)));
  co_await canceller;
  EXPECT_FALSE(c.expired()) << "cancelled by cancel(), not by its deadline";
  EXPECT_TRUE(c.cancelled_caught());
}

// --- move_on_after / move_on_at ------------------------------------------------------

Coro<void> void_sleep(Duration d) { co_await sleep(d); }

WEFT_MANUAL_TEST(MoveOn, StopsQuietly, 1) {
  const TimePoint t0 = clock->now();
  std::optional<int> r = co_await move_on_after(milliseconds(10), value_after(1, hours(1)));
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
  r = co_await move_on_after(milliseconds(10), value_after(2, milliseconds(1)));
  EXPECT_EQ(r, 2);
  bool completed = co_await move_on_at(clock->now() + milliseconds(3), void_sleep(hours(1)));
  EXPECT_FALSE(completed);
  completed = co_await move_on_at(clock->now() + milliseconds(3), void_sleep(milliseconds(1)));
  EXPECT_TRUE(completed);
  EXPECT_EQ(current_task().cancelling(), 0);
}

// --- cancel(), cancel_called, cancelled_caught, the message ----------------------------

Coro<void> cancel_later(CancelScope scope, Duration d, std::string reason) {
  co_await sleep(d);
  scope.cancel(std::move(reason));
}

WEFT_MANUAL_TEST(Scope, CancelCalledAndCancelledCaught, 2) {
  CancelScope scope;
  EXPECT_FALSE(scope.cancel_called());
  std::string msg;
  Task<void> c = create_task(cancel_later(scope, milliseconds(5), ""));
  auto r = co_await scope.run(sleep_recording(&msg));
  co_await c;
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(scope.cancel_called());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_FALSE(scope.cancel()) << "already cancelled";
  EXPECT_TRUE(contains(msg, "CancelScope::cancel")) << msg;
  EXPECT_TRUE(contains(scope.cancel_reason(), "CancelScope::cancel"));
}

WEFT_MANUAL_TEST(Scope, CancelWithAReasonAndRunOrTimeout, 1) {
  CancelScope scope;
  Task<void> c = create_task(cancel_later(scope, milliseconds(5), "user pressed stop"));
  std::string msg;
  auto e = co_await raises<CancelledError>(scope.run_or_timeout(sleep_recording(&msg)));
  co_await c;
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "user pressed stop") << "run_or_timeout: CancelledError naming the reason";
  EXPECT_EQ(msg, "user pressed stop");
  EXPECT_FALSE(scope.expired());
}

WEFT_MANUAL_TEST(Scope, CancelBeforeRunCancelsTheFirstAwait, 1) {
  CancelScope scope;
  scope.cancel("early");
  const TimePoint t0 = clock->now();
  auto r = co_await scope.run(value_after(1, hours(1)));
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(clock->now(), t0);
  EXPECT_TRUE(scope.cancelled_caught());
}

WEFT_MANUAL_TEST(Scope, BodyThatCompletesDespiteTheCancelIsNotCaught, 1) {
  CancelScope scope;
  auto r = co_await scope.run([](CancelScope s) -> Coro<int> {
    s.cancel();
    co_return 4;  // no await after the cancel
  }(scope));
  EXPECT_EQ(r, 4);
  EXPECT_TRUE(scope.cancel_called());
  EXPECT_FALSE(scope.cancelled_caught());
}

WEFT_MANUAL_TEST(Scope, RunsOnlyOnce, 1) {
  CancelScope scope;
  co_await scope.run(value_after(1, milliseconds(1)));
  EXPECT_TRUE((co_await raises<RuntimeError>(scope.run(value_after(1, milliseconds(1))))).has_value());
}

// --- level-triggered ----------------------------------------------------------------

Coro<int> keeps_awaiting(int* cancels) {
  for (int i = 0; i < 3; ++i) {
    try {
      co_await sleep(hours(1));
    } catch (const CancelledError&) {
      ++*cancels;
    }
  }
  try {
    co_await yield_now();
  } catch (const CancelledError&) {
    ++*cancels;
  }
  co_return 7;
}

WEFT_MANUAL_TEST(Scope, LevelTriggeredEveryLaterAwaitIsCancelled, 1) {
  const TimePoint t0 = clock->now();
  int cancels = 0;
  auto r = co_await move_on_after(milliseconds(10), keeps_awaiting(&cancels));
  EXPECT_EQ(cancels, 4) << "each await after the deadline raised at once";
  EXPECT_EQ(clock->now() - t0, milliseconds(10)) << "no later await waited";
  EXPECT_EQ(r, 7) << "the body swallowed every cancellation and returned";
  // Outside the scope, awaiting works again.
  co_await sleep(milliseconds(1));
  EXPECT_EQ(clock->now() - t0, milliseconds(11));
}

// --- shield -------------------------------------------------------------------------

Coro<int> shielded_work(bool* done) {
  co_await shielded(sleep(milliseconds(20)));
  *done = true;
  co_await sleep(hours(1));  // not shielded: the outer deadline hits here
  co_return 1;
}

WEFT_MANUAL_TEST(Shield, ShieldedScopeKeepsTheDeadlineOut, 1) {
  const TimePoint t0 = clock->now();
  bool done = false;
  EXPECT_TRUE((co_await raises<TimeoutError>(timeout(milliseconds(10), shielded_work(&done)))).has_value());
  EXPECT_TRUE(done);
  EXPECT_EQ(clock->now() - t0, milliseconds(20));
}

Coro<int> shielded_then_more(bool* done) {
  int v = co_await shielded(value_after(5, milliseconds(20)));
  *done = true;
  co_await sleep(hours(1));
  co_return v;
}

WEFT_MANUAL_TEST(Shield, TaskCancelIsDeliveredAfterTheShield, 1) {
  bool done = false;
  Task<int> t = create_task(shielded_then_more(&done));
  co_await sleep(milliseconds(5));
  t.cancel("later");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(done) << "the shielded part finished";
  EXPECT_EQ(e->message(), "later");
}

WEFT_MANUAL_TEST(Shield, ScopesInsideAShieldStillWork, 1) {
  const TimePoint t0 = clock->now();
  auto r = co_await move_on_after(milliseconds(10), shielded(
      [](ManualClock*) -> Coro<int> {
        auto inner = co_await move_on_after(milliseconds(3), value_after(1, hours(1)));
        co_return inner ? 1 : 2;
      }(clock)));
  EXPECT_EQ(r, 2);
  EXPECT_EQ(clock->now() - t0, milliseconds(3));
}

// --- nesting ------------------------------------------------------------------------

WEFT_MANUAL_TEST(Nested, OuterEarlierDeadlineWins, 1) {
  const TimePoint t0 = clock->now();
  CancelScope outer = CancelScope::after(milliseconds(10));
  CancelScope inner = CancelScope::after(milliseconds(20));
  auto r = co_await outer.run(inner.run(value_after(1, hours(1))));
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_FALSE(inner.cancel_called());
  EXPECT_FALSE(inner.cancelled_caught());
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
}

WEFT_MANUAL_TEST(Nested, BothExpiredTheOuterCatches, 1) {
  CancelScope outer = CancelScope::after(milliseconds(10));
  CancelScope inner = CancelScope::after(milliseconds(10));
  auto r = co_await outer.run(inner.run(value_after(1, hours(1))));
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_FALSE(inner.cancelled_caught()) << "the outermost cancelled scope catches";
}

Coro<int> inner_timeout_then_more(bool* inner_fired) {
  auto e = co_await raises<TimeoutError>(timeout(milliseconds(5), value_after(1, hours(1))));
  *inner_fired = e.has_value();
  co_return co_await value_after(2, milliseconds(3));
}

WEFT_MANUAL_TEST(Nested, InnerEarlierDeadlineIsCaughtByTheInner, 1) {
  const TimePoint t0 = clock->now();
  bool inner_fired = false;
  int v = co_await timeout(milliseconds(20), inner_timeout_then_more(&inner_fired));
  EXPECT_TRUE(inner_fired);
  EXPECT_EQ(v, 2);
  EXPECT_EQ(clock->now() - t0, milliseconds(8));
}

// --- never swallow an outside cancellation -----------------------------------------

// Deadline first, then Task::cancel while the body cleans up (shielded).
Coro<int> cleans_up_after_cancel(Duration cleanup) {
  std::exception_ptr e;
  try {
    co_await sleep(hours(1));
  } catch (const CancelledError&) {
    e = std::current_exception();
  }
  co_await shielded(sleep(cleanup));
  std::rethrow_exception(e);
}

WEFT_MANUAL_TEST(Outside, DeadlineThenOutsideCancelPropagates, 1) {
  Task<int> t = create_task(timeout(milliseconds(10), cleans_up_after_cancel(milliseconds(10))));
  co_await sleep(milliseconds(15));  // the deadline passed; the body cleans up until 20
  t.cancel("outside");
  auto e = co_await raises<CancelledError>(t);
  EXPECT_TRUE(e.has_value()) << "the timeout swallowed an outside cancellation";
  EXPECT_TRUE(t.cancelled());
}

WEFT_MANUAL_TEST(Outside, OutsideCancelThenDeadlinePropagates, 1) {
  Task<int> t = create_task(timeout(milliseconds(10), cleans_up_after_cancel(milliseconds(20))));
  co_await sleep(milliseconds(5));  // before the deadline
  t.cancel("outside");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outside");
  EXPECT_EQ(t.cancelling(), 1);
}

WEFT_MANUAL_TEST(Outside, MoveOnDoesNotSwallowEither, 1) {
  Task<std::optional<int>> t = create_task(move_on_after(milliseconds(10), cleans_up_after_cancel(milliseconds(10))));
  co_await sleep(milliseconds(15));
  t.cancel("outside");
  EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
}

// The outside cancellation and the deadline in the same tick, both orders.
WEFT_MANUAL_TEST(Outside, SameTickAsTheDeadline, 1) {
  for (int order = 0; order < 2; ++order) {
    Task<int> t;
    if (order == 0) {
      t = create_task(timeout(milliseconds(10), value_after(1, hours(1))));
      call_later(milliseconds(10), [t] { t.cancel("outside"); });
    } else {
      call_later(milliseconds(10), [&t] { t.cancel("outside"); });
      t = create_task(timeout(milliseconds(10), value_after(1, hours(1))));
    }
    EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value()) << "order " << order;
  }
}

// --- races across workers -----------------------------------------------------------

Coro<int> quick(int v) {
  co_await yield_now();
  co_return v;
}

WEFT_CO_TEST_WITH(ScopeRace, CancelVersusCompletionAcrossWorkers, testing::test_options(3)) {
  const int n = scaled(200, 4);
  for (int i = 0; i < n; ++i) {
    CancelScope scope;
    Task<void> c = create_task([](CancelScope s, int i) -> Coro<void> {
      for (int k = 0; k < i % 3; ++k) co_await yield_now();
      s.cancel();
    }(scope, i));
    auto r = co_await scope.run(quick(i));
    co_await c;
    EXPECT_TRUE(scope.cancel_called());
    EXPECT_EQ(r.has_value(), !scope.cancelled_caught()) << "iteration " << i;
    if (r) {
      EXPECT_EQ(*r, i);
    }
    EXPECT_EQ(current_task().cancelling(), 0);
  }
}

Coro<int> timed(int i) {
  co_return co_await timeout(std::chrono::microseconds(i % 10 * 10), quick(i));
}

WEFT_CO_TEST_WITH(ScopeRace, OutsideCancelVersusDeadlineAcrossWorkers, testing::test_options(3)) {
  const int n = scaled(200, 4);
  for (int i = 0; i < n; ++i) {
    std::atomic<bool> cancel_returned{false};
    Task<int> t = create_task([](int i, std::atomic<bool>* cr) -> Coro<int> {
      bool cancel_was_done = false;
      try {
        co_return co_await timed(i);
      } catch (const TimeoutError&) {
        cancel_was_done = cr->load(std::memory_order_acquire);
      }
      co_await yield_now();  // a request that raced with the end is delivered here
      co_return cancel_was_done ? -2 : -3;
    }(i, &cancel_returned));
    for (int k = 0; k < i % 3; ++k) co_await yield_now();
    t.cancel("outside");
    cancel_returned.store(true, std::memory_order_release);
    try {
      int v = co_await t;
      EXPECT_NE(v, -2) << "iteration " << i << ": the timeout swallowed an outside cancellation";
    } catch (const CancelledError&) {
    }
  }
}

}  // namespace
}  // namespace weft
