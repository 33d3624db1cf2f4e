// The task factory hook (asyncio's loop.set_task_factory) and eager tasks
// (Python 3.12's eager_task_factory, create_task(eager_start=True)),
// checked against CPython's test_eager_task_factory.py.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using testing::raises;

Coro<int> returns(int v) { co_return v; }
Coro<int> yields_then_returns(int v, std::atomic<int>* steps) {
  ++*steps;
  co_await yield_now();
  ++*steps;
  co_return v;
}

// Debug mode on: a refused Coro reported as "never awaited" fails the test.
RuntimeOptions debug_options(std::uint32_t workers = 1) {
  RuntimeOptions o = testing::test_options(workers);
  o.debug = true;
  return o;
}

// An eager task that finishes in its first step is done when create_task
// returns, without a loop turn: it never touched a run queue.
WEFT_CO_TEST_WITH(EagerTask, FinishesInsideCreateTask, testing::test_options(1)) {
  Task<int> t = create_task(returns(5), TaskOptions{.name = {}, .eager_start = true});
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.result(), 5);
  Task<int> lazy = create_task(returns(6));
  EXPECT_FALSE(lazy.done()) << "a plain task starts after the current step";
  EXPECT_EQ(co_await lazy, 6);
}

// An eager task runs until its first suspension inside create_task, as the
// current task, then goes on like any task.
WEFT_CO_TEST_WITH(EagerTask, RunsToItsFirstSuspensionAsTheCurrentTask, testing::test_options(1)) {
  std::atomic<int> steps{0};
  AnyTask seen;
  Task<int> t = create_task(
      [](std::atomic<int>* steps, AnyTask* seen) -> Coro<int> {
        *seen = current_task();
        co_return co_await yields_then_returns(3, steps);
      }(&steps, &seen),
      TaskOptions{.name = "eager", .eager_start = true});
  EXPECT_EQ(steps.load(), 1) << "the first step ran inside create_task";
  EXPECT_TRUE(seen == AnyTask(t)) << "current_task() in the eager step is the new task";
  EXPECT_EQ(t.get_name(), "eager");
  EXPECT_FALSE(t.done());
  EXPECT_EQ(co_await t, 3);
  EXPECT_EQ(steps.load(), 2);
}

// asyncio.eager_task_factory: every task the runtime creates starts eagerly,
// gather's and task groups' included.
WEFT_CO_TEST_WITH(EagerTask, EagerTaskFactory, ([] {
                    RuntimeOptions o = testing::test_options(1);
                    o.task_factory = eager_task_factory;
                    return o;
                  }())) {
  Task<int> t = create_task(returns(1));
  EXPECT_TRUE(t.done());
  auto g = gather(returns(2), returns(3));
  EXPECT_TRUE(g.done()) << "both children finished eagerly, so did the gather";
  auto [a, b] = co_await g;
  EXPECT_EQ(a + b, 5);
  co_await task_group([](TaskGroup& tg) -> Coro<void> {
    Task<int> c = tg.create_task(returns(4));
    EXPECT_TRUE(c.done());
    co_return;
  });
}

// The factory sees every task before it starts, and may rename it.
WEFT_CO_TEST(TaskFactory, SeesEveryTaskAndMayRenameIt) {
  std::atomic<int> seen{0};
  Runtime& rt = get_running_loop().runtime();
  rt.set_task_factory([&seen](TaskSpec& spec) {
    ++seen;
    EXPECT_FALSE(spec.task.done());
    spec.task.set_name("made-" + std::to_string(spec.task.id()));
  });
  EXPECT_TRUE(rt.has_task_factory());
  Task<int> t = create_task(returns(1));
  EXPECT_EQ(t.get_name(), "made-" + std::to_string(t.id()));
  co_await t;
  co_await gather(returns(2), returns(3));
  co_await task_group([](TaskGroup& tg) -> Coro<void> {
    tg.create_task(returns(4));
    co_return;
  });
  co_await get_running_loop().create_pinned_task(returns(5));
  EXPECT_EQ(co_await wait_for(returns(6), hours(1)), 6);  // inline: no task, nothing to see
  std::atomic<bool> outside_done{false};
  std::thread outside([&rt, &outside_done] {
    EXPECT_EQ(run_coroutine_threadsafe(returns(7), rt).result(), 7);
    outside_done.store(true);
  });
  while (!outside_done.load()) co_await yield_now();
  outside.join();
  EXPECT_EQ(seen.load(), 6);
  rt.set_task_factory(nullptr);
  EXPECT_FALSE(rt.has_task_factory());
  co_await create_task(returns(8));
  EXPECT_EQ(seen.load(), 6) << "removed";
}

// A factory that throws is an error of the call that used it; the refused
// body never runs and is not reported as "never awaited".
WEFT_CO_TEST_WITH(TaskFactory, ThrowingFactoryFailsTheCall, debug_options(2)) {
  Runtime& rt = get_running_loop().runtime();
  rt.set_task_factory([](TaskSpec&) { throw std::runtime_error("factory refuses"); });
  bool ran = false;
  auto body = [](bool* ran) -> Coro<int> {
    *ran = true;
    co_return 1;
  };
  EXPECT_THROW((void)create_task(body(&ran)), std::runtime_error);
  std::optional<std::string> in_group;
  co_await task_group([&](TaskGroup& tg) -> Coro<void> {
    try {
      tg.create_task(body(&ran));
    } catch (const std::runtime_error& e) {
      in_group = e.what();
    }
    co_return;
  });
  EXPECT_EQ(in_group, "factory refuses");
  EXPECT_FALSE(ran);
  EXPECT_EQ(all_tasks().size(), 1u) << "nothing left behind";
  rt.set_task_factory(nullptr);
}

// run_coroutine_threadsafe: the factory's exception is the outcome of the
// ConcurrentFuture, reported there and nowhere else.
TEST(TaskFactory, ThrowingFactoryFailsTheConcurrentFutureOnce) {
  testing::ErrorLog log;
  Runtime rt(testing::logged_options(log, 2));
  rt.set_task_factory([](TaskSpec&) { throw std::runtime_error("factory refuses"); });
  std::atomic<bool> ran{false};
  rt.run([](Runtime* rt, std::atomic<bool>* ran) -> Coro<void> {
    std::thread outside([rt, ran] {
      auto f = run_coroutine_threadsafe([](std::atomic<bool>* ran) -> Coro<int> {
        ran->store(true);
        co_return 1;
      }(ran), *rt);
      EXPECT_THROW(f.result(), std::runtime_error);
      EXPECT_TRUE(f.done());
    });
    outside.join();  // needs nothing from this loop: the factory refused at once
    co_return;
  }(&rt, &ran));
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(log.size(), 0u) << log.dump();
}

}  // namespace
}  // namespace weft
