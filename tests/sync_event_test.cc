// weft::Event: asyncio.Event's semantics (set/clear/is_set/wait), safe across
// workers and threads, cancellation-safe, with a lock-free fast path that
// still yields when the step's budget is spent.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::raises;
using testing::scaled;
using testing::test_options;
using testing::yield_times;
using testing::yield_until;

Coro<void> wait_and_count(Event& ev, std::atomic<int>& count) {
  co_await ev.wait();
  count.fetch_add(1);
}

// --- flag -------------------------------------------------------------------

TEST(Event, FlagWithoutRuntime) {
  Event ev;
  EXPECT_FALSE(ev.is_set());
  ev.set();
  EXPECT_TRUE(ev.is_set());
  ev.set();  // idempotent
  EXPECT_TRUE(ev.is_set());
  ev.clear();
  EXPECT_FALSE(ev.is_set());
  EventStatistics s = ev.statistics();
  EXPECT_FALSE(s.is_set);
  EXPECT_EQ(s.waiters, 0u);
}

// --- wait -------------------------------------------------------------------

WEFT_CO_TEST_WITH(Event, WaitOnSetEventDoesNotSuspend, test_options(1)) {
  Event ev;
  ev.set();
  bool other_ran = false;
  Task<void> other = create_task([](bool* ran) -> Coro<void> {
    *ran = true;
    co_return;
  }(&other_ran));
  co_await ev.wait();
  EXPECT_FALSE(other_ran) << "wait() on a set event must return without suspending";
  co_await other;
}

WEFT_CO_TEST_WITH(Event, SetWakesEveryWaiter, test_options(1)) {
  Event ev;
  std::atomic<int> woken{0};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 3; ++i) tasks.push_back(create_task(wait_and_count(ev, woken)));
  EXPECT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 3; }));
  co_await yield_times(3);
  EXPECT_EQ(woken.load(), 0) << "waiters must not run before set()";
  ev.set();
  EXPECT_EQ(ev.statistics().waiters, 0u) << "set() releases every parked waiter at once";
  for (auto& t : tasks) co_await t;
  EXPECT_EQ(woken.load(), 3);
  // Later waits return at once while the flag stays set.
  co_await ev.wait();
}

WEFT_CO_TEST_WITH(Event, ClearAfterSetStillReleasesWokenWaiters, test_options(1)) {
  // asyncio's test_clear_with_waiters.
  Event ev;
  std::atomic<int> woken{0};
  Task<void> t = create_task(wait_and_count(ev, woken));
  EXPECT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 1; }));
  ev.set();
  ev.clear();
  EXPECT_FALSE(ev.is_set());
  ev.set();
  ev.set();
  co_await t;
  EXPECT_EQ(woken.load(), 1);
  EXPECT_EQ(ev.statistics().waiters, 0u);
}

WEFT_CO_TEST_WITH(Event, WaitAfterClearWaitsAgain, test_options(1)) {
  Event ev;
  ev.set();
  ev.clear();
  std::atomic<int> woken{0};
  Task<void> t = create_task(wait_and_count(ev, woken));
  co_await yield_times(5);
  EXPECT_FALSE(t.done());
  EXPECT_EQ(ev.statistics().waiters, 1u);
  ev.set();
  co_await t;
  EXPECT_EQ(woken.load(), 1);
}

WEFT_CO_TEST(Event, AsCoroWorksWithCreateTask) {
  Event ev;
  Task<void> t = create_task(ev.wait().as_coro());
  EXPECT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 1; }));
  ev.set();
  co_await t;
  EXPECT_TRUE(t.done());
}

WEFT_CO_TEST(Event, AwaitingAnAwaiterTwiceIsAnError) {
  Event ev;
  ev.set();
  auto w = ev.wait();
  co_await w;
  auto err = co_await raises<InvalidStateError>([](Event::WaitAwaiter& a) -> Coro<void> {
    co_await a;
  }(w));
  EXPECT_TRUE(err.has_value());
}

// --- cancellation ---------------------------------------------------------

WEFT_CO_TEST_WITH(Event, CancelWhileWaiting, test_options(1)) {
  Event ev;
  std::atomic<int> woken{0};
  Task<void> t = create_task(wait_and_count(ev, woken));
  EXPECT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 1; }));
  t.cancel("stop");
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "stop");
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(ev.statistics().waiters, 0u) << "a cancelled waiter must leave the event";
  EXPECT_EQ(woken.load(), 0);
  ev.set();  // no stale waiter to wake
}

WEFT_CO_TEST_WITH(Event, CancelWhileBeingWoken, test_options(1)) {
  // set() and cancel() in one step: the woken task has not run yet; the
  // cancellation wins (asyncio raises CancelledError too) and nothing leaks.
  Event ev;
  std::atomic<int> woken{0};
  Task<void> a = create_task(wait_and_count(ev, woken));
  Task<void> b = create_task(wait_and_count(ev, woken));
  EXPECT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 2; }));
  ev.set();
  a.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(a)).has_value());
  co_await b;
  EXPECT_EQ(woken.load(), 1);
  EXPECT_EQ(ev.statistics().waiters, 0u);
}

WEFT_CO_TEST_WITH(Event, CancelBeforeSet, test_options(1)) {
  // cancel() then set() in one step: set() skips the cancelled waiter.
  Event ev;
  std::atomic<int> woken{0};
  Task<void> a = create_task(wait_and_count(ev, woken));
  Task<void> b = create_task(wait_and_count(ev, woken));
  EXPECT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 2; }));
  a.cancel();
  ev.set();
  EXPECT_TRUE((co_await raises<CancelledError>(a)).has_value());
  co_await b;
  EXPECT_EQ(woken.load(), 1);
}

WEFT_CO_TEST_WITH(Event, PendingCancelRaisesAtWait, test_options(1)) {
  // A task cancelled before it reaches wait() raises there (it must park).
  Event ev;
  Task<void> t = create_task([](Event& e) -> Coro<void> {
    current_task().cancel("early");
    co_await e.wait();
  }(ev));
  auto err = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message(), "early");
  EXPECT_EQ(ev.statistics().waiters, 0u);
}

TEST(Event, RuntimeEndsWithParkedWaiters) {
  // run() cancels the tasks left when main returns; they leave the event.
  Event ev;
  run([](Event& e) -> Coro<void> {
    for (int i = 0; i < 5; ++i) create_task(e.wait().as_coro());
    co_await yield_until([&] { return e.statistics().waiters == 5; });
  }(ev), test_options(2));
  EXPECT_EQ(ev.statistics().waiters, 0u);
}

// --- threads ----------------------------------------------------------------

WEFT_CO_TEST_WITH(Event, SetFromAForeignThread, test_options(2)) {
  Event ev;
  std::atomic<int> woken{0};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(create_task(wait_and_count(ev, woken)));
  EXPECT_TRUE(co_await yield_until([&] { return ev.statistics().waiters == 20; }));
  std::thread setter([&] { ev.set(); });
  for (auto& t : tasks) co_await t;
  setter.join();
  EXPECT_EQ(woken.load(), 20);
}

WEFT_CO_TEST_WITH(Event, SetPublishesPriorWrites, test_options(4)) {
  // Plain (non-atomic) data written before set() is visible after wait():
  // TSan checks the happens-before edge.
  for (int round = 0; round < scaled(50, 5); ++round) {
    Event ev;
    std::vector<int> data;
    std::vector<Task<int>> readers;
    for (int i = 0; i < 8; ++i) {
      readers.push_back(create_task([](Event& e, std::vector<int>& d) -> Coro<int> {
        co_await e.wait();
        int sum = 0;
        for (int v : d) sum += v;
        co_return sum;
      }(ev, data)));
    }
    Task<void> writer = create_task([](Event& e, std::vector<int>& d) -> Coro<void> {
      for (int i = 1; i <= 100; ++i) d.push_back(i);
      e.set();
      co_return;
    }(ev, data));
    co_await writer;
    for (auto& r : readers) EXPECT_EQ(co_await r, 5050);
  }
}

WEFT_CO_TEST_WITH(Event, ManyWaitersAcrossWorkersNoLostWakeups, test_options(4)) {
  // Rounds of: many tasks wait (some arriving while set() runs on another
  // worker), some are cancelled at random; every task ends, and every task
  // that was not cancelled got through wait(). (A task cancelled after it got
  // through may still end cancelled: asyncio cancels a task whose request is
  // pending when its body returns.)
  const int kTasks = scaled(2000, 10);
  const int kRounds = scaled(3, 3);
  for (int round = 0; round < kRounds; ++round) {
    Event ev;
    std::vector<std::atomic<int>> woken(static_cast<std::size_t>(kTasks));
    std::vector<Task<void>> tasks;
    tasks.reserve(kTasks);
    for (auto& w : woken) tasks.push_back(create_task(wait_and_count(ev, w)));
    Task<void> setter = create_task([](Event& e) -> Coro<void> {
      co_await yield_times(3);
      e.set();
    }(ev));
    for (int i = 0; i < kTasks; i += 7) tasks[static_cast<std::size_t>(i)].cancel();
    co_await setter;
    int cancelled = 0;
    int passed = 0;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      try {
        co_await tasks[i];
        EXPECT_EQ(woken[i].load(), 1) << "task " << i;
      } catch (const CancelledError&) {
        ++cancelled;
        EXPECT_EQ(i % 7, 0u) << "only the tasks we cancelled may end cancelled";
      }
      passed += woken[i].load();
    }
    EXPECT_GE(passed + cancelled, kTasks);
    EXPECT_LE(cancelled, (kTasks + 6) / 7);
    EXPECT_EQ(ev.statistics().waiters, 0u);
  }
}

TEST(Event, WaitersFromTwoRuntimes) {
  // Tasks of two runtimes (two threads, each in weft::run) wait on one event;
  // a third thread sets it: each task is woken through its own runtime.
  Event ev;
  std::atomic<int> woken{0};
  auto runner = [&] {
    run([](Event& e, std::atomic<int>& w) -> Coro<void> {
      std::vector<Task<void>> ts;
      for (int i = 0; i < 10; ++i) ts.push_back(create_task(wait_and_count(e, w)));
      for (auto& t : ts) co_await t;
    }(ev, woken), test_options(2));
  };
  std::thread a(runner);
  std::thread b(runner);
  while (ev.statistics().waiters < 20) std::this_thread::yield();
  ev.set();
  a.join();
  b.join();
  EXPECT_EQ(woken.load(), 20);
}

// --- fairness ---------------------------------------------------------------

WEFT_CO_TEST_WITH(Event, FastPathYieldsWhenTheBudgetIsSpent, test_options(1)) {
  // A loop of waits that never suspend still lets the other tasks run.
  Event ev;
  ev.set();
  std::atomic<int> ticks{0};
  std::atomic<bool> stop{false};
  Task<void> other = create_task([](std::atomic<int>& n, std::atomic<bool>& s) -> Coro<void> {
    while (!s.load()) {
      n.fetch_add(1);
      co_await yield_now();
    }
  }(ticks, stop));
  co_await yield_now();  // let `other` start
  const int before = ticks.load();
  for (int i = 0; i < 10 * detail::kStepBudget; ++i) co_await ev.wait();
  EXPECT_GT(ticks.load(), before) << "awaits that complete at once must still yield sometimes";
  stop = true;
  co_await other;
}

}  // namespace
}  // namespace weft
