// weft::Barrier: asyncio.Barrier's semantics (arrival indices, draining,
// reset, abort, BrokenBarrierError), cancellation of a waiter that then
// leaves the barrier, and many rounds across workers.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::raises;
using testing::scaled;
using testing::test_options;
using testing::yield_times;
using testing::yield_until;

// Options with a manual clock that jumps to the next timer whenever every
// worker is idle: deadlines pass at once and exactly, and a lost wake-up
// (everybody idle) ends a test's safety deadline at once instead of hanging.
RuntimeOptions manual_clock_options(std::uint32_t workers) {
  static ManualClock clock;  // time only moves forward: shared by the tests
  return test_options(workers, &clock);
}

std::vector<Task<std::size_t>> start_waiters(Barrier& b, int n) {
  std::vector<Task<std::size_t>> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(create_task(b.wait()));
  return tasks;
}

Coro<bool> n_waiting_reaches(Barrier& b, std::size_t n) {
  co_return co_await yield_until([&] { return b.n_waiting() == n; });
}

// --- construction ---------------------------------------------------------------

TEST(Barrier, PartiesMustBePositive) {
  EXPECT_THROW(Barrier(0), std::invalid_argument);
  Barrier b(5);
  EXPECT_EQ(b.parties(), 5u);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
  EXPECT_EQ(b.state(), BarrierState::kFilling);
}

// --- filling and draining -------------------------------------------------------

WEFT_CO_TEST_WITH(Barrier, OnePartyPassesAtOnce, test_options(1)) {
  Barrier b(1);
  EXPECT_EQ(co_await b.wait(), 0u);
  EXPECT_EQ(co_await b.wait(), 0u);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_EQ(b.state(), BarrierState::kFilling);
}

WEFT_CO_TEST_WITH(Barrier, FillsTaskByTask, test_options(1)) {
  Barrier b(3);
  auto t = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 1));
  auto more = start_waiters(b, 1);
  t.push_back(more[0]);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  EXPECT_FALSE(t[0].done());
  EXPECT_EQ(b.statistics().parked, 2u);
  std::size_t last = co_await b.wait();
  EXPECT_EQ(last, 2u) << "the last arrival gets parties - 1";
  std::vector<std::size_t> idx;
  for (auto& x : t) idx.push_back(co_await x);
  idx.push_back(last);
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(idx, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
  EXPECT_EQ(b.state(), BarrierState::kFilling);
}

WEFT_CO_TEST_WITH(Barrier, WaitTwiceInARow, test_options(2)) {
  // asyncio's test_filling_tasks_wait_twice / check_return_value.
  const int n = 5;
  Barrier b(n);
  std::atomic<int> first{0};
  std::atomic<int> second{0};
  std::vector<Task<std::size_t>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task([](Barrier& bar, std::atomic<int>& f,
                                   std::atomic<int>& s) -> Coro<std::size_t> {
      co_await bar.wait();
      f.fetch_add(1);
      std::size_t i2 = co_await bar.wait();
      s.fetch_add(1);
      co_return i2;
    }(b, first, second)));
  }
  std::vector<std::size_t> idx;
  for (auto& t : tasks) idx.push_back(co_await t);
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(idx, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(first.load(), n);
  EXPECT_EQ(second.load(), n);
  EXPECT_EQ(b.n_waiting(), 0u);
}

WEFT_CO_TEST_WITH(Barrier, DrainingStateUntilTheLastLeaves, test_options(1)) {
  // asyncio's test_draining_state: after the release every task but the last
  // one out still sees kDraining.
  const int n = 5;
  Barrier b(n);
  std::vector<int> draining;  // one worker: no lock needed
  std::vector<Task<void>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task([](Barrier& bar, std::vector<int>& d) -> Coro<void> {
      co_await bar.wait();
      d.push_back(bar.state() == BarrierState::kDraining ? 1 : 0);
    }(b, draining)));
  }
  for (auto& t : tasks) co_await t;
  WEFT_CO_ASSERT_EQ(draining.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(std::count(draining.begin(), draining.end(), 1), n - 1);
  EXPECT_EQ(draining.back(), 0);
  EXPECT_EQ(b.state(), BarrierState::kFilling);
}

WEFT_CO_TEST_WITH(Barrier, NewcomersWaitForTheDrainToEnd, test_options(1)) {
  // The task that releases a cycle enters again at once, while the tasks it
  // released are still inside (one worker: they have not run yet). It is
  // blocked, not counted, until they left; then it starts the next cycle.
  Barrier b(3);
  auto first = start_waiters(b, 2);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  Task<std::pair<BarrierState, std::size_t>> again =
      create_task([](Barrier& bar) -> Coro<std::pair<BarrierState, std::size_t>> {
        std::size_t i = co_await bar.wait();  // releases the cycle, no suspension
        EXPECT_EQ(i, 2u);
        BarrierState seen = bar.state();
        std::size_t j = co_await bar.wait();  // blocked by the drain
        co_return std::make_pair(seen, j);
      }(b));
  std::size_t i0 = co_await first[0];
  std::size_t i1 = co_await first[1];
  EXPECT_EQ(i0 + i1, 1u);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 1)) << "counted in the next cycle";
  auto second = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  EXPECT_EQ(co_await b.wait(), 2u);
  std::pair<BarrierState, std::size_t> r = co_await again;
  EXPECT_EQ(r.first, BarrierState::kDraining);
  EXPECT_EQ(r.second, 0u) << "first arrival of the next cycle";
  EXPECT_EQ(co_await second[0], 1u);
}

WEFT_CO_TEST_WITH(Barrier, BlockingTasksWhileDraining, manual_clock_options(2)) {
  // asyncio's test_blocking_tasks_while_draining: some tasks wait again at
  // once (while the others still drain) and must not break the cycles.
  const int n = 5;
  const int rewait = 2;
  Barrier b(n);
  Barrier nowaiting(n - rewait);
  std::atomic<int> rewait_left{rewait};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task([](Barrier& bar, Barrier& now,
                                   std::atomic<int>& left) -> Coro<void> {
      co_await bar.wait();
      if (left.fetch_sub(1) > 0) {
        co_await bar.wait();
      } else {
        co_await now.wait();
        co_await bar.wait();
      }
    }(b, nowaiting, rewait_left)));
  }
  auto done = co_await move_on_after(std::chrono::seconds(10), [](auto& ts) -> Coro<void> {
    for (auto& t : ts) co_await t;
  }(tasks));
  EXPECT_TRUE(done);
  EXPECT_EQ(b.n_waiting(), 0u);
}

// --- reset and abort ------------------------------------------------------------

WEFT_CO_TEST_WITH(Barrier, ResetBreaksTheWaiters, test_options(1)) {
  // asyncio's test_reset_barrier_while_tasks_waiting.
  Barrier b(4);
  auto tasks = start_waiters(b, 3);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 3));
  b.reset();
  EXPECT_EQ(b.state(), BarrierState::kResetting);
  for (auto& t : tasks) {
    auto err = co_await raises<BrokenBarrierError>(t);
    EXPECT_TRUE(err.has_value());
  }
  EXPECT_EQ(b.state(), BarrierState::kFilling) << "the last one out ends the reset";
  EXPECT_FALSE(b.broken());
  // The barrier works again.
  auto again = start_waiters(b, 3);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 3));
  EXPECT_EQ(co_await b.wait(), 3u);
  for (auto& t : again) co_await t;
}

WEFT_CO_TEST(Barrier, ResetWhenEmptyIsFilling) {
  Barrier b(2);
  b.reset();
  EXPECT_EQ(b.state(), BarrierState::kFilling);
  b.abort();
  EXPECT_TRUE(b.broken());
  b.reset();
  EXPECT_FALSE(b.broken()) << "reset() repairs a broken barrier";
  co_return;
}

WEFT_CO_TEST_WITH(Barrier, AbortBreaksWaitersAndLaterCalls, test_options(1)) {
  Barrier b(3);
  auto tasks = start_waiters(b, 2);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  b.abort();
  EXPECT_TRUE(b.broken());
  for (auto& t : tasks) EXPECT_TRUE((co_await raises<BrokenBarrierError>(t)).has_value());
  auto err = co_await raises<BrokenBarrierError>(b.wait());
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_NE(std::string(err->what()).find("broken"), std::string::npos);
  EXPECT_EQ(b.n_waiting(), 0u);
  // BrokenBarrierError is a RuntimeError, as in asyncio.
  EXPECT_TRUE((co_await raises<RuntimeError>(b.wait())).has_value());
}

WEFT_CO_TEST_WITH(Barrier, AbortWhenAPartyFails, test_options(2)) {
  // asyncio's test_abort_barrier_when_exception: one party fails and aborts;
  // every other party sees BrokenBarrierError.
  const int n = 5;
  Barrier b(n);
  std::atomic<int> broken{0};
  std::atomic<int> passed{0};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task([](Barrier& bar, std::atomic<int>& br,
                                   std::atomic<int>& ok, int n) -> Coro<void> {
      try {
        std::size_t i = co_await bar.wait();
        if (i == static_cast<std::size_t>(n / 2)) throw std::logic_error("party failed");
        co_await bar.wait();
        ok.fetch_add(1);
      } catch (const BrokenBarrierError&) {
        br.fetch_add(1);
      } catch (const std::logic_error&) {
        bar.abort();
      }
    }(b, broken, passed, n)));
  }
  for (auto& t : tasks) co_await t;
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(passed.load(), 0);
  EXPECT_EQ(broken.load(), n - 1);
  EXPECT_EQ(b.n_waiting(), 0u);
}

WEFT_CO_TEST_WITH(Barrier, AbortThenResetAndReuse, test_options(2)) {
  // asyncio's test_abort_barrier_when_exception_then_resetting.
  const int n = 4;
  Barrier b1(n);
  Barrier b2(n);
  std::atomic<int> results2{0};
  std::atomic<int> results3{0};
  std::vector<Task<void>> tasks;
  for (int k = 0; k < n; ++k) {
    tasks.push_back(create_task([](Barrier& x, Barrier& y, std::atomic<int>& r2,
                                   std::atomic<int>& r3, int n) -> Coro<void> {
      try {
        std::size_t i = co_await x.wait();
        if (i == static_cast<std::size_t>(n / 2)) throw std::logic_error("fail");
        co_await x.wait();
      } catch (const BrokenBarrierError&) {
        r2.fetch_add(1);
      } catch (const std::logic_error&) {
        x.abort();
      }
      std::size_t j = co_await y.wait();
      if (j == static_cast<std::size_t>(n / 2)) x.reset();
      co_await y.wait();
      co_await x.wait();
      r3.fetch_add(1);
    }(b1, b2, results2, results3, n)));
  }
  for (auto& t : tasks) co_await t;
  EXPECT_FALSE(b1.broken());
  EXPECT_EQ(results2.load(), n - 1);
  EXPECT_EQ(results3.load(), n);
}

// --- cancellation ---------------------------------------------------------------

WEFT_CO_TEST_WITH(Barrier, CancelledWaiterLeavesTheBarrier, test_options(1)) {
  // asyncio's test_filling_tasks_cancel_one.
  Barrier b(3);
  auto t1 = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 1));
  auto t2 = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  t1[0].cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t1[0])).has_value());
  EXPECT_EQ(b.n_waiting(), 1u) << "the cancelled task left";
  auto t3 = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  std::size_t last = co_await b.wait();
  EXPECT_EQ(last, 2u);
  co_await t2[0];
  co_await t3[0];
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
  EXPECT_EQ(b.statistics().parked, 0u);
}

WEFT_CO_TEST_WITH(Barrier, CancelledWhileBeingReleasedDoesNotHoldUpOthers, test_options(1)) {
  // The cycle is released and one released task is cancelled in the same
  // step, before it runs: it raises CancelledError, the others pass, and the
  // barrier drains.
  Barrier b(3);
  auto tasks = start_waiters(b, 2);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  Task<std::size_t> last = create_task([](Barrier& bar, Task<std::size_t>& a,
                                          Task<std::size_t>& c) -> Coro<std::size_t> {
    std::size_t i = co_await bar.wait();  // releases a and c
    a.cancel("late");
    EXPECT_EQ(bar.state(), BarrierState::kDraining);
    (void)c;
    co_return i;
  }(b, tasks[0], tasks[1]));
  EXPECT_EQ(co_await last, 2u);
  auto err = co_await raises<CancelledError>(tasks[0]);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "late");
  EXPECT_LT(co_await tasks[1], 2u);
  EXPECT_TRUE(co_await yield_until([&] { return b.state() == BarrierState::kFilling; }));
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_EQ(b.statistics().parked, 0u);
}

WEFT_CO_TEST_WITH(Barrier, CancelledWhileBlockedByADrain, test_options(1)) {
  // The releaser enters again at once (the drain is still on: one worker)
  // with a cancellation pending: it is cancelled while blocked, is never
  // counted, and the drain ends normally.
  Barrier b(2);
  auto first = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 1));
  Task<void> releaser = create_task([](Barrier& bar) -> Coro<void> {
    EXPECT_EQ(co_await bar.wait(), 1u);
    EXPECT_EQ(bar.state(), BarrierState::kDraining);
    current_task().cancel("blocked");
    co_await bar.wait();  // parks (blocked by the drain), then raises
    ADD_FAILURE() << "not reached";
  }(b));
  auto err = co_await raises<CancelledError>(releaser);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "blocked");
  EXPECT_EQ(co_await first[0], 0u);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_EQ(b.statistics().parked, 0u);
  EXPECT_EQ(b.state(), BarrierState::kFilling);
  // The barrier still works.
  auto next = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 1));
  EXPECT_EQ(co_await b.wait(), 1u);
  co_await next[0];
}

WEFT_CO_TEST_WITH(Barrier, FrameDestroyedWhileWaitingLeavesTheBarrier, test_options(1)) {
  // Runtime teardown destroys the frame of a task waiting for the barrier to
  // fill: it is unparked and no longer counted.
  Barrier b(3);
  auto t = start_waiters(b, 2);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  t[0].base().abandon("teardown");
  EXPECT_EQ(b.n_waiting(), 1u);
  EXPECT_EQ(b.statistics().parked, 1u);
  auto more = start_waiters(b, 1);
  EXPECT_TRUE(co_await n_waiting_reaches(b, 2));
  EXPECT_EQ(co_await b.wait(), 2u);
  co_await t[1];
  co_await more[0];
}

// --- across workers -------------------------------------------------------------

WEFT_CO_TEST_WITH(Barrier, ManyRoundsAcrossWorkers, test_options(4)) {
  // N tasks pass R rounds; in each round the arrival indices are a
  // permutation of 0..N-1, and nobody starts round r+1 before everybody
  // finished round r's wait.
  const int n = 16;
  const int rounds = scaled(200, 10);
  Barrier b(n);
  std::vector<std::atomic<int>> index_seen(static_cast<std::size_t>(rounds * n));
  std::atomic<int> arrived_total{0};
  std::atomic<int> violations{0};
  std::vector<Task<void>> tasks;
  for (int k = 0; k < n; ++k) {
    tasks.push_back(create_task([](Barrier& bar, std::vector<std::atomic<int>>& seen,
                                   std::atomic<int>& arrived, std::atomic<int>& bad,
                                   int rounds, int n) -> Coro<void> {
      for (int r = 0; r < rounds; ++r) {
        arrived.fetch_add(1);
        std::size_t i = co_await bar.wait();
        // Everyone arrived for round r before anyone leaves it.
        if (arrived.load() < (r + 1) * n) bad.fetch_add(1);
        seen[static_cast<std::size_t>(r * n) + i].fetch_add(1);
      }
    }(b, index_seen, arrived_total, violations, rounds, n)));
  }
  for (auto& t : tasks) co_await t;
  EXPECT_EQ(violations.load(), 0);
  int wrong = 0;
  for (auto& s : index_seen) wrong += s.load() != 1;
  EXPECT_EQ(wrong, 0) << "every index of every round exactly once";
  EXPECT_EQ(b.n_waiting(), 0u);
}

}  // namespace
}  // namespace weft
