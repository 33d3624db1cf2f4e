// The wait every synchronization primitive parks (sched/sync/detail/waiter.h,
// core/detail/wait_node.h): it allocates nothing, it ends like any other
// await (Task::cancel, a cancelled scope, a lowered shield), task dumps name
// it, and a cancellation racing with a wake-up on another thread neither
// loses the wake-up nor leaves the resource with a cancelled task.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::raises;
using testing::scaled;
using testing::test_options;
using testing::yield_until;

constexpr int kRounds = 1000;

Coro<long> sum_of_gets(Queue<int>& q) {
  long sum = 0;
  for (int i = 0; i < kRounds; ++i) sum += co_await q.get();
  co_return sum;
}

Coro<int> count_waits(Event& ev) {
  int n = 0;
  for (int i = 0; i < kRounds; ++i) {
    co_await ev.wait();
    ev.clear();
    ++n;
  }
  co_return n;
}

// Blocks the frame pool handed out since `before` (all threads).
std::int64_t allocated_since(std::int64_t before) {
  return detail::frame_pool_stats().total_allocated - before;
}

// --- nothing allocated ---------------------------------------------------------------

WEFT_CO_TEST_WITH(SyncWaiter, AParkedGetAllocatesNothing, test_options(1)) {
  // The consumer parks on every get(): each time, its producer waits until
  // it is parked before putting.
  Queue<int> q;
  Task<long> consumer = create_task(sum_of_gets(q));
  const std::int64_t before = detail::frame_pool_stats().total_allocated;
  for (int i = 0; i < kRounds; ++i) {
    while (q.statistics().getters != 1) co_await yield_now();
    q.put_nowait(i);
  }
  const std::int64_t allocated = allocated_since(before);
  EXPECT_EQ(co_await consumer, static_cast<long>(kRounds) * (kRounds - 1) / 2);
  EXPECT_EQ(allocated, 0) << kRounds << " parked gets";
}

WEFT_CO_TEST_WITH(SyncWaiter, AParkedEventWaitAllocatesNothing, test_options(1)) {
  Event ev;
  Task<int> waiter = create_task(count_waits(ev));
  const std::int64_t before = detail::frame_pool_stats().total_allocated;
  for (int i = 0; i < kRounds; ++i) {
    while (ev.statistics().waiters != 1) co_await yield_now();
    ev.set();
  }
  const std::int64_t allocated = allocated_since(before);
  EXPECT_EQ(co_await waiter, kRounds);
  EXPECT_EQ(allocated, 0) << kRounds << " parked waits";
}

// --- ended like any await ------------------------------------------------------------

WEFT_CO_TEST_WITH(SyncWaiter, AScopeCancelledFromAnotherThreadEndsTheWait, test_options(2)) {
  Event ev;
  CancelScope scope;
  Task<bool> t = create_task(scope.run(ev.wait().as_coro()));
  WEFT_CO_ASSERT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 1; }));
  std::thread([&] { scope.cancel(); }).join();
  EXPECT_FALSE(co_await t) << "the scope caught its cancellation";
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(ev.statistics().waiters, 0u) << "the cancelled waiter left the event";
}

WEFT_CO_TEST_WITH(SyncWaiter, LoweringAShieldDeliversTheDeferredRequest, test_options(1)) {
  Lock lock;
  co_await lock.acquire();
  CancelScope shielded({.shield = true});
  Task<bool> t = create_task(shielded.run(lock.acquire().as_coro()));
  WEFT_CO_ASSERT_TRUE(co_await yield_until([&] { return lock.statistics().waiters == 1; }));
  t.cancel("deferred");
  co_await testing::yield_times(5);
  EXPECT_FALSE(t.done()) << "the shield keeps the request out";
  shielded.set_shield(false);
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "deferred");
  EXPECT_EQ(lock.statistics().waiters, 0u);
  lock.release();
  EXPECT_FALSE(lock.locked()) << "the cancelled waiter was never given the lock";
}

WEFT_CO_TEST_WITH(SyncWaiter, AWaitWithAPendingRequestInsideAScopeRaisesAtOnce, test_options(1)) {
  // The request arrives while the task runs: its next wait is a checkpoint
  // that ends at once, and the primitive keeps no waiter.
  Event ev;
  Task<void> t = create_task([](Event& e) -> Coro<void> {
    CancelScope scope;
    (void)co_await scope.run([](Event& e) -> Coro<void> {
      current_task().cancel("now");
      co_await e.wait();
    }(e));
  }(ev));
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "now");
  EXPECT_EQ(ev.statistics().waiters, 0u);
}

WEFT_CO_TEST_WITH(SyncWaiter, AWaitInsideAnAlreadyCancelledScopeEndsAtOnce, test_options(1)) {
  // The wait parks, then its checkpoint finds the scope cancelled: it ends
  // without suspending, and the lock keeps no waiter and is not handed over.
  Lock lock;
  co_await lock.acquire();
  CancelScope scope;
  scope.cancel("gone");
  EXPECT_FALSE(co_await scope.run(lock.acquire().as_coro())) << "the scope caught it";
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(lock.statistics().waiters, 0u);
  lock.release();
  EXPECT_FALSE(lock.locked()) << "the cancelled wait was never given the lock";
}

// --- named in dumps ------------------------------------------------------------------

WEFT_CO_TEST_WITH(SyncWaiter, DumpsNameTheWait, test_options(1)) {
  Event ev;
  Lock lock;
  co_await lock.acquire();
  Task<void> on_event = create_task(ev.wait().as_coro());
  Task<void> on_lock = create_task(lock.acquire().as_coro());
  WEFT_CO_ASSERT_TRUE(co_await yield_until([&] {
    return ev.statistics().waiters == 1 && lock.statistics().waiters == 1;
  }));
  EXPECT_EQ(on_event.waiting_on(), "Event::wait()");
  EXPECT_EQ(on_lock.waiting_on(), "Lock::acquire()");
  EXPECT_NE(dump_tasks().find("awaits Event::wait()"), std::string::npos) << dump_tasks();
  ev.set();
  lock.release();
  co_await on_event;
  co_await on_lock;
  EXPECT_EQ(on_event.waiting_on(), "");
  lock.release();
}

// --- cancel against wake-up, across threads ------------------------------------------

WEFT_CO_TEST_WITH(SyncWaiter, CancelVersusHandOffAcrossThreads, test_options(2)) {
  // The lock is handed to a parked waiter while another thread cancels it:
  // either the waiter took the lock (and released it) or it was cancelled
  // and the lock was not left with it; never both, never a hang.
  const int n = scaled(300, 10);
  int took = 0;
  int cancelled = 0;
  for (int i = 0; i < n; ++i) {
    Lock lock;
    co_await lock.acquire();
    Task<void> w = create_task([](Lock& l) -> Coro<void> {
      co_await l.acquire();
      l.release();
    }(lock));
    WEFT_CO_ASSERT_TRUE(co_await yield_until([&] { return lock.statistics().waiters == 1; }));
    std::thread canceller([&] { w.cancel(); });
    lock.release();
    canceller.join();
    try {
      co_await w;
      ++took;
    } catch (const CancelledError&) {
      ++cancelled;
    }
    EXPECT_FALSE(lock.locked()) << "round " << i;
    EXPECT_EQ(lock.statistics().waiters, 0u) << "round " << i;
  }
  EXPECT_EQ(took + cancelled, n);
}

WEFT_CO_TEST_WITH(SyncWaiter, CancelVersusSetAcrossThreads, test_options(2)) {
  // Waiters on two workers, set() on one thread and cancel() on another: each
  // waiter ends exactly once, and the event keeps none of them.
  const int n = scaled(200, 10);
  for (int i = 0; i < n; ++i) {
    Event ev;
    Task<void> a = create_task(ev.wait().as_coro());
    Task<void> b = create_task(ev.wait().as_coro());
    WEFT_CO_ASSERT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 2; }));
    std::thread canceller([&] { a.cancel(); });
    ev.set();
    canceller.join();
    co_await b;
    (void)co_await raises<CancelledError>(a);  // either ending is right
    EXPECT_TRUE(a.done());
    EXPECT_EQ(ev.statistics().waiters, 0u) << "round " << i;
  }
}

}  // namespace
}  // namespace weft
