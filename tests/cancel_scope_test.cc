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
#include <vector>

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

// --- shields protect from outer scopes only (Trio's test_cancel_shielding) ---------

Coro<void> checkpoint() { co_await yield_now(); }

Coro<void> shielding_body(CancelScope outer, CancelScope inner) {
  co_await checkpoint();
  outer.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(checkpoint())).has_value());
  EXPECT_FALSE(inner.shield());
  inner.set_shield(true);
  EXPECT_TRUE(inner.shield());
  co_await checkpoint();  // the shield protects us from `outer`
  CancelScope innermost;
  co_await innermost.run([](CancelScope s) -> Coro<void> {
    s.cancel();
    // ... but not from a scope inside it
    EXPECT_TRUE((co_await raises<CancelledError>(checkpoint())).has_value());
  }(innermost));
  co_await checkpoint();
  inner.set_shield(false);  // the shield can be lowered again
  EXPECT_TRUE((co_await raises<CancelledError>(checkpoint())).has_value());
  inner.set_shield(true);
  co_await checkpoint();
  inner.cancel();  // the shield does not protect from the scope itself
  co_await checkpoint();  // raises; the inner scope absorbs it
  ADD_FAILURE() << "not reached";
}

WEFT_MANUAL_TEST(Shield, ProtectsFromOuterScopesOnlyAndCanChangeAnyTime, 1) {
  CancelScope outer;
  CancelScope inner;
  auto r = co_await outer.run(inner.run(shielding_body(outer, inner)));
  EXPECT_TRUE(inner.cancelled_caught());
  EXPECT_TRUE(r.has_value()) << "the outer scope had nothing left to catch";
  EXPECT_FALSE(outer.cancelled_caught());
}

// A shielded scope's own deadline still cancels its body: a shielded
// move_on_after moves on, a shielded fail_after raises TimeoutError, while
// the enclosing deadline waits for the shield.
WEFT_MANUAL_TEST(Shield, ShieldedMoveOnAndFailAfterKeepTheirOwnDeadline, 1) {
  const TimePoint t0 = clock->now();
  auto outer = co_await move_on_after(milliseconds(5), [](ManualClock* clock, TimePoint t0) -> Coro<int> {
    auto moved = co_await move_on_after(milliseconds(10), value_after(1, hours(1)), {.shield = true});
    EXPECT_FALSE(moved.has_value());
    EXPECT_EQ(clock->now() - t0, milliseconds(10)) << "the shielded scope's own deadline";
    co_await checkpoint();  // the outer deadline (5 ms) reaches us now
    co_return 2;
  }(clock, t0));
  EXPECT_FALSE(outer.has_value());
  const TimePoint t1 = clock->now();
  bool timed_out = false;
  co_await move_on_after(milliseconds(1), [](bool* timed_out) -> Coro<void> {
    auto e = co_await raises<TimeoutError>(fail_after(milliseconds(4), value_after(1, hours(1)), {.shield = true}));
    *timed_out = e.has_value();
  }(&timed_out));
  EXPECT_TRUE(timed_out) << "a shielded fail_after raises TimeoutError at its deadline";
  EXPECT_EQ(clock->now() - t1, milliseconds(4));
}

// A Task::cancel made while the body is shielded is deferred: the shielded
// scope still catches its own expiry, and the request is delivered at the
// first checkpoint after it.
Coro<int> shielded_scope_then_sleep(bool* caught) {
  CancelScope scope = CancelScope::after(milliseconds(10), {.shield = true});
  co_await scope.run(value_after(1, hours(1)));
  *caught = scope.cancelled_caught();
  co_await sleep(hours(1));
  co_return 0;
}

WEFT_MANUAL_TEST(Shield, OwnDeadlineIsCaughtWhileATaskCancelWaits, 1) {
  bool caught = false;
  Task<int> t = create_task(shielded_scope_then_sleep(&caught));
  co_await sleep(milliseconds(5));
  t.cancel("outside");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outside");
  EXPECT_TRUE(caught) << "the shielded scope absorbed its own deadline";
}

// Trio's test_cancel_shield_abort: lowering the shield while the task
// sleeps inside it, under a cancelled outer scope, aborts the sleep at once.
Coro<void> sleep_recording_cancel(std::atomic<int>* stage) {
  stage->store(1);
  try {
    co_await sleep(hours(1));
  } catch (const CancelledError&) {
    stage->store(2);
    throw;
  }
}

WEFT_MANUAL_TEST(Shield, LoweringTheShieldAbortsAWaitingBody, 1) {
  CancelScope outer;
  CancelScope inner({.shield = true});
  std::atomic<int> stage{0};
  Task<std::optional<bool>> t = create_task(outer.run(inner.run(sleep_recording_cancel(&stage))));
  co_await sleep(milliseconds(1));
  outer.cancel();
  co_await sleep(milliseconds(5));
  EXPECT_EQ(stage.load(), 1) << "the shield keeps the outer cancellation out";
  const TimePoint t0 = clock->now();
  inner.set_shield(false);
  auto r = co_await t;
  EXPECT_EQ(stage.load(), 2);
  EXPECT_EQ(clock->now(), t0) << "woken at once, not at the next timer";
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_FALSE(inner.cancelled_caught()) << "the inner scope was not cancelled itself";
}

// Raising the shield mid-body keeps a later outer cancellation out; a
// Task::cancel made meanwhile waits for the shield to be lowered.
WEFT_MANUAL_TEST(Shield, RaisedMidBodyDefersATaskCancel, 1) {
  CancelScope scope;
  std::atomic<int> stage{0};
  Task<std::optional<int>> t = create_task(scope.run([](CancelScope s, std::atomic<int>* stage) -> Coro<int> {
    s.set_shield(true);
    co_await sleep(milliseconds(10));  // t.cancel() lands here, deferred
    stage->store(1);
    s.set_shield(false);
    co_await checkpoint();  // delivered here
    stage->store(2);
    co_return 0;
  }(scope, &stage)));
  co_await sleep(milliseconds(2));
  t.cancel("later");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "later");
  EXPECT_EQ(stage.load(), 1);
}

// The shield lowered from another worker while the body waits (any thread
// may set it): the body is woken, every time.
WEFT_CO_TEST_WITH(ShieldRace, LoweredFromAnotherWorker, testing::test_options(3)) {
  const int n = scaled(100, 4);
  for (int i = 0; i < n; ++i) {
    CancelScope outer;
    CancelScope inner({.shield = true});
    outer.cancel();
    Task<std::optional<bool>> t = create_task(outer.run(inner.run(void_sleep(hours(1)))));
    Task<void> lowerer = create_task([](CancelScope s, int i) -> Coro<void> {
      for (int k = 0; k < i % 4; ++k) co_await yield_now();
      s.set_shield(false);
    }(inner, i));
    auto r = co_await t;
    co_await lowerer;
    EXPECT_FALSE(r.has_value()) << "iteration " << i;
  }
}

// --- deadlines at every checkpoint ---------------------------------------------------

// The deadline passes while the body runs (the clock moves; the scope's
// timer has had no chance to fire): the next checkpoint raises at once,
// whichever kind it is.
WEFT_MANUAL_TEST(Deadline, CheckedAtEveryCheckpointNotOnlyByTheTimer, 1) {
  int raised = 0;
  for (int kind = 0; kind < 3; ++kind) {
    CancelScope scope = CancelScope::after(milliseconds(10));
    co_await scope.run([](ManualClock* clock, CancelScope s, int kind, int* raised) -> Coro<void> {
      clock->advance(milliseconds(20));
      EXPECT_TRUE(s.cancel_called()) << "Trio: cancel_called once the deadline has passed";
      try {
        if (kind == 0) co_await checkpoint_if_cancelled();
        if (kind == 1) co_await yield_now();
        if (kind == 2) co_await Future<int>();  // would wait forever
      } catch (const CancelledError&) {
        ++*raised;
        throw;
      }
    }(clock, scope, kind, &raised));
    EXPECT_TRUE(scope.expired()) << "kind " << kind;
    EXPECT_TRUE(scope.cancelled_caught()) << "kind " << kind;
  }
  EXPECT_EQ(raised, 3);
}

// --- deadlines moved before entry -----------------------------------------------------

WEFT_MANUAL_TEST(Deadline, MovedIntoThePastBeforeEntryIsCancelledAtEntry, 1) {
  const TimePoint t0 = clock->now();
  CancelScope scope = CancelScope::at(t0 + hours(1));
  scope.reschedule(t0 - milliseconds(1));
  EXPECT_TRUE(scope.cancel_called()) << "Trio: a passed deadline reads as cancelled before entry";
  bool at_entry = false;
  auto r = co_await scope.run([](CancelScope s, bool* at_entry) -> Coro<int> {
    *at_entry = s.cancel_called();
    co_await checkpoint();
    co_return 1;
  }(scope, &at_entry));
  EXPECT_TRUE(at_entry);
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(scope.expired());
  EXPECT_EQ(clock->now(), t0);
  CancelScope zero = CancelScope::after(Duration(0));
  co_await zero.run([](CancelScope s, bool* at_entry) -> Coro<void> {
    *at_entry = s.cancel_called();
    co_return;
  }(zero, &at_entry));
  EXPECT_TRUE(at_entry) << "a zero relative deadline has passed at entry";
}

// --- asyncio's Timeout handle (test_timeouts.py) ------------------------------------------

WEFT_MANUAL_TEST(TimeoutHandle, WhenRescheduleExpired, 1) {
  const TimePoint t0 = clock->now();
  std::optional<Timeout> kept;
  auto e = co_await raises<TimeoutError>(timeout(milliseconds(10), [&](Timeout& t) -> Coro<void> {
    kept = t;
    EXPECT_EQ(t.when(), t0 + milliseconds(10));
    EXPECT_FALSE(t.expired());
    co_await sleep(milliseconds(5));
    t.reschedule(t.when() + milliseconds(10));
    EXPECT_EQ(t.when(), t0 + milliseconds(20));
    bool cancelled = false;
    try {
      co_await sleep(hours(1));
    } catch (const CancelledError&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(t.expired());
    // asyncio: an expiring timeout cannot be rescheduled.
    EXPECT_THROW(t.reschedule(clock->now() + hours(1)), RuntimeError);
    co_await checkpoint();  // level-triggered: raises again, and leaves
  }));
  EXPECT_TRUE(e.has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(20));
  WEFT_CO_ASSERT_TRUE(kept.has_value());
  EXPECT_TRUE(kept->expired());
  EXPECT_THROW(kept->reschedule(clock->now() + hours(1)), RuntimeError) << "after exit";
  Timeout unentered(CancelScope::at(t0 + hours(1)));
  EXPECT_THROW(unentered.reschedule(t0), RuntimeError) << "before entry";
  // timeout_at and "no deadline" (asyncio's None): TimePoint::max().
  int v = co_await timeout_at(TimePoint::max(), [](Timeout& t) -> Coro<int> {
    EXPECT_EQ(t.when(), TimePoint::max());
    t.reschedule(TimePoint::max());
    co_return 4;
  });
  EXPECT_EQ(v, 4);
}

WEFT_MANUAL_TEST(TimeoutHandle, RescheduleToNoDeadlineLetsTheBodyFinish, 1) {
  const TimePoint t0 = clock->now();
  int v = co_await timeout(milliseconds(5), [](Timeout& t) -> Coro<int> {
    t.reschedule(TimePoint::max());
    co_return co_await value_after(3, milliseconds(50));
  });
  EXPECT_EQ(v, 3);
  EXPECT_EQ(clock->now() - t0, milliseconds(50));
}

// --- Trio's relative deadlines and checkpoints ---------------------------------------------

WEFT_MANUAL_TEST(Relative, MeasuredFromEntryNotFromTheCall, 1) {
  auto moving = move_on_after(milliseconds(10), value_after(1, hours(1)));
  auto failing = fail_after(milliseconds(10), value_after(1, hours(1)));
  CancelScope scope = CancelScope::after(milliseconds(10));
  co_await sleep(milliseconds(7));
  TimePoint t0 = clock->now();
  EXPECT_FALSE((co_await std::move(moving)).has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
  t0 = clock->now();
  EXPECT_TRUE((co_await raises<TimeoutError>(std::move(failing))).has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
  t0 = clock->now();
  EXPECT_FALSE((co_await scope.run(value_after(1, hours(1)))).has_value());
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
  EXPECT_EQ(scope.deadline(), t0 + milliseconds(10));
}

// Trio's test_current_effective_deadline.
WEFT_MANUAL_TEST(Relative, CurrentEffectiveDeadline, 1) {
  const TimePoint t0 = clock->now();
  EXPECT_EQ(current_effective_deadline(), TimePoint::max());
  CancelScope scope1 = CancelScope::at(t0 + milliseconds(5));
  CancelScope scope2 = CancelScope::at(t0 + milliseconds(10));
  co_await scope1.run(scope2.run([](CancelScope s1, CancelScope s2, TimePoint t0) -> Coro<void> {
    EXPECT_EQ(current_effective_deadline(), t0 + milliseconds(5));
    s2.reschedule(t0 + milliseconds(3));
    EXPECT_EQ(current_effective_deadline(), t0 + milliseconds(3));
    s2.reschedule(t0 + milliseconds(10));
    EXPECT_EQ(current_effective_deadline(), t0 + milliseconds(5));
    s2.set_shield(true);
    EXPECT_EQ(current_effective_deadline(), t0 + milliseconds(10));
    s2.set_shield(false);
    EXPECT_EQ(current_effective_deadline(), t0 + milliseconds(5));
    s1.cancel();
    EXPECT_EQ(current_effective_deadline(), TimePoint::min());
    s2.set_shield(true);
    EXPECT_EQ(current_effective_deadline(), t0 + milliseconds(10));
    co_return;
  }(scope1, scope2, t0)));
  EXPECT_EQ(current_effective_deadline(), TimePoint::max());
}

WEFT_MANUAL_TEST(Relative, CheckpointIfCancelledSleepUntilAndCancelShieldedCheckpoint, 1) {
  // Not cancelled: checkpoint_if_cancelled does not even yield.
  bool other_ran = false;
  Task<void> other = create_task([](bool* ran) -> Coro<void> {
    *ran = true;
    co_return;
  }(&other_ran));
  co_await checkpoint_if_cancelled();
  EXPECT_FALSE(other_ran) << "no suspension when not cancelled";
  co_await other;
  // sleep_until: an absolute deadline; one in the past yields once.
  const TimePoint t0 = clock->now();
  co_await sleep_until(t0 + milliseconds(7));
  EXPECT_EQ(clock->now(), t0 + milliseconds(7));
  co_await sleep_until(t0);
  EXPECT_EQ(clock->now(), t0 + milliseconds(7));
  // Trio's test_cancel_scope_nesting: a cancellation pending at a
  // cancel-shielded checkpoint is not delivered there, and a scope left
  // without raising caught nothing.
  CancelScope scope;
  co_await scope.run([](CancelScope s) -> Coro<void> {
    s.cancel();
    co_await cancel_shielded_checkpoint();
    EXPECT_TRUE((co_await raises<CancelledError>(checkpoint_if_cancelled())).has_value());
  }(scope));
  EXPECT_FALSE(scope.cancelled_caught());
  co_await checkpoint();
}

// --- durations: Trio's names reject negative ones, asyncio's expire --------------------

WEFT_MANUAL_TEST(Durations, TrioNamesRejectNegativeAsyncioNamesExpire, 1) {
  EXPECT_THROW((void)CancelScope::after(milliseconds(-1)), std::invalid_argument);
  EXPECT_THROW((void)move_on_after(milliseconds(-1), value_after(1, milliseconds(1))), std::invalid_argument);
  EXPECT_THROW((void)fail_after(milliseconds(-1), value_after(1, milliseconds(1))), std::invalid_argument);
  const TimePoint t0 = clock->now();
  EXPECT_FALSE((co_await move_on_after(Duration(0), value_after(1, milliseconds(1)))).has_value())
      << "zero is allowed: already expired";
  EXPECT_TRUE((co_await raises<TimeoutError>(timeout(milliseconds(-3), value_after(1, milliseconds(1))))).has_value());
  co_await sleep(milliseconds(-3));
  Task<int> t = create_task(value_after(2, milliseconds(2)));
  std::vector<Task<int>> one = {t};
  auto w = co_await wait(one, milliseconds(-1));
  EXPECT_EQ(w.pending.size(), 1u);
  auto it = as_completed(one, milliseconds(-1));
  EXPECT_TRUE((co_await raises<TimeoutError>(it.next())).has_value());
  EXPECT_EQ(clock->now(), t0);
  EXPECT_EQ(co_await t, 2);
  auto done_first = as_completed(one, milliseconds(-1));
  EXPECT_EQ((co_await done_first.next()).result(), 2) << "what is done is handed out first";
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

// --- the frame-held timeout scope of wait_for and timeout ---------------------------

// Destroyed while entered, as when its frame is destroyed while suspended in
// it (a task abandoned at shutdown): its timer is cancelled, and the task is
// outside it again (the chain does not keep a pointer into the dead frame).
WEFT_MANUAL_TEST(InlineTimeoutScope, DestroyedWhileEnteredCancelsItsTimerAndLeavesTheChain, 1) {
  detail::TaskBase* self = detail::current_task_base_checked("the test");
  const TimePoint t0 = clock->now();
  {
    detail::InlineTimeout scope;
    EXPECT_TRUE(scope.enter(self, milliseconds(5)));
    EXPECT_EQ(current_effective_deadline(), t0 + milliseconds(5));
  }
  EXPECT_EQ(self->innermost_scope(), nullptr);
  EXPECT_EQ(current_effective_deadline(), TimePoint::max());
  co_await sleep(milliseconds(10));  // the cancelled timer does not fire into the freed scope
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
}

// Duration::max() saturates to "no deadline": no timer is armed, the body
// runs to its end.
WEFT_MANUAL_TEST(InlineTimeoutScope, DurationMaxMeansNoDeadline, 1) {
  auto body = []() -> Coro<int> {
    EXPECT_EQ(current_effective_deadline(), TimePoint::max());
    co_await sleep(hours(24 * 365));
    co_return 9;
  };
  EXPECT_EQ(co_await timeout(Duration::max(), body()), 9);
  EXPECT_EQ(co_await wait_for(body(), Duration::max()), 9);
}

}  // namespace
}  // namespace weft
