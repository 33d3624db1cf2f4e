// Timers and loop callbacks: call_soon / call_later / call_at, TimerHandle,
// sleep, and the ManualClock (deterministic time: with autojump the clock
// jumps to the next timer when every worker is idle, so a 10 s sleep takes
// no wall time and advances the clock by exactly 10 s).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::ErrorLog;
using testing::scaled;

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

// --- ManualClock itself -------------------------------------------------------

TEST(ManualClock, OnlyMovesForward) {
  ManualClock clock;
  EXPECT_TRUE(clock.is_manual());
  EXPECT_TRUE(clock.autojump());
  EXPECT_FALSE(ManualClock(false).autojump());
  const TimePoint t0 = clock.now();
  clock.advance(seconds(3));
  EXPECT_EQ(clock.now() - t0, seconds(3));
  clock.advance(seconds(-1));
  EXPECT_EQ(clock.now() - t0, seconds(3)) << "a negative advance is ignored";
  clock.advance_to(t0 + seconds(1));
  EXPECT_EQ(clock.now() - t0, seconds(3)) << "time never goes back";
  clock.advance_to(t0 + seconds(10));
  EXPECT_EQ(clock.now() - t0, seconds(10));
  SystemClock sys;
  EXPECT_FALSE(sys.is_manual());
}

// A runtime on a ManualClock: the body receives the clock.
template <typename Body>
void run_manual(Body body, std::uint32_t workers = 1) {
  ManualClock clock;
  run(body(&clock), testing::test_options(workers, &clock));
}

class ManualTime : public ::testing::TestWithParam<int> {
 protected:
  std::uint32_t workers() const { return static_cast<std::uint32_t>(GetParam()); }
};

// --- sleep on a manual clock ---------------------------------------------------

Coro<void> sleep_ten_seconds(ManualClock* clock) {
  EXPECT_EQ(get_running_loop().runtime().clock().now(), clock->now()) << "the runtime uses it";
  const TimePoint start = clock->now();
  const auto wall = std::chrono::steady_clock::now();
  co_await sleep(seconds(10));
  EXPECT_EQ(clock->now() - start, seconds(10)) << "the clock must advance by exactly 10 s";
  EXPECT_LT(std::chrono::steady_clock::now() - wall, milliseconds(500))
      << "a manual-clock sleep must not take wall time";
  EXPECT_EQ(get_running_loop().time(), clock->now());
}

TEST_P(ManualTime, SleepTenSecondsTakesNoWallTime) {
  run_manual(sleep_ten_seconds, workers());
}

Coro<Duration> sleep_and_measure(ManualClock* clock, Duration d) {
  const TimePoint start = clock->now();
  co_await sleep(d);
  co_return clock->now() - start;
}

Coro<void> many_sleepers_wake_at_their_deadline(ManualClock* clock) {
  const TimePoint start = clock->now();
  std::vector<Task<Duration>> tasks;
  std::vector<Duration> ds;
  for (int i = 0; i < 200; ++i) {
    Duration d = milliseconds(1 + (i * 37) % 500);
    ds.push_back(d);
    tasks.push_back(create_task(sleep_and_measure(clock, d)));
  }
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    EXPECT_EQ(co_await tasks[i], ds[i]) << "sleeper " << i << " woke at the wrong time";
  }
  EXPECT_EQ(clock->now() - start, *std::max_element(ds.begin(), ds.end()));
}

TEST_P(ManualTime, ManySleepersEachWakeExactlyAtTheirDeadline) {
  run_manual(many_sleepers_wake_at_their_deadline, workers());
}

Coro<void> sequential_sleeps(ManualClock* clock) {
  const TimePoint start = clock->now();
  for (int i = 0; i < 100; ++i) co_await sleep(milliseconds(10));
  EXPECT_EQ(clock->now() - start, seconds(1));
  EXPECT_EQ(co_await sleep(hours(24), 5), 5);
  EXPECT_EQ(clock->now() - start, hours(24) + seconds(1));
}

TEST_P(ManualTime, SequentialSleepsAddUp) { run_manual(sequential_sleeps, workers()); }

Coro<void> wake_and_record(Duration d, std::vector<int>* order, int id) {
  co_await sleep(d);
  order->push_back(id);
}

// Tasks sleeping for distinct durations wake in deadline order, whatever the
// order they started sleeping in.
Coro<void> tasks_wake_in_deadline_order(ManualClock*) {
  std::vector<int> order;
  const int ms[] = {50, 10, 40, 20, 30, 5, 45};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 7; ++i) {
    tasks.push_back(create_task(wake_and_record(milliseconds(ms[i]), &order, ms[i])));
  }
  for (auto& t : tasks) co_await t;
  EXPECT_EQ(order, (std::vector<int>{5, 10, 20, 30, 40, 45, 50}));
}

TEST(ManualTimeOrder, TasksWakeInDeadlineOrder) { run_manual(tasks_wake_in_deadline_order, 1); }

Coro<void> many_sleeping_tasks(ManualClock* clock) {
  const int n = scaled(10000);
  const TimePoint start = clock->now();
  std::vector<Task<Duration>> tasks;
  tasks.reserve(n);
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task(sleep_and_measure(clock, milliseconds(1 + i % 1000))));
  }
  for (int i = 0; i < n; ++i) EXPECT_EQ(co_await tasks[i], milliseconds(1 + i % 1000));
  EXPECT_EQ(clock->now() - start, milliseconds(1000));
}

TEST_P(ManualTime, TenThousandSleepingTasks) { run_manual(many_sleeping_tasks, workers()); }

INSTANTIATE_TEST_SUITE_P(Workers, ManualTime, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "workers" + std::to_string(i.param);
                         });

// --- call_later / call_at ordering ------------------------------------------------

Coro<void> timers_fire_in_deadline_order(ManualClock* clock) {
  std::vector<std::pair<int, Duration>> fired;  // (id, time it ran)
  Future<void> last;
  const TimePoint start = clock->now();
  auto record = [&fired, clock, start](int id) {
    return [&fired, clock, start, id] { fired.emplace_back(id, clock->now() - start); };
  };
  call_later(milliseconds(30), record(30));
  call_later(milliseconds(10), record(10));
  call_at(start + milliseconds(20), record(20));
  call_later(milliseconds(5), record(5));
  call_at(start + milliseconds(25), record(25));
  call_later(milliseconds(40), [&fired, last, clock, start] {
    fired.emplace_back(40, clock->now() - start);
    last.set_result();
  });
  co_await last;
  std::vector<int> ids;
  for (auto& [id, at] : fired) {
    ids.push_back(id);
    EXPECT_EQ(at, milliseconds(id)) << "timer " << id << " ran at the wrong time";
  }
  EXPECT_EQ(ids, (std::vector<int>{5, 10, 20, 25, 30, 40}));
}

TEST(Timers, FireInDeadlineOrderAtTheirDeadline) { run_manual(timers_fire_in_deadline_order); }

Coro<void> equal_deadlines_fifo(ManualClock* clock) {
  std::vector<int> fired;
  Future<void> last;
  const TimePoint when = clock->now() + milliseconds(10);
  for (int i = 0; i < 50; ++i) {
    if (i % 2 == 0) {
      call_later(milliseconds(10), [&fired, i] { fired.push_back(i); });
    } else {
      call_at(when, [&fired, i] { fired.push_back(i); });
    }
  }
  call_later(milliseconds(11), [last] { last.set_result(); });
  co_await last;
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i) expected[i] = i;
  EXPECT_EQ(fired, expected) << "timers with equal deadlines must fire in FIFO order";
}

TEST(Timers, EqualDeadlinesFireInRegistrationOrder) { run_manual(equal_deadlines_fifo); }

Coro<void> timer_in_the_past(ManualClock* clock) {
  clock->advance(seconds(5));
  Future<Duration> ran;
  const TimePoint start = clock->now();
  call_at(start - seconds(1), [ran, clock, start] { ran.set_result(clock->now() - start); });
  EXPECT_EQ(co_await ran, Duration(0)) << "a deadline in the past fires at once, with no jump";
  Future<void> zero;
  call_later(Duration(0), [zero] { zero.set_result(); });
  co_await zero;
  EXPECT_EQ(clock->now(), start);
}

TEST(Timers, DeadlineInThePastFiresSoon) { run_manual(timer_in_the_past); }

Coro<void> timer_reschedules_itself(ManualClock* clock) {
  struct State {
    int count = 0;
    Future<void> done;
    ManualClock* clock;
    TimePoint start;
    std::vector<Duration> at;
  };
  auto st = std::make_shared<State>(State{0, Future<void>(), clock, clock->now(), {}});
  struct Tick {
    std::shared_ptr<State> st;
    void operator()() const {
      st->at.push_back(st->clock->now() - st->start);
      if (++st->count == 5) {
        st->done.set_result();
      } else {
        call_later(milliseconds(100), Tick{st});
      }
    }
  };
  call_later(milliseconds(100), Tick{st});
  co_await st->done;
  EXPECT_EQ(st->at, (std::vector<Duration>{milliseconds(100), milliseconds(200), milliseconds(300),
                                           milliseconds(400), milliseconds(500)}));
}

TEST(Timers, CallbackCanScheduleTheNextTimer) { run_manual(timer_reschedules_itself); }

// --- TimerHandle ----------------------------------------------------------------

Coro<void> cancelled_timers_never_fire(ManualClock* clock) {
  std::atomic<int> bad{0};
  std::vector<int> good;
  const TimePoint start = clock->now();
  TimerHandle a = call_later(milliseconds(10), [&bad] { ++bad; });
  TimerHandle b = call_later(milliseconds(20), [&good] { good.push_back(20); });
  TimerHandle c = call_at(start + milliseconds(30), [&bad] { ++bad; });
  EXPECT_EQ(a.when(), start + milliseconds(10));
  EXPECT_EQ(c.when(), start + milliseconds(30));
  EXPECT_FALSE(a.cancelled());
  EXPECT_TRUE(a.cancel());
  EXPECT_TRUE(a.cancelled());
  EXPECT_FALSE(a.cancel()) << "a second cancel reports false";
  EXPECT_TRUE(c.cancel());
  co_await sleep(milliseconds(50));
  EXPECT_EQ(bad.load(), 0) << "a cancelled timer fired";
  EXPECT_EQ(good, (std::vector<int>{20}));
  EXPECT_FALSE(b.cancel()) << "cancel after the timer ran returns false";
  EXPECT_FALSE(b.cancelled());
}

TEST(TimerHandles, CancelledTimersNeverFire) { run_manual(cancelled_timers_never_fire); }

Coro<void> cancel_timer_from_another_thread(ManualClock*) {
  std::atomic<int> fired{0};
  std::vector<TimerHandle> handles;
  for (int i = 0; i < 100; ++i) {
    handles.push_back(call_later(milliseconds(10 + i), [&fired] { ++fired; }));
  }
  std::atomic<int> cancelled{0};
  std::thread th([&] {
    for (auto& h : handles) {
      if (h.cancel()) ++cancelled;
    }
  });
  th.join();
  EXPECT_EQ(cancelled.load(), 100);
  co_await sleep(seconds(1));
  EXPECT_EQ(fired.load(), 0);
  for (auto& h : handles) EXPECT_TRUE(h.cancelled());
}

TEST(TimerHandles, CancelFromAnotherThread) { run_manual(cancel_timer_from_another_thread); }

Coro<void> cancel_inside_earlier_callback(ManualClock*) {
  int fired = 0;
  auto later = std::make_shared<TimerHandle>();
  call_later(milliseconds(5), [later] { EXPECT_TRUE(later->cancel()); });
  *later = call_later(milliseconds(10), [&fired] { ++fired; });
  co_await sleep(milliseconds(20));
  EXPECT_EQ(fired, 0);
}

TEST(TimerHandles, CancelledByAnEarlierCallback) { run_manual(cancel_inside_earlier_callback); }

Coro<void> cancel_at_the_same_deadline(ManualClock*) {
  int fired = 0;
  auto second = std::make_shared<TimerHandle>();
  call_later(milliseconds(10), [second] { EXPECT_TRUE(second->cancel()); });
  *second = call_later(milliseconds(10), [&fired] { ++fired; });
  co_await sleep(milliseconds(20));
  EXPECT_EQ(fired, 0) << "a timer cancelled by a callback due at the same instant fired";
}

TEST(TimerHandles, CancelledByACallbackDueAtTheSameInstant) {
  run_manual(cancel_at_the_same_deadline);
}

// cancel_and_reset: cancel() then an empty handle, on the owning loop (the
// timer in the wheel, or already due in its heap), on another thread, after
// a cancel from another thread, after the timer ran, and when it is due.
Coro<void> cancel_and_reset_everywhere(ManualClock* clock) {
  std::atomic<int> bad{0};
  int good = 0;
  TimerHandle far = call_later(hours(5), [&bad] { ++bad; });
  TimerHandle copy = far;  // another reference: the entry outlives the reset
  EXPECT_TRUE(far.cancel_and_reset());
  EXPECT_EQ(far.when(), TimePoint{}) << "the handle is empty after";
  EXPECT_FALSE(far.cancel_and_reset());
  EXPECT_TRUE(copy.cancelled());
  EXPECT_FALSE(copy.cancel());

  TimerHandle elsewhere = call_later(milliseconds(10), [&bad] { ++bad; });
  bool cancelled_there = false;
  std::thread th([&] { cancelled_there = elsewhere.cancel_and_reset(); });
  th.join();
  EXPECT_TRUE(cancelled_there);

  TimerHandle raced = call_later(milliseconds(10), [&bad] { ++bad; });
  TimerHandle other = raced;
  std::thread canceller([&] { EXPECT_TRUE(other.cancel()); });
  canceller.join();
  EXPECT_FALSE(raced.cancel_and_reset()) << "already cancelled from another thread";

  TimerHandle ran = call_later(milliseconds(1), [&good] { ++good; });
  co_await sleep(milliseconds(2));
  EXPECT_FALSE(ran.cancel_and_reset());
  TimerHandle due = call_at(clock->now(), [&bad] { ++bad; });
  EXPECT_TRUE(due.cancel_and_reset());
  co_await sleep(milliseconds(50));
  EXPECT_EQ(bad.load(), 0) << "a cancelled timer fired";
  EXPECT_EQ(good, 1);
}

TEST(TimerHandles, CancelAndReset) { run_manual(cancel_and_reset_everywhere); }

TEST(TimerHandles, DefaultHandle) {
  TimerHandle h;
  EXPECT_FALSE(h.cancel_and_reset());
  EXPECT_FALSE(h.cancel());
  EXPECT_FALSE(h.cancelled());
  EXPECT_EQ(h.when(), TimePoint{});
}

// --- 100k pending timers ------------------------------------------------------------

Coro<void> hundred_thousand_timers(ManualClock* clock) {
  const int n = scaled(100000, 5);
  struct Fired {
    std::int32_t id;
    std::int32_t deadline_ms;
    Duration at;
  };
  // Shared by every callback through one pointer, so the closures stay small.
  struct Log {
    ManualClock* clock;
    TimePoint start;
    std::vector<Fired> fired;
    int cancelled_fired = 0;
  } log{clock, clock->now(), {}, 0};
  log.fired.reserve(n);
  std::vector<TimerHandle> cancelled_handles;
  int expected_fires = 0;
  for (int i = 0; i < n; ++i) {
    const auto ms = static_cast<std::int32_t>(1 + (static_cast<std::int64_t>(i) * 7919) % 997);
    if (i % 10 == 3) {
      cancelled_handles.push_back(
          call_later(milliseconds(ms), [l = &log] { ++l->cancelled_fired; }));
    } else {
      call_later(milliseconds(ms), [l = &log, i, ms] {
        l->fired.push_back({i, ms, l->clock->now() - l->start});
      });
      ++expected_fires;
    }
  }
  for (auto& h : cancelled_handles) EXPECT_TRUE(h.cancel());
  co_await sleep(milliseconds(1000));
  EXPECT_EQ(static_cast<int>(log.fired.size()), expected_fires);
  EXPECT_EQ(log.cancelled_fired, 0);
  int out_of_order = 0;
  int wrong_time = 0;
  for (std::size_t k = 0; k < log.fired.size(); ++k) {
    const Fired& b = log.fired[k];
    if (b.at != milliseconds(b.deadline_ms)) ++wrong_time;
    if (k == 0) continue;
    const Fired& a = log.fired[k - 1];
    if (a.deadline_ms > b.deadline_ms || (a.deadline_ms == b.deadline_ms && a.id > b.id)) {
      ++out_of_order;
    }
  }
  EXPECT_EQ(out_of_order, 0) << "timers did not fire in (deadline, registration) order";
  EXPECT_EQ(wrong_time, 0) << "timers did not fire exactly at their deadline";
}

TEST(ManyTimers, HundredThousandPendingTimers) { run_manual(hundred_thousand_timers); }

// --- the real clock ------------------------------------------------------------------

WEFT_CO_TEST(RealClock, CallLaterWaitsAtLeastTheDelay) {
  Future<std::chrono::steady_clock::time_point> ran;
  const auto start = std::chrono::steady_clock::now();
  call_later(milliseconds(15), [ran] { ran.set_result(std::chrono::steady_clock::now()); });
  const auto at = co_await ran;
  EXPECT_GE(at - start, milliseconds(15));
  EXPECT_LT(at - start, seconds(2));
}

WEFT_CO_TEST(RealClock, LoopTimeIsTheSteadyClock) {
  const auto before = std::chrono::steady_clock::now();
  const TimePoint t = get_running_loop().time();
  const auto after = std::chrono::steady_clock::now();
  EXPECT_LE(before, t);
  EXPECT_LE(t, after);
  co_return;
}

// --- ManualClock without autojump ------------------------------------------------------

// Time moves only when the test says so. Advancing the clock from another
// thread while every worker sleeps must wake the loop whose timer is now due.
// (If it does not, the helper thread kicks the loop after 1 s so the test
// fails instead of hanging.)
// `step(clock)` moves the clock 5 s forward from the driver thread.
void check_advance_wakes_the_sleeper(void (*step)(ManualClock&)) {
  ManualClock clock(/*autojump=*/false);
  Runtime rt(testing::test_options(1, &clock));
  std::atomic<bool> sleeping{false};
  std::atomic<bool> woke{false};
  std::atomic<bool> kicked{false};
  auto body = [](ManualClock* clock, std::atomic<bool>* sleeping,
                 std::atomic<bool>* woke) -> Coro<Duration> {
    const TimePoint start = clock->now();
    sleeping->store(true);
    co_await sleep(seconds(10));
    woke->store(true);
    co_return clock->now() - start;
  };
  std::thread driver([&] {
    while (!sleeping.load()) std::this_thread::yield();
    std::this_thread::sleep_for(milliseconds(20));  // let the worker park
    step(clock);
    std::this_thread::sleep_for(milliseconds(20));
    EXPECT_FALSE(woke.load()) << "woke before its deadline";
    step(clock);
    auto until = std::chrono::steady_clock::now() + seconds(1);
    while (!woke.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    if (!woke.load()) {
      kicked.store(true);
      rt.loop(0).call_soon_threadsafe([] {});
    }
  });
  Duration slept = rt.run(body(&clock, &sleeping, &woke));
  driver.join();
  EXPECT_EQ(slept, seconds(10));
  EXPECT_FALSE(kicked.load())
      << "moving the ManualClock did not wake the parked loop: its due timer ran only "
         "after an unrelated wake-up";
}

TEST(ManualClockNoAutojump, AdvanceFromAnotherThreadWakesTheSleeper) {
  check_advance_wakes_the_sleeper([](ManualClock& c) { c.advance(seconds(5)); });
}

TEST(ManualClockNoAutojump, AdvanceToFromAnotherThreadWakesTheSleeper) {
  check_advance_wakes_the_sleeper([](ManualClock& c) { c.advance_to(c.now() + seconds(5)); });
}

// Advancing from inside a task: the due timers run at the loop's next turn.
Coro<void> advance_from_a_task(ManualClock* clock) {
  bool fired = false;
  call_later(seconds(3), [&fired] { fired = true; });
  clock->advance(seconds(3));
  EXPECT_TRUE(co_await testing::yield_until([&] { return fired; }, 1000));
}

TEST(ManualClockNoAutojump, AdvanceFromATask) {
  ManualClock clock(/*autojump=*/false);
  run(advance_from_a_task(&clock), testing::test_options(1, &clock));
}

// --- call_soon and friends --------------------------------------------------------------

WEFT_CO_TEST_WITH(CallSoon, RunsInOrderAfterTheCurrentStep, testing::test_options(1)) {
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) call_soon([&order, i] { order.push_back(i); });
  EXPECT_TRUE(order.empty()) << "call_soon ran a callback inline";
  co_await yield_now();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

WEFT_CO_TEST_WITH(CallSoon, CallbackScheduledByACallbackRunsLater, testing::test_options(1)) {
  std::vector<int> order;
  Future<void> done;
  call_soon([&order, done] {
    order.push_back(1);
    call_soon([&order, done] {
      order.push_back(3);
      done.set_result();
    });
  });
  call_soon([&order] { order.push_back(2); });
  co_await done;
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

Coro<void> callback_exceptions() {
  Future<void> done;
  call_soon([] { throw std::runtime_error("soon-boom"); });
  call_later(milliseconds(1), [] { throw std::runtime_error("later-boom"); });
  call_later(milliseconds(2), [done] { done.set_result(); });
  co_await done;
}

TEST(CallSoon, ExceptionsFromCallbacksAreReported) {
  ErrorLog log;
  run(callback_exceptions(), testing::logged_options(log, 1));
  EXPECT_EQ(log.count({"soon-boom"}), 1) << log.dump();
  EXPECT_EQ(log.count({"later-boom"}), 1) << log.dump();
  EXPECT_EQ(log.size(), 2u) << log.dump();
}

// Loop-only calls refuse other threads, like asyncio's.
WEFT_CO_TEST(CallSoon, LoopOnlyCallsFromAnotherThreadAreRuntimeError) {
  Loop& loop = get_running_loop();
  int refused = 0;
  int wrong = 0;
  bool ran = false;
  std::thread th([&] {
    auto expect_refused = [&](auto fn) {
      try {
        fn();
        ++wrong;
      } catch (const RuntimeError&) {
        ++refused;
      } catch (...) {
        ++wrong;
      }
    };
    expect_refused([&] { loop.call_soon([&ran] { ran = true; }); });
    expect_refused([&] { (void)loop.call_later(milliseconds(1), [&ran] { ran = true; }); });
    expect_refused([&] { (void)loop.call_at(loop.time(), [&ran] { ran = true; }); });
    expect_refused([&] { call_soon([&ran] { ran = true; }); });
    expect_refused([&] { (void)call_later(milliseconds(1), [&ran] { ran = true; }); });
  });
  th.join();
  EXPECT_EQ(refused, 5);
  EXPECT_EQ(wrong, 0);
  co_await sleep(milliseconds(5));
  EXPECT_FALSE(ran);
}

// A loop's call_later from a task running on another loop's worker is also
// refused: the timer would belong to a thread that is not running it.
WEFT_CO_TEST_WITH(CallSoon, CallLaterOnAnotherWorkersLoopIsRuntimeError, testing::test_options(2)) {
  Runtime& rt = get_running_loop().runtime();
  auto try_other = [](Loop* other) -> Coro<bool> {
    try {
      (void)other->call_later(milliseconds(1), [] {});
    } catch (const RuntimeError&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(co_await rt.loop(0).create_pinned_task(try_other(&rt.loop(1))));
  EXPECT_TRUE(co_await rt.loop(1).create_pinned_task(try_other(&rt.loop(0))));
}

WEFT_CO_TEST(CallSoon, NegativeDelayIsInvalidArgument) {
  EXPECT_THROW((void)call_later(milliseconds(-1), [] {}), std::invalid_argument);
  EXPECT_THROW((void)get_running_loop().call_later(Duration(-5), [] {}), std::invalid_argument);
  co_return;
}

WEFT_CO_TEST_WITH(CallSoon, ThreadsafeFromAPlainThreadRunsOnTheLoop, testing::test_options(1)) {
  const std::thread::id loop_thread = std::this_thread::get_id();
  Loop& loop = get_running_loop();
  static constexpr int n = 1000;  // static: the nested lambda uses it without a capture
  std::vector<int> order;
  std::vector<std::thread::id> where;
  Future<void> done;
  std::thread th([&] {
    for (int i = 0; i < n; ++i) {
      loop.call_soon_threadsafe([&order, &where, i, done] {
        order.push_back(i);
        where.push_back(std::this_thread::get_id());
        if (i == n - 1) done.set_result();
      });
    }
  });
  co_await done;
  th.join();
  WEFT_CO_ASSERT_EQ(static_cast<int>(order.size()), n);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(order[i], i) << "callbacks from one thread must run in the order posted";
    EXPECT_EQ(where[i], loop_thread);
  }
}

}  // namespace
}  // namespace weft
