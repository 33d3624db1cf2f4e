// weft::Condition: asyncio.Condition's semantics (wait/wait_for/notify/
// notify_all with the lock held), the lock re-acquired on every exit path,
// cancellation while waiting for a notification and while re-acquiring the
// lock, notifications never lost to a cancellation, and producer/consumer
// stress across workers.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
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

// Acquires, waits once, records `tag` and releases.
Coro<void> wait_once(Condition& cond, std::vector<int>& order, int tag) {
  co_await cond.acquire();
  co_await cond.wait();
  order.push_back(tag);
  cond.release();
}

Coro<bool> waiters_reach(Condition& cond, std::size_t n) {
  co_return co_await yield_until([&] { return cond.statistics().waiters == n; });
}

// --- errors ---------------------------------------------------------------------

WEFT_CO_TEST(Condition, WaitWithoutTheLockIsRuntimeError) {
  Condition cond;
  auto err = co_await raises<RuntimeError>(cond.wait());
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_NE(std::string(err->what()).find("not acquired"), std::string::npos) << err->what();
  EXPECT_EQ(cond.statistics().waiters, 0u);
  EXPECT_FALSE(cond.locked());
}

TEST(Condition, NotifyWithoutTheLockIsRuntimeError) {
  Condition cond;
  EXPECT_THROW(cond.notify(), RuntimeError);
  EXPECT_THROW(cond.notify_all(), RuntimeError);
  ASSERT_TRUE(cond.try_acquire());
  cond.notify();  // fine with the lock held, even with nobody waiting
  cond.notify_all();
  cond.release();
}

WEFT_CO_TEST(Condition, WaitForTruePredicateNeedsNoLock) {
  // asyncio's test_wait_for_unacquired.
  Condition cond;
  // The predicate's value is returned (anything testable as a bool).
  std::optional<int> v = co_await cond.wait_for([] { return std::optional<int>(7); });
  EXPECT_EQ(v, 7);
  EXPECT_EQ(co_await cond.wait_for([] { return 3; }), 3);
  EXPECT_TRUE((co_await raises<RuntimeError>(cond.wait_for([] { return false; }))).has_value());
}

// --- wait / notify ------------------------------------------------------------------

WEFT_CO_TEST_WITH(Condition, NotifiedWaitersResumeOnlyWithTheLock, test_options(1)) {
  // asyncio's test_wait.
  Condition cond;
  std::vector<int> order;
  std::vector<Task<void>> t;
  for (int i = 1; i <= 3; ++i) {
    t.push_back(create_task(wait_once(cond, order, i)));
    EXPECT_TRUE(co_await waiters_reach(cond, static_cast<std::size_t>(i)));
  }
  EXPECT_FALSE(cond.locked()) << "wait() released the lock";

  co_await cond.acquire();
  cond.notify();
  co_await yield_times(3);
  EXPECT_TRUE(order.empty()) << "a notified waiter needs the lock back first";
  cond.release();
  co_await t[0];
  EXPECT_EQ(order, (std::vector<int>{1}));

  co_await cond.acquire();
  cond.notify(2);
  cond.release();
  co_await t[1];
  co_await t[2];
  // Notified together: they take the lock back in the order they run.
  std::sort(order.begin() + 1, order.end());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(cond.locked());
}

WEFT_CO_TEST_WITH(Condition, NotifyNWakesAtMostN, test_options(1)) {
  // asyncio's test_notify.
  Condition cond;
  std::vector<int> order;
  std::vector<Task<void>> t;
  for (int i = 1; i <= 3; ++i) {
    t.push_back(create_task(wait_once(cond, order, i)));
    EXPECT_TRUE(co_await waiters_reach(cond, static_cast<std::size_t>(i)));
  }
  co_await cond.acquire();
  cond.notify(1);
  cond.release();
  co_await t[0];
  co_await yield_times(3);
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_EQ(cond.statistics().waiters, 2u);
  co_await cond.acquire();
  cond.notify(1);
  cond.notify(2048);
  cond.release();
  co_await t[1];
  co_await t[2];
  std::sort(order.begin() + 1, order.end());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

WEFT_CO_TEST_WITH(Condition, NotifyAllWakesEveryone, test_options(1)) {
  Condition cond;
  std::vector<int> order;
  std::vector<Task<void>> t;
  for (int i = 1; i <= 4; ++i) {
    t.push_back(create_task(wait_once(cond, order, i)));
    EXPECT_TRUE(co_await waiters_reach(cond, static_cast<std::size_t>(i)));
  }
  {
    auto guard = co_await cond.scoped();
    cond.notify_all();
    EXPECT_EQ(cond.statistics().waiters, 0u);
  }
  for (auto& x : t) co_await x;
  // Waiters notified together take the lock back in the order they run.
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

WEFT_CO_TEST_WITH(Condition, WaitForLoopsUntilThePredicateHolds, test_options(1)) {
  // asyncio's test_wait_for.
  Condition cond;
  bool ready = false;
  Task<int> t = create_task([](Condition& c, bool& r) -> Coro<int> {
    auto guard = co_await c.scoped();
    bool v = co_await c.wait_for([&] { return r; });
    co_return v ? 1 : 0;
  }(cond, ready));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  co_await cond.acquire();
  cond.notify();
  cond.release();
  EXPECT_TRUE(co_await waiters_reach(cond, 1)) << "false predicate: waits again";
  EXPECT_FALSE(t.done());
  co_await cond.acquire();
  ready = true;
  cond.notify();
  cond.release();
  EXPECT_EQ(co_await t, 1);
}

WEFT_CO_TEST(Condition, SharedLock) {
  // asyncio's test_explicit_lock.
  Lock lock;
  Condition a(lock);
  Condition b(lock);
  EXPECT_EQ(&a.lock(), &lock);
  {
    auto g = co_await a.scoped();
    EXPECT_TRUE(lock.locked());
    EXPECT_TRUE(b.locked());
  }
  EXPECT_FALSE(b.locked());
  co_await lock.acquire();
  EXPECT_TRUE(a.locked());
  a.notify_all();  // the shared lock is held
  lock.release();
  Condition own;
  EXPECT_NE(&own.lock(), &lock);
}

// --- cancellation ---------------------------------------------------------------

WEFT_CO_TEST_WITH(Condition, CancelWhileWaitingReacquiresTheLock, test_options(1)) {
  // asyncio's test_wait_cancel: the cancelled wait() still returns holding
  // the lock.
  Condition cond;
  std::atomic<bool> held_at_cancel{false};
  Task<void> t = create_task([](Condition& c, std::atomic<bool>& held) -> Coro<void> {
    co_await c.acquire();
    try {
      co_await c.wait();
    } catch (const CancelledError&) {
      held = c.locked();
      c.release();
      throw;
    }
  }(cond, held_at_cancel));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  t.cancel("bye");
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "bye");
  EXPECT_TRUE(held_at_cancel.load());
  EXPECT_EQ(cond.statistics().waiters, 0u);
  EXPECT_FALSE(cond.locked());
}

WEFT_CO_TEST_WITH(Condition, CancelWhileReacquiringRaisesWithTheLockHeld, test_options(1)) {
  // asyncio's test_cancelled_error_re_aquire: notified, then cancelled while
  // it waits to take the lock back: CancelledError (with its message) once
  // the lock is held again.
  Condition cond;
  bool wake = false;
  std::atomic<bool> held{false};
  Task<void> t = create_task([](Condition& c, bool& w, std::atomic<bool>& h) -> Coro<void> {
    auto guard = co_await c.scoped();
    try {
      co_await c.wait_for([&] { return w; });
    } catch (const CancelledError&) {
      h = c.locked();
      throw;
    }
  }(cond, wake, held));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  co_await cond.acquire();
  wake = true;
  cond.notify();
  co_await yield_times(3);  // t now waits for the lock
  EXPECT_EQ(cond.statistics().lock_waiters, 1u);
  t.cancel("foo");
  co_await yield_times(3);
  EXPECT_FALSE(t.done()) << "the re-acquire is not interrupted";
  cond.release();
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "foo");
  EXPECT_TRUE(held.load());
  EXPECT_FALSE(cond.locked()) << "the task's guard released it";
}

WEFT_CO_TEST_WITH(Condition, CancelledWakeupIsPassedOn, manual_clock_options(1)) {
  // asyncio's test_cancelled_wakeup: notify(1) races with the cancellation
  // of the notified consumer; the other consumer must get the wake-up.
  Condition cond;
  int state = 0;
  auto consumer = [](Condition& c, int& s) -> Coro<void> {
    auto guard = co_await c.scoped();
    for (;;) {
      co_await c.wait_for([&] { return s != 0; });
      if (s < 0) co_return;
      --s;
    }
  };
  Task<void> c0 = create_task(consumer(cond, state));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  Task<void> c1 = create_task(consumer(cond, state));
  EXPECT_TRUE(co_await waiters_reach(cond, 2));
  {
    auto guard = co_await cond.scoped();
    ++state;
    cond.notify(1);
    c0.cancel();  // c0 was notified; it is cancelled before it runs
    // Give the other consumer time to take the item (as asyncio's test, the
    // deadline is expected to pass: nobody notifies us).
    (void)co_await move_on_after(std::chrono::milliseconds(20), cond.wait_for([&] {
      return state == 0;
    }));
    EXPECT_EQ(state, 0) << "the notification was lost to the cancellation";
    state = -1;
    cond.notify_all();
  }
  EXPECT_TRUE((co_await raises<CancelledError>(c0)).has_value());
  co_await c1;
}

WEFT_CO_TEST_WITH(Condition, CancelledWakeupWhileRelockingIsPassedOn, manual_clock_options(1)) {
  // asyncio's test_cancelled_wakeup_relock: the notified consumer is
  // cancelled while it waits to take the lock back.
  Condition cond;
  int state = 0;
  auto consumer = [](Condition& c, int& s) -> Coro<void> {
    auto guard = co_await c.scoped();
    for (;;) {
      co_await c.wait_for([&] { return s != 0; });
      if (s < 0) co_return;
      --s;
    }
  };
  Task<void> c0 = create_task(consumer(cond, state));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  Task<void> c1 = create_task(consumer(cond, state));
  EXPECT_TRUE(co_await waiters_reach(cond, 2));
  {
    auto guard = co_await cond.scoped();
    ++state;
    cond.notify(1);
    co_await yield_times(3);  // c0 settles on re-acquiring the lock
    c0.cancel();
    // Give the other consumer time to take the item (as asyncio's test, the
    // deadline is expected to pass: nobody notifies us).
    (void)co_await move_on_after(std::chrono::milliseconds(20), cond.wait_for([&] {
      return state == 0;
    }));
    EXPECT_EQ(state, 0) << "the notification was lost to the cancellation";
    state = -1;
    cond.notify_all();
  }
  EXPECT_TRUE((co_await raises<CancelledError>(c0)).has_value());
  co_await c1;
}

WEFT_CO_TEST_WITH(Condition, TimeoutWhileWaitingWithTheLockHeldElsewhere, manual_clock_options(1)) {
  // A cancel scope's deadline cancels wait(); the lock is held by another
  // task at that moment, so the re-acquire must wait for it (shielded: a
  // level-triggered scope would otherwise fail it again and again), then
  // TimeoutError is raised with the lock held.
  Condition cond;
  Event release_it;
  std::atomic<bool> held{false};
  Task<void> t = create_task([](Condition& c, std::atomic<bool>& h) -> Coro<void> {
    auto guard = co_await c.scoped();
    try {
      co_await timeout(std::chrono::milliseconds(20), c.wait());
    } catch (const TimeoutError&) {
      h = c.locked();
      throw;
    }
  }(cond, held));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  auto guard = co_await cond.scoped();  // hold the lock across the deadline
  co_await sleep(std::chrono::milliseconds(40));
  EXPECT_FALSE(t.done());
  guard.reset();
  EXPECT_TRUE((co_await raises<TimeoutError>(t)).has_value());
  EXPECT_TRUE(held.load());
  EXPECT_FALSE(cond.locked());
  EXPECT_EQ(cond.statistics().waiters, 0u);
}

WEFT_CO_TEST_WITH(Condition, ContestedCancelDoesNotLoseTheLock, test_options(1)) {
  // asyncio's test_wait_cancel_contested: notified and cancelled while we
  // still hold the lock; the waiter ends holding it (and must release it).
  Condition cond;
  Task<void> t = create_task([](Condition& c) -> Coro<void> {
    co_await c.acquire();
    try {
      co_await c.wait();
    } catch (const CancelledError&) {
    }
    // Either way the lock is ours here.
    EXPECT_TRUE(c.locked());
    c.release();
  }(cond));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  co_await cond.acquire();
  cond.notify();
  t.cancel();
  cond.release();
  co_await t;
  EXPECT_FALSE(cond.locked());
  EXPECT_EQ(cond.statistics().waiters, 0u);
}

WEFT_CO_TEST_WITH(Condition, FrameDestroyedWhileWaitingLeavesTheCondition, test_options(1)) {
  // Runtime teardown destroys the frame of a task parked in wait(): its
  // node is unlinked, and a later notify() wakes the next waiter instead.
  Condition cond;
  std::vector<int> order;
  Task<void> a = create_task(wait_once(cond, order, 1));
  EXPECT_TRUE(co_await waiters_reach(cond, 1));
  Task<void> b = create_task(wait_once(cond, order, 2));
  EXPECT_TRUE(co_await waiters_reach(cond, 2));
  a.base().abandon("teardown");
  EXPECT_EQ(cond.statistics().waiters, 1u);
  {
    auto guard = co_await cond.scoped();
    cond.notify(1);
  }
  co_await b;
  EXPECT_EQ(order, (std::vector<int>{2}));
}

// --- across workers -------------------------------------------------------------

WEFT_CO_TEST_WITH(Condition, ProducersConsumersNoLostWakeups, manual_clock_options(4)) {
  // Producers add items and notify(1); consumers wait_for items; some
  // consumers are cancelled mid-way (replacements take over). Every item is
  // consumed exactly once: a lost wake-up would hang (caught by the timeout).
  const int kProducers = 4;
  const int kItems = kProducers * scaled(750, 20);
  const int kConsumers = 8;
  Condition cond;
  long available = 0;  // guarded by cond's lock
  long produced = 0;   // guarded by cond's lock
  std::atomic<long> consumed{0};

  auto consumer = [](Condition& c, long& avail, std::atomic<long>& cons,
                     long total) -> Coro<void> {
    auto guard = co_await c.scoped();
    while (cons.load() < total) {
      co_await c.wait_for([&] { return avail > 0 || cons.load() >= total; });
      if (avail > 0) {
        --avail;
        cons.fetch_add(1);
      }
    }
    c.notify_all();  // let the others see the end
  };
  auto producer = [](Condition& c, long& avail, long& prod, int n) -> Coro<void> {
    for (int i = 0; i < n; ++i) {
      {
        auto guard = co_await c.scoped();
        ++avail;
        ++prod;
        c.notify(1);
      }
      if (i % 3 == 0) co_await yield_now();
    }
  };

  auto all = [&]() -> Coro<void> {
    std::vector<Task<void>> consumers;
    for (int i = 0; i < kConsumers; ++i) {
      consumers.push_back(create_task(consumer(cond, available, consumed, kItems)));
    }
    std::vector<Task<void>> producers;
    for (int i = 0; i < kProducers; ++i) {
      producers.push_back(create_task(producer(cond, available, produced, kItems / kProducers)));
    }
    // Cancel a few consumers while they wait or are being woken, and replace
    // them.
    for (int i = 0; i < kConsumers; i += 3) {
      co_await yield_times(2);
      consumers[static_cast<std::size_t>(i)].cancel();
      consumers.push_back(create_task(consumer(cond, available, consumed, kItems)));
    }
    for (auto& p : producers) co_await p;
    for (auto& c : consumers) {
      try {
        co_await c;
      } catch (const CancelledError&) {
      }
    }
  };
  auto finished = co_await move_on_after(std::chrono::seconds(20), all());
  EXPECT_TRUE(finished) << "a wake-up was lost (consumed " << consumed.load() << " of "
                        << kItems << ")";
  co_await cond.acquire();
  EXPECT_EQ(produced, kItems);
  EXPECT_EQ(consumed.load(), kItems);
  EXPECT_EQ(available, 0);
  cond.release();
  EXPECT_EQ(cond.statistics().waiters, 0u);
}

}  // namespace
}  // namespace weft
