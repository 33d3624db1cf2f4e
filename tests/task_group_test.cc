// task_group / TaskGroup (sched/task_group.h) against Python 3.11+'s
// asyncio.TaskGroup (test_taskgroups.py), and ExceptionGroup's except*
// helpers (core/errors.h). Timing runs on a ManualClock with autojump.
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

struct Probe {
  std::atomic<int> finished{0};
  std::atomic<int> cancelled{0};
};

Coro<void> child(Duration d, Probe* p) {
  try {
    co_await sleep(d);
  } catch (const CancelledError&) {
    ++p->cancelled;
    throw;
  }
  ++p->finished;
}
Coro<void> fail_after(Duration d, std::string what) {
  co_await sleep(d);
  throw std::runtime_error(what);
}
// On cancellation fails with a logic_error instead (a second failure).
Coro<void> fail_on_cancel() {
  try {
    co_await sleep(hours(1));
  } catch (const CancelledError&) {
    throw std::logic_error("cleanup failed");
  }
}

WEFT_MANUAL_TEST(TaskGroup, EveryChildIsJoinedBeforeTheScopeEnds, 2) {
  Probe p;
  const TimePoint t0 = clock->now();
  co_await task_group([&](TaskGroup& tg) -> Coro<void> {
    tg.create_task(child(milliseconds(10), &p));
    tg.create_task(child(milliseconds(30), &p));
    tg.create_task(child(milliseconds(20), &p));
    co_return;  // the body ends first; the group waits for the children
  });
  EXPECT_EQ(p.finished, 3);
  EXPECT_EQ(clock->now() - t0, milliseconds(30));
}

WEFT_MANUAL_TEST(TaskGroup, ChildrenCanBeAddedByChildren, 2) {
  Probe p;
  co_await task_group([&](TaskGroup& tg) -> Coro<void> {
    Task<void> t = tg.create_task([](TaskGroup tg, Probe* p) -> Coro<void> {
      co_await sleep(milliseconds(5));
      tg.create_task(child(milliseconds(5), p));
    }(tg, &p));
    co_return;
  });
  EXPECT_EQ(p.finished, 1);
}

WEFT_MANUAL_TEST(TaskGroup, FirstFailureCancelsTheOthersAndTheBody, 1) {
  Probe p;
  bool body_cancelled = false;
  const TimePoint t0 = clock->now();
  std::optional<ExceptionGroup> eg;
  try {
    co_await task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task(child(hours(1), &p));
      tg.create_task(fail_after(milliseconds(10), "first"));
      tg.create_task(child(hours(2), &p));
      try {
        co_await sleep(hours(3));
      } catch (const CancelledError&) {
        body_cancelled = true;
        throw;
      }
    });
  } catch (const ExceptionGroup& e) {
    eg = e;
  }
  WEFT_CO_ASSERT_TRUE(eg.has_value());
  WEFT_CO_ASSERT_EQ(eg->exceptions().size(), 1u);
  EXPECT_THROW(std::rethrow_exception(eg->exceptions()[0]), std::runtime_error);
  EXPECT_TRUE(body_cancelled);
  EXPECT_EQ(p.cancelled, 2);
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
  EXPECT_EQ(current_task().cancelling(), 0) << "the group withdrew the cancellation it requested";
  // The task can still await normally: no cancellation was left behind.
  co_await sleep(milliseconds(1));
}

WEFT_MANUAL_TEST(TaskGroup, AllFailuresInOneExceptionGroup, 1) {
  std::optional<ExceptionGroup> eg;
  try {
    co_await task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task(fail_on_cancel());
      tg.create_task(fail_after(milliseconds(10), "first"));
      co_await sleep(hours(1));
    });
  } catch (const ExceptionGroup& e) {
    eg = e;
  }
  WEFT_CO_ASSERT_TRUE(eg.has_value());
  WEFT_CO_ASSERT_EQ(eg->exceptions().size(), 2u);
  // In the order they happened.
  EXPECT_THROW(std::rethrow_exception(eg->exceptions()[0]), std::runtime_error);
  try {
    std::rethrow_exception(eg->exceptions()[1]);
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "cleanup failed");
  } catch (...) {
    ADD_FAILURE() << "second exception has the wrong type";
  }
  // except* std::logic_error / except* std::runtime_error
  auto [logic, rest] = eg->split<std::logic_error>();
  WEFT_CO_ASSERT_TRUE(logic.has_value());
  WEFT_CO_ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(logic->exceptions().size(), 1u);
  EXPECT_EQ(rest->exceptions().size(), 1u);
  EXPECT_TRUE(eg->contains<std::runtime_error>()) << "logic_error derives from std::exception, "
                                                     "runtime_error matches the first";
  EXPECT_FALSE(eg->contains<TimeoutError>());
  EXPECT_FALSE(eg->subgroup<TimeoutError>().has_value());
  auto all = eg->subgroup<std::exception>();
  WEFT_CO_ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->exceptions().size(), 2u);
  EXPECT_EQ(all->message(), eg->message());
}

WEFT_MANUAL_TEST(TaskGroup, BodyFailureIsInTheGroupAndCancelsTheChildren, 1) {
  Probe p;
  std::optional<ExceptionGroup> eg;
  try {
    co_await task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task(child(hours(1), &p));
      co_await sleep(milliseconds(5));
      throw std::invalid_argument("body");
    });
  } catch (const ExceptionGroup& e) {
    eg = e;
  }
  WEFT_CO_ASSERT_TRUE(eg.has_value());
  WEFT_CO_ASSERT_EQ(eg->exceptions().size(), 1u);
  EXPECT_THROW(std::rethrow_exception(eg->exceptions()[0]), std::invalid_argument);
  EXPECT_EQ(p.cancelled, 1);
}

WEFT_MANUAL_TEST(TaskGroup, ChildCancelledOnItsOwnIsNotAFailure, 1) {
  Probe p;
  co_await task_group([&](TaskGroup& tg) -> Coro<void> {
    Task<void> t = tg.create_task(child(hours(1), &p));
    tg.create_task(child(milliseconds(10), &p));
    co_await sleep(milliseconds(1));
    t.cancel("just this one");
  });
  EXPECT_EQ(p.cancelled, 1);
  EXPECT_EQ(p.finished, 1);
}

Coro<void> group_forever(Probe* p) {
  co_await task_group([p](TaskGroup& tg) -> Coro<void> {
    tg.create_task(child(hours(1), p));
    tg.create_task(child(hours(1), p));
    co_await sleep(hours(1));
  });
}

WEFT_MANUAL_TEST(TaskGroup, CancellationFromOutsidePropagates, 2) {
  Probe p;
  Task<void> t = create_task(group_forever(&p));
  co_await sleep(milliseconds(5));
  t.cancel("from outside");
  auto e = co_await raises<CancelledError>(t);
  EXPECT_TRUE(e.has_value()) << "the group must not swallow an outside cancellation";
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(t.cancelling(), 1);
  EXPECT_EQ(p.cancelled, 2);
}

// The join itself is cancelled from outside (body done, children running).
Coro<void> group_joining(Probe* p) {
  co_await task_group([p](TaskGroup& tg) -> Coro<void> {
    tg.create_task(child(hours(1), p));
    co_return;
  });
  ADD_FAILURE() << "not reached";
}

WEFT_MANUAL_TEST(TaskGroup, CancellingTheJoinCancelsTheChildrenAndPropagates, 1) {
  Probe p;
  Task<void> t = create_task(group_joining(&p));
  co_await sleep(milliseconds(5));
  t.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
  EXPECT_EQ(p.cancelled, 1);
  EXPECT_EQ(t.cancelling(), 1);
}

// Python: if children failed while the group was being cancelled from
// outside, the ExceptionGroup wins.
Coro<void> group_with_failing_cleanup() {
  co_await task_group([](TaskGroup& tg) -> Coro<void> {
    tg.create_task(fail_on_cancel());
    co_await sleep(hours(1));
  });
}

WEFT_MANUAL_TEST(TaskGroup, OutsideCancellationWithFailuresRaisesTheGroup, 1) {
  Task<void> t = create_task(group_with_failing_cleanup());
  co_await sleep(milliseconds(5));
  t.cancel();
  auto eg = co_await raises<ExceptionGroup>(t);
  WEFT_CO_ASSERT_TRUE(eg.has_value());
  EXPECT_TRUE(eg->contains<std::logic_error>());
}

WEFT_MANUAL_TEST(TaskGroup, NestedGroups, 1) {
  Probe p;
  std::optional<ExceptionGroup> eg;
  try {
    co_await task_group([&](TaskGroup& outer) -> Coro<void> {
      outer.create_task(child(hours(1), &p));
      co_await task_group([&](TaskGroup& inner) -> Coro<void> {
        inner.create_task(child(hours(1), &p));
        inner.create_task(fail_after(milliseconds(10), "deep"));
        co_return;
      });
    });
  } catch (const ExceptionGroup& e) {
    eg = e;
  }
  WEFT_CO_ASSERT_TRUE(eg.has_value());
  EXPECT_EQ(p.cancelled, 2) << "the inner failure cancels the inner sibling, then the outer child";
  WEFT_CO_ASSERT_EQ(eg->exceptions().size(), 1u);
  EXPECT_THROW(std::rethrow_exception(eg->exceptions()[0]), ExceptionGroup) << "nested, as in Python";
  EXPECT_TRUE(eg->contains<std::runtime_error>()) << "contains looks through nested groups";
  auto [m, rest] = eg->split<std::runtime_error>();
  EXPECT_TRUE(m.has_value());
  EXPECT_FALSE(rest.has_value());
  EXPECT_EQ(current_task().cancelling(), 0);
}

WEFT_MANUAL_TEST(TaskGroup, NestedInnerGroupCancelledByOuterFailure, 1) {
  Probe p;
  auto eg = co_await raises<ExceptionGroup>(task_group([&](TaskGroup& outer) -> Coro<void> {
    outer.create_task(fail_after(milliseconds(10), "outer child"));
    co_await task_group([&](TaskGroup& inner) -> Coro<void> {
      inner.create_task(child(hours(1), &p));
      co_await sleep(hours(1));
    });
  }));
  WEFT_CO_ASSERT_TRUE(eg.has_value());
  // The inner group's cancellation is not a failure.
  WEFT_CO_ASSERT_EQ(eg->exceptions().size(), 1u);
  EXPECT_THROW(std::rethrow_exception(eg->exceptions()[0]), std::runtime_error);
  EXPECT_EQ(p.cancelled, 1);
  EXPECT_EQ(current_task().cancelling(), 0);
}

WEFT_MANUAL_TEST(TaskGroup, CreateTaskInAFinishedGroupIsAnError, 1) {
  std::optional<TaskGroup> saved;
  co_await task_group([&](TaskGroup& tg) -> Coro<void> {
    saved.emplace(tg);
    co_return;
  });
  Probe p;
  EXPECT_THROW(saved->create_task(child(milliseconds(1), &p)), RuntimeError);
  co_await sleep(milliseconds(2));
  EXPECT_EQ(p.finished, 0) << "the refused child never runs";
}

WEFT_MANUAL_TEST(TaskGroup, CreateTaskInAGroupShuttingDownIsAnError, 1) {
  bool refused = false;
  auto eg = co_await raises<ExceptionGroup>(task_group([&](TaskGroup& tg) -> Coro<void> {
    tg.create_task(fail_after(milliseconds(1), "x"));
    try {
      co_await sleep(hours(1));
    } catch (const CancelledError&) {
    }
    Probe p;
    try {
      tg.create_task(child(milliseconds(1), &p));
    } catch (const RuntimeError&) {
      refused = true;
    }
  }));
  EXPECT_TRUE(eg.has_value());
  EXPECT_TRUE(refused);
}

WEFT_MANUAL_TEST(TaskGroup, TimeoutAroundAGroup, 1) {
  Probe p;
  const TimePoint t0 = clock->now();
  auto e = co_await raises<TimeoutError>(timeout(milliseconds(10), task_group([&](TaskGroup& tg) -> Coro<void> {
    tg.create_task(child(hours(1), &p));
    tg.create_task(child(hours(1), &p));
    co_return;
  })));
  EXPECT_TRUE(e.has_value());
  EXPECT_EQ(p.cancelled, 2);
  EXPECT_EQ(clock->now() - t0, milliseconds(10));
  EXPECT_EQ(current_task().cancelling(), 0);
}

// --- the enclosing task's cancellation (CPython test_taskgroups.py) -----------------

// test_cancellation / test_cancellation_in_body: the CancelledError leaving
// the group carries the message the enclosing task was cancelled with.
Coro<void> group_of_sleepers(Probe* p, bool body_waits) {
  co_await task_group([p, body_waits](TaskGroup& tg) -> Coro<void> {
    for (int i = 0; i < 5; ++i) tg.create_task(child(hours(1), p));
    if (body_waits) co_await sleep(hours(1));
  });
}

WEFT_MANUAL_TEST(TaskGroup, OutsideCancellationKeepsItsMessage, 1) {
  for (bool body_waits : {false, true}) {
    Probe p;
    Task<void> r = create_task(group_of_sleepers(&p, body_waits));
    co_await sleep(milliseconds(100));
    EXPECT_FALSE(r.done());
    r.cancel("test");
    auto e = co_await raises<CancelledError>(r);
    WEFT_CO_ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->message(), "test") << (body_waits ? "cancelled in the body" : "cancelled in the join");
    EXPECT_EQ(p.cancelled, 5);
    EXPECT_EQ(r.cancelling(), 1);
  }
}

// Python 3.13 (gh-116720): a child fails while an outside cancellation of
// the enclosing task is in progress. The ExceptionGroup is raised, and the
// outside cancellation is delivered again at the task's next await, with
// cancelling() unchanged.
Coro<void> group_failing_while_cancelled(int* stage, int* cancelling_after) {
  try {
    co_await task_group([](TaskGroup& tg) -> Coro<void> {
      tg.create_task(fail_on_cancel());  // fails when the outside cancel reaches it
      co_await sleep(hours(1));
    });
  } catch (const ExceptionGroup& eg) {
    EXPECT_TRUE(eg.contains<std::logic_error>());
    *stage = 1;
  }
  *cancelling_after = current_task().cancelling();
  co_await sleep(milliseconds(1));
  *stage = 2;
}

WEFT_MANUAL_TEST(TaskGroup, ChildFailingDuringAnOutsideCancelThenTheCancelIsDelivered, 1) {
  int stage = 0;
  int cancelling_after = -1;
  Task<void> t = create_task(group_failing_while_cancelled(&stage, &cancelling_after));
  co_await sleep(milliseconds(5));
  t.cancel("outside");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outside");
  EXPECT_EQ(stage, 1) << "the ExceptionGroup first, the cancellation at the next await";
  EXPECT_EQ(cancelling_after, 1);
  EXPECT_EQ(t.cancelling(), 1);
}

// The other order: a child fails first (the group cancels its parent), and
// the outside cancellation arrives while the group waits for a child that
// is slow to clean up.
Coro<void> slow_cleanup(Duration d) {
  bool cancelled = false;
  try {
    co_await sleep(hours(1));
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (cancelled) co_await shielded(sleep(d));
}

Coro<void> group_failure_then_outside_cancel(int* stage) {
  try {
    co_await task_group([](TaskGroup& tg) -> Coro<void> {
      tg.create_task(fail_after(milliseconds(2), "first"));
      tg.create_task(slow_cleanup(milliseconds(20)));
      co_await sleep(hours(1));
    });
  } catch (const ExceptionGroup&) {
    *stage = 1;
  }
  co_await sleep(milliseconds(1));
  *stage = 2;
}

WEFT_MANUAL_TEST(TaskGroup, OutsideCancelDuringTheAbortIsDeliveredAfterTheGroup, 1) {
  int stage = 0;
  Task<void> t = create_task(group_failure_then_outside_cancel(&stage));
  co_await sleep(milliseconds(10));  // the child failed at 2; cleanup runs until 22
  t.cancel("outside");
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "outside");
  EXPECT_EQ(stage, 1);
  EXPECT_EQ(t.cancelling(), 1);
}

// --- misuse is an error, not an orphan task --------------------------------------------

// A body callable that creates a child before it returns its coroutine:
// the group has not started yet.
Coro<void> empty_body() { co_return; }

WEFT_CO_TEST_WITH(TaskGroupMisuse, CreateTaskBeforeTheGroupStarted, ([] {
                    auto o = testing::test_options(1);
                    o.debug = true;  // a "never awaited" report would fail the test
                    return o;
                  }())) {
  Probe p;
  auto e = co_await raises<RuntimeError>(task_group([&p](TaskGroup& tg) {
    tg.create_task(child(hours(1), &p));
    return empty_body();
  }));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_NE(std::string(e->what()).find("has not started"), std::string::npos) << e->what();
  EXPECT_EQ(all_tasks().size(), 1u) << "no orphan child: only this test's task";
}

WEFT_CO_TEST_WITH(TaskGroupMisuse, HandleCopiedOutOfTheBodyStaysSafe, ([] {
                    auto o = testing::test_options(2);
                    o.debug = true;
                    return o;
                  }())) {
  Probe p;
  std::optional<TaskGroup> kept;
  Task<void> adder;
  co_await task_group([&](TaskGroup& tg) -> Coro<void> {
    kept = tg;
    // Another task adds a child through the copy while the group runs.
    adder = create_task([](TaskGroup g, Probe* p) -> Coro<void> {
      g.create_task(child(milliseconds(1), p));
      co_return;
    }(tg, &p));
    co_await adder;
  });
  EXPECT_EQ(p.finished, 1) << "the child added through the copy was joined";
  auto e = co_await raises<RuntimeError>([](TaskGroup g, Probe* p) -> Coro<void> {
    g.create_task(child(hours(1), p));
    co_return;
  }(*kept, &p));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_NE(std::string(e->what()).find("has finished"), std::string::npos) << e->what();
  EXPECT_EQ(all_tasks().size(), 1u) << "no orphan child";
}

WEFT_MANUAL_TEST(TaskGroupMisuse, CreateTaskWhileShuttingDownNamesTheState, 1) {
  std::string what;
  auto eg = co_await raises<ExceptionGroup>(task_group([&what](TaskGroup& tg) -> Coro<void> {
    tg.create_task(fail_after(milliseconds(1), "boom"));
    bool cancelled = false;
    try {
      co_await sleep(hours(1));
    } catch (const CancelledError&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    try {
      tg.create_task(fail_after(milliseconds(1), "late"));
    } catch (const RuntimeError& e) {
      what = e.what();
    }
  }));
  EXPECT_TRUE(eg.has_value());
  EXPECT_NE(what.find("is shutting down"), std::string::npos) << what;
}

// --- ExceptionGroup on its own -----------------------------------------------------

TEST(ExceptionGroup, SplitKeepsNestingAndMessage) {
  ExceptionGroup inner("inner", {std::make_exception_ptr(TimeoutError("t")),
                                 std::make_exception_ptr(std::logic_error("l"))});
  ExceptionGroup eg("outer", {std::make_exception_ptr(std::runtime_error("r")),
                              std::make_exception_ptr(inner)});
  auto [t, rest] = eg.split<TimeoutError>();
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(t->message(), "outer");
  ASSERT_EQ(t->exceptions().size(), 1u);
  try {
    std::rethrow_exception(t->exceptions()[0]);
  } catch (const ExceptionGroup& nested) {
    EXPECT_EQ(nested.message(), "inner");
    EXPECT_EQ(nested.exceptions().size(), 1u);
  }
  EXPECT_EQ(rest->exceptions().size(), 2u);
  // TimeoutError is a weft::Error is a std::runtime_error.
  EXPECT_EQ(eg.subgroup<std::runtime_error>()->exceptions().size(), 2u);
  EXPECT_TRUE(eg.contains<std::logic_error>());
  EXPECT_FALSE(eg.contains<std::bad_alloc>());
  EXPECT_FALSE(eg.split<std::bad_alloc>().first.has_value());
  EXPECT_NE(std::string(eg.what()).find("outer"), std::string::npos);
}

// --- races across workers ----------------------------------------------------------

Coro<void> maybe_fail(int i, int which) {
  for (int k = 0; k < i % 3; ++k) co_await yield_now();
  if (i == which) throw std::runtime_error("child failed");
}

WEFT_CO_TEST_WITH(TaskGroupRace, FailureVersusCompletionAcrossWorkers, testing::test_options(3)) {
  const int n = scaled(200, 4);
  for (int iter = 0; iter < n; ++iter) {
    std::vector<Task<void>> kids;
    const int which = iter % 9;  // 8 children: one in 9 iterations has no failure
    bool failed = false;
    try {
      co_await task_group([&](TaskGroup& tg) -> Coro<void> {
        for (int i = 0; i < 8; ++i) kids.push_back(tg.create_task(maybe_fail(i, which)));
        co_return;
      });
    } catch (const ExceptionGroup& eg) {
      failed = true;
      // The child's failure alone: a body still creating children when it
      // came gets the group's cancellation from create_task, as asyncio
      // would have delivered it before the body ran again (no RuntimeError).
      auto [refused, child_errors] = eg.split<RuntimeError>();
      WEFT_CO_ASSERT_TRUE(child_errors.has_value());
      EXPECT_EQ(child_errors->exceptions().size(), 1u);
      EXPECT_FALSE(refused.has_value()) << "the body got RuntimeError, not its cancellation";
    }
    EXPECT_EQ(failed, which < 8) << "iteration " << iter;
    for (auto& k : kids) EXPECT_TRUE(k.done()) << "a child outlived its group";
    EXPECT_EQ(current_task().cancelling(), 0) << "iteration " << iter;
  }
}

// A child that never suspends, creating children on one worker, while a
// sibling fails on the other: the shutdown's cancellation reaches it in
// create_task (CancelledError), not a RuntimeError that asyncio, where the
// cancellation arrives before the child runs again, could never raise.
Coro<void> fail_when_set(Event& go) {
  co_await go.wait();
  throw std::runtime_error("sibling failed");
}

Coro<void> spawn_without_suspending(TaskGroup tg, Event& go) {
  // One child first: the sibling cannot have failed yet, so the group holds
  // a child of this body when the shutdown comes, however soon it comes.
  tg.create_task(empty_body());
  go.set();  // wakes the sibling; another worker takes it from this busy one
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    tg.create_task(empty_body());
  }
  co_return;
}

WEFT_CO_TEST_WITH(TaskGroupRace, ARunningChildMeetsTheShutdownAsItsCancellation, testing::test_options(2)) {
  Event go;
  Task<void> spawner;
  auto eg = co_await raises<ExceptionGroup>(task_group([&](TaskGroup& tg) -> Coro<void> {
    tg.create_task(fail_when_set(go));
    spawner = tg.create_task(spawn_without_suspending(tg, go));
    co_return;
  }));
  WEFT_CO_ASSERT_TRUE(eg.has_value());
  EXPECT_TRUE(spawner.cancelled()) << "the spawner ran out its 20 s or failed";
  auto [refused, rest] = eg->split<RuntimeError>();
  EXPECT_FALSE(refused.has_value()) << "create_task raised RuntimeError in a member being cancelled";
  WEFT_CO_ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(rest->exceptions().size(), 1u);
}

Coro<void> group_of_sleepers() {
  co_await task_group([](TaskGroup& tg) -> Coro<void> {
    for (int i = 0; i < 4; ++i) {
      tg.create_task([](int i) -> Coro<void> {
        for (int k = 0; k <= i; ++k) co_await yield_now();
        if (i == 3) throw std::runtime_error("late failure");
      }(i));
    }
    co_await sleep(std::chrono::microseconds(50));
  });
}

WEFT_CO_TEST_WITH(TaskGroupRace, OutsideCancelVersusChildFailureAcrossWorkers, testing::test_options(3)) {
  const int n = scaled(200, 4);
  for (int iter = 0; iter < n; ++iter) {
    Task<void> t = create_task(group_of_sleepers());
    for (int k = 0; k < iter % 5; ++k) co_await yield_now();
    t.cancel("outside");
    try {
      co_await t;
      ADD_FAILURE() << "a group whose child fails cannot succeed";
    } catch (const CancelledError&) {
      // cancelled before the failure, or before the task started
    } catch (const ExceptionGroup& eg) {
      EXPECT_TRUE(eg.contains<std::runtime_error>());
    }
  }
}

}  // namespace
}  // namespace weft
