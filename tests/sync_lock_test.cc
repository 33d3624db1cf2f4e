// weft::Lock: asyncio.Lock's semantics with strict FIFO hand-off, the
// LockGuard returned by scoped(), cancellation at every await point (while
// waiting, while being handed the lock), and mutual exclusion across workers.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::ErrorLog;
using testing::logged_options;
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

// Acquires, records `tag`, releases.
Coro<void> take_and_record(Lock& lock, std::vector<int>& order, int tag) {
  co_await lock.acquire();
  order.push_back(tag);
  lock.release();
}

// Acquires and keeps the lock.
Coro<void> take_and_keep(Lock& lock, std::vector<int>& order, int tag) {
  co_await lock.acquire();
  order.push_back(tag);
}

Coro<bool> waiters_reach(Lock& lock, std::size_t n) {
  co_return co_await yield_until([&] { return lock.statistics().waiters == n; });
}

// --- basics -------------------------------------------------------------------

TEST(Lock, TryAcquireAndReleaseWithoutRuntime) {
  Lock lock;
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.try_acquire());
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.try_acquire());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, ReleaseUnlockedIsRuntimeError) {
  Lock lock;
  try {
    lock.release();
    FAIL() << "release() of an unlocked lock must throw";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("not acquired"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(lock.locked());
}

WEFT_CO_TEST(Lock, AcquireRelease) {
  Lock lock;
  co_await lock.acquire();
  EXPECT_TRUE(lock.locked());
  LockStatistics s = lock.statistics();
  EXPECT_TRUE(s.locked);
  EXPECT_EQ(s.waiters, 0u);
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(lock.release(), RuntimeError);
}

WEFT_CO_TEST(Lock, ScopedGuardReleasesAtScopeExit) {
  Lock lock;
  {
    LockGuard guard = co_await lock.scoped();
    EXPECT_TRUE(guard.owns());
    EXPECT_TRUE(static_cast<bool>(guard));
    EXPECT_EQ(guard.primitive(), &lock);
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());

  // Released on the exception path too.
  auto err = co_await raises<std::runtime_error>([](Lock& l) -> Coro<void> {
    auto guard = co_await l.scoped();
    throw std::runtime_error("boom");
  }(lock));
  EXPECT_TRUE(err.has_value());
  EXPECT_FALSE(lock.locked());

  // Moves transfer ownership; reset() releases early; dismiss() keeps it.
  LockGuard outer;
  EXPECT_FALSE(outer.owns());
  {
    LockGuard inner = co_await lock.scoped();
    outer = std::move(inner);
    EXPECT_FALSE(inner.owns());
  }
  EXPECT_TRUE(lock.locked());
  outer.reset();
  EXPECT_FALSE(lock.locked());
  outer.reset();  // idempotent
  {
    LockGuard g = co_await lock.scoped();
    EXPECT_EQ(g.dismiss(), &lock);
  }
  EXPECT_TRUE(lock.locked());
  lock.release();
}

TEST(Lock, GuardReportsAReleaseBySomeoneElse) {
  ErrorLog log;
  run([]() -> Coro<void> {
    Lock lock;
    LockGuard g = co_await lock.scoped();
    lock.release();  // misuse: the guard still thinks it owns the lock
  }(), logged_options(log, 1));
  EXPECT_EQ(log.count({"LockGuard", "already released"}), 1) << log.dump();
}

WEFT_CO_TEST_WITH(Lock, AsCoroAndTaskAcquire, test_options(1)) {
  Lock lock;
  co_await lock.acquire();
  Task<void> t = create_task(lock.acquire().as_coro());
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  lock.release();
  co_await t;
  EXPECT_TRUE(lock.locked()) << "the task took the lock and kept it";
  lock.release();
}

// --- FIFO fairness ------------------------------------------------------------

WEFT_CO_TEST_WITH(Lock, FifoHandOff, test_options(1)) {
  // asyncio's test_acquire: waiters get the lock in the order they came.
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();
  std::vector<Task<void>> tasks;
  for (int i = 1; i <= 3; ++i) {
    tasks.push_back(create_task(take_and_keep(lock, order, i)));
    EXPECT_TRUE(co_await waiters_reach(lock, static_cast<std::size_t>(i)));
  }
  for (int i = 1; i <= 3; ++i) {
    lock.release();
    co_await tasks[static_cast<std::size_t>(i - 1)];
    EXPECT_EQ(order.size(), static_cast<std::size_t>(i));
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  lock.release();
  EXPECT_FALSE(lock.locked());
}

WEFT_CO_TEST_WITH(Lock, NoBargingWhileHandedOver, test_options(1)) {
  // release() hands the lock to the oldest waiter: it stays locked, and
  // try_acquire() or a new acquire() cannot take it before that waiter ran.
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();
  Task<void> waiter = create_task(take_and_record(lock, order, 1));
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  lock.release();
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.try_acquire());
  Task<void> late = create_task(take_and_record(lock, order, 2));
  co_await waiter;
  co_await late;
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(lock.locked());
}

WEFT_CO_TEST_WITH(Lock, FifoAcrossWorkers, test_options(4)) {
  // Waiters parked in a known order on several workers get the lock in that
  // order.
  Lock lock;
  std::vector<int> order;  // guarded by `lock`
  co_await lock.acquire();
  std::vector<Task<void>> tasks;
  const int n = 16;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task(take_and_record(lock, order, i)));
    EXPECT_TRUE(co_await waiters_reach(lock, static_cast<std::size_t>(i + 1)));
  }
  lock.release();
  for (auto& t : tasks) co_await t;
  std::vector<int> expected;
  for (int i = 0; i < n; ++i) expected.push_back(i);
  EXPECT_EQ(order, expected);
}

// --- cancellation -------------------------------------------------------------

WEFT_CO_TEST_WITH(Lock, CancelWhileWaiting, test_options(1)) {
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();
  Task<void> t = create_task(take_and_keep(lock, order, 1));
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  t.cancel("give up");
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "give up");
  EXPECT_EQ(lock.statistics().waiters, 0u);
  EXPECT_TRUE(lock.locked()) << "still ours";
  lock.release();
  EXPECT_FALSE(lock.locked()) << "no stale waiter took it";
  EXPECT_TRUE(order.empty());
}

WEFT_CO_TEST_WITH(Lock, CancelRace, test_options(1)) {
  // asyncio's test_cancel_race: A holds the lock, B and C wait; B is
  // cancelled in the same step as A releases: C must get the lock.
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();  // "A"
  Task<void> b = create_task(take_and_record(lock, order, 2));
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  Task<void> c = create_task(take_and_record(lock, order, 3));
  EXPECT_TRUE(co_await waiters_reach(lock, 2));
  b.cancel();
  lock.release();
  EXPECT_TRUE((co_await raises<CancelledError>(b)).has_value());
  co_await c;
  EXPECT_EQ(order, (std::vector<int>{3}));
  EXPECT_FALSE(lock.locked());
  EXPECT_EQ(lock.statistics().waiters, 0u);
}

WEFT_CO_TEST_WITH(Lock, CancelAfterHandOffPassesTheLockOn, test_options(1)) {
  // asyncio's test_finished_waiter_cancelled: the lock is handed to B, then B
  // is cancelled before it runs: B must not keep it; C gets it.
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();
  Task<void> b = create_task(take_and_keep(lock, order, 2));
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  Task<void> c = create_task(take_and_keep(lock, order, 3));
  EXPECT_TRUE(co_await waiters_reach(lock, 2));
  lock.release();  // handed to b
  EXPECT_EQ(lock.statistics().waiters, 1u);
  b.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(b)).has_value());
  co_await c;
  EXPECT_EQ(order, (std::vector<int>{3}));
  EXPECT_TRUE(lock.locked()) << "c holds it";
  lock.release();
  EXPECT_FALSE(lock.locked());
}

WEFT_CO_TEST_WITH(Lock, CancelAfterHandOffWithNoOtherWaiterUnlocks, test_options(1)) {
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();
  Task<void> b = create_task(take_and_keep(lock, order, 2));
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  lock.release();
  b.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(b)).has_value());
  EXPECT_FALSE(lock.locked()) << "the cancelled hand-off must not leave the lock held";
  EXPECT_TRUE(lock.try_acquire());
  lock.release();
}

WEFT_CO_TEST_WITH(Lock, CancelReleaseRaceTakesOneLock, test_options(1)) {
  // asyncio's test_cancel_release_race: 3 waiters; cancel the first and
  // release in one step: exactly one of the others takes the lock.
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();
  std::vector<Task<void>> t;
  for (int i = 1; i <= 3; ++i) {
    t.push_back(create_task(take_and_keep(lock, order, i)));
    EXPECT_TRUE(co_await waiters_reach(lock, static_cast<std::size_t>(i)));
  }
  t[0].cancel();
  lock.release();
  EXPECT_TRUE((co_await raises<CancelledError>(t[0])).has_value());
  co_await t[1];
  co_await yield_times(5);
  EXPECT_EQ(order, (std::vector<int>{2}));
  EXPECT_FALSE(t[2].done());
  t[2].cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t[2])).has_value());
  EXPECT_TRUE(lock.locked());  // t[1] kept it
  lock.release();
}

WEFT_CO_TEST_WITH(Lock, PendingCancelRaisesInsteadOfWaiting, test_options(1)) {
  Lock lock;
  co_await lock.acquire();
  Task<void> t = create_task([](Lock& l) -> Coro<void> {
    current_task().cancel("pending");
    co_await l.acquire();
  }(lock));
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "pending");
  EXPECT_EQ(lock.statistics().waiters, 0u);
  lock.release();
  EXPECT_FALSE(lock.locked());
}

WEFT_CO_TEST_WITH(Lock, UncontendedAcquireIsNotACancellationPoint, test_options(1)) {
  // asyncio: acquiring a free lock does not suspend, so a pending
  // cancellation is delivered at the next real suspension instead.
  Lock lock;
  Task<bool> t = create_task([](Lock& l) -> Coro<bool> {
    current_task().cancel();
    co_await l.acquire();
    const bool got = l.locked();
    l.release();
    co_await yield_now();  // raises here
    co_return got;
  }(lock));
  EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
  EXPECT_FALSE(lock.locked());
}

WEFT_CO_TEST_WITH(Lock, CancelScopeTimeoutWhileWaiting, manual_clock_options(1)) {
  Lock lock;
  co_await lock.acquire();
  auto r = co_await move_on_after(std::chrono::milliseconds(5), lock.acquire().as_coro());
  EXPECT_FALSE(r) << "the scope's deadline cancels the wait";
  EXPECT_EQ(lock.statistics().waiters, 0u);
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, RuntimeEndsWithParkedWaiters) {
  Lock lock;
  run([](Lock& l) -> Coro<void> {
    co_await l.acquire();
    for (int i = 0; i < 5; ++i) create_task(l.acquire().as_coro());
    co_await yield_until([&] { return l.statistics().waiters == 5; });
    // main returns holding the lock: run() cancels the waiters.
  }(lock), test_options(2));
  LockStatistics s = lock.statistics();
  EXPECT_EQ(s.waiters, 0u);
  EXPECT_TRUE(s.locked);
  lock.release();
}

WEFT_CO_TEST_WITH(Lock, FrameDestroyedWhileParkedLeavesTheQueue, test_options(1)) {
  // What runtime teardown does to a task that never finished: its frame is
  // destroyed while it is parked. The awaiter's destructor must unlink it.
  Lock lock;
  std::vector<int> order;
  co_await lock.acquire();
  Task<void> t = create_task(take_and_keep(lock, order, 1));
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  t.base().abandon("teardown");
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(lock.statistics().waiters, 0u);
  lock.release();
  EXPECT_FALSE(lock.locked()) << "no hand-off to the destroyed waiter";
}

// --- fairness of the fast path -------------------------------------------------

WEFT_CO_TEST_WITH(Lock, UncontendedLoopYieldsSometimes, test_options(1)) {
  Lock lock;
  std::atomic<int> ticks{0};
  std::atomic<bool> stop{false};
  Task<void> other = create_task([](std::atomic<int>& n, std::atomic<bool>& s) -> Coro<void> {
    while (!s.load()) {
      n.fetch_add(1);
      co_await yield_now();
    }
  }(ticks, stop));
  co_await yield_now();
  const int before = ticks.load();
  for (int i = 0; i < 10 * detail::kStepBudget; ++i) {
    co_await lock.acquire();
    lock.release();
  }
  EXPECT_GT(ticks.load(), before);
  stop = true;
  co_await other;
}

// --- across workers -----------------------------------------------------------

WEFT_CO_TEST_WITH(Lock, MutualExclusionUnderContention, test_options(4)) {
  // Thousands of tasks on 4 workers increment a plain counter under the lock
  // (TSan checks the hand-offs publish it); a few are cancelled at random
  // points. Every critical section that ran is counted exactly once, no two
  // overlap, and the lock ends free with no waiter.
  Lock lock;
  long counter = 0;  // guarded by `lock`
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::atomic<long> sections{0};
  const int kTasks = scaled(2000, 25);
  const int kIters = 5;
  std::vector<Task<void>> tasks;
  tasks.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(create_task([](Lock& l, long& c, std::atomic<int>& in,
                                   std::atomic<int>& ov, std::atomic<long>& secs,
                                   int iters) -> Coro<void> {
      for (int k = 0; k < iters; ++k) {
        auto guard = co_await l.scoped();
        if (in.fetch_add(1) != 0) ov.fetch_add(1);
        // Leaves before `guard` releases, also when cancelled below.
        struct Leave {
          std::atomic<int>& in;
          ~Leave() { in.fetch_sub(1); }
        } leave{in};
        ++c;
        secs.fetch_add(1);
        if (k % 2 == 0) co_await yield_now();  // hold it across a suspension
      }
    }(lock, counter, inside, overlaps, sections, kIters)));
  }
  for (int i = 3; i < kTasks; i += 17) tasks[static_cast<std::size_t>(i)].cancel();
  int cancelled = 0;
  for (auto& t : tasks) {
    try {
      co_await t;
    } catch (const CancelledError&) {
      ++cancelled;
    }
  }
  EXPECT_EQ(overlaps.load(), 0);
  co_await lock.acquire();
  EXPECT_EQ(counter, sections.load());
  EXPECT_GE(sections.load(), static_cast<long>(kTasks - cancelled) * kIters);
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_EQ(lock.statistics().waiters, 0u);
}

TEST(Lock, SharedByTwoRuntimes) {
  // Tasks of two runtimes contend on one lock: hand-offs cross runtimes.
  Lock lock;
  long counter = 0;  // guarded by `lock`
  const int kTasks = scaled(200, 10);
  auto runner = [&] {
    run([](Lock& l, long& c, int n) -> Coro<void> {
      std::vector<Task<void>> ts;
      for (int i = 0; i < n; ++i) {
        ts.push_back(create_task([](Lock& l, long& c) -> Coro<void> {
          for (int k = 0; k < 3; ++k) {
            auto g = co_await l.scoped();
            ++c;
            co_await yield_now();
          }
        }(l, c)));
      }
      for (auto& t : ts) co_await t;
    }(lock, counter, kTasks), test_options(2));
  };
  std::thread a(runner);
  std::thread b(runner);
  a.join();
  b.join();
  EXPECT_EQ(counter, 2L * kTasks * 3);
  EXPECT_FALSE(lock.locked());
}

WEFT_CO_TEST_WITH(Lock, ReleaseFromAForeignThread, test_options(2)) {
  // The lock has no owner: a plain thread may release it and the waiter,
  // a task, gets it.
  Lock lock;
  WEFT_CO_ASSERT_TRUE(lock.try_acquire());
  std::vector<int> order;
  Task<void> t = create_task(take_and_keep(lock, order, 1));
  EXPECT_TRUE(co_await waiters_reach(lock, 1));
  std::thread releaser([&] { lock.release(); });
  co_await t;
  releaser.join();
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_TRUE(lock.locked());
  lock.release();
}

}  // namespace
}  // namespace weft
