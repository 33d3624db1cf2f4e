// weft::Semaphore and weft::BoundedSemaphore: asyncio's semantics with FIFO
// hand-off of permits, SemaphoreGuard, cancellation at every await point, and
// no permit ever lost or duplicated across workers.
#include <algorithm>
#include <atomic>
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

Coro<void> take_and_record(Semaphore& sem, std::vector<int>& order, int tag) {
  co_await sem.acquire();
  order.push_back(tag);
}

Coro<bool> waiters_reach(Semaphore& sem, std::size_t n) {
  co_return co_await yield_until([&] { return sem.statistics().waiters == n; });
}

// --- construction and counting --------------------------------------------------

TEST(Semaphore, InitialValue) {
  Semaphore one;
  EXPECT_EQ(one.value(), 1);
  EXPECT_FALSE(one.locked());
  Semaphore zero(0);
  EXPECT_TRUE(zero.locked()) << "asyncio's test_initial_value_zero";
  Semaphore three(3);
  EXPECT_EQ(three.statistics().value, 3);
  EXPECT_EQ(three.statistics().bound, -1);
  EXPECT_EQ(BoundedSemaphore(2).statistics().bound, 2);
}

TEST(Semaphore, NegativeValueIsInvalidArgument) {
  EXPECT_THROW(Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(BoundedSemaphore(-1), std::invalid_argument);
  try {
    Semaphore s(-5);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(">= 0"), std::string::npos) << e.what();
  }
}

TEST(Semaphore, TryAcquireAndReleaseWithoutRuntime) {
  Semaphore sem(2);
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.try_acquire());
  EXPECT_TRUE(sem.locked());
  sem.release();
  EXPECT_EQ(sem.value(), 1);
  // A plain Semaphore may be released above its initial value.
  sem.release();
  sem.release();
  EXPECT_EQ(sem.value(), 3);
}

TEST(Semaphore, BoundedSemaphoreOverReleaseIsInvalidArgument) {
  BoundedSemaphore sem(1);
  try {
    sem.release();
    FAIL() << "over-release must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("released too many times"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(sem.value(), 1);
  EXPECT_TRUE(sem.try_acquire());
  sem.release();
  EXPECT_THROW(sem.release(), std::invalid_argument);
  BoundedSemaphore none(0);
  EXPECT_THROW(none.release(), std::invalid_argument);
}

WEFT_CO_TEST(Semaphore, AcquireCounts) {
  // asyncio's test_acquire, first part.
  Semaphore sem(3);
  co_await sem.acquire();
  co_await sem.acquire();
  EXPECT_FALSE(sem.locked());
  co_await sem.acquire();
  EXPECT_TRUE(sem.locked());
  EXPECT_EQ(sem.value(), 0);
  sem.release();
  sem.release();
  sem.release();
  EXPECT_EQ(sem.value(), 3);
}

WEFT_CO_TEST(Semaphore, ScopedGuard) {
  BoundedSemaphore sem(2);
  {
    SemaphoreGuard a = co_await sem.scoped();
    SemaphoreGuard b = co_await sem.scoped();
    EXPECT_TRUE(a.owns() && b.owns());
    EXPECT_TRUE(sem.locked());
  }
  EXPECT_EQ(sem.value(), 2) << "both guards gave their permit back";
  auto err = co_await raises<std::runtime_error>([](Semaphore& s) -> Coro<void> {
    auto g = co_await s.scoped();
    throw std::runtime_error("boom");
  }(sem));
  EXPECT_TRUE(err.has_value());
  EXPECT_EQ(sem.value(), 2);
}

TEST(Semaphore, GuardOverReleaseIsReportedNotThrown) {
  ErrorLog log;
  run([]() -> Coro<void> {
    BoundedSemaphore sem(1);
    SemaphoreGuard g = co_await sem.scoped();
    sem.release();  // misuse: the guard's permit was given back already
  }(), logged_options(log, 1));
  EXPECT_EQ(log.count({"SemaphoreGuard", "too many"}), 1) << log.dump();
}

// --- FIFO -----------------------------------------------------------------------

WEFT_CO_TEST_WITH(Semaphore, PermitsGoToWaitersInOrder, test_options(1)) {
  Semaphore sem(0);
  std::vector<int> order;
  std::vector<Task<void>> tasks;
  for (int i = 1; i <= 4; ++i) {
    tasks.push_back(create_task(take_and_record(sem, order, i)));
    EXPECT_TRUE(co_await waiters_reach(sem, static_cast<std::size_t>(i)));
  }
  sem.release();
  sem.release();
  EXPECT_EQ(sem.value(), 0) << "permits are handed over, not counted";
  co_await tasks[0];
  co_await tasks[1];
  co_await yield_times(3);
  // The two oldest waiters got the permits (they may run in either order).
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(tasks[2].done());
  EXPECT_FALSE(tasks[3].done());
  EXPECT_EQ(sem.statistics().waiters, 2u);
  sem.release();
  co_await tasks[2];
  co_await yield_times(3);
  EXPECT_FALSE(tasks[3].done());
  sem.release();
  co_await tasks[3];
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(sem.value(), 0);
}

WEFT_CO_TEST_WITH(Semaphore, NoBargingPastWaiters, test_options(1)) {
  Semaphore sem(0);
  std::vector<int> order;
  Task<void> waiter = create_task(take_and_record(sem, order, 1));
  EXPECT_TRUE(co_await waiters_reach(sem, 1));
  sem.release();
  EXPECT_FALSE(sem.try_acquire()) << "the permit belongs to the waiter";
  co_await waiter;
  EXPECT_EQ(order, (std::vector<int>{1}));
}

WEFT_CO_TEST_WITH(Semaphore, FifoOrderWithReleaseAndReacquire, test_options(1)) {
  // asyncio's test_acquire_fifo_order: three tasks each take the permit
  // twice; permits go round in arrival order.
  Semaphore sem(1);
  Event all_queued;
  std::vector<std::string> result;
  auto body = [](Semaphore& s, Event& queued, std::vector<std::string>& r,
                 std::string tag) -> Coro<void> {
    co_await s.acquire();
    r.push_back(tag + "_1");
    co_await queued.wait();  // the first holder keeps it until all are queued
    co_await yield_times(2);
    s.release();
    co_await s.acquire();
    r.push_back(tag + "_2");
    co_await yield_times(2);
    s.release();
  };
  // Started in a known order: c1 holds the permit, c2 then c3 wait.
  Task<void> t1 = create_task(body(sem, all_queued, result, "c1"));
  EXPECT_TRUE(co_await yield_until([&] { return sem.locked(); }));
  Task<void> t2 = create_task(body(sem, all_queued, result, "c2"));
  EXPECT_TRUE(co_await waiters_reach(sem, 1));
  Task<void> t3 = create_task(body(sem, all_queued, result, "c3"));
  EXPECT_TRUE(co_await waiters_reach(sem, 2));
  all_queued.set();
  co_await t1;
  co_await t2;
  co_await t3;
  EXPECT_EQ(result,
            (std::vector<std::string>{"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"}));
  EXPECT_EQ(sem.value(), 1);
}

// --- cancellation ---------------------------------------------------------------

WEFT_CO_TEST_WITH(Semaphore, CancelWhileWaiting, test_options(1)) {
  Semaphore sem(0);
  std::vector<int> order;
  Task<void> t = create_task(take_and_record(sem, order, 1));
  EXPECT_TRUE(co_await waiters_reach(sem, 1));
  t.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
  EXPECT_EQ(sem.statistics().waiters, 0u);
  sem.release();
  EXPECT_EQ(sem.value(), 1) << "the permit was not given to the cancelled waiter";
}

WEFT_CO_TEST_WITH(Semaphore, CancelledBeforeWokenAreSkipped, test_options(1)) {
  // asyncio's test_acquire_cancel_before_awoken / test_acquire_fifo_order_3.
  Semaphore sem(0);
  std::vector<int> order;
  std::vector<Task<void>> t;
  for (int i = 1; i <= 4; ++i) {
    t.push_back(create_task(take_and_record(sem, order, i)));
    EXPECT_TRUE(co_await waiters_reach(sem, static_cast<std::size_t>(i)));
  }
  t[0].cancel();
  t[1].cancel();
  sem.release();
  EXPECT_TRUE((co_await raises<CancelledError>(t[0])).has_value());
  EXPECT_TRUE((co_await raises<CancelledError>(t[1])).has_value());
  co_await t[2];
  co_await yield_times(3);
  EXPECT_FALSE(t[3].done());
  EXPECT_EQ(order, (std::vector<int>{3}));
  t[3].cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t[3])).has_value());
  EXPECT_EQ(sem.value(), 0);
  EXPECT_EQ(sem.statistics().waiters, 0u);
}

WEFT_CO_TEST_WITH(Semaphore, CancelAfterHandOffPassesThePermitOn, test_options(1)) {
  // asyncio's test_acquire_hang, in the worst order: the permit is handed to
  // t1, then t1 is cancelled before it runs; t2 must get the permit.
  Semaphore sem(0);
  std::vector<int> order;
  Task<void> t1 = create_task(take_and_record(sem, order, 1));
  EXPECT_TRUE(co_await waiters_reach(sem, 1));
  Task<void> t2 = create_task(take_and_record(sem, order, 2));
  EXPECT_TRUE(co_await waiters_reach(sem, 2));
  sem.release();
  t1.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t1)).has_value());
  co_await t2;
  EXPECT_EQ(order, (std::vector<int>{2}));
  EXPECT_TRUE(sem.locked());
  EXPECT_EQ(sem.value(), 0);
}

WEFT_CO_TEST_WITH(Semaphore, CancelAfterHandOffWithNoOtherWaiterCountsIt, test_options(1)) {
  BoundedSemaphore sem(1);
  co_await sem.acquire();
  std::vector<int> order;
  Task<void> t = create_task(take_and_record(sem, order, 1));
  EXPECT_TRUE(co_await waiters_reach(sem, 1));
  sem.release();
  t.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
  EXPECT_EQ(sem.value(), 1) << "the permit came back, without counting as an over-release";
  EXPECT_THROW(sem.release(), std::invalid_argument);
}

WEFT_CO_TEST_WITH(Semaphore, NoHangAfterCancelledGuardHolder, test_options(1)) {
  // asyncio's test_acquire_no_hang: c1 holds the permit and cancels c2,
  // which waits for it; afterwards the permit is free again.
  Semaphore sem(1);
  Task<void> c2;
  Task<void> c1 = create_task([](Semaphore& s, Task<void>& other) -> Coro<void> {
    auto g = co_await s.scoped();
    co_await yield_until([&] { return s.statistics().waiters == 1; });  // c2 waits
    other.cancel();
  }(sem, c2));
  EXPECT_TRUE(co_await yield_until([&] { return sem.locked(); }));  // c1 holds it
  c2 = create_task([](Semaphore& s) -> Coro<void> {
    auto g = co_await s.scoped();
    ADD_FAILURE() << "c2 must be cancelled before it gets the permit";
  }(sem));
  co_await c1;
  EXPECT_TRUE((co_await raises<CancelledError>(c2)).has_value());
  EXPECT_TRUE(sem.try_acquire());
  sem.release();
}

// --- across workers -------------------------------------------------------------

WEFT_CO_TEST_WITH(Semaphore, NeverMoreHoldersThanPermits, test_options(4)) {
  // Thousands of tasks on 4 workers share 3 permits; some are cancelled.
  // At most 3 hold a permit at any time, and all permits come back.
  const int kPermits = 3;
  BoundedSemaphore sem(kPermits);
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<long> sections{0};
  const int kTasks = scaled(2000, 25);
  std::vector<Task<void>> tasks;
  tasks.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(create_task([](Semaphore& s, std::atomic<int>& h, std::atomic<int>& mx,
                                   std::atomic<long>& secs) -> Coro<void> {
      for (int k = 0; k < 3; ++k) {
        auto g = co_await s.scoped();
        int now = h.fetch_add(1) + 1;
        // Leaves before `g` gives the permit back, also when cancelled below.
        struct Leave {
          std::atomic<int>& h;
          ~Leave() { h.fetch_sub(1); }
        } leave{h};
        int prev = mx.load();
        while (now > prev && !mx.compare_exchange_weak(prev, now)) {
        }
        if (k == 1) co_await yield_now();  // a cancellation point while holding
        secs.fetch_add(1);
      }
    }(sem, holders, max_holders, sections)));
  }
  for (int i = 5; i < kTasks; i += 13) tasks[static_cast<std::size_t>(i)].cancel();
  for (auto& t : tasks) {
    try {
      co_await t;
    } catch (const CancelledError&) {
    }
  }
  EXPECT_LE(max_holders.load(), kPermits);
  EXPECT_GT(sections.load(), 0);
  SemaphoreStatistics s = sem.statistics();
  EXPECT_EQ(s.value, kPermits) << "every permit came back";
  EXPECT_EQ(s.waiters, 0u);
}

WEFT_CO_TEST_WITH(Semaphore, ReleasesFromManyThreadsAreAllDelivered, test_options(4)) {
  // Producers on worker threads and plain threads release; consumers wait.
  // Every release is matched by exactly one acquire.
  const int kConsumers = scaled(400, 10);
  Semaphore sem(0);
  std::atomic<int> got{0};
  std::vector<Task<void>> consumers;
  for (int i = 0; i < kConsumers; ++i) {
    consumers.push_back(create_task([](Semaphore& s, std::atomic<int>& g) -> Coro<void> {
      co_await s.acquire();
      g.fetch_add(1);
    }(sem, got)));
  }
  std::thread releaser([&] {
    for (int i = 0; i < kConsumers / 2; ++i) sem.release();
  });
  for (int i = kConsumers / 2; i < kConsumers; ++i) {
    sem.release();
    if (i % 8 == 0) co_await yield_now();
  }
  releaser.join();
  for (auto& c : consumers) co_await c;
  EXPECT_EQ(got.load(), kConsumers);
  EXPECT_EQ(sem.value(), 0);
}

}  // namespace
}  // namespace weft
